"""Makes tests/fixtures/safetensors_python.safetensors, read by tests/core/safetensors_test.cpp.

The file is written by the reference implementation (Hugging Face `safetensors`, made with
0.8.0) so that our reader is checked against real interop bytes, not only against our writer.
F16 and BF16 tensors are given as raw bit patterns (NumPy has no bfloat16) covering
subnormals, infinities, NaN and -0; the test knows the exact float each pattern stands for.

    python3 tools/make_safetensors_fixture.py            # (re)writes the fixture
    python3 tools/make_safetensors_fixture.py --check F  # loads F (e.g. one our writer made)
                                                         # with safetensors.numpy and prints it
Needs `pip install safetensors numpy`.
"""

import os
import sys

import numpy as np
from safetensors import TensorSpec, deserialize, serialize_file
from safetensors.numpy import load_file

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "safetensors_python.safetensors")

# min subnormal, max subnormal, min normal, 1, -2, max, inf, -inf, nan, -0, 1/3 rounded
HALF_BITS = [0x0001, 0x03FF, 0x0400, 0x3C00, 0xC000, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555]
BF16_BITS = [0x0001, 0x007F, 0x0080, 0x3F80, 0xC2F7, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x3EAB]


def make():
    arrays = {  # name -> (array, safetensors dtype name as TensorSpec spells it)
        "half": (np.array(HALF_BITS, dtype=np.uint16), "float16"),
        "bfloat": (np.array(BF16_BITS, dtype=np.uint16), "bfloat16"),
        "float32": (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1, "float32"),
        "int64": (np.array([[-(2**63), 2**63 - 1], [0, -5]], dtype=np.int64), "int64"),
        "int32": (np.array([-(2**31), 2**31 - 1, 7], dtype=np.int32), "int32"),
        "float64": (np.array(3.141592653589793, dtype=np.float64), "float64"),
        "empty": (np.zeros((0, 4), dtype=np.float32), "float32"),
    }
    specs = {
        name: TensorSpec(dtype=dtype, shape=a.shape, data_ptr=a.ctypes.data, data_len=a.nbytes)
        for name, (a, dtype) in arrays.items()
    }
    tmp = FIXTURE + ".tmp"
    serialize_file(specs, tmp, metadata={"format": "pt", "made_by": "tools/make_safetensors_fixture.py"})
    os.replace(tmp, FIXTURE)
    print("wrote", os.path.normpath(FIXTURE), os.path.getsize(FIXTURE), "bytes")


def check(path):
    with open(path, "rb") as f:
        entries = deserialize(f.read())  # the reference parser: validates header and layout
    for name, entry in entries:
        print(name, entry["dtype"], entry["shape"], len(entry["data"]), "bytes")
    if all(entry["dtype"] != "BF16" for _, entry in entries):  # NumPy has no bfloat16
        for name, value in load_file(path).items():
            print(name, value.dtype, value.shape, value.ravel()[:8])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        make()
