# Training captions for Fashion-MNIST and the scikit-learn digits from WordNet (Debian package
# wordnet-base, the files the speech corpus reads too): each class's synset gives synonyms, its
# gloss, hyponyms and hypernyms, framed by caption templates. No caption may contain a word of the
# class names that the zero-shot prompts use (make_image_corpus.py asserts it, and
# tests/data/image_corpus_test.py checks the written manifests again).
import os
import re

WORDNET_DIR = "/usr/share/wordnet"

# Class names as the zero-shot prompts say them (index = label), and the noun synset (byte offset
# in data.noun, WordNet 3.0) that describes each class, with a lemma that must be in it, so a
# different WordNet version fails loudly instead of describing the wrong thing.
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                   "bag", "ankle boot"]
FASHION_SYNSETS = [(3595614, "jersey"), (4489008, "trouser"), (4021028, "pullover"),
                   (3236735, "dress"), (3057021, "coat"), (4133789, "sandal"), (4197391, "shirt"),
                   (3472535, "sneaker"), (2773037, "bag"), (2872752, "boot")]
# Fashion-MNIST's own names, for the dataset card ("T-shirt/top", "Ankle boot").
FASHION_ORIGINAL = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                    "Sneaker", "Bag", "Ankle boot"]
# "top" is half of Fashion-MNIST's class 0 name: forbidden in captions too.
FASHION_EXTRA_FORBIDDEN = ["top", "tshirt"]

DIGIT_CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_SYNSETS = [(13742358, "nought"), (13742573, "ace"), (13743269, "deuce"), (13744044, "trio"),
                 (13744304, "tetrad"), (13744521, "quintet"), (13744722, "sextet"),
                 (13744916, "septet"), (13745086, "octet"), (13745270, "niner")]

# Caption frames. They differ from the zero-shot prompt templates (dataset.json
# "prompt_templates"), so the text tower sees the prompts' framing only at test time.
FASHION_FRAMES = ["{np}", "{np}, seen from the front", "a small grayscale picture of {np}",
                  "{np} on a plain black background", "a centered view of {np}",
                  "a low-resolution scan of {np}", "{np}, in shades of gray"]
FASHION_KIND_FRAMES = ["{np}, a kind of {hyper}", "a type of {hyper}: {np_bare}"]
DIGIT_FRAMES = ["a handwritten {np}", "{np}, written by hand", "a scanned handwritten numeral: {np}",
                "a tiny blurry {np} drawn with a pen", "the figure {np}, as someone wrote it",
                "a pixelated handwritten {np}"]
DIGIT_ROMAN_FRAMES = ["the numeral {np} written in ordinary handwriting",
                      "a handwritten digit whose roman numeral is {np}"]

_WORD = re.compile(r"[a-z0-9]+")
_QUOTED = re.compile(r'"[^"]*"')
_ROMAN = re.compile(r"^[IVX]+$")


def forbidden_words(class_names, extra=()):
    """Lower-case words of the class names (length >= 2) and the extra words."""
    words = set(extra)
    for name in class_names:
        for w in _WORD.findall(name.lower()):
            if len(w) >= 2:
                words.add(w)
    return sorted(words)


def leaks(text, forbidden, no_digits=False):
    """The forbidden word a caption contains, or None. A caption word matches a forbidden word f
    when it equals f or its plural (f + s, f + es), or, for f of 4 letters or more, contains f
    (overcoat, sweatshirt, fivesome, ...): over-removal is safe, a leak is not."""
    for w in _WORD.findall(text.lower()):
        if no_digits and any(ch.isdigit() for ch in w):
            return w
        for f in forbidden:
            if w in (f, f + "s", f + "es") or (len(f) >= 4 and f in w):
                return f
    return None


class WordNet:
    """Random access to noun synsets of data.noun by byte offset (WordNet's synset id)."""

    def __init__(self, directory=WORDNET_DIR):
        self.path = os.path.join(directory, "data.noun")
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{self.path} missing: install wordnet-base (tools/setup.sh)")
        self._f = open(self.path, "rb")

    def synset(self, offset):
        self._f.seek(offset)
        line = self._f.readline().decode("latin-1")
        fields = line.split(" ")
        if int(fields[0]) != offset:
            raise ValueError(f"{self.path}: no synset at offset {offset}")
        n_words = int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        # Adjective markers like "(a)" are not part of noun lemmas; drop lex ids.
        k = 4 + 2 * n_words
        n_ptrs = int(fields[k])
        ptrs = []
        for i in range(n_ptrs):
            sym, off, pos = fields[k + 1 + 4 * i], int(fields[k + 2 + 4 * i]), fields[k + 3 + 4 * i]
            if pos == "n":
                ptrs.append((sym, off))
        gloss = line.split("|", 1)[1].strip()
        definition = _QUOTED.sub("", gloss).split(";")[0].strip()
        return {"offset": offset, "lemmas": lemmas, "ptrs": ptrs, "definition": definition}

    def close(self):
        self._f.close()


