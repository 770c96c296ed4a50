#!/usr/bin/python3
# Generates the image data of the image-text experiment (issue 9) offline from Debian packages:
# Fashion-MNIST (dataset-fashion-mnist), the scikit-learn digits (python3-sklearn) and a rendered
# compositional set of colored shapes (python3-pil), each with a manifest of WordNet or attribute
# captions that never name a zero-shot test class. Format and rules: data/README.md.
#
#   tools/make_image_corpus.py [--size {tiny,default}] [--out DIR] [--seed N] [--datasets a,b]
#
# Deterministic from the seed (byte-identical files); each data set is built in a temporary folder
# and renamed into place; corpus.json (written last) records a complete build, and a rerun of a
# complete, unchanged build only says "up to date".
import argparse
import csv
import gzip
import hashlib
import importlib.util
import io
import json
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import numpy as np  # noqa: E402
    from image_corpus import idx_io, shapes, wordnet_captions as wnc  # noqa: E402
except ImportError as e:  # python3-numpy / python3-pil missing
    print(f"make_image_corpus: {e}: run tools/setup.sh", file=sys.stderr)
    sys.exit(2)

VERSION = 3  # bump when any output of a given seed changes
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
HEADER = "id\tindex\tlabel\tcaptions\tattributes"
CAPTIONS_PER_IMAGE = 3
CAPTION_SEP = " | "
DATASETS = ["fashion_mnist", "digits", "shapes"]
# Rows per split. tiny is for tests and CI; Fashion-MNIST's rows are the first ones of each file.
SIZES = {
    "tiny": {"fashion_mnist": {"train": 600, "test": 200},
             "shapes": {"train": 480, "valid": 96, "test": 160}},
    "default": {"fashion_mnist": {"train": 60000, "test": 10000},
                "shapes": {"train": 10000, "valid": 1000, "test": 2000}},
}
DIGITS_TEST_EVERY = 5  # the k-th digit of each class is a test row when k % 5 == 4

FASHION_PROMPTS = ["a photo of a {}.", "a black and white photo of a {}.",
                   "a low resolution photo of a {}.", "a blurry photo of a {}.", "a photo of the {}.",
                   "a close-up photo of a {}.", "a grayscale image of a {}.",
                   "a product photo of a {}.", "a cropped photo of a {}.", "an image of a {}.",
                   "a photo of a small {}.", "a good photo of a {}."]
DIGIT_PROMPTS = ['a photo of the number: "{}".', "a photo of the digit {}.", "the number {}.",
                 "an image of the digit {}.", "a black and white photo of the number {}.",
                 "a blurry photo of the number {}.", "a low resolution image of the digit {}.",
                 "the digit {} written on paper.", "a scan of the number {}.",
                 "a picture of the numeral {}.", "a drawing of the digit {}.", "a photo of a {}."]


