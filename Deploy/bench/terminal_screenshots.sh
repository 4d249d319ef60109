#!/usr/bin/env bash
# Screenshots of `hali label` in real terminal emulators under Xvfb, for docs/terminal-client.md:
#   bash Deploy/bench/terminal_screenshots.sh OUT_DIR
# Starts halid on CMU-1-Small-Region (a fresh data directory, so the same patch comes first), then for each terminal
# (xterm -ti vt340 with sixel, kitty, xterm with half-blocks) types the same keys (labels, moves, enough labels for
# the first retrain so suggestions appear) and captures the screen with ImageMagick's import.
# Needs: xvfb xterm kitty imagemagick xdotool (apt-get install them); a release build (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: terminal_screenshots.sh OUT_DIR}
mkdir -p "$out"
bin=$(swift build -c release --show-bin-path)
slide=../shared/data/slides/CMU-1-Small-Region.svs
work=$(mktemp -d)
port=7391
display=:93
"$bin/halid" --listen 127.0.0.1:$port --data-dir "$work/data" --slide "$slide" --annotator "shots:shots-token" 2> "$work/halid.log" &
daemon=$!
Xvfb $display -screen 0 1600x1000x24 -nolisten tcp > /dev/null 2>&1 &
xvfb=$!
trap 'kill $daemon $xvfb 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 2400); do grep -q listening "$work/halid.log" && break; sleep 0.1; done
export DISPLAY=$display HALI_SERVER=127.0.0.1:$port HALI_TOKEN=shots-token

keys() {  # label six cells of each class (enough for the first model), then let the suggestions arrive
  for k in 1 Right 2 Down 1 Right 2 Down 1 Right 2 Down 1 Left 2 Down 1 Left 2 Down 1 Left 2 Right; do
    xdotool key --clearmodifiers "$k"
    sleep 0.5
  done
  sleep 4
}

shot() {  # NAME GRAPHICS COMMAND...
  local name=$1 graphics=$2
  shift 2
  "$@" -e sh -c "'$bin/hali' label --graphics $graphics CMU-1-Small-Region til; sleep 300" &
  local term=$!
  sleep 8
  # No window manager: keyboard focus follows the pointer, so put it over the terminal and focus it explicitly.
  xdotool mousemove 400 300
  xdotool search --sync --onlyvisible --pid $term windowfocus --sync 2>/dev/null || true
  keys
  import -display $display -window root "$out/$name.png"
  kill $term 2>/dev/null || true
  wait $term 2>/dev/null || true
  echo "terminal_screenshots: $out/$name.png"
}

shot terminal-sixel-xterm sixel xterm -ti vt340 -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
shot terminal-kitty kitty kitty -o font_size=10 -o initial_window_width=1500 -o initial_window_height=900 -o remember_window_size=no
shot terminal-blocks-xterm blocks xterm -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
