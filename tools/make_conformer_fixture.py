"""Makes the PyTorch/torchaudio reference fixtures of the speech tower, read by
tests/nn/conv_norm_test.cpp and tests/models/conformer_test.cpp:

    conformer_layers.txt  nn.Conv1d (strided, dilated, grouped; depthwise), nn.Conv2d, nn.GLU,
                          nn.BatchNorm1d (train on 3-d and 2-d input with the running statistics
                          after the step, eval), and our masked BatchNorm1d against nn.BatchNorm1d
                          run on the real frames alone
    conformer_block.txt   torchaudio.models.conformer.ConformerLayer (Gulati et al. 2020 as
                          torchaudio 0.13 builds it), three cases (below)
    conformer_model.txt   the whole tiny tower composed of torch.nn modules and torchaudio layers

Records of one case, all named `<case>.<field>` as in tools/make_nn_fixtures.py:
    <case>.param.<name>   every weight and buffer, under OUR name (torchaudio's are renamed here)
    <case>.x, .mask/.lengths, .config, .y, .r, .dx, .grad.<name>   (loss = sum(y * r))
    <case>.after.<name>   BatchNorm buffers after the forward pass (training mode)
    model.flops           [forward, backward] model FLOPs of the whole tower (tools/torch_flops.py)

The Conformer block cases, and what differs from stock torchaudio:
  block_train        no padding, training mode: stock ConformerLayer, nothing changed.
  block_eval_pad     padded batch, eval mode (running statistics randomized): ConformerLayer
                     with one forward pre-hook that zeroes the padded frames in front of the
                     depthwise conv, as ours does; stock torchaudio lets padding leak into the
                     last kernel_size/2 real frames there.
  block_train_pad    padded batch, training mode: the same hook, and BatchNorm statistics over
                     real frames only (a 10-line masked batch norm standing in for
                     nn.BatchNorm1d; conformer_layers.txt checks ours against nn.BatchNorm1d).
torchaudio's block takes no positions (its Conformer has no positional encoding); ours adds
them once, after subsampling, so the block is compared as is, on inputs that already carry them.

Module names: ours are readable names, torchaudio's are nn.Sequential indices; RENAME maps them
(the one rename table). The packed in_proj of nn.MultiheadAttention is split into our query,
key, value.

Deterministic (a fixed seed per file), f64, written atomically. Run from anywhere:
    /usr/bin/python3 tools/make_conformer_fixture.py
(needs PyTorch 1.13 and torchaudio 0.13: Debian's python3-torch and python3-torchaudio).
"""

import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchaudio.models.conformer import ConformerLayer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import F64, Fixture  # noqa: E402  (same text format and atomic writer)
from torch_flops import FlopCount  # noqa: E402  (the model-FLOP convention of core/flop_counter.h)

# torchaudio ConformerLayer name (after the sub-module prefix) -> ours.
RENAME = {
    "ffn1.sequential.0.": "ffn1.layer_norm.",
    "ffn1.sequential.1.": "ffn1.linear1.",
    "ffn1.sequential.4.": "ffn1.linear2.",
    "ffn2.sequential.0.": "ffn2.layer_norm.",
    "ffn2.sequential.1.": "ffn2.linear1.",
    "ffn2.sequential.4.": "ffn2.linear2.",
    "conv_module.sequential.0.": "conv_module.pointwise_conv1.",
    "conv_module.sequential.2.": "conv_module.depthwise_conv.",
    "conv_module.sequential.3.": "conv_module.batch_norm.",
    "conv_module.sequential.5.": "conv_module.pointwise_conv2.",
    "self_attn.out_proj.": "self_attn.out_proj.",
    "self_attn_layer_norm.": "self_attn_layer_norm.",
    "conv_module.layer_norm.": "conv_module.layer_norm.",
    "final_layer_norm.": "final_layer_norm.",
}


def our_name(name):
    for theirs, ours in RENAME.items():
        if name.startswith(theirs):
            return ours + name[len(theirs):]
    raise KeyError(name)


