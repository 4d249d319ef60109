#!/usr/bin/env bash
# Reproduces HALI's learned nucleus detector (Deploy/models/hali-detector-v1.safetensors) from the shared outlined
# nuclei with one command, then scores it with `hali eval detection` on CoNSeP test (never seen in training).
#   bash Deploy/train-detector.sh [OUT.safetensors]      (default: models/hali-detector-v1.safetensors)
# Data: ../shared/data beside the checkout (HALI_DATA=DIR to change). Training: CoNSeP train images 1–23 (name order)
# and all 13 MoNuSeg training images; CoNSeP train 24–27 choose the seed threshold. Measured: ~25 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HALI_DATA:-../shared/data}
out=${1:-models/hali-detector-v1.safetensors}

bash Deploy/install-deps.sh
for d in "$data/consep/train/instances" "$data/monuseg/train/annotations" "$data/consep/test/images"; do
  [[ -d "$d" ]] || { echo "train-detector: $d not found (set HALI_DATA)" >&2; exit 1; }
done

swift build -c release --product hali
bin=$(swift build -c release --show-bin-path)
mkdir -p "$(dirname "$out")"
"$bin/hali" train-detector --data "$data/consep/train:1-23" --data "$data/monuseg/train" --val "$data/consep/train:24-27" \
  --out "$out" --steps 3000 --seed 1
"$bin/hali" eval detection --dataset "$data/consep/test" --detector-weights "$out"
