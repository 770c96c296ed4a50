"""Loads a folder written by `eval --run R --export DIR` into the upstream libraries (torchaudio's
Conformer, transformers' WhisperModel) with nothing of ours, embeds audio files the way the
export's README.txt says, and prints the largest difference from the embeddings our own `eval`
wrote for the same files:

    build/train/eval --run R --export /tmp/exported
    build/train/eval --run R --wav a.wav b.wav --embeddings /tmp/ours.npy
    .cache/venv-hf/bin/python tools/check_export_torch.py /tmp/exported /tmp/ours.npy a.wav b.wav

A speech-text or speech_asr export. The Conformer needs only PyTorch and torchaudio (Debian's
/usr/bin/python3 works too, with the safetensors package on PYTHONPATH: .cache/python-test); the
Whisper tower needs transformers (.cache/venv-hf: transformers 4.40.2 over Debian's PyTorch 1.13 and
torchaudio 0.13). Audio at another rate than 16 kHz is resampled by torchaudio, which is not our
resampler (libsoxr): give 16 kHz files for a tight comparison. Exit status 1 when the largest
difference exceeds --tol.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", ".cache", "python-test"))  # safetensors for Debian's python3
from safetensors.torch import load_file  # noqa: E402


def load_16k(path):
    wave, rate = torchaudio.load(path)
    wave = wave.mean(0)  # mono, as our front end mixes channels down
    if rate != 16000:
        print(f"{path}: {rate} Hz resampled by torchaudio (ours uses libsoxr; expect small differences)")
        wave = torchaudio.functional.resample(wave, rate, 16000)
    return wave


def conformer_embedding(folder, heads, wave, proj):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    conformer = torchaudio.models.Conformer(**cfg["conformer"]).eval()
    conformer.load_state_dict(load_file(os.path.join(folder, "model.safetensors")))
    fe = load_file(os.path.join(folder, cfg["frontend"]["file"]))
    x = torchaudio.compliance.kaldi.fbank(wave[None] * cfg["features"]["input_scale"], **cfg["features"]["fbank"])
    x = (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-5).sqrt()  # per-utterance CMVN
    h = F.relu(F.conv2d(x[None, None], fe["conv.0.weight"], fe["conv.0.bias"], stride=2))
    h = F.relu(F.conv2d(h, fe["conv.2.weight"], fe["conv.2.bias"], stride=2))
    b, c, t, f = h.shape
    h = F.linear(h.transpose(1, 2).reshape(b, t, c * f), fe["out.0.weight"], fe["out.0.bias"])
    d = h.shape[-1]
    angle = torch.arange(t, dtype=torch.float64)[:, None] * torch.exp(
        torch.arange(0, d, 2, dtype=torch.float64) * -(math.log(10000.0) / d))
    pe = torch.stack([angle.sin(), angle.cos()], -1).reshape(t, d).float()
    h, _ = conformer(h * math.sqrt(d) + pe, torch.tensor([t]))
    pooled = h.mean(1)
    return F.linear(pooled, heads["speech_proj.weight"], heads["speech_proj.bias"]) if proj else pooled


def whisper_embedding(folder, heads, wave):
    from transformers import WhisperFeatureExtractor, WhisperModel
    from transformers.utils import logging

    logging.set_verbosity_error()  # the decoder is not exported; from_pretrained says so at length
    enc = WhisperModel.from_pretrained(folder).encoder.eval()
    fx = WhisperFeatureExtractor(feature_size=enc.config.num_mel_bins)
    mel = torch.from_numpy(fx(wave.numpy(), sampling_rate=16000, padding="longest",
                              return_tensors="np").input_features)  # (1, n_mels, T), no 30 s padding
    h = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2)
    h = h + enc.embed_positions.weight[: h.shape[1]]
    for layer in enc.layers:
        h = layer(h, None, layer_head_mask=None)[0]
    return F.linear(enc.layer_norm(h).mean(1), heads["speech_proj.weight"], heads["speech_proj.bias"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", help="folder written by eval --export")
    ap.add_argument("ours", help="our embeddings of the same files: eval --wav ... --embeddings (.npy or .safetensors)")
    ap.add_argument("wavs", nargs="+", help="the audio files, in the order given to eval --wav")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest acceptable |difference| (default 1e-3)")
    a = ap.parse_args()

    info = json.load(open(os.path.join(a.export, "export.json")))
    heads = load_file(os.path.join(a.export, "heads.safetensors"))
    speech = info["towers"].get("speech")
    if speech is None:
        sys.exit(f"{a.export}: a {info['task']} export has no speech tower; this check embeds audio")
    ours = np.load(a.ours) if a.ours.endswith(".npy") else load_file(a.ours)["embeddings"].numpy()
    if ours.shape[0] != len(a.wavs):
        sys.exit(f"{a.ours} holds {ours.shape[0]} rows for {len(a.wavs)} files")
    folder = os.path.join(a.export, "speech")
    worst = 0.0
    with torch.no_grad():
        for i, path in enumerate(a.wavs):
            wave = load_16k(path)
            if "whisper" in speech.lower():
                e = whisper_embedding(folder, heads, wave)
            else:
                e = conformer_embedding(folder, heads, wave, "speech_proj.weight" in heads)
            e = e[0].numpy().astype(np.float64)
            ref = ours[i].astype(np.float64)
            diff = np.abs(e - ref).max()
            cos = float(e @ ref / (np.linalg.norm(e) * np.linalg.norm(ref)))
            print(f"{path}: max |torch - ours| {diff:.3g} (max |ours| {np.abs(ref).max():.3g}, cosine {cos:.9f})")
            worst = max(worst, diff)
    print(f"{info['task']} export of step {info['step']} ({speech}): {len(a.wavs)} files, "
          f"max abs difference {worst:.3g} (tol {a.tol:g})")
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
