#!/usr/bin/env python3
"""Reference scikit-image nucleus detector, for throughput and accuracy comparison with HALI's Swift detector.

Pipeline (the classic scikit-image recipe): hematoxylin = rgb2hed(rgb)[..., 0]; Gaussian smoothing;
Otsu threshold; remove small objects; Euclidean distance transform; peak_local_max of the distance map
(one peak per label, min distance in µm); marker watershed of -distance inside the mask; centroids of the
regions that pass the area filter. Runs at the images' native resolution.

Evaluation uses the same rule as `hali eval detection`: one-to-one greedy matching by ascending centroid
distance within the radius; overall precision/recall/F1 from pooled TP/FP/FN. Timing covers detection only
(image already decoded in memory), single thread, as the Swift report does.

Usage: python3 Deploy/bench/skimage_reference.py --dataset ../shared/data/monuseg/train [--radius-um 3]
       [--mpp 0.25] [--runs 3] [--sigma-um 0.5] [--min-distance-um 2.5] [--min-area-um2 10]
Needs numpy, scipy, scikit-image (pip install scikit-image).
"""
import argparse
import csv
import glob
import inspect
import json
import os
import re
import statistics
import sys
import time

import numpy as np
from scipy import ndimage as ndi
from skimage import io
from skimage.color import rgb2hed
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.morphology import remove_small_objects
from skimage.segmentation import watershed


def load_dataset(d):
    images = sorted(glob.glob(os.path.join(d, "images", "*.png")))
    if not images:
        sys.exit(f"error: no images in {d}/images")
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        meta = json.load(open(os.path.join(d, "meta.json")))
    truth = {}
    if os.path.exists(os.path.join(d, "cells.csv")):
        for r in csv.DictReader(open(os.path.join(d, "cells.csv"))):
            truth.setdefault(r["image"], []).append((float(r["x"]), float(r["y"])))
    elif os.path.isdir(os.path.join(d, "annotations")):
        vre = re.compile(r'<Vertex\s+X="([^"]+)"\s+Y="([^"]+)"')
        for p in images:
            name = os.path.basename(p)
            xml = open(os.path.join(d, "annotations", name[:-4] + ".xml")).read()
            cents = []
            for region in re.findall(r"<Region\s.*?</Region>", xml, flags=re.S):
                v = np.array([(float(x), float(y)) for x, y in vre.findall(region)])
                if len(v) == 0:
                    continue
                x, y = v[:, 0], v[:, 1]
                x1, y1 = np.roll(x, -1), np.roll(y, -1)
                c = x * y1 - x1 * y
                a = c.sum()
                if abs(a) < 1e-9:
                    cents.append((x.mean(), y.mean()))
                else:
                    cents.append((((x + x1) * c).sum() / (3 * a), ((y + y1) * c).sum() / (3 * a)))
            truth[name] = cents
    else:
        sys.exit(f"error: {d} has no cells.csv or annotations/")
    return images, truth, meta.get("approx_mpp")


def detect(rgb, mpp, sigma_um, min_distance_um, min_area_um2):
    h = rgb2hed(rgb[..., :3])[..., 0]
    h = gaussian(h, sigma=sigma_um / mpp)
    mask = h > threshold_otsu(h)
    min_px = max(1, int(round(min_area_um2 / (mpp * mpp))))
    if "max_size" in inspect.signature(remove_small_objects).parameters:  # scikit-image >= 0.26
        mask = remove_small_objects(mask, max_size=min_px - 1)
    else:
        mask = remove_small_objects(mask, min_size=min_px)
    dist = ndi.distance_transform_edt(mask)
    lab, _ = ndi.label(mask)
    peaks = peak_local_max(dist, min_distance=max(1, int(round(min_distance_um / mpp))), labels=lab,
                           exclude_border=False)
    markers = np.zeros(dist.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    ws = watershed(-dist, markers, mask=mask)
    n = ws.max()
    if n == 0:
        return np.zeros((0, 2))
    idx = np.arange(1, n + 1)
    areas = ndi.sum(np.ones_like(ws), ws, idx)
    cents = np.array(ndi.center_of_mass(np.ones_like(ws), ws, idx))  # (row, col)
    keep = areas >= min_px
    return cents[keep][:, ::-1]  # (x, y)


def match(pred, truth, radius):
    """Greedy one-to-one matching by ascending distance (ties: prediction index, truth index)."""
    if len(pred) == 0 or len(truth) == 0:
        return 0, len(pred), len(truth)
    from scipy.spatial import cKDTree
    t = np.asarray(truth)
    tree = cKDTree(t)
    pairs = []
    for i, p in enumerate(pred):
        for j in tree.query_ball_point(p, radius):
            pairs.append((float(np.hypot(*(p - t[j]))), i, j))
    pairs.sort()
    up, ut = set(), set()
    for _, i, j in pairs:
        if i not in up and j not in ut:
            up.add(i)
            ut.add(j)
    tp = len(up)
    return tp, len(pred) - tp, len(truth) - tp


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--radius-um", type=float, default=3.0)
    ap.add_argument("--mpp", type=float)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sigma-um", type=float, default=0.5)
    ap.add_argument("--min-distance-um", type=float, default=2.5)
    ap.add_argument("--min-area-um2", type=float, default=10.0)
    a = ap.parse_args()
    images, truth, meta_mpp = load_dataset(a.dataset)
    mpp = a.mpp or meta_mpp
    if not mpp:
        sys.exit("error: pixel size unknown; pass --mpp")
    rgbs = [io.imread(p) for p in images]
    mps, nps = [], []
    for run in range(a.runs):
        tp = fp = fn = 0
        secs, pixels, nuclei = 0.0, 0, 0
        for p, rgb in zip(images, rgbs):
            t0 = time.perf_counter()
            pred = detect(rgb, mpp, a.sigma_um, a.min_distance_um, a.min_area_um2)
            secs += time.perf_counter() - t0
            pixels += rgb.shape[0] * rgb.shape[1]
            nuclei += len(pred)
            m = match(pred, truth.get(os.path.basename(p), []), a.radius_um / mpp)
            tp, fp, fn = tp + m[0], fp + m[1], fn + m[2]
        mps.append(pixels / 1e6 / secs)
        nps.append(nuclei / secs)
        print(f"run {run + 1}: {secs:.3f} s, {mps[-1]:.3f} MP/s, {nps[-1]:.0f} nuclei/s", flush=True)
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    print(f"dataset {a.dataset}: {len(images)} images, mpp {mpp}, radius {a.radius_um} µm")
    print(f"skimage reference: P={prec:.4f} R={rec:.4f} F1={f1:.4f} (TP={tp} FP={fp} FN={fn})")
    print(f"throughput (median of {a.runs} runs): {statistics.median(mps):.3f} MP/s, "
          f"{statistics.median(nps):.0f} nuclei/s")


if __name__ == "__main__":
    main()
