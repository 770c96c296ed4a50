"""Makes the PyTorch reference fixtures in tests/fixtures/ read by tests/core/reference_test.cpp.

Each fixture file holds, for one op family, the inputs chosen here and PyTorch's outputs (and,
for layer norm and convolution, the gradients for a given upstream gradient), so the C++ test
loads both and compares. The text format is the one read by tests/support/fixture.h: per tensor
a header `tensor <name> <f32|f64|i64> <ndim> <dims...>` and then its values in row-major order.
Names are `<case>.<field>` (for example `conv1d.3.dx`); an i64 0-d tensor carries an integer
option (dim, keepdim flag), an i64 1-d tensor a list (dims, conv options).

Deterministic (a fixed seed per file), written atomically (temp file, then os.replace). Run from anywhere:
    /usr/bin/python3 tools/make_fixtures.py
(needs PyTorch; made with 1.13).
"""

import os
import tempfile
import zlib

import torch
import torch.nn.functional as F

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

F64 = torch.float64
F32 = torch.float32


class Fixture:
    """An ordered collection of named tensors written as one fixture file."""

    def __init__(self, file_name, comment):
        # One seed per file, so that changing one file's cases leaves the others' values alone.
        torch.manual_seed(zlib.crc32(file_name.encode()))
        self.file_name = file_name
        self.comment = comment
        self.records = []
        self.names = set()

    def add(self, name, t):
        if not isinstance(t, torch.Tensor):
            t = torch.tensor(t, dtype=torch.int64 if isinstance(t, (bool, int)) else F64)
        if t.dtype == torch.bool:
            t = t.to(torch.int64)
        assert name not in self.names, name
        assert " " not in name, name
        self.names.add(name)
        self.records.append((name, t.detach().contiguous()))

    def add_int(self, name, value):
        self.add(name, torch.tensor(int(value), dtype=torch.int64))

    def add_ints(self, name, values):
        self.add(name, torch.tensor([int(v) for v in values], dtype=torch.int64))

    def write(self):
        lines = []
        for name, t in self.records:
            if t.dtype == F64:
                kind = "f64"
                values = [repr(float(v)) for v in t.reshape(-1).tolist()]  # shortest round trip
            elif t.dtype == F32:
                kind = "f32"
                values = ["%.9g" % v for v in t.double().reshape(-1).tolist()]  # exact for f32
            elif t.dtype == torch.int64:
                kind = "i64"
                values = [str(int(v)) for v in t.reshape(-1).tolist()]
            else:
                raise TypeError(f"{name}: unsupported dtype {t.dtype}")
            for v in values:
                assert v not in ("nan", "inf", "-inf"), f"{name}: non-finite value"
            lines.append(" ".join(["tensor", name, kind, str(t.dim())] + [str(d) for d in t.shape]))
            for i in range(0, len(values), 8):
                lines.append(" ".join(values[i:i + 8]))
        os.makedirs(FIXTURE_DIR, exist_ok=True)
        path = os.path.join(FIXTURE_DIR, self.file_name)
        fd, tmp = tempfile.mkstemp(dir=FIXTURE_DIR, prefix="." + self.file_name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.chmod(tmp, 0o644)  # mkstemp makes it private
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"wrote {os.path.relpath(path)}: {len(self.records)} tensors, {os.path.getsize(path)} bytes"
              f" ({self.comment})")


def randn(*shape, dtype=F64):
    return torch.randn(tuple(shape), dtype=dtype)


def rand(*shape, dtype=F64):
    return torch.rand(tuple(shape), dtype=dtype)


