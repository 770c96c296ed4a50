"""Makes the PyTorch reference fixtures of the nn layers, tests/fixtures/nn_*.txt, read by
tests/nn/reference_test.cpp: each case builds the PyTorch module in float64, renames its weights
to our parameter names, and records the input, the output and the gradients of sum(y * r).

Records of one case, all named `<case>.<field>` (case names are listed in the C++ test):
    <case>.param.<name>   every weight, under OUR name (query.weight, ffn.fc1.bias, ...)
    <case>.x              input (f64; i64 ids for the embedding)
    <case>.mask           key padding mask as 0/1 i64, 1 = padding (PyTorch's bool True)
    <case>.attn_mask      additive float attention mask, broadcastable to (B, H, T, S)
    <case>.config         i64 list of constructor sizes (see each make_* below)
    <case>.eps            layer-norm epsilon (0-d f64)
    <case>.y              output
    <case>.r              the random upstream gradient: the loss is sum(y * r)
    <case>.dx             d loss / d x (and <case>.dattn_mask where the mask is a learned bias)
    <case>.grad.<name>    d loss / d parameter, for every parameter, under our name

PyTorch's fast paths (nn.MultiheadAttention and nn.TransformerEncoderLayer in eval mode call
fused kernels that may return nested tensors with zeros at padded positions) are avoided: every
module stays in train() mode with dropout = 0, which is the math path and deterministic, and
inputs require grad (which disables the fast path too).

Deterministic (a fixed seed per file), written atomically (temp file, then os.replace), small
(B = 2, T = 5, E = 8). Run from anywhere:
    /usr/bin/python3 tools/make_nn_fixtures.py
(needs PyTorch; made with 1.13).
"""

import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import F64, Fixture  # noqa: E402  (same text format and atomic writer)

B, T, E, H, FF = 2, 5, 8, 2, 16
PAD = 2  # the second sequence ends in PAD padding positions


