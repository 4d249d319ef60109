#!/usr/bin/env python3
"""MoNuSeg F1 of the learned detector recipe by 2-fold cross-validation, and CoNSeP test F1 of the shipped weights.

The shipped detectors (Deploy/models/hali-detector-*.safetensors) learned from MoNuSeg training images, so their
MoNuSeg score would be a training score. This trains the same recipe twice on half of MoNuSeg each (in name order:
fold A learns from images 1-5 and chooses its seed threshold on 6-7, fold B learns from 8-11 and chooses on 12-13; both
also learn from CoNSeP train 1-23 and choose on CoNSeP train 24-27), scores each model with `hali eval detection
--images` on the half it never saw (8-13 for A, 1-7 for B), and pools TP/FP/FN over the two halves.

Usage: python3 Deploy/bench/detector_folds.py [--hali .build/release/hali] [--out /tmp/hali-folds] [--skip-training]
       [--weights Deploy/models/hali-detector-fast-v2.safetensors] [-- extra train-detector options, e.g. --widths 8,16,32]
The shipped 1.0 µm model's recipe: `-- --working-mpp 1.0 --crop 64 --steps 12000 --seed 1` (the default recipe is
hali-detector-v1's 0.5 µm one, whose figures in docs/detector.md came from an earlier split: 1-7 / 8-13, thresholds
chosen on CoNSeP only). Takes about 2 x 26 min of training on 2 cores (both folds at once, one OpenBLAS thread each).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "data")
# (name, MoNuSeg images trained on, images choosing the threshold, images scored)
FOLDS = [("A", "1-5", "6-7", "8-13"), ("B", "8-11", "12-13", "1-7")]


def evaluate(hali, dataset, weights, images=None):
    cmd = [hali, "eval", "detection", "--dataset", dataset, "--detector-weights", weights, "--json"]
    if images:
        cmd += ["--images", images]
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return report["overall"]


def f1(c):
    tp, fp, fn = c["truePositives"], c["falsePositives"], c["falseNegatives"]
    return tp / max(1, tp + fp), tp / max(1, tp + fn), 2 * tp / max(1, 2 * tp + fp + fn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hali", default=os.path.join(ROOT, ".build", "release", "hali"))
    ap.add_argument("--out", default="/tmp/hali-folds")
    ap.add_argument("--weights", default=os.path.join(ROOT, "Deploy", "models", "hali-detector-fast-v2.safetensors"))
    ap.add_argument("--skip-training", action="store_true", help="reuse OUT/fold-*.safetensors")
    ap.add_argument("extra", nargs="*", help="extra train-detector options (after --)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    monuseg, consep = os.path.join(DATA, "monuseg", "train"), os.path.join(DATA, "consep")
    if not a.skip_training:
        procs = []
        for name, train, val, _ in FOLDS:
            cmd = [a.hali, "train-detector", "--data", f"{consep}/train:1-23", "--data", f"{monuseg}:{train}",
                   "--val", f"{consep}/train:24-27", "--val", f"{monuseg}:{val}", "--out", f"{a.out}/fold-{name}.safetensors"] + a.extra
            log = open(f"{a.out}/fold-{name}.log", "w")
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        if any(p.wait() != 0 for p in procs):
            sys.exit("detector_folds: a training run failed (see the logs in " + a.out + ")")
    pooled = {"truePositives": 0, "falsePositives": 0, "falseNegatives": 0}
    for name, train, _, scored in FOLDS:
        c = evaluate(a.hali, monuseg, f"{a.out}/fold-{name}.safetensors", scored)
        for k in pooled:
            pooled[k] += c[k]
        p, r, f = f1(c)
        print(f"fold {name}: trained on MoNuSeg {train}, scored on {scored}: P {p:.3f} R {r:.3f} F1 {f:.3f}  {c}")
    p, r, f = f1(pooled)
    print(f"MoNuSeg train, 2-fold cross-validation (pooled): P {p:.3f} R {r:.3f} F1 {f:.3f}  {pooled}")
    if os.path.exists(a.weights):
        p, r, f = f1(evaluate(a.hali, os.path.join(consep, "test"), a.weights))
        print(f"CoNSeP test, {os.path.basename(a.weights)}: P {p:.3f} R {r:.3f} F1 {f:.3f}")


if __name__ == "__main__":
    main()
