# PyTorch counterpart of cuda_ops_bench.cpp: the same ops and shapes, the same timing (median of
# 20 calls after 3 warm-ups, synchronized around each), the same output lines, on the same GPU.
import time

import torch
import torch.nn.functional as F


def median_ms(fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(20):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        t.append((time.perf_counter() - t0) * 1e3)
    return sorted(t)[len(t) // 2]


def report(name, ms, amount, flops):
    rate = amount / (ms * 1e-3) / (1e12 if flops else 1e9)
    print(f"{name:<34} {ms:9.3f} ms  {rate:8.1f} {'TFLOP/s' if flops else 'GB/s'}")


def randn(*s):
    return torch.randn(*s, device="cuda")


torch.backends.cuda.matmul.allow_tf32 = False
f = 4
a, b = randn(4096, 4096), randn(4096, 4096)
report("matmul 4096^3 f32", median_ms(lambda: a @ b), 2.0 * 4096**3, True)
torch.backends.cuda.matmul.allow_tf32 = True
report("matmul 4096^3 tf32", median_ms(lambda: a @ b), 2.0 * 4096**3, True)
torch.backends.cuda.matmul.allow_tf32 = False
x, w = randn(8192, 384), randn(1536, 384)
report("linear (8192,384)@(384,1536)^T", median_ms(lambda: x @ w.t()), 2.0 * 8192 * 384 * 1536, True)
q = randn(32, 12, 128, 32)
report("bmm (384,128,32)@(384,32,128)", median_ms(lambda: q @ q.transpose(-1, -2)), 2.0 * 384 * 128 * 128 * 32, True)
n = 1 << 26
x = randn(n)
report("gelu 64M", median_ms(lambda: F.gelu(x)), 2 * f * n, False)
report("add 64M", median_ms(lambda: x + x), 3 * f * n, False)
h, bias = randn(65536, 1536), randn(1536)
report("add bias (65536,1536)+(1536)", median_ms(lambda: h + bias), 2 * f * 65536 * 1536, False)
report("transpose copy (65536,1536)", median_ms(lambda: h.t().contiguous()), 2 * f * 65536 * 1536, False)
report("sum dim0 (65536,1536)", median_ms(lambda: h.sum(0)), f * 65536 * 1536, False)
report("sum all 64M", median_ms(lambda: x.sum()), f * n, False)
report("softmax (65536,1536)", median_ms(lambda: torch.softmax(h, -1)), 2 * f * 65536 * 1536, False)
x, w, b = randn(65536, 384), randn(384), randn(384)
report("layer_norm (65536,384)", median_ms(lambda: F.layer_norm(x, (384,), w, b)), 2 * f * 65536 * 384, False)
xr = x.clone().requires_grad_(True)
wr, br = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
y = F.layer_norm(xr, (384,), wr, br)
g = torch.randn_like(y)
report("layer_norm backward (65536,384)",
       median_ms(lambda: torch.autograd.grad(y, (xr, wr, br), g, retain_graph=True)), 3 * f * 65536 * 384, False)
x, w = randn(32, 256, 1000), randn(256, 1, 31)
torch.backends.cudnn.allow_tf32 = False
report("depthwise conv1d (32,256,1000) k31", median_ms(lambda: F.conv1d(x, w, padding=15, groups=256)),
       2.0 * 32 * 256 * 1000 * 31, True)
print(f"memory: peak allocated {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