def randomize_(module, scale=0.5):
    """Gives every parameter random values, so that e.g. LayerNorm's ones/zeros and
    MultiheadAttention's zero biases do not hide a wrong name or a missing term."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, dtype=F64) * scale)


def padding_mask():
    """(B, T) bool, True at padding: the last PAD positions of the second sequence."""
    m = torch.zeros(B, T, dtype=torch.bool)
    m[1, T - PAD:] = True
    return m


def run_case(fx, case, module, our_params, x, forward, extra_inputs=()):
    """Runs forward, backward of sum(y * r), and records everything of `case`.

    our_params: list of (our name, PyTorch parameter tensor, slice function or None); the slice
    function picks our tensor out of PyTorch's (for the packed in_proj of attention).
    extra_inputs: (field name, tensor) pairs that require grad and get a d<field> record.
    """
    module.train()  # with dropout 0: the math path (see the docstring)
    for name, p, pick in our_params:
        fx.add(f"{case}.param.{name}", pick(p) if pick else p)
    fx.add(f"{case}.x", x)
    if x.is_floating_point():
        x.requires_grad_(True)
    for field, t in extra_inputs:
        fx.add(f"{case}.{field}", t)
        t.requires_grad_(True)
    y = forward(x)
    r = torch.randn(y.shape, dtype=F64)
    (y * r).sum().backward()
    fx.add(f"{case}.y", y)
    fx.add(f"{case}.r", r)
    if x.is_floating_point():
        fx.add(f"{case}.dx", x.grad)
    for field, t in extra_inputs:
        fx.add(f"{case}.d{field}", t.grad)
    for name, p, pick in our_params:
        fx.add(f"{case}.grad.{name}", pick(p.grad) if pick else p.grad)


def plain(module, prefix=""):
    """Parameters whose names are already ours (under an optional prefix)."""
    return [(prefix + n, p, None) for n, p in module.named_parameters()]


def attention_params(mha, prefix=""):
    """nn.MultiheadAttention -> our query/key/value/out_proj. in_proj_weight (3E, E) packs the
    three projections in the order q, k, v (rows 0:E, E:2E, 2E:3E); in_proj_bias likewise."""
    out = []
    for k, name in enumerate(("query", "key", "value")):
        rows = slice(k * E, (k + 1) * E)
        out.append((f"{prefix}{name}.weight", mha.in_proj_weight, lambda t, rows=rows: t[rows]))
        out.append((f"{prefix}{name}.bias", mha.in_proj_bias, lambda t, rows=rows: t[rows]))
    out.append((f"{prefix}out_proj.weight", mha.out_proj.weight, None))
    out.append((f"{prefix}out_proj.bias", mha.out_proj.bias, None))
    return out


def make_linear():
    fx = Fixture("nn_linear.txt", "nn.Linear on 3-d input, with and without bias")
    # config: in_features, out_features, bias
    for case, bias in (("linear_bias", True), ("linear_nobias", False)):
        lin = nn.Linear(4, 6, bias=bias, dtype=F64)
        fx.add_ints(f"{case}.config", [4, 6, int(bias)])
        run_case(fx, case, lin, plain(lin), torch.randn(2, 3, 4, dtype=F64), lin)
    fx.write()


def make_layer_norm():
    fx = Fixture("nn_layer_norm.txt", "nn.LayerNorm over 1 and 2 trailing dims")
    # config: the normalized shape
    for case, shape, eps in (("layer_norm_1d", (8,), 1e-5), ("layer_norm_2d", (3, 4), 1e-12)):
        ln = nn.LayerNorm(shape, eps=eps, dtype=F64)
        randomize_(ln)
        fx.add_ints(f"{case}.config", shape)
        fx.add(f"{case}.eps", torch.tensor(eps, dtype=F64))
        x = torch.randn((2, 5) + shape, dtype=F64) * 2 + 0.5
        run_case(fx, case, ln, plain(ln), x, ln)
    fx.write()


def make_embedding():
    fx = Fixture("nn_embedding.txt", "nn.Embedding with repeated ids (the weight gradient sums them)")
    # config: num_embeddings, dim
    emb = nn.Embedding(7, 4, dtype=F64)
    fx.add_ints("embedding.config", [7, 4])
    ids = torch.tensor([[0, 3, 3, 6], [1, 3, 0, 5], [6, 6, 2, 3]], dtype=torch.int64)
    run_case(fx, "embedding", emb, plain(emb), ids, emb)
    fx.write()


def make_attention():
    fx = Fixture("nn_attention.txt", "nn.MultiheadAttention self-attention, masks, batch_first")
    # config: embed_dim, num_heads. Float masks use -1e9, not -inf: finite, and exp underflows
    # to exactly 0 in double, so PyTorch's math and ours both give exact zeros there.
    causal = torch.triu(torch.full((T, T), -1e9, dtype=F64), diagonal=1)  # (T, S)
    for case, use_pad, mask_kind in (("mha", False, None), ("mha_pad", True, None),
                                     ("mha_causal", False, "causal"), ("mha_causal_pad", True, "causal"),
                                     ("mha_bias_pad", True, "bias")):
        mha = nn.MultiheadAttention(E, H, dropout=0.0, bias=True, batch_first=True, dtype=F64)
        randomize_(mha)
        fx.add_ints(f"{case}.config", [E, H])
        pad = padding_mask() if use_pad else None
        if pad is not None:
            fx.add(f"{case}.mask", pad)
        extra = []
        attn_mask = None
        if mask_kind == "causal":
            attn_mask = causal
            fx.add(f"{case}.attn_mask", causal)
        elif mask_kind == "bias":
            # A learned additive bias per (batch, head) (as relative position biases are): ours
            # is (B, H, T, S), PyTorch's 3-d mask is (B * H, T, S) with batch outermost.
            attn_mask = torch.randn(B, H, T, T, dtype=F64)
            extra = [("attn_mask", attn_mask)]

        def forward(x, mha=mha, pad=pad, mask_kind=mask_kind, attn_mask=attn_mask):
            m = attn_mask.reshape(B * H, T, T) if mask_kind == "bias" else attn_mask
            y, _ = mha(x, x, x, key_padding_mask=pad, attn_mask=m, need_weights=False)
            return y

        run_case(fx, case, mha, attention_params(mha), torch.randn(B, T, E, dtype=F64), forward, extra)
    fx.write()


def make_feed_forward():
    fx = Fixture("nn_feed_forward.txt", "Linear-GELU(erf)-Linear as our FeedForward")
    # config: d_model, d_ff
    ffn = nn.Sequential()
    ffn.add_module("fc1", nn.Linear(E, FF, dtype=F64))
    ffn.add_module("act", nn.GELU(approximate="none"))
    ffn.add_module("fc2", nn.Linear(FF, E, dtype=F64))
    fx.add_ints("ffn.config", [E, FF])
    run_case(fx, "ffn", ffn, plain(ffn), torch.randn(B, T, E, dtype=F64), ffn)
    fx.write()


def make_transformer():
    fx = Fixture("nn_transformer.txt", "nn.TransformerEncoderLayer post-LN and pre-LN, padding mask")
    # config: d_model, num_heads, d_ff, pre_norm. eps: BERT's 1e-12, our TransformerLayerOptions
    # default.
    eps = 1e-12
    for case, norm_first in (("encoder_post_ln", False), ("encoder_pre_ln", True)):
        layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=FF, dropout=0.0, activation="gelu",
                                           layer_norm_eps=eps, batch_first=True, norm_first=norm_first,
                                           dtype=F64)
        randomize_(layer)
        fx.add_ints(f"{case}.config", [E, H, FF, int(norm_first)])
        fx.add(f"{case}.eps", torch.tensor(eps, dtype=F64))
        pad = padding_mask()
        fx.add(f"{case}.mask", pad)
        params = (attention_params(layer.self_attn, "self_attn.")
                  + plain(layer.linear1, "ffn.fc1.") + plain(layer.linear2, "ffn.fc2.")
                  + plain(layer.norm1, "norm1.") + plain(layer.norm2, "norm2."))
        assert len(params) == len(list(layer.parameters())) + 4  # in_proj weight/bias split in 3
        run_case(fx, case, layer, params, torch.randn(B, T, E, dtype=F64),
                 lambda x, layer=layer, pad=pad: layer(x, src_key_padding_mask=pad))
    fx.write()


def main():
    torch.set_num_threads(1)  # summation order, and so the last bits, independent of the machine
    for make in (make_linear, make_layer_norm, make_embedding, make_attention, make_feed_forward,
                 make_transformer):
        make()


if __name__ == "__main__":
    main()
