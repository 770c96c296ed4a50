# Test of tools/make_speech_corpus.py on its tiny size (ctest speech_corpus_py): same seed gives
# byte-identical manifests and audio, the split rules of data/README.md hold, every row's audio
# is a 16 kHz mono WAV of the listed duration, and interrupted or damaged builds are repaired.
#
#   python3 tests/data/test_speech_corpus.py FIXTURE_DIR     (exit 77 = skipped: no espeak-ng)
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "tools", "make_speech_corpus.py")
SPLITS = ["train", "valid", "retrieval_test", "intent_test", "kws_test"]
HEADER = ["id", "audio", "transcript", "voice", "duration", "split", "label"]
HUMAN = ("asterisk-human", "pocketsphinx:")


def generate(out, *extra):
    p = subprocess.run([sys.executable, SCRIPT, "--size", "tiny", "--out", out, "--jobs", "2",
                        *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, f"generator failed on {out}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def normalize(t):
    # Written here again on purpose: the check must not share the generator's helper.
    return " ".join(re.sub(r"[^a-z0-9]+", " ", t.lower()).split())


def snapshot(out):
    """{relative path: sha256} of the manifests, side tables and audio of a corpus."""
    snap = {}
    for root, _, files in os.walk(out):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), out)
            if rel.endswith(".tsv") or rel.startswith("audio" + os.sep):
                with open(os.path.join(root, f), "rb") as fh:
                    snap[rel] = hashlib.sha256(fh.read()).hexdigest()
    return snap


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[-1] == "", f"{path}: no final newline"
    rows = [ln.split("\t") for ln in lines[:-1]]
    return rows[0], rows[1:]


def wav_frames(path):
    """Frames of a complete 16 kHz mono PCM16 WAV; fails the test otherwise."""
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000), \
            f"{path}: not 16 kHz mono PCM16"
        n = w.getnframes()
    assert os.path.getsize(path) == 44 + 2 * n, f"{path}: size does not match its header"
    return n


def check_corpus(out):
    meta = json.load(open(os.path.join(out, "corpus.json")))
    held, train_voices = set(meta["voices"]["held_out"]), set(meta["voices"]["train"])
    assert held and train_voices and not held & train_voices, "voice lists overlap"
    head, intents = read_tsv(os.path.join(out, "intents.tsv"))
    assert head == ["label", "scenario", "name", "description"], head
    intent_labels = {r[0] for r in intents}
    assert len(intent_labels) >= 30 and len({r[1] for r in intents}) >= 8, "too few intents"
    head, keywords = read_tsv(os.path.join(out, "keywords.tsv"))
    assert head == ["label", "keyword"] and len(keywords) == 35, "keywords.tsv"
    kw_labels = {r[0] for r in keywords}

    ids, texts, rows_of = set(), {}, {}
    for split in SPLITS:
        head, rows = read_tsv(os.path.join(out, split + ".tsv"))
        assert head == HEADER, f"{split}.tsv header {head}"
        assert rows, f"{split}.tsv is empty"
        assert [r[0] for r in rows] == sorted(r[0] for r in rows), f"{split}.tsv not sorted by id"
        assert meta["files"][split + ".tsv"]["rows"] == len(rows)
        for r in rows:
            assert len(r) == 7, f"{split}.tsv row {r}"
            uid, audio, transcript, voice, duration, row_split, label = r
            assert uid not in ids, f"duplicate id {uid}"
            ids.add(uid)
            assert row_split == split and transcript and voice, r
            assert re.fullmatch(r"\d+\.\d{3}", duration), r
            frames = wav_frames(os.path.join(out, audio))
            assert abs(frames / 16000 - float(duration)) <= 0.0005 + 1e-9, f"{audio}: duration {duration}"
            assert 0.5 <= float(duration) <= 8.0, r
            if split == "intent_test":
                assert label in intent_labels, r
            elif split == "kws_test":
                assert label in kw_labels and normalize(transcript) == label, r
            else:
                assert label == "", r
            base = ":".join(voice.split(":")[:2])
            if split in ("train", "valid"):
                assert base in train_voices, f"{uid}: {voice} is not a training voice"
                assert not voice.startswith(HUMAN), f"{uid}: human speech in {split}"
            elif not voice.startswith(HUMAN):
                assert base in held, f"{uid}: test voice {voice} is not held out"
        rows_of[split] = rows
        texts[split] = {normalize(r[2]) for r in rows}

    # No transcript shared between train/valid and a test split, and no intent test phrasing
    # inside any train/valid text (word boundaries).
    seen = texts["train"] | texts["valid"]
    for split in SPLITS[2:]:
        shared = texts[split] & seen
        assert not shared, f"{split} transcripts also in train/valid: {sorted(shared)[:5]}"
    blob = " | ".join(sorted(seen))
    for t in texts["intent_test"]:
        assert f" {t} " not in f" {blob} ", f"intent phrasing '{t}' inside training text"
    assert {r[6] for r in rows_of["kws_test"]} == kw_labels, "a keyword has no test clip"
    human_kws = {r[6] for r in rows_of["kws_test"] if r[3] == "asterisk-human"}
    assert {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
            "nine"} <= human_kws, f"human digit clips missing: {sorted(human_kws)}"
    assert any(r[3].startswith(HUMAN) for r in rows_of["retrieval_test"]), "no human retrieval"
    assert not any(f.endswith(".part") for _, _, fs in os.walk(out) for f in fs), "a .part file"
    return rows_of


