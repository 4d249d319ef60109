#!/usr/bin/env bash
# Soak: N annotators (default 100) at RATE labels/s each for MINUTES (default 30) against one halid on loopback, as
# Deploy/bench/serve_load.sh, reporting every minute: acks and label -> ack / label -> suggestions percentiles and
# errors within that minute (the load generator), and the daemon's RSS and CPU time at the minute's end. Writes
# OUT/soak.csv and OUT/soak.png (matplotlib from PyPI, installed if missing).
#   bash Deploy/bench/soak.sh [N] [RATE] [MINUTES] [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100}; rate=${2:-1}; minutes=${3:-30}; out=${4:-docs/bench}
bin=$(swift build -c release --show-bin-path)
slide=${SLIDE:-../shared/data/slides/CMU-1-Small-Region.svs}
data=$(mktemp -d /tmp/hali-soak-XXXX)
mkdir -p "$out"
source Deploy/bench/start_daemon.sh
# The daemon's RSS (MiB) and CPU seconds once a minute, beside the load generator's own per-minute lines.
(
  echo "t_s,rss_mib,cpu_s"
  t0=$(date +%s)
  while kill -0 $daemon 2>/dev/null; do
    sleep 60
    rss=$(awk '/VmRSS/ {print $2/1024}' /proc/$daemon/status 2>/dev/null || echo nan)
    ticks=$(awk '{print $14+$15}' /proc/$daemon/stat 2>/dev/null || echo 0)
    echo "$(( $(date +%s) - t0 )),$rss,$(python3 -c "import os; print($ticks/os.sysconf('SC_CLK_TCK'))")"
  done
) > "$data/rss.csv" &
sampler=$!
"$bin/hali-bench-serve" --server "127.0.0.1:$port" --slide "$(basename "${slide%.*}")" --task til --annotators "$n" --rate "$rate" \
  --duration $((minutes * 60)) --report-every 60 | tee "$data/load.txt"
kill $sampler 2>/dev/null || true
grep -E '^[0-9]+,' "$data/load.txt" > "$data/minutes.csv" || true
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check matplotlib
python3 - "$data/minutes.csv" "$data/rss.csv" "$out" "$n" "$rate" <<'PY'
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
minutes_csv, rss_csv, out, n, rate = sys.argv[1:]
cols = ["t", "acks", "a50", "a95", "a99", "sug", "s50", "s95", "s99", "errors"]
rows = [dict(zip(cols, map(float, r))) for r in csv.reader(open(minutes_csv))]
rss = [r for r in csv.DictReader(open(rss_csv))]
with open(f"{out}/soak.csv", "w") as f:
    f.write("minute,acks,ack_p50_ms,ack_p95_ms,ack_p99_ms,suggestions,sugg_p50_ms,sugg_p95_ms,sugg_p99_ms,errors,rss_mib,cpu_s\n")
    for i, r in enumerate(rows):
        m = rss[i] if i < len(rss) else {"rss_mib": "nan", "cpu_s": "nan"}
        f.write(",".join([str(int(r["t"] // 60))] + [f"{r[c]:g}" for c in cols[1:]] + [m["rss_mib"], m["cpu_s"]]) + "\n")
fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
t = [r["t"] / 60 for r in rows]
for key, label in [("a50", "p50"), ("a95", "p95"), ("a99", "p99")]:
    axes[0].plot(t, [r[key] for r in rows], marker="o", ms=3, label=label)
axes[0].set_ylabel("label → ack (ms)"); axes[0].legend(); axes[0].grid(alpha=.3)
for key, label in [("s50", "p50"), ("s95", "p95"), ("s99", "p99")]:
    axes[1].plot(t, [r[key] for r in rows], marker="o", ms=3, label=label)
axes[1].axhline(100, color="grey", ls="--", lw=1, label="goal p95 100 ms")
axes[1].set_ylabel("label → suggestions (ms)"); axes[1].legend(); axes[1].grid(alpha=.3)
axes[2].plot([float(m["t_s"]) / 60 for m in rss], [float(m["rss_mib"]) for m in rss], marker="o", ms=3, color="C3")
axes[2].set_ylabel("halid RSS (MiB)"); axes[2].set_xlabel("minute"); axes[2].grid(alpha=.3)
axes[2].set_ylim(0, 1.25 * max([float(m["rss_mib"]) for m in rss if m["rss_mib"] != "nan"] or [1]))
errors = int(sum(r["errors"] for r in rows))
fig.suptitle(f"halid soak: {n} annotators × {rate} label/s, {len(rows)} min, {errors} errors (Deploy/bench/soak.sh)")
fig.tight_layout()
fig.savefig(f"{out}/soak.png", dpi=100)
print(f"soak: wrote {out}/soak.csv and {out}/soak.png")
PY
echo "daemon: peak RSS $(grep VmHWM /proc/$daemon/status | awk '{print $2/1024 " MiB"}'), labels stored $(python3 -c "import sqlite3; print(sqlite3.connect('$data/labels.sqlite').execute('select count(*) from label_events').fetchone()[0])")"
