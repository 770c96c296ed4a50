#!/usr/bin/env bash
# One prepared GPU check of the CUDA backend (issue 8), for a session that has a GPU machine
# (H200 class, no network, CMake + nvcc there, cuDNN maybe only inside Python's nvidia packages).
# It builds core/, autograd/, nn/, cuda/ and tests/cuda with nvcc (tools/gpu_check/CMakeLists.txt,
# which needs none of the project's other dependencies), runs the CUDA tests, runs them again
# under compute-sanitizer memcheck, then times the main kernels against PyTorch on the same
# shapes. Every step has a time limit and the script goes on after a failure; all output lands
# in $OUT (default ./gpu_check_out; 10 files). Worst case 9.7 minutes (the sum of the limits), expected 4-6.
#
# On the development machine, once (Eigen, nlohmann/json and GoogleTest sources into an ignored
# folder that the run carries; ~3 MB):
#   tools/gpu_check.sh --prepare
# The training-step program can be rehearsed here without a GPU:
#   CW_GPU_CHECK_ON_CPU=1 <build>/train_step_check --batch 4 --frames 100 --iters 2
#   python3 tools/gpu_check/torch_conformer_step.py --device cpu --batch 4 --frames 100 --iters 2
# and so can the benchmarks' programs (no measurement): CW_GPU_CHECK_ON_CPU=1 <build>/loss_bench 256,
# CW_GPU_CHECK_ON_CPU=1 <build>/conv_bench, and their torch_*_bench.py under the same variable.
# Then, as the device run's command, with carry [".gpu_deps"] and timeout_s 600:
#   bash tools/gpu_check.sh
set -u

if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  mkdir -p .gpu_deps
  grep -qx '/.gpu_deps/' .git/info/exclude 2>/dev/null || echo '/.gpu_deps/' >> .git/info/exclude
  tar -C / -cJf .gpu_deps/deps.tar.xz --transform 's,^usr/include/,,;s,^usr/src/,,' \
    usr/include/eigen3 usr/include/nlohmann usr/src/googletest
  ls -l .gpu_deps/deps.tar.xz
  exit 0
fi

OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.log"
BUILD="${CW_GPU_BUILD:-/tmp/cw_gpu_build}"  # overridable, to rehearse the script on a dev machine
DEPS=/tmp/cw_deps
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
# step NAME SECONDS LOGFILE COMMAND...: runs with a time limit, records rc and seconds.
step() {
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  local rc=$?
  say "step $name: rc=$rc ($((SECONDS - t0)) s, limit $limit s$([[ $rc == 124 || $rc == 137 ]] && echo ', TIMED OUT'))"
  return $rc
}

say "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
# nvcc may be installed without being on PATH.
command -v nvcc > /dev/null || export PATH="$PATH:/usr/local/cuda/bin"
{
  echo "nvcc: $(command -v nvcc || echo MISSING)  g++: $(command -v g++ || echo MISSING)  ninja: $(command -v ninja || echo no)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  nvcc --version 2>&1 | tail -2
  g++ --version 2>&1 | head -1
  cmake --version 2>&1 | head -1
  python3 -c "import nvidia.cudnn as m; print('cudnn wheel:', list(m.__path__)[0])" 2>&1 | tail -1
  compute-sanitizer --version 2>&1 | head -2
} | tee -a "$SUMMARY"

if [[ ! -f .gpu_deps/deps.tar.xz ]]; then
  say "missing .gpu_deps/deps.tar.xz: run 'tools/gpu_check.sh --prepare' first and carry .gpu_deps"
  exit 2
fi
rm -rf "$DEPS" && mkdir -p "$DEPS" && tar -C "$DEPS" -xJf .gpu_deps/deps.tar.xz

gen=()
command -v ninja > /dev/null && gen=(-G Ninja)
step configure 40 "$OUT/configure.log" \
  cmake -S tools/gpu_check -B "$BUILD" "${gen[@]}" -DCW_DEPS="$DEPS" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 ${CW_GPU_CMAKE_ARGS:-}
