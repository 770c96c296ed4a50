"""Where PyTorch's time goes in the towers' steps, by phase and op family: the counterpart of
bench/profile_bench.cpp (same towers, shapes, loss and optimizer; the same family table), from
torch.profiler's per-op self CPU time on one profiled iteration after the warm-up.

    conformer  small Conformer step, batch 32 x 400 frames, dropout 0.1 (tools/bench_conformer_torch.py's Tower)
    vit        ViT small28 step, batch 256 28x28 images, dropout 0 (tools/bench_vit_torch.py's small28)
    minilm     MiniLM-L6 (BERT 6 x 384, 12 heads) forward under no_grad, 64 x 32 tokens, random weights
    whisper    Whisper tiny encoder step (conv stem, 4 pre-LN blocks, final LN), batch 32 x 300 frames

The steps are zero_grad, forward, loss = mean(embedding^2), backward, AdamW (weight decay 0.01 on
>= 2-d non-bias weights). The MiniLM and Whisper towers are written here in plain torch.nn with
F.scaled_dot_product_attention, which is what transformers' BERT and Whisper run on torch >= 2.1
(sdpa attention); the parameter shapes and FLOPs are those of the real models.

How a row is counted: each aten op's self CPU time (its time minus its children's), assigned to
the phase (record_function ranges) its start falls in; "host, between ops" is the phase's wall
time not inside any aten op (Python, autograd engine bookkeeping, the profiler's own cost), so
the families add up to the phase. With --iters N the rows are sums over N profiled iterations
divided by N. Ours charges each op from its start to the next op's start,
so its host time sits inside the op rows; compare family by family with that in mind. FLOPs are
the profiler's (with_flops: mm, addmm, bmm, baddbmm and forward convolutions; it counts no
convolution backward), and the step's total model FLOPs come from tools/torch_flops.py on an
extra untimed iteration (core/flop_counter.h's convention, backward convolutions included).

PyTorch 2.x environment (no CUDA needed; the CPU wheel index, when it is reachable, is smaller):
    python3 -m venv .cache/venv-torch2
    .cache/venv-torch2/bin/pip install torch==2.5.1 torchaudio==2.5.1 torchvision==0.20.1 \\
        --index-url https://download.pytorch.org/whl/cpu
    # if that index is unreachable: PyPI's wheels (they pull the CUDA runtime wheels, ~3 GB, unused here)
    .cache/venv-torch2/bin/pip install torch==2.5.1 && \\
        .cache/venv-torch2/bin/pip install --no-deps torchaudio==2.5.1 torchvision==0.20.1

Usage (2 threads, as our benchmarks; Debian's /usr/bin/python3 runs it on PyTorch 1.13 too):
    OMP_NUM_THREADS=2 .cache/venv-torch2/bin/python tools/profile_torch.py --model conformer
"""
import argparse
import math
import os
import sys
import time
from collections import defaultdict

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_flops import FlopCount  # noqa: E402

FAMILIES = [
    ("GEMM", {"mm", "addmm", "addmv", "mv", "dot", "linear", "matmul"}),
    ("attention", {"bmm", "baddbmm", "softmax", "_softmax", "_softmax_backward_data", "scaled_dot_product_attention",
                   "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
                   "_scaled_dot_product_attention_math", "_native_multi_head_attention"}),
    ("normalization", {"layer_norm", "native_layer_norm", "native_layer_norm_backward", "batch_norm",
                       "_batch_norm_impl_index", "_batch_norm_impl_index_backward", "native_batch_norm",
                       "native_batch_norm_backward", "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
                       "_native_batch_norm_legit_no_training", "group_norm", "native_group_norm"}),
    ("reductions", {"sum", "mean", "amax", "amin", "max", "min", "norm", "var", "std", "argmax", "linalg_vector_norm"}),
    ("random numbers", {"dropout", "native_dropout", "bernoulli_", "bernoulli", "uniform_", "normal_", "rand", "randn",
                        "feature_dropout"}),
    ("copies, indexing", {"copy_", "clone", "contiguous", "_to_copy", "to", "cat", "stack", "index_select", "gather",
                          "index", "index_put_", "embedding", "embedding_backward", "embedding_dense_backward",
                          "masked_fill", "masked_fill_", "narrow", "slice", "select", "transpose", "permute", "view",
                          "reshape", "_unsafe_view", "expand", "t", "unsqueeze", "squeeze", "as_strided", "split",
                          "chunk", "unbind", "flatten", "unflatten", "repeat", "alias", "detach", "_reshape_alias",
                          "split_with_sizes", "where", "slice_backward", "select_backward", "constant_pad_nd", "pad"}),
    ("fills, allocation", {"empty", "empty_like", "empty_strided", "zeros", "zeros_like", "zero_", "fill_", "ones",
                           "ones_like", "full", "full_like", "new_empty", "new_zeros", "new_ones", "new_empty_strided",
                           "resize_", "arange", "scalar_tensor", "lift_fresh", "_efficientzerotensor"}),
]


