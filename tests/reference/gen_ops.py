#!/usr/bin/python3
"""Golden files for src/engine/ops: every op at small shapes, computed by PyTorch in float64.

Run with Debian's python3 (torch 1.13): /usr/bin/python3 tests/reference/gen_ops.py
Writes tests/goldens/engine/ops/<case>.bin in the format of tests/reference/README.md
("engine/ops goldens"): inputs are stored as float32 (what the C op receives), outputs as
float64 computed from those float32 values, so the C tests need no PRNG parity with Python.
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "goldens", "engine", "ops")
MAGIC = b"ISDOPSG1"
GEN = torch.Generator().manual_seed(20240601)


def randn(*shape, scale=1.0):
    """float32 inputs (rounded once), returned as float64 for the reference math"""
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale).float().double()


def f32(t):
    """rounds a derived input to float32, the value the C op will see"""
    return t.float().double()


def write(name, arrays):
    """arrays: list of (name, tensor-or-scalar, dtype char 'f' | 'd' | 'i')"""
    path = os.path.join(OUT, name + ".bin")
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(arrays)))
        for key, value, kind in arrays:
            t = torch.as_tensor(value)
            kb = key.encode("ascii")
            f.write(struct.pack("<H", len(kb)) + kb)
            f.write(struct.pack("<BB", ord(kind), t.dim()))
            for d in t.shape:
                f.write(struct.pack("<I", d))
            if kind == "f":
                f.write(t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes())
            elif kind == "d":
                f.write(t.to(torch.float64).contiguous().numpy().astype("<f8").tobytes())
            elif kind == "i":
                f.write(t.to(torch.int32).contiguous().numpy().astype("<i4").tobytes())
            else:
                raise ValueError(kind)
    return path


def conv_case(name, n, c_in, h, w, c_out, k, stride, pads, bias=True):
    """pads = (top, left, bottom, right); asymmetric pads go through F.pad as in the VAE"""
    x = randn(n, c_in, h, w)
    wt = randn(c_out, c_in, k, k, scale=1.0 / math.sqrt(c_in * k * k))
    b = randn(c_out, scale=0.1) if bias else None
    top, left, bottom, right = pads
    y = F.conv2d(F.pad(x, (left, right, top, bottom)), wt, b, stride=stride)
    arrays = [("shape", [n, c_in, h, w, c_out, k, k, stride, top, left, bottom, right], "i"),
              ("x", x, "f"), ("w", wt, "f")]
    if bias:
        arrays.append(("b", b, "f"))
    arrays.append(("y", y, "d"))
    write(name, arrays)


def attention_ref(q, k, v, batch, heads, lq, lk, d, causal, scale):
    """q [batch*lq, heads*d] etc., LDM layout; explicit math (torch 1.13 has no SDPA)"""
    qh = q.view(batch, lq, heads, d).permute(0, 2, 1, 3)
    kh = k.view(batch, lk, heads, d).permute(0, 2, 1, 3)
    vh = v.view(batch, lk, heads, d).permute(0, 2, 1, 3)
    s = torch.matmul(qh, kh.transpose(-1, -2)) * scale
    if causal:  # top-left aligned: query i sees keys j <= i
        mask = torch.ones(lq, lk, dtype=torch.bool).tril()
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = torch.matmul(p, vh)
    return o.permute(0, 2, 1, 3).reshape(batch * lq, heads * d)


def attention_case(name, batch, heads, lq, lk, d, causal, scale=None):
    q = randn(batch * lq, heads * d)
    k = randn(batch * lk, heads * d)
    v = randn(batch * lk, heads * d)
    sc = 1.0 / math.sqrt(d) if scale is None else scale
    # the C op uses float(scale): use the same value here
    sc = float(torch.tensor(sc, dtype=torch.float32))
    o = attention_ref(q, k, v, batch, heads, lq, lk, d, causal, sc)
    write(name, [("shape", [batch, heads, lq, lk, d, int(causal)], "i"),
                 ("scale", [sc], "f"), ("q", q, "f"), ("k", k, "f"), ("v", v, "f"),
                 ("o", o, "d")])


def timestep_embedding(t, dim, max_period):
    """LDM util.timestep_embedding with its float32 steps; exp/cos/sin correctly rounded"""
    half = dim // 2
    c = torch.tensor(-math.log(max_period), dtype=torch.float32)
    a = (torch.arange(half, dtype=torch.float32) * c) / torch.tensor(float(half), dtype=torch.float32)
    freqs = torch.exp(a.double()).float()
    args = (t.float()[:, None] * freqs[None]).double()
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)

    # convolutions: odd sizes, every padding mode the networks use
    conv_case("conv2d_3x3_s1", 2, 5, 7, 9, 6, 3, 1, (1, 1, 1, 1))
    conv_case("conv2d_3x3_s2", 1, 4, 9, 8, 5, 3, 2, (1, 1, 1, 1))
    conv_case("conv2d_3x3_s2_vae", 2, 3, 8, 10, 4, 3, 2, (0, 0, 1, 1))
    conv_case("conv2d_1x1", 2, 6, 5, 3, 4, 1, 1, (0, 0, 0, 0), bias=False)

    # linear and GEMMs
    x = randn(7, 12)
    w = randn(5, 12, scale=0.3)
    b = randn(5, scale=0.1)
    write("linear", [("x", x, "f"), ("w", w, "f"), ("b", b, "f"), ("y", x @ w.T + b, "d"),
                     ("y_nobias", x @ w.T, "d")])
    a = randn(3, 4, 6)
    bm = randn(3, 6, 5)
    write("bmm", [("a", a, "f"), ("b", bm, "f"), ("c", torch.bmm(a, bm), "d")])
    # C = alpha * A^T B^T + beta * C0 with A [k][m], B [n][k]
    a = randn(6, 4)
    bm = randn(5, 6)
    c0 = randn(4, 5)
    alpha, beta = 0.5, -1.5
    write("gemm_tt", [("a", a, "f"), ("b", bm, "f"), ("c0", c0, "f"),
                      ("alpha", [alpha], "f"), ("beta", [beta], "f"),
                      ("c", alpha * a.T @ bm.T + beta * c0, "d")])

    # attention: multi-head, Lq != Lk, causal (square and rectangular), non-default scale
    attention_case("attention", 2, 3, 7, 5, 4, False)
    attention_case("attention_causal", 1, 2, 6, 6, 8, True)
    attention_case("attention_causal_rect", 1, 2, 6, 9, 4, True)
    attention_case("attention_scale", 1, 1, 5, 11, 6, False, scale=0.3)

    # norms
    x = f32(randn(2, 64, 5, 3, scale=2.0) + 0.5)
    g = f32(1.0 + randn(64, scale=0.1))
    b = randn(64, scale=0.1)
    write("group_norm", [("shape", [2, 64, 15, 32], "i"), ("eps", [1e-5], "f"), ("x", x, "f"),
                         ("gamma", g, "f"), ("beta", b, "f"),
                         ("y", F.group_norm(x, 32, g, b, eps=float(torch.tensor(1e-5).float())), "d")])
    x = f32(randn(1, 32, 4, 4) * 0.01 + 3.0)  # small variance: eps matters
    g = f32(1.0 + randn(32, scale=0.1))
    b = randn(32, scale=0.1)
    eps6 = float(torch.tensor(1e-6).float())
    write("group_norm_silu", [("shape", [1, 32, 16, 32], "i"), ("eps", [1e-6], "f"),
                              ("x", x, "f"), ("gamma", g, "f"), ("beta", b, "f"),
                              ("y", F.silu(F.group_norm(x, 32, g, b, eps=eps6)), "d"),
                              ("y_noaffine", F.group_norm(x, 32, None, None, eps=eps6), "d")])
    x = f32(randn(6, 20, scale=3.0) - 1.0)
    g = f32(1.0 + randn(20, scale=0.1))
    b = randn(20, scale=0.1)
    write("layer_norm", [("eps", [1e-5], "f"), ("x", x, "f"), ("gamma", g, "f"), ("beta", b, "f"),
                         ("y", F.layer_norm(x, (20,), g, b, eps=float(torch.tensor(1e-5).float())), "d")])
    x = randn(4, 13, scale=4.0)
    x[2] *= 32.0  # a wide row (a power of two keeps it exact in float32)
    write("softmax", [("x", x, "f"), ("y", torch.softmax(x, dim=-1), "d")])

    # activations over a range that covers the tails
    x = torch.cat([torch.linspace(-15, 15, 241), randn(40, scale=3.0),
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 100.0, -100.0])]).float().double()
    write("activations", [("x", x, "f"), ("silu", F.silu(x), "d"), ("gelu", F.gelu(x), "d"),
                          ("quick_gelu", x * torch.sigmoid(1.702 * x), "d"),
                          ("relu", F.relu(x), "d"), ("tanh", torch.tanh(x), "d")])
    x = randn(5, 14, scale=2.0)
    a, gate = x.chunk(2, dim=-1)  # LDM GEGLU: first half x, second half gate
    write("geglu", [("x", x, "f"), ("y", a * F.gelu(gate), "d")])

    # element-wise arithmetic and broadcasts
    a = randn(37)
    bv = randn(37)
    s, alpha, beta = 0.18215, 1.5, -0.25
    write("eltwise", [("a", a, "f"), ("b", bv, "f"), ("s", [s], "f"), ("alpha", [alpha], "f"),
                      ("beta", [beta], "f"), ("add", a + bv, "d"), ("mul", a * bv, "d"),
                      ("scale", float(torch.tensor(s).float()) * a, "d"),
                      ("axpby", alpha * a + beta * bv, "d")])
    x = randn(2, 3, 5)
    cb = randn(3)
    emb = randn(2, 3)
    r = randn(4, 6)
    rb = randn(6)
    write("add_bias", [("x", x, "f"), ("bias", cb, "f"), ("emb", emb, "f"), ("rows", r, "f"),
                       ("row_bias", rb, "f"), ("y_channel", x + cb[None, :, None], "d"),
                       ("y_emb", x + emb[:, :, None], "d"), ("y_rows", r + rb[None, :], "d")])

    # layout ops and embeddings
    a = randn(2, 3, 4)
    bv = randn(2, 2, 4)
    write("concat", [("a", a, "f"), ("b", bv, "f"), ("y", torch.cat([a, bv], dim=1), "d")])
    x = randn(2, 3, 4)
    write("upsample", [("x", x, "f"),
                       ("y", F.interpolate(x[None], scale_factor=2.0, mode="nearest")[0], "d")])
    x = randn(2, 3, 5)
    write("transpose", [("x", x, "f"), ("y", x.transpose(1, 2), "d")])
    t = torch.tensor([0.0, 1.0, 37.5, 999.0])
    write("timestep", [("t", t, "f"), ("y32", timestep_embedding(t, 32, 10000.0), "d"),
                       ("y7", timestep_embedding(t, 7, 10000.0), "d")])
    table = randn(10, 6)
    pos = randn(4, 6)
    ids = torch.tensor([3, 0, 9, 3])
    write("embedding", [("table", table, "f"), ("pos", pos, "f"), ("ids", ids, "i"),
                        ("y", table[ids] + pos, "d"), ("y_nopos", table[ids], "d")])
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("gen_ops: %d files, %d bytes in %s" % (len(os.listdir(OUT)), total, os.path.normpath(OUT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
