#!/usr/bin/env bash
# Quick start: install what is missing, build everything, and run the default training job end to
# end: generate the small speech corpus (first run only), cache its features and the frozen
# MiniLM embeddings, train the mini Conformer with CWCL, print the zero-shot results. Outputs in
# runs/default (config.ini, metrics.csv, eval_final.json, checkpoints/, PNG plots).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
./build/train/train "$@"
