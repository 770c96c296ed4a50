#!/usr/bin/env bash
# Fuzzes every reader of untrusted files (tests/fuzz/) under AddressSanitizer and
# UndefinedBehaviorSanitizer for a bounded time, from the committed seed corpora; then runs the
# readers' unit tests in the same sanitized build. Any finding (crash, sanitizer report, leak,
# more than 1 GiB of memory, 10 s on one input) fails the script. Used by CI (.ci/run).
#
#   tools/fuzz.sh [seconds per target (default 20)] [target ...]
#
# Build folder: build-sanitize (clang, -O1, ASan + UBSan + libFuzzer coverage). Installs clang and
# its runtime libraries (Debian's clang, libclang-rt-dev) when missing. A finding leaves its input
# in build-sanitize/fuzz-findings/<target>/ (rerun: build-sanitize/tests/fuzz/<target> <file>).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_fuzz ctranslate2_fuzz json_fuzz audio_fuzz idx_fuzz manifest_fuzz tokenizer_fuzz bpe_fuzz torch_checkpoint_fuzz tar_fuzz)

if [ "$(dpkg-query -W -f='${Status}\n' clang libclang-rt-dev 2>/dev/null | grep -c 'install ok installed')" != 2 ]; then
  echo "fuzz: installing clang libclang-rt-dev"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
fi

build=build-sanitize  # warnings are the GCC build's gate (CW_WERROR there); clang only fuzzes here
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link"
cmake -S . -B $build -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCW_FUZZ=ON -DCW_CUDA=OFF -DCW_MPI=OFF -DCW_BUILD_BENCH=OFF -DCW_WERROR=OFF >/dev/null
cmake --build $build -j"$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for t in "${targets[@]}"; do
  reader=${t%_fuzz}
  work=$build/fuzz-work/$reader findings=$build/fuzz-findings/$t
  mkdir -p "$work" "$findings"
  dict=()
  [ -f tests/fuzz/$reader.dict ] && dict=(-dict=tests/fuzz/$reader.dict)
  echo "fuzz: $t for $seconds s"
  if ! "$build/tests/fuzz/$t" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=1024 \
      -timeout=10 -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" \
      "$work" "tests/fuzz/corpus/$reader" > "$build/fuzz-$t.log" 2>&1; then
    tail -40 "$build/fuzz-$t.log"
    failed+=("$t")
  else
    grep -E "^stat::number_of_executed_runs|^#[0-9]+.*DONE" "$build/fuzz-$t.log" | tr '\n' ' '
    echo
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs under $build/fuzz-findings/)" >&2
  exit 1
fi
echo "fuzz: no findings (${#targets[@]} targets x $seconds s)"

# The readers' own test suites (core and data: their bad-input and regression tests, the crafted
# files included) once in the same sanitized build. The upper layers' suites are left out: they
# would double CI's time, and their readers are the ones tested here.
[ "${CW_FUZZ_TESTS:-1}" = 1 ] || exit 0
cmake --build $build -j"$(nproc)" --target cw_core_tests cw_data_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
for t in cw_core_tests cw_data_tests; do
  echo "sanitized: $t"
  "$build/tests/$t" --gtest_brief=1
done
echo "sanitized: core and data tests passed under ASan + UBSan"
