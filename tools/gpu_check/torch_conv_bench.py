# PyTorch counterpart of conv_bench.cpp on the same GPU: the small Conformer's four convolutions
# at the training step's batch, forward, input gradient and weight gradient
# (torch.ops.aten.convolution_backward, one gradient per call), same timing (median of 10 calls
# after 2 warm-ups, synchronized around each), same output lines. PyTorch's defaults choose the
# implementation (cuDNN for the dense ones, its own or cuDNN's kernel for depthwise); TF32 and
# cudnn.benchmark off, as ours. CW_GPU_CHECK_ON_CPU=1 rehearses it on the CPU (no measurement).
import os
import time

import torch
import torch.nn.functional as F

on_cpu = "CW_GPU_CHECK_ON_CPU" in os.environ
dev = "cpu" if on_cpu else "cuda"
cuda = None if on_cpu else torch.cuda
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = False

B, T, Fm, D, T4, K = (2 if on_cpu else 256), 400, 80, 144, 99, 31
# name, x shape, w shape, stride, padding, groups
convs = [
    ("subsampling conv 1 (1->144, 3x3 s2)", (B, 1, T, Fm), (D, 1, 3, 3), (2, 2), (0, 0), 1),
    ("subsampling conv 2 (144->144, 3x3 s2)", (B, D, 199, 39), (D, D, 3, 3), (2, 2), (0, 0), 1),
    ("pointwise conv1d (144->288)", (B, D, 1, T4), (2 * D, D, 1, 1), (1, 1), (0, 0), 1),
    ("depthwise conv1d (144, k31)", (B, D, 1, T4), (D, 1, 1, K), (1, 1), (0, K // 2), D),
]


def sync():
    if cuda:
        cuda.synchronize()


def median_ms(fn):
    for _ in range(2):
        fn()
    sync()
    t = []
    for _ in range(10):
        t0 = time.perf_counter()
        fn()
        sync()
        t.append((time.perf_counter() - t0) * 1e3)
    return sorted(t)[len(t) // 2]


with torch.no_grad():
    for name, xs, ws, stride, padding, groups in convs:
        g = torch.Generator().manual_seed(1)
        x, w = torch.randn(*xs, generator=g).to(dev), torch.randn(*ws, generator=g).to(dev)
        y0 = F.conv2d(x, w, None, stride, padding, 1, groups)
        gy = torch.randn(*y0.shape, generator=g).to(dev)
        gflop = 2.0 * y0.numel() * ws[1] * ws[2] * ws[3] / 1e9

        def backward(mask):
            return torch.ops.aten.convolution_backward(gy, x, w, None, list(stride), list(padding), [1, 1], False,
                                                       [0, 0], groups, mask)

        sync()
        if cuda:
            cuda.reset_peak_memory_stats()
        base = cuda.memory_allocated() if cuda else 0
        fwd = median_ms(lambda: F.conv2d(x, w, None, stride, padding, 1, groups))
        bx = median_ms(lambda: backward([True, False, False]))
        bw = median_ms(lambda: backward([False, True, False]))
        peak = cuda.max_memory_allocated() - base if cuda else 0
        print(f"torch        {name:<38} fwd {fwd:8.3f}  bwd_x {bx:8.3f}  bwd_w {bw:8.3f} ms  "
              f"{3 * gflop / (fwd + bx + bw):6.1f} TFLOP/s  peak {peak / 2**20:8.1f} MiB", flush=True)
