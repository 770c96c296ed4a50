"""Makes tests/fixtures/ctc.txt, PyTorch's torch.nn.functional.ctc_loss on small cases, for
tests/losses/ctc_test.cpp (losses/ctc_loss.h).

Each case: random f64 logits (T, B, C) -> log_softmax -> F.ctc_loss(blank=0) with the case's
reduction and zero_infinity; records the logits, the padded targets (B, S) with -1 after each
row's length, input lengths, the loss, the per-row losses (reduction "none") and the gradient
w.r.t. the logits (through the log_softmax, where PyTorch's and ours agree; see ctc_loss.cpp).
A row loss of -1 stands for an infinite one (the text format holds finite numbers only).
<case>.opts (i64): [reduction (0 mean, 1 sum), zero_infinity (0/1)].

Cases: repeated labels (a blank is required between them), an empty target, input lengths
shorter than T, a single frame, and a target longer than its frames allow (infinite loss,
zeroed by zero_infinity).

Run from anywhere (needs PyTorch; made with 1.13):
    /usr/bin/python3 tools/make_ctc_fixture.py
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import F64, Fixture  # noqa: E402  (same text format and atomic write)

CASES = [
    # name, T, C, input lengths, targets, reduction, zero_infinity
    ("basic", 12, 5, [12, 9, 7], [[1, 2, 3], [2, 2, 4, 1], [3]], "mean", False),
    ("repeats_sum", 10, 4, [10, 10], [[1, 1, 1], [3, 2, 3, 2]], "sum", False),
    ("empty_and_short", 8, 6, [8, 1, 5], [[], [5], [4, 4]], "mean", False),
    ("infeasible_zeroed", 6, 5, [6, 3], [[1, 2], [1, 1, 2]], "mean", True),
]


def main():
    torch.manual_seed(11)
    fx = Fixture("ctc.txt", "F.ctc_loss: mean/sum, repeats, empty target, infeasible with zero_infinity")
    for name, T, C, in_lens, targets, reduction, zero_inf in CASES:
        B = len(in_lens)
        logits = torch.randn(T, B, C, dtype=F64) * 1.5
        S = max(1, max(len(t) for t in targets))
        padded = torch.full((B, S), -1, dtype=torch.int64)
        for b, t in enumerate(targets):
            padded[b, :len(t)] = torch.tensor(t, dtype=torch.int64)
        flat = torch.tensor([k for t in targets for k in t], dtype=torch.int64)
        in_l = torch.tensor(in_lens, dtype=torch.int64)
        tg_l = torch.tensor([len(t) for t in targets], dtype=torch.int64)
        x = logits.clone().requires_grad_(True)
        lp = F.log_softmax(x, dim=-1)
        loss = F.ctc_loss(lp, flat, in_l, tg_l, blank=0, reduction=reduction, zero_infinity=zero_inf)
        loss.backward()
        rows = F.ctc_loss(lp.detach(), flat, in_l, tg_l, blank=0, reduction="none", zero_infinity=False)
        rows = torch.where(torch.isinf(rows), torch.full_like(rows, -1.0), rows)  # the format has no inf
        fx.add_ints(f"{name}.opts", [0 if reduction == "mean" else 1, int(zero_inf)])
        fx.add(f"{name}.logits", logits)
        fx.add(f"{name}.targets", padded)
        fx.add(f"{name}.input_lengths", in_l)
        fx.add(f"{name}.loss", loss.detach())
        fx.add(f"{name}.row_losses", rows)
        fx.add(f"{name}.grad", x.grad)
    fx.write()


if __name__ == "__main__":
    main()
