#!/usr/bin/env python3
"""Summarizes finished `train` runs as a Markdown table: mean +- std over seeds of each group.

A run is a folder holding eval_final.json (written by `train` at the end). Runs group by folder
name with a trailing `_s<seed>` or `_seed<seed>` removed, so runs/mini_cwcl_s1 .. _s3 form the
group mini_cwcl. Speech-text and image-text runs (their JSON has "zero_shot") have their own
columns; give one kind per call.
Standard library only (scipy, when importable, adds p-values to --compare).
Usage: python3 tools/summarize_runs.py runs/mini_*  [--json out.json] [--compare GROUP_A GROUP_B]
--compare prints, per metric, mean(A) - mean(B) and Welch's t over the seeds (two-sided p).
Below the groups, a "chance" row (a uniform guess: 1 / classes, 1 / retrieval pairs) and, for
speech-text runs, a "text-only bound" row (the frozen text tower on each test transcript), taken
from eval_final.json: a number reads only beside what learning nothing, and the best the text
side allows, would score.
"""
import argparse
import json
import math
import os
import re
import sys

METRICS = [
    ("intent acc", lambda r: r["intent"]["ensemble_accuracy"]),
    ("intent tmpl mean", lambda r: r["intent"]["template_mean"]),
    ("intent tmpl std", lambda r: r["intent"]["template_std"]),
    ("kws acc", lambda r: r["keywords"]["ensemble_accuracy"]),
    ("kws synth", lambda r: r["keywords_synthetic"]["ensemble_accuracy"]),
    ("kws human", lambda r: r["keywords_human"]["ensemble_accuracy"]),
    ("kws tmpl std", lambda r: r["keywords"]["template_std"]),
    ("R@1 s->t", lambda r: r["retrieval"]["speech_to_text"]["R@1"]),
    ("R@5 s->t", lambda r: r["retrieval"]["speech_to_text"]["R@5"]),
    ("R@10 s->t", lambda r: r["retrieval"]["speech_to_text"]["R@10"]),
    ("R@1 t->s", lambda r: r["retrieval"]["text_to_speech"]["R@1"]),
    ("R@5 t->s", lambda r: r["retrieval"]["text_to_speech"]["R@5"]),
    ("R@10 t->s", lambda r: r["retrieval"]["text_to_speech"]["R@10"]),
    ("struct corr", lambda r: r["structure_correlation"]),
]

# Image-text runs (train --task image_text): zero-shot over the class prompts, retrieval, structure.
IMAGE_TEXT_METRICS = [
    ("zero-shot acc", lambda r: r["zero_shot"]["ensemble_accuracy"]),
    ("tmpl mean", lambda r: r["zero_shot"]["template_mean"]),
    ("tmpl std", lambda r: r["zero_shot"]["template_std"]),
    ("tmpl min", lambda r: r["zero_shot"]["template_min"]),
    ("tmpl max", lambda r: r["zero_shot"]["template_max"]),
    ("R@1 t->i", lambda r: r["retrieval"]["text_to_image"]["R@1"]),
    ("R@1 i->t", lambda r: r["retrieval"]["image_to_text"]["R@1"]),
    ("struct corr", lambda r: r["structure_correlation"]),
]


# The reference numbers of a run for the columns where they are defined (None: not defined).
def speech_references(r):
    verdict = r.get("verdict", {})
    chance = verdict.get("chance") or r.get("chance") or {}
    bound = verdict.get("text_only_upper_bound")
    rows = {}
    if chance:
        rows["chance"] = {
            "intent acc": chance.get("intent"),
            "intent tmpl mean": chance.get("intent"),
            "kws acc": chance.get("keywords"),
            "kws synth": chance.get("keywords"),
            "kws human": chance.get("keywords"),
            "R@1 s->t": chance.get("retrieval_r1"),
            "R@1 t->s": chance.get("retrieval_r1"),
        }
    if bound:
        rows["text-only bound"] = {label: safe(get, bound) for label, get in METRICS if label != "struct corr"}
    return rows


