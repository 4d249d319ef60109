#!/usr/bin/env bash
# Load test: N simulated annotators (default 100) labelling at RATE labels/s each for SECONDS against one halid on
# this machine (loopback), each in their own session on CMU-1-Small-Region (task til). Prints the load generator's
# latency figures and the daemon's peak RSS (VmHWM) and CPU time.
#   bash Deploy/bench/serve_load.sh [N] [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100}; rate=${2:-1}; seconds=${3:-30}
bin=$(swift build -c release --show-bin-path)
slide=${SLIDE:-../shared/data/slides/CMU-1-Small-Region.svs}
data=$(mktemp -d /tmp/hali-load-XXXX)
"$bin/hali-bench-serve" --annotators "$n" --write-annotators "$data/annotators"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/halid" --listen "127.0.0.1:$port" --data-dir "$data" --slide "$slide" --annotators-file "$data/annotators" --weights Deploy/models/hali-nuclei-v2.safetensors --log-level warning 2> "$data/halid.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true' EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
  kill -0 $daemon 2>/dev/null || { cat "$data/halid.log"; exit 1; }
  sleep 0.2
done
"$bin/hali-bench-serve" --server "127.0.0.1:$port" --slide "$(basename "${slide%.*}")" --task til --annotators "$n" --rate "$rate" --duration "$seconds"
echo "daemon: peak RSS $(grep VmHWM /proc/$daemon/status | awk '{print $2/1024 " MiB"}'), CPU $(ps -o times= -p $daemon) s, labels stored $(python3 -c "import sqlite3; print(sqlite3.connect('$data/labels.sqlite').execute('select count(*) from label_events').fetchone()[0])")"
