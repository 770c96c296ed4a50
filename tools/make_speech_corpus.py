#!/usr/bin/python3
# Generates the speech-text corpus of the speech experiments (issue 6) offline from Debian
# packages: synthetic training pairs, and zero-shot benchmarks (SLURP-like intents, Speech
# Commands keywords, retrieval) with held-out voices and real human speech. Format: data/README.md.
#
#   tools/make_speech_corpus.py --size {tiny,small,full} [--out DIR] [--seed N] [--jobs N]
#
# Deterministic from the seed; skips utterances already on disk; corpus.json (written last)
# marks a complete build, so a rerun of a complete build only says "up to date".
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speech_corpus import audio, benchmarks, text  # noqa: E402

VERSION = 2  # bump when the audio of a spec changes: file names carry it
HEADER = "id\taudio\ttranscript\tvoice\tduration\tsplit\tlabel"
SPLITS = ["train", "valid", "retrieval_test", "intent_test", "kws_test"]
MIN_SECONDS, MAX_SECONDS = 0.5, 8.0
HUMAN_VOICE = "asterisk-human"

# Utterance counts per split. intent/kws are per class; retrieval mixes synthetic (held-out
# voices) and human recordings (asterisk prompts, pocketsphinx).
SIZES = {
    "tiny": dict(train=60, valid=10, retrieval_synth=12, retrieval_human=6, intent_per=1,
                 kws_per=1),
    "small": dict(train=3000, valid=200, retrieval_synth=250, retrieval_human=150, intent_per=10,
                  kws_per=10),
    "full": dict(train=40000, valid=1000, retrieval_synth=1000, retrieval_human=10000,
                 intent_per=30, kws_per=30),
}
COMMAND_SHARE = 0.2  # share of command-like utterances among train/valid/retrieval sentences


def project_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text_atomic(path, content):
    part = path + ".part"
    with open(part, "w", encoding="utf-8", newline="\n") as f:
        f.write(content)
    os.replace(part, path)


# ---------------------------------------------------------------------------------------------
# Plan: every utterance of the corpus as a spec, decided before any audio is made.


