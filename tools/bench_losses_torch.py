#!/usr/bin/env python3
"""PyTorch CPU reference for bench/bench_losses.cpp: forward + backward time and peak memory of
the contrastive losses written the usual PyTorch way (dense N x N logits, log_softmax, weights),
in the same setting as ours: p requires grad, q frozen, learnable log scale, width 384, f32.

Each (loss, N) runs in its own subprocess, so that peak memory is that case's alone: the child
builds its inputs, reads its max RSS, runs fwd+bwd once, reads it again (the growth is the peak
the loss needed), then times `repeats` fwd+bwd and prints the median. With --ours PATH it also
runs our cw_bench binary one N per process (after one untimed step, `repeats` repetitions of
Google Benchmark's default 0.5 s or one iteration, median), so both sides' time and RSS growth are measured the same way.

On a machine shared with other jobs one side can be unlucky, so with --rounds R the two sides
alternate R times per (loss, N) and each keeps its fastest round (time) and largest growth (memory).

Run: /usr/bin/python3 tools/bench_losses_torch.py [--threads 2] [--sizes 256 1024 4096 16384]
     [--repeats 3] [--rounds 1] [--ours build/bench/cw_bench]
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

WIDTH = 384


def torch_losses():
    import torch
    import torch.nn.functional as F

    def info_nce(zp, zq, t):
        # CLIP's loss as open_clip writes it: cross-entropy over rows and over columns.
        p, q = F.normalize(zp, dim=1), F.normalize(zq, dim=1)
        s = t.exp().clamp(max=100) * p @ q.T
        labels = torch.arange(s.shape[0], device=s.device)
        return (F.cross_entropy(s, labels) + F.cross_entropy(s.T, labels)) / 2

    def cwcl(zp, zq, t):
        # CWCL with the paper's linear weights from the frozen q, both directions, mean.
        p, q = F.normalize(zp, dim=1), F.normalize(zq, dim=1)
        s = t.exp().clamp(max=100) * p @ q.T
        n = s.shape[0]
        with torch.no_grad():
            w = (q @ q.T) / 2 + 0.5
            t_rows = w / w.sum(1, keepdim=True)
            t_cols = w / w.sum(0, keepdim=True)
        l_rows = -(t_rows * s.log_softmax(1)).sum() / n
        l_cols = -(t_cols * s.log_softmax(0)).sum() / n
        return (l_rows + l_cols) / 2

    return {"infonce": info_nce, "cwcl": cwcl}


def child(loss, n, threads, repeats):
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(42)
    p = torch.randn(n, WIDTH, generator=g)
    q = p + torch.randn(n, WIDTH, generator=g)  # pairs correlated as in training
    zp = p.clone().requires_grad_()
    t = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    fn = torch_losses()[loss]

    def step():
        zp.grad = t.grad = None
        fn(zp, q, t).backward()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"ms": 1e3 * statistics.median(times), "rss_growth_mb": rss_growth_mb}))


def run_torch(loss, n, threads, repeats):
    out = subprocess.run([sys.executable, __file__, "--child", loss, str(n), "--threads", str(threads),
                          "--repeats", str(repeats)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_ours(binary, loss, n, threads, repeats):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, f"--benchmark_filter=BM_{loss}_fwd_bwd/{n}/", "--benchmark_format=json",
                          f"--benchmark_repetitions={repeats}"],
                         check=True, capture_output=True, text=True, env=env).stdout
    runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    return {"ms": statistics.median(b["real_time"] for b in runs),
            "rss_growth_mb": max(b["rss_growth_MB"] for b in runs),
            "peak_tensor_mb": max(b["peak_tensor_MB"] for b in runs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--losses", nargs="+", default=["infonce", "cwcl"])
    ap.add_argument("--ours", help="path of cw_bench, to measure ours one N per process too")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.threads, a.repeats)
        return
    print(f"threads={a.threads} width={WIDTH} f32, p requires grad, q frozen, learnable log scale")
    header = f"{'loss':8} {'N':>6} {'torch ms':>10} {'torch MB':>9}"
    if a.ours:
        header += f" {'ours ms':>9} {'ours MB':>8} {'tensors MB':>10} {'speedup':>8}"
    print(header + f" {'NxN MB':>7}")
    print(f"load average at start: {os.getloadavg()}")
    for loss in a.losses:
        for n in a.sizes:
            refs, ours = [], []
            for _ in range(a.rounds):
                refs.append(run_torch(loss, n, a.threads, a.repeats))
                if a.ours:
                    ours.append(run_ours(a.ours, loss, n, a.threads, a.repeats))
            ref = {"ms": min(r["ms"] for r in refs), "rss_growth_mb": max(r["rss_growth_mb"] for r in refs)}
            line = f"{loss:8} {n:6d} {ref['ms']:10.1f} {ref['rss_growth_mb']:9.0f}"
            if a.ours:
                us = {k: (min if k == "ms" else max)(o[k] for o in ours) for k in ours[0]}
                line += (f" {us['ms']:9.1f} {us['rss_growth_mb']:8.0f} {us['peak_tensor_mb']:10.0f}"
                         f" {ref['ms'] / us['ms']:7.2f}x")
            print(line + f" {n * n * 4 / 2**20:7.0f}", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
