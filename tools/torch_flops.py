"""Counts the model FLOPs of PyTorch code the way core/flop_counter.h counts ours: the GEMMs
(mm, addmm, bmm, baddbmm) and the convolutions, forward and backward, 2 FLOPs per multiply-add;
nothing else. PyTorch >= 2.1 ships torch.utils.flop_counter.FlopCounterMode with this convention;
this one is written on TorchDispatchMode so that it also runs under Debian's PyTorch 1.13.

    with FlopCount() as fc:
        loss = model(x).sum(); loss.backward()
    fc.total, fc.by_op
"""

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def _prod(xs):
    return math.prod(int(v) for v in xs)


def _mm(args, out):
    a, b = args[-2], args[-1]  # addmm/baddbmm take the added term first
    # (.., M, K) @ (.., K, N): 2 * batch * M * N * K, read off the output and a's inner dim
    return 2 * out.numel() * int(a.shape[-1])


def _conv(args, out):
    w = args[1]
    return 2 * out.numel() * _prod(w.shape[1:])  # out (N, Cout, *L), w (Cout, Cin/g, *k)


def _conv_backward(args, out):
    grad_out, weight, mask = args[0], args[2], args[10]
    one = 2 * grad_out.numel() * _prod(weight.shape[1:])  # each pass costs the forward's GEMM
    return one * (int(bool(mask[0])) + int(bool(mask[1])))


def _sdpa(args, out):
    q, k, v = args[0], args[1], args[2]  # (B, H, T, Dh), (B, H, S, Dh), (B, H, S, Dv)
    return 2 * _prod(q.shape[:-1]) * int(k.shape[-2]) * (int(q.shape[-1]) + int(v.shape[-1]))


def _sdpa_backward(args, out):
    return 2 * _sdpa(args[1:], out)  # dQ, dK, dP, dV: twice the forward's two GEMMs


RULES = {
    aten.mm.default: ("matmul", _mm),
    aten.addmm.default: ("matmul", _mm),
    aten.bmm.default: ("matmul", _mm),
    aten.baddbmm.default: ("matmul", _mm),
    aten.convolution.default: ("conv", _conv),
    aten.convolution_backward.default: ("conv", _conv_backward),
}
# PyTorch >= 2.0 runs nn.MultiheadAttention's core as one fused op; count it as the two GEMMs it
# replaces, so that a newer PyTorch counts what 1.13 and ours count.
for _fwd, _bwd in (("_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward"),
                   ("_scaled_dot_product_efficient_attention",
                    "_scaled_dot_product_efficient_attention_backward"),
                   ("_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward")):
    if hasattr(aten, _fwd):
        RULES[getattr(aten, _fwd).default] = ("attention", _sdpa)
    if hasattr(aten, _bwd):
        RULES[getattr(aten, _bwd).default] = ("attention", _sdpa_backward)


class FlopCount(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.total = 0
        self.by_op = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rule = RULES.get(func)
        if rule is not None:
            name, count = rule
            flops = count(args, out)
            self.total += flops
            self.by_op[name] = self.by_op.get(name, 0) + flops
        return out
