# Audio side of the speech corpus: the voice inventory (training vs held-out), synthesis with
# espeak-ng / flite / festival, SoX processing (speed perturbation, reverb, level, 16 kHz mono),
# noise mixing at a set SNR, and 16 kHz mono PCM16 WAV reading and atomic writing.
import array
import math
import os
import subprocess
import sys
import wave

RATE = 16000

# espeak-ng voices are dialect+variant. Held out of training: two whole dialects and a few
# variants, so a test voice is unseen either as an accent or as a speaker timbre.
ESPEAK_TRAIN_DIALECTS = ["en", "en-us", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
ESPEAK_TEST_DIALECTS = ["en-gb-scotland", "en-us-nyc"]
ESPEAK_TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt",
                         "klatt2", "Andy", "Annie", "belinda", "david", "edward", "john", "linda",
                         "max", "paul", "quincy", "robert", "steph"]
ESPEAK_TEST_VARIANTS = ["f5", "m7", "m8", "klatt3", "Alicia", "benjamin"]
FLITE_TRAIN = ["kal", "kal16", "awb", "slt"]
FLITE_TEST = ["rms"]
FESTIVAL_TRAIN = ["kal_diphone"]  # the only festival voice Debian 12 packages (festvox-kallpc16k)


class CorpusError(RuntimeError):
    pass


def voice_base(voice):
    """Speaker identity of a manifest voice string: engine and voice, without rate/pitch."""
    return ":".join(voice.split(":")[:2])


def train_voice_bases():
    out = [f"espeak:{d}+{v}" for d in ESPEAK_TRAIN_DIALECTS for v in ESPEAK_TRAIN_VARIANTS]
    out += [f"flite:{v}" for v in FLITE_TRAIN] + [f"festival:{v}" for v in FESTIVAL_TRAIN]
    return sorted(out)


def heldout_voice_bases():
    out = [f"espeak:{d}+{v}" for d in ESPEAK_TEST_DIALECTS
           for v in ESPEAK_TRAIN_VARIANTS + ESPEAK_TEST_VARIANTS]
    out += [f"espeak:{d}+{v}" for d in ESPEAK_TRAIN_DIALECTS for v in ESPEAK_TEST_VARIANTS]
    out += [f"flite:{v}" for v in FLITE_TEST]
    return sorted(out)


def pick_voice(rng, held_out):
    """A voice spec (engine, voice, rate/pitch controls) and its manifest name."""
    r = rng.random()
    if held_out:
        engine = "espeak" if r < 0.8 else "flite"
    else:
        engine = "espeak" if r < 0.75 else ("flite" if r < 0.95 else "festival")
    if engine == "espeak":
        if held_out:
            base = rng.choice([b for b in heldout_voice_bases() if b.startswith("espeak:")])
        else:
            base = f"espeak:{rng.choice(ESPEAK_TRAIN_DIALECTS)}+{rng.choice(ESPEAK_TRAIN_VARIANTS)}"
        speed = rng.choice([130, 145, 160, 175, 190])
        pitch = rng.choice([30, 40, 50, 60, 70])
        return {"engine": engine, "voice": base.split(":", 1)[1], "rate": speed, "pitch": pitch,
                "name": f"{base}:s{speed}:p{pitch}"}
    if engine == "flite":
        v = rng.choice(FLITE_TEST if held_out else FLITE_TRAIN)
        stretch = rng.choice([0.9, 1.0, 1.1])
        return {"engine": engine, "voice": v, "stretch": stretch,
                "name": f"flite:{v}:d{stretch:.2f}"}
    v = rng.choice(FESTIVAL_TRAIN)
    stretch = rng.choice([0.9, 1.0, 1.1])
    return {"engine": engine, "voice": v, "stretch": stretch, "name": f"festival:{v}:d{stretch:.2f}"}


def pick_augmentation(rng):
    """Speed perturbation (Kaldi-style 0.9/1.0/1.1), optional reverb, peak level, noise + SNR."""
    aug = {"speed": rng.choice([0.9, 1.0, 1.0, 1.1]),
           "reverb": rng.random() < 0.2,
           "peak_db": rng.choice([-1, -3, -6, -9])}
    r = rng.random()
    if r < 0.5:
        aug["noise"] = None
    else:
        aug["noise"] = rng.choice(["white", "pink"])
        aug["snr_db"] = 20 if r < 0.8 else 10
        aug["noise_offset"] = rng.randrange(0, 20 * RATE)
    return aug


