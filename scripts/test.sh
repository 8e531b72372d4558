#!/usr/bin/env bash
# Builds SparKV (Release, preset "release", or "ci" with warnings as errors when CI=true) and runs
# every test with ctest, then cross-builds the NEON kernels for aarch64 and tests them under
# qemu-aarch64 (scripts/test-aarch64.sh). Needs the shared data folder beside the checkout (or
# SPARKV_DATA).
set -euo pipefail
cd "$(dirname "$0")/.."

data="${SPARKV_DATA:-$(pwd)/../shared/data}"
if [ ! -f "$data/models/stories260K.bin" ]; then
  echo "test: the test data folder '$data' is missing or incomplete (models/stories260K.bin not found)." >&2
  echo "test: put the shared data beside the checkout as ../shared/data, or set SPARKV_DATA." >&2
  exit 1
fi

preset=release
if [ "${CI:-}" = "true" ]; then preset=ci; fi
scripts/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j 2 --timeout 900
scripts/test-aarch64.sh
