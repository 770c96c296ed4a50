"""Small Conformer speed and peak memory in PyTorch, the counterpart of bench/conformer_bench.cpp.

The same tower as models/conformer.h, built from torch.nn and torchaudio 0.13's Conformer:
ESPnet-style Conv2d subsampling (Conv2d(1, 144, 3, stride 2) -> ReLU -> Conv2d(144, 144, 3,
stride 2) -> ReLU -> Linear(144 * 19, 144)), x * sqrt(144) + sinusoidal positions, dropout,
torchaudio.models.Conformer(input_dim=144, num_heads=4, ffn_dim=576, num_layers=16,
depthwise_conv_kernel_size=31, dropout=0.1) (input_dim is the blocks' width, the subsampling's
output, not the 80 mel bins), masked mean pooling, Linear(144, 384). Same FLOPs as ours up to
what our padding masks add (zeroing padded frames before the depthwise conv, masked BatchNorm
statistics), which is elementwise work.

Phases, timing and memory as in the C++ binary: eval (model.eval(), torch.no_grad()), fwd
(training mode, graph recorded, dropped outside the timer), step (zero_grad, forward,
loss = mean(embedding^2), backward, torch.optim.AdamW step with weight decay 0.01 on >= 2-d
non-bias parameters); median of --iters after --warmup; peak RSS = VmHWM after resetting it
through /proc/self/clear_refs just before the phase; model FLOPs counted by tools/torch_flops.py
(core/flop_counter.h's convention) on one untimed extra iteration, and their rate at the median.
    /usr/bin/python3 tools/bench_conformer_torch.py --phase step --threads 2
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from torchaudio.models import Conformer

from torch_flops import FlopCount

N_MELS, D, HEADS, FFN, LAYERS, KERNEL, EMBED, DROPOUT = 80, 144, 4, 576, 16, 31, 384, 0.1


def proc_status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return -1.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def sinusoidal_positions(T, d):
    """ESPnet's PositionalEncoding table (Vaswani et al. 2017, sec. 3.5): (T, d)."""
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    pe = torch.zeros(T, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


def subsampled(n):
    return ((n - 1) // 2 - 1) // 2


class Tower(nn.Module):
    """The small tower by default; tools/reference_train_torch.py builds the mini one."""

    def __init__(self, layers=LAYERS, kernel=KERNEL):
        super().__init__()
        self.conv1 = nn.Conv2d(1, D, 3, stride=2)
        self.conv2 = nn.Conv2d(D, D, 3, stride=2)
        self.out = nn.Linear(D * subsampled(N_MELS), D)
        self.dropout = nn.Dropout(DROPOUT)
        self.conformer = Conformer(input_dim=D, num_heads=HEADS, ffn_dim=FFN, num_layers=layers,
                                   depthwise_conv_kernel_size=kernel, dropout=DROPOUT)
        self.proj = nn.Linear(D, EMBED)

    def forward(self, feats, lengths):
        B = feats.size(0)
        h = F.relu(self.conv2(F.relu(self.conv1(feats[:, None]))))  # (B, D, T', F')
        T = h.size(2)
        h = self.out(h.transpose(1, 2).reshape(B, T, -1))  # (B, T', D)
        h = self.dropout(h * math.sqrt(D) + sinusoidal_positions(T, D).to(h.device))
        out_len = subsampled(lengths)
        h, _ = self.conformer(h, out_len)
        keep = (torch.arange(T, device=h.device)[None, :] < out_len[:, None]).unsqueeze(-1).to(h.dtype)  # (B, T', 1)
        pooled = (h * keep).sum(1) / out_len[:, None].to(h.dtype)
        return self.proj(pooled)


def param_groups(model, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if n.endswith("bias") or p.dim() <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def run_phase(name, a, parts, body):
    reset = reset_peak_rss()
    rss0 = proc_status_mib("VmRSS")
    for _ in range(a.warmup):
        body()
    t = [[] for _ in parts]
    for _ in range(a.iters):
        s = body()
        for k in range(len(parts)):
            t[k].append(s[k])
    peak = proc_status_mib("VmHWM")
    med = [sorted(x)[len(x) // 2] for x in t]
    extra = "".join(f"  {parts[k]} {med[k] * 1e3:.1f} ms" for k in range(1, len(parts)))
    alls = " ".join(f"{s * 1e3:.0f}" for s in t[0])
    print(f"torch {name:<5} median {med[0] * 1e3:8.1f} ms{extra}  (all {parts[0]}: {alls} ms)")
    how = "VmHWM reset before the phase" if reset else "clear_refs failed: process peak"
    print(f"torch {name:<5} peak RSS {peak:.0f} MiB ({how}), RSS at phase start {rss0:.0f} MiB, "
          f"growth {peak - rss0:.0f} MiB", flush=True)
    with FlopCount() as fc:  # after the peak is read: the counting mode's Python work is not timed
        body()
    print(f"torch {name:<5} model FLOPs {fc.total / 1e9:.2f} GFLOP per iteration, "
          f"{fc.total / 1e9 / med[0]:.1f} GFLOP/s at the median", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["eval", "fwd", "step", "all"], default="all")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--mixed", type=int, default=0)
    # OpenMP's default (what ours uses): OMP_NUM_THREADS, else the number of cores.
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Tower()
    B, T = a.batch, a.frames
    feats = torch.randn(B, T, N_MELS)
    lengths = torch.full((B,), T, dtype=torch.int64)
    if a.mixed:  # spread evenly from T down to T/4, as the C++ side
        lengths = torch.tensor([T - (i * (T - T // 4) // (B - 1) if B > 1 else 0) for i in range(B)])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__} torchaudio {torchaudio.__version__} Conformer small: {n_params} parameters; "
          f"batch {B} x {T} frames x {N_MELS} mels ({'mixed' if a.mixed else 'full'} lengths), f32, "
          f"{torch.get_num_threads()} threads (torch.set_num_threads), {a.warmup} warm-up + {a.iters} timed "
          f"iterations", flush=True)

    if a.phase in ("eval", "all"):
        model.eval()

        def body():
            with torch.no_grad():
                t0 = time.perf_counter()
                model(feats, lengths)
                return [time.perf_counter() - t0]
        run_phase("eval", a, ["forward"], body)
    if a.phase in ("fwd", "all"):
        model.train()

        def body():
            t0 = time.perf_counter()
            e = model(feats, lengths)
            s = time.perf_counter() - t0
            del e  # the graph goes here, outside the timer
            return [s]
        run_phase("fwd", a, ["forward"], body)
    if a.phase in ("step", "all"):
        model.train()
        opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)

        def body():
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)  # as ours: gradients dropped, not zeroed
            loss = model(feats, lengths).pow(2).mean()
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            return [t3 - t0, t1 - t0, t2 - t1, t3 - t2]
        run_phase("step", a, ["step", "forward", "backward", "adamw"], body)


if __name__ == "__main__":
    main()
