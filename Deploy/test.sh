#!/usr/bin/env bash
# Runs every HALI test on a fresh Debian 12 machine (as root): installs the system packages, checks that the
# committed protobuf-c code is current, builds once, runs the Swift tests and the Python interop test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash Deploy/install-deps.sh --python

echo "== generated protocol code is current"
bash Proto/generate.sh
if ! git diff --quiet -- Sources/CHaliProto 2>/dev/null; then
  git --no-pager diff --stat -- Sources/CHaliProto
  echo "Sources/CHaliProto differs from what Proto/generate.sh produces: run it and commit the result." >&2
  exit 1
fi

echo "== swift format lint (the committed .swift-format; fix with: swift format format -i -r Sources Tests Package.swift)"
swift format lint --strict -r Sources Tests Package.swift

echo "== swift build"
swift build

echo "== fuzz corpus replay (every input libFuzzer kept, Deploy/fuzz.sh)"
for target in wire index handlers importers; do "$(swift build --show-bin-path)/hali-fuzz" "$target" "Tests/fuzz/corpus/$target"; done

echo "== swift test"
swift test 2>&1 | grep -vE '^(◇|\[[0-9]+/[0-9]+\])' 

# OpenBLAS picks its kernels by CPU unless OPENBLAS_CORETYPE forces one; a test must hold under either (it asserts
# properties, never what one kernel happens to round). The suites that multiply matrices run again under the
# other choice: OpenBLAS's own where the environment forces a kernel, Haswell's where it does not (CPUs with AVX2).
blas_suites='HaliMathTests|HaliNetTests|HaliLearningTests|HaliTrainingTests|HaliIngestTests'
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "== BLAS suites again with OpenBLAS choosing its own kernel (the run above forced $OPENBLAS_CORETYPE)"
  env -u OPENBLAS_CORETYPE swift test --skip-build --filter "$blas_suites" 2>&1 | grep -vE '^(◇|\[[0-9]+/[0-9]+\])'
elif grep -qw avx2 /proc/cpuinfo; then
  echo "== BLAS suites again with OPENBLAS_CORETYPE=Haswell (the run above let OpenBLAS choose)"
  OPENBLAS_CORETYPE=Haswell swift test --skip-build --filter "$blas_suites" 2>&1 | grep -vE '^(◇|\[[0-9]+/[0-9]+\])'
else
  echo "== BLAS suites: this CPU has no AVX2, so there is no second kernel to force; skipped"
fi

echo "== python interop (protobuf runtime from PyPI against halid)"
python3 -m pytest -q Tests/interop
