#!/usr/bin/env bash
# A whole-slide-sized test slide for ingest at scale (issue 18): a pyramidal, JPEG-tiled TIFF at 40x (0.25 µm/px) of
# SIDE × SIDE tiles of 768 px (default 68 × 68 = 52,224 px square), tissue in an ellipse over ~45 % of it and white
# glass around, the tissue tiles being the 41 CoNSeP H&E images (40x, 768 px) repeated in turn. Repeated content is
# fine for time and memory; it says nothing about accuracy.
#   bash Deploy/bench/make_large_slide.sh OUT.tif [SIDE]
# Needs libvips (apt-get install libvips-tools) and ../shared/data; ingest it with --mpp 0.25.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: make_large_slide.sh OUT.tif [SIDE]}
mkdir -p "$(dirname "$out")"
out=$(realpath "$out")
side=${2:-68}
data=../shared/data/consep
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
vips black "$work/glass.v" 768 768 --bands 3
vips linear "$work/glass.v" "$work/w.png" 1 242 --uchar   # glass: near-white, like a scanner's background
# Short names, so that the list of 4,624 tiles fits in one argument (Linux allows 128 KiB).
n=0
for image in "$data"/train/images/*.png "$data"/test/images/*.png; do ln -s "$(realpath "$image")" "$work/t$n.png"; n=$((n + 1)); done
python3 - "$side" "$n" > "$work/list.txt" <<'PY'
import sys
side, count = int(sys.argv[1]), int(sys.argv[2])
tiles = [f"t{k}.png" for k in range(count)]
n = 0
for j in range(side):
    for i in range(side):
        # Inside the ellipse x²/a² + y²/b² ≤ 1 (a, b = 0.48, 0.30 of the side; ~45 % of the area): tissue.
        x, y = (i + 0.5) / side - 0.5, (j + 0.5) / side - 0.5
        if (x / 0.48) ** 2 + (y / 0.30) ** 2 <= 1:
            print(tiles[n % len(tiles)]); n += 1
        else:
            print("w.png")
print(f"{n} of {side * side} tiles hold tissue", file=sys.stderr)
PY
# shellcheck disable=SC2046
(cd "$work" && vips arrayjoin "$(tr '\n' ' ' < list.txt)" slide.v --across "$side")
vips tiffsave "$work/slide.v" "$out" --tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 85 \
  --xres 4000 --yres 4000 --bigtiff
vipsheader "$out"
ls -la "$out"
