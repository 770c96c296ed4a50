"""Makes tests/fixtures/loss_contrastive.txt, PyTorch's values of the contrastive losses of losses/
(InfoNCE / CLIP / LiT and CWCL) for tests/losses/contrastive_fixture_test.cpp.

Each case holds f32 inputs (p, q, the log scale t), the options, and the loss, its gradients
w.r.t. p, q and t, and the batch metrics, all computed here in float64 from those f32 inputs with
plain torch ops (the "PyTorch composition" of the loss: dense N x N logits and weights), so the
C++ f32 results are compared with values more exact than either side's f32 arithmetic.
Definitions follow losses/contrastive_loss.h and losses/contrastive_config.h:
  p, q L2-normalised (F.normalize) unless normalize = 0; scale = min(exp(t), max_logit_scale);
  S = scale p q^T; CWCL weights from q.detach(): linear c/2 + 1/2 or exp((c - 1)/kt), masked by
  the symmetrised top-k graph or by c >= threshold (the pair always kept); rows use W / rowsum,
  columns W / colsum (weighted), I (infonce) or nothing (none); Sum or Mean of the directions.

Option codes in <case>.opts (i64): [loss (0 infonce, 1 cwcl), kernel (0 linear, 1 exp),
mask (0 none, 1 topk, 2 threshold), reverse (0 weighted, 1 infonce, 2 none),
reduction (0 sum, 1 mean), normalize (0/1), top_k]; <case>.fopts (f64): [kernel_temperature,
threshold, max_logit_scale]. <case>.metrics (f64): [loss_rows, acc_rows, acc_cols, pos_sim,
neg_sim]; <case>.loss_cols only when the reverse direction exists.

Run from anywhere (needs PyTorch; made with 1.13):
    /usr/bin/python3 tools/make_loss_fixture.py
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import Fixture  # noqa: E402  (same text format and atomic write)

F32, F64 = torch.float32, torch.float64
LOSS = {"infonce": 0, "cwcl": 1}
KERNEL = {"linear": 0, "exp": 1}
MASK = {"none": 0, "topk": 1, "threshold": 2}
REVERSE = {"weighted": 0, "infonce": 1, "none": 2}
REDUCTION = {"sum": 0, "mean": 1}


def weights(q, o):
    """Dense CWCL weights (N, N) from the frozen embeddings q (float64, no grad)."""
    e = F.normalize(q, dim=1, eps=1e-12)
    c = e @ e.T
    w = c / 2 + 0.5 if o["kernel"] == "linear" else torch.exp((c - 1) / o["kernel_temperature"])
    n = c.shape[0]
    keep = torch.ones_like(c, dtype=torch.bool)
    if o["mask"] == "threshold":
        keep = c >= o["threshold"]
    elif o["mask"] == "topk":
        k = min(o["top_k"], n)
        top = torch.topk(c, k, dim=1).indices
        keep = torch.zeros_like(keep)
        keep[torch.arange(n)[:, None], top] = True
        keep = keep | keep.T
    keep = keep | torch.eye(n, dtype=torch.bool)
    return torch.where(keep, w, torch.zeros_like(w))


def loss_and_metrics(p, q, t, o):
    """The loss composed from torch ops, and the metrics, all in float64."""
    n = p.shape[0]
    if o["normalize"]:
        p, q = F.normalize(p, dim=1, eps=1e-12), F.normalize(q, dim=1, eps=1e-12)
    scale = torch.exp(t).clamp(max=o["max_logit_scale"])
    s = scale * (p @ q.T)
    eye = torch.eye(n, dtype=F64)
    t_rows = t_cols = eye
    if o["loss"] == "cwcl":
        w = weights(q.detach(), o)
        t_rows = w / w.sum(1, keepdim=True)
        if o["reverse"] == "weighted":
            t_cols = w / w.sum(0, keepdim=True)
    l_rows = -(t_rows * s.log_softmax(1)).sum() / n
    a = 0.5 if o["reverse"] != "none" and o["reduction"] == "mean" else 1.0
    loss, l_cols = a * l_rows, None
    if o["reverse"] != "none":
        l_cols = -(t_cols * s.log_softmax(0)).sum() / n
        loss = loss + a * l_cols
    with torch.no_grad():
        cos = p @ q.T
        idx = torch.arange(n)
        pos = cos.diagonal().mean()
        neg = (cos.sum() - cos.diagonal().sum()) / (n * (n - 1)) if n > 1 else torch.tensor(0.0, dtype=F64)
        metrics = [l_rows.item(), (s.argmax(1) == idx).double().mean().item(),
                   (s.argmax(0) == idx).double().mean().item(), pos.item(), neg.item()]
    return loss, l_cols, metrics


def case(fx, name, n, d, t, spread=1.0, **opts):
    o = dict(loss="cwcl", kernel="linear", mask="none", reverse="weighted", reduction="mean", normalize=1,
             top_k=8, kernel_temperature=0.1, threshold=0.5, max_logit_scale=100.0)
    o.update(opts)
    # Pairs correlated as in training (q_i near p_i), so accuracies and similarities are not trivial.
    p32 = (torch.randn(n, d) * spread).to(F32)
    q32 = (p32.double() + 0.8 * spread * torch.randn(n, d, dtype=F64)).to(F32)
    t32 = torch.tensor(t, dtype=F32)
    p, q, tt = (x.double().requires_grad_() for x in (p32, q32, t32))
    loss, l_cols, metrics = loss_and_metrics(p, q, tt, o)
    loss.backward()
    fx.add(name + ".p", p32)
    fx.add(name + ".q", q32)
    fx.add(name + ".t", t32)
    fx.add_ints(name + ".opts", [LOSS[o["loss"]], KERNEL[o["kernel"]], MASK[o["mask"]], REVERSE[o["reverse"]],
                                 REDUCTION[o["reduction"]], o["normalize"], o["top_k"]])
    fx.add(name + ".fopts", torch.tensor([o["kernel_temperature"], o["threshold"], o["max_logit_scale"]], dtype=F64))
    fx.add(name + ".loss", loss.detach())
    if l_cols is not None:
        fx.add(name + ".loss_cols", l_cols.detach())
    fx.add(name + ".metrics", torch.tensor(metrics, dtype=F64))
    fx.add(name + ".dp", p.grad)
    fx.add(name + ".dq", q.grad)
    fx.add(name + ".dt", tt.grad)


def main():
    torch.set_num_threads(1)
    fx = Fixture("loss_contrastive.txt", "InfoNCE and CWCL losses, gradients and metrics")
    clip_t = math.log(1 / 0.07)
    case(fx, "clip", 8, 16, clip_t, loss="infonce")
    case(fx, "lit_rows_only", 8, 16, clip_t, loss="infonce", reverse="none")
    case(fx, "clip_sum", 9, 5, 1.0, loss="infonce", reduction="sum")
    case(fx, "cwcl", 12, 16, clip_t)
    case(fx, "cwcl_exp_rev_infonce_sum", 12, 16, clip_t, kernel="exp", kernel_temperature=0.2, reverse="infonce",
         reduction="sum")
    case(fx, "cwcl_topk", 20, 8, clip_t, mask="topk", top_k=3)
    case(fx, "cwcl_threshold_rows_only", 20, 8, clip_t, mask="threshold", threshold=0.2, reverse="none")
    case(fx, "cwcl_exp_topk_sum", 33, 6, 2.0, kernel="exp", kernel_temperature=0.5, mask="topk", top_k=5,
         reduction="sum")
    case(fx, "cwcl_unnormalized", 10, 8, 0.5, spread=0.3, normalize=0)
    case(fx, "cwcl_clamped", 40, 16, math.log(100.0) + 0.3)
    case(fx, "single_pair", 1, 4, clip_t)
    fx.write()


if __name__ == "__main__":
    main()
