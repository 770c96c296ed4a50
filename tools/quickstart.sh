#!/usr/bin/env bash
# Quick start: install what is missing, build what it runs (the `train` and `eval` binaries and
# the examples, not the tests or benchmarks: tools/test.sh builds those), and run the default
# training job end to end: generate the small speech corpus (first run only), cache its features
# and the frozen MiniLM embeddings, train the mini Conformer with CWCL, print the zero-shot
# results beside chance. Outputs in runs/default (config.ini, metrics.csv, eval_final.json,
# checkpoints/, PNG plots).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# The examples' targets, read from their CMakeLists so that a new example is built too.
examples=$(sed -n 's/^ *add_executable(\([A-Za-z0-9_]*\) .*/\1/p' examples/CMakeLists.txt)
# shellcheck disable=SC2086  # one word per target
tools/build.sh train eval $examples
./build/train/train "$@"
