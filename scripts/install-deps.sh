#!/usr/bin/env bash
# Installs the Debian 12 packages that SparKV's build, tests and demo need, when any is missing.
# Needs root (or sudo) and apt. Safe to run again: it installs nothing when all are present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config   # compiler and build tools
  libcurl4-openssl-dev                            # HTTP client of the device side
  libcpp-httplib-dev                              # HTTP server of `sparkv serve`
  nlohmann-json3-dev                              # manifests, profiles, reports
  libcli11-dev                                    # command-line flags
  libzstd-dev libxxhash-dev                       # compression, chunk keys and checksums
  libgtest-dev libgmock-dev libbenchmark-dev      # tests and microbenchmarks
  clang                                           # the libFuzzer targets
  g++-aarch64-linux-gnu qemu-user                 # NEON kernels, cross-built and run under qemu
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: missing packages (${missing[*]}) and not root; run this script as root" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