def make_unary():
    fx = Fixture("unary.txt", "elementwise unary ops")
    # General inputs, with a tail of large magnitudes for the saturating ops.
    x = torch.cat([randn(18) * 3, torch.tensor([-30.0, -12.0, -5.0, 5.0, 12.0, 30.0], dtype=F64)])
    x = x.reshape(4, 6)
    xpos = (rand(4, 6) * 4 + 0.05)  # for log, sqrt, rsqrt and fractional powers
    fx.add("x", x)
    fx.add("xpos", xpos)
    on_x = {
        "neg": torch.neg, "exp": torch.exp, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
        "relu": torch.relu, "gelu": lambda t: F.gelu(t, approximate="none"),
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "silu": F.silu, "abs": torch.abs,
        "pow2": lambda t: torch.pow(t, 2.0), "pow3": lambda t: torch.pow(t, 3.0),
    }
    on_xpos = {
        "log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
        "pow0.5": lambda t: torch.pow(t, 0.5), "pow-1.5": lambda t: torch.pow(t, -1.5),
    }
    for name, fn in on_x.items():
        fx.add(name, fn(x))
    for name, fn in on_xpos.items():
        fx.add(name, fn(xpos))
    # f32: computed by PyTorch in f32.
    x32 = randn(3, 5, dtype=F32) * 2
    xpos32 = rand(3, 5, dtype=F32) * 4 + 0.05
    fx.add("f32.x", x32)
    fx.add("f32.xpos", xpos32)
    for name in ("exp", "tanh", "sigmoid", "gelu", "gelu_tanh", "silu"):
        fx.add("f32." + name, on_x[name](x32))
    for name in ("log", "rsqrt", "pow-1.5"):
        fx.add("f32." + name, on_xpos[name](xpos32))
    fx.write()


BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "maximum": torch.maximum, "minimum": torch.minimum,
}
COMPARE = {"eq": torch.eq, "lt": torch.lt, "gt": torch.gt}


def make_binary():
    fx = Fixture("binary.txt", "elementwise binary ops with broadcasting, where, masked_fill")
    shapes = [((2, 3, 4), (3, 1)), ((1, 4), (3, 1)), ((2, 3), ()), ((), (2, 3)), ((3, 4), (3, 4)),
              ((4, 1, 3), (2, 1)), ((), ())]
    for k, (sa, sb) in enumerate(shapes):
        # Continuous values, b kept away from zero for div.
        a = randn(*sa)
        b = (rand(*sb) + 0.5) * (1 - 2 * (rand(*sb) < 0.5).to(F64))
        fx.add(f"bin.{k}.a", a)
        fx.add(f"bin.{k}.b", b)
        for name, fn in BINARY.items():
            fx.add(f"bin.{k}.{name}", fn(a, b))
        # Comparisons on small integers, so ties occur; the result is 0/1 in the input dtype.
        ca = torch.randint(-2, 3, sa).to(F64)
        cb = torch.randint(-2, 3, sb).to(F64)
        fx.add(f"cmp.{k}.a", ca)
        fx.add(f"cmp.{k}.b", cb)
        for name, fn in COMPARE.items():
            fx.add(f"cmp.{k}.{name}", fn(ca, cb).to(F64))
    # Tensor-scalar variants: values from a small set (no zero), so the comparisons tie.
    vals = torch.tensor([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5], dtype=F64)
    x = vals[torch.randint(0, 6, (3, 4))]
    s = 0.5
    fx.add("scal.x", x)
    fx.add("scal.s", torch.tensor(s, dtype=F64))
    for name, y in {"add": x + s, "sub": x - s, "rsub": s - x, "mul": x * s, "div": x / s, "rdiv": s / x,
                    "maximum": torch.clamp(x, min=s), "minimum": torch.clamp(x, max=s), "gt": (x > s),
                    "lt": (x < s), "eq": (x == s)}.items():
        fx.add(f"scal.{name}", y.to(F64))
    # f32 broadcast case.
    a32, b32 = randn(2, 3, 4, dtype=F32), rand(3, 1, dtype=F32) + 0.5
    fx.add("f32.a", a32)
    fx.add("f32.b", b32)
    for name in ("add", "sub", "mul", "div"):
        fx.add(f"f32.{name}", BINARY[name](a32, b32))
    # where(cond, a, b) and masked_fill(x, mask, value); masks are 0/1 floats in our API.
    cases = [((3, 1), (1, 4), (3, 4)), ((2, 3, 4), (2, 3, 4), ())]
    for k, (sc, sa, sb) in enumerate(cases):
        cond = (rand(*sc) < 0.5).to(F64)
        a, b = randn(*sa), randn(*sb)
        fx.add(f"where.{k}.cond", cond)
        fx.add(f"where.{k}.a", a)
        fx.add(f"where.{k}.b", b)
        fx.add(f"where.{k}.out", torch.where(cond != 0, a, b))
    for k, (sx, sm, value) in enumerate([((3, 4), (1, 4), -1e9), ((2, 3, 4), (2, 3, 4), 0.25)]):
        x = randn(*sx)
        mask = (rand(*sm) < 0.5).to(F64)
        fx.add(f"masked_fill.{k}.x", x)
        fx.add(f"masked_fill.{k}.mask", mask)
        fx.add(f"masked_fill.{k}.value", torch.tensor(value, dtype=F64))
        fx.add(f"masked_fill.{k}.out", x.masked_fill(mask != 0, value))
    fx.write()


