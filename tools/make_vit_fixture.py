"""Makes tests/fixtures/vit_reference.safetensors, torchvision's VisionTransformer on a tiny config,
read by tests/models/vit_test.cpp.

Model: torchvision.models.VisionTransformer(image_size 16, patch_size 4, num_layers 2, num_heads 4,
hidden_dim 32, mlp_dim 64, num_classes 10) in f64, eval mode (no dropout), every parameter set to
random values (torchvision zeroes the head and the class token, which would hide errors there).
Parameters and inputs are rounded to f32 first, so the f32 copy the test also runs is the same
model; the computation and the outputs are f64.

Tensors (names in torchvision's state_dict layout, which is ours):
  param.<name>          every parameter (f32 values, stored f32)
  x                     (2, 3, 16, 16) input images (f32 values, stored f32)
  r                     (2, 10) weights of the scalar loss = sum(y * r) (f64)
  cls.y, cls.dx, cls.grad.<name>    class-token pooling (torchvision's forward), f64
  mean.y, mean.dx       mean of the patch tokens instead (MAE's global_pool), the same modules
                        composed here, f64
  tokens                (2, 17, 32) every token after encoder.ln (f64)
Metadata: "config" (the tiny config as JSON), "b16" and "l16": {name: shape} of torchvision's
vit_b_16() and vit_l_16() state dicts (weights not stored), so that the test checks our presets
name and shape every tensor as torchvision does.

Deterministic (fixed seed), written as plain safetensors by hand (no extra package), atomically.
Run from anywhere (needs PyTorch 1.13 and torchvision 0.14: Debian's python3-torch and
python3-torchvision):
    /usr/bin/python3 tools/make_vit_fixture.py
"""

import json
import os
import struct
import tempfile

import numpy as np
import torch
import torchvision
from torchvision.models import VisionTransformer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "vit_reference.safetensors")
CONFIG = dict(image_size=16, patch_size=4, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
              num_classes=10)
BATCH = 2


def save_safetensors(path, tensors, metadata):
    """The safetensors layout (8-byte header length, JSON header, data), temp file + rename."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy())
        dtype = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.astype(a.dtype.newbyteorder("<")).tobytes())
        offset += a.nbytes
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".vit_fixture.")
    with os.fdopen(fd, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.chmod(temp, 0o644)  # mkstemp makes it private; a fixture is an ordinary repository file
    os.replace(temp, path)


def f32_values(t):
    """f64 tensor holding values exactly representable in f32."""
    return t.float().double()


def mean_pool_forward(model, x):
    """torchvision's forward with the mean of the patch tokens in place of x[:, 0]."""
    tokens = model._process_input(x)
    cls = model.class_token.expand(x.shape[0], -1, -1)
    tokens = model.encoder(torch.cat([cls, tokens], dim=1))
    return model.heads(tokens[:, 1:].mean(dim=1)), tokens


def shapes_of(model):
    return json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}, separators=(",", ":"))


def main():
    torch.manual_seed(20231)
    model = VisionTransformer(**CONFIG).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Around their usual scale, but never the constant values of the default init.
            scale = 0.02 if name == "encoder.pos_embedding" else 0.3
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "encoder.ln.weight":
                p.copy_(f32_values(1.0 + 0.2 * torch.randn_like(p)))
            else:
                p.copy_(f32_values(scale * torch.randn_like(p) + (0.5 if name == "class_token" else 0.0)))
    x = f32_values(torch.randn(BATCH, 3, CONFIG["image_size"], CONFIG["image_size"], dtype=torch.float64))
    r = torch.randn(BATCH, CONFIG["num_classes"], dtype=torch.float64)

    tensors = {}
    for name, p in model.named_parameters():
        tensors[f"param.{name}"] = p.detach().float()
    tensors["x"] = x.float()
    tensors["r"] = r

    for case in ("cls", "mean"):
        model.zero_grad()
        xi = x.clone().requires_grad_()
        if case == "cls":
            y = model(xi)
        else:
            y, tokens = mean_pool_forward(model, xi)
            tensors["tokens"] = tokens.detach()
        (y * r).sum().backward()
        tensors[f"{case}.y"] = y.detach()
        tensors[f"{case}.dx"] = xi.grad
        if case == "cls":  # the mean case shares every module but the pooling: y and dx suffice
            for name, p in model.named_parameters():
                tensors[f"{case}.grad.{name}"] = p.grad.clone()

    metadata = {
        "config": json.dumps(CONFIG),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "b16": shapes_of(torchvision.models.vit_b_16()),
        "l16": shapes_of(torchvision.models.vit_l_16()),
    }
    save_safetensors(OUT, tensors, metadata)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