def interrupted_build(out):
    """Kills a build once some audio is written; no partial file may carry a final name."""
    p = subprocess.Popen([sys.executable, SCRIPT, "--size", "tiny", "--out", out, "--jobs", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    audio = os.path.join(out, "audio")
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline:
        n = sum(len(fs) for _, _, fs in os.walk(audio)) if os.path.isdir(audio) else 0
        if n >= 30:
            break
        time.sleep(0.02)
    interrupted = p.poll() is None
    if interrupted:
        os.killpg(p.pid, signal.SIGKILL)  # the generator and its synthesizer children
    p.wait()
    if not interrupted:
        print("note: the build finished before it could be interrupted")
        return
    assert not os.path.exists(os.path.join(out, "corpus.json")), "killed build has corpus.json"
    finals = [os.path.join(r, f) for r, _, fs in os.walk(audio) for f in fs if f.endswith(".wav")]
    assert finals, "nothing written before the kill"
    for f in finals:
        wav_frames(f)  # complete, or the test fails
    print(f"interrupted build left {len(finals)} complete wav files")


def main():
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        print("skipped: espeak-ng or sox not installed (tools/setup.sh)")
        return 77
    fixture = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "speech_corpus_fixture")
    a, b = os.path.join(fixture, "a"), os.path.join(fixture, "b")
    for d in (a, b):
        shutil.rmtree(d, ignore_errors=True)

    t0 = time.monotonic()
    generate(a)
    print(f"tiny corpus generated in {time.monotonic() - t0:.1f} s")
    rows = check_corpus(a)
    print("rows per split:", {s: len(r) for s, r in rows.items()})

    # Same seed, a killed first attempt, then a resumed build: identical bytes.
    interrupted_build(b)
    generate(b)
    snap_a, snap_b = snapshot(a), snapshot(b)
    assert snap_a == snap_b, f"builds differ in {sorted(set(snap_a.items()) ^ set(snap_b.items()))[:4]}"
    print(f"two builds identical ({len(snap_a)} files)")

    # A complete build is recognized as such.
    meta_before = open(os.path.join(a, "corpus.json")).read()
    assert "up to date" in generate(a), "rerun of a complete build did not say up to date"
    assert open(os.path.join(a, "corpus.json")).read() == meta_before

    # Damage: no completion record, one wav missing, one truncated, a stray .part, an edited
    # manifest. The next run must notice and restore exactly the same corpus.
    wavs = sorted(r[1] for r in rows["train"])
    os.remove(os.path.join(a, "corpus.json"))
    os.remove(os.path.join(a, wavs[0]))
    with open(os.path.join(a, wavs[1]), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(a, wavs[1])) // 2)
    open(os.path.join(a, wavs[2] + ".part"), "wb").close()
    out = generate(a)
    assert "up to date" not in out
    check_corpus(a)
    assert snapshot(a) == snap_b, "repaired build differs from a clean one"
    with open(os.path.join(a, "valid.tsv"), "a") as f:
        f.write("valid-999999\taudio/x.wav\tstale\tv\t1.000\tvalid\t\n")
    assert "up to date" not in generate(a), "an edited manifest was taken as up to date"
    assert snapshot(a) == snap_b, "rebuild after an edited manifest differs"

    # A failing synthesizer stops the build with the command and the utterance it was making.
    fake_bin, broken = os.path.join(fixture, "fake_bin"), os.path.join(fixture, "broken")
    shutil.rmtree(broken, ignore_errors=True)
    os.makedirs(fake_bin, exist_ok=True)
    fake = os.path.join(fake_bin, "espeak-ng")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\necho 'fake espeak-ng: broken on purpose' >&2\nexit 3\n")
    os.chmod(fake, 0o755)
    env = dict(os.environ, PATH=fake_bin + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run([sys.executable, SCRIPT, "--size", "tiny", "--out", broken, "--jobs", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.returncode == 1, f"broken synthesizer: exit {p.returncode}\n{p.stderr}"
    assert "espeak-ng" in p.stderr and "exit 3" in p.stderr and "broken on purpose" in p.stderr \
        and re.search(r"(train|valid|test)-\d{6} \(audio/", p.stderr), p.stderr
    assert not os.path.exists(os.path.join(broken, "corpus.json"))
    print(f"speech corpus test passed in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
