#!/usr/bin/env bash
# Installs what the project needs on Debian 12, and nothing when it is all there (quiet then).
# Idempotent; run as root (or with sudo). Used by the quick start and by CI (.ci/run).
set -euo pipefail

packages=(
  build-essential cmake git pkg-config
  libeigen3-dev                 # CPU linear algebra
  libopenblas-openmp-dev        # faster GEMM than Eigen's own on our machines (BENCHMARKS.md)
  libboost-program-options-dev  # command lines and config files of the binaries
  nlohmann-json3-dev            # JSON headers of safetensors files and model configs
  libgtest-dev                  # tests
  libbenchmark-dev              # bench/
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
