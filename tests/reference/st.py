"""st: a tiny safetensors reader/writer for the PyTorch reference (no `safetensors` package).

Format (engine-notes section 6): u64 little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
data buffer (little-endian, C order). BF16 goes through an int16 view, since torch 1.13's
frombuffer has no bfloat16.

    import st
    tensors, meta = st.load("model.safetensors")          # dict name -> torch.Tensor
    st.save("out.safetensors", {"x": torch.ones(2, 3)}, {"format": "pt"})
    unet = st.load_model("tiny-diffusers-folder")          # merged dict, file names kept

Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import json
import os
import struct

import torch

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
HEADER_MAX = 100_000_000


def _tensor(buf, dtype, shape):
    buf = bytearray(buf)  # writable, owned by the tensor
    if not buf:
        return torch.empty(shape, dtype=_DTYPES[dtype])
    if dtype == "BF16":
        return torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16).reshape(shape)
    return torch.frombuffer(buf, dtype=_DTYPES[dtype]).reshape(shape)


def loads(data):
    """(tensors, metadata) from the bytes of a safetensors file; checks the layout."""
    if len(data) < 8:
        raise ValueError("too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > HEADER_MAX or 8 + n > len(data):
        raise ValueError("bad header length %d" % n)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    buf = memoryview(data)[8 + n:]
    out, spans = {}, []
    for name, e in header.items():
        dtype, shape, (begin, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in _DTYPES:
            raise ValueError("%s: dtype %s not supported here" % (name, dtype))
        numel = 1
        for d in shape:
            numel *= d
        if end - begin != numel * torch.tensor([], dtype=_DTYPES[dtype]).element_size():
            raise ValueError("%s: size mismatch" % name)
        spans.append((begin, end, name))
        out[name] = _tensor(bytes(buf[begin:end]), dtype, shape)
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ValueError("%s: data not contiguous" % name)
        pos = end
    if pos != len(buf):
        raise ValueError("trailing bytes")
    return out, meta


def load(path):
    with open(path, "rb") as f:
        return loads(f.read())


def dumps(tensors, metadata=None):
    """Bytes of a safetensors file (header padded with spaces to 8 bytes, like the reference)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def save(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(dumps(tensors, metadata))


def load_model(path):
    """A model written by tools/mksdmodel: one file, or a diffusers folder (the three component
    files merged, names as in the files). Returns (tensors, metadata of every file merged)."""
    if os.path.isfile(path):
        return load(path)
    tensors, meta = {}, {}
    for sub, base in (("unet", "diffusion_pytorch_model"), ("text_encoder", "model"),
                      ("vae", "diffusion_pytorch_model")):
        for suffix in (".safetensors", ".fp16.safetensors"):
            p = os.path.join(path, sub, base + suffix)
            if os.path.exists(p):
                t, m = load(p)
                tensors.update({sub + "/" + k: v for k, v in t.items()})
                meta.update(m)
                break
    return tensors, meta


if __name__ == "__main__":
    import sys
    for p in sys.argv[1:]:
        ts, md = load_model(p)
        print(p, len(ts), "tensors", sum(t.numel() for t in ts.values()), "elements", md)
