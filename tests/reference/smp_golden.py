"""Writer for the engine/sample golden files (format in tests/reference/README.md, "ISDGOLD1").

A file is the 8-byte magic b"ISDGOLD1" followed by records until the end of the file:
  u32 name_len, name (ASCII, no NUL), u32 dtype (0 f64, 1 f32, 2 u32, 3 i64), u64 count,
  then count little-endian elements.
"""
import struct

import numpy as np

MAGIC = b"ISDGOLD1"
DTYPES = {0: np.dtype("<f8"), 1: np.dtype("<f4"), 2: np.dtype("<u4"), 3: np.dtype("<i8")}


class GoldenWriter:
    def __init__(self, path):
        self.path = path
        self.records = []

    def add(self, name, array, dtype_id):
        a = np.ascontiguousarray(np.asarray(array).reshape(-1), dtype=DTYPES[dtype_id])
        name_b = name.encode("ascii")
        self.records.append(struct.pack("<I", len(name_b)) + name_b +
                            struct.pack("<IQ", dtype_id, a.size) + a.tobytes())

    def f64(self, name, a):
        self.add(name, a, 0)

    def f32(self, name, a):
        self.add(name, a, 1)

    def u32(self, name, a):
        self.add(name, a, 2)

    def i64(self, name, a):
        self.add(name, a, 3)

    def save(self):
        with open(self.path, "wb") as f:
            f.write(MAGIC)
            for r in self.records:
                f.write(r)
        return self.path
