"""The terminal client `hali label` in a pseudo-terminal (80x24) against a real halid.

The daemon serves OpenSlide's CMU-1-Small-Region slide (ingested by the daemon on first use) with the `til` task;
pty_label.py types keys and asserts on the screen as a terminal shows it: the patch with cell boxes, a label, its
acknowledgement, undo, navigation, next patch. A second test runs the same client against pty_label.py's scripted
daemon to check the reconnect path (a label swallowed by a dropped connection is resent with the same client_seq).
"""
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))
import pty_label  # noqa: E402
from conftest import RunningDaemon  # noqa: E402

TOKEN = "terminal-test-token"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = RunningDaemon(tmp_path_factory, "--annotator", f"tui:{TOKEN}")
    yield running.address
    running.stop()


def test_label_client_against_halid(daemon, monkeypatch):
    monkeypatch.setenv("HALI_SERVER", daemon)
    monkeypatch.setenv("HALI_TOKEN", TOKEN)
    monkeypatch.setenv("HALI_SLIDE", "CMU-1-Small-Region")
    monkeypatch.setenv("HALI_TASK", "til")
    monkeypatch.setenv("HALI_BIN", os.environ.get("HALI_BIN", os.path.join(ROOT, ".build", "debug", "hali")))
    pty_label.run_real()


def test_label_client_resends_after_a_dropped_connection(monkeypatch):
    monkeypatch.setenv("HALI_BIN", os.environ.get("HALI_BIN", os.path.join(ROOT, ".build", "debug", "hali")))
    pty_label.run_fake()
