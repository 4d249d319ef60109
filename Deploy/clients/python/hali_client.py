"""A minimal HALI protocol v1 client in Python: proof that other viewers can integrate.

It speaks the same wire format as the Swift client: each frame is a 4-byte big-endian length followed by one
serialized ``hali.v1.Envelope`` (see docs/protocol.md). The message classes come from ``Proto/hali.proto``
compiled with ``protoc --python_out`` (Debian's protobuf-compiler) and Google's protobuf runtime from PyPI.

    from hali_client import HaliClient
    with HaliClient("127.0.0.1", 7070, token="...") as c:
        print(c.welcome.server_version, c.ping())
"""
from __future__ import annotations

import importlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROTO_DIR = os.path.join(_ROOT, "Proto")


def load_messages(proto_dir: str = PROTO_DIR):
    """Compiles hali.proto with protoc into a temporary folder and imports the generated module."""
    out = tempfile.mkdtemp(prefix="hali-pb2-")
    subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={out}", os.path.join(proto_dir, "hali.proto")], check=True)
    sys.path.insert(0, out)
    try:
        return importlib.import_module("hali_pb2")
    finally:
        sys.path.remove(out)


pb = load_messages()
PROTOCOL_VERSION = 1


class HaliError(Exception):
    """The daemon answered with an Error message."""

    def __init__(self, error):
        super().__init__(f"{pb.ErrorCode.Name(error.code)}: {error.message}")
        self.error = error


class HaliClient:
    def __init__(self, host: str, port: int, token: str, client_name: str = "hali-python", timeout: float = 10.0,
                 tls: bool = False, tls_ca: str = None):
        """tls / tls_ca: speak TLS (a daemon started with --tls-cert/--tls-key), verifying its certificate and host
        name against tls_ca (a PEM file: the lab's CA or the daemon's self-signed certificate) or the system's roots."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls or tls_ca:
            context = ssl.create_default_context(cafile=tls_ca)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self._next_id = 1
        reply = self.request(pb.Envelope(hello=pb.Hello(protocol_version=PROTOCOL_VERSION, client_name=client_name,
                                                        client_version="0.1", token=token)))
        self.welcome = reply.welcome

    # -- framing ---------------------------------------------------------------------------------------------------
    def send(self, envelope) -> None:
        body = envelope.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_exactly(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        (length,) = struct.unpack(">I", self._read_exactly(4))
        envelope = pb.Envelope()
        envelope.ParseFromString(self._read_exactly(length))
        return envelope

    def request(self, envelope):
        envelope.request_id = self._next_id
        self._next_id += 1
        self.send(envelope)
        while True:
            reply = self.receive()
            if reply.WhichOneof("body") == "error" and (reply.request_id == envelope.request_id or reply.error.fatal):
                raise HaliError(reply.error)
            if reply.request_id == envelope.request_id:
                return reply

    # -- calls -----------------------------------------------------------------------------------------------------
    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        reply = self.request(pb.Envelope(ping=pb.Ping(nonce=self._next_id, client_time_ns=time.time_ns())))
        assert reply.WhichOneof("body") == "pong"
        return time.perf_counter() - start

    def status(self):
        return self.request(pb.Envelope(get_status=pb.GetStatus())).server_status

    def slides(self):
        return list(self.request(pb.Envelope(list_slides=pb.ListSlides())).slide_list.slides)

    def open_session(self, slide_id: str, task: str):
        return self.request(pb.Envelope(open_session=pb.OpenSession(slide_id=slide_id, task=task))).session_state

    def get_patch(self, x: int, y: int, width: int, height: int, level: int = 0, pixels: bool = False,
                  pixel_format: int = 0, jpeg_quality: int = 0, contours: bool = False):
        """pixel_format: pb.PIXEL_FORMAT_JPEG for a JFIF file in Patch.pixels (daemons 0.2.0 on; check
        Patch.pixel_format, an older daemon answers RGB8)."""
        region = pb.Region(x=x, y=y, width=width, height=height)
        request = pb.GetPatch(region=region, level=level, include_pixels=pixels, include_contours=contours,
                              pixel_format=pixel_format, jpeg_quality=jpeg_quality)
        return self.request(pb.Envelope(get_patch=request)).patch

    def gallery(self, class_name: str, max_cells: int = 0, offset: int = 0, most_confident: bool = False,
                crop_um: float = 0, pixel_format: int = 0, contours: bool = False):
        """A page of the review gallery: unlabelled cells the model suggests as class_name, as crops."""
        order = pb.GALLERY_ORDER_MOST_CONFIDENT if most_confident else pb.GALLERY_ORDER_LEAST_CONFIDENT
        request = pb.GetGallery(class_name=class_name, max_cells=max_cells, offset=offset, order=order, crop_um=crop_um,
                                pixel_format=pixel_format, include_contours=contours)
        return self.request(pb.Envelope(get_gallery=request)).gallery

    def cell_picks(self, max_cells: int = 0, strategy: int = 0, crop_um: float = 0, pixel_format: int = 0,
                   contours: bool = False, skip=()):
        """The learner's next cells to label (a Gallery whose pick_strategy says how they were chosen)."""
        request = pb.GetCellPicks(max_cells=max_cells, strategy=strategy, crop_um=crop_um, pixel_format=pixel_format,
                                  include_contours=contours, skip_cell_ids=list(skip))
        return self.request(pb.Envelope(get_cell_picks=request)).gallery

    def label(self, client_seq: int, cell_id: int, class_name: str, source=None):
        """Sends a LabelEvent and returns its LabelAck (raises HaliError on refusal)."""
        event = pb.LabelEvent(client_seq=client_seq, cell_id=cell_id, class_name=class_name,
                              source=source if source is not None else pb.LABEL_SOURCE_MANUAL,
                              client_time_ms=int(time.time() * 1000))
        return self.request(pb.Envelope(label_event=event)).label_ack

    def next_patch(self):
        return self.request(pb.Envelope(next_patch=pb.NextPatch())).next_patch_pick

    def export(self, fmt: str, consensus: bool = False):
        """The open session's labels as a file (geojson, csv, asap, dsa, sliderunner): an ExportedFile message."""
        return self.request(pb.Envelope(export_request=pb.ExportRequest(format=fmt, consensus=consensus))).exported_file

    def close(self) -> None:
        try:
            self.send(pb.Envelope(bye=pb.Bye(reason="python client done")))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
