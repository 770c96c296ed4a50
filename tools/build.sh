#!/usr/bin/env bash
# Configures and builds the project into ./build (Release, -O3 -march=native, OpenMP).
# CW_WERROR=ON in the environment turns warnings into errors (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCW_WERROR="${CW_WERROR:-OFF}" >/dev/null
cmake --build build -j"$(nproc)"
