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
source Deploy/bench/start_daemon.sh
"$bin/hali-bench-serve" --server "127.0.0.1:$port" --slide "$(basename "${slide%.*}")" --task til --annotators "$n" --rate "$rate" --duration "$seconds"
echo "daemon: peak RSS $(grep VmHWM /proc/$daemon/status | awk '{print $2/1024 " MiB"}'), CPU $(ps -o times= -p $daemon) s, labels stored $(python3 -c "import sqlite3; print(sqlite3.connect('$data/labels.sqlite').execute('select count(*) from label_events').fetchone()[0])")"