def project_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_file(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": "\n"})) as f:
        f.write(data)


def manifest_text(split, rows):
    """TSV: id, index (row in the split's IDX files), label, captions (joined by ' | '),
    attributes (key=value;...)."""
    lines = [HEADER]
    for i, r in enumerate(rows):
        for c in r["captions"]:
            assert "\t" not in c and "\n" not in c and "|" not in c, c
        attrs = ";".join(f"{k}={v}" for k, v in r.get("attributes", {}).items())
        lines.append(f"{split}-{i:06d}\t{r['index']}\t{r['label']}\t{CAPTION_SEP.join(r['captions'])}\t{attrs}")
    return "\n".join(lines) + "\n"


def wordnet_rows(kind, split, labels, seed, class_caps):
    """CAPTIONS_PER_IMAGE distinct captions per image, drawn from its class's caption list."""
    rng = random.Random(f"{kind}:{seed}:{split}")
    rows = []
    for i, y in enumerate(labels):
        caps = rng.sample(class_caps[int(y)], CAPTIONS_PER_IMAGE)
        rows.append({"index": i, "label": int(y), "captions": caps})
    return rows


def check_wordnet_leaks(kind, rows_by_split, forbidden):
    """The no-leakage rule, asserted on every caption written (train and test)."""
    no_digits = kind == "digits"
    for split, rows in rows_by_split.items():
        for r in rows:
            for c in r["captions"]:
                bad = wnc.leaks(c, forbidden, no_digits)
                assert bad is None, f"{kind}/{split}: caption '{c}' contains class word '{bad}'"


def build_fashion(d, size, seed):
    classes, caps, forbidden = wnc.class_captions("fashion_mnist")
    files = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    rows_by_split, splits = {}, {}
    for split, (img, lab) in files.items():
        labels = idx_io.read_idx(os.path.join(FASHION_DIR, lab))
        n = min(SIZES[size]["fashion_mnist"][split], len(labels))
        rows_by_split[split] = wordnet_rows("fashion_mnist", split, labels[:n], seed, caps)
        # The package's files are used in place (absolute system paths, outside the checkout).
        splits[split] = {"images": os.path.join(FASHION_DIR, img), "labels": os.path.join(FASHION_DIR, lab),
                         "manifest": f"{split}.tsv", "rows": n}
    check_wordnet_leaks("fashion_mnist", rows_by_split, forbidden)
    for split, rows in rows_by_split.items():
        write_file(os.path.join(d, f"{split}.tsv"), manifest_text(split, rows))
    return {"name": "fashion_mnist", "channels": 1, "height": 28, "width": 28, "classes": classes,
            "original_class_names": wnc.FASHION_ORIGINAL, "prompt_templates": FASHION_PROMPTS,
            "horizontal_flip": True, "forbidden_caption_words": forbidden,
            "leakage_rule": "no caption contains a class-name word (or its plural, or a word "
                            "containing a class-name word of 4+ letters)",
            "source": "Debian dataset-fashion-mnist", "splits": splits}, rows_by_split


def digits_csv():
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn not found: install python3-sklearn (tools/setup.sh)")
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")


def build_digits(d, size, seed):
    del size  # 1797 images: always all of them
    classes, caps, forbidden = wnc.class_captions("digits")
    with gzip.open(digits_csv(), "rt") as f:
        table = np.array([[int(v) for v in row] for row in csv.reader(f)], dtype=np.int64)
    assert table.shape == (1797, 65), table.shape
    # 8x8 pixels of 0..16 (4x4 blocks of 32x32 bitmaps counted) -> 0..255, rounded half up.
    pixels = ((table[:, :64] * 255 + 8) // 16).astype(np.uint8).reshape(-1, 8, 8)
    labels = table[:, 64].astype(np.uint8)
    # Stratified: the k-th image of each class (in file order) is a test image when k % 5 == 4.
    # (A rule on the row number alone would not do: the file cycles through the classes, so
    # rows 4, 9, 14, ... are mostly 4s and 9s.)
    rank = np.zeros(len(labels), dtype=np.int64)
    seen = {}
    for i, y in enumerate(labels):
        rank[i] = seen.get(int(y), 0)
        seen[int(y)] = rank[i] + 1
    is_test = rank % DIGITS_TEST_EVERY == DIGITS_TEST_EVERY - 1
    rows_by_split, splits = {}, {}
    for split, mask in (("train", ~is_test), ("test", is_test)):
        write_file(os.path.join(d, f"{split}-images-idx3-ubyte"), idx_io.encode(pixels[mask], False))
        write_file(os.path.join(d, f"{split}-labels-idx1-ubyte"), idx_io.encode(labels[mask], False))
        rows_by_split[split] = wordnet_rows("digits", split, labels[mask], seed, caps)
        splits[split] = {"images": f"{split}-images-idx3-ubyte", "labels": f"{split}-labels-idx1-ubyte",
                         "manifest": f"{split}.tsv", "rows": int(mask.sum())}
    check_wordnet_leaks("digits", rows_by_split, forbidden)
    for split, rows in rows_by_split.items():
        write_file(os.path.join(d, f"{split}.tsv"), manifest_text(split, rows))
    return {"name": "digits", "channels": 1, "height": 8, "width": 8, "classes": classes,
            "prompt_templates": DIGIT_PROMPTS, "horizontal_flip": False,
            "forbidden_caption_words": forbidden,
            "leakage_rule": "no caption contains a class-name word (or its plural, or a word "
                            "containing a class-name word of 4+ letters) or any digit character",
            "source": "Debian python3-sklearn, sklearn/datasets/data/digits.csv.gz (UCI optdigits "
                      "test part); test rows: the k-th image of each class with k % 5 == 4",
            "splits": splits}, rows_by_split


def build_shapes(d, size, seed):
    held = shapes.heldout_pairs()
    seen = [(c, s) for c in range(len(shapes.COLORS)) for s in range(len(shapes.SHAPES)) if (c, s) not in held]
    counts = SIZES[size]["shapes"]
    rows_by_split, splits = {}, {}
    for split, pairs in (("train", seen), ("valid", seen), ("test", sorted(held))):
        images, rows = shapes.make_split(seed, split, counts[split], pairs)
        for i, r in enumerate(rows):
            r["index"] = i
        write_file(os.path.join(d, f"{split}-images-idx4-ubyte.gz"), idx_io.encode(images, True))
        write_file(os.path.join(d, f"{split}-labels-idx1-ubyte"),
                   idx_io.encode(np.array([r["label"] for r in rows], dtype=np.uint8), False))
        rows_by_split[split] = rows
        splits[split] = {"images": f"{split}-images-idx4-ubyte.gz", "labels": f"{split}-labels-idx1-ubyte",
                         "manifest": f"{split}.tsv", "rows": len(rows)}
    # The no-leakage rule of this set: no training or validation image shows a held-out pair and
    # no training or validation caption names one; every test image shows one.
    held_labels = {shapes.label_of(c, s) for c, s in held}
    for split in ("train", "valid"):
        for r in rows_by_split[split]:
            assert r["label"] not in held_labels, f"shapes/{split}: held-out class {r['label']}"
            for c in r["captions"]:
                for hc, hs in held:
                    assert not shapes.mentions_pair(c, hc, hs), f"shapes/{split}: '{c}' names a held-out pair"
    assert all(r["label"] in held_labels for r in rows_by_split["test"])
    for split, rows in rows_by_split.items():
        write_file(os.path.join(d, f"{split}.tsv"), manifest_text(split, rows))
    return {"name": "shapes", "channels": 3, "height": shapes.SIZE, "width": shapes.SIZE,
            "classes": shapes.class_names(), "prompt_templates": shapes.PROMPT_TEMPLATES,
            "horizontal_flip": False, "heldout_classes": sorted(held_labels),
            "leakage_rule": "classes are (color, shape) pairs; the held-out pairs (color i with "
                            "shape i mod 6) appear only in test: no train/valid image shows one, "
                            "no train/valid caption names a held-out color with its shape",
            "source": "rendered with python3-pil (tools/image_corpus/shapes.py)", "splits": splits}, rows_by_split


BUILDERS = {"fashion_mnist": build_fashion, "digits": build_digits, "shapes": build_shapes}


def dataset_files(d):
    return sorted(f for f in os.listdir(d) if not f.startswith("."))


def up_to_date(out, record):
    """True when corpus.json matches this request and every listed file's sha256."""
    path = os.path.join(out, "corpus.json")
    if not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError):
        return False
    if any(old.get(k) != record[k] for k in ("version", "seed", "size", "datasets")):
        return False
    for name, files in old.get("files", {}).items():
        for fname, digest in files.items():
            p = os.path.join(out, name, fname)
            if not os.path.isfile(p) or sha256_file(p) != digest:
                return False
    return set(old.get("files", {})) == set(record["datasets"])


def check_sources(datasets):
    missing = []
    if "fashion_mnist" in datasets and not os.path.isfile(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz")):
        missing.append("dataset-fashion-mnist")
    if "digits" in datasets:
        try:
            if not os.path.isfile(digits_csv()):
                missing.append("python3-sklearn")
        except FileNotFoundError:
            missing.append("python3-sklearn")
    if {"fashion_mnist", "digits"} & set(datasets) and not os.path.isfile(os.path.join(wnc.WORDNET_DIR, "data.noun")):
        missing.append("wordnet-base")
    if missing:
        print(f"make_image_corpus: missing packages {' '.join(missing)}: run tools/setup.sh", file=sys.stderr)
        sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=sorted(SIZES), default="default")
    ap.add_argument("--out", help="output folder (default: .cache/images/<size> of the checkout)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of " + ",".join(DATASETS))
    args = ap.parse_args()
    datasets = [x for x in args.datasets.split(",") if x]
    for x in datasets:
        if x not in BUILDERS:
            ap.error(f"unknown data set '{x}' (known: {', '.join(DATASETS)})")
    out = args.out or os.path.join(project_root(), ".cache", "images", args.size)
    record = {"version": VERSION, "seed": args.seed, "size": args.size, "datasets": datasets}
    if up_to_date(out, record):
        print(f"make_image_corpus: {out} up to date")
        return
    check_sources(datasets)
    t0 = time.time()
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "corpus.json")):
        os.remove(os.path.join(out, "corpus.json"))  # incomplete until rewritten at the end
    record["files"], record["rows"], record["seconds"] = {}, {}, {}
    for name in datasets:
        t = time.time()
        part = os.path.join(out, f".{name}.part")
        shutil.rmtree(part, ignore_errors=True)
        os.makedirs(part)
        meta, rows_by_split = BUILDERS[name](part, args.size, args.seed)
        meta.update({"version": VERSION, "seed": args.seed, "captions_per_image": CAPTIONS_PER_IMAGE,
                     "caption_separator": CAPTION_SEP})
        write_file(os.path.join(part, "dataset.json"), json.dumps(meta, indent=1, sort_keys=True) + "\n")
        final = os.path.join(out, name)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(part, final)
        record["files"][name] = {f: sha256_file(os.path.join(final, f)) for f in dataset_files(final)}
        record["rows"][name] = {s: len(r) for s, r in rows_by_split.items()}
        record["seconds"][name] = round(time.time() - t, 2)
        print(f"make_image_corpus: {name}: " + ", ".join(f"{s} {len(r)}" for s, r in rows_by_split.items())
              + f" ({record['seconds'][name]} s)")
    record["generation_seconds"] = round(time.time() - t0, 2)
    tmp = os.path.join(out, "corpus.json.part")
    write_file(tmp, json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, os.path.join(out, "corpus.json"))
    print(f"make_image_corpus: wrote {out} in {record['generation_seconds']} s")


if __name__ == "__main__":
    main()
