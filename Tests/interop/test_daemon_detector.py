"""halid --detector-weights: a slide the daemon ingests at start-up is indexed by the learned detector; weights that
cannot be read leave that slide out with the reason in the log, and the daemon still serves."""
import os
import re
import subprocess

from conftest import ROOT, RunningDaemon

HALI = os.environ.get("HALI", os.path.join(ROOT, ".build", "debug", "hali"))
WEIGHTS = os.path.join(ROOT, "Deploy", "models", "hali-detector-fast-v2.safetensors")


def test_startup_ingest_uses_the_learned_detector(tmp_path_factory):
    daemon = RunningDaemon(tmp_path_factory, "--detector-weights", WEIGHTS)
    try:
        index = os.path.join(daemon.data_dir, "index", "CMU-1-Small-Region.hidx")
        out = subprocess.run([HALI, "cells", index], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert re.search(r"^source\s+hali-learned,", out.stdout, re.M), out.stdout
        # The same count as `hali ingest --detector-weights` (docs/detector.md: 2,223 nuclei on this slide).
        assert int(re.search(r"^cells\s+(\d+)", out.stdout, re.M).group(1)) == 2223
    finally:
        assert daemon.stop() == 0


def test_unreadable_detector_weights_leave_the_slide_out(tmp_path_factory):
    daemon = RunningDaemon(tmp_path_factory, "--detector-weights", "/nonexistent/detector.safetensors")
    try:
        log = daemon.log_text()
        assert "slide not served" in log and "cannot read detector weights /nonexistent/detector.safetensors" in log, log
        assert not os.path.exists(os.path.join(daemon.data_dir, "index", "CMU-1-Small-Region.hidx"))
    finally:
        assert daemon.stop() == 0
