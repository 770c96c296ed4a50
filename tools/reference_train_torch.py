"""PyTorch reference for the speech-text contrastive training of the `train` binary (issue 7 diagnostic).

Trains the "mini" Conformer speech tower (tools/bench_conformer_torch.py's tower at d_model 144,
4 heads, ffn 576, 4 layers, depthwise kernel 15, dropout 0.1, PyTorch default init) from scratch
against the frozen MiniLM text embeddings of the `small` corpus with CLIP's symmetric InfoNCE, so
that a run of ours that stays at chance can be told apart from a task that does not learn at all.
Data as ours: batch of random rows (seeded shuffle per epoch, drop last), each cropped to its first
600 frames, per-utterance CMVN ((x - mean) / sqrt(var + 1e-5), biased var), zero padded, lengths
kept; no SpecAugment. AdamW (0.9, 0.98), wd 0.05 on >= 2-d weights only, 60 warm-up steps then
cosine to 5% at 600 steps, global grad-norm clip 1.0.
    /usr/bin/python3 tools/reference_train_torch.py --steps 300 --threads 1
Standard library, numpy and torch/torchaudio only; the safetensors files are read by hand.
"""
import argparse
import csv
import glob
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_conformer_torch import N_MELS, Tower  # the same tower, built at the mini sizes

LAYERS, KERNEL = 4, 15  # the mini preset (models/conformer.h); widths as bench_conformer_torch.py
MAX_FRAMES, CMVN_EPS = 600, 1e-5
WARMUP, COSINE_STEPS, FINAL_FRACTION = 60, 600, 0.05


def read_safetensors(path):
    """name -> numpy array (memory-mapped) for F32 / I64 tensors of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        dt = np.dtype(dtypes[meta["dtype"]])
        count = (end - begin) // dt.itemsize
        arr = np.memmap(path, dtype=dt, mode="r", offset=8 + n + begin, shape=(count,))
        out[name] = arr.reshape(meta["shape"])
    return out


def only_file(pattern):
    files = sorted(glob.glob(pattern))
    if len(files) != 1:
        raise SystemExit(f"reference_train_torch: expected exactly one file matching {pattern}, found {files}")
    return files[0]


def make_batch(feats, offsets, rows):
    """Crop to the first MAX_FRAMES frames, per-utterance CMVN, zero pad: (B, T, 80), lengths (B,)."""
    utts = []
    for r in rows:
        x = torch.from_numpy(np.array(feats[offsets[r]:min(offsets[r + 1], offsets[r] + MAX_FRAMES)]))
        mean = x.mean(0, keepdim=True)
        var = x.var(0, unbiased=False, keepdim=True)
        utts.append((x - mean) / torch.sqrt(var + CMVN_EPS))
    lengths = torch.tensor([u.size(0) for u in utts], dtype=torch.int64)
    out = torch.zeros(len(utts), int(lengths.max()), N_MELS)
    for i, u in enumerate(utts):
        out[i, :u.size(0)] = u
    return out, lengths


def lr_at(step, base):
    """Linear warm-up over WARMUP steps, then cosine from base to FINAL_FRACTION * base at COSINE_STEPS."""
    if step < WARMUP:
        return base * (step + 1) / WARMUP
    p = min(1.0, (step - WARMUP) / max(1, COSINE_STEPS - WARMUP))
    return base * (FINAL_FRACTION + (1 - FINAL_FRACTION) * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--corpus", default=".cache/speech/small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    with open(os.path.join(a.corpus, "train.tsv")) as f:
        n_rows = sum(1 for _ in csv.DictReader(f, delimiter="\t"))
    fs = read_safetensors(only_file(os.path.join(a.corpus, "features", "train-*.safetensors")))
    feats, offsets = fs["features"], np.asarray(fs["offsets"])
    text = torch.from_numpy(np.array(
        read_safetensors(only_file(os.path.join(a.corpus, "text_embeddings", "train-*.safetensors")))["embeddings"]))
    if len(offsets) != n_rows + 1 or text.size(0) != n_rows:
        raise SystemExit(f"reference_train_torch: train.tsv has {n_rows} rows but features offsets "
                         f"{len(offsets)} and text embeddings {tuple(text.shape)}")
    text = F.normalize(text, dim=-1)

    model = Tower(layers=LAYERS, kernel=KERNEL)
    log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    decay, no_decay = [], [log_scale]
    for _, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-8)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, mini Conformer {n_params} parameters, {n_rows} train rows, batch {a.batch}, "
          f"{a.steps} steps, lr {a.lr}, {torch.get_num_threads()} threads; chance loss ln {a.batch} = "
          f"{math.log(a.batch):.3f}, chance acc {1 / a.batch:.4f}", flush=True)

    rng = np.random.default_rng(a.seed)
    order, pos = rng.permutation(n_rows), 0
    target = torch.arange(a.batch)
    off_diag = ~torch.eye(a.batch, dtype=torch.bool)
    acc_sum = {k: 0.0 for k in ("loss", "acc", "pos", "neg", "spk", "sec")}
    for step in range(a.steps):
        t0 = time.perf_counter()
        if pos + a.batch > n_rows:  # drop last, reshuffle
            order, pos = rng.permutation(n_rows), 0
        rows = order[pos:pos + a.batch]
        pos += a.batch
        x, lengths = make_batch(feats, offsets, rows)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr)

        model.train()
        p = F.normalize(model(x, lengths), dim=-1)  # (B, 384)
        q = text[torch.from_numpy(rows)]  # (B, 384)
        scale = log_scale.exp().clamp(max=100.0)
        logits = scale * p @ q.t()  # (B, B) speech x text
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + [log_scale], 1.0)
        opt.step()
        sec = time.perf_counter() - t0

        with torch.no_grad():
            cos = p @ q.t()
            pp = p @ p.t()
            acc_sum["loss"] += loss.item()
            acc_sum["acc"] += (logits.argmax(1) == target).float().mean().item()
            acc_sum["pos"] += cos.diag().mean().item()
            acc_sum["neg"] += cos[off_diag].mean().item()
            acc_sum["spk"] += pp[off_diag].mean().item()
            acc_sum["sec"] += sec
        if (step + 1) % a.every == 0 or step + 1 == a.steps:
            n = (step % a.every) + 1
            m = {k: v / n for k, v in acc_sum.items()}
            print(f"step {step + 1:4d}  loss {m['loss']:.4f}  acc {m['acc']:.4f}  cos pair {m['pos']:+.4f} "
                  f"non-pair {m['neg']:+.4f}  speech-speech cos {m['spk']:+.4f}  scale {scale.item():.2f}  "
                  f"lr {lr_at(step, a.lr):.2e}  {m['sec']:.2f} s/step", flush=True)
            acc_sum = {k: 0.0 for k in acc_sum}


if __name__ == "__main__":
    main()
