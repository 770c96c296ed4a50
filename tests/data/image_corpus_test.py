#!/usr/bin/python3
# Test of tools/make_image_corpus.py on its tiny size (ctest image_corpus_py): the same seed gives
# byte-identical files, a complete build reruns as "up to date" and a damaged one is rebuilt, the
# manifests agree with the IDX files, and the no-leakage rules of data/README.md hold, checked
# here again with code that does not share the generator's helpers.
#
#   tests/data/image_corpus_test.py FIXTURE_DIR     (exit 77 = skipped: packages not installed)
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "tools", "make_image_corpus.py")
HEADER = ["id", "index", "label", "captions", "attributes"]


def generate(out, *extra):
    p = subprocess.run([SCRIPT, "--size", "tiny", "--out", out, *extra], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode == 2:
        print(f"skipped: {p.stderr.strip()}")
        sys.exit(77)
    assert p.returncode == 0, f"generator failed on {out}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def snapshot(out):
    """{relative path: sha256} of every file but the timing record."""
    snap = {}
    for root, _, files in os.walk(out):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), out)
            if rel != "corpus.json":
                with open(os.path.join(root, f), "rb") as fh:
                    snap[rel] = hashlib.sha256(fh.read()).hexdigest()
    return snap


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    assert raw[:3] == b"\x00\x00\x08", path
    nd = raw[3]
    dims = struct.unpack(">" + "i" * nd, raw[4:4 + 4 * nd])
    data = raw[4 + 4 * nd:]
    n = 1
    for d in dims:
        n *= d
    assert len(data) == n, (path, dims, len(data))
    return dims, data


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().rstrip("\n").split("\n")
    assert lines[0].split("\t") == HEADER, path
    rows = [dict(zip(HEADER, ln.split("\t"))) for ln in lines[1:]]
    for r in rows:
        assert len(r) == 5 and r["captions"], (path, r)
        r["captions"] = r["captions"].split(" | ")
    return rows


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def check_dataset(out, name):
    d = os.path.join(out, name)
    with open(os.path.join(d, "dataset.json"), encoding="utf-8") as f:
        meta = json.load(f)
    assert len(meta["prompt_templates"]) >= 10 and all("{}" in t for t in meta["prompt_templates"])
    splits = {}
    for split, sp in meta["splits"].items():
        img = sp["images"] if os.path.isabs(sp["images"]) else os.path.join(d, sp["images"])
        lab = sp["labels"] if os.path.isabs(sp["labels"]) else os.path.join(d, sp["labels"])
        dims, _ = read_idx(img)
        ldims, labels = read_idx(lab)
        assert dims[0] == ldims[0] and dims[1:3] == (meta["height"], meta["width"]), (name, split, dims)
        rows = read_manifest(os.path.join(d, sp["manifest"]))
        assert len(rows) == sp["rows"] > 0
        for r in rows:
            assert labels[int(r["index"])] == int(r["label"]) < len(meta["classes"]), (name, split, r)
        splits[split] = rows
    return meta, splits


def class_words(meta):
    out = set()
    for c in meta["classes"] + meta.get("original_class_names", []):
        out |= {w for w in words(c) if len(w) >= 2}
    return out


def leak(caption, forbidden, no_digits):
    for w in words(caption):
        if no_digits and re.search(r"[0-9]", w):
            return w
        for f in forbidden:
            if w == f or w == f + "s" or w == f + "es" or (len(f) >= 4 and f in w):
                return f
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: image_corpus_test.py FIXTURE_DIR")
    base = sys.argv[1]
    shutil.rmtree(base, ignore_errors=True)
    a, b = os.path.join(base, "a"), os.path.join(base, "b")
    generate(a)
    generate(b)
    assert snapshot(a) == snapshot(b), "same seed, different files"
    assert "up to date" in generate(a)
    c = os.path.join(base, "c")
    generate(c, "--seed", "1", "--datasets", "shapes")
    assert snapshot(c)["shapes/train.tsv"] != snapshot(a)["shapes/train.tsv"], "seed has no effect"

    # A damaged build is rebuilt, to the same bytes.
    before = snapshot(a)
    with open(os.path.join(a, "shapes", "train.tsv"), "a", encoding="utf-8") as f:
        f.write("junk\n")
    out = generate(a)
    assert "up to date" not in out and snapshot(a) == before
    os.remove(os.path.join(a, "digits", "test-images-idx3-ubyte"))
    generate(a)
    assert snapshot(a) == before
    with open(os.path.join(a, "corpus.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert set(record["files"]) == {"fashion_mnist", "digits", "shapes"}

    # The checker itself catches what it must: words, plurals, compounds, digits.
    fb = {"coat", "top", "boot", "one"}
    for bad in ("a red coat", "tops", "an overcoat", "two boots", "one", "bootlace"):
        assert leak(bad, fb, False), bad
    assert leak("the figure 7", set(), True) and not leak("a stop sign, a bone", fb, False)

    # Fashion-MNIST and digits: no caption contains a class-name word of the prompts.
    for name, no_digits in (("fashion_mnist", False), ("digits", True)):
        meta, splits = check_dataset(a, name)
        forbidden = class_words(meta)
        assert forbidden >= ({"boot", "ankle", "shirt", "top", "bag"} if name == "fashion_mnist"
                             else {"zero", "one", "nine"}), forbidden
        n_caps = 0
        for split, rows in splits.items():
            for r in rows:
                for cap in r["captions"]:
                    n_caps += 1
                    bad = leak(cap, forbidden, no_digits)
                    assert bad is None, f"{name}/{split} {r['id']}: '{cap}' contains '{bad}'"
        assert n_caps >= 3 * sum(len(r) for r in splits.values())
        # Every class has captions, and at least two different ones.
        per_class = {}
        for r in splits["train"]:
            per_class.setdefault(int(r["label"]), set()).update(r["captions"])
        assert len(per_class) == len(meta["classes"]) and min(len(v) for v in per_class.values()) >= 2
    meta, splits = check_dataset(a, "digits")
    assert len(splits["train"]) + len(splits["test"]) == 1797
    test_per_class = [sum(int(r["label"]) == c for r in splits["test"]) for c in range(10)]
    assert min(test_per_class) >= 34 and max(test_per_class) <= 37, test_per_class  # stratified

    # The shapes set: held-out (color, shape) pairs only in test; no train/valid caption names one.
    meta, splits = check_dataset(a, "shapes")
    held = set(meta["heldout_classes"])
    assert len(held) == 8 and not flip_allowed(meta)
    held_names = [meta["classes"][k] for k in held]
    for split in ("train", "valid"):
        for r in splits[split]:
            assert int(r["label"]) not in held, (split, r)
            attrs = dict(kv.split("=", 1) for kv in r["attributes"].split(";"))
            assert f"{attrs['color']} {attrs['shape']}" == meta["classes"][int(r["label"])]
            for cap in r["captions"]:
                text = " " + " ".join(words(cap)) + " "
                assert attrs["color"] in words(cap), cap  # captions say what is there
                for hn in held_names:
                    color, shape = hn.split(" ")
                    assert not (f" {color} " in text and f" {shape}" in text), (split, cap, hn)
    assert all(int(r["label"]) in held for r in splits["test"])
    assert {int(r["label"]) for r in splits["test"]} == held
    print("image corpus: all checks passed")


def flip_allowed(meta):
    return meta["horizontal_flip"]


if __name__ == "__main__":
    main()
