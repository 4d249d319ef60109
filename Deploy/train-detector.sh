#!/usr/bin/env bash
# Reproduces one of HALI's learned nucleus detectors from the shared outlined nuclei with one command, then scores it
# with `hali eval detection` on CoNSeP test (never seen in training).
#   bash Deploy/train-detector.sh [fast|v2|v1] [OUT.safetensors]
#     fast (default) 1.0 µm/px, 12,000 steps of 64-px crops → models/hali-detector-fast-v2.safetensors (26 min on 2 cores shared with two other trainings)
#     v2             0.5 µm/px, 3,000 steps of 128-px crops → models/hali-detector-v2.safetensors      (36 min, 3 trainings on 2 cores)
#     v1             0.5 µm/px, 3,000 steps of 128-px crops → models/hali-detector-v1.safetensors      (~40 min, 2 cores)
# Data: ../shared/data beside the checkout (HALI_DATA=DIR to change), images in name order. fast: learns from CoNSeP
# train 1–23 and MoNuSeg train 1–11; CoNSeP train 24–27 and MoNuSeg train 12–13 choose the seed threshold (v2: the
# same sets at 0.5 µm/px). v1: learns
# from CoNSeP train 1–23 and all 13 MoNuSeg images; CoNSeP train 24–27 choose. The recipes are the ones recorded in
# the committed weights (metadata hali.training).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HALI_DATA:-../shared/data}
variant=${1:-fast}
case "$variant" in
  v1) out=${2:-models/hali-detector-v1.safetensors}
      sets=(--data "$data/consep/train:1-23" --data "$data/monuseg/train" --val "$data/consep/train:24-27")
      recipe=(--steps 3000) ;;
  v2) out=${2:-models/hali-detector-v2.safetensors}
      sets=(--data "$data/consep/train:1-23" --data "$data/monuseg/train:1-11" --val "$data/consep/train:24-27"
            --val "$data/monuseg/train:12-13")
      recipe=(--steps 3000) ;;
  fast) out=${2:-models/hali-detector-fast-v2.safetensors}
      sets=(--data "$data/consep/train:1-23" --data "$data/monuseg/train:1-11" --val "$data/consep/train:24-27"
            --val "$data/monuseg/train:12-13")
      recipe=(--working-mpp 1.0 --crop 64 --steps 12000) ;;
  *) echo "usage: bash Deploy/train-detector.sh [fast|v2|v1] [OUT.safetensors]" >&2; exit 64 ;;
esac

bash Deploy/install-deps.sh
for d in "$data/consep/train/instances" "$data/monuseg/train/annotations" "$data/consep/test/images"; do
  [[ -d "$d" ]] || { echo "train-detector: $d not found (set HALI_DATA)" >&2; exit 1; }
done

swift build -c release --product hali-lab
bin=$(swift build -c release --show-bin-path)
mkdir -p "$(dirname "$out")"
"$bin/hali-lab" train-detector "${sets[@]}" --out "$out" "${recipe[@]}" --seed 1
"$bin/hali-lab" eval detection --dataset "$data/consep/test" --detector-weights "$out"
