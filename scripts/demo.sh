#!/usr/bin/env bash
# Builds SparKV and runs `sparkv demo`: a synthetic model, a context ingested into a store, a
# rate-capped server on loopback, and the context's KV loaded three ways. Arguments go to the demo,
# e.g. `scripts/demo.sh --reprofile` measures the device profile again instead of reusing the cached one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target sparkv
exec build/release/src/cli/sparkv demo "$@"
