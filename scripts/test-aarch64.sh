#!/usr/bin/env bash
# Cross-builds the engine kernel test for aarch64 (preset "aarch64": the engine, the modules under
# it and that one test) and runs it under qemu-aarch64 on two emulated CPUs.
# - "-cpu max" has the dot product extension. The test checks both NEON tables ("neon-dotprod"
#   and "neon") and that the dispatch picks "neon-dotprod".
# - "-cpu cortex-a57" (ARMv8.0) lacks it. The dispatch must pick "neon", and any SDOT reached by
#   mistake stops the run with SIGILL.
# A last run checks that SPARKV_KERNELS=scalar still forces the scalar table. Emulated timings
# mean nothing, so this checks results only. scripts/test.sh calls it, and scripts/install-deps.sh
# installs the cross compiler and qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-aarch64: $tool not found; run scripts/install-deps.sh" >&2
    exit 1
  fi
done

cmake --preset aarch64
cmake --build --preset aarch64 -j "$(nproc)"

binary=build/aarch64/tests/engine_kernels_test
sysroot=/usr/aarch64-linux-gnu
# The x86 tables are not built for aarch64, so their cases are left out rather than listed as skipped.
not_x86='-Avx512KernelTest.*:*/avx2'

# Runs the test under qemu on CPU ($1), expecting the dispatch to pick the table named $2, with
# $3 as the --gtest_filter value.
run() {
  echo "test-aarch64: qemu-aarch64 -cpu $1, expecting table $2"
  SPARKV_EXPECT_KERNELS="$2" qemu-aarch64 -cpu "$1" -L "$sysroot" "$binary" --gtest_brief=1 --gtest_filter="$3"
}

run max neon-dotprod "$not_x86"
# This CPU cannot run the dotprod table, whose cases would only report themselves skipped.
run cortex-a57 neon "$not_x86:*/neon_dotprod"
echo "test-aarch64: qemu-aarch64 -cpu max with SPARKV_KERNELS=scalar"
SPARKV_KERNELS=scalar SPARKV_EXPECT_KERNELS=scalar qemu-aarch64 -cpu max -L "$sysroot" "$binary" \
  --gtest_brief=1 --gtest_filter='KernelsTest.BestKernels*:KernelsTest.Aarch64Dispatch*'
echo "test-aarch64: all NEON kernel tests passed"
