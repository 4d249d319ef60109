#!/usr/bin/env bash
# Peak memory and time of `hali ingest` on a large slide (issue 18: a task's peak must not grow with the slide):
#   bash Deploy/bench/ingest_memory.sh SLIDE HALI... [-- INGEST OPTIONS]
# Runs each given hali binary once (e.g. one built before a change and one after) with --force into a fresh folder,
# one after the other, under GNU time; prints cells, wall seconds and peak RSS, then the cells digest of each index.
# Make a slide with Deploy/bench/make_large_slide.sh (pass --mpp 0.25 for it).
set -euo pipefail
slide=${1:?usage: ingest_memory.sh SLIDE HALI... [-- OPTIONS]}
shift
binaries=()
while (($#)) && [[ "$1" != "--" ]]; do binaries+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in "${!binaries[@]}"; do
  bin=${binaries[$i]}
  /usr/bin/time -v "$bin" ingest "$slide" --out "$work/$i" --force "$@" > "$work/$i.out" 2> "$work/$i.time"
  cells=$(grep -o '[0-9]* cells from' "$work/$i.out" | cut -d' ' -f1)
  wall=$(grep 'Elapsed (wall clock)' "$work/$i.time" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/$i.time" | awk '{print $NF}')
  digest=$("${binaries[-1]}" cells "$work/$i"/*.hidx | awk '/^digest/ {print $2}')
  printf '%s: %s cells, wall %s, peak RSS %.0f MiB, digest %s\n' "$bin" "$cells" "$wall" "$((rss))e-3" "${digest:0:16}"
done
