"""Interop: Google's protobuf runtime (Python) against a running halid.

Starts the built daemon (HALID, default .build/debug/halid) on a free loopback port with a real slide, then
talks to it through Deploy/clients/python/hali_client.py. Run with: python3 -m pytest -q Tests/interop
"""
import os
import struct
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
import hali_client  # noqa: E402
from hali_client import HaliClient, HaliError, pb  # noqa: E402
from conftest import RunningDaemon  # noqa: E402

TOKEN = "python-interop-token"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = RunningDaemon(tmp_path_factory, "--annotator", f"py:{TOKEN}", "--max-frame-bytes", "65536")
    yield running.port
    assert running.stop() == 0, "halid did not shut down cleanly on SIGTERM"


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


def test_label_and_export_from_python(daemon):
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        state = c.open_session("CMU-1-Small-Region", "til")
        assert [k.name for k in state.classes] == ["inflammatory", "other"]
        patch = c.get_patch(900, 1200, 400, 400)
        cells = [cell.id for cell in patch.cells][:3]
        assert len(cells) == 3
        for seq, cell in enumerate(cells, start=1):
            ack = c.label(seq, cell, "other")
            assert ack.durable and ack.client_seq == seq
        exported = c.export("csv")
        lines = exported.data.decode().strip().splitlines()
        assert exported.cells == 3 and len(lines) == 4, lines
        assert lines[0].startswith("x,y,class")
