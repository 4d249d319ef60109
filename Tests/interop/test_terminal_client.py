"""The terminal client `hali label` in a pseudo-terminal (80x24) against a real halid.

The daemon serves OpenSlide's CMU-1-Small-Region slide (ingested by the daemon on first use) with the `til` task;
pty_label.py types keys and asserts on the screen as a terminal shows it: the patch with cell boxes, a label, its
acknowledgement, undo, navigation, next patch. A second test runs the same client against pty_label.py's scripted
daemon to check the reconnect path (a label swallowed by a dropped connection is resent with the same client_seq).
"""
import os
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))
import pty_label  # noqa: E402

SLIDE = os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs")
TOKEN = "terminal-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    halid = os.environ.get("HALID", os.path.join(ROOT, ".build", "debug", "halid"))
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    log = open(data / "halid.log", "w+")
    proc = subprocess.Popen([halid, "--listen", f"127.0.0.1:{port}", "--annotator", f"tui:{TOKEN}", "--slide", SLIDE,
                             "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240  # the first start ingests the slide
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail("halid exited: " + log.read())
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


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
