#!/usr/bin/python3
"""Summary of a tools/bench_towers.sh log: per row and side, the best iteration over all rounds
(the least disturbed by a shared machine), the median of the rounds' medians, the peak RSS, and
PyTorch's time over ours per round (sides alternated within a round, so a round's ratio compares
like with like). Usage: tools/bench_towers_summary.py LOG"""
import re
import statistics
import sys
from collections import defaultdict

med, best, rss = defaultdict(list), defaultdict(list), {}
for line in open(sys.argv[1]):
    m = re.match(r"\[(\w+) (\w+) r(\d+)\] (.*)", line)
    if not m:
        continue
    row, side, rnd, text = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    # Steps: "median X ms ... (all step: a b c ms)"; MiniLM: "median X ms/batch".
    t = re.search(r"median +([\d.]+) ms", text)
    if t:
        med[row, side].append((rnd, float(t.group(1))))
        alls = re.search(r"\(all(?: step)?: ([\d. ]+) ms\)", text)
        best[row, side].extend(float(x) for x in alls.group(1).split()) if alls else best[row, side].append(float(t.group(1)))
    r = re.search(r"peak RSS (\d+) MiB", text)
    if r:
        rss[row, side] = int(r.group(1))

rows = sorted({k[0] for k in med}, key=["conformer", "vit", "whisper", "minilm"].index)
print("| row | side | best ms | median of round medians ms | peak RSS MiB | torch / ours per round | median ratio |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for row in rows:
    ours = dict(med[row, "ours"])
    for side in ("ours", "torch2", "torch113"):
        if (row, side) not in med:
            continue
        ratios = [v / ours[r] for r, v in med[row, side] if r in ours] if side != "ours" else []
        print(f"| {row} | {side} | {min(best[row, side]):.1f} | {statistics.median(v for _, v in med[row, side]):.1f} | "
              f"{rss.get((row, side), '')} | {' '.join(f'{x:.2f}' for x in ratios)} | "
              f"{statistics.median(ratios):.2f} |" if ratios else
              f"| {row} | {side} | {min(best[row, side]):.1f} | {statistics.median(v for _, v in med[row, side]):.1f} | "
              f"{rss.get((row, side), '')} | | |")