def utterance(split, index, transcript, label, spec):
    """One planned row; its audio file name carries a hash of everything that shapes the audio,
    so a changed spec never reuses a stale file."""
    uid = f"{split}-{index:06d}"
    key = json.dumps({"v": VERSION, "text": transcript, **spec}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return {"id": uid, "split": split, "transcript": transcript, "label": label,
            "audio": f"audio/{split}/{uid}-{digest}.wav", "spec": spec}


def synth_spec(rng, held_out, min_seconds=0.0):
    voice = audio.pick_voice(rng, held_out)
    return {"kind": "synth", "voice": voice, "aug": audio.pick_augmentation(rng),
            "min_samples": int(min_seconds * audio.RATE)}


def human_spec(source_wav, voice, min_seconds=0.0):
    return {"kind": "human", "source": source_wav, "voice": {"name": voice},
            "min_samples": int(min_seconds * audio.RATE)}


class TestTextIndex:
    """Normalized test transcripts, to keep them and anything containing an intent phrasing
    out of training text (word-boundary containment, by length-bucketed windows)."""

    def __init__(self, exact, contained):
        self.exact = set(exact)
        self.by_len = {}
        for t in contained:
            self.by_len.setdefault(len(t.split()), set()).add(t)

    def clashes(self, sentence):
        norm = text.normalize(sentence)
        if norm in self.exact:
            return True
        words = norm.split()
        for k, phrases in self.by_len.items():
            for i in range(len(words) - k + 1):
                if " ".join(words[i:i + k]) in phrases:
                    return True
        return False


def partition(seed, norm):
    """Fixed sentence -> pool assignment from a hash, so pools do not depend on sampling."""
    h = int(hashlib.sha256(f"{seed}:{norm}".encode()).hexdigest()[:8], 16) % 1000
    return "retrieval" if h < 40 else ("valid" if h < 80 else "train")


def make_plan(size, seed):
    cfg = SIZES[size]
    rng = random.Random(f"plan:{seed}")
    rows = {s: [] for s in SPLITS}

    # Intent test: phrasings from the benchmark templates, held-out voices only.
    intent_texts = set()
    for label, _, _, _, templates in benchmarks.INTENTS:
        seen, tries = [], 0
        while len(seen) < cfg["intent_per"] and tries < 200:
            t = benchmarks.fill_template(templates[tries % len(templates)], rng)
            tries += 1
            if t not in seen:
                seen.append(t)
        for t in seen:
            intent_texts.add(text.normalize(t))
            rows["intent_test"].append((t, label, synth_spec(rng, True)))

    # Keyword test: synthetic keywords with held-out voices, then the human asterisk recordings
    # whose transcript is exactly a keyword (the digits). Padded to 1 s like Speech Commands.
    for kw in benchmarks.KEYWORDS:
        for _ in range(cfg["kws_per"]):
            rows["kws_test"].append((kw, kw, synth_spec(rng, True, min_seconds=1.0)))
    prompts = text.asterisk_prompts()
    kw_prompts = [p for p in prompts if text.normalize(p[1]) in benchmarks.KEYWORDS]
    for name, t, wav in kw_prompts:
        kw = text.normalize(t)
        rows["kws_test"].append((kw, kw, human_spec(wav, HUMAN_VOICE, min_seconds=1.0)))

    # Retrieval test, human part: asterisk prompts (not the keyword ones, not single letters)
    # and pocketsphinx recordings.
    kw_names = {p[0] for p in kw_prompts}
    human = [(t, human_spec(wav, HUMAN_VOICE)) for name, t, wav in prompts
             if name not in kw_names and not name.startswith("letters/")
             and len(text.normalize(t).split()) >= 2]
    human += [(t, human_spec(wav, "pocketsphinx:" + name.split("/")[0]))
              for name, t, wav in text.pocketsphinx_utterances()]
    rng.shuffle(human)
    # Deduplicate transcripts so that a retrieval query has one right answer.
    seen_h, human_rows = set(), []
    for t, spec in human:
        if text.normalize(t) not in seen_h:
            seen_h.add(text.normalize(t))
            human_rows.append((t, spec))
    human_rows = human_rows[: cfg["retrieval_human"]]

    # Sentence pools: general text and commands, partitioned by hash into train / valid /
    # retrieval pools; anything equal to a test transcript or containing an intent phrasing is
    # removed first.
    test_exact = intent_texts | set(benchmarks.KEYWORDS) | {text.normalize(t) for t, _ in human_rows}
    index = TestTextIndex(test_exact, intent_texts)
    pools = {}
    for kind, sentences in (("general", text.wordnet_sentences() + text.fortune_sentences()),
                            ("command", text.command_sentences())):
        uniq = {}
        for s in sentences:
            uniq.setdefault(text.normalize(s), s)
        for norm in sorted(uniq):
            pools.setdefault((kind, partition(seed, norm)), []).append(uniq[norm])
    for key in sorted(pools):
        rng.shuffle(pools[key])

    def draw(pool_name, n):
        """n sentences, COMMAND_SHARE of them commands, cycling a pool if it runs short."""
        out = []
        for kind, count in (("command", round(n * COMMAND_SHARE)),
                            ("general", n - round(n * COMMAND_SHARE))):
            pool = []
            for s in pools.get((kind, pool_name), []):  # lazily: a tiny build reads a few
                if len(pool) == count:
                    break
                if not index.clashes(s):
                    pool.append(s)
            if count > 0 and not pool:
                raise audio.CorpusError(f"empty {kind} sentence pool for {pool_name}")
            out += [pool[i % len(pool)] for i in range(count)]
        rng.shuffle(out)
        return out

    for t in draw("train", cfg["train"]):
        rows["train"].append((t, "", synth_spec(rng, False)))
    for t in draw("valid", cfg["valid"]):
        rows["valid"].append((t, "", synth_spec(rng, False)))
    for t in draw("retrieval", cfg["retrieval_synth"]):
        rows["retrieval_test"].append((t, "", synth_spec(rng, True)))
    rows["retrieval_test"] += [(t, "", spec) for t, spec in human_rows]

    plan = []
    for split in SPLITS:
        for i, (t, label, spec) in enumerate(rows[split]):
            plan.append(utterance(split, i, t, label, spec))
    check_plan(plan)
    return plan


def check_plan(plan):
    """The split rules of data/README.md, asserted before any audio is made."""
    train_bases = set(audio.train_voice_bases())
    held = set(audio.heldout_voice_bases())
    assert not train_bases & held, "a voice is both training and held out"
    seen_train = {text.normalize(u["transcript"]) for u in plan if u["split"] in ("train", "valid")}
    for u in plan:
        name = u["spec"]["voice"]["name"]
        if u["split"] in ("train", "valid"):
            assert audio.voice_base(name) in train_bases, f"{u['id']}: {name} not a training voice"
        else:
            assert audio.voice_base(name) not in train_bases, f"{u['id']}: {name} is a training voice"
            assert text.normalize(u["transcript"]) not in seen_train, \
                f"{u['id']}: test transcript '{u['transcript']}' also in train/valid"
    intent = [text.normalize(u["transcript"]) for u in plan if u["split"] == "intent_test"]
    index = TestTextIndex([], intent)
    for u in plan:
        if u["split"] in ("train", "valid"):
            assert not index.clashes(u["transcript"]), \
                f"{u['id']}: '{u['transcript']}' contains an intent test phrasing"
    ids = [u["id"] for u in plan]
    assert len(ids) == len(set(ids)), "duplicate utterance ids"
    for u in plan:
        assert "\t" not in u["transcript"] and "\n" not in u["transcript"], u["id"]


def ngram_overlap(plan, n=4):
    """Mean share of each intent test phrasing's word n-grams found in the training text: how
    near the closest training text comes to the test phrasings (0 = none shared)."""
    grams = set()
    for u in plan:
        if u["split"] == "train":
            w = text.normalize(u["transcript"]).split()
            grams.update(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    shares = []
    for u in plan:
        if u["split"] == "intent_test":
            w = text.normalize(u["transcript"]).split()
            g = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
            if g:
                shares.append(sum(x in grams for x in g) / len(g))
    return round(sum(shares) / max(1, len(shares)), 4)


# ---------------------------------------------------------------------------------------------
# Audio: one worker call per utterance, skipped when its complete file is already there.


class Builder:
    def __init__(self, out):
        self.out = out
        self.work = os.path.join(out, ".work")
        self.noise = {}

    def prepare(self, plan):
        os.makedirs(os.path.join(self.work, "tmp"), exist_ok=True)
        os.makedirs(os.path.join(self.work, "dropped"), exist_ok=True)
        for split in SPLITS:
            os.makedirs(os.path.join(self.out, "audio", split), exist_ok=True)
        kinds = {u["spec"]["aug"]["noise"] for u in plan
                 if u["spec"]["kind"] == "synth" and u["spec"]["aug"]["noise"]}
        for kind in sorted(kinds):
            self.noise[kind] = audio.noise_bank(kind)

    def dropped_marker(self, u):
        return os.path.join(self.work, "dropped", os.path.basename(u["audio"]) + ".txt")

    def make(self, u):
        """(id, frames) of the finished file, or (id, None) when it is outside 0.5-8 s."""
        final = os.path.join(self.out, u["audio"])
        frames = audio.valid_wav_frames(final)
        if frames is not None:
            return u["id"], frames
        marker = self.dropped_marker(u)
        if os.path.exists(marker):
            return u["id"], None
        if os.path.exists(final):  # truncated or foreign: made again
            os.remove(final)
        spec, what = u["spec"], f"{u['id']} ({u['audio']})"
        if spec["kind"] == "human":
            samples = audio.sox_to_pcm16(spec["source"], what)
        else:
            tmp = os.path.join(self.work, "tmp", u["id"] + ".wav")
            try:
                audio.synthesize(spec["voice"], u["transcript"], tmp, what)
                samples = audio.sox_to_pcm16(tmp, what, spec["aug"])
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            aug = spec["aug"]
            if aug["noise"]:
                samples = audio.mix_noise(samples, self.noise[aug["noise"]], aug["noise_offset"],
                                          aug["snr_db"])
        samples = audio.pad_to(samples, spec["min_samples"])
        seconds = len(samples) / audio.RATE
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            write_text_atomic(marker, f"{seconds:.3f}\n")
            return u["id"], None
        audio.write_wav_atomic(final, samples)
        return u["id"], len(samples)

    def remove_orphans(self, plan):
        """Deletes files under audio/ that the plan does not name (.part leftovers, old specs)."""
        keep = {os.path.normpath(os.path.join(self.out, u["audio"])) for u in plan}
        removed = 0
        for root, _, files in os.walk(os.path.join(self.out, "audio")):
            for f in files:
                p = os.path.normpath(os.path.join(root, f))
                if p not in keep:
                    os.remove(p)
                    removed += 1
        shutil.rmtree(os.path.join(self.work, "tmp"), ignore_errors=True)
        return removed


# ---------------------------------------------------------------------------------------------
# Manifests and the completion record.


def manifest_text(rows):
    lines = [HEADER]
    for u, frames in rows:
        lines.append("\t".join([u["id"], u["audio"], u["transcript"], u["spec"]["voice"]["name"],
                                f"{frames / audio.RATE:.3f}", u["split"], u["label"]]))
    return "\n".join(lines) + "\n"


def side_tables():
    intents = ["label\tscenario\tname\tdescription"] + [
        f"{label}\t{scenario}\t{name}\t{desc}" for label, scenario, name, desc, _ in
        sorted(benchmarks.INTENTS)]
    keywords = ["label\tkeyword"] + [f"{k}\t{k}" for k in sorted(benchmarks.KEYWORDS)]
    return {"intents.tsv": "\n".join(intents) + "\n", "keywords.tsv": "\n".join(keywords) + "\n"}


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not lines or lines[0] != HEADER:
        raise audio.CorpusError(f"{path}: bad header")
    return [ln.split("\t") for ln in lines[1:] if ln]


def up_to_date(out, size, seed):
    """True when corpus.json matches the manifests on disk and every audio file is complete
    (by size: a PCM16 WAV of the listed duration). Cheap: no audio is read."""
    path = os.path.join(out, "corpus.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        if (meta.get("version"), meta.get("size"), meta.get("seed")) != (VERSION, size, seed):
            return False
        for name, rec in meta["files"].items():
            p = os.path.join(out, name)
            if sha256_file(p) != rec["sha256"]:
                return False
            if name.replace(".tsv", "") in SPLITS:
                rows = read_manifest(p)
                if len(rows) != rec["rows"]:
                    return False
                for r in rows:
                    frames = round(float(r[4]) * audio.RATE)
                    if abs(os.path.getsize(os.path.join(out, r[1])) - 44 - 2 * frames) > 16:
                        return False
        return set(meta["files"]) == {s + ".tsv" for s in SPLITS} | set(side_tables())
    except (OSError, ValueError, KeyError, IndexError, audio.CorpusError):
        return False


def build(out, size, seed, jobs, log):
    start = time.monotonic()
    plan = make_plan(size, seed)
    os.makedirs(out, exist_ok=True)
    corpus_json = os.path.join(out, "corpus.json")
    if os.path.exists(corpus_json):
        os.remove(corpus_json)  # a build in progress is never mistaken for a complete one
    builder = Builder(out)
    builder.prepare(plan)

    frames_of = {}
    # A line at least every 5 s (train turns them into progress with an ETA), not every 10%:
    # a `full` build runs for most of an hour.
    last_line = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        # map() yields in plan order whatever finishes first, so the output does not depend
        # on --jobs.
        for i, (uid, frames) in enumerate(pool.map(builder.make, plan), 1):
            frames_of[uid] = frames
            if i == len(plan) or time.monotonic() - last_line >= 5:
                last_line = time.monotonic()
                log(f"make_speech_corpus: {i}/{len(plan)} utterances")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, start nothing new

    files, stats = {}, {}
    for split in SPLITS:
        kept = [(u, frames_of[u["id"]]) for u in plan
                if u["split"] == split and frames_of[u["id"]] is not None]
        kept.sort(key=lambda r: r[0]["id"])
        name = split + ".tsv"
        write_text_atomic(os.path.join(out, name), manifest_text(kept))
        secs = sum(f for _, f in kept) / audio.RATE
        stats[split] = {"utterances": len(kept),
                        "dropped": sum(1 for u in plan if u["split"] == split) - len(kept),
                        "hours": round(secs / 3600, 4),
                        "voices": len({u["spec"]["voice"]["name"] for u, _ in kept}),
                        "speakers": len({audio.voice_base(u["spec"]["voice"]["name"])
                                         for u, _ in kept})}
        files[name] = {"rows": len(kept)}
    for name, content in side_tables().items():
        write_text_atomic(os.path.join(out, name), content)
        files[name] = {"rows": content.count("\n") - 1}
    for name in files:
        files[name]["sha256"] = sha256_file(os.path.join(out, name))
    removed = builder.remove_orphans(plan)

    meta = {
        "version": VERSION, "size": size, "seed": seed, "files": files, "splits": stats,
        "total_utterances": sum(s["utterances"] for s in stats.values()),
        "total_hours": round(sum(s["hours"] for s in stats.values()), 4),
        "intent_test_4gram_overlap_with_train": ngram_overlap(plan),
        "voices": {"train": audio.train_voice_bases(), "held_out": audio.heldout_voice_bases(),
                   "human": sorted({u["spec"]["voice"]["name"] for u in plan
                                    if u["spec"]["kind"] == "human"})},
        "generation_seconds": round(time.monotonic() - start, 1),
    }
    write_text_atomic(corpus_json, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log(f"make_speech_corpus: wrote {out}: {meta['total_utterances']} utterances, "
        f"{meta['total_hours']} h, {sum(s['dropped'] for s in stats.values())} dropped, "
        f"{removed} stale files removed, {meta['generation_seconds']} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=sorted(SIZES), required=True)
    ap.add_argument("--out", help="output folder (default .cache/speech/<size> of the project)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    out = args.out or os.path.join(project_root(), ".cache", "speech", args.size)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    missing = [t for t in ("espeak-ng", "flite", "text2wave", "sox") if shutil.which(t) is None]
    if missing:
        log(f"make_speech_corpus: missing programs {', '.join(missing)} (run tools/setup.sh)")
        return 2
    if up_to_date(out, args.size, args.seed):
        print(f"make_speech_corpus: {out} is up to date")
        return 0
    try:
        build(out, args.size, args.seed, max(1, args.jobs), log)
    except audio.CorpusError as e:
        log(f"make_speech_corpus: error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
