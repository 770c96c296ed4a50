"""Makes tests/fixtures/bert_variants/ and tests/fixtures/bert_variants_reference.safetensors: tiny
randomly initialised BERT models saved the ways the ecosystem saves them, and the sentence
embeddings sentence-transformers computes for each, for checking models::SentenceEncoder::load
against the reference library on every variant. Also tests/fixtures/torch_checkpoint_views.bin (+
its .safetensors of expected values): a torch.save'd state dict of several dtypes and of views
(transposed, offset, shared storage, expanded), for data/torch_checkpoint.h.

Variants (one folder each; the same tiny config, vocab.txt, tokenizer files):
  cls_normalize   BertModel with pooler, model.safetensors, BertModel names; modules.json
                  Transformer + Pooling (cls) + Normalize
  max_prefix      BertForMaskedLM (no pooler, "bert." prefix, "cls.predictions.*" head),
                  model.safetensors; Pooling (max), no Normalize
  cls_mean_bin    BertModel without pooler, pytorch_model.bin only; Pooling (cls + mean, so
                  concatenated), Normalize
  plain_hf_bin    BertForPreTraining ("bert." prefix, pooler, heads), pytorch_model.bin only, no
                  modules.json: sentence-transformers' default for a plain HF folder (mean, no
                  normalization)
The reference file holds <variant>.embeddings (N, D) f32 from SentenceTransformer.encode, and the
sentences (JSON) in its __metadata__.

Reference stack: PyTorch 1.13 (Debian python3-torch, float32, CPU, one thread), transformers
4.40.2, sentence-transformers 2.7.0, safetensors 0.4.3 (the venv of tools/make_minilm_fixture.py,
plus `pip install --no-deps sentence-transformers==2.7.0`). Nothing is downloaded. Run from the
repository root:
    .cache/venv-hf/bin/python tools/make_bert_variants_fixture.py
"""

import json
import os
import shutil
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch
    import transformers
    import sentence_transformers
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, BertModel, BertTokenizer
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"make_bert_variants_fixture: {e}; see the docstring for the environment")

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIXTURES, "bert_variants")

WORDS = ["a", "man", "plays", "the", "guitar", "someone", "an", "instrument", "dog", "runs", "in", "park",
         "cat", "sleeps", "on", "sofa", "is", "play", "##ing", "##s", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
SENTENCES = ["A man plays the guitar.", "Someone is playing an instrument.", "The dog runs in the park.",
             "A cat sleeps.", "cat"]


def config():
    return BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=16, max_position_embeddings=16, type_vocab_size=2,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def common_files(folder, model):
    os.makedirs(folder, exist_ok=True)
    model.config.save_pretrained(folder)
    vocab = os.path.join(folder, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    BertTokenizer(vocab, do_lower_case=True).save_pretrained(folder)
    write_json(os.path.join(folder, "sentence_bert_config.json"), {"do_lower_case": False, "max_seq_length": 16})


def pipeline(folder, modes, normalize):
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    write_json(os.path.join(folder, "modules.json"), modules)
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    pooling = {"word_embedding_dimension": 8, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}
    for m in modes:
        pooling[f"pooling_mode_{m}"] = True
    write_json(os.path.join(folder, "1_Pooling", "config.json"), pooling)


def save_weights(folder, model, fmt):
    # HF's own writers: save_pretrained with safe_serialization picks model.safetensors, without it
    # pytorch_model.bin (torch.save of the state dict); only the weights file is kept.
    model.save_pretrained(folder, safe_serialization=(fmt == "safetensors"))


def views_fixture():
    torch.manual_seed(1)
    base = torch.randn(4, 6)
    tensors = {
        "f32": torch.randn(3, 5),
        "f64": torch.randn(2, 3, dtype=torch.float64),
        "f16": torch.randn(7).half(),
        "bf16": torch.randn(2, 2).bfloat16(),
        "i64": torch.arange(-3, 9).view(3, 4),
        "i32": torch.arange(5, dtype=torch.int32) - 2,
        "u8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "base": base,
        "transposed": base.t(),            # strides (1, 6), same storage as base
        "row_slice": base[1:3],            # storage offset 6
        "column_slice": base[:, 2:5:2],    # offset 2, strides (6, 2)
        "expanded": torch.randn(1, 3).expand(4, 3),  # stride 0
    }
    path = os.path.join(FIXTURES, "torch_checkpoint_views.bin")
    torch.save(tensors, path)
    expected = {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else
                    v.long() if v.dtype in (torch.int32, torch.uint8, torch.bool) else v).contiguous().clone()
                for k, v in tensors.items()}
    save_file(expected, os.path.join(FIXTURES, "torch_checkpoint_views.safetensors"),
              metadata={"torch": torch.__version__})


def main():
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    variants = [
        ("cls_normalize", lambda c: BertModel(c), "safetensors", ["cls_token"], True),
        ("max_prefix", lambda c: BertForMaskedLM(c), "safetensors", ["max_tokens"], False),
        ("cls_mean_bin", lambda c: BertModel(c, add_pooling_layer=False), "bin", ["cls_token", "mean_tokens"], True),
        ("plain_hf_bin", lambda c: BertForPreTraining(c), "bin", None, False),
    ]
    reference = {}
    for i, (name, build, fmt, modes, normalize) in enumerate(variants):
        torch.manual_seed(100 + i)
        model = build(config()).eval()
        with torch.no_grad():  # wider weights than the 0.02 init, so poolings differ visibly
            for p in model.parameters():
                p.normal_(0, 0.5)
        folder = os.path.join(OUT, name)
        common_files(folder, model)
        save_weights(folder, model, fmt)
        if modes is not None:
            pipeline(folder, modes, normalize)
        st = SentenceTransformer(folder, device="cpu")
        emb = st.encode(SENTENCES, convert_to_tensor=True, batch_size=3).float()
        reference[f"{name}.embeddings"] = emb.contiguous()
        print(f"{name}: {fmt}, modes {modes}, normalize {normalize}: embeddings {tuple(emb.shape)}; "
              f"{[str(m.__class__.__name__) for m in st]}")
    meta = {"sentences": json.dumps(SENTENCES), "torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__}
    save_file(reference, os.path.join(FIXTURES, "bert_variants_reference.safetensors"), metadata=meta)
    views_fixture()


if __name__ == "__main__":
    main()