def image_references(r):
    chance = r.get("chance")
    if not chance:
        return {}
    return {"chance": {"zero-shot acc": chance.get("zero_shot"), "tmpl mean": chance.get("zero_shot"),
                       "R@1 t->i": chance.get("retrieval_r1"), "R@1 i->t": chance.get("retrieval_r1")}}


def safe(get, r):
    try:
        return get(r)
    except (KeyError, TypeError):
        return None


def mean_std(xs):
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders")
    ap.add_argument("--json", help="also write the per-group numbers here")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="Welch's t-test of group A against B")
    args = ap.parse_args()
    groups = {}
    for run in sorted(args.runs):
        f = os.path.join(run, "eval_final.json")
        if not os.path.isfile(f):
            print(f"skipping {run}: no eval_final.json (unfinished run?)", file=sys.stderr)
            continue
        with open(f) as fh:
            r = json.load(fh)
        name = re.sub(r"_(s|seed)\d+$", "", os.path.basename(os.path.normpath(run)))
        groups.setdefault(name, []).append(r)
    if not groups:
        sys.exit("no finished runs")
    kinds = {"zero_shot" in r for rs in groups.values() for r in rs}
    if len(kinds) > 1:
        sys.exit("mixed speech-text and image-text runs: summarize them separately")
    global METRICS
    if kinds == {True}:
        METRICS = IMAGE_TEXT_METRICS
    cols = ["group", "seeds", "steps"] + [m for m, _ in METRICS]
    print("| " + " | ".join(cols) + " |")
    print("|" + " --- |" * len(cols))
    out = {}
    for name, rs in groups.items():
        cells = [name, str(len(rs)), ",".join(sorted({str(r.get("step", "?")) for r in rs}))]
        out[name] = {}
        for label, get in METRICS:
            xs = [get(r) for r in rs]
            m, s = mean_std(xs)
            out[name][label] = {"mean": m, "std": s, "values": xs}
            scale = 1 if label == "struct corr" else 100
            cells.append(f"{m * scale:.2f} ± {s * scale:.2f}" if len(xs) > 1 else f"{m * scale:.2f}")
        print("| " + " | ".join(cells) + " |")
    references = image_references if kinds == {True} else speech_references
    for name, rs in groups.items():
        for row, values in references(rs[0]).items():
            # One row per reference when every group has the same (one corpus), else per group.
            same = all(references(r).get(row) == values for g in groups.values() for r in g)
            if not same or name == next(iter(groups)):
                cells = [row if same else f"{row} ({name})", "", ""]
                for label, _ in METRICS:
                    v = values.get(label)
                    scale = 1 if label == "struct corr" else 100
                    cells.append("" if v is None else f"{v * scale:.2f}")
                print("| " + " | ".join(cells) + " |")
            out[name][row] = values
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    if args.compare:
        compare(out, *args.compare)


def compare(out, a, b):
    """Welch's t of a - b per metric; p from scipy's t distribution when available."""
    for g in (a, b):
        if g not in out:
            sys.exit(f"--compare: no group {g} (groups: {', '.join(out)})")
    try:
        from scipy import stats
    except ImportError:
        stats = None
    print(f"\n| metric | {a} - {b} | Welch t | df | p (two-sided) |")
    print("| --- | --- | --- | --- | --- |")
    for label, _ in METRICS:
        xa, xb = out[a][label]["values"], out[b][label]["values"]
        ma, sa = mean_std(xa)
        mb, sb = mean_std(xb)
        scale = 1 if label == "struct corr" else 100
        va, vb = sa * sa / len(xa), sb * sb / len(xb)
        if len(xa) < 2 or len(xb) < 2 or va + vb < 1e-14:  # no spread in either group: no test
            print(f"| {label} | {(ma - mb) * scale:.2f} | n/a | | |")
            continue
        t = (ma - mb) / math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va * va / (len(xa) - 1) + vb * vb / (len(xb) - 1))
        p = f"{2 * stats.t.sf(abs(t), df):.3f}" if stats else "(no scipy)"
        print(f"| {label} | {(ma - mb) * scale:.2f} | {t:.2f} | {df:.1f} | {p} |")


if __name__ == "__main__":
    main()
