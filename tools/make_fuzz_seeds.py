#!/usr/bin/python3
# Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): a few small, valid
# inputs per reader, so that libFuzzer starts from the real formats instead of from nothing.
# Standard library only (plus sox for a FLAC seed, skipped when missing); deterministic.
#
#   tools/make_fuzz_seeds.py            (rewrites tests/fuzz/corpus/)
import gzip
import io
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import wave
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fuzz", "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def wav_bytes(rate, samples, width=2, channels=1):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        scale = (1 << (8 * width - 1)) - 1
        frames = b"".join(
            (int(s * scale) + (128 if width == 1 else 0)).to_bytes(width, "little", signed=width > 1) * channels
            for s in samples)
        w.writeframes(frames)
    return buf.getvalue()


def tone(n, rate, hz=440.0):
    return [0.5 * math.sin(2 * math.pi * hz * i / rate) for i in range(n)]


def audio():
    put("audio", "pcm16_16k.wav", wav_bytes(16000, tone(160, 16000)))
    put("audio", "pcm16_44k_stereo.wav", wav_bytes(44100, tone(64, 44100), channels=2))
    put("audio", "pcm8_8k.wav", wav_bytes(8000, tone(80, 8000), width=1))
    put("audio", "one_sample_48k.wav", wav_bytes(48000, [0.25]))
    if shutil.which("sox"):
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "a.wav"), os.path.join(d, "a.flac")
            with open(src, "wb") as f:
                f.write(wav_bytes(16000, tone(320, 16000)))
            subprocess.run(["sox", src, dst], check=True)
            with open(dst, "rb") as f:
                put("audio", "pcm16_16k.flac", f.read())


def idx_bytes(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">i", d) for d in dims) + bytes(data)


def idx():
    images = idx_bytes([2, 3, 4], range(24))
    labels = idx_bytes([2], [1, 0])
    put("idx", "images.idx", images)
    put("idx", "labels.idx", labels)
    put("idx", "images.idx.gz", gzip.compress(images, mtime=0))
    put("idx", "rgb.idx", idx_bytes([1, 2, 2, 3], range(12)))


def manifest():
    header = "id\taudio\ttranscript\tvoice\tduration\tsplit\tlabel\n"
    rows = ("utt_000001\taudio/train/utt_000001.wav\tturn the lights off\tespeak:en-us+f3\t1.834\ttrain\t\n"
            "utt_000002\taudio/test/utt_000002.wav\twake me up at seven\tasterisk-human\t2.5\tintent_test\talarm_set\n")
    put("manifest", "train.tsv", (header + rows).encode())
    put("manifest", "crlf.tsv", (header + rows).replace("\n", "\r\n").encode())
    put("manifest", "intents.tsv", b"label\tscenario\tname\tdescription\nalarm_set\talarm\tset\tset an alarm\n")


def tokenizer():
    vocab = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "turn", "the", "lights", "off", "##s",
                       "light", "in", "kitchen", ",", "please", "!"]) + "\n"
    config = json.dumps({"do_lower_case": True, "model_max_length": 16, "tokenize_chinese_chars": True})
    # The target splits its input in halves: vocab.txt, then tokenizer_config.json.
    pad = config.ljust(len(vocab))
    put("tokenizer", "vocab_and_config", (vocab.ljust(len(pad)) + pad).encode())


def ct2_string(text):
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ctranslate2():
    """A version-6 model.bin (format in core/ctranslate2.h): an f32 matrix, an f16 vector, an int8
    weight with its scale, and an alias."""
    variables = [("encoder/conv1/weight", [2, 3], 0, struct.pack("<6f", *range(6))),
                 ("encoder/layer_norm/gamma", [4], 4, struct.pack("<4e", 1, 0.5, -2, 0)),
                 ("decoder/proj/weight", [2, 2], 1, struct.pack("<4b", 1, -2, 3, -4)),
                 ("decoder/proj/weight_scale", [2], 0, struct.pack("<2f", 0.5, 0.25))]
    out = struct.pack("<I", 6) + ct2_string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, dims, dtype, data in variables:
        out += ct2_string(name) + struct.pack("<B", len(dims)) + b"".join(struct.pack("<I", d) for d in dims)
        out += struct.pack("<BI", dtype, len(data)) + data
    out += struct.pack("<I", 1) + ct2_string("decoder/embeddings/weight") + ct2_string("decoder/proj/weight")
    put("ctranslate2", "model.bin", out)


