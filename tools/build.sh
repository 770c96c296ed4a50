#!/usr/bin/env bash
# Configures and builds the project into ./build (Release, -O3 -march=native, OpenMP).
#   tools/build.sh                 everything: libraries, binaries, examples, tests, benchmarks
#   tools/build.sh train eval ...  only those targets and what they link (the quick start's)
# CW_WERROR=ON in the environment turns warnings into errors (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCW_WERROR="${CW_WERROR:-OFF}" >/dev/null
if [ $# -gt 0 ]; then
  cmake --build build -j"$(nproc)" --target "$@"
else
  cmake --build build -j"$(nproc)"
fi
