#!/usr/bin/env bash
# Quick start: install what is missing, build everything, run the example job end to end.
# (Until the train binary exists, the example is examples/tensor_tour: views, ops and a small
# network fitted with autograd.)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
./build/examples/tensor_tour
