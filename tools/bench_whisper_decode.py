"""Whisper tiny.en transcription speed, greedy: ours vs CTranslate2 vs PyTorch (Hugging Face
WhisperForConditionalGeneration), on the same clips and the same weights (issue 21).

Two numbers per side, each clip alone (batch 1, one 30 s window: audio zero-padded to 30 s):
  tokens/s  greedy decoding alone: decoder steps (tokens + the <|endoftext|> step) over the time
            from the encoder output to the finished hypothesis (prompt fed, KV cache, suppression);
  RTF       real-time factor: the wall time of the whole transcription (read the file, log-mel,
            encoder, greedy decoding, detokenize) over the audio's duration; the model is loaded
            before the timer, there is no warm-up clip (a process transcribing these files).
Sides (each its own process, 2 threads):
  ours   examples/transcribe --beam 1 --batch 1 (RTF: its "X s of audio in Y s" line) and
         examples/whisper_parity --no-margins --batch 1 (tokens/s: whisper_greedy timed per clip);
         OMP_NUM_THREADS=2.
  ct2    ctranslate2.models.Whisper(model.bin folder, compute_type float32, intra_threads 2,
         inter_threads 1): encode(mel) then generate(encoder output, [prompt], beam_size 1) with
         generate()'s defaults (suppress_blank, config.json's suppress_ids, max_length 448).
  torch  transformers WhisperForConditionalGeneration with the weights read from the same model.bin
         (tools/bench_whisper_torch.py's parser and name map, plus the decoder's, as
         models/whisper_decoder.cpp's read_whisper_decoder_ctranslate2 splits it; proj_out tied to
         embed_tokens), torch.set_num_threads(2), eval, no_grad: model.model.encoder(mel), then
         transformers' generate (GenerationMixin: greedy, KV cache) from that encoder output with
         decoder_input_ids = the prompt, suppress_tokens = config.json's suppress_ids,
         begin_suppress_tokens = [220, 50256], eos 50256, max_new_tokens 224.
  Log-mel for both Python sides: transformers' WhisperFeatureExtractor (numpy), padding to 30 s.
Every side's tokens are hashed; the report says whether all sides produced the same tokens.

The driver alternates the sides round after round (ours, CTranslate2, PyTorch, ours, ...) and
prints each round and the medians:

    python3 tools/bench_whisper_decode.py --rounds 3 --limit 8 \\
        .cache/speech/small/{intent,kws,retrieval}_test.tsv
"""
import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whisper_parity as wp  # noqa: E402  (read_manifest, read_wav)

ROOT = wp.ROOT
MODEL_DIR = wp.DEFAULT_MODEL
VENV_CT2 = os.path.join(ROOT, ".cache/venv-ct2/bin/python")
VENV_HF = os.path.join(ROOT, ".cache/venv-hf/bin/python")


def token_hash(seqs):
    return hashlib.sha1(json.dumps(seqs).encode()).hexdigest()[:12]


def result(side, audio_s, total_s, steps, decode_s, seqs, extra=""):
    print("RESULT " + json.dumps({"side": side, "audio_s": audio_s, "total_s": total_s, "rtf": total_s / audio_s,
                                  "steps": steps, "decode_s": decode_s, "tokens_per_s": steps / decode_s,
                                  "tokens": token_hash(seqs), "info": extra}), flush=True)


# ---------------------------------------------------------------- CTranslate2
def side_ct2(a, files):
    import ctranslate2
    import numpy as np
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor

    model = ctranslate2.models.Whisper(a.model, device="cpu", compute_type="float32", inter_threads=1,
                                       intra_threads=a.threads)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    prompt = [tok.token_to_id("<|startoftranscript|>"), tok.token_to_id("<|notimestamps|>")]
    fe = WhisperFeatureExtractor(feature_size=model.n_mels)
    audio_s = total = decode = 0.0
    steps, seqs = 0, []
    for f in files:
        t0 = time.perf_counter()
        audio = wp.read_wav(f)
        mel = fe(audio, sampling_rate=16000, padding="max_length", return_tensors="np")["input_features"]
        enc = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.astype(np.float32))))
        t1 = time.perf_counter()
        res = model.generate(enc, [prompt], beam_size=1)[0]
        t2 = time.perf_counter()
        ids = res.sequences_ids[0]
        _ = tok.decode(ids).strip()
        total += time.perf_counter() - t0
        decode += t2 - t1
        audio_s += len(audio) / 16000
        steps += len(ids) + (len(ids) < 224)
        seqs.append(list(ids))
    result("ct2", audio_s, total, steps, decode, seqs, f"ctranslate2 {ctranslate2.__version__}")


