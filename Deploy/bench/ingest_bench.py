#!/usr/bin/env python3
"""Whole-slide ingest benchmark: HALI's detector on a real-scale slide versus the scikit-image reference.

1. Builds (once) a 10,000 × 10,000 pyramid at 0.25 µm/px from the 13 MoNuSeg training tiles
   (Deploy/bench/make_bench_slide.sh, libvips).
2. Runs `hali ingest --force --mpp 0.25` on it RUNS times (2 threads = both cores), reading wall time, cells and
   the child's peak RSS; prints megapixels/s (of level-0 slide area and of pixels actually processed) and nuclei/s;
   then RUNS times with 1 thread (whole-slide throughput per core).
3. In the same run, the scikit-image reference (Deploy/bench/skimage_reference.py: rgb2hed, Gaussian, Otsu,
   distance transform, peak_local_max, watershed) on the same source pixels (the 13 MoNuSeg tiles), single
   process, and its F1; and HALI's own detector on those tiles (`hali eval detection`, one thread).
Prints medians and the ratios, and whether OPENBLAS_CORETYPE forced OpenBLAS's kernels (it applies to numpy's
OpenBLAS in the reference too). With --detector-weights FILE the learned detector (hali train-detector) is used for
both the ingest and the per-tile figures instead of the watershed detector.
Usage: python3 Deploy/bench/ingest_bench.py [--runs 3] [--hali .build/release/hali] [--detector-weights FILE]
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "data")


def run(cmd):
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return out.stdout + out.stderr, elapsed, max(peak_kib, before)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hali", default=os.path.join(ROOT, ".build", "release", "hali"))
    ap.add_argument("--slide", default="/tmp/hali-bench/monuseg-mosaic-10k.tif")
    ap.add_argument("--detector-weights", default=None, help="learned detector weights (default: watershed detector)")
    a = ap.parse_args()
    learned = ["--detector-weights", a.detector_weights] if a.detector_weights else []
    if not os.path.exists(a.slide):
        subprocess.run(["bash", os.path.join(ROOT, "Deploy", "bench", "make_bench_slide.sh"), a.slide], check=True)
    out_dir = "/tmp/hali-bench/index"

    ingest = []
    for i in range(a.runs):
        text, secs, peak = run([a.hali, "ingest", a.slide, "--mpp", "0.25", "--out", out_dir, "--force", "--threads", "2"] + learned)
        cells = int(re.search(r": (\d+) cells", text).group(1))
        processed = float(re.search(r"; ([\d.]+) Mpx in", text).group(1))
        ingest.append((secs, cells, processed))
        print(f"ingest run {i + 1}: {secs:.2f} s wall, {cells} cells, {processed:.1f} Mpx processed, peak RSS so far {peak / 1024:.0f} MiB", flush=True)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    secs = statistics.median(s for s, _, _ in ingest)
    one_thread = []
    for i in range(a.runs):
        text, t1, _ = run([a.hali, "ingest", a.slide, "--mpp", "0.25", "--out", out_dir, "--force", "--threads", "1"] + learned)
        one_thread.append(t1)
        print(f"ingest run {i + 1}, 1 thread: {t1:.2f} s wall", flush=True)
    secs1 = statistics.median(one_thread)
    cells = ingest[0][1]
    slide_mp = 100.0

    text, _, _ = run([sys.executable, os.path.join(ROOT, "Deploy", "bench", "skimage_reference.py"),
                      "--dataset", os.path.join(DATA, "monuseg", "train"), "--runs", str(a.runs)])
    sk_mps = float(re.search(r"median of \d+ runs\): ([\d.]+) MP/s", text).group(1))
    sk_f1 = float(re.search(r"F1=([\d.]+)", text).group(1))
    text, _, _ = run([a.hali, "eval", "detection", "--dataset", os.path.join(DATA, "monuseg", "train")] + learned)
    hali_f1 = float(re.search(r"^overall\s+.*\s([\d.]+)\s+\d+\s*$", text, re.M).group(1))
    hali_tile_mps = float(re.search(r"detector: ([\d.]+) MP/s", text).group(1))

    print()
    print(f"slide: {a.slide} (10000 x 10000 px at 0.25 um/px = {slide_mp:.0f} MP level 0)")
    print(f"detector: {'learned, ' + a.detector_weights if a.detector_weights else 'watershed'}")
    print(f"HALI ingest, 2 threads, median of {a.runs}: {secs:.2f} s -> {slide_mp / secs:.2f} MP/s of slide, "
          f"{cells / secs:.0f} nuclei/s, {cells} nuclei; peak RSS {peak_mib:.0f} MiB")
    seen = " (the shipped learned detectors trained on these tiles: cross-validated F1 in docs/detector.md)" if a.detector_weights else ""
    print(f"HALI ingest, 1 thread, median of {a.runs}: {secs1:.2f} s -> {slide_mp / secs1:.2f} MP/s of slide")
    print(f"HALI detector on the 13 MoNuSeg tiles, 1 thread: {hali_tile_mps:.2f} MP/s, F1 {hali_f1:.3f}{seen}")
    print(f"scikit-image reference on the same tiles, 1 process, median of {a.runs}: {sk_mps:.2f} MP/s, F1 {sk_f1:.3f}")
    print(f"ratio, whole-slide ingest (2 cores) / skimage (1 core): {slide_mp / secs / sk_mps:.1f}x")
    print(f"ratio, whole-slide ingest (1 core) / skimage (1 core):  {slide_mp / secs1 / sk_mps:.1f}x")
    print(f"ratio, detector per core / skimage per core:           {hali_tile_mps / sk_mps:.1f}x")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    print("OpenBLAS kernels: " + (f"forced by OPENBLAS_CORETYPE={coretype}" if coretype else "OpenBLAS's own CPU detection"))


if __name__ == "__main__":
    main()