def json_seeds():
    put("json", "config.json", json.dumps({"hidden_size": 384, "num_attention_heads": 12, "vocab": [1, 2.5, "x"],
                                           "nested": {"a": [{"b": None}], "c": True}, "step": 300}).encode())
    put("json", "array.json", b'[{"step": 1, "loss": 3.4}, [], "\\u00e9\\ud83d\\ude00"]')


def bpe():
    """The committed tiny tokenizer.json, then a sentence (the target splits its input in halves)."""
    with open(os.path.join(os.path.dirname(ROOT), "..", "fixtures", "bpe_tiny", "tokenizer.json"), "rb") as f:
        tokenizer = f.read()
    text = " Hello, world! It's 7 o'clock.".encode()
    put("bpe", "tiny_tokenizer", tokenizer + text.ljust(len(tokenizer), b" "))


def safetensors():
    shutil.copy(os.path.join(os.path.dirname(ROOT), "..", "fixtures", "safetensors_python.safetensors"),
                os.path.join(ROOT, "safetensors"))


def pickle_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def torch_checkpoint():
    """A PyTorch zip checkpoint written by hand (what torch.save writes for {"w": a (2, 3) f32
    tensor}: pickle protocol 2 opcodes, a stored zip), and the committed fixture of dtypes and
    views that torch 1.13 wrote (tests/fixtures/torch_checkpoint_views.bin)."""
    ordered_dict = b"ccollections\nOrderedDict\n"
    pkl = (b"\x80\x02" + ordered_dict + b"q\x00)Rq\x01" + pickle_str("w") +
           b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((" + pickle_str("storage") + b"ctorch\nFloatStorage\nq\x03" +
           pickle_str("0") + pickle_str("cpu") + b"K\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89" + ordered_dict +
           b")RtRq\x04s.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in (("archive/data.pkl", pkl), ("archive/byteorder", b"little"),
                           ("archive/data/0", struct.pack("<6f", 1, 2, 3, 4, 5, 6)), ("archive/version", b"3\n")):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: deterministic bytes
            z.writestr(info, data)
    put("torch_checkpoint", "one_tensor.bin", buf.getvalue())
    shutil.copy(os.path.join(os.path.dirname(ROOT), "..", "fixtures", "torch_checkpoint_views.bin"),
                os.path.join(ROOT, "torch_checkpoint"))


def tar_bytes(members, fmt):
    """A tar archive of (name, bytes or None for a folder, link target or None) in `fmt`, with fixed
    owners and times (deterministic bytes)."""
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                t.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar():
    """WebDataset shards as img2dataset and Python's tarfile write them (ustar, pax with long and
    non-ASCII names, GNU long names, a folder and a link, gzip'd), holding the JPEG fixtures."""
    import tarfile
    fixtures = os.path.join(os.path.dirname(ROOT), "..", "fixtures", "jpeg")
    jpg = {n: open(os.path.join(fixtures, n + ".jpg"), "rb").read() for n in ("rgb420", "gray", "rgb444_progressive")}
    sample = [("000000000.jpg", jpg["rgb420"], None), ("000000000.txt", b"a dog on a beach", None),
              ("000000000.json", b'{"caption": "a dog on a beach", "status": "success"}', None),
              ("000000001.jpg", jpg["gray"], None), ("000000001.txt", "caf\u00e9 \u6771\u4eac".encode(), None)]
    put("tar", "ustar.tar", tar_bytes(sample, tarfile.USTAR_FORMAT))
    deep = "d" * 120 + "/\u00e9t\u00e9/000000002"
    put("tar", "pax.tar", tar_bytes([(deep + ".jpg", jpg["rgb444_progressive"], None), (deep + ".txt", b"x", None)],
                                    tarfile.PAX_FORMAT))
    put("tar", "gnu.tar", tar_bytes([("shard/", None, None), ("shard/link.jpg", None, "000000000.jpg"),
                                     ("shard/" + "n" * 110 + ".jpg", jpg["gray"], None)], tarfile.GNU_FORMAT))
    put("tar", "shard.tar.gz", gzip.compress(tar_bytes(sample[:2], tarfile.USTAR_FORMAT), mtime=0))


if __name__ == "__main__":
    targets = ("audio", "idx", "manifest", "tokenizer", "ctranslate2", "safetensors", "json", "bpe", "torch_checkpoint",
               "tar")
    for target in targets:
        shutil.rmtree(os.path.join(ROOT, target), ignore_errors=True)
        os.makedirs(os.path.join(ROOT, target))
    ctranslate2()
    safetensors()
    json_seeds()
    bpe()
    torch_checkpoint()
    audio()
    idx()
    manifest()
    tokenizer()
    tar()
    for target in sorted(os.listdir(ROOT)):
        print(target, sorted(os.listdir(os.path.join(ROOT, target))))
