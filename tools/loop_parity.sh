#!/usr/bin/env bash
# Runs every task of `train` for a few steps (evaluations, checkpoints and a resume included) with
# the given binary and prints each run's metrics.csv, so that two builds can be compared line by
# line: a refactoring of the training loop must give the same losses to the last printed digit.
#
#   tools/loop_parity.sh <train binary> <out folder> [image data root]
#   diff <(tools/loop_parity.sh old/train /tmp/a) <(tools/loop_parity.sh build/train /tmp/b)
#
# Needs the small speech corpus (.cache/speech/small, made by the default job) and an image data
# set root with fashion_mnist (tools/make_image_corpus.py --size tiny --out DIR). The step_seconds
# column (wall time) is dropped from the printout. One thread each, so the sums are reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "$1")
out=$2
images=${3:-.cache/images/default}
rm -rf "$out"
mkdir -p "$out"
common=(--run.threads 1)
quiet=(--run.plots false --run.progress lines)  # the speech tasks' (every task's since the one loop)
speech=(--data.corpus .cache/speech/small --data.corpus_size none --eval.max_items 20)

run() {  # name, args...
  local name=$1
  shift
  "$bin" "$@" --run.out "$out/$name" >"$out/$name.log" 2>&1 || {
    echo "$name: exit $?"
    tail -5 "$out/$name.log"
  }
}

run conformer --config configs/mini_cwcl.ini "${common[@]}" "${quiet[@]}" "${speech[@]}" --optim.steps 12 \
  --optim.warmup_steps 2 --run.eval_every 6 --run.checkpoint_every 6
run resumed --config configs/mini_cwcl.ini "${common[@]}" "${quiet[@]}" "${speech[@]}" --optim.steps 12 \
  --optim.warmup_steps 2 --run.eval_every 6 --run.checkpoint_every 6 --run.stop_after 7
run resumed --config configs/mini_cwcl.ini "${common[@]}" "${quiet[@]}" "${speech[@]}" --optim.steps 12 \
  --optim.warmup_steps 2 --run.eval_every 6 --run.checkpoint_every 6 --run.resume true
run whisper --config configs/mini_whisper_infonce.ini "${common[@]}" "${quiet[@]}" "${speech[@]}" --optim.steps 8 \
  --optim.warmup_steps 2 --run.eval_every 4
run asr --config configs/mini_asr_pretrain.ini "${common[@]}" "${quiet[@]}" "${speech[@]}" --optim.steps 10 \
  --optim.warmup_steps 2 --run.eval_every 5 --optim.batch_size 16
run ssl --config configs/mini_image_ssl.ini "${common[@]}" --data.image_root "$images" --optim.steps 10 \
  --optim.warmup_steps 2 --run.eval_every 5 --optim.batch_size 32 --ssl.knn_memory 200 --eval.max_items 100
run image_text --config configs/mini_image_text_cwcl.ini "${common[@]}" --data.image_root "$images" \
  --model.image_tower "$out/ssl/image_tower.safetensors" --optim.steps 10 --optim.warmup_steps 2 \
  --run.eval_every 5 --optim.batch_size 32 --eval.max_items 100
if command -v mpirun >/dev/null; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe --mca btl self,vader --mca oob_tcp_if_include lo \
    "$bin" --config configs/mini_cwcl.ini "${common[@]}" "${quiet[@]}" "${speech[@]}" --optim.steps 6 \
    --optim.warmup_steps 2 --run.eval_every 3 --run.out "$out/two_ranks" >"$out/two_ranks.log" 2>&1 ||
    echo "two_ranks: exit $?"
fi

for name in conformer resumed whisper asr ssl image_text two_ranks; do
  for f in metrics.csv eval.csv cer.csv knn.csv; do
    [ -f "$out/$name/$f" ] || continue
    echo "== $name/$f"
    # Every column but the last (step_seconds: wall time) of metrics; evaluations whole, less
    # their timing columns where they have one.
    if [ "$f" = metrics.csv ]; then sed 's/,[^,]*$//' "$out/$name/$f"; else cat "$out/$name/$f"; fi
  done
done
