#!/usr/bin/env bash
# Builds (if needed) and runs the whole test suite; exits non-zero on any failing test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
# Sequential on purpose: every test binary already uses all cores through OpenMP.
ctest --test-dir build --output-on-failure
