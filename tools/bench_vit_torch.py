"""ViT small28 speed and peak memory in PyTorch, the counterpart of bench/vit_bench.cpp.

The same tower as models/vit.h's ViTConfig::small28(): torchvision 0.14's VisionTransformer(
image_size=28, patch_size=4, num_layers=6, num_heads=3, hidden_dim=192, mlp_dim=768,
num_classes=384) with its conv_proj replaced by a one-channel Conv2d(1, 192, 4, stride 4)
(torchvision's is fixed at 3 input channels), so the parameter count (2,756,736) and the FLOPs
are ours.

Phases, timing and memory as in the C++ binary: eval (model.eval(), torch.no_grad()), fwd
(training mode, graph recorded, dropped outside the timer), step (zero_grad, forward,
loss = mean(embedding^2), backward, torch.optim.AdamW step with weight decay 0.01 on >= 2-d
non-bias parameters); median of --iters after --warmup; peak RSS = VmHWM after resetting it
through /proc/self/clear_refs just before the phase.
    /usr/bin/python3 tools/bench_vit_torch.py --phase step --threads 2
(needs Debian's python3-torch and python3-torchvision).
"""
import argparse
import os
import time

import torch
import torch.nn as nn
import torchvision
from torchvision.models import VisionTransformer

IMAGE, PATCH, CHANNELS, LAYERS, HEADS, DIM, MLP, EMBED = 28, 4, 1, 6, 3, 192, 768, 384


# The timing and RSS helpers are tools/bench_conformer_torch.py's, copied rather than imported:
# importing that file loads torchaudio, whose libraries would count in this process's RSS.
def proc_status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return -1.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def param_groups(model, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if n.endswith("bias") or p.dim() <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def run_phase(name, a, parts, body):
    reset = reset_peak_rss()
    rss0 = proc_status_mib("VmRSS")
    for _ in range(a.warmup):
        body()
    t = [[] for _ in parts]
    for _ in range(a.iters):
        s = body()
        for k in range(len(parts)):
            t[k].append(s[k])
    peak = proc_status_mib("VmHWM")
    med = [sorted(x)[len(x) // 2] for x in t]
    extra = "".join(f"  {parts[k]} {med[k] * 1e3:.1f} ms" for k in range(1, len(parts)))
    alls = " ".join(f"{s * 1e3:.0f}" for s in t[0])
    print(f"torch {name:<5} median {med[0] * 1e3:8.1f} ms{extra}  (all {parts[0]}: {alls} ms)")
    how = "VmHWM reset before the phase" if reset else "clear_refs failed: process peak"
    print(f"torch {name:<5} peak RSS {peak:.0f} MiB ({how}), RSS at phase start {rss0:.0f} MiB, "
          f"growth {peak - rss0:.0f} MiB", flush=True)


def small28(dropout):
    model = VisionTransformer(image_size=IMAGE, patch_size=PATCH, num_layers=LAYERS, num_heads=HEADS,
                              hidden_dim=DIM, mlp_dim=MLP, dropout=dropout, attention_dropout=dropout,
                              num_classes=EMBED)
    model.conv_proj = nn.Conv2d(CHANNELS, DIM, kernel_size=PATCH, stride=PATCH)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["eval", "fwd", "step", "all"], default="all")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.0)
    # OpenMP's default (what ours uses): OMP_NUM_THREADS, else the number of cores.
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = small28(a.dropout)
    images = torch.randn(a.batch, CHANNELS, IMAGE, IMAGE)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} ViT small28: {n_params} parameters; "
          f"batch {a.batch} x {CHANNELS} x {IMAGE} x {IMAGE}, dropout {a.dropout:.2f}, f32, "
          f"{torch.get_num_threads()} threads (torch.set_num_threads), {a.warmup} warm-up + {a.iters} timed "
          f"iterations", flush=True)

    if a.phase in ("eval", "all"):
        model.eval()

        def body():
            with torch.no_grad():
                t0 = time.perf_counter()
                model(images)
                return [time.perf_counter() - t0]
        run_phase("eval", a, ["forward"], body)
    if a.phase in ("fwd", "all"):
        model.train()

        def body():
            t0 = time.perf_counter()
            e = model(images)
            s = time.perf_counter() - t0
            del e  # the graph goes here, outside the timer
            return [s]
        run_phase("fwd", a, ["forward"], body)
    if a.phase in ("step", "all"):
        model.train()
        opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)

        def body():
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)  # as ours: gradients dropped, not zeroed
            loss = model(images).pow(2).mean()
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            return [t3 - t0, t1 - t0, t2 - t1, t3 - t2]
        run_phase("step", a, ["step", "forward", "backward", "adamw"], body)


if __name__ == "__main__":
    main()
