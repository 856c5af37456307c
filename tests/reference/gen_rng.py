#!/usr/bin/python3
"""Goldens for the torch-compatible RNG of src/engine/sample (tests/goldens/engine/sample/rng.bin).

The reference is PyTorch itself (Debian's python3-torch 1.13.1): torch.manual_seed(seed) then
torch.randn(n) in float32, on the CPU. torch's n >= 16 kernel depends on the CPU capability it
dispatches to, so the script records both: this process (Debian's build dispatches to its AVX2
kernel) and a child run with ATEN_CPU_CAPABILITY=default (the scalar kernel that AVX-512
capable builds also use). The raw MT19937 words come from numpy's legacy RandomState
(an independent MT19937 implementation with the same init_genrand seeding); the script checks
that this stream is the one torch consumes, by rebuilding torch's float64 randn from it.

Run: /usr/bin/python3 tests/reference/gen_rng.py   (no build needed)
"""
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smp_golden import GoldenWriter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/goldens/engine/sample/rng.bin")

SEEDS = [0, 1, 42, 2**32 + 5, 2**63 - 1, 2**64 - 1]  # 2^64 - 1 is torch.manual_seed(-1)
SIZES = [1, 7, 15, 16, 17, 100]
BIG = 4 * 64 * 64  # one SD latent at 512x512
BIG_SEEDS = [0, 42]
SEQ = [7, 100, 1, 16, 3, 33, 15, 2, 140, 5]  # successive randn calls on one generator
U32_COUNT = 1500  # more than two MT19937 twists


def torch_seed(seed):
    # torch.manual_seed takes int64 or uint64; 2^64 - 1 is passed as -1
    torch.manual_seed(seed if seed < 2**63 else seed - 2**64)


def draws():
    """randn results of this process (one capability)."""
    out = {}
    for seed in SEEDS:
        for n in SIZES + ([BIG] if seed in BIG_SEEDS else []):
            torch_seed(seed)
            out[("randn", seed, n)] = torch.randn(n).numpy().copy()
        torch_seed(seed)
        out[("seq", seed)] = np.concatenate([torch.randn(n).numpy() for n in SEQ])
    return out


def mt_words(seed, count):
    rs = np.random.RandomState(seed & 0xFFFFFFFF)
    return rs._bit_generator.random_raw(count).astype(np.uint32)


def check_stream(seed):
    """torch's float64 randn (n < 16 path) rebuilt from the numpy MT words must match exactly."""
    words = iter(mt_words(seed, 64).tolist())
    vals, cached = [], None
    for _ in range(15):
        if cached is not None:
            vals.append(cached)
            cached = None
            continue
        u = []
        for _ in range(2):
            hi, lo = next(words), next(words)
            u.append((((hi << 32) | lo) & ((1 << 53) - 1)) * 2.0**-53)
        r = math.sqrt(-2.0 * math.log(1.0 - u[1]))
        th = 2.0 * math.pi * u[0]
        cached = r * math.sin(th)
        vals.append(r * math.cos(th))
    torch_seed(seed)
    ref = torch.randn(15, dtype=torch.float64).numpy()
    if not np.array_equal(ref, np.array(vals)):
        sys.exit(f"gen_rng: the numpy MT19937 stream does not reproduce torch for seed {seed}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        with open(sys.argv[2], "wb") as f:
            pickle.dump(draws(), f)
        return
    for seed in SEEDS:
        check_stream(seed)
    avx2 = draws()
    tmp = OUT + ".child.pkl"
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--child", tmp], env=env,
                   check=True)
    with open(tmp, "rb") as f:
        scalar = pickle.load(f)
    os.unlink(tmp)
    big = ("randn", BIG_SEEDS[0], BIG)
    if np.array_equal(avx2[big], scalar[big]):
        sys.exit("gen_rng: ATEN_CPU_CAPABILITY=default changed nothing; which kernel ran?")
    w = GoldenWriter(OUT)
    for seed in SEEDS:
        w.u32(f"u32 {seed}", mt_words(seed, U32_COUNT))
    w.i64("seq_sizes", SEQ)
    for kind, d in (("avx2", avx2), ("scalar", scalar)):
        for key, arr in d.items():
            if key[0] == "randn":
                w.f32(f"randn {kind} {key[1]} {key[2]}", arr)
            else:
                w.f32(f"seq {kind} {key[1]}", arr)
    print("gen_rng: wrote", w.save())


if __name__ == "__main__":
    main()
