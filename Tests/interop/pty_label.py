#!/usr/bin/env python3
"""End-to-end test of the terminal client `hali label` in a pseudo-terminal.

Starts `hali label` in an 80x24 pty, types keys, and asserts on the screen as a terminal would show it (a small
VT emulator below interprets the client's escape sequences; pyte is used instead when it is installed).

Against a running daemon (sessions must work there):

    HALI_BIN=.build/debug/hali HALI_SERVER=127.0.0.1:7070 HALI_TOKEN=... \
    HALI_SLIDE=<slide id> HALI_TASK=til python3 Tests/interop/pty_label.py

Optional: HALI_CLASS_KEY (default: the first class key the client shows), HALI_TIMEOUT (seconds per wait,
default 20), HALI_COLOR (default truecolor), HALI_SCREEN_DUMP (write the last screen there).

Without a daemon, against a scripted fake daemon built in here (it also drops the connection once to check that
unacknowledged labels are resent with the same client_seq and stored once):

    HALI_BIN=.build/debug/hali python3 Tests/interop/pty_label.py --fake-daemon

Exit status 0 when every check passed; on failure the message says what was expected and the screen is printed.
Also runs under pytest (test_label_client_fake_daemon always; test_label_client_real_daemon when HALI_SERVER is set).
"""
from __future__ import annotations

import codecs
import os
import re
import socket
import struct
import sys
import threading
import time

import pexpect

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLS, ROWS = 80, 24
TIMEOUT = float(os.environ.get("HALI_TIMEOUT", "20"))


