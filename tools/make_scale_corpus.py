#!/usr/bin/python3
# Generates a cheap synthetic speech-text corpus of any size, for the data-at-scale checks of the
# feature shards and the loader (issue 23 item 2): tones, noise and silence with a transcript that
# names them, in this project's corpus layout (data/README.md), so `train --data.corpus DIR` runs
# on it. Not speech: it exists to make many hours of audio in seconds, not to train a good model.
#
#   tools/make_scale_corpus.py --hours H [--out DIR] [--seed 0] [--jobs N]
#   # default DIR: .cache/speech/scale-<H>h of the checkout (git-ignored)
#
# Train clips are 1-15 s long (uniform), H hours in all; valid and the three test splits are small
# and fixed, so a run's evaluation costs the same whatever H is. Deterministic from the seed (each
# clip from its own generator); existing complete clips are kept, so an interrupted build resumes;
# each file is written to <name>.part and renamed; corpus.json is removed first and written last.
import argparse
import concurrent.futures
import json
import os
import shutil
import sys
import time
import wave

try:
    import numpy as np
except ImportError:  # the Debian python3-numpy package (tools/setup.sh)
    print("make_scale_corpus: needs numpy (apt-get install python3-numpy)", file=sys.stderr)
    sys.exit(2)

VERSION = 1
RATE = 16000
HEADER = "id\taudio\ttranscript\tvoice\tduration\tsplit\tlabel"
VOICE = "synthetic:tones"
MIN_SECONDS, MAX_SECONDS = 1.0, 15.0
# Small held-out splits: rows per split, or clips per class for the labelled ones.
VALID, RETRIEVAL, PER_INTENT, PER_KEYWORD = 50, 50, 3, 3

# What a segment of a clip is, by name: the transcript is the list of its segments' names.
PITCHES = [("low", 110.0, 330.0), ("middle", 330.0, 990.0), ("high", 990.0, 3000.0)]
# Intents and keywords: a clip made mostly of one kind of segment, for the zero-shot benchmarks.
INTENTS = [("low_tone", "tones", "low tone", "a low pitched tone"),
           ("high_tone", "tones", "high tone", "a high pitched tone"),
           ("white_noise", "noise", "white noise", "a burst of white noise"),
           ("silence", "quiet", "silence", "nothing but silence")]
KEYWORDS = [("low", "low"), ("middle", "middle"), ("high", "high"), ("noise", "noise")]


def segment(rng, kind, n):
    """n samples of one segment kind ("low" / "middle" / "high" tone, "noise", "silence")."""
    if kind == "silence":
        return rng.normal(0.0, 1e-3, n)
    if kind == "noise":
        return rng.normal(0.0, rng.uniform(0.05, 0.3), n)
    lo, hi = next((lo, hi) for name, lo, hi in PITCHES if name == kind)
    f0 = rng.uniform(lo, hi)
    t = np.arange(n) / RATE
    # A fundamental and two harmonics, with a 10 ms fade in and out (no clicks).
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.283))
            for k in (1, 2, 3))
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * RATE))
    return 0.3 * x * ramp + rng.normal(0.0, 0.01, n)


def clip(seed, split, index, seconds, kinds):
    """Samples (int16) and transcript of one clip: `kinds` segments of random lengths."""
    rng = np.random.default_rng([seed, hash_split(split), index])
    n = int(round(seconds * RATE))
    cuts = np.sort(rng.integers(1, n, len(kinds) - 1)) if len(kinds) > 1 else np.array([], dtype=np.int64)
    bounds = [0, *cuts.tolist(), n]
    x = np.concatenate([segment(rng, k, bounds[i + 1] - bounds[i]) for i, k in enumerate(kinds)])
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    words = [k if k in ("noise", "silence") else k + " tone" for k in kinds]
    return pcm, " then ".join(words)


def hash_split(split):
    return sum((i + 1) * ord(c) for i, c in enumerate(split))  # stable across runs (not hash())


