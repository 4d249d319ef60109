"""`hali batch` on a live one-node Slurm cluster (Deploy/slurm/local-cluster.sh) and its Kubernetes manifest checked
against the Kubernetes schemas (kubernetes-validate from PyPI).

The Slurm test needs Debian's slurm-wlm and munge and root (Deploy/install-deps.sh --python installs them); where
they cannot be had it is skipped with the reason. Three slides: two real ones and a corrupt file.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, RunningDaemon

sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
from hali_client import HaliClient  # noqa: E402

TOKEN = "batch-token"

HALI = os.environ.get("HALI", os.path.join(ROOT, ".build", "debug", "hali"))
SLIDES = os.path.join(ROOT, "..", "shared", "data", "slides")
CLUSTER = os.path.join(ROOT, "Deploy", "slurm", "local-cluster.sh")


def hali(*arguments, env=None, check=True):
    run = subprocess.run([HALI, *arguments], capture_output=True, text=True, env=env, timeout=600)
    if check and run.returncode != 0:
        raise AssertionError(f"hali {' '.join(arguments)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}")
    return run


@pytest.fixture()
def batch_slides(tmp_path):
    """Two slides OpenSlide reads (one records no µm/px: the batch passes --mpp) and a corrupt one."""
    folder = tmp_path / "slides"
    folder.mkdir()
    for name in ("CMU-1-Small-Region.svs", "CMU-1-Small-Region-pyramid.tif"):
        shutil.copy(os.path.join(SLIDES, name), folder / name)
    (folder / "broken scan.svs").write_bytes(os.urandom(65536))
    return folder


def digest(index):
    line = next(line for line in hali("cells", str(index)).stdout.splitlines() if line.startswith("digest"))
    return line.split()[1]


def test_a_task_records_a_bad_slide_and_a_good_one_clears_it(batch_slides, tmp_path):
    index = tmp_path / "index"
    bad = hali("batch", "task", str(batch_slides / "broken scan.svs"), "--index-dir", str(index), check=False)
    assert bad.returncode == 3, bad.stderr
    record = (index / "broken scan.failed.txt").read_text()
    assert "not a slide OpenSlide can read" in record and "fingerprint: " in record
    status = hali("batch", "status", str(batch_slides), "--index-dir", str(index), "--mpp", "0.499").stdout
    assert "failed     " + str(batch_slides / "broken scan.svs") in status
    assert "missing    " + str(batch_slides / "CMU-1-Small-Region.svs") in status
    # Replaced by a readable file, the slide is no longer the one that failed: it is missing again, then done.
    shutil.copy(os.path.join(SLIDES, "CMU-1-Small-Region.svs"), batch_slides / "broken scan.svs")
    status = hali("batch", "status", str(batch_slides / "broken scan.svs"), "--index-dir", str(index)).stdout
    assert status.startswith("missing")
    hali("batch", "task", str(batch_slides / "broken scan.svs"), "--index-dir", str(index))
    assert not (index / "broken scan.failed.txt").exists() and (index / "broken scan.hidx").exists()


def test_kubernetes_manifest_passes_the_schemas(batch_slides, tmp_path):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    manifest = hali("batch", "submit", str(batch_slides), "--index-dir", str(tmp_path / "index"), "--scheduler", "kubernetes",
                    "--dry-run", "--mpp", "0.499", "--image", "registry.example/hali:0.3.0", "--max-parallel", "2").stdout
    documents = list(yaml.safe_load_all(manifest))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Job"]
    listed = documents[0]["data"]["slides.txt"].splitlines()
    assert sorted(listed) == sorted(str(batch_slides / n) for n in os.listdir(batch_slides))
    job = documents[1]["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] == 3 and job["parallelism"] == 2
    assert job["template"]["spec"]["containers"][0]["args"][:6] == [
        "batch", "task", "--list", "/etc/hali-batch/slides.txt", "--item", "$(SLIDE_ITEM)"]
    for version in ("1.29.0", "1.37.0"):  # backoffLimitPerIndex and FailIndex are 1.29's
        for document in documents:
            kubernetes_validate.validate(document, version, strict=True)
    broken = dict(documents[1], spec=dict(job, completions="three"))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37.0", strict=True)


@pytest.fixture()
def slurm(tmp_path):
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        pytest.skip("Slurm is not installed here (apt-get install slurm-wlm munge; Deploy/install-deps.sh --python does)")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster runs its daemons as root")
    state = tmp_path / "slurm"
    start = subprocess.run(["bash", CLUSTER, "start", str(state)], capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        subprocess.run(["bash", CLUSTER, "stop", str(state)], timeout=60)
        pytest.skip("a one-node Slurm cluster could not start here: " + start.stderr.strip()[-400:])
    env = dict(os.environ, SLURM_CONF=str(state / "slurm.conf"))
    yield env
    subprocess.run(["bash", CLUSTER, "stop", str(state)], timeout=60)


def test_a_slurm_array_ingests_every_good_slide_records_the_bad_one_and_a_rerun_submits_nothing(slurm, batch_slides, tmp_path):
    index = tmp_path / "index"
    run = hali("batch", "submit", str(batch_slides), "--index-dir", str(index), "--mpp", "0.499", "--mem", "1G", "--wait",
               env=slurm, check=False)
    assert run.returncode == 2, run.stdout + run.stderr  # 2: the batch finished with a slide not indexed
    assert "submitted Slurm job" in run.stdout and "3 slides: 2 current, 1 failed" in run.stdout
    assert "not a slide OpenSlide can read" in (index / "broken scan.failed.txt").read_text()
    logs = sorted(os.listdir(index / "batch" / "logs"))
    assert len(logs) == 3, logs
    # The array's indexes hold exactly the cells a local ingest of the same slide finds.
    local = tmp_path / "local"
    for stem, name in (("CMU-1-Small-Region", "CMU-1-Small-Region.svs"), ("CMU-1-Small-Region-pyramid", "CMU-1-Small-Region-pyramid.tif")):
        hali("ingest", str(batch_slides / name), "--mpp", "0.499", "--out", str(local))
        assert digest(index / f"{stem}.hidx") == digest(local / f"{stem}.hidx")
    again = hali("batch", "submit", str(batch_slides), "--index-dir", str(index), "--mpp", "0.499", env=slurm)
    assert again.stdout.startswith("nothing to submit") and "0 to ingest" in again.stderr
    assert len(os.listdir(index / "batch" / "logs")) == 3


def test_a_slurm_batch_splits_a_large_slide_into_shards_and_merges_them_into_the_cells_of_one_ingest(slurm, batch_slides, tmp_path):
    os.remove(batch_slides / "broken scan.svs")
    index = tmp_path / "index"
    # CMU-1-Small-Region.svs (1.9 MB) is over 1.5 MB: two shard tasks and a merge; the 1.2 MB TIFF is one task.
    run = hali("batch", "submit", str(batch_slides), "--index-dir", str(index), "--mpp", "0.499", "--mem", "1G", "--shards", "2",
               "--shard-above-mb", "1.5", "--wait", env=slurm)
    assert ": 3 tasks" in run.stdout and "merges 1 sharded slide" in run.stdout and "2 slides: 2 current" in run.stdout, run.stdout
    local = tmp_path / "local"
    hali("ingest", str(batch_slides / "CMU-1-Small-Region.svs"), "--mpp", "0.499", "--out", str(local))
    assert digest(index / "CMU-1-Small-Region.hidx") == digest(local / "CMU-1-Small-Region.hidx")
    assert os.listdir(index / "shards") == [] and len(os.listdir(index / "batch" / "logs")) == 4


def served_soon(daemon, slide_id, timeout=60):
    """The daemon's slide list once it holds `slide_id` (polled), else the last list seen."""
    deadline = time.time() + timeout
    while True:
        with HaliClient("127.0.0.1", daemon.port, TOKEN) as c:
            ids = [s.id for s in c.slides()]
        if slide_id in ids or time.time() > deadline:
            return ids
        time.sleep(0.3)