def article(np):
    return ("an " if np[0].lower() in "aeiou" else "a ") + np


def _material(wn, offset, must_have):
    """Synonyms, hyponym lemmas, hypernym lemmas (two levels) and the gloss of one class."""
    s = wn.synset(offset)
    if must_have not in s["lemmas"]:
        raise ValueError(f"WordNet synset {offset} is {s['lemmas']}, expected one with "
                         f"'{must_have}': not the WordNet 3.0 of wordnet-base?")
    nouns = list(s["lemmas"])
    for sym, off in s["ptrs"]:
        if sym == "~":  # hyponyms: kinds of this thing
            nouns += wn.synset(off)["lemmas"]
    hypers = []
    for sym, off in s["ptrs"]:
        if sym == "@":
            h = wn.synset(off)
            hypers += h["lemmas"]
            for sym2, off2 in h["ptrs"]:
                if sym2 == "@":
                    hypers += wn.synset(off2)["lemmas"]
    return {"own": list(s["lemmas"]), "nouns": nouns, "hypers": hypers,
            "definition": s["definition"]}


def _dedupe(xs):
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def class_captions(kind, min_per_class=3):
    """Per-class caption lists for "fashion_mnist" or "digits", plus the forbidden words.
    Words that describe more than one class (e.g. "shoe" for sandal and sneaker) are dropped
    from all of them, so a caption points at one class only."""
    if kind == "fashion_mnist":
        classes, synsets = FASHION_CLASSES, FASHION_SYNSETS
        forbidden = forbidden_words(classes, FASHION_EXTRA_FORBIDDEN)
        no_digits = False
    elif kind == "digits":
        classes, synsets = DIGIT_CLASSES, DIGIT_SYNSETS
        forbidden = forbidden_words(classes)
        no_digits = True
    else:
        raise ValueError(kind)
    wn = WordNet()
    try:
        mats = [_material(wn, off, lemma) for off, lemma in synsets]
    finally:
        wn.close()

    def ok(text):
        return leaks(text, forbidden, no_digits) is None

    # A noun shared between classes says nothing about which class: drop it everywhere, except
    # that a synonym of a class's own synset stays with that class (jersey is the T-shirt's
    # synonym and also a kind of shirt: it stays a T-shirt word only).
    own = {}
    for c, m in enumerate(mats):
        for w in m["own"]:
            own.setdefault(w.lower(), set()).add(c)
    owners = {}
    for c, m in enumerate(mats):
        for w in set(m["nouns"] + m["hypers"]):
            owners.setdefault(w.lower(), set()).add(c)

    def usable(w, c):
        w = w.lower()
        if len(own.get(w, ())) == 1:
            return c in own[w]
        return len(owners[w]) == 1

    out = []
    for c, m in enumerate(mats):
        nouns = _dedupe(n for n in m["nouns"] if ok(n) and usable(n, c))
        hypers = _dedupe(h for h in m["hypers"] if ok(h) and usable(h, c))
        caps = []
        if kind == "fashion_mnist":
            for n in nouns:
                np = article(n)
                caps += [f.format(np=np) for f in FASHION_FRAMES]
                for h in hypers[:2]:
                    caps += [f.format(np=np, np_bare=n, hyper=h) for f in FASHION_KIND_FRAMES]
            if ok(m["definition"]):
                caps += [m["definition"], m["definition"] + ", shown in grayscale"]
        else:
            for n in nouns:
                frames = DIGIT_ROMAN_FRAMES if _ROMAN.match(n) else DIGIT_FRAMES
                caps += [f.format(np=n) for f in frames]
            if ok(m["definition"]):
                caps += ["a handwritten picture of " + m["definition"]]
        caps = _dedupe(caps)
        for cap in caps:  # the rule, asserted on every caption that can be written
            bad = leaks(cap, forbidden, no_digits)
            assert bad is None, f"caption '{cap}' of class {classes[c]} contains '{bad}'"
            assert "|" not in cap and "\t" not in cap
        if len(caps) < min_per_class:
            raise ValueError(f"{kind}: class {classes[c]} has only {len(caps)} leak-free captions")
        out.append(caps)
    return classes, out, forbidden
