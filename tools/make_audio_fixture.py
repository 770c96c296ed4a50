"""Makes tests/fixtures/audio_reference.safetensors, the torchaudio reference read by
tests/data/audio_fbank_test.cpp and audio_io_test.cpp: Kaldi log-mel filterbank features of real
speech, and torchaudio's resampling of it, to compare our front end (data/audio_*.h) against.

Source: a LibriVox reading shipped by Debian's pocketsphinx-testdata (tools/setup.sh installs it),
16 kHz 16-bit mono, so the filterbank is compared on the very samples both sides read, with no
resampler in between. The test reads the same file (GTEST_SKIP when the package is missing); the
fixture holds no audio, only features and a checksum of the file's samples. Samples are
int16 / 32768, as libsndfile and torchaudio.load scale them.

Reference (data/audio_fbank.h explains the choice):
    torchaudio.compliance.kaldi.fbank(waveform * 32768, **FBANK_ARGS)
computed three ways on 2 s of the speech: on a float64 waveform ("fbank", the reference the test
holds to 1e-3; its mel filters are still float32, see below), on float32 as most users run it
("fbank_f32", its own FFT rounding; reported, loosely bounded), and with float64 as torch's
default dtype so that every step is double ("fbank_exact", Kaldi's math without rounding; held
to 1e-5).

Resampling: our resampler is libsoxr, torchaudio's is a different filter
(torchaudio.functional.resample defaults: sinc_interp_hann, lowpass_filter_width=6,
rolloff=0.99), so they cannot agree sample for sample. What matters is what the model sees:
"resampled_fbank" is the exact fbank of the same 2 s taken 16 -> 8 -> 16 kHz by torchaudio (a
telephone-band round trip); the test takes the same trip with soxr and reports how far the
features move, by band.

Runs under Debian's Python with its torch (apt install python3-torchaudio; made with torch
1.13.1, torchaudio 0.13.1, numpy 1.24.2):
    /usr/bin/python3 tools/make_audio_fixture.py
"""

import json
import os
import struct
import sys
import wave

import numpy as np
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi

SOURCE = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"
EXCERPT_START, EXCERPT_LEN = 8000, 32000  # 2 s of speech from 0.5 s: 198 frames
FBANK_ARGS = dict(
    num_mel_bins=80, frame_length=25.0, frame_shift=10.0, dither=0.0, window_type="hanning",
    preemphasis_coefficient=0.97, remove_dc_offset=True, low_freq=20.0, high_freq=0.0,
    sample_frequency=16000.0, snip_edges=True, round_to_power_of_two=True, use_power=True,
    use_log_fbank=True, use_energy=False)
INPUT_SCALE = 32768.0
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "audio_reference.safetensors")


def read_wav_int16(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def save_safetensors(path, tensors, metadata):
    """The safetensors layout (8-byte header length, JSON header, data), written by hand so
    that no extra package is needed; tests/core checks our reader against the official one."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dtype = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.astype(a.dtype.newbyteorder("<")).tobytes())
        offset += a.nbytes
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    if not os.path.isfile(SOURCE):
        sys.exit(f"make_audio_fixture: {SOURCE} missing: apt install pocketsphinx-testdata")
    pcm, rate = read_wav_int16(SOURCE)
    assert rate == 16000
    x = pcm.astype(np.float64) / 32768.0

    excerpt = x[EXCERPT_START:EXCERPT_START + EXCERPT_LEN]
    wav64 = torch.from_numpy(excerpt)[None] * INPUT_SCALE
    fbank64 = kaldi.fbank(wav64, **FBANK_ARGS)
    fbank32 = kaldi.fbank(wav64.float(), **FBANK_ARGS)
    # kaldi.get_mel_banks builds the filters in torch's default dtype (float32) whatever the
    # input's: that alone moves log energies by up to ~2.4e-4 here. With float64 as the default,
    # every step is double: Kaldi's math without rounding, which our double code must match
    # tightly ("fbank_exact").
    torch.set_default_dtype(torch.float64)
    try:
        fbank_exact = kaldi.fbank(wav64, **FBANK_ARGS)
        down = torchaudio.functional.resample(torch.from_numpy(excerpt)[None], 16000, 8000)
        trip = torchaudio.functional.resample(down, 8000, 16000)
        resampled_fbank = kaldi.fbank(trip * INPUT_SCALE, **FBANK_ARGS)
    finally:
        torch.set_default_dtype(torch.float32)
    print(f"fbank: float32 vs float64 mel filters max |diff| {(fbank64 - fbank_exact).abs().max():.3g}")
    gap = (fbank64 - fbank32.double()).abs()
    print(f"fbank {tuple(fbank64.shape)}: float32 vs float64 torchaudio max |diff| {gap.max():.3g} "
          f"(mean {gap.mean():.3g})")

    tensors = {
        "fbank": fbank64.float().numpy(),
        "fbank_f32": fbank32.numpy(),
        "fbank_exact": fbank_exact.float().numpy(),
        "resampled_fbank": resampled_fbank.float().numpy(),
        # Identity of the source: sample count, sum and sum of squares of the int16 values.
        "source_checksum": np.array([len(pcm), int(pcm.astype(np.int64).sum()),
                                     int((pcm.astype(np.int64) ** 2).sum())], dtype=np.int64),
    }
    metadata = {
        "source": SOURCE,
        "excerpt_start": str(EXCERPT_START), "excerpt_len": str(EXCERPT_LEN),
        "fbank_call": "kaldi.fbank(waveform * 32768, "
                      + ", ".join(f"{k}={v!r}" for k, v in FBANK_ARGS.items()) + ")",
        "resample_call": "torchaudio.functional.resample(x, 16000, 8000) then (y, 8000, 16000), defaults",
        "versions": f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, numpy {np.__version__}",
    }
    save_safetensors(OUT, tensors, metadata)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