# ---------------------------------------------------------------- PyTorch
def hf_decoder_state(ct):
    """CTranslate2 decoder/* -> Hugging Face WhisperDecoder names (read_whisper_decoder_ctranslate2's map)."""
    block = {
        "self_attention/layer_norm/gamma": "self_attn_layer_norm.weight",
        "self_attention/layer_norm/beta": "self_attn_layer_norm.bias",
        "self_attention/linear_1/weight": "self_attn.out_proj.weight",
        "self_attention/linear_1/bias": "self_attn.out_proj.bias",
        "attention/layer_norm/gamma": "encoder_attn_layer_norm.weight",
        "attention/layer_norm/beta": "encoder_attn_layer_norm.bias",
        "attention/linear_0/weight": "encoder_attn.q_proj.weight",
        "attention/linear_0/bias": "encoder_attn.q_proj.bias",
        "attention/linear_2/weight": "encoder_attn.out_proj.weight",
        "attention/linear_2/bias": "encoder_attn.out_proj.bias",
        "ffn/layer_norm/gamma": "final_layer_norm.weight",
        "ffn/layer_norm/beta": "final_layer_norm.bias",
        "ffn/linear_0/weight": "fc1.weight",
        "ffn/linear_0/bias": "fc1.bias",
        "ffn/linear_1/weight": "fc2.weight",
        "ffn/linear_1/bias": "fc2.bias",
    }
    st = {
        "embed_tokens.weight": ct["decoder/embeddings/weight"],
        "embed_positions.weight": ct["decoder/position_encodings/encodings"],
        "layer_norm.weight": ct["decoder/layer_norm/gamma"], "layer_norm.bias": ct["decoder/layer_norm/beta"],
    }
    n_layers = 0
    while f"decoder/layer_{n_layers}/ffn/linear_0/weight" in ct:
        n_layers += 1
    d = st["embed_tokens.weight"].shape[1]
    fused = {"self_attention/linear_0": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
             "attention/linear_1": ["encoder_attn.k_proj", "encoder_attn.v_proj"]}
    for i in range(n_layers):
        c, h = f"decoder/layer_{i}/", f"layers.{i}."
        for src, dst in block.items():
            st[h + dst] = ct[c + src]
        for name, parts in fused.items():
            w, b = ct[c + name + "/weight"], ct[c + name + "/bias"]
            assert w.shape == (len(parts) * d, d), (name, w.shape)
            for p, part in enumerate(parts):
                st[h + part + ".weight"] = w[p * d:(p + 1) * d]
                if part.endswith("k_proj"):
                    assert not b[p * d:(p + 1) * d].any(), "nonzero key bias"
                else:
                    st[h + part + ".bias"] = b[p * d:(p + 1) * d]
    heads = int(ct["decoder/num_heads"]) if "decoder/num_heads" in ct else 6
    return st, dict(vocab_size=st["embed_tokens.weight"].shape[0], decoder_layers=n_layers,
                    decoder_attention_heads=heads, decoder_ffn_dim=st["layers.0.fc1.weight"].shape[0],
                    max_target_positions=st["embed_positions.weight"].shape[0])


def build_torch(model_dir):
    import numpy as np
    import torch
    from bench_whisper_torch import hf_encoder_state, read_ct2
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    spec, ct = read_ct2(os.path.join(model_dir, "model.bin"))
    assert spec == "WhisperSpec", spec
    enc, enc_sizes = hf_encoder_state(ct)
    dec, dec_sizes = hf_decoder_state(ct)
    del ct
    cfg = WhisperConfig(**enc_sizes, **dec_sizes, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                        encoder_layerdrop=0.0, decoder_layerdrop=0.0, activation_function="gelu",
                        tie_word_embeddings=True, decoder_start_token_id=50257, eos_token_id=50256,
                        pad_token_id=50256, bos_token_id=50257)
    model = WhisperForConditionalGeneration(cfg)
    state = {f"model.encoder.{k}": v for k, v in enc.items()}
    state.update({f"model.decoder.{k}": v for k, v in dec.items()})
    state["proj_out.weight"] = dec["embed_tokens.weight"]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    assert not unexpected and set(missing) <= {"proj_out.weight"}, (missing, unexpected)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr() or \
        torch.equal(model.proj_out.weight, model.model.decoder.embed_tokens.weight)
    return model.eval()


def side_torch(a, files):
    import torch
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor
    from transformers.generation.utils import GenerationMixin
    from transformers.modeling_outputs import BaseModelOutput

    torch.set_num_threads(a.threads)
    model = build_torch(a.model)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    prompt = torch.tensor([[tok.token_to_id("<|startoftranscript|>"), tok.token_to_id("<|notimestamps|>")]])
    fe = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    audio_s = total = decode = 0.0
    steps, seqs = 0, []
    with torch.no_grad():
        for f in files:
            t0 = time.perf_counter()
            audio = wp.read_wav(f)
            mel = fe(audio, sampling_rate=16000, padding="max_length", return_tensors="pt")["input_features"]
            memory = model.model.encoder(mel).last_hidden_state
            t1 = time.perf_counter()
            out = GenerationMixin.generate(
                model, encoder_outputs=BaseModelOutput(last_hidden_state=memory), decoder_input_ids=prompt,
                do_sample=False, num_beams=1, max_new_tokens=224, suppress_tokens=cfg["suppress_ids"],
                begin_suppress_tokens=cfg["suppress_ids_begin"], eos_token_id=eot, pad_token_id=eot)
            t2 = time.perf_counter()
            ids = [int(t) for t in out[0, prompt.shape[1]:]]
            if ids and ids[-1] == eot:
                ids = ids[:-1]
            _ = tok.decode(ids).strip()
            total += time.perf_counter() - t0
            decode += t2 - t1
            audio_s += len(audio) / 16000
            steps += len(ids) + (len(ids) < 224)
            seqs.append(ids)
    result("torch", audio_s, total, steps, decode, seqs,
           f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, "
           f"{torch.get_num_threads()} threads")