def family_of(name):
    if not name.startswith("aten::"):
        return "host, between ops"
    op = name[len("aten::"):]
    if "conv" in op or op.startswith("mkldnn_") or op.startswith("_nnpack"):
        return "convolution"
    if op.startswith("_foreach") or "adam" in op:
        return "optimizer"
    for fam, names in FAMILIES:
        if op in names:
            return fam
    return "elementwise"


def param_groups(model, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if n.endswith("bias") or p.dim() <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


class Block(nn.Module):
    """One transformer block with SDPA attention; pre-LN (Whisper) or post-LN (BERT)."""

    def __init__(self, d, heads, ffn, pre_ln, eps, k_bias):
        super().__init__()
        self.heads, self.pre_ln = heads, pre_ln
        self.q, self.k, self.v, self.o = (nn.Linear(d, d), nn.Linear(d, d, bias=k_bias), nn.Linear(d, d),
                                          nn.Linear(d, d))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def attn(self, x):
        B, T, D = x.shape
        split = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)  # noqa: E731
        ctx = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.o(ctx.transpose(1, 2).reshape(B, T, D))

    def forward(self, x):
        if self.pre_ln:
            x = x + self.attn(self.ln1(x))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class MiniLM(nn.Module):
    def __init__(self, vocab=30522, d=384, layers=6, heads=12, ffn=1536, positions=512):
        super().__init__()
        self.word, self.pos, self.token_type = nn.Embedding(vocab, d), nn.Embedding(positions, d), nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(Block(d, heads, ffn, False, 1e-12, True) for _ in range(layers))

    def forward(self, ids):
        T = ids.size(1)
        h = self.ln(self.word(ids) + self.pos.weight[:T] + self.token_type.weight[0])
        for layer in self.layers:
            h = layer(h)
        return h