def randomize_(module, scale=0.5):
    """Random values for every parameter (so LayerNorm's ones and zero biases hide no error) and
    random running statistics (positive variances)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, dtype=F64) * scale)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, dtype=F64) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, dtype=F64) + 0.5)
                m.num_batches_tracked.fill_(7)


def named_tensors(module, prefix, rename):
    """(our name, parameter or buffer, pick) for every tensor of a module; the packed attention
    projection becomes three entries that pick their rows."""
    out = []
    for name, p in list(module.named_parameters()) + list(module.named_buffers()):
        if name.endswith("in_proj_weight") or name.endswith("in_proj_bias"):
            base = name[: -len("in_proj_weight")] if name.endswith("weight") else name[: -len("in_proj_bias")]
            field = "weight" if name.endswith("weight") else "bias"
            e = p.shape[0] // 3
            for k, proj in enumerate(("query", "key", "value")):
                out.append((f"{prefix}{base}{proj}.{field}", p, lambda t, k=k, e=e: t[k * e:(k + 1) * e]))
        else:
            out.append((prefix + rename(name), p, None))
    return out


def record_case(fx, case, tensors, x, forward, buffers_after=(), count_flops=False):
    """Runs forward and backward of sum(y * r) and records inputs, outputs and gradients.
    tensors: from named_tensors; buffers_after: (our name, buffer) recorded after the step;
    count_flops: also record <case>.flops = [forward, backward] model FLOPs (tools/torch_flops.py)."""
    for name, t, pick in tensors:
        fx.add(f"{case}.param.{name}", (pick(t) if pick else t).clone())  # before any update
    fx.add(f"{case}.x", x)
    x = x.clone().requires_grad_(True)
    with FlopCount() as fwd_flops:
        y = forward(x)
    r = torch.randn(y.shape, dtype=F64)
    with FlopCount() as bwd_flops:
        (y * r).sum().backward()
    if count_flops:
        fx.add_ints(f"{case}.flops", [fwd_flops.total, bwd_flops.total])
    fx.add(f"{case}.y", y)
    fx.add(f"{case}.r", r)
    fx.add(f"{case}.dx", x.grad)
    for name, t, pick in tensors:
        if t.requires_grad:
            fx.add(f"{case}.grad.{name}", pick(t.grad) if pick else t.grad)
    for name, t in buffers_after:
        fx.add(f"{case}.after.{name}", t.clone())


def padding_mask(lengths, T):
    """(B, T) bool, True at padding (PyTorch's convention)."""
    return torch.arange(T)[None, :] >= torch.as_tensor(lengths)[:, None]


# ---------------------------------------------------------------- conformer_layers.txt

def make_layers():
    fx = Fixture("conformer_layers.txt", "Conv1d, depthwise Conv1d, Conv2d, GLU, BatchNorm1d")
    same = lambda n: n  # noqa: E731  (nn modules' names are ours already)
    # Conv1d. config: in, out, kernel, stride, padding, dilation, groups
    for case, cfg, L in (("conv1d", (4, 6, 3, 2, 1, 2, 2), 11),
                         ("conv1d_depthwise", (4, 4, 5, 1, 2, 1, 4), 9),
                         ("conv1d_pointwise", (4, 8, 1, 1, 0, 1, 1), 7)):
        cin, cout, k, s, p, d, g = cfg
        conv = nn.Conv1d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, dtype=F64)
        fx.add_ints(f"{case}.config", cfg)
        record_case(fx, case, named_tensors(conv, "", same), torch.randn(2, cin, L, dtype=F64), conv)
    # Conv2d. config: in, out, kh, kw, sh, sw, ph, pw, dh, dw, groups
    for case, cfg, hw in (("conv2d", (2, 4, 3, 2, 2, 1, 1, 0, 1, 2, 2), (7, 9)),
                          ("conv2d_subsample", (1, 3, 3, 3, 2, 2, 0, 0, 1, 1, 1), (11, 8))):
        cin, cout, kh, kw, sh, sw, ph, pw, dh, dw, g = cfg
        conv = nn.Conv2d(cin, cout, (kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=g,
                         dtype=F64)
        fx.add_ints(f"{case}.config", cfg)
        record_case(fx, case, named_tensors(conv, "", same), torch.randn(2, cin, *hw, dtype=F64), conv)
    # GLU over the channel dim, as the Conformer's conv module uses it.
    glu = nn.GLU(dim=1)
    record_case(fx, "glu", [], torch.randn(2, 6, 5, dtype=F64), glu)
    # BatchNorm1d in training mode on (B, C, T) and (B, C); eval mode. config: C; eps, momentum.
    for case, shape, train in (("bn_train_3d", (3, 4, 5), True), ("bn_train_2d", (6, 4), True),
                               ("bn_eval", (3, 4, 5), False)):
        bn = nn.BatchNorm1d(4, eps=1e-5, momentum=0.1, dtype=F64)
        randomize_(bn)
        bn.train(train)
        fx.add_ints(f"{case}.config", [4])
        x = torch.randn(shape, dtype=F64) * 2 + 0.7
        tensors = named_tensors(bn, "", same)
        record_case(fx, case, tensors, x, bn, [(n, b) for n, b in bn.named_buffers()])
    # Our masked BatchNorm1d: statistics over the real frames only. The reference is PyTorch's
    # nn.BatchNorm1d on the real frames laid end to end, (1, C, sum(lengths)); padded positions
    # hold large garbage and get r = 0, so they must leave no trace anywhere. y and dx are 0 there.
    lengths = [6, 4, 2]
    B, C, T = 3, 4, 6
    bn = nn.BatchNorm1d(C, dtype=F64)
    randomize_(bn)
    bn.train()
    case = "bn_masked"
    mask = padding_mask(lengths, T)
    x = torch.randn(B, C, T, dtype=F64) + 0.3
    x = x.masked_fill(mask[:, None, :], 0) + mask[:, None, :] * torch.randn(B, C, T, dtype=F64) * 100
    fx.add(f"{case}.mask", mask)
    tensors = named_tensors(bn, "", same)
    for name, t, _ in tensors:
        fx.add(f"{case}.param.{name}", t.clone())
    fx.add(f"{case}.x", x)
    real = torch.cat([x[b, :, :lengths[b]] for b in range(B)], dim=1)[None].clone().requires_grad_(True)
    y_real = bn(real)  # (1, C, sum(lengths))
    r_real = torch.randn(y_real.shape, dtype=F64)
    (y_real * r_real).sum().backward()
    y = torch.zeros(B, C, T, dtype=F64)
    r = torch.zeros(B, C, T, dtype=F64)
    dx = torch.zeros(B, C, T, dtype=F64)
    start = 0
    for b in range(B):
        y[b, :, :lengths[b]] = y_real[0, :, start:start + lengths[b]]
        r[b, :, :lengths[b]] = r_real[0, :, start:start + lengths[b]]
        dx[b, :, :lengths[b]] = real.grad[0, :, start:start + lengths[b]]
        start += lengths[b]
    fx.add(f"{case}.y", y)
    fx.add(f"{case}.r", r)
    fx.add(f"{case}.dx", dx)
    fx.add(f"{case}.grad.weight", bn.weight.grad)
    fx.add(f"{case}.grad.bias", bn.bias.grad)
    for n, b in bn.named_buffers():
        fx.add(f"{case}.after.{n}", b)
    fx.write()


# ---------------------------------------------------------------- conformer_block.txt

D, H, FFN, K = 8, 2, 16, 31  # the block of the tests: d_model, heads, ffn dim, depthwise kernel


class MaskedBatchNorm1d(nn.Module):
    """Stands in for nn.BatchNorm1d in block_train_pad: batch statistics over real frames only
    (the mask is set before each call), running statistics as nn.BatchNorm1d's."""

    def __init__(self, bn):
        super().__init__()
        self.bn = bn
        self.real = None  # (B, 1, T) 1.0 at real frames

    def forward(self, x):
        bn, real = self.bn, self.real
        n = real.sum() * 1.0
        mean = (x * real).sum(dim=(0, 2)) / n
        var = (((x - mean[None, :, None]) * real) ** 2).sum(dim=(0, 2)) / n
        with torch.no_grad():
            bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * mean)
            bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * var * n / (n - 1))
            bn.num_batches_tracked.add_(1)
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + bn.eps)
        return y * bn.weight[None, :, None] + bn.bias[None, :, None]


