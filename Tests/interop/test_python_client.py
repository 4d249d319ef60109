"""Interop: Google's protobuf runtime (Python) against a running halid.

Starts the built daemon (HALID, default .build/debug/halid) on a free loopback port with a real slide, then
talks to it through Deploy/clients/python/hali_client.py. Run with: python3 -m pytest -q Tests/interop
"""
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
import hali_client  # noqa: E402
from hali_client import HaliClient, HaliError, pb  # noqa: E402

TOKEN = "python-interop-token"
SLIDE = os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    halid = os.environ.get("HALID", os.path.join(ROOT, ".build", "debug", "halid"))
    if not os.path.exists(halid):
        pytest.fail(f"{halid} not built: run swift build first")
    port = free_port()
    log = open(tmp_path_factory.mktemp("halid") / "halid.log", "w+")
    proc = subprocess.Popen(
        [halid, "--listen", f"127.0.0.1:{port}", "--annotator", f"py:{TOKEN}", "--slide", SLIDE,
         "--max-frame-bytes", "65536", "--data-dir", str(tmp_path_factory.mktemp("data"))],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail("halid exited: " + log.read())
            time.sleep(0.05)
    yield port
    proc.terminate()
    assert proc.wait(timeout=10) == 0, "halid did not shut down cleanly on SIGTERM"
    log.close()


def test_handshake_ping_status_slides(daemon):
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        assert c.welcome.annotator == "py"
        assert c.welcome.protocol_version == hali_client.PROTOCOL_VERSION
        assert "ping" in c.welcome.capabilities
        assert c.welcome.max_frame_bytes == 65536
        rtts = [c.ping() for _ in range(50)]
        assert max(rtts) < 1.0
        status = c.status()
        assert status.server_version and status.connections >= 1
        slides = c.slides()
        assert [s.id for s in slides] == ["CMU-1-Small-Region"]
        assert (slides[0].width, slides[0].height) == (2220, 2967)
        assert abs(slides[0].mpp_x - 0.499) < 1e-3


def test_wrong_token_is_refused(daemon):
    with pytest.raises(HaliError) as info:
        HaliClient("127.0.0.1", daemon, "not-the-token")
    assert info.value.error.code == pb.ERROR_CODE_UNAUTHENTICATED
    assert info.value.error.fatal


def test_oversized_frame_is_refused(daemon):
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        c.send_raw(struct.pack(">I", 1 << 20))  # 1 MiB claimed, limit is 64 KiB
        reply = c.receive()
        assert reply.error.code == pb.ERROR_CODE_FRAME_TOO_LARGE and reply.error.fatal


def test_garbage_body_gets_an_error_and_the_connection_lives_on(daemon):
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        c.send_raw(struct.pack(">I", 3) + b"\x52\x7f\x01")
        reply = c.receive()
        assert reply.error.code == pb.ERROR_CODE_MALFORMED_FRAME and not reply.error.fatal
        assert c.ping() < 1.0
