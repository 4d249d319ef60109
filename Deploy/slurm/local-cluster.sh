#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and for trying `hali batch` before a real cluster:
#   bash Deploy/slurm/local-cluster.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
#   bash Deploy/slurm/local-cluster.sh stop DIR
# Needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge) and root. Everything lives in DIR: its own
# munge socket and key copy, slurm.conf, state, spool and logs; ports 16817/16818 (SLURM_TEST_PORT_BASE changes them).
# No accounting database (sacct is off): `hali batch status` reads the index folder instead.
set -euo pipefail
action=${1:?usage: local-cluster.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: local-cluster.sh start|stop DIR}" && cd "$2" && pwd)
base=${SLURM_TEST_PORT_BASE:-16817}

stop() {
  for pidfile in slurmd.pid slurmctld.pid munged.pid; do
    [[ -s "$dir/$pidfile" ]] && kill "$(cat "$dir/$pidfile")" 2>/dev/null || true
  done
  sleep 1
}

case "$action" in
stop)
  stop
  exit 0
  ;;
start) ;;
*)
  echo "local-cluster.sh: start or stop, not $action" >&2
  exit 2
  ;;
esac

command -v slurmctld >/dev/null && command -v munged >/dev/null || {
  echo "local-cluster.sh: slurmctld or munged not found (apt-get install slurm-wlm munge)" >&2
  exit 3
}
stop
mkdir -p "$dir/state" "$dir/spool"
# munge refuses keys others may read; a key of our own keeps the test away from the machine's.
[[ -s "$dir/munge.key" ]] || { dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none; chmod 600 "$dir/munge.key"; }
munged --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" --log-file="$dir/munged.log" \
  --pid-file="$dir/munged.pid" --seed-file="$dir/munged.seed"
cpus=$(nproc)
memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))
cat >"$dir/slurm.conf" <<CONF
ClusterName=hali-local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
SlurmctldPort=$base
SlurmdPort=$((base + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
NodeName=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" || { stop; exit 1; }
slurmd -f "$SLURM_CONF" || { stop; exit 1; }
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.5
done
echo "local-cluster.sh: the node did not come up; logs in $dir" >&2
tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
stop  # leave no daemon behind
exit 1