def make_reduce():
    fx = Fixture("reduce.txt", "sum, mean, amax, amin, var, argmax")
    x = randn(2, 3, 4, 5)
    fx.add("x", x)
    all_dims = [0, 1, 2, 3]
    # (dims, keepdim); empty dims means all dims, as in our API.
    cases = [([1], False), ([1], True), ([-1], False), ([0, 2], False), ([0, 2], True), ([1, 3], True),
             ([2, 3], False), ([0, 1], True), ([3, 0], False), ([], False), ([], True), (all_dims, False)]
    for k, (dims, keepdim) in enumerate(cases):
        d = dims if dims else all_dims
        fx.add_ints(f"red.{k}.dims", dims)
        fx.add_int(f"red.{k}.keepdim", keepdim)
        fx.add(f"red.{k}.sum", torch.sum(x, d, keepdim=keepdim))
        fx.add(f"red.{k}.mean", torch.mean(x, d, keepdim=keepdim))
        fx.add(f"red.{k}.amax", torch.amax(x, d, keepdim=keepdim))
        fx.add(f"red.{k}.amin", torch.amin(x, d, keepdim=keepdim))
        fx.add(f"red.{k}.var0", torch.var(x, d, unbiased=False, keepdim=keepdim))
        fx.add(f"red.{k}.var1", torch.var(x, d, unbiased=True, keepdim=keepdim))
    # A large mean with a small spread: the variance must not cancel.
    xo = 1e4 + randn(3, 50) * 1e-3
    fx.add("offset.x", xo)
    fx.add("offset.var1", torch.var(xo, 1, unbiased=True))
    # argmax: random values, and small integers with ties (the first maximum wins).
    ties = torch.randint(0, 3, (4, 6)).to(F64)
    fx.add("ties", ties)
    for k, (src, dim, keepdim) in enumerate([("x", 1, False), ("x", -1, True), ("x", 0, False),
                                             ("ties", 1, False), ("ties", 0, True)]):
        t = x if src == "x" else ties
        fx.add_int(f"argmax.{k}.src_is_ties", src == "ties")
        fx.add_int(f"argmax.{k}.dim", dim)
        fx.add_int(f"argmax.{k}.keepdim", keepdim)
        if src == "ties":  # first maximum, computed explicitly rather than trusting torch's tie rule
            m = t.amax(dim, keepdim=True)
            n = t.shape[dim]
            ar = torch.arange(n).reshape([-1 if i == (dim % t.dim()) else 1 for i in range(t.dim())])
            out = torch.where(t == m, ar, n).amin(dim, keepdim=keepdim)
            assert torch.equal(out, torch.argmax(t, dim, keepdim=keepdim))
        else:
            out = torch.argmax(t, dim, keepdim=keepdim)
        fx.add(f"argmax.{k}.out", out)
    # f32.
    x32 = randn(3, 4, 5, dtype=F32)
    fx.add("f32.x", x32)
    fx.add("f32.sum1", torch.sum(x32, 1))
    fx.add("f32.sum_all", torch.sum(x32))
    fx.add("f32.mean02", torch.mean(x32, [0, 2]))
    fx.add("f32.var1", torch.var(x32, 1, unbiased=True))
    fx.write()


