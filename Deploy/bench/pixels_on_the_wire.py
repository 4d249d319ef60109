#!/usr/bin/env python3
"""Pixels on the wire: how long a 1,024 x 1,024 patch takes to reach a client over a 10 Mbit/s link.

Starts a release halid on CMU-1-Small-Region, puts a throttling TCP relay in front of it (daemon -> client limited
to --mbit, token bucket, 16 KiB chunks; client -> daemon unlimited), and times GetPatch request -> whole Patch frame
received for RGB8 and for JPEG at a few qualities. Each run asks for a region not asked before (cache cold) and
then the same region again (cache warm). Prints medians over --runs and the ratio against RGB8 measured in the
same run.

    python3 Deploy/bench/pixels_on_the_wire.py [--runs 5] [--mbit 10]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
from hali_client import HaliClient, pb  # noqa: E402

SLIDE = os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrottledRelay:
    """Accepts one client at a time on `port` and relays to the daemon; daemon -> client at `rate` bytes/s."""

    def __init__(self, upstream_port, rate):
        self.rate = rate
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, self.rate), daemon=True).start()

    @staticmethod
    def pump(source, target, rate):
        sent_at = time.monotonic()  # when the link is free again
        try:
            while True:
                chunk = source.recv(16384)
                if not chunk:
                    break
                if rate:
                    now = time.monotonic()
                    start = max(now, sent_at)
                    sent_at = start + len(chunk) / rate
                    if sent_at > now:
                        time.sleep(sent_at - now)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, target):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mbit", type=float, default=10)
    parser.add_argument("--halid", default=os.environ.get("HALID", os.path.join(ROOT, ".build", "release", "halid")))
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="hali-wire-bench-")
    port = free_port()
    token = "wire-bench"
    daemon = subprocess.Popen(
        [args.halid, "--listen", f"127.0.0.1:{port}", "--slide", SLIDE, "--data-dir", data, "--annotator", f"bench:{token}",
         "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if daemon.poll() is not None or time.time() > deadline:
                    sys.exit("halid did not start")
                time.sleep(0.2)
        relay = ThrottledRelay(port, args.mbit * 1e6 / 8)
        formats = [("RGB8", 0, 0), ("JPEG q95", pb.PIXEL_FORMAT_JPEG, 95), ("JPEG q85", pb.PIXEL_FORMAT_JPEG, 85),
                   ("JPEG q70", pb.PIXEL_FORMAT_JPEG, 70)]
        results = {name: {"cold": [], "warm": [], "bytes": []} for name, _, _ in formats}
        with HaliClient("127.0.0.1", relay.port, token, timeout=60) as c:
            c.open_session("CMU-1-Small-Region", "til")
            for run in range(args.runs):
                for k, (name, fmt, quality) in enumerate(formats):
                    # A region no earlier request read: tiles of 1,024 across the 2,220 x 2,967 slide.
                    x = 64 * ((run * len(formats) + k) % 18)
                    y = 32 * ((run * len(formats) + k) % 60)
                    for temperature in ("cold", "warm"):
                        start = time.perf_counter()
                        patch = c.get_patch(x, y, 1024, 1024, pixels=True, pixel_format=fmt, jpeg_quality=quality)
                        results[name][temperature].append(time.perf_counter() - start)
                    assert (patch.width, patch.height) == (1024, 1024)
                    results[name]["bytes"].append(len(patch.pixels))
        base = statistics.median(results["RGB8"]["cold"])
        print(f"1,024 x 1,024 patch at level 0 over {args.mbit:g} Mbit/s (daemon -> client), medians of {args.runs} runs")
        print(f"{'format':10} {'bytes':>10} {'cold s':>8} {'warm s':>8} {'cold vs RGB8':>13}")
        for name, _, _ in formats:
            r = results[name]
            cold, warm = statistics.median(r["cold"]), statistics.median(r["warm"])
            print(f"{name:10} {int(statistics.median(r['bytes'])):>10,} {cold:>8.3f} {warm:>8.3f} {cold / base:>12.2f}x")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


if __name__ == "__main__":
    main()