def zero_padding_before_depthwise(layer, mask):
    """Forward pre-hook on the depthwise conv: padded frames (B, C, T) become 0, as ours."""
    keep = (~mask)[:, None, :].to(F64)
    return layer.conv_module.sequential[2].register_forward_pre_hook(lambda m, inp: (inp[0] * keep,))


def block_tensors(layer, prefix=""):
    return named_tensors(layer, prefix, our_name)


def run_block(layer, x, mask):
    """Our layout (B, T, D) in and out; torchaudio's layer is time-major."""
    return layer(x.transpose(0, 1), mask).transpose(0, 1)


def make_block():
    fx = Fixture("conformer_block.txt", "torchaudio ConformerLayer: train, eval padded, train padded")
    B, T = 2, 12
    lengths = [12, 9]
    for case, pad, train in (("block_train", False, True), ("block_eval_pad", True, False),
                             ("block_train_pad", True, True)):
        layer = ConformerLayer(D, FFN, H, K, dropout=0.0).to(F64)
        randomize_(layer)
        layer.train(train)
        # config: d_model, num_heads, ffn_dim, kernel
        fx.add_ints(f"{case}.config", [D, H, FFN, K])
        mask = padding_mask(lengths if pad else [T] * B, T)
        if pad:
            fx.add(f"{case}.mask", mask)
            zero_padding_before_depthwise(layer, mask)
        bn = layer.conv_module.sequential[3]
        tensors = block_tensors(layer)
        if pad and train:
            masked = MaskedBatchNorm1d(bn)
            masked.real = (~mask)[:, None, :].to(F64)
            layer.conv_module.sequential[3] = masked
        x = torch.randn(B, T, D, dtype=F64)
        after = [(f"conv_module.batch_norm.{n}", b) for n, b in bn.named_buffers()] if train else []
        record_case(fx, case, tensors, x, lambda x: run_block(layer, x, mask if pad else None), after)
    fx.write()