def make_matmul():
    fx = Fixture("matmul.txt", "matmul")
    # (a shape as stored, b shape as stored, transpose a, transpose b, dtype); a transposed operand
    # is stored contiguous and transposed (last two dims) by the test, so it is read in place.
    cases = [((3, 4), (4, 5), 0, 0, F64), ((2, 1, 3, 4), (5, 4, 2), 0, 0, F64), ((4,), (4, 5), 0, 0, F64),
             ((3, 4), (4,), 0, 0, F64), ((2, 3, 4), (4, 6), 0, 0, F64), ((4, 3), (4, 5), 1, 0, F64),
             ((3, 4), (5, 4), 0, 1, F64), ((2, 4, 3), (2, 5, 4), 1, 1, F64), ((4,), (2, 4, 5), 0, 0, F64),
             ((2, 3, 4), (4,), 0, 0, F64), ((1, 3, 4), (2, 4, 2), 0, 0, F64), ((8, 16), (16, 8), 0, 0, F32)]
    for k, (sa, sb, ta, tb, dtype) in enumerate(cases):
        a, b = randn(*sa, dtype=dtype), randn(*sb, dtype=dtype)
        fx.add(f"mm.{k}.a", a)
        fx.add(f"mm.{k}.b", b)
        fx.add_int(f"mm.{k}.ta", ta)
        fx.add_int(f"mm.{k}.tb", tb)
        fx.add(f"mm.{k}.out", torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b))
    fx.write()


def make_softmax():
    fx = Fixture("softmax.txt", "softmax and log_softmax")
    x = randn(2, 3, 4) * 2
    big = 1000 + randn(2, 3, 4) * 3  # a large common offset: must subtract the max
    huge = randn(2, 3, 4) * 1000  # a large spread: near one-hot, log_softmax ~ -1000s
    cases = [(x, -1), (x, 0), (x, 1), (big, -1), (big, 0), (huge, -1), (huge, 1), (randn(7) * 3, 0),
             (big.to(F32), -1), (x.to(F32), 1)]
    for k, (t, dim) in enumerate(cases):
        fx.add(f"sm.{k}.x", t)
        fx.add_int(f"sm.{k}.dim", dim)
        fx.add(f"sm.{k}.softmax", torch.softmax(t, dim))
        fx.add(f"sm.{k}.log_softmax", torch.log_softmax(t, dim))
    fx.write()


def make_layer_norm():
    fx = Fixture("layer_norm.txt", "layer_norm forward and backward")
    # (x shape, normalized ndim, eps, affine, offset, dtype)
    cases = [((2, 3, 8), 1, 1e-5, True, 0.0, F64), ((2, 3, 8), 2, 1e-5, True, 0.0, F64),
             ((4, 6), 1, 1e-12, True, 0.0, F64), ((2, 3, 4), 2, 1e-12, True, 0.0, F64),
             ((3, 16), 1, 1e-12, True, 100.0, F64), ((3, 5), 1, 1e-5, False, 0.0, F64),
             ((4, 32), 1, 1e-5, True, 0.0, F32)]
    for k, (shape, nd, eps, affine, offset, dtype) in enumerate(cases):
        norm_shape = shape[len(shape) - nd:]
        # With an offset the spread is small (0.01) relative to the mean: tests the variance.
        x = (offset + randn(*shape, dtype=dtype) * (0.01 if offset else 1.5)).requires_grad_()
        w = (1 + 0.5 * randn(*norm_shape, dtype=dtype)).requires_grad_() if affine else None
        b = (0.5 * randn(*norm_shape, dtype=dtype)).requires_grad_() if affine else None
        gy = randn(*shape, dtype=dtype)
        y = F.layer_norm(x, norm_shape, w, b, eps)
        y.backward(gy)
        _, mean, rstd = torch.native_layer_norm(x.detach(), norm_shape, w, b, eps)
        p = f"ln.{k}"
        fx.add(p + ".x", x)
        if affine:
            fx.add(p + ".w", w)
            fx.add(p + ".b", b)
        fx.add_int(p + ".nd", nd)
        fx.add(p + ".eps", torch.tensor(eps, dtype=F64))
        fx.add(p + ".gy", gy)
        fx.add(p + ".y", y)
        fx.add(p + ".mean", mean.reshape(-1))
        fx.add(p + ".rstd", rstd.reshape(-1))
        fx.add(p + ".dx", x.grad)
        if affine:
            fx.add(p + ".dw", w.grad)
            fx.add(p + ".db", b.grad)
    fx.write()


