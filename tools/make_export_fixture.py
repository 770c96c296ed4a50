"""Makes the fixtures of tests/models/export_names_test.cpp: state dicts made by the upstream
libraries themselves, so that the rename tables of models/export_names.h are checked against
the real names and packings, and outputs, so that the renamed weights are checked to compute the
same thing in our towers.

  conformer  tests/fixtures/export_torchaudio_conformer.safetensors: torchaudio.models.Conformer
             (input_dim 8, 2 heads, ffn 16, 2 layers, kernel 7), every parameter and BatchNorm
             statistic random; "state.<name>" its state_dict (f32; num_batches_tracked i64),
             "x" (2, 9, 8) input, "lengths" (2,) = [9, 9] (no padding: our blocks also mask
             padding before the depthwise conv, torchaudio does not), "y" the output in f64 (the
             module run in f64 on the same f32 values), eval mode.
             Needs Debian's python3-torch and python3-torchaudio, and the safetensors package:
                 PYTHONPATH=.cache/python-test /usr/bin/python3 tools/make_export_fixture.py conformer
  vit        tests/fixtures/export_hf_vit.safetensors: transformers.ViTModel (image 8, patch 4,
             2 channels, hidden 8, 2 layers, 2 heads, MLP 16, layer norm eps 1e-6, no pooler),
             random parameters; "state.<name>", "x" (2, 2, 8, 8), "y" last_hidden_state in f64.
                 .cache/venv-hf/bin/python tools/make_export_fixture.py vit      (transformers 4.40.2)

Deterministic (a fixed seed per file), written to a temporary file and renamed.
"""

import os
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def randomize_(module, scale=0.5):
    """Random values for every parameter (LayerNorm's ones and zero biases would hide errors) and
    random BatchNorm statistics (positive variances)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape) * scale)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features) + 0.5)
                m.num_batches_tracked.fill_(7)


def write(name, tensors, metadata):
    path = os.path.join(OUT, name)
    tmp = path + ".tmp"
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
    os.replace(tmp, path)
    print(f"wrote {os.path.normpath(path)} ({len(tensors)} tensors)")


def conformer():
    import torchaudio

    torch.manual_seed(22)
    m = torchaudio.models.Conformer(input_dim=8, num_heads=2, ffn_dim=16, num_layers=2,
                                    depthwise_conv_kernel_size=7, dropout=0.0).eval()
    randomize_(m)
    x = torch.randn(2, 9, 8)
    lengths = torch.tensor([9, 9])
    with torch.no_grad():
        y, _ = m.double()(x.double(), lengths)
    state = {"state." + k: (v.float() if v.is_floating_point() else v) for k, v in m.state_dict().items()}
    write("export_torchaudio_conformer.safetensors", {**state, "x": x, "lengths": lengths, "y": y},
          {"torchaudio": torchaudio.__version__, "torch": torch.__version__})


def vit():
    import transformers
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(23)
    cfg = ViTConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                    image_size=8, patch_size=4, num_channels=2, layer_norm_eps=1e-6, hidden_act="gelu",
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, qkv_bias=True)
    m = ViTModel(cfg, add_pooling_layer=False).eval()
    randomize_(m)
    x = torch.randn(2, 2, 8, 8)
    with torch.no_grad():
        y = m.double()(x.double()).last_hidden_state
    state = {"state." + k: v.float() for k, v in m.state_dict().items()}
    write("export_hf_vit.safetensors", {**state, "x": x, "y": y},
          {"transformers": transformers.__version__, "torch": torch.__version__})


if __name__ == "__main__":
    {"conformer": conformer, "vit": vit}[sys.argv[1]]()
