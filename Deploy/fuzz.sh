#!/usr/bin/env bash
# Fuzzes what HALI reads from strangers with libFuzzer and AddressSanitizer (Sources/Tools/hali-fuzz):
#   bash Deploy/fuzz.sh wire|index|handlers|importers [RUNS] [SECONDS]
# Builds hali-fuzz with -sanitize=fuzzer,address in its own folder (.build-fuzz), starts from the committed corpus
# (Tests/fuzz/corpus/TARGET), and writes new inputs it finds to a scratch folder, merging the ones that add coverage
# back into the corpus when it ends. A crash leaves its input as Tests/fuzz/crash-* and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-wire}; runs=${2:-10000000}; seconds=${3:-3600}
scratch=.build-fuzz
# gold (the default linker) stops with an internal error on the sanitized objects; the toolchain's lld links them.
toolset=$(mktemp --suffix=.json)
echo '{"schemaVersion": "1.0", "swiftCompiler": {"extraCLIOptions": ["-use-ld=lld"]}}' > "$toolset"
flags=(-c release --scratch-path "$scratch" --product hali-fuzz --toolset "$toolset"
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
  -Xcc -fsanitize=fuzzer-no-link,address)
swift build "${flags[@]}"
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)/hali-fuzz
corpus=Tests/fuzz/corpus/$target
mkdir -p "$corpus"
found=$(mktemp -d)
trap 'rm -rf "$found" "$toolset"' EXIT
# The handlers target keeps a daemon running in the process: what it holds between inputs (sessions, heads, caches)
# is not a leak, and a reply may legitimately take seconds (a pick, a large patch).
extra=()
# The Swift runtime's own backtracer reads memory that AddressSanitizer then reports instead of the real trap.
export SWIFT_BACKTRACE=enable=no
if [ "$target" = handlers ]; then extra=(-detect_leaks=0 -rss_limit_mb=6144 -timeout=180); export ASAN_OPTIONS=detect_leaks=0; fi
# Foundation's XMLParser leaks a CFString for every XML error it reports (_CFErrorCreateFromXMLInterface, seen in the
# first seconds of fuzzing the ASAP importer): not ours to fix, and it would stop every run.
# Those leaks add up: a run of 1.25 million inputs reached libFuzzer's default 2 GiB RSS limit after 41 minutes (the
# input it stopped on uses 86 MB alone), so the limit is raised for this target.
if [ "$target" = importers ]; then extra=(-detect_leaks=0 -rss_limit_mb=6144); export ASAN_OPTIONS=detect_leaks=0; fi
echo "fuzz.sh: $target, up to $runs inputs or $seconds s, AddressSanitizer on"
status=0
HALI_FUZZ_TARGET=$target "$bin" -runs="$runs" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 "${extra[@]}" \
  -artifact_prefix=Tests/fuzz/crash-"$target"- "$found" "$corpus" || status=$?
# What it found up to a crash is kept too.
HALI_FUZZ_TARGET=$target "$bin" -merge=1 "${extra[@]}" "$corpus" "$found" 2>&1 | tail -1
echo "fuzz.sh: corpus $corpus now holds $(ls "$corpus" | wc -l) inputs"
exit "$status"
