"""Makes tests/fixtures/whisper_mel_reference.safetensors, the reference that
tests/data/whisper_mel_test.cpp holds data/whisper_mel.h (Whisper's log-mel front end) to.

Reference package: transformers 5.25.0's WhisperFeatureExtractor (its numpy path, no torch;
numpy 2.4.6, safetensors 0.8.0), called with Whisper's settings (feature_size 80 or 128,
sampling_rate 16000, n_fft 400, hop_length 160, dither 0, no normalization). openai-whisper
itself (audio.py, log_mel_spectrogram) needs torch, whose PyPI wheels pull in CUDA; so this
script instead downloads its source distribution (openai-whisper 20250625, `pip download
--no-deps --no-binary :all:`, nothing installed or imported) and
  - stores its shipped mel filters (whisper/assets/mel_filters.npz, librosa's in float32), and
  - re-runs audio.py's formula line for line in numpy float64 with those filters (reflect pad
    200, periodic Hann, rfft, drop the last frame, |X|^2, filters @, log10(clamp 1e-10),
    max - 8, (x + 4) / 4) and checks transformers' output equals it (printed, asserted < 1e-5).

Input: real speech at 16 kHz from Debian's pocketsphinx-testdata (tools/setup.sh installs it),
int16 / 32768 stored as f32 so the test need not read the WAV files:
  clip0  librivox/sense_and_sensibility_01_austen_64kb-0880.wav  (2.99 s, 299 frames)
  clip1  cards/002.wav                                           (1.96 s, 196 frames)
Tensors: clipN_samples; clipN_mel80 (frames, 80) and clip1_mel128 (frames, 128), unpadded
(padding="longest" of one clip: none); clip0_padded_mel80, rows clip0_padded_frames of the
(3000, 80) features of clip0 padded to 30 s (padding="max_length", as pad_or_trim), a subset
to keep the file under 1 MB; mel_filters_80 / mel_filters_128, Whisper's table. All features
are (frames, n_mels), the transpose of Whisper's layout, as the C++ returns them.

Run (creates the venv on first use, under the git-ignored .cache/):
    python3 tools/make_whisper_mel_fixture.py
"""

import os
import subprocess
import sys
import tarfile
import wave

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
VENV = os.path.join(ROOT, ".cache", "venv-whisper")
SDIST_DIR = os.path.join(ROOT, ".cache", "whisper-sdist")
OUT = os.path.join(ROOT, "tests", "fixtures", "whisper_mel_reference.safetensors")
PACKAGES = ["transformers==5.25.0", "numpy==2.4.6", "safetensors==0.8.0"]
WHISPER_SDIST = "openai-whisper==20250625"
DATA = "/usr/share/pocketsphinx/test/data"
CLIPS = [f"{DATA}/librivox/sense_and_sensibility_01_austen_64kb-0880.wav", f"{DATA}/cards/002.wav"]
# Padded case: the speech, the transition into the padding, and the last frames.
PADDED_FRAMES = list(range(0, 310)) + list(range(2995, 3000))


def ensure_venv():
    """Re-runs this script under the venv's Python, creating the venv first if needed."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def whisper_sources():
    """openai-whisper's sdist, unpacked: (path of audio.py, path of mel_filters.npz)."""
    name = WHISPER_SDIST.replace("openai-whisper==", "openai_whisper-")
    folder = os.path.join(SDIST_DIR, name)
    if not os.path.isdir(folder):
        os.makedirs(SDIST_DIR, exist_ok=True)
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                               ":all:", WHISPER_SDIST, "-d", SDIST_DIR])
        with tarfile.open(os.path.join(SDIST_DIR, name + ".tar.gz")) as tar:
            # filter="data" (no links or paths out of the folder) where this Python has it.
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(SDIST_DIR, **kwargs)
    return (os.path.join(folder, "whisper", "audio.py"),
            os.path.join(folder, "whisper", "assets", "mel_filters.npz"))


def read_wav(path):
    import numpy as np
    if not os.path.isfile(path):
        sys.exit(f"make_whisper_mel_fixture: {path} missing: apt install pocketsphinx-testdata")
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float64) / 32768.0).astype(np.float32)  # exact in f32