def run(cmd, what, **kw):
    """subprocess.run with explicit args; a failure names the command and the file it made."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    except OSError as e:
        raise CorpusError(f"cannot run {cmd[0]} for {what}: {e}") from e
    if p.returncode != 0:
        raise CorpusError(f"command failed (exit {p.returncode}) for {what}: {' '.join(cmd)}\n"
                          f"{p.stderr.decode('utf-8', 'replace').strip()}")
    return p.stdout


def synthesize(voice, text, tmp_wav, what):
    """Writes the synthesizer's native-rate WAV of text to tmp_wav."""
    if voice["engine"] == "espeak":
        run(["espeak-ng", "-v", voice["voice"], "-s", str(voice["rate"]), "-p",
             str(voice["pitch"]), "-w", tmp_wav, text], what)
    elif voice["engine"] == "flite":
        run(["flite", "-voice", voice["voice"], "--setf", f"duration_stretch={voice['stretch']}",
             "-t", text, "-o", tmp_wav], what)
    else:
        tmp_txt = tmp_wav + ".txt"
        with open(tmp_txt, "w", encoding="ascii") as f:
            f.write(text + "\n")
        try:
            run(["text2wave", "-eval", f"(voice_{voice['voice']})", "-eval",
                 f"(Parameter.set 'Duration_Stretch {voice['stretch']})", "-o", tmp_wav, tmp_txt],
                what)
        finally:
            os.remove(tmp_txt)


def sox_to_pcm16(src, what, aug=None):
    """src (any rate/channels) -> 16 kHz mono int16 samples, with the SoX part of aug applied.
    -R makes SoX repeatable, -D turns dither off: both keep the output a pure function of input."""
    effects = []
    if aug is not None:
        if aug["speed"] != 1.0:
            effects += ["speed", str(aug["speed"])]
        if aug["reverb"]:
            effects += ["reverb", "40", "50", "60"]
    effects += ["rate", "-h", str(RATE), "channels", "1"]
    if aug is not None:
        effects += ["gain", "-n", str(aug["peak_db"])]
    raw = run(["sox", "-R", "-D", "-q", src, "-t", "raw", "-e", "signed-integer", "-b", "16",
               "-L", "-"] + effects, what)
    return from_le_bytes(raw)


def noise_bank(kind):
    """30 s of white or pink noise from SoX's synth (repeatable), 16 kHz int16 samples."""
    raw = run(["sox", "-R", "-D", "-q", "-n", "-r", str(RATE), "-c", "1", "-t", "raw", "-e",
               "signed-integer", "-b", "16", "-L", "-", "synth", "30", kind + "noise",
               "vol", "0.5"], f"{kind} noise bank")
    return from_le_bytes(raw)


try:  # C sample arithmetic: deprecated since Python 3.11, still in Debian 12's Python
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
except ImportError:
    audioop = None


def rms(samples):
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def mix_noise(signal, noise, offset, snr_db):
    """signal + g * noise[offset:], g chosen so that rms(signal) / rms(g * noise part) is snr_db.
    Sample arithmetic as audioop does it (product floored, then clipped; sum clipped), with a
    pure-Python path that gives the same bytes where audioop is missing."""
    n = len(signal)
    reps = (offset + n) // len(noise) + 1
    seg = (noise * reps)[offset:offset + n] if reps > 1 else noise[offset:offset + n]
    s, r = rms(signal), rms(seg)
    if s == 0 or r == 0:
        return signal
    g = s / (r * 10 ** (snr_db / 20))
    if audioop is not None and sys.byteorder == "little":
        mixed = audioop.add(signal.tobytes(), audioop.mul(seg.tobytes(), 2, g), 2)
        return from_le_bytes(mixed)
    return array.array("h", (max(-32768, min(32767, a + max(-32768, min(32767, math.floor(g * b)))))
                             for a, b in zip(signal, seg)))


def pad_to(samples, n):
    """Zero-pads both sides to n samples (Speech Commands clips are 1 s)."""
    if len(samples) >= n:
        return samples
    left = (n - len(samples)) // 2
    out = array.array("h", bytes(2 * left))
    out.extend(samples)
    out.extend(array.array("h", bytes(2 * (n - len(samples) - left))))
    return out


def from_le_bytes(raw):
    a = array.array("h")
    a.frombytes(raw[: len(raw) // 2 * 2])
    if sys.byteorder == "big":
        a.byteswap()
    return a


def write_wav_atomic(path, samples):
    """Writes a 16 kHz mono PCM16 WAV under path + '.part' and renames it, so an interrupted
    build never leaves a partial file under a final name."""
    part = path + ".part"
    data = array.array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(part, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())
    os.replace(part, path)


def valid_wav_frames(path):
    """Frame count of a complete 16 kHz mono PCM16 WAV written by write_wav_atomic, else None
    (missing, truncated, padded or of another format)."""
    try:
        with wave.open(path, "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
                return None
            n = w.getnframes()
        return n if os.path.getsize(path) == 44 + 2 * n else None
    except (OSError, EOFError, wave.Error):
        return None
