#!/usr/bin/env bash
# Builds a 10,000 × 10,000 whole-slide image at 0.25 µm/px (40x) from the 13 MoNuSeg training tiles
# (1000 × 1000 each), laid 10 × 10 in reading order and repeated cyclically, saved by libvips as a tiled JPEG
# pyramid (generic TIFF, 256-px tiles, quality 90). OpenSlide reads it as `generic-tiff` without a pixel size, so
# ingest it with --mpp 0.25. Needs libvips-tools (apt-get install libvips-tools).
#   bash Deploy/bench/make_bench_slide.sh [OUT.tif]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/hali-bench/monuseg-mosaic-10k.tif}
src=../shared/data/monuseg/train/images
command -v vips >/dev/null || { echo "make_bench_slide: vips not found (apt-get install libvips-tools)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
mapfile -t images < <(ls "$src"/*.png | sort)
list=()
for i in $(seq 0 99); do list+=("${images[$((i % ${#images[@]}))]}"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vips arrayjoin "${list[*]}" "$tmp/mosaic.v" --across 10
vips extract_band "$tmp/mosaic.v" "$tmp/rgb.v" 0 --n 3
vips tiffsave "$tmp/rgb.v" "$out" --tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 90
echo "make_bench_slide: $out ($(du -h "$out" | cut -f1))"
