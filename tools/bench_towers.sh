#!/usr/bin/env bash
# The tower rows of BENCHMARKS.md (issue 25): ours against PyTorch 2.x and PyTorch 1.13 on the same
# shapes, 2 threads each, the sides alternated within each round so that a change in the machine's
# load hits all of them alike. One process per measurement; each prints its own median and peak RSS.
#
#   tools/bench_towers.sh [ROUNDS=2] [ROWS="conformer vit whisper minilm"]
#
# Rows (each the training step's zero_grad, forward, loss, backward and AdamW, except MiniLM):
#   conformer  small Conformer step, batch 32 x 400 frames, dropout 0.1   (conformer_bench / bench_conformer_torch.py)
#   vit        ViT small28 step, batch 256 28x28 images                  (vit_bench / bench_vit_torch.py)
#   whisper    Whisper tiny.en encoder step, all 4 blocks trained, batch 32 x 300 frames, CWCL
#                                                                        (whisper_bench / bench_whisper_torch.py)
#   minilm     all-MiniLM-L6-v2 forward under no_grad, batch 64 x 32 tokens (minilm_bench / bench_minilm_torch.py)
# Environments (not installed by tools/setup.sh; nothing here runs in CI):
#   ours          build/bench/* (tools/build.sh builds them)
#   PyTorch 2.x   .cache/venv-torch2: python3 -m venv .cache/venv-torch2 &&
#                 .cache/venv-torch2/bin/pip install torch torchvision torchaudio transformers pillow
#                 (PyPI's wheels; 2.15.0 when this was written)
#   PyTorch 1.13  Debian's python3-torch, python3-torchvision, python3-torchaudio, plus transformers
#                 4.40 for MiniLM and Whisper: /usr/bin/python3 -m venv --system-site-packages
#                 .cache/venv-t113 && .cache/venv-t113/bin/pip install transformers==4.40.2 "tokenizers<0.20"
# Wait for a quiet machine (uptime's load average well under 1) and leave it alone while this runs.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
rows=${2:-"conformer vit whisper minilm"}
export OMP_NUM_THREADS=2 OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
t2=.cache/venv-torch2/bin/python
t113=.cache/venv-t113/bin/python

# The three sides' command lines of one row.
side_cmd() {  # row side
  local row=$1 side=$2 py
  [ "$side" = torch2 ] && py=$t2 || py=$t113
  case $row/$side in
  conformer/ours) echo "build/bench/conformer_bench --phase step --iters 3 --warmup 1" ;;
  conformer/*) echo "$py tools/bench_conformer_torch.py --phase step --iters 3 --warmup 1 --threads 2" ;;
  vit/ours) echo "build/bench/vit_bench --phase step --batch 256 --iters 3 --warmup 1" ;;
  vit/*) echo "$py tools/bench_vit_torch.py --phase step --batch 256 --iters 3 --warmup 1 --threads 2" ;;
  whisper/ours) echo "build/bench/whisper_bench --phase step --batch 32 --frames 300 --train-layers 4 --iters 3 --warmup 1" ;;
  whisper/*) echo "$py tools/bench_whisper_torch.py --phase step --batch 32 --frames 300 --train-layers 4 --iters 3 --warmup 1 --threads 2" ;;
  minilm/ours) echo "build/bench/minilm_bench" ;;
  minilm/*) echo "$py tools/bench_minilm_torch.py --threads 2" ;;
  esac
}

echo "bench_towers: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  for row in $rows; do
    for side in ours torch2 torch113; do
      cmd=$(side_cmd "$row" "$side")
      # Only the summary lines: the median, the peak memory, the FLOP rate and the machine header.
      $cmd 2>&1 | grep -E "median|peak RSS|GFLOP/s|FMA limit" | sed "s/^/[$row $side r$round] /" || echo "[$row $side r$round] FAILED: $cmd"
    done
  done
  echo "bench_towers: round $round done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
