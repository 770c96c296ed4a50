"""Makes tests/fixtures/adamw_reference.safetensors, torch.optim.AdamW's trajectory over five steps
for tests/train/adamw_test.cpp.

For each dtype (f32, f64) three parameters: "w" (3, 4) in a decay group (weight_decay 0.1), "b" (4,)
and "s" (0-d, a logit-scale-like scalar) in a no-decay group (weight_decay 0). Non-default betas
and eps (0.9, 0.98, 1e-6, the CLIP setting), a different lr every step (a warmup ramp), gradients
drawn fresh each step; "b" gets tiny gradients (1e-7 scale) so that eps matters. Tensors:
  <dtype>.<p>.init, <dtype>.<p>.grad.<k>, <dtype>.<p>.after.<k> (k = 0..4),
  <dtype>.<p>.exp_avg, <dtype>.<p>.exp_avg_sq (after the last step),
  lrs (5,) f64, opts f64 [beta1, beta2, eps, weight_decay of the decay group].
Deterministic (fixed seed). Written as plain safetensors by hand (no extra package), atomically.
Run from anywhere (needs PyTorch; made with 1.13):
    /usr/bin/python3 tools/make_adamw_fixture.py
"""

import json
import os
import struct
import tempfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "adamw_reference.safetensors")
BETAS, EPS, WD = (0.9, 0.98), 1e-6, 0.1
LRS = [1e-3 * (k + 1) / 5 for k in range(5)]
SHAPES = {"w": (3, 4), "b": (4,), "s": ()}
GRAD_SCALE = {"w": 1.0, "b": 1e-7, "s": 0.5}


def save_safetensors(path, tensors, metadata):
    """The safetensors layout (8-byte header length, JSON header, data), temp file + rename."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dtype = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.astype(a.dtype.newbyteorder("<")).tobytes())
        offset += a.nbytes
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".adamw_fixture.")
    with os.fdopen(fd, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(temp, path)


def trajectory(dtype, tensors):
    name = {torch.float32: "f32", torch.float64: "f64"}[dtype]
    params = {p: torch.randn(shape, dtype=torch.float64).to(dtype).requires_grad_() for p, shape in SHAPES.items()}
    for p, t in params.items():
        tensors[f"{name}.{p}.init"] = t.detach().clone()
    opt = torch.optim.AdamW([{"params": [params["w"]], "weight_decay": WD},
                             {"params": [params["b"], params["s"]], "weight_decay": 0.0}],
                            lr=LRS[0], betas=BETAS, eps=EPS)
    for k, lr in enumerate(LRS):
        for group in opt.param_groups:
            group["lr"] = lr
        for p, t in params.items():
            t.grad = (torch.randn(SHAPES[p], dtype=torch.float64) * GRAD_SCALE[p]).to(dtype)
            tensors[f"{name}.{p}.grad.{k}"] = t.grad.clone()
        opt.step()
        for p, t in params.items():
            tensors[f"{name}.{p}.after.{k}"] = t.detach().clone()
    for p, t in params.items():
        tensors[f"{name}.{p}.exp_avg"] = opt.state[t]["exp_avg"].clone()
        tensors[f"{name}.{p}.exp_avg_sq"] = opt.state[t]["exp_avg_sq"].clone()


def main():
    torch.manual_seed(7)
    tensors = {}
    trajectory(torch.float32, tensors)
    trajectory(torch.float64, tensors)
    tensors["lrs"] = torch.tensor(LRS, dtype=torch.float64)
    tensors["opts"] = torch.tensor([BETAS[0], BETAS[1], EPS, WD], dtype=torch.float64)
    arrays = {k: v.numpy() for k, v in tensors.items()}
    save_safetensors(OUT, arrays, {"made_by": "tools/make_adamw_fixture.py",
                                   "versions": f"torch {torch.__version__}, numpy {np.__version__}"})
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(arrays)} tensors)")


if __name__ == "__main__":
    main()