# ------------------------------------------------------------------------------------------------------------------
# A minimal VT100/xterm screen: enough for what hali label writes (CUP, ED, EL, SGR, private modes, UTF-8 text).
# ------------------------------------------------------------------------------------------------------------------
class Screen:
    def __init__(self, cols: int = COLS, rows: int = ROWS):
        self.cols, self.rows = cols, rows
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.alt_screen = False
        self.entered_alt = False
        self.left_alt = False
        self.raw = bytearray()
        self.clear()
        self.x = self.y = 0
        self.fg = self.bg = None

    def clear(self):
        self.chars = [[" "] * self.cols for _ in range(self.rows)]
        self.fgs = [[None] * self.cols for _ in range(self.rows)]
        self.bgs = [[None] * self.cols for _ in range(self.rows)]

    def feed(self, data: bytes):
        self.raw += data
        self.pending += self.decoder.decode(data)
        s = self.pending
        i = 0
        while i < len(s):
            ch = s[i]
            if ch == "\x1b":
                m = re.compile(r"\x1b\[([?0-9;]*)([@-~])").match(s, i)
                if m is None:
                    if len(s) - i < 256 and re.fullmatch(r"\x1b(\[[?0-9;]*)?", s[i:]):
                        break  # incomplete: wait for more
                    i += 1
                    continue
                self._csi(m.group(1), m.group(2))
                i = m.end()
            elif ch == "\r":
                self.x = 0
                i += 1
            elif ch == "\n":
                self.y = min(self.rows - 1, self.y + 1)
                i += 1
            elif ch == "\b":
                self.x = max(0, self.x - 1)
                i += 1
            elif ord(ch) < 0x20:
                i += 1
            else:
                if self.x >= self.cols:
                    self.x = 0
                    self.y = min(self.rows - 1, self.y + 1)
                self.chars[self.y][self.x] = ch
                self.fgs[self.y][self.x] = self.fg
                self.bgs[self.y][self.x] = self.bg
                self.x += 1
                i += 1
        self.pending = s[i:]

    def _csi(self, params: str, final: str):
        if params.startswith("?"):
            if params[1:] == "1049":
                if final == "h":
                    self.alt_screen = self.entered_alt = True
                    self.clear()
                elif final == "l":
                    self.alt_screen = False
                    self.left_alt = True
            return
        nums = [int(p) if p else 0 for p in params.split(";")] if params else []
        if final in "Hf":
            row = (nums[0] if len(nums) > 0 and nums[0] else 1) - 1
            col = (nums[1] if len(nums) > 1 and nums[1] else 1) - 1
            self.y, self.x = max(0, min(self.rows - 1, row)), max(0, min(self.cols - 1, col))
        elif final == "J":
            if (nums[0] if nums else 0) == 2:
                self.clear()
        elif final == "K":
            for x in range(self.x, self.cols):
                self.chars[self.y][x] = " "
        elif final == "m":
            self._sgr(nums or [0])

    def _sgr(self, nums):
        i = 0
        while i < len(nums):
            n = nums[i]
            if n == 0:
                self.fg = self.bg = None
            elif n in (38, 48) and i + 1 < len(nums):
                if nums[i + 1] == 2 and i + 4 < len(nums):
                    color = tuple(nums[i + 2:i + 5])
                    i += 4  # past 2;r;g;b
                elif nums[i + 1] == 5 and i + 2 < len(nums):
                    color = ("256", nums[i + 2])
                    i += 2  # past 5;n
                else:
                    color = None
                if n == 38:
                    self.fg = color
                else:
                    self.bg = color
            elif n == 39:
                self.fg = None
            elif n == 49:
                self.bg = None
            i += 1

    def line(self, y: int) -> str:
        return "".join(self.chars[y])

    def text(self) -> str:
        return "\n".join(self.line(y) for y in range(self.rows))

    def dump(self) -> str:
        border = "+" + "-" * self.cols + "+"
        return "\n".join([border] + ["|" + self.line(y) + "|" for y in range(self.rows)] + [border])

    def write_png(self, path: str, cell_w: int = 6, cell_h: int = 12):
        """The screen as a picture: half blocks as two pixel colours; other characters as a small block."""
        import zlib

        def rgb(c, default):
            if c is None:
                return default
            if c[0] == "256":
                return (128, 128, 128)
            return c

        w, h = self.cols * cell_w, self.rows * cell_h
        img = [[(0, 0, 0)] * w for _ in range(h)]
        for y in range(self.rows):
            for x in range(self.cols):
                ch = self.chars[y][x]
                fg, bg = rgb(self.fgs[y][x], (220, 220, 220)), rgb(self.bgs[y][x], (0, 0, 0))
                for py in range(cell_h):
                    for px in range(cell_w):
                        if ch == "\u2580":
                            c = fg if py < cell_h // 2 else bg
                        elif ch == "\u2588":
                            c = fg
                        elif ch != " " and 2 <= px < cell_w - 1 and 3 <= py < cell_h - 3:
                            c = fg
                        else:
                            c = bg
                        img[y * cell_h + py][x * cell_w + px] = c
        raw = b"".join(b"\x00" + bytes(v for p in row for v in p) for row in img)

        def chunk(tag, data):
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------------------------------------
# Driving the client
# ------------------------------------------------------------------------------------------------------------------
class LabelSession:
    KEYS = {"up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D", "enter": "\r",
            "shift-right": "\x1b[1;2C", "shift-left": "\x1b[1;2D"}

    def __init__(self, hali: str, server: str, token: str, slide: str, task: str, color: str = "truecolor",
                 extra_args=()):
        if not os.path.exists(hali):
            raise AssertionError(f"{hali} does not exist: build it first (swift build) or set HALI_BIN")
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        env.pop("NO_COLOR", None)
        args = ["label", "--server", server, "--token", token, "--color", color, *extra_args, slide, task]
        self.screen = Screen()
        self.child = pexpect.spawn(hali, args, dimensions=(ROWS, COLS), env=env, timeout=TIMEOUT)

    def pump(self, wait: float = 0.05):
        """Reads whatever the client wrote (up to `wait` seconds)."""
        try:
            while True:
                data = self.child.read_nonblocking(65536, timeout=wait)
                self.screen.feed(data)
                wait = 0.01
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            pass

    def wait_for(self, what: str, predicate, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            if predicate(self.screen):
                return
            if not self.child.isalive():
                self.pump()
                if predicate(self.screen):
                    return
                self.fail(f"hali label exited (status {self.child.exitstatus}) while waiting for {what}")
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout:.0f}s waiting for {what}")

    def wait_text(self, text: str, timeout: float = TIMEOUT):
        self.wait_for(repr(text), lambda s: text in s.text(), timeout)

    def fail(self, message: str):
        dump = os.environ.get("HALI_SCREEN_DUMP")
        if dump:
            with open(dump, "w") as f:
                f.write(self.screen.text())
        tail = bytes(self.screen.raw[-400:])
        raise AssertionError(f"{message}\nscreen:\n{self.screen.dump()}\nlast output bytes: {tail!r}")

    def send(self, key: str):
        self.child.send(self.KEYS.get(key, key))
        time.sleep(0.05)

    def status(self) -> str:
        return self.screen.line(ROWS - 1)

    def header(self) -> str:
        return self.screen.line(0)

    def labels_done(self) -> int:
        m = re.search(r"labels (\d+)", self.status())
        if not m:
            self.fail("no 'labels N' on the status line")
        return int(m.group(1))

    def selected_cell(self):
        m = re.search(r"Cell (\d+)", self.screen.text())
        return int(m.group(1)) if m else None

    def first_class_key(self) -> str:
        """The key of the first class in the side panel (the row under "Classes")."""
        for y in range(1, ROWS - 2):
            col = self.screen.line(y).find("Classes")
            if col >= 0:
                m = re.match(r" (\S) ", self.screen.line(y + 1)[col:])
                if m:
                    return m.group(1)
        self.fail("no class list in the side panel")

    def quit(self):
        self.send("q")
        try:
            self.child.expect(pexpect.EOF, timeout=TIMEOUT)
        except pexpect.TIMEOUT:
            self.send("q")  # a second q quits even with labels unacknowledged
            try:
                self.child.expect(pexpect.EOF, timeout=5)
            except pexpect.TIMEOUT:
                self.fail("hali label did not exit after q")
        self.screen.feed(self.child.before or b"")
        self.child.close()
        if not self.screen.left_alt:
            raise AssertionError("hali label did not leave the alternate screen on exit (terminal not restored)")
        return self.child.exitstatus

    def close(self):
        if self.child.isalive():
            self.child.terminate(force=True)


