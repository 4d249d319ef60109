"""Interop: Google's protobuf runtime (Python) against a running halid.

Starts the built daemon (HALID, default .build/debug/halid) on a free loopback port with a real slide, then
talks to it through Deploy/clients/python/hali_client.py. Run with: python3 -m pytest -q Tests/interop
"""
import os
import struct
import time
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


def test_jpeg_pixels_decode_with_pillow_to_the_raw_ones(daemon):
    """The daemon's JPEG read by an independent decoder (Pillow's libjpeg) equals its RGB8 within JPEG's loss."""
    io = pytest.importorskip("io")
    image_module = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        c.open_session("CMU-1-Small-Region", "til")
        raw = c.get_patch(600, 800, 160, 120, pixels=True)
        jpeg = c.get_patch(600, 800, 160, 120, pixels=True, pixel_format=pb.PIXEL_FORMAT_JPEG, jpeg_quality=90)
        assert raw.pixel_format == pb.PIXEL_FORMAT_RGB8 and jpeg.pixel_format == pb.PIXEL_FORMAT_JPEG
        assert (jpeg.width, jpeg.height) == (160, 120) and len(jpeg.pixels) * 4 < len(raw.pixels)
        decoded = np.asarray(image_module.open(io.BytesIO(jpeg.pixels)).convert("RGB"), dtype=np.float64)
        exact = np.frombuffer(raw.pixels, dtype=np.uint8).reshape(120, 160, 3).astype(np.float64)
        psnr = 10 * np.log10(255.0 ** 2 / np.mean((decoded - exact) ** 2))
        assert psnr > 30, psnr
        with pytest.raises(HaliError, match="jpeg_quality"):
            c.get_patch(600, 800, 16, 16, pixels=True, pixel_format=pb.PIXEL_FORMAT_JPEG, jpeg_quality=101)


def test_gallery_pages_least_confident_first_and_labels_leave_it(daemon):
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        c.open_session("CMU-1-Small-Region", "tumour")
        assert "gallery" in c.welcome.capabilities and "jpeg" in c.welcome.capabilities
        before = c.gallery("epithelial")
        assert before.model_version == 0 and len(before.crops) == 0  # no model yet
        cells = sorted(c.get_patch(0, 0, 2220, 2967).cells, key=lambda cell: cell.area_um2)
        # Area alone separates them, so the model's suggestions split too. 23 labels: the daemon fits at 20 and next at
        # 25, so the one label this test adds below (the 24th) cannot change the model between the two pages compared.
        small, large = cells[:11], cells[-12:]
        seq = 1
        for group, name in ((small, "other"), (large, "epithelial")):
            for cell in group:
                c.label(seq, cell.id, name)
                seq += 1
        deadline = time.time() + 60
        page = before
        while time.time() < deadline and (page.model_version == 0 or len(page.crops) == 0):
            time.sleep(0.2)
            page = c.gallery("epithelial", max_cells=6, crop_um=24, pixel_format=pb.PIXEL_FORMAT_JPEG)
        assert page.model_version > 0 and len(page.crops) == 6, page
        confidences = []
        for crop, cell_id in zip(page.crops, page.cell_ids):
            assert crop.pixel_format == pb.PIXEL_FORMAT_JPEG and crop.pixels[:2] == b"\xff\xd8"
            centre = next(cell for cell in crop.cells if cell.id == cell_id)
            assert centre.suggestion.class_name == "epithelial" and not centre.HasField("label")
            confidences.append(centre.suggestion.confidence)
        assert confidences == sorted(confidences), confidences
        c.label(seq, page.cell_ids[0], "epithelial", source=pb.LABEL_SOURCE_ACCEPTED_SUGGESTION)
        after = c.gallery("epithelial", max_cells=6, crop_um=24)
        assert after.model_version == page.model_version
        assert page.cell_ids[0] not in after.cell_ids and after.total == page.total - 1
        with pytest.raises(HaliError, match="not in task"):
            c.gallery("mitosis")


def test_cell_picks_come_from_the_learner_and_leave_skipped_and_labelled_cells_out(daemon):
    with HaliClient("127.0.0.1", daemon, TOKEN) as c:
        c.open_session("CMU-1-Small-Region", "ki67")  # a session no other test labels in
        assert "cell_picks" in c.welcome.capabilities
        # No model yet: the default (margin) picks by typicality.
        first = c.cell_picks(max_cells=6, crop_um=24, pixel_format=pb.PIXEL_FORMAT_JPEG, contours=True)
        assert first.pick_strategy == pb.CELL_PICK_STRATEGY_TYPICLUST and first.model_version == 0
        assert first.class_name == "" and len(first.cell_ids) == 6 == len(set(first.cell_ids)) == len(first.crops)
        for crop, cell_id in zip(first.crops, first.cell_ids):
            assert crop.pixels[:2] == b"\xff\xd8" and crop.width == crop.height
            centre = next(cell for cell in crop.cells if cell.id == cell_id)
            assert len(centre.contour) >= 6 and not centre.HasField("suggestion")
        coreset = c.cell_picks(max_cells=4, strategy=pb.CELL_PICK_STRATEGY_CORESET)
        assert coreset.pick_strategy == pb.CELL_PICK_STRATEGY_CORESET and len(coreset.cell_ids) == 4
        skipping = c.cell_picks(max_cells=4, strategy=pb.CELL_PICK_STRATEGY_CORESET, skip=coreset.cell_ids[:2])
        assert not set(skipping.cell_ids) & set(coreset.cell_ids[:2])
        c.label(1, coreset.cell_ids[0], "negative")
        after = c.cell_picks(max_cells=4, strategy=pb.CELL_PICK_STRATEGY_CORESET)
        assert coreset.cell_ids[0] not in after.cell_ids and after.total == first.total - 1
        for bad, message in (({"max_cells": 65}, "max_cells"), ({"skip": [0]}, "does not exist"), ({"crop_um": 500}, "crop_um")):
            with pytest.raises(HaliError, match=message):
                c.cell_picks(**bad)
        assert c.ping() < 1.0  # refused requests leave the connection serving
