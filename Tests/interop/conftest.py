"""Shared by the interop tests: start a real halid on a free loopback port and stop it afterwards."""
import os
import socket
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLIDE = os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningDaemon:
    def __init__(self, tmp_path_factory, *arguments):
        halid = os.environ.get("HALID", os.path.join(ROOT, ".build", "debug", "halid"))
        if not os.path.exists(halid):
            pytest.fail(f"{halid} not built: run swift build first")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = open(tmp_path_factory.mktemp("halid") / "halid.log", "w+")
        self.data_dir = str(tmp_path_factory.mktemp("data"))
        self.proc = subprocess.Popen(
            [halid, "--listen", self.address, "--slide", SLIDE, "--data-dir", self.data_dir, *arguments],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240  # a fresh data directory: the daemon ingests the slide before listening
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    self.log.seek(0)
                    pytest.fail("halid exited: " + self.log.read())
                time.sleep(0.1)
        pytest.fail("halid did not start listening within 240 s")

    def log_text(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self) -> int:
        self.proc.terminate()
        status = self.proc.wait(timeout=10)
        self.log.close()
        return status
