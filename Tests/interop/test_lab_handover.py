"""`hali train-backbone|train-detector|embed|eval` hand over to `hali-lab`, the research executable, with the same
arguments; without a hali-lab beside hali or on PATH they say where it is expected."""
import os
import shutil
import subprocess

from conftest import ROOT

BIN = os.path.join(ROOT, ".build", "debug")


def run(executable, *arguments, env=None):
    return subprocess.run([executable, *arguments], capture_output=True, text=True, timeout=60, env=env)


def test_eval_runs_the_lab_with_the_same_arguments():
    result = run(os.path.join(BIN, "hali"), "eval", "report", "--help")
    assert result.returncode == 0, result.stderr
    assert "USAGE: hali-lab eval report" in result.stdout
    assert "--repeats" in result.stdout


def test_every_lab_command_is_reachable_through_hali():
    for command in ("train-backbone", "train-detector", "embed", "eval"):
        result = run(os.path.join(BIN, "hali"), command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert f"hali-lab {command}" in result.stdout, command


def test_without_the_lab_hali_says_where_it_looks(tmp_path):
    lonely = tmp_path / "hali"
    shutil.copy(os.path.join(BIN, "hali"), lonely)
    result = run(str(lonely), "eval", "detection", env={"PATH": str(tmp_path), "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", "")})
    assert result.returncode == 127
    assert f"cannot run {tmp_path}/hali-lab" in result.stderr