def test_a_running_daemon_serves_a_slide_indexed_while_it_runs(tmp_path_factory, batch_slides):
    daemon = RunningDaemon(tmp_path_factory, "--annotator", f"b:{TOKEN}", "--watch-index", "0.5")
    try:
        index = os.path.join(daemon.data_dir, "index")
        hali("batch", "task", str(batch_slides / "CMU-1-Small-Region-pyramid.tif"), "--index-dir", index, "--mpp", "0.499")
        assert "CMU-1-Small-Region-pyramid" in served_soon(daemon, "CMU-1-Small-Region-pyramid")
        with HaliClient("127.0.0.1", daemon.port, TOKEN) as c:
            c.open_session("CMU-1-Small-Region-pyramid", "til")
            assert len(c.get_patch(0, 0, 1000, 1000).cells) > 100
            c.label(1, c.get_patch(0, 0, 1000, 1000).cells[0].id, "other")
        status = hali("status", "--server", daemon.address, "--token", TOKEN).stdout
        assert "served        CMU-1-Small-Region, CMU-1-Small-Region-pyramid" in status, status
    finally:
        assert daemon.stop() == 0


def test_sighup_serves_what_a_slurm_batch_indexed_and_status_names_the_failure(slurm, tmp_path_factory, batch_slides):
    daemon = RunningDaemon(tmp_path_factory, "--annotator", f"b:{TOKEN}")
    try:
        index = os.path.join(daemon.data_dir, "index")
        os.remove(batch_slides / "CMU-1-Small-Region.svs")  # the daemon serves it already
        run = hali("batch", "submit", str(batch_slides), "--index-dir", index, "--mpp", "0.499", "--mem", "1G", "--wait",
                   env=slurm, check=False)
        assert run.returncode == 2 and "1 current, 1 failed" in run.stdout, run.stdout + run.stderr
        time.sleep(1)
        assert served_soon(daemon, "CMU-1-Small-Region-pyramid", timeout=0) == ["CMU-1-Small-Region"]  # not before SIGHUP
        daemon.proc.send_signal(signal.SIGHUP)
        assert "CMU-1-Small-Region-pyramid" in served_soon(daemon, "CMU-1-Small-Region-pyramid")
        status = hali("status", "--server", daemon.address, "--token", TOKEN).stdout
        assert "broken scan.svs: batch task failed: " in status and "not a slide OpenSlide can read" in status, status
    finally:
        assert daemon.stop() == 0
