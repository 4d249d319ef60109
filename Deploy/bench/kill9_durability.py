#!/usr/bin/env python3
"""Durability under kill -9: every label the daemon acknowledged must be in the store after a restart.

Each trial: start halid on a slide (its index already built), connect the Python client, open a session and label
cells as fast as acknowledgements come back, then SIGKILL the daemon at a random moment (uniform in 0.2-1.5 s).
Restart it on the same data directory and check, through the protocol (SessionState.last_acked_seq and the labels
in a patch covering the slide) and directly in labels.sqlite, that every acknowledged client_seq is stored with the
class that was sent. The next trial continues the same session, so the store grows across trials.

Usage: python3 Deploy/bench/kill9_durability.py [--trials 20] [--halid .build/release/halid] [--slide PATH]
Prints one line per trial and a final "N passed, M failed".
"""
import argparse
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
from hali_client import HaliClient, HaliError  # noqa: E402

TOKEN = "durability-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(halid, port, slide, data):
    log = open(os.path.join(data, "halid.log"), "a")
    proc = subprocess.Popen([halid, "--listen", f"127.0.0.1:{port}", "--annotator", f"dur:{TOKEN}", "--slide", slide,
                             "--data-dir", data], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"halid exited with {proc.returncode}; see {data}/halid.log")
            time.sleep(0.05)
    raise SystemExit("halid did not start listening")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--halid", default=os.path.join(ROOT, ".build", "release", "halid"))
    ap.add_argument("--slide", default=os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs"))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    data = tempfile.mkdtemp(prefix="hali-kill9-")
    slide_id = os.path.splitext(os.path.basename(a.slide))[0]
    acked = {}  # client_seq -> (cell_id, class)
    seq = 0
    passed = failed = 0
    proc = start(a.halid, free_port(), a.slide, data)  # first start ingests the slide
    proc.kill()
    proc.wait()
    for trial in range(1, a.trials + 1):
        port = free_port()
        proc = start(a.halid, port, a.slide, data)
        c = HaliClient("127.0.0.1", port, TOKEN)
        state = c.open_session(slide_id, "ki67")
        n_cells = state.slide.cell_count
        kill_at = time.time() + rng.uniform(0.2, 1.5)
        sent_this_trial = 0
        killed = False
        try:
            while True:
                if not killed and time.time() >= kill_at:
                    os.kill(proc.pid, signal.SIGKILL)  # at a random moment, possibly mid-commit
                    killed = True
                seq += 1
                cell = rng.randint(1, n_cells)
                cls = rng.choice(["positive", "negative"])
                ack = c.label(seq, cell, cls)
                if ack.durable and ack.client_seq == seq:
                    acked[seq] = (cell, cls)
                    sent_this_trial += 1
        except (ConnectionError, OSError, HaliError):
            pass
        proc.wait()
        # Restart and check.
        port = free_port()
        proc = start(a.halid, port, a.slide, data)
        c = HaliClient("127.0.0.1", port, TOKEN)
        state = c.open_session(slide_id, "ki67")
        db = sqlite3.connect(os.path.join(data, "labels.sqlite"))
        stored = {row[0]: (row[1], row[2]) for row in db.execute(
            "SELECT client_seq, cell_id, class FROM label_events WHERE annotator = 'dur' AND task = 'ki67'")}
        db.close()
        missing = [s for s, v in acked.items() if stored.get(s) != v]
        ok = not missing and state.last_acked_seq >= max(acked, default=0)
        passed += ok
        failed += not ok
        print(f"trial {trial:2d}: {sent_this_trial:4d} labels acked before kill -9, {len(acked):5d} acked in total, "
              f"{len(stored):5d} stored, last_acked_seq {state.last_acked_seq}, missing {len(missing)} -> {'ok' if ok else 'LOST'}",
              flush=True)
        c.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        seq = max(seq, state.last_acked_seq)  # resume after whatever the store holds
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
