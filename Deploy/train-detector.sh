#!/usr/bin/env bash
# Reproduces one of HALI's learned nucleus detectors from the shared outlined nuclei with one command, then scores it
# with `hali eval detection` on CoNSeP test (never seen in training).
#   bash Deploy/train-detector.sh [v1|fast] [OUT.safetensors]
#     v1   (default) 0.5 µm/px, 3,000 steps of 128-px crops → models/hali-detector-v1.safetensors      (~40 min, 2 cores)
#     fast           1.0 µm/px, 12,000 steps of 64-px crops → models/hali-detector-fast-v1.safetensors (~15 min)
# Data: ../shared/data beside the checkout (HALI_DATA=DIR to change): CoNSeP train images 1–23 (name order) and all 13
# MoNuSeg training images; CoNSeP train 24–27 choose the seed threshold. The recipes are the ones recorded in the
# committed weights (metadata hali.training).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HALI_DATA:-../shared/data}
variant=${1:-v1}
case "$variant" in
  v1) out=${2:-models/hali-detector-v1.safetensors}; recipe=(--steps 3000) ;;
  fast) out=${2:-models/hali-detector-fast-v1.safetensors}; recipe=(--working-mpp 1.0 --crop 64 --steps 12000) ;;
  *) echo "usage: bash Deploy/train-detector.sh [v1|fast] [OUT.safetensors]" >&2; exit 64 ;;
esac

bash Deploy/install-deps.sh
for d in "$data/consep/train/instances" "$data/monuseg/train/annotations" "$data/consep/test/images"; do
  [[ -d "$d" ]] || { echo "train-detector: $d not found (set HALI_DATA)" >&2; exit 1; }
done

swift build -c release --product hali
bin=$(swift build -c release --show-bin-path)
mkdir -p "$(dirname "$out")"
"$bin/hali" train-detector --data "$data/consep/train:1-23" --data "$data/monuseg/train" --val "$data/consep/train:24-27" \
  --out "$out" "${recipe[@]}" --seed 1
"$bin/hali" eval detection --dataset "$data/consep/test" --detector-weights "$out"
