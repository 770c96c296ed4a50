"""PyTorch counterpart of train_step_check.cpp's throughput parts. The Conformer step: the same small Conformer tower
(tools/bench_conformer_torch.py's Tower: torchaudio Conformer blocks), CWCL-shaped work replaced
by CLIP's cross-entropy on the 384-d embeddings (the loss is a few microseconds of the step),
global-norm clip and AdamW, on CUDA, f32 (TF32 off unless --tf32 1), same batch and lengths.
Model FLOPs are counted once, outside the timed steps, by tools/torch_flops.py (the convention of
core/flop_counter.h), and MFU is their rate over --peak-tflops (default: H200 dense, 67 f32 / 495 TF32).
The MiniLM forward: Hugging Face's BertModel with all-MiniLM-L6-v2's config and random weights
when transformers is importable (else torch.nn.TransformerEncoder with the same shapes, post-LN,
GELU; the output says which), eval, no grad, --batch x --tokens.
    python3 tools/gpu_check/torch_conformer_step.py --batch 256 --frames 400 --tokens 32 --iters 10
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_conformer_torch import Tower, param_groups  # noqa: E402
from torch_flops import FlopCount  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--tf32", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cpu: a rehearsal on a machine without a GPU")
    ap.add_argument("--peak-tflops", type=float, default=0, help="0: H200 dense peak for the precision")
    a = ap.parse_args()
    if a.peak_tflops <= 0:
        a.peak_tflops = 495.0 if a.tf32 else 67.0
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

    def forward_backward(feats, q):
        p = F.normalize(model(feats, lengths), dim=-1)
        logits = scale.exp().clamp(max=100) * p @ q.t()
        target = torch.arange(B, device=dev)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        loss.backward()
        return loss
    with FlopCount() as fc:  # one untimed pass; its gradients are cleared by the first step
        forward_backward(torch.randn(B, T, 80, device=dev), F.normalize(torch.randn(B, 384, device=dev), dim=-1))
    step_flops = fc.total
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + a.iters):
        feats = torch.randn(B, T, 80, device=dev)
        q = F.normalize(torch.randn(B, 384, device=dev), dim=-1)
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = forward_backward(feats, q)
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + [scale], 1.0)
        opt.step()
        loss.item()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1e3
    print(f"torch {torch.__version__} small Conformer step (fwd + bwd + clip + AdamW), batch {B} x {T} frames, "
          f"f32{' (TF32)' if a.tf32 else ''}: median {ms:.1f} ms, {B / ms * 1e3:.0f} utt/s, "
          f"peak allocated {torch.cuda.max_memory_allocated() / 2**20 if cuda else 0:.0f} MiB", flush=True)
    tflops = step_flops / (ms * 1e-3) / 1e12
    print(f"torch small Conformer step: {step_flops / 1e9:.1f} GFLOP per step (model FLOPs), {tflops:.2f} TFLOP/s, "
          f"MFU {100 * tflops / a.peak_tflops:.1f}% of {a.peak_tflops:.0f} TFLOP/s", flush=True)
    minilm(a, dev, sync)


def minilm(a, dev, sync):
    H, F, L, HEADS, VOCAB = 384, 1536, 6, 12, 30522
    B, T = a.batch, a.tokens
    torch.manual_seed(0)
    try:
        from transformers import BertConfig, BertModel
        model = BertModel(BertConfig(vocab_size=VOCAB, hidden_size=H, num_hidden_layers=L, num_attention_heads=HEADS,
                                     intermediate_size=F), add_pooling_layer=False)
        what = "transformers BertModel"
        run = lambda ids: model(input_ids=ids).last_hidden_state  # noqa: E731
    except ImportError:
        emb = torch.nn.Embedding(VOCAB, H)
        pos = torch.nn.Embedding(512, H)
        norm = torch.nn.LayerNorm(H, eps=1e-12)
        enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(H, HEADS, F, activation="gelu",
                                                                           batch_first=True), L)
        model = torch.nn.ModuleList([emb, pos, norm, enc])
        what = "torch.nn.TransformerEncoder (no transformers)"
        run = lambda ids: enc(norm(emb(ids) + pos(torch.arange(T, device=ids.device))))  # noqa: E731
    model.to(dev).eval()
    ids = torch.randint(0, VOCAB - 1, (B, T), device=dev)
    times = []
    with torch.no_grad():
        for i in range(3 + a.iters):
            sync()
            t0 = time.perf_counter()
            run(ids)
            sync()
            if i >= 3:
                times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1e3
    with torch.no_grad(), FlopCount() as fc:
        run(ids)
    counted = fc.total
    # The rate uses the analytic count, which core/flop_counter.h's count equals for our tower
    # (tests/models/text_transformer_test.cpp): PyTorch's fused eval fast paths
    # (TransformerEncoder's) are one op the dispatch-level counter cannot see into.
    flops = (8.0 * H * H + 4 * H * F + 4 * T * H) * L * B * T  # 2 FLOPs per multiply-add
    tflops = flops / (ms * 1e-3) / 1e12
    print(f"torch MiniLM-L6 shapes forward (no grad, {what}), batch {B} x {T} tokens, "
          f"f32{' (TF32)' if a.tf32 else ''}: median {ms:.2f} ms, {B / ms * 1e3:.0f} sentences/s, "
          f"{tflops:.1f} TFLOP/s, MFU {100 * tflops / a.peak_tflops:.1f}% of {a.peak_tflops:.0f} "
          f"({flops / 1e9:.4g} GFLOP per batch analytic, {counted / 1e9:.4g} counted)", flush=True)


if __name__ == "__main__":
    main()
