"""Every command's --help, compared with the committed text in Tests/interop/help: a changed option, default or
wording shows up in review. After a deliberate change, regenerate with
    HALI_UPDATE_HELP=1 python3 -m pytest -q Tests/interop/test_help.py
and commit the files."""
import os
import subprocess

import pytest

from conftest import ROOT

BIN = os.path.join(ROOT, ".build", "debug")
SNAPSHOTS = os.path.join(ROOT, "Tests", "interop", "help")

COMMANDS = [
    ("halid",),
    ("hali",),
    *[("hali", c) for c in ("label", "ping", "status", "slides", "slide-info", "ingest", "cells", "predict", "export",
                            "import", "report", "hash-token", "batch")],
    *[("hali", "batch", c) for c in ("submit", "task", "merge", "status")],
    ("hali-lab",),
    *[("hali-lab", c) for c in ("train-backbone", "train-detector", "embed", "eval")],
    *[("hali-lab", "eval", c) for c in ("detection", "backbone", "effectiveness", "efficiency", "report")],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c))
def test_help_is_what_was_reviewed(command):
    # A fixed width: ArgumentParser wraps help to the terminal (COLUMNS), and these run without one.
    env = dict(os.environ, COLUMNS="100")
    result = subprocess.run([os.path.join(BIN, command[0]), *command[1:], "--help"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    path = os.path.join(SNAPSHOTS, "-".join(command) + ".txt")
    if os.environ.get("HALI_UPDATE_HELP"):
        with open(path, "w") as f:
            f.write(result.stdout)
    assert os.path.exists(path), f"no snapshot {path}: run with HALI_UPDATE_HELP=1 and commit it"
    with open(path) as f:
        expected = f.read()
    assert result.stdout == expected, f"{' '.join(command)} --help changed: review, then regenerate (see this file's docstring)"
