#!/usr/bin/env bash
# Runs the SIMD kernel tests (tests/test_simd.cpp, tests/test_ops.cpp) on the AArch64 NEON path,
# on an x86-64 Debian 12 machine: cross-compiled with g++-aarch64-linux-gnu (-O2 -march=armv8-a,
# the base Advanced SIMD the NEON kernels use; MAMBA_CROSS_FLAGS overrides) and run by ctest
# under qemu user-mode emulation. Installs what it needs with apt-get when missing. Build
# directory: build-neon/, or the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-neon}
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs=(cmake make g++-aarch64-linux-gnu qemu-user libgtest-dev libeigen3-dev nlohmann-json3-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
cmake -S tests/cross -B "$build" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" \
  ${MAMBA_CROSS_FLAGS:+-DMAMBA_CROSS_FLAGS="$MAMBA_CROSS_FLAGS"}
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