# ---------------------------------------------------------------- conformer_model.txt

def sinusoidal_positions(T, d):
    """ESPnet's PositionalEncoding table (Vaswani et al. 2017, sec. 3.5): (T, d)."""
    pos = torch.arange(T, dtype=F64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=F64) * -(math.log(10000.0) / d))
    pe = torch.zeros(T, d, dtype=F64)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


def make_model():
    """The tiny tower in eval mode on a padded batch: Conv2dSubsampling (ESPnet's: two 3x3
    stride-2 convs with ReLU, then Linear over channels x frequency), x * sqrt(d) + positions,
    torchaudio ConformerLayers (with the padding hook), masked mean pooling, Linear head."""
    fx = Fixture("conformer_model.txt", "tiny Conformer tower: subsampling, positions, 2 layers, head")
    n_mels, layers, embed = 10, 2, 6
    B, T = 3, 23
    lengths = torch.tensor([23, 17, 9])
    # config: n_mels, d_model, num_heads, ffn_dim, num_layers, kernel, embed_dim
    fx.add_ints("model.config", [n_mels, D, H, FFN, layers, 7, embed])
    conv1 = nn.Conv2d(1, D, 3, stride=2, dtype=F64)
    conv2 = nn.Conv2d(D, D, 3, stride=2, dtype=F64)
    f_out = ((n_mels - 1) // 2 - 1) // 2
    out = nn.Linear(D * f_out, D, dtype=F64)
    blocks = [ConformerLayer(D, FFN, H, 7, dropout=0.0).to(F64) for _ in range(layers)]
    proj = nn.Linear(D, embed, dtype=F64)
    tower = nn.ModuleDict({"conv1": conv1, "conv2": conv2, "out": out, "proj": proj})
    for blk in blocks:
        randomize_(blk)
    for m in tower.values():
        randomize_(m, 0.3)
    tower.eval()
    for blk in blocks:
        blk.eval()
    out_lengths = ((lengths - 1) // 2 - 1) // 2
    T_out = ((T - 1) // 2 - 1) // 2
    mask = padding_mask(out_lengths, T_out)
    for blk in blocks:
        zero_padding_before_depthwise(blk, mask)
    tensors = (named_tensors(conv1, "subsampling.conv1.", lambda n: n)
               + named_tensors(conv2, "subsampling.conv2.", lambda n: n)
               + named_tensors(out, "subsampling.out.", lambda n: n))
    for i, blk in enumerate(blocks):
        tensors += block_tensors(blk, f"layers.{i}.")
    tensors += named_tensors(proj, "proj.", lambda n: n)
    fx.add("model.lengths", lengths)
    fx.add("model.out_lengths", out_lengths)

    def forward(feats):
        h = F.relu(conv2(F.relu(conv1(feats[:, None]))))  # (B, D, T', F')
        h = out(h.transpose(1, 2).reshape(B, T_out, D * f_out))  # (B, T', D)
        h = h * math.sqrt(D) + sinusoidal_positions(T_out, D)
        for blk in blocks:
            h = run_block(blk, h, mask)
        h = h.masked_fill(mask[:, :, None], 0)
        pooled = h.sum(dim=1) / out_lengths[:, None].to(F64)
        return proj(pooled)

    feats = torch.randn(B, T, n_mels, dtype=F64)
    feats = feats.masked_fill(padding_mask(lengths, T)[:, :, None], 0)  # as a loader pads
    record_case(fx, "model", tensors, feats, forward, count_flops=True)
    fx.write()


if __name__ == "__main__":
    make_layers()
    make_block()
    make_model()
