"""halid's resident memory across large GetPatch replies: does it grow, and what holds it.

    python3 Deploy/bench/rss_large_replies.py [--halid .build/release/halid] [--slide ../shared/data/slides/CMU-1-Small-Region.svs]

Starts halid on the slide (its index is built on the first run and reused, so the second run starts without the
ingest's memory), asks for one 512x512 patch and then ten whole-slide patches with pixels, and prints VmRSS after
each step. Run it with MALLOC_ARENA_MAX=1 in the environment to see how much of it is glibc's per-thread arenas."""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
from hali_client import HaliClient  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--halid", default=os.path.join(ROOT, ".build", "release", "halid"))
parser.add_argument("--slide", default=os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs"))
parser.add_argument("--data", default="/tmp/hali-rss-data")
parser.add_argument("--fresh", action="store_true", help="remove the data directory first (the start then ingests)")
args = parser.parse_args()
if args.fresh:
    shutil.rmtree(args.data, ignore_errors=True)
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
daemon = subprocess.Popen([args.halid, "--listen", f"127.0.0.1:{port}", "--data-dir", args.data, "--annotator", "a:tok",
                           "--slide", args.slide, "--log-level", "error"])


def rss():
    with open(f"/proc/{daemon.pid}/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


def report(what):
    time.sleep(1.5)  # the daemon trims malloc's free memory at most once a second after a large reply
    print(f"{what:<45} {rss():>5} MiB", flush=True)


try:
    for _ in range(900):
        try:
            client = HaliClient("127.0.0.1", port, "tok")
            break
        except OSError:
            time.sleep(0.2)
    report("listening")
    slide_id = os.path.splitext(os.path.basename(args.slide))[0]
    session = client.open_session(slide_id, "til")
    report("session open")
    client.get_patch(0, 0, 512, 512, pixels=True)
    report("one 512x512 patch")
    width, height = session.slide.width, session.slide.height
    for n in range(1, 11):
        client.get_patch(0, 0, width, height, pixels=True)
        if n in (1, 2, 5, 10):
            report(f"after {n} whole-slide patches ({width * height * 3 / 1e6:.1f} MB each)")
    client.close()
    report("client gone")
finally:
    daemon.terminate()
    daemon.wait()