def make_index():
    fx = Fixture("index.txt", "index_select, gather, embedding, scatter_add, index_add")
    for k, (shape, dim, idx) in enumerate([((4, 5), 0, [2, 0, 2, 3]), ((4, 5), 1, [4, 1, 1]),
                                           ((2, 3, 4), 1, [2, 0]), ((2, 3, 4), -1, [3, 3, 0, 1, 2])]):
        x, index = randn(*shape), torch.tensor(idx)
        fx.add(f"index_select.{k}.x", x)
        fx.add_int(f"index_select.{k}.dim", dim)
        fx.add(f"index_select.{k}.index", index)
        fx.add(f"index_select.{k}.out", torch.index_select(x, dim, index))
    # gather: the index may be smaller than the input outside `dim`.
    for k, (shape, dim, ishape) in enumerate([((3, 4), 0, (2, 4)), ((3, 4), 1, (3, 6)), ((3, 4), 1, (2, 3)),
                                              ((2, 3, 4), 2, (2, 3, 2))]):
        x = randn(*shape)
        index = torch.randint(0, shape[dim], ishape)
        fx.add(f"gather.{k}.x", x)
        fx.add_int(f"gather.{k}.dim", dim)
        fx.add(f"gather.{k}.index", index)
        fx.add(f"gather.{k}.out", torch.gather(x, dim, index))
    weight = randn(10, 4)
    ids = torch.tensor([[3, 0, 9], [3, 7, 1]])  # a repeated id
    fx.add("embedding.weight", weight)
    fx.add("embedding.ids", ids)
    fx.add("embedding.out", F.embedding(ids, weight))
    # scatter_add with repeated indices (they accumulate).
    for k, (shape, dim, ishape) in enumerate([((3, 5), 0, (4, 5)), ((3, 5), 1, (3, 7)), ((3, 5), 1, (2, 3))]):
        x = randn(*shape)
        index = torch.randint(0, shape[dim], ishape)
        src = randn(*ishape)
        fx.add(f"scatter_add.{k}.x", x)
        fx.add_int(f"scatter_add.{k}.dim", dim)
        fx.add(f"scatter_add.{k}.index", index)
        fx.add(f"scatter_add.{k}.src", src)
        fx.add(f"scatter_add.{k}.out", torch.scatter_add(x, dim, index, src))
    for k, (shape, dim, idx) in enumerate([((5, 3), 0, [0, 2, 0, 4, 2]), ((3, 4), 1, [3, 3, 0]),
                                           ((2, 3, 2), 1, [1, 1, 1, 0])]):
        x, index = randn(*shape), torch.tensor(idx)
        src_shape = list(shape)
        src_shape[dim] = len(idx)
        src = randn(*src_shape)
        fx.add(f"index_add.{k}.x", x)
        fx.add_int(f"index_add.{k}.dim", dim)
        fx.add(f"index_add.{k}.index", index)
        fx.add(f"index_add.{k}.src", src)
        fx.add(f"index_add.{k}.out", torch.index_add(x, dim, index, src))
    fx.write()


def make_join():
    fx = Fixture("join.txt", "concat, stack, split")
    for k, (shapes, dim) in enumerate([([(2, 3), (2, 1), (2, 2)], 1), ([(1, 3), (2, 3)], 0),
                                       ([(2, 1, 3), (2, 2, 3)], -2), ([(4,)], 0)]):
        parts = [randn(*s) for s in shapes]
        for i, p in enumerate(parts):
            fx.add(f"concat.{k}.p{i}", p)
        fx.add_int(f"concat.{k}.dim", dim)
        fx.add(f"concat.{k}.out", torch.cat(parts, dim))
    parts = [randn(2, 3) for _ in range(3)]
    for i, p in enumerate(parts):
        fx.add(f"stack.p{i}", p)
    for k, dim in enumerate([0, 1, 2, -1]):
        fx.add_int(f"stack.{k}.dim", dim)
        fx.add(f"stack.{k}.out", torch.stack(parts, dim))
    x = randn(3, 5)
    fx.add("split.x", x)
    # A single int is a piece size (the last piece may be shorter); a list gives every size.
    for k, (size, dim) in enumerate([(2, 1), ([1, 3, 1], 1), (2, 0), ([0, 3], 0)]):
        fx.add_int(f"split.{k}.dim", dim)
        if isinstance(size, list):
            fx.add_ints(f"split.{k}.sizes", size)
        else:
            fx.add_int(f"split.{k}.size", size)
        pieces = torch.split(x, size, dim)
        fx.add_int(f"split.{k}.n", len(pieces))
        for i, p in enumerate(pieces):
            fx.add(f"split.{k}.out{i}", p)
    fx.write()


