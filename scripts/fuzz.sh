#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", clang with ASan and UBSan) and runs each one for a
# bounded time on a copy of its committed seed corpus. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"

scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Inputs that crash a target outlive the run, so a failure can be replayed and kept as a seed.
artifacts="build/fuzz/artifacts"
mkdir -p "$artifacts"
status=0
for target in build/fuzz/tests/fuzz/*_fuzz; do
  name="$(basename "$target" _fuzz)"
  mkdir -p "$work/$name"
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -r "tests/fuzz/corpus/$name/." "$work/$name/"; fi
  echo "fuzz: $name for ${seconds}s"
  if ! "$target" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0 \
      -artifact_prefix="$artifacts/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
    echo "fuzz: $name found a failure (input saved under $artifacts/; replay with $target FILE):" >&2
    tail -n 40 "$work/$name.log" >&2
    status=1
  fi
done
exit "$status"
