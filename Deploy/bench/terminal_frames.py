#!/usr/bin/env python3
"""Keystroke -> frame written, for `hali label` in a 1,920 x 1,080 px window, per graphics protocol.

    python3 Deploy/bench/terminal_frames.py [--keys 200] [--protocols sixel,kitty,blocks]

Starts halid (release build) on CMU-1-Small-Region with a fresh data directory, then for each protocol runs
`hali label --graphics P` in a pseudo-terminal whose size is 192 x 54 cells and 1,920 x 1,080 pixels (10 x 20 px
cells, set with TIOCSWINSZ, so the client sizes its picture as in such a window). After the first picture it presses
arrow keys (the selection moves: the picture's overlay changes) and times each key from the write to the end of the
frame it causes (every frame ends with an attribute reset, and no byte follows for 3 ms), counting its bytes.
Prints p50 / p95 / max latency and median / max bytes per frame. A pseudo-terminal has no terminal emulator
parsing the bytes: this measures the client (compose, diff, encode, write), not the drawing.
"""
import argparse
import fcntl
import os
import pty
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLIDE = os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs")
END = b"\x1b[0m"


def release_bin() -> str:
    return subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_frame(fd, timeout=10.0) -> bytes:
    """The bytes of one frame: read until they end with the attribute reset and nothing follows for 3 ms."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        data += chunk
        if data.endswith(END) and not select.select([fd], [], [], 0.003)[0]:
            return data
    raise TimeoutError(f"no complete frame ({len(data)} bytes)")


def run(bin_dir, address, token, protocol, keys):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(HALI_SERVER=address, HALI_TOKEN=token, TERM="xterm-256color", COLORTERM="truecolor")
        os.execv(os.path.join(bin_dir, "hali"),
                 ["hali", "label", "--graphics", protocol, "CMU-1-Small-Region", "til"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 54, 192, 1920, 1080))
    # Wait for the first picture (the patch arrives after the session opens).
    start = time.monotonic()
    seen = b""
    marker = {"sixel": b"\x1bP", "kitty": b"\x1b_G", "iterm": b"\x1b]1337", "blocks": "▀".encode()}[protocol]
    while marker not in seen:
        if time.monotonic() - start > 120:
            raise TimeoutError("no picture within 120 s")
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            seen += os.read(fd, 1 << 20)
    time.sleep(1.0)
    while select.select([fd], [], [], 0.2)[0]:
        os.read(fd, 1 << 20)
    pattern = [b"\x1b[C", b"\x1b[B", b"\x1b[D", b"\x1b[A"]
    latencies, sizes = [], []
    for i in range(keys):
        t0 = time.perf_counter()
        os.write(fd, pattern[i % 4])
        frame = read_frame(fd)
        latencies.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(frame))
    os.write(fd, b"q")
    time.sleep(0.5)
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    latencies.sort()
    p95 = latencies[int(round(0.95 * (len(latencies) - 1)))]
    print(f"{protocol:7s} keys {keys}: latency p50 {statistics.median(latencies):6.1f} ms  p95 {p95:6.1f} ms  "
          f"max {latencies[-1]:6.1f} ms;  bytes/frame median {int(statistics.median(sizes)):>8,}  max {max(sizes):>9,}  "
          f"(first picture {len(seen):,} bytes)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--protocols", default="sixel,kitty,iterm,blocks")
    args = parser.parse_args()
    bin_dir = release_bin()
    port = free_port()
    token = "frames-token"
    with tempfile.TemporaryDirectory() as data:
        log = open(os.path.join(data, "halid.log"), "w+")
        daemon = subprocess.Popen([os.path.join(bin_dir, "halid"), "--listen", f"127.0.0.1:{port}", "--slide", SLIDE,
                                   "--data-dir", data, "--annotator", f"frames:{token}"], stdout=log, stderr=log)
        try:
            deadline = time.time() + 300
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            print(f"hali label in a 192x54-cell, 1920x1080-px pseudo-terminal; halid on 127.0.0.1:{port}")
            for protocol in args.protocols.split(","):
                run(bin_dir, f"127.0.0.1:{port}", token, protocol, args.keys)
        finally:
            daemon.terminate()
            daemon.wait()


if __name__ == "__main__":
    sys.exit(main())