class WhisperEncoder(nn.Module):
    def __init__(self, mels=80, d=384, layers=4, heads=6, ffn=1536, positions=1500):
        super().__init__()
        self.conv1 = nn.Conv1d(mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.positions = nn.Parameter(torch.randn(positions, d) * 0.02, requires_grad=False)
        self.layers = nn.ModuleList(Block(d, heads, ffn, True, 1e-5, False) for _ in range(layers))
        self.ln = nn.LayerNorm(d)

    def forward(self, mel):  # (B, T, mels)
        h = F.gelu(self.conv2(F.gelu(self.conv1(mel.transpose(1, 2))))).transpose(1, 2)  # (B, T/2, D)
        h = h + self.positions[: h.size(1)]
        for layer in self.layers:
            h = layer(h)
        return self.ln(h)


def build(a):
    """(model, forward, is_step) for --model."""
    if a.model == "conformer":
        from bench_conformer_torch import Tower
        B, T = a.batch or 32, a.frames or 400
        model = Tower()
        x, lengths = torch.randn(B, T, 80), torch.full((B,), T, dtype=torch.long)
        return model, lambda: model(x, lengths), True, f"Conformer small step, batch {B} x {T} frames"
    if a.model == "vit":
        from bench_vit_torch import small28
        B = a.batch or 256
        model = small28(0.0)
        x = torch.randn(B, 1, 28, 28)
        return model, lambda: model(x), True, f"ViT small28 step, batch {B}"
    if a.model == "whisper":
        B, T = a.batch or 32, a.frames or 300
        model = WhisperEncoder()
        x = 0.5 * torch.randn(B, T, 80)
        return model, lambda: model(x), True, f"Whisper tiny encoder step (all blocks), batch {B} x {T} frames"
    B, T = a.batch or 64, a.frames or 32
    model = MiniLM().eval()
    ids = torch.randint(1000, 30000, (B, T))
    return model, lambda: model(ids), False, f"MiniLM-L6 forward (no grad, random weights), batch {B} x {T} tokens"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["conformer", "vit", "minilm", "whisper"], default="conformer")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--frames", "--tokens", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=1, help="profiled iterations, averaged")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    print(f"torch machine: {cpu_model()}, {torch.get_num_threads()} threads, PyTorch {torch.__version__}")
    model, forward, is_step, what = build(a)
    print(f"torch profile: {what}", flush=True)
    if is_step:
        model.train()
        opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)

    def run(phase_fn):
        if not is_step:
            with torch.no_grad(), phase_fn("forward"):
                forward()
            return
        with phase_fn("optimizer"):
            opt.zero_grad()
        with phase_fn("forward"):
            loss = forward().pow(2).mean()
        with phase_fn("backward"):
            loss.backward()
        with phase_fn("optimizer"):
            opt.step()

    class NoPhase:
        def __init__(self, name):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    for _ in range(a.warmup):
        run(NoPhase)
    phase = lambda name: torch.profiler.record_function("phase:" + name)  # noqa: E731
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(a.iters):
            run(phase)
    wall, cpu = (time.perf_counter() - t0) / a.iters, (time.process_time() - c0) / a.iters
    events = list(prof.events())
    phases = [(e.name[len("phase:"):], e.time_range.start, e.time_range.end) for e in events
              if e.name.startswith("phase:")]
    wall_of = defaultdict(float)
    for name, s, e in phases:
        wall_of[name] += (e - s) / 1e6

    def phase_of(t):
        for name, s, e in phases:
            if s <= t < e:
                return name
        return None

    fam = defaultdict(lambda: [0.0, 0, 0])  # (phase, family) -> seconds, flops, calls
    ops = defaultdict(lambda: [0.0, 0, 0])  # (phase, op) -> the same
    for e in events:
        if e.name.startswith("phase:") or not e.name.startswith("aten::"):
            continue
        ph = phase_of(e.time_range.start)
        if ph is None:
            continue
        f = family_of(e.name)
        for d, key in ((fam, (ph, f)), (ops, (ph, e.name))):
            d[key][0] += e.self_cpu_time_total / 1e6
            d[key][1] += e.flops or 0
            d[key][2] += 1
    for d in (wall_of,):
        for k in d:
            d[k] /= a.iters
    for d in (fam, ops):
        for v in d.values():
            v[0] /= a.iters
            v[1] //= a.iters
            v[2] //= a.iters
    for ph in wall_of:  # the phase time no aten op covers
        covered = sum(v[0] for (p, _), v in fam.items() if p == ph)
        fam[(ph, "host, between ops")][0] += max(0.0, wall_of[ph] - covered)
    total = sum(wall_of.values())
    with FlopCount() as fc:  # untimed: the step's model FLOPs, backward convolutions included
        run(NoPhase)
    print(f"torch total {total * 1e3:.1f} ms (profiled; {wall * 1e3:.1f} ms wall with the profiler's start and stop, "
          f"process CPU {cpu * 1e3:.1f} ms), "
          f"{fc.total / 1e9:.2f} GFLOP (tools/torch_flops.py), {fc.total / 1e9 / total:.1f} GFLOP/s")
    print(f"{'phase':<10} {'family':<20} {'ms':>10} {'%':>7} {'GFLOP':>10} {'GFLOP/s':>10} {'calls':>8}")
    for ph in ["forward", "backward", "optimizer"]:
        if ph not in wall_of:
            continue
        rows = sorted(((f, v) for (p, f), v in fam.items() if p == ph), key=lambda r: -r[1][0])
        for f, (s, fl, calls) in rows:
            rate = f"{fl / 1e9 / s:10.1f}" if fl and s > 0 else f"{'':>10}"
            gf = f"{fl / 1e9:10.2f}" if fl else f"{'':>10}"
            print(f"{ph:<10} {f:<20} {s * 1e3:10.1f} {100 * s / total:6.1f}% {gf} {rate} {calls:8d}")
        print(f"{ph:<10} {'(phase total)':<20} {wall_of[ph] * 1e3:10.1f} {100 * wall_of[ph] / total:6.1f}%")
    print("\ntop ops (phase: op, ms, GFLOP/s, calls)")
    for (ph, op), (s, fl, calls) in sorted(ops.items(), key=lambda r: -r[1][0])[: 2 * a.top]:
        rate = f" {fl / 1e9 / s:8.1f} GFLOP/s" if fl and s > 0 else ""
        print(f"  {ph + ': ' + op:<40} {s * 1e3:9.1f} ms{rate}  {calls} calls")


if __name__ == "__main__":
    main()