def no_unacked(s: Screen) -> bool:
    return "unacked" not in s.line(ROWS - 1)


def run_common_checks(t: LabelSession, class_key: str | None = None):
    """The scenario that needs only a working daemon: connect, help, label, ack, undo, move, next patch."""
    t.wait_for("the status line to say connected", lambda s: "● connected" in s.line(ROWS - 1))
    t.wait_for("a patch in the header", lambda s: " patch " in s.line(0))
    assert t.screen.entered_alt, "the client did not switch to the alternate screen"
    assert len(t.screen.line(0)) == COLS

    # Help overlay opens and any key closes it.
    t.send("?")
    t.wait_text("accept all suggestions in view")
    t.send("z")
    t.wait_for("the help overlay to close", lambda s: "accept all suggestions in view" not in s.text())

    key = class_key or os.environ.get("HALI_CLASS_KEY") or t.first_class_key()
    before = t.labels_done()
    cell = t.selected_cell()
    if cell is None:
        t.fail("no cell selected in the patch (does it hold cells?)")
    t.send(key)
    t.wait_for(f"labels {before + 1} on the status line", lambda s: f"labels {before + 1} " in s.line(ROWS - 1))
    t.wait_for("the label to be acknowledged", no_unacked)

    # Undo takes it back, and selects that cell again.
    t.send("u")
    t.wait_for(f"labels {before} after undo", lambda s: f"labels {before} " in s.line(ROWS - 1))
    t.wait_for("the undo to be acknowledged", no_unacked)
    if t.selected_cell() != cell:
        t.fail(f"undo should select cell {cell} again")

    # Moving the selection.
    t.send("right")
    t.send("left")
    t.send("down")
    t.pump()

    # Next patch: the header changes to the daemon's pick (or at least its reason shows in the panel).
    header = t.header()
    t.send("n")
    t.wait_for("the next patch after n", lambda s: (s.line(0) != header or "Pick:" in s.text())
               and "asking for the next patch" not in s.text())


# ------------------------------------------------------------------------------------------------------------------
# A scripted fake daemon (protocol v1 over TCP), for running this script without halid sessions.
# ------------------------------------------------------------------------------------------------------------------
def load_pb():
    sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
    from hali_client import load_messages
    return load_messages(os.path.join(ROOT, "Proto"))


