#!/usr/bin/env python3
"""How much of CWCL's target a row puts on its own pair, from a frozen-tower embedding cache.

Reads one (N, D) tensor from a safetensors file (e.g. the cached frozen MiniLM embeddings of a
corpus' training transcripts, .cache/speech/<corpus>/text_embeddings/train-*.safetensors),
normalizes the rows, and prints the off-diagonal cosine distribution over a random subset and,
for random batches of --batch rows, the mean target mass on the pair (T_ii, T = W / rowsum W)
and on the largest other entry, for the linear kernel w = c/2 + 1/2 and the exp kernel
w = exp((c - 1) / t). Uniform targets would give 1/batch; InfoNCE's give 1 on the pair.
Needs numpy. Usage:
    python3 tools/target_stats.py FILE [--batch 32] [--exp-t 0.1] [--batches 2000] [--seed 0]
"""
import argparse
import json
import struct

import numpy as np


def read_first_tensor(path):
    with open(path, "rb") as fh:
        b = fh.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    meta = header[name]
    start, end = meta["data_offsets"]
    dtype = {"F32": np.float32, "F64": np.float64}[meta["dtype"]]
    return np.frombuffer(b[8 + n + start:8 + n + end], dtype=dtype).reshape(meta["shape"]).astype(np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--exp-t", type=float, default=0.1)
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    x = read_first_tensor(a.file)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(a.seed)
    sub = x[rng.choice(len(x), min(len(x), 4000), replace=False)]
    off = (sub @ sub.T)[~np.eye(len(sub), dtype=bool)]
    print(f"{len(x)} rows of {x.shape[1]}; off-diagonal cosine over {len(sub)} rows: mean {off.mean():.3f}, "
          f"std {off.std():.3f}, 5th/95th percentile {np.percentile(off, 5):.3f} / {np.percentile(off, 95):.3f}, "
          f"share >= 0.99 (near-duplicate texts) {np.mean(off >= 0.99):.4f}")
    kernels = [("linear", lambda c: c / 2 + 0.5), (f"exp (t {a.exp_t})", lambda c: np.exp((c - 1) / a.exp_t))]
    for name, w_of in kernels:
        pair, other = [], []
        for _ in range(a.batches):
            b = x[rng.choice(len(x), a.batch, replace=False)]
            w = w_of(b @ b.T)
            t = w / w.sum(1, keepdims=True)
            pair.append(np.diag(t).mean())
            other.append((t - np.diag(np.diag(t))).max(1).mean())
        print(f"{name:>12} kernel, batch {a.batch}: target on the pair {np.mean(pair):.4f}, largest other "
              f"{np.mean(other):.4f} (uniform {1 / a.batch:.4f})")


if __name__ == "__main__":
    main()
