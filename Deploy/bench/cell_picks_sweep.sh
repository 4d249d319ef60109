#!/usr/bin/env bash
# The cell-picks experiment (docs/learning.md, "Cell-level picks"): every use case × every cell strategy, the patch
# arms alongside, 20 paired seeds, CNN features, fast head. One JSON per run in OUT_DIR, then a summary table.
#   bash Deploy/bench/cell_picks_sweep.sh OUT_DIR [STRATEGIES] [USE_CASES]
# Needs a release build of hali-lab (swift build -c release --product hali-lab) and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: cell_picks_sweep.sh OUT_DIR [STRATEGIES] [USE_CASES]}
strategies=${2:-"typiclust probcover margin typiclust-margin coreset"}
only=${3:-}
bin=$(swift build -c release --show-bin-path)
data=../shared/data
mkdir -p "$out"
declare -A cases=(
  [tils-crc]="--dataset $data/crc --images 71-100 --positive inflammatory"
  [tils-consep]="--dataset $data/consep/test --positive inflammatory --patch-um 96"
  [tumour-crc]="--dataset $data/crc --images 71-100 --positive epithelial"
  [tumour-consep]="--dataset $data/consep/test --positive epithelial --patch-um 96"
  [ki67-deepliif]="--dataset $data/ki67 --positive positive --patch-um 64"
  [tils-brca]="--dataset $data/brca_m2c --positive lymphocyte --patch-um 125"
  [tumour-brca]="--dataset $data/brca_m2c --positive tumour --patch-um 125"
  [ki67-bcdata]="--dataset $data/ki67_bcdata --positive positive --patch-um 80"
  [ki67-glioma]="--dataset $data/ki67_glioma --positive positive --patch-um 112"
)
order="tils-crc tils-consep tumour-crc tumour-consep ki67-deepliif tils-brca tumour-brca ki67-bcdata ki67-glioma"
for strategy in $strategies; do
  for id in $order; do
    [[ -n "$only" && ",$only," != *",$id,"* ]] && continue
    file="$out/$id-$strategy.json"
    [[ -s "$file" ]] && continue
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$bin/hali-lab" eval effectiveness ${cases[$id]} --features cnn --cache "${HALI_FEATURE_CACHE:-/tmp/hali-feature-cache}" \
      --head logistic --repeats 20 --eval-step 5 --threads 2 --cell-strategy "$strategy" --json > "$file.tmp"
    mv "$file.tmp" "$file"
    echo "cell_picks_sweep: $id $strategy $(( $(date +%s) - start )) s"
  done
done
python3 - "$out" <<'PY'
import json, glob, os, sys
rows = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    r = json.load(open(f))
    uc, strategy = os.path.basename(f)[:-5].rsplit("-", 1) if not f.endswith("-typiclust-margin.json") else (os.path.basename(f)[:-len("-typiclust-margin.json")], "typiclust-margin")
    g = {(x["arm"], x["control"]): x for x in r["gains"]}
    def ci(x, key="accuracy"):
        s = x[key]; return f"{s['mean']:+.1f} [{s['ciLow']:.1f}, {s['ciHigh']:.1f}]"
    print(f"{uc:14} {strategy:17} cells vs seq {ci(g[('active-cells','sequential')])}  vs random {ci(g[('active-cells','random-cells')])}  "
          f"bal vs seq {ci(g[('active-cells','sequential')], 'balancedAccuracy')}  | patches vs seq {ci(g[('active','sequential')])}  random vs seq {ci(g[('random-cells','sequential')])}")
PY