class FakeDaemon:
    def __init__(self):
        self.pb = load_pb()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.stored = {}          # client_seq -> LabelEvent or Undo
        self.received = []        # every client_seq received, in order, duplicates included
        self.blackhole = False    # swallow LabelEvents (neither store nor ack) while set
        self.connections = []
        self.patches = 0
        self.byes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def drop_connections(self):
        with self.lock:
            for c in self.connections:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.connections.clear()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_exact(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _send(self, conn, env):
        body = env.SerializeToString()
        conn.sendall(struct.pack(">I", len(body)) + body)

    def patch(self, region=None, patch_id=""):
        pb = self.pb
        self.patches += 1
        if region is None:
            region = pb.Region(x=4096 * self.patches, y=2048, width=256, height=256)
        w = h = 64
        px = bytearray()
        for y in range(h):
            for x in range(w):
                # pink H&E-like background with darker purple nuclei
                px += bytes((235, 190, 215))
        cells = []
        spots = [(16, 16, "tumour", None), (44, 20, None, "stroma"), (20, 46, None, "tumour"), (48, 48, None, None)]
        for i, (cx, cy, label, suggestion) in enumerate(spots):
            for y in range(cy - 5, cy + 6):
                for x in range(cx - 5, cx + 6):
                    if (x - cx) ** 2 + (y - cy) ** 2 <= 25:
                        o = (y * w + x) * 3
                        px[o:o + 3] = bytes((90, 50, 140))
            scale = region.width / w
            cell = pb.Cell(id=100 * self.patches + i, area_um2=50.0,
                           centroid=pb.Point(x=region.x + cx * scale, y=region.y + cy * scale),
                           bbox=pb.Region(x=int(region.x + (cx - 7) * scale), y=int(region.y + (cy - 7) * scale),
                                          width=int(14 * scale), height=int(14 * scale)))
            if label:
                cell.label.CopyFrom(pb.CellLabel(class_name=label, source=pb.LABEL_SOURCE_MANUAL, annotator="fake"))
            if suggestion:
                cell.suggestion.CopyFrom(pb.Suggestion(class_name=suggestion, confidence=0.8))
            cells.append(cell)
        return pb.Patch(patch_id=patch_id or f"fake-{self.patches}", region=region, level=0,
                        downsample=region.width / w, mpp=1.0, width=w, height=h,
                        pixel_format=pb.PIXEL_FORMAT_RGB8, pixels=bytes(px), cells=cells, model_version=2)

    def _serve(self, conn):
        pb = self.pb
        try:
            while True:
                (n,) = struct.unpack(">I", self._read_exact(conn, 4))
                env = pb.Envelope()
                env.ParseFromString(self._read_exact(conn, n))
                rid = env.request_id
                kind = env.WhichOneof("body")
                if kind == "hello":
                    self._send(conn, pb.Envelope(request_id=rid, welcome=pb.Welcome(
                        server_version="fake", protocol_version=1, annotator="fake",
                        capabilities=["ping", "labels"], max_frame_bytes=1 << 24, server_name="fake")))
                elif kind == "open_session":
                    with self.lock:
                        last = max([s for s in self.stored] or [0])
                        names = [e.DESCRIPTOR.name for e in self.stored.values()]
                        done = names.count("LabelEvent") - names.count("Undo")
                    self._send(conn, pb.Envelope(request_id=rid, session_state=pb.SessionState(
                        session_id="s", task=env.open_session.task, labels_done=max(0, done), model_version=2,
                        validation_accuracy=0.8125, last_acked_seq=last,
                        slide=pb.SlideInfo(id=env.open_session.slide_id, name="fake-slide", width=100000,
                                           height=100000, level_count=1),
                        classes=[pb.ClassDef(name="tumour", color="#f58231", key="1"),
                                 pb.ClassDef(name="stroma", color="#4363d8", key="2")])))
                elif kind == "get_patch":
                    gp = env.get_patch
                    region = gp.region if gp.WhichOneof("target") == "region" else None
                    self._send(conn, pb.Envelope(request_id=rid, patch=self.patch(region, gp.patch_id)))
                elif kind == "next_patch":
                    self._send(conn, pb.Envelope(request_id=rid, next_patch_pick=pb.NextPatchPick(
                        patch_id="", region=pb.Region(x=8192 * (self.patches + 1), y=4096, width=256, height=256),
                        strategy=pb.STRATEGY_CORESET, reason="holds 3 of the 20 Coreset picks", subset_cells=3,
                        cells_in_region=4)))
                elif kind in ("label_event", "undo"):
                    msg = getattr(env, kind)
                    with self.lock:
                        self.received.append(msg.client_seq)
                        if self.blackhole and kind == "label_event":
                            continue
                        if msg.client_seq not in self.stored:
                            copy = type(msg)()
                            copy.CopyFrom(msg)
                            self.stored[msg.client_seq] = copy
                    self._send(conn, pb.Envelope(request_id=rid, label_ack=pb.LabelAck(
                        client_seq=msg.client_seq, cell_id=msg.cell_id, durable=True, event_id=msg.client_seq,
                        server_time_ms=int(time.time() * 1000))))
                elif kind == "bye":
                    with self.lock:
                        self.byes += 1
                    return
                else:
                    self._send(conn, pb.Envelope(request_id=rid, error=pb.Error(
                        code=pb.ERROR_CODE_UNSUPPORTED_MESSAGE, message=kind or "empty")))
        except (EOFError, OSError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


def hali_binary() -> str:
    return os.environ.get("HALI_BIN", os.path.join(ROOT, ".build", "debug", "hali"))


def run_fake(png: str | None = None, capture: str | None = None) -> None:
    daemon = FakeDaemon()
    t = LabelSession(hali_binary(), daemon.address, "fake-token", "fake-slide", "tum",
                     color=os.environ.get("HALI_COLOR", "truecolor"))
    try:
        run_common_checks(t, class_key="1")
        pb = daemon.pb
        with daemon.lock:
            kinds = [e.DESCRIPTOR.name for _, e in sorted(daemon.stored.items())]
        assert kinds[:2] == ["LabelEvent", "Undo"], f"daemon stored {kinds}"

        t.wait_for("a selected cell in the panel", lambda s: "Cell " in s.text())
        if png:
            t.screen.write_png(png)
        if capture:
            with open(capture, "w") as f:
                f.write(t.screen.text())

        # Accept all: one event per suggested unlabelled cell in view.
        with daemon.lock:
            n_before = len(daemon.stored)
        t.send("A")
        t.wait_text("accepted 2 suggestion(s)")
        t.wait_for("the accepted labels to be acknowledged", no_unacked)
        with daemon.lock:
            new = [e for s, e in sorted(daemon.stored.items())][n_before:]
        assert [e.source for e in new] == [pb.LABEL_SOURCE_ACCEPTED_SUGGESTION] * 2, new
        assert all(e.model_version_shown == 2 for e in new), new

        # Dropped connection: a label the daemon swallowed is resent, with the same client_seq, after reconnecting.
        t.send("shift-right")  # pan: a fresh patch with unlabelled cells
        t.wait_for("the panned patch", lambda s: "(" in s.line(0))
        time.sleep(0.3)
        t.pump()
        daemon.blackhole = True
        before = t.labels_done()
        with daemon.lock:
            seen = len(daemon.received)
        t.send("2")
        t.wait_for("1 unacked label", lambda s: "1 unacked" in s.line(ROWS - 1))
        deadline = time.monotonic() + TIMEOUT
        while len(daemon.received) == seen:
            if time.monotonic() > deadline:
                t.fail("the fake daemon never received the label")
            time.sleep(0.05)
        with daemon.lock:
            swallowed = daemon.received[-1]
        daemon.blackhole = False
        daemon.drop_connections()
        t.wait_for("the client to notice the drop", lambda s: "offline" in s.line(ROWS - 1) or "connecting" in s.line(ROWS - 1))
        t.wait_for("the client to reconnect", lambda s: "● connected" in s.line(ROWS - 1), timeout=TIMEOUT)
        t.wait_for("the resent label to be acknowledged", no_unacked)
        with daemon.lock:
            assert daemon.received.count(swallowed) == 2, f"seq {swallowed} received {daemon.received}"
            assert swallowed in daemon.stored
        assert t.labels_done() == before + 1, t.status()
        status = t.quit()
        assert status == 0, f"exit status {status}"
        deadline = time.monotonic() + 5
        while daemon.byes == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.byes >= 1, "the client closed without Bye"
    except BaseException:
        t.close()
        raise


def run_real() -> None:
    needed = ["HALI_SERVER", "HALI_TOKEN", "HALI_SLIDE", "HALI_TASK"]
    missing = [k for k in needed if not os.environ.get(k)]
    if missing:
        raise AssertionError(f"set {', '.join(missing)} (and HALI_BIN) to run against a daemon, or pass --fake-daemon")
    env = os.environ
    t = LabelSession(hali_binary(), env["HALI_SERVER"], env["HALI_TOKEN"], env["HALI_SLIDE"], env["HALI_TASK"],
                     color=env.get("HALI_COLOR", "truecolor"))
    try:
        run_common_checks(t)
        dump = env.get("HALI_SCREEN_DUMP")
        if dump:  # the screen as the annotator last saw it, before quitting
            with open(dump, "w") as f:
                f.write(t.screen.text())
        status = t.quit()
        assert status == 0, f"exit status {status}"
    except BaseException:
        t.close()
        raise


if __name__ == "__main__":
    args = sys.argv[1:]
    png = args[args.index("--png") + 1] if "--png" in args else None
    capture = args[args.index("--capture") + 1] if "--capture" in args else None
    try:
        run_fake(png, capture) if "--fake-daemon" in args else run_real()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    print("1 passed, 0 failed")
