#!/usr/bin/env python3
"""PyTorch CPU reference timings for the shapes of cw_bench (bench/), so BENCHMARKS.md can put
PyTorch beside our ops. Runs with 2 threads, f32, and prints a table of medians (ms).

Run: /usr/bin/python3 tools/bench_torch.py [--threads 2] [--repeats 5] [--filter REGEX]
Each row is the median of `repeats` blocked_autorange measurements (torch.utils.benchmark,
which warms up and picks the inner loop count itself).
"""
import argparse
import re

import torch
import torch.nn.functional as F
from torch.utils import benchmark

TOKENS, MODEL, HIDDEN = 2048, 384, 1536  # bench/bench_util.h
ATTN_BATCH, SEQ, HEAD_DIM = 8 * 12, 128, 384 // 12


def cases():
    """(name matching cw_bench, statement, globals, flops or 0); names follow cw_bench's."""
    g = torch.Generator().manual_seed(0)
    randn = lambda *s: torch.randn(*s, generator=g)
    x, b_kn, w = randn(TOKENS, MODEL), randn(MODEL, HIDDEN), randn(HIDDEN, MODEL)
    q, k = randn(ATTN_BATCH, SEQ, HEAD_DIM), randn(ATTN_BATCH, SEQ, HEAD_DIM)
    mm_flops = 2.0 * TOKENS * MODEL * HIDDEN
    yield "matmul", "torch.matmul(x, b)", dict(x=x, b=b_kn), mm_flops
    yield "matmul_wt", "torch.matmul(x, w.t())", dict(x=x, w=w), mm_flops
    g_mn = randn(TOKENS, HIDDEN)
    yield "matmul_bwd_dx", "torch.matmul(g, w)", dict(g=g_mn, w=w), mm_flops
    yield "matmul_bwd_dw", "torch.matmul(x.t(), g)", dict(x=x, g=g_mn), mm_flops
    yield "matmul_attn_qk", "torch.matmul(q, k.transpose(-1, -2))", dict(q=q, k=k), \
        2.0 * ATTN_BATCH * SEQ * SEQ * HEAD_DIM

    for arg, shape in ((0, (TOKENS, MODEL)), (1, (ATTN_BATCH, SEQ, SEQ))):
        s = randn(*shape)
        y, gy = torch.softmax(s, -1), randn(*shape)
        yield f"softmax/{arg}", "torch.softmax(s, -1)", dict(s=s), 0
        yield f"softmax_backward/{arg}", "torch._softmax_backward_data(gy, y, -1, y.dtype)", \
            dict(gy=gy, y=y), 0

    h, lw, lb, lgy = randn(TOKENS, MODEL), randn(MODEL), randn(MODEL), randn(TOKENS, MODEL)
    yield "layer_norm", "F.layer_norm(h, (h.shape[-1],), lw, lb)", dict(h=h, lw=lw, lb=lb), 0
    # Forward + backward of x, weight and bias, through autograd (PyTorch's own fused kernels).
    hr, lwr, lbr = (t.clone().requires_grad_() for t in (h, lw, lb))
    yield "layer_norm_fwd_bwd", (
        "hr.grad = lwr.grad = lbr.grad = None\n"
        "F.layer_norm(hr, (hr.shape[-1],), lwr, lbr).backward(lgy)"), \
        dict(hr=hr, lwr=lwr, lbr=lbr, lgy=lgy), 0

    a, a2, bias = randn(TOKENS, HIDDEN), randn(TOKENS, HIDDEN), randn(HIDDEN)
    yield "gelu", "F.gelu(a)", dict(a=a), 0
    yield "gelu_backward", "torch.ops.aten.gelu_backward(a2, a)", dict(a=a, a2=a2), 0
    yield "add_row_broadcast", "a + bias", dict(a=a, bias=bias), 0
    yield "add_same_shape", "a + a2", dict(a=a, a2=a2), 0
    yield "sum_rows", "a.sum(0)", dict(a=a), 0
    yield "sum_all", "a.sum()", dict(a=a), 0

    # Linear y = x @ W^T + b (2048, 384) -> (2048, 1536): matmul + add as ours does, not F.linear.
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, randn(HIDDEN)))
    yield "linear_fwd", "torch.add(torch.matmul(xr, wr.t()), br)", dict(xr=xr, wr=wr, br=br), mm_flops
    yield "linear_fwd_bwd", (
        "xr.grad = wr.grad = br.grad = None\n"
        "torch.add(torch.matmul(xr, wr.t()), br).sum().backward()"), \
        dict(xr=xr, wr=wr, br=br), 3 * mm_flops
    yield "linear_fwd_bwd_F.linear", (
        "xr.grad = wr.grad = br.grad = None\n"
        "F.linear(xr, wr, br).sum().backward()"), dict(xr=xr, wr=wr, br=br), 3 * mm_flops


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    p.add_argument("--filter", default="", help="regex on the case name")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, dtype float32, "
          f"median of {args.repeats} x blocked_autorange({args.min_run_time}s)")
    print(f"{'case':<26} {'median ms':>10} {'min ms':>10} {'GFLOP/s':>9}")
    for name, stmt, env, flops in cases():
        if not re.search(args.filter, name):
            continue
        env = dict(env, torch=torch, F=F)
        timer = benchmark.Timer(stmt=stmt, globals=env, num_threads=args.threads)
        timer.timeit(3)  # warm-up: first-touch allocations, thread pool start
        times = sorted(timer.blocked_autorange(min_run_time=args.min_run_time).median
                       for _ in range(args.repeats))
        med = times[len(times) // 2]
        rate = f"{flops / med * 1e-9:9.1f}" if flops else f"{'':9}"
        print(f"{name:<26} {med * 1e3:10.3f} {times[0] * 1e3:10.3f} {rate}", flush=True)


if __name__ == "__main__":
    main()
