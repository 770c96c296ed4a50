# Text sources of the speech corpus: WordNet glosses and example sentences, short fortunes,
# generic command-like utterances from templates (training text), and the transcripts of the
# real recordings (asterisk prompts, pocketsphinx test data), all cleaned to plain ASCII.
import gzip
import os
import re

WORDNET_DIR = "/usr/share/wordnet"
FORTUNE_DIR = "/usr/share/games/fortunes"
ASTERISK_TXT = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
ASTERISK_WAV_DIR = "/usr/share/asterisk/sounds/en_US_f_Allison"
POCKETSPHINX_DIR = "/usr/share/pocketsphinx/test/data"

# Fortune collections read as everyday sentences; the topical ones (politics, ethnic, drugs,
# men-women, ...) and the code- or art-heavy ones (perl, ascii-art, ...) are left out.
FORTUNE_FILES = ["fortunes", "wisdom", "literature", "people", "science", "platitudes", "work",
                 "education", "food", "pets", "humorists", "love", "magic", "medicine",
                 "miscellaneous", "riddles", "songs-poems", "sports", "kids", "computers"]

MIN_WORDS, MAX_WORDS = 3, 16  # 16 words at the slowest rate still fit in 8 s
_ALLOWED = re.compile(r"^[A-Za-z0-9 .,?!';:\-]+$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_LOWER = re.compile(r"[a-z]")
_QUOTED = re.compile(r'"([^"]+)"')


def normalize(text):
    """Comparison key: lower case, letters and digits only, single spaces (for disjointness)."""
    return " ".join(_NOT_ALNUM.sub(" ", text.lower()).split())


def clean_sentence(text):
    """Plain ASCII sentence of MIN_WORDS..MAX_WORDS words, or None if it does not qualify."""
    text = " ".join(text.replace("`", "'").split())
    text = text.strip(" ;:-")
    if not text or not _ALLOWED.match(text) or "--" in text:
        return None
    n = len(text.split())
    if n < MIN_WORDS or n > MAX_WORDS:
        return None
    if not _LOWER.search(text):  # all caps or digits only: read oddly
        return None
    return text


def wordnet_sentences():
    """Example sentences (quoted) and glosses (definitions) of every synset, cleaned."""
    out = []
    for part in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(WORDNET_DIR, "data." + part), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:  # licence header lines
                    continue
                gloss = line.split("|", 1)[1].strip()
                examples = _QUOTED.findall(gloss)
                definition = gloss.split(";")[0].split('"')[0]
                for ex in examples:
                    s = clean_sentence(ex)
                    if s:
                        out.append(s)
                s = clean_sentence(definition)
                if s:
                    out.append(s)
    return out


def fortune_sentences():
    """Short fortunes (one paragraph, no attribution line), cleaned."""
    out = []
    for name in FORTUNE_FILES:
        path = os.path.join(FORTUNE_DIR, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="latin-1") as f:
            chunks = f.read().split("\n%\n")
        for chunk in chunks:
            lines = [ln.strip() for ln in chunk.strip().split("\n")]
            lines = [ln for ln in lines if ln and not ln.startswith("--")]
            if not lines or len(lines) > 3:
                continue
            s = clean_sentence(" ".join(lines))
            if s:
                out.append(s)
    return out


# Generic imperative phrases for training: everyday requests built from verb-object pairs.
# They share vocabulary with assistant commands but none of the intent test templates.
_COMMAND_PAIRS = {
    "open": ["the front door", "the window", "the attachment", "the garage", "a new tab",
             "the spreadsheet", "the curtains", "the box"],
    "close": ["the back door", "all the windows", "the browser", "the gate", "the drawer",
              "the lid"],
    "check": ["the tire pressure", "the oil level", "the mailbox", "the oven", "my spelling",
              "the battery", "the baby monitor"],
    "find": ["my keys", "my glasses", "the remote control", "a parking spot", "the charger",
             "the nearest pharmacy", "the receipt"],
    "show": ["the photos from last summer", "the map", "the next slide", "the report",
             "my steps for today", "the menu"],
    "save": ["this document", "the draft", "the picture", "my progress", "the file"],
    "print": ["two copies", "the boarding pass", "the second page", "the invoice"],
    "water": ["the plants", "the garden", "the tomatoes", "the lawn"],
    "feed": ["the cat", "the dog", "the fish", "the chickens"],
    "clean": ["the table", "the windows", "the fridge", "the car", "the bathroom sink"],
    "lock": ["the car", "the shed", "the screen", "the back gate"],
    "wash": ["the dishes", "the towels", "my hands", "the vegetables"],
    "pack": ["the suitcase", "my lunch", "the camping gear", "the boxes"],
    "fix": ["the leaking tap", "the bike chain", "the broken chair", "the typo"],
    "move": ["the meeting notes to the folder", "the chair over there", "the car forward",
             "this file to the desktop"],
    "read": ["the instructions carefully", "the first chapter", "the label", "the manual"],
    "charge": ["my phone", "the laptop", "the electric car", "the headphones"],
    "copy": ["this paragraph", "the address", "the link", "these notes"],
    "delete": ["the old files", "this photo", "the duplicate entries", "that draft"],
    "sort": ["the laundry", "the papers by date", "the list alphabetically", "the recycling"],
}
_COMMAND_PREFIXES = ["", "please ", "could you ", "go ahead and ", "now ", "quickly ",
                     "remember to ", "don't forget to "]
_COMMAND_SUFFIXES = ["", " please", " for me", " right away", " again", " before dinner",
                     " when you have a minute", " after lunch", " later today", " first"]


def command_sentences():
    """Every combination of prefix, verb-object pair and suffix, in a fixed order."""
    out = []
    for verb in sorted(_COMMAND_PAIRS):
        for obj in _COMMAND_PAIRS[verb]:
            for pre in _COMMAND_PREFIXES:
                for suf in _COMMAND_SUFFIXES:
                    out.append(f"{pre}{verb} {obj}{suf}")
    return out


def asterisk_prompts():
    """(name, transcript, wav path) of every asterisk prompt that has a wav and a spoken text."""
    out = []
    with gzip.open(ASTERISK_TXT, "rt", encoding="latin-1") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";") or ": " not in line:
                continue
            name, text = line.split(": ", 1)
            wav = os.path.join(ASTERISK_WAV_DIR, name + ".wav")
            if "[" in text or not os.path.isfile(wav):
                continue
            text = " ".join(text.replace("...", " ").replace("`", "'").split())
            if not text or not all(ord(c) < 128 and c not in "\t\r\n" for c in text):
                continue
            out.append((name, text, wav))
    return sorted(out)


def pocketsphinx_utterances():
    """(name, transcript, wav path) of the pocketsphinx test recordings with transcripts."""
    out = []
    for sub, listing in (("cards", "cards.transcription"), ("librivox", "transcription")):
        path = os.path.join(POCKETSPHINX_DIR, sub, listing)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="latin-1") as f:
            for line in f:
                m = re.match(r"^<s>(.*)</s>\s*\((\S+)\)\s*$", line.strip())
                if not m:
                    continue
                wav = os.path.join(POCKETSPHINX_DIR, sub, m.group(2) + ".wav")
                if os.path.isfile(wav):
                    out.append((f"{sub}/{m.group(2)}", " ".join(m.group(1).split()), wav))
    return sorted(out)
