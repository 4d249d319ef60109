# Sourced by serve_load.sh and soak.sh: starts a release halid on a free loopback port with N bench annotators and the
# committed backbone, and waits until it listens. Needs $bin, $slide, $data, $n; sets $port and $daemon and a trap that
# stops the daemon when the calling script exits.
"$bin/hali-bench-serve" --annotators "$n" --write-annotators "$data/annotators" > /dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/halid" --listen "127.0.0.1:$port" --data-dir "$data" --slide "$slide" --annotators-file "$data/annotators" \
  --weights Deploy/models/hali-nuclei-v2.safetensors --log-level warning 2> "$data/halid.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true' EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
  kill -0 $daemon 2>/dev/null || { cat "$data/halid.log"; exit 1; }
  sleep 0.2
done
