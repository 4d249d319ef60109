#!/usr/bin/env bash
# Regenerates the committed protobuf-c code from Proto/hali.proto.
#   Sources/CHaliProto/hali.pb-c.c
#   Sources/CHaliProto/include/hali.pb-c.h
# Needs protoc-c (Debian: protobuf-c-compiler). CI runs this and fails if the committed copy differs:
#   bash Proto/generate.sh && git diff --exit-code -- Sources/CHaliProto
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v protoc-c >/dev/null || { echo "generate.sh: protoc-c not found (apt-get install protobuf-c-compiler)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd "$root/Proto" && protoc-c --c_out="$out" hali.proto)
mkdir -p "$root/Sources/CHaliProto/include"
cp "$out/hali.pb-c.c" "$root/Sources/CHaliProto/hali.pb-c.c"
cp "$out/hali.pb-c.h" "$root/Sources/CHaliProto/include/hali.pb-c.h"
echo "generate.sh: $(protoc-c --version | head -1) -> Sources/CHaliProto"