grep -E "cwcl|gpu_check|cuDNN|CMake Error" -A2 "$OUT/configure.log" | head -30 | tee -a "$SUMMARY"
# A cuDNN taken from the Python wheel loads its sub-libraries (libcudnn_cnn.so.9, ...) by name:
# put its folder on the loader's path for the programs below.
cudnn_lib=$(sed -n 's/^CW_CUDNN_LIB:FILEPATH=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
if [[ "$cudnn_lib" == */site-packages/* || "$cudnn_lib" == */dist-packages/* ]]; then
  export LD_LIBRARY_PATH="$(dirname "$cudnn_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "cuDNN from the Python wheel: LD_LIBRARY_PATH starts with $(dirname "$cudnn_lib")"
fi
step build 180 "$OUT/build.log" cmake --build "$BUILD" --target cw_cuda_tests cuda_ops_bench train_step_check loss_bench conv_bench -j16
tail -5 "$OUT/build.log" >> "$SUMMARY"

BIN="$BUILD/cw_cuda_tests"
if [[ -x "$BIN" ]]; then
  step tests 45 "$OUT/tests.log" "$BIN" --gtest_output="xml:$OUT/cuda_tests.xml"
  grep -E "tests ran|^\[  PASSED  \] [0-9]|^\[  SKIPPED \] [0-9]|^\[  FAILED  \]" "$OUT/tests.log" | tee -a "$SUMMARY"
  # memcheck: out-of-bounds and misaligned accesses in every kernel the tests launch.
  # (The losses' option grid is left out: the xent passes test runs the same kernels, and the
  # grid's ~240 loss runs under memcheck would not fit the limit. So are the convolutions on
  # cuDNN, which is not ours to check and slow under the sanitizer; ConvolutionsOnOurKernels
  # checks our convolution kernels.)
  step memcheck 80 "$OUT/memcheck.log" \
    compute-sanitizer --tool memcheck --leak-check no --error-exitcode 7 "$BIN" --gtest_brief=1 \
    --gtest_filter=-CudaXentParity.ContrastiveLossesMatchTheCpu:CudaLinalgParity.Convolutions:CudaLinalgParity.ConvolutionsOnCudnn
  grep -E "ERROR SUMMARY|Device not supported|tests ran|PASSED|FAILED" "$OUT/memcheck.log" | tail -5 | tee -a "$SUMMARY"
else
  say "no test binary: see build.log"
fi
# Kernel throughput, ours then PyTorch's, same shapes and timing (tools/gpu_check/*_bench*).
if [[ -x "$BUILD/cuda_ops_bench" ]]; then
  step bench 70 "$OUT/bench.log" bash -c "'$BUILD/cuda_ops_bench'; echo '-- pytorch'; \
    PYTHONUNBUFFERED=1 python3 tools/gpu_check/torch_ops_bench.py"
  cat "$OUT/bench.log" >> "$SUMMARY"
fi
# The fused contrastive losses (ops::xent_* kernels) against PyTorch's dense composition, fwd+bwd.
if [[ -x "$BUILD/loss_bench" ]]; then
  step loss_bench 25 "$OUT/loss_bench.log" bash -c "'$BUILD/loss_bench'; \
    PYTHONUNBUFFERED=1 python3 tools/gpu_check/torch_loss_bench.py"
  cat "$OUT/loss_bench.log" >> "$SUMMARY"
fi
# The Conformer's convolutions on cuDNN and on our kernels, against PyTorch: which engine should
# take which shape (cuda.h's ConvEngine::Auto).
if [[ -x "$BUILD/conv_bench" ]]; then
  step conv_bench 30 "$OUT/conv_bench.log" bash -c "'$BUILD/conv_bench'; \
    PYTHONUNBUFFERED=1 python3 tools/gpu_check/torch_conv_bench.py"
  cat "$OUT/conv_bench.log" >> "$SUMMARY"
fi
# The training step: CPU vs CUDA losses over 20 steps (bar 1e-3), then the small Conformer's
# step throughput at batch 256 x 4 s and the MiniLM-shaped forward at batch 256 x 32 tokens,
# ours then PyTorch's (tools/gpu_check/train_step_check.cpp, torch_conformer_step.py).
if [[ -x "$BUILD/train_step_check" ]]; then
  step train_step 110 "$OUT/train_step.log" bash -c "'$BUILD/train_step_check' --batch 256 --frames 400 --tokens 32 --iters 10; \
    echo '-- pytorch'; PYTHONUNBUFFERED=1 python3 tools/gpu_check/torch_conformer_step.py --batch 256 --frames 400 --tokens 32 --iters 10"
  grep -E "^parity:|^ours|^torch" "$OUT/train_step.log" | tee -a "$SUMMARY"
fi
say "== done in $SECONDS s"
