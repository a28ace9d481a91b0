#!/usr/bin/env bash
# Installs what building and testing mamba.hpp needs on Debian 12 (and what .ci/run adds: clang
# with libFuzzer). Pass --python to add what the
# reference and training scripts need (PyTorch and OpenBLAS from Debian).
set -euo pipefail
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs=(cmake g++ make pkg-config libeigen3-dev nlohmann-json3-dev libutf8proc-dev
      libgtest-dev libgmock-dev libbenchmark-dev python3-regex
      clang-14 libclang-rt-14-dev)  # clang and libFuzzer: the fuzz harnesses in .ci/run
[ "${1:-}" = "--python" ] && pkgs+=(python3-torch python3-numpy libopenblas0-pthread)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
