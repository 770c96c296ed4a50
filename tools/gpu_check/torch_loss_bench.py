# PyTorch counterpart of loss_bench.cpp on the same GPU: InfoNCE and CWCL written the usual way
# (tools/bench_losses_torch.py's torch_losses: dense N x N logits, log_softmax, weights under
# no_grad), forward + backward, same setting, same timing (median of 10 steps after 2 warm-ups,
# synchronized around each), same output lines; peak = torch.cuda.max_memory_allocated during
# the steps above the inputs. CW_GPU_CHECK_ON_CPU=1 rehearses it on the CPU (no measurement).
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_losses_torch import torch_losses  # noqa: E402

on_cpu = "CW_GPU_CHECK_ON_CPU" in os.environ
dev = "cpu" if on_cpu else "cuda"
cuda = None if on_cpu else torch.cuda
torch.backends.cuda.matmul.allow_tf32 = False
sizes = [int(a) for a in sys.argv[1:]] or [256, 1024, 4096, 16384]
for name, fn in torch_losses().items():
    for n in sizes:
        g = torch.Generator().manual_seed(42)
        p = torch.randn(n, 384, generator=g)
        q = (p + torch.randn(n, 384, generator=g)).to(dev)
        zp = p.to(dev).requires_grad_()
        t = torch.tensor(math.log(1 / 0.07), device=dev, requires_grad=True)

        def step():
            zp.grad = t.grad = None
            fn(zp, q, t).backward()

        def sync():
            if cuda:
                cuda.synchronize()

        sync()
        if cuda:
            cuda.reset_peak_memory_stats()
        base = cuda.memory_allocated() if cuda else 0
        for _ in range(2):
            step()
        sync()
        ms = []
        for _ in range(10):
            t0 = time.perf_counter()
            step()
            sync()
            ms.append((time.perf_counter() - t0) * 1e3)
        peak = cuda.max_memory_allocated() - base if cuda else 0
        print(f"torch {name:<8} N={n:<6} {sorted(ms)[len(ms) // 2]:9.3f} ms  peak {peak / 2**20:8.1f} MiB"
              f"  (one N x N f32: {n * n * 4 / 2**20:.1f} MiB)", flush=True)
