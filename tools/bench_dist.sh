#!/usr/bin/env bash
# Step time of data-parallel training on one machine: 1 rank x 1 thread, 2 ranks x 1 thread
# (mpirun) and 1 process x 2 threads, on the miniature CWCL configuration (configs/mini_cwcl.ini,
# global batch 32), and rank 0's time and payload in collectives. Prints one row per setting:
# the median step time over steps 3..N (metrics.csv step_seconds; the first two warm up), the
# utterances per second it means, and the communication per step. Run from the repository root
# after building ./build (or BUILD=<dir>), on an otherwise idle machine (it prints `uptime`).
# Usage: tools/bench_dist.sh [steps=12] [out=runs/bench_dist]
set -euo pipefail
steps=${1:-12}
out=${2:-runs/bench_dist}
build=${BUILD:-build}
train="$build/train/train"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun_flags="--oversubscribe --mca btl self,vader --mca oob_tcp_if_include lo"
common="--config configs/mini_cwcl.ini --optim.steps 600 --run.stop_after $steps --run.progress lines \
  --run.checkpoint_every 100000 --run.log_every 1000"

median_step() {  # median of step_seconds (13th column) over steps 3..N of a metrics.csv
  awk -F, 'NR > 3 { print $13 }' "$1/metrics.csv" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'
}

run() {  # name, launcher prefix, threads
  local name=$1 launcher=$2 threads=$3 dir="$out/$1"
  rm -rf "$dir"
  echo "== $name (load before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  $launcher "$train" $common --run.threads "$threads" --run.out "$dir" > "$dir.log" 2>&1
  local t
  t=$(median_step "$dir")
  local comm
  comm=$(grep -o 'spent .* per step' "$dir.log" | sed 's/spent //' || true)
  printf '| %-26s | %6s s | %6.2f utt/s | %s |\n' "$name" "$t" "$(echo "32 / $t" | bc -l)" "${comm:--}"
}

mkdir -p "$out"
echo "uptime: $(uptime)"
echo "| setting                    | step (median) | throughput | collectives (rank 0, per run; per step) |"
run "1 rank x 1 thread" "" 1
run "2 ranks x 1 thread (MPI)" "mpirun -np 2 $mpirun_flags" 1
run "1 process x 2 threads" "" 2
echo "uptime: $(uptime)"
