# IDX files (the MNIST format, read by data/idx_reader.h): unsigned bytes, big-endian sizes.
# Written deterministically: a gzip'd file carries no name and mtime 0, so two builds with the
# same seed are byte-identical.
import gzip
import io
import struct

import numpy as np


def idx_bytes(array):
    """Header (magic 0 0 8 ndims, big-endian int32 sizes) followed by the u8 data, row-major."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(struct.pack(">i", d) for d in a.shape)
    return header + a.tobytes()


def encode(array, compress):
    data = idx_bytes(array)
    if not compress:
        return data
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as g:
        g.write(data)
    return buf.getvalue()


def read_idx(path):
    """The array of an IDX file (gzip'd or plain), for checks and tests."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    nd = raw[3]
    dims = struct.unpack(">" + "i" * nd, raw[4:4 + 4 * nd])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)