def make_conv():
    fx = Fixture("conv.txt", "conv1d, conv2d forward and backward")
    # conv1d: (x shape, weight shape, stride, padding, dilation, groups, bias)
    c1 = [((2, 4, 9), (6, 4, 3), 1, 0, 1, 1, True), ((2, 4, 9), (6, 4, 3), 2, 1, 1, 1, True),
          ((2, 4, 9), (6, 4, 3), 1, 2, 2, 1, True), ((2, 4, 9), (6, 2, 3), 1, 1, 1, 2, True),
          ((2, 4, 9), (4, 1, 3), 1, 1, 1, 4, True), ((2, 4, 10), (8, 1, 5), 2, 2, 1, 4, False)]
    for k, (sx, sw, stride, padding, dilation, groups, has_bias) in enumerate(c1):
        x, w = randn(*sx).requires_grad_(), randn(*sw).requires_grad_()
        b = randn(sw[0]).requires_grad_() if has_bias else None
        y = F.conv1d(x, w, b, stride, padding, dilation, groups)
        gy = randn(*y.shape)
        y.backward(gy)
        p = f"conv1d.{k}"
        fx.add(p + ".x", x)
        fx.add(p + ".w", w)
        if has_bias:
            fx.add(p + ".b", b)
        fx.add_ints(p + ".opts", [stride, padding, dilation, groups])
        fx.add(p + ".gy", gy)
        fx.add(p + ".y", y)
        fx.add(p + ".dx", x.grad)
        fx.add(p + ".dw", w.grad)
        if has_bias:
            fx.add(p + ".db", b.grad)
    # conv2d: (x shape, weight shape, stride, padding, dilation, groups, bias, dtype)
    c2 = [((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True, F64),
          ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, False, F64),
          ((2, 3, 6, 5), (4, 3, 3, 3), (2, 1), (0, 2), (1, 1), 1, False, F64),
          ((2, 3, 6, 5), (4, 3, 2, 3), (2, 1), (1, 1), (1, 1), 1, True, F64),
          ((1, 4, 7, 6), (6, 2, 3, 3), (1, 1), (0, 2), (1, 2), 2, True, F64),
          ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True, F32)]
    for k, (sx, sw, stride, padding, dilation, groups, has_bias, dtype) in enumerate(c2):
        x, w = randn(*sx, dtype=dtype).requires_grad_(), randn(*sw, dtype=dtype).requires_grad_()
        b = randn(sw[0], dtype=dtype).requires_grad_() if has_bias else None
        y = F.conv2d(x, w, b, stride, padding, dilation, groups)
        gy = randn(*y.shape, dtype=dtype)
        y.backward(gy)
        p = f"conv2d.{k}"
        fx.add(p + ".x", x)
        fx.add(p + ".w", w)
        if has_bias:
            fx.add(p + ".b", b)
        fx.add_ints(p + ".opts", [*stride, *padding, *dilation, groups])
        fx.add(p + ".gy", gy)
        fx.add(p + ".y", y)
        fx.add(p + ".dx", x.grad)
        fx.add(p + ".dw", w.grad)
        if has_bias:
            fx.add(p + ".db", b.grad)
    fx.write()


def main():
    torch.set_num_threads(1)  # summation order, and so the last bits, independent of the machine
    for make in (make_unary, make_binary, make_reduce, make_matmul, make_softmax, make_layer_norm,
                 make_index, make_join, make_conv):
        make()


if __name__ == "__main__":
    main()
