#!/usr/bin/env bash
# The speech-text reproduction from the pretrained Whisper tower on the `full` corpus (issue 19,
# EXPERIMENTS.md "Speech-text from the pretrained Whisper tower"): InfoNCE vs CWCL (the paper's
# linear kernel) vs CWCL with the exp kernel, three seeds each, K = 0 and K = 1 trained blocks,
# and the reference rows (untrained tower, least-squares projection, text-only bound).
#
#   tools/run_whisper_full.sh [k0|k1|k0long|baselines|all]   (default all; needs tools/setup.sh first)
#
# Idempotent and resumable: a run with eval_final.json is skipped, a run folder without one is
# resumed from its last checkpoint (--run.resume true). The first run builds the corpus's log-mel
# and frozen-block caches (both cores); later runs read them. Runs use one thread each; set
# JOBS=2 to run two at a time. Results: python3 tools/summarize_runs.py runs/wfull_*.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CW_BUILD:-build}
CORPUS=${CORPUS:-.cache/speech/full}
JOBS=${JOBS:-1}
what=${1:-all}
[ -f "$CORPUS/corpus.json" ] || { echo "no complete corpus at $CORPUS: run tools/make_speech_corpus.py --size full" >&2; exit 1; }
mkdir -p runs

# One training run: name, config, then extra options.
train_run() {
  local name=$1 config=$2; shift 2
  local out=runs/$name
  if [ -f "$out/eval_final.json" ]; then echo "$name: done"; return 0; fi
  local resume=()
  [ -d "$out/checkpoints" ] && resume=(--run.resume true)
  echo "$name: training ($(date +%H:%M:%S))"
  "$BUILD/train/train" --config "$config" --data.corpus "$CORPUS" --data.corpus_size none \
    --run.out "$out" "${resume[@]}" "$@" > "$out.log" 2>&1 || { echo "$name: FAILED (see $out.log)" >&2; return 1; }
}

# Runs each line of stdin (a train_run argument list) with up to JOBS at a time.
run_all() {
  local pids=()
  while read -r -a args; do
    [ ${#args[@]} -eq 0 ] && continue
    train_run "${args[@]}" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

# The caches first, on both cores, by one short run (later runs only read them).
warm_caches() {
  train_run wfull_k0_infonce_s0 configs/mini_whisper_infonce.ini --run.seed 0 --run.threads 2
}

runs_for() {  # K
  local k=$1
  for seed in 0 1 2; do
    echo "wfull_k${k}_infonce_s$seed configs/mini_whisper_infonce.ini --run.seed $seed --model.speech_train_layers $k"
    echo "wfull_k${k}_cwcl_s$seed configs/mini_whisper_cwcl.ini --run.seed $seed --model.speech_train_layers $k"
    echo "wfull_k${k}_cwclexp_s$seed configs/mini_whisper_cwcl.ini --run.seed $seed --model.speech_train_layers $k --loss.kernel exp --loss.kernel_temperature 0.1"
  done
}

# K = 0 trained to convergence: 3750 steps of 32 (three epochs of the 40k pairs; 300 steps see a
# quarter of one), where the least-squares projection, fitted on every pair, is far ahead.
runs_long() {
  for seed in 0 1 2; do
    local long="--optim.steps 3750 --optim.warmup_steps 200 --run.checkpoint_every 500"
    echo "wfull_k0long_infonce_s$seed configs/mini_whisper_infonce.ini --run.seed $seed $long"
    echo "wfull_k0long_cwcl_s$seed configs/mini_whisper_cwcl.ini --run.seed $seed $long"
    echo "wfull_k0long_cwclexp_s$seed configs/mini_whisper_cwcl.ini --run.seed $seed $long --loss.kernel exp --loss.kernel_temperature 0.1"
  done
}

baselines() {
  for b in untrained lstsq text; do
    [ -f "runs/wfull_baseline_$b.json" ] && continue
    "$BUILD/train/eval" --run runs/wfull_k0_infonce_s0 --baseline "$b" --json "runs/wfull_baseline_$b.json" \
      > "runs/wfull_baseline_$b.log" 2>&1 || { echo "baseline $b: FAILED" >&2; return 1; }
    echo "baseline $b: done"
  done
}

case $what in
  k0) warm_caches; runs_for 0 | run_all ;;
  k1) warm_caches; runs_for 1 | run_all ;;
  k0long) warm_caches; runs_long | run_all ;;
  baselines) warm_caches; baselines ;;
  all) warm_caches; runs_for 0 | run_all; baselines; runs_for 1 | run_all; runs_long | run_all ;;
  *) echo "usage: $0 [k0|k1|k0long|baselines|all]" >&2; exit 2 ;;
esac
