#!/usr/bin/env bash
# Screenshots of `hali label` in real terminal emulators under Xvfb, for docs/terminal-client.md:
#   bash Deploy/bench/terminal_screenshots.sh OUT_DIR
# Starts halid on CMU-1-Small-Region (a fresh data directory, so the same patch comes first), then for each terminal
# (xterm -ti vt340 with sixel, kitty, xterm with half-blocks) types the same keys (labels, moves) and captures the
# screen with ImageMagick's import; then the review gallery in xterm with sixel, in kitty, and in xterm with half-blocks;
# then the learner's cell picks (p) in xterm with sixel and with half-blocks. SHOTS="NAME …" takes only those shots.
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
# Twelve small and twelve large nuclei labelled through the Python client first, so that a model exists and the
# screenshots show suggestions (muted outlines) and the gallery has pages.
python3 - "$port" <<'PY'
import sys, time
sys.path.insert(0, "Deploy/clients/python")
from hali_client import HaliClient
with HaliClient("127.0.0.1", int(sys.argv[1]), "shots-token") as c:
    c.open_session("CMU-1-Small-Region", "til")
    cells = sorted(c.get_patch(0, 0, 2220, 2967).cells, key=lambda cell: cell.area_um2)
    for seq, (cell, name) in enumerate([(x, "other") for x in cells[:12]] + [(x, "inflammatory") for x in cells[-12:]], 1):
        c.label(seq, cell.id, name)
    # Reading the whole slide made it the session's place: leave it at the learner's next patch instead.
    pick = c.next_patch()
    c.get_patch(pick.region.x, pick.region.y, pick.region.width, pick.region.height)
    time.sleep(3)
PY

keys() {  # label six cells of each class (enough for the first model), then let the suggestions arrive
  for k in 1 Right 2 Down 1 Right 2 Down 1 Right 2 Down 1 Left 2 Down 1 Left 2 Down 1 Left 2 Right; do
    xdotool key --clearmodifiers "$k"
    sleep 0.5
  done
  sleep 4
}

gallery_keys() {  # open the gallery, flip one crop, skip one
  xdotool key --clearmodifiers g
  sleep 3
  xdotool key --clearmodifiers 2
  sleep 0.5
  xdotool key --clearmodifiers x
  sleep 2
}

picks_keys() {  # open the learner's cell picks, label one crop by hand, skip one
  xdotool key --clearmodifiers p
  sleep 4
  xdotool key --clearmodifiers 2
  sleep 0.5
  xdotool key --clearmodifiers x
  sleep 2
}

shot() {  # NAME GRAPHICS KEYS COMMAND...  (SHOTS="name …" takes only those)
  local name=$1 graphics=$2 typing=$3
  shift 3
  [[ -n "${SHOTS:-}" && " $SHOTS " != *" $name "* ]] && return 0
  "$@" -e sh -c "'$bin/hali' label --graphics $graphics CMU-1-Small-Region til; sleep 300" &
  local term=$!
  sleep 8
  # No window manager: keyboard focus follows the pointer, so put it over the terminal and focus it explicitly.
  xdotool mousemove 400 300
  xdotool search --sync --onlyvisible --pid $term windowfocus --sync 2>/dev/null || true
  $typing
  import -display $display -window root "$out/$name.png"
  kill $term 2>/dev/null || true
  wait $term 2>/dev/null || true
  echo "terminal_screenshots: $out/$name.png"
}

shot terminal-sixel-xterm sixel keys xterm -ti vt340 -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
shot terminal-kitty kitty keys kitty -o font_size=10 -o initial_window_width=1500 -o initial_window_height=900 -o remember_window_size=no
shot terminal-blocks-xterm blocks keys xterm -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
shot terminal-gallery-sixel-xterm sixel gallery_keys xterm -ti vt340 -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
shot terminal-gallery-kitty kitty gallery_keys kitty -o font_size=10 -o initial_window_width=1500 -o initial_window_height=900 -o remember_window_size=no
shot terminal-gallery-blocks-xterm blocks gallery_keys xterm -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
shot terminal-picks-sixel-xterm sixel picks_keys xterm -ti vt340 -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
shot terminal-picks-blocks-xterm blocks picks_keys xterm -b 0 -bw 0 -geometry 150x50+0+0 -fa "DejaVu Sans Mono" -fs 10