def write_wav(path, pcm):
    """PCM16 mono WAV, via <path>.part and a rename; kept when a complete file is there."""
    size = 44 + 2 * len(pcm)
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    part = path + ".part"
    with wave.open(part, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    os.replace(part, path)


def plan(args):
    """Every clip as (split, index, id, seconds, kinds, label), in id order per split."""
    rng = np.random.default_rng([args.seed, 0])
    kinds_all = [p[0] for p in PITCHES] + ["noise", "silence"]
    rows = {s: [] for s in ("train", "valid", "retrieval_test", "intent_test", "kws_test")}

    def random_kinds(g):
        return [kinds_all[i] for i in g.integers(0, len(kinds_all), g.integers(1, 5))]

    total, target = 0.0, args.hours * 3600.0
    while total < target:
        seconds = round(float(rng.uniform(MIN_SECONDS, MAX_SECONDS)), 3)
        rows["train"].append((seconds, random_kinds(rng), ""))
        total += seconds
    held_out = np.random.default_rng([args.seed, 1])  # its own stream: the same splits for any H
    for split, count in (("valid", VALID), ("retrieval_test", RETRIEVAL)):
        for _ in range(count):
            seconds = round(float(held_out.uniform(MIN_SECONDS, MAX_SECONDS)), 3)
            rows[split].append((seconds, random_kinds(held_out), ""))
    intent_kinds = {"low_tone": "low", "high_tone": "high", "white_noise": "noise", "silence": "silence"}
    for label, *_ in INTENTS:
        for _ in range(PER_INTENT):
            seconds = round(float(held_out.uniform(1.0, 4.0)), 3)
            rows["intent_test"].append((seconds, [intent_kinds[label]], label))
    for label, _ in KEYWORDS:
        for _ in range(PER_KEYWORD):
            rows["kws_test"].append((1.0, [label], label))
    out = []
    for split, items in rows.items():
        for i, (seconds, kinds, label) in enumerate(items):
            out.append((split, i, f"{split}-{i:07d}", seconds, kinds, label))
    return out


def make_one(args, item):
    split, index, uid, seconds, kinds, label = item
    pcm, transcript = clip(args.seed, split, index, seconds, kinds)
    rel = f"audio/{split}/{uid}.wav"
    write_wav(os.path.join(args.out, rel), pcm)
    return f"{uid}\t{rel}\t{transcript}\t{VOICE}\t{len(pcm) / RATE:.3f}\t{split}\t{label}"


def write_text(path, text):
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(part, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--hours", type=float, required=True, help="hours of training audio")
    p.add_argument("--out", help="corpus folder (default .cache/speech/scale-<H>h)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    if not args.hours > 0:
        p.error("--hours must be > 0")
    args.out = args.out or os.path.join(os.path.dirname(here), ".cache", "speech", f"scale-{args.hours:g}h")
    start = time.time()
    items = plan(args)
    os.makedirs(args.out, exist_ok=True)  # and its parents (.cache/speech on a fresh checkout)
    free = shutil.disk_usage(args.out).free
    need = sum(44 + 2 * int(round(it[3] * RATE)) for it in items)
    if need > free:
        print(f"make_scale_corpus: {need / 1e9:.1f} GB of audio needed, {free / 1e9:.1f} GB free", file=sys.stderr)
        sys.exit(1)
    if os.path.exists(os.path.join(args.out, "corpus.json")):
        os.remove(os.path.join(args.out, "corpus.json"))
    for split in {it[0] for it in items}:
        os.makedirs(os.path.join(args.out, "audio", split), exist_ok=True)
    lines = {}
    last = time.time()
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # map keeps the plan's order; chunks amortize the process round trips.
        for n, (item, line) in enumerate(zip(items, pool.map(make_one, [args] * len(items), items, chunksize=64))):
            lines.setdefault(item[0], []).append(line)
            if time.time() - last >= 5:
                print(f"make_scale_corpus: {n + 1}/{len(items)} utterances", flush=True)
                last = time.time()
    counts, hours = {}, {}
    for split, rows in lines.items():
        write_text(os.path.join(args.out, f"{split}.tsv"), HEADER + "\n" + "".join(r + "\n" for r in rows))
        counts[split] = len(rows)
        hours[split] = round(sum(float(r.split("\t")[4]) for r in rows) / 3600.0, 3)
    write_text(os.path.join(args.out, "intents.tsv"),
               "label\tscenario\tname\tdescription\n" + "".join("\t".join(i) + "\n" for i in INTENTS))
    write_text(os.path.join(args.out, "keywords.tsv"),
               "label\tkeyword\n" + "".join("\t".join(k) + "\n" for k in KEYWORDS))
    record = {"version": VERSION, "kind": "scale", "seed": args.seed, "hours_requested": args.hours,
              "splits": counts, "hours": hours, "total_utterances": sum(counts.values()),
              "audio_bytes": need, "generation_seconds": round(time.time() - start, 1)}
    write_text(os.path.join(args.out, "corpus.json"), json.dumps(record, indent=2) + "\n")
    print(f"make_scale_corpus: {sum(counts.values())} utterances, {hours['train']} h of training audio, "
          f"{need / 1e9:.2f} GB in {record['generation_seconds']} s -> {args.out}")


if __name__ == "__main__":
    main()
