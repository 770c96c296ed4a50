"""PyTorch counterpart of train_step_check.cpp's throughput part: the same small Conformer tower
(tools/bench_conformer_torch.py's Tower: torchaudio Conformer blocks), CWCL-shaped work replaced
by CLIP's cross-entropy on the 384-d embeddings (the loss is a few microseconds of the step),
global-norm clip and AdamW, on CUDA, f32 (TF32 off unless --tf32 1), same batch and lengths.
    python3 tools/gpu_check/torch_conformer_step.py --batch 256 --frames 400 --iters 10
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_conformer_torch import Tower, param_groups  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tf32", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cpu: a rehearsal on a machine without a GPU")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
    torch.backends.cudnn.allow_tf32 = bool(a.tf32)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()
    torch.manual_seed(0)
    model = Tower().to(dev).train()
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-3, betas=(0.9, 0.98), eps=1e-8)
    scale = torch.nn.Parameter(torch.tensor(2.659, device=dev))
    B, T = a.batch, a.frames
    lengths = torch.tensor([T - (b * (T // 2)) // max(B - 1, 1) for b in range(B)], device=dev)
    warmup, times = 3, []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + a.iters):
        feats = torch.randn(B, T, 80, device=dev)
        q = F.normalize(torch.randn(B, 384, device=dev), dim=-1)
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        p = F.normalize(model(feats, lengths), dim=-1)
        logits = scale.exp().clamp(max=100) * p @ q.t()
        target = torch.arange(B, device=dev)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + [scale], 1.0)
        opt.step()
        loss.item()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1e3
    print(f"torch {torch.__version__} small Conformer step (fwd + bwd + clip + AdamW), batch {B} x {T} frames, "
          f"f32{' (TF32)' if a.tf32 else ''}: median {ms:.1f} ms, {B / ms * 1e3:.0f} utt/s, "
          f"peak allocated {torch.cuda.max_memory_allocated() / 2**20 if cuda else 0:.0f} MiB")


if __name__ == "__main__":
    main()
