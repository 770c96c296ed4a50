#!/usr/bin/env python3
"""Reads a checkpoint step directory with Hugging Face's `safetensors` (the library PyTorch users
load checkpoints with; its numpy front end, so no torch is needed) and dumps every tensor as JSON
for tests/train/checkpoint_python_test.cpp to compare with what the C++ side wrote.

usage: read_checkpoint.py STEP_DIR OUT_JSON   (exit 3: safetensors or numpy not installed)
"""
import json
import sys

try:
    from safetensors import safe_open
    from safetensors.numpy import load_file
except ImportError as e:  # the test turns this into a skip that says what to install
    print(f"read_checkpoint.py: {e}", file=sys.stderr)
    sys.exit(3)

step_dir, out = sys.argv[1], sys.argv[2]
result = {}
for name in ("model", "optimizer"):
    path = f"{step_dir}/{name}.safetensors"
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    tensors = load_file(path)
    result[name] = {
        "metadata": meta,
        "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape),
                        "values": v.astype("float64").ravel().tolist()} for k, v in tensors.items()},
    }
with open(out, "w") as f:
    json.dump(result, f)