def whisper_formula(audio, filters, pad_to_30s):
    """whisper/audio.py (pad_or_trim, then log_mel_spectrogram) in numpy float64, (frames, n_mels)."""
    import numpy as np
    x = audio.astype(np.float64)
    if pad_to_30s:
        x = np.pad(x[:480000], (0, max(0, 480000 - len(x))))
    x = np.pad(x, (200, 200), mode="reflect")  # torch.stft(center=True, pad_mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # torch.hann_window(400)
    frames = 1 + (len(x) - 400) // 160
    stft = np.stack([np.fft.rfft(x[t * 160:t * 160 + 400] * window) for t in range(frames)], axis=1)
    magnitudes = np.abs(stft[..., :-1]) ** 2
    mel_spec = filters.astype(np.float64) @ magnitudes
    log_spec = np.log10(np.maximum(mel_spec, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).T


def main():
    ensure_venv()
    import numpy as np
    import safetensors.numpy
    import transformers
    from transformers import WhisperFeatureExtractor
    from transformers.utils import is_torch_available
    assert not is_torch_available(), "the venv must not have torch: the numpy path is the reference"

    audio_py, npz = whisper_sources()
    with open(audio_py) as f:  # the formula re-run below is this one
        source = f.read()
    for line in ("torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)",
                 "magnitudes = stft[..., :-1].abs() ** 2",
                 "log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)"):
        assert line in source, f"{audio_py} changed: {line!r} not found"
    with np.load(npz) as f:
        whisper_filters = {n: f[f"mel_{n}"] for n in (80, 128)}

    extractors = {n: WhisperFeatureExtractor(feature_size=n, sampling_rate=16000, hop_length=160,
                                             chunk_length=30, n_fft=400, dither=0.0) for n in (80, 128)}
    worst = {"filters": 0.0, "unpadded": 0.0, "padded": 0.0}
    for n, fe in extractors.items():
        # transformers keeps (201, n_mels) filters in float64; Whisper's table is their float32.
        worst["filters"] = max(worst["filters"], float(np.abs(fe.mel_filters.T - whisper_filters[n]).max()))

    def features(audio, n, pad_to_30s):
        out = extractors[n](audio, sampling_rate=16000, padding="max_length" if pad_to_30s else "longest",
                            return_tensors="np")["input_features"][0].T  # (frames, n_mels)
        ref = whisper_formula(audio, whisper_filters[n], pad_to_30s)
        assert out.shape == ref.shape, (out.shape, ref.shape)
        key = "padded" if pad_to_30s else "unpadded"
        worst[key] = max(worst[key], float(np.abs(out - ref).max()))
        # C order: safetensors.numpy writes an array's memory as it lies, and .T is a Fortran view.
        return np.ascontiguousarray(out, dtype=np.float32)

    clips = [read_wav(p) for p in CLIPS]
    tensors = {}
    for i, audio in enumerate(clips):
        tensors[f"clip{i}_samples"] = audio
        tensors[f"clip{i}_mel80"] = features(audio, 80, False)
        assert tensors[f"clip{i}_mel80"].shape == (len(audio) // 160, 80)
    tensors["clip1_mel128"] = features(clips[1], 128, False)
    padded = features(clips[0], 80, True)
    assert padded.shape == (3000, 80)
    tensors["clip0_padded_frames"] = np.array(PADDED_FRAMES, dtype=np.int64)
    tensors["clip0_padded_mel80"] = np.ascontiguousarray(padded[PADDED_FRAMES])
    for n in (80, 128):
        tensors[f"mel_filters_{n}"] = np.ascontiguousarray(whisper_filters[n])

    print("transformers vs Whisper's formula (numpy f64, Whisper's float32 filters), max |diff|: "
          + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
    assert worst["unpadded"] < 1e-5 and worst["padded"] < 1e-5 and worst["filters"] < 1e-7, worst

    metadata = {
        "reference": f"transformers {transformers.__version__} WhisperFeatureExtractor (numpy path), "
                     f"numpy {np.__version__}; filters from {WHISPER_SDIST} whisper/assets/mel_filters.npz",
        "call": "WhisperFeatureExtractor(feature_size=N, sampling_rate=16000, hop_length=160, chunk_length=30, "
                "n_fft=400, dither=0.0)(samples, sampling_rate=16000, padding='longest' | 'max_length')",
        "check": "equals whisper/audio.py pad_or_trim + log_mel_spectrogram re-run in numpy f64: "
                 + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()),
        "clip0": CLIPS[0], "clip1": CLIPS[1],
        "layout": "features (frames, n_mels), the transpose of Whisper's",
    }
    safetensors.numpy.save_file(tensors, OUT, metadata=metadata)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
