#!/usr/bin/env bash
# Reproduces HALI's default nucleus backbone from the shared labelled nuclei with one command, then scores it
# with the linear probes of `hali eval backbone` (CoNSeP test, CRC images 71–100, Ki-67).
#   bash Deploy/train-backbone.sh [OUT.safetensors]      (default: models/hali-nuclei-v2.safetensors)
# Data: ../shared/data beside the checkout (HALI_DATA=DIR to change). Measured: ~17 min training on 2 cores.
# The recipe below is the one recorded in Deploy/models/hali-nuclei-v2.safetensors (metadata hali.training).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HALI_DATA:-../shared/data}
out=${1:-models/hali-nuclei-v2.safetensors}

bash Deploy/install-deps.sh
for d in "$data/consep/train" "$data/consep/test" "$data/crc"; do
  [[ -f "$d/cells.csv" ]] || { echo "train-backbone: $d/cells.csv not found (set HALI_DATA)" >&2; exit 1; }
done

swift build -c release --product hali-lab
bin=$(swift build -c release --show-bin-path)
mkdir -p "$(dirname "$out")"
"$bin/hali-lab" train-backbone --data "$data/consep/train" --data "$data/crc:1-70" --out "$out" \
  --epochs 24 --seed 1 --patch-microns 32 --colour-jitter 2 --max-minutes 55
"$bin/hali-lab" eval backbone --weights "$out" --data "$data"