# ---------------------------------------------------------------- ours
def side_ours(a, files, manifests):
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    p = subprocess.run([a.transcribe, "--beam", "1", "--batch", "1", "--model", a.model] + files, env=env,
                       capture_output=True, text=True, check=True)
    m = re.search(r"([\d.]+) s of audio in ([\d.]+) s", p.stderr)
    audio_s, total = float(m.group(1)), float(m.group(2))
    out = os.path.join(a.workdir, "ours_decode.jsonl")
    p = subprocess.run([a.parity, "--no-margins", "--batch", "1", "--model", a.model, "--limit", str(a.limit),
                        "--out", out] + manifests, env=env, capture_output=True, text=True, check=True)
    m = re.search(r"decode ([\d.]+) s \((\d+) decoder steps.*RTF ([\d.]+)", p.stderr)
    decode, steps, parity_rtf = float(m.group(1)), int(m.group(2)), float(m.group(3))
    seqs = [json.loads(line)["tokens"] for line in open(out, encoding="utf-8")]
    result("ours", audio_s, total, steps, decode, seqs,
           f"whisper_parity's RTF (mel + encode + decode) {parity_rtf:.4f}")


# ---------------------------------------------------------------- driver
def run_side(a, side, manifests):
    cmd = {"ours": [sys.executable], "ct2": [VENV_CT2], "torch": [VENV_HF]}[side]
    cmd += [os.path.abspath(__file__), "--side", side, "--limit", str(a.limit), "--threads", str(a.threads),
            "--model", a.model, "--transcribe", a.transcribe, "--parity", a.parity, "--workdir", a.workdir] + manifests
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        sys.exit(f"bench_whisper_decode: side {side} failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(lines[-1][len("RESULT "):])


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifests", nargs="+", help="corpus manifests; the first --limit rows of each")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sides", default="ours,ct2,torch")
    ap.add_argument("--side", choices=["ours", "ct2", "torch"], help="(internal) run one side in this process")
    ap.add_argument("--model", default=os.environ.get("CW_WHISPER_DIR", MODEL_DIR))
    ap.add_argument("--transcribe", default=os.path.join(ROOT, "build/examples/transcribe"))
    ap.add_argument("--parity", default=os.path.join(ROOT, "build/examples/whisper_parity"))
    ap.add_argument("--workdir", default="/tmp/bench_whisper_decode")
    a = ap.parse_intermixed_args()
    os.makedirs(a.workdir, exist_ok=True)
    manifests = [os.path.abspath(m) for m in a.manifests]
    files = [r["audio"] for m in manifests for r in wp.read_manifest(m, a.limit)]
    if a.side:
        {"ours": lambda: side_ours(a, files, manifests), "ct2": lambda: side_ct2(a, files),
         "torch": lambda: side_torch(a, files)}[a.side]()
        return
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"bench_whisper_decode: {len(files)} clips ({a.limit} per manifest), {a.threads} threads, CPU '{cpu}', "
          f"{os.cpu_count()} logical CPUs; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}",
          flush=True)
    sides = a.sides.split(",")
    runs = {s: [] for s in sides}
    for r in range(a.rounds):
        for s in sides:
            la = loadavg()
            res = run_side(a, s, manifests)
            runs[s].append(res)
            print(f"round {r + 1} {s:5}: RTF {res['rtf']:.4f} "
                  f"({res['audio_s']:.1f} s audio in {res['total_s']:.2f} s), "
                  f"{res['steps']} steps in {res['decode_s']:.2f} s = {res['tokens_per_s']:.1f} tokens/s, "
                  f"tokens {res['tokens']}, load {la}; {res['info']}", flush=True)
    print("medians over rounds:")
    for s in sides:
        print(f"  {s:5}: RTF {statistics.median(x['rtf'] for x in runs[s]):.4f}, "
              f"{statistics.median(x['tokens_per_s'] for x in runs[s]):.1f} tokens/s")
    if "ours" in sides:
        for s in sides:
            if s != "ours":
                rr = [runs[s][i]["rtf"] / runs["ours"][i]["rtf"] for i in range(a.rounds)]
                tr = [runs["ours"][i]["tokens_per_s"] / runs[s][i]["tokens_per_s"] for i in range(a.rounds)]
                print(f"  per round, {s} RTF / ours RTF: " + " ".join(f"{x:.2f}" for x in rr) +
                      f"; ours tokens/s / {s} tokens/s: " + " ".join(f"{x:.2f}" for x in tr))
    hashes = {x["tokens"] for s in sides for x in runs[s]}
    print(f"tokens: {'the same on every side and round' if len(hashes) == 1 else 'DIFFER: ' + str(sorted(hashes))}")


if __name__ == "__main__":
    main()
