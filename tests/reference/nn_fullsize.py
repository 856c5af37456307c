#!/usr/bin/python3
"""One-off check of the C networks at full size (not a golden: the models are 2-3 GB and are
never committed). Writes random sd15/sd21 models (F16, seed 2) with $BUILD/tools/mksdmodel,
runs ldm_ref.py in float64 on them (text encoder on fixed ids, UNet on an 8x8 latent at
t = 637.5, VAE decoder on a 2x2 latent) and `$BUILD/bench/engine_sd --check` on the same inputs,
and prints the relative L2 errors (bounds: text 5e-6, deeper than the tiny one; UNet 1e-5;
VAE 2e-5).

Run: BUILD=build /usr/bin/python3 tests/reference/nn_fullsize.py [sd15|sd21 ...]
     (needs `make BUILD=build tools build/bench/engine_sd`; about 15 GB of RAM for sd21)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ldm_ref  # noqa: E402
import st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BOUNDS = {"ctx": 5e-6, "eps": 1e-5, "img": 2e-5}  # text: 12-23 layers, not 2


def run(preset, tmp, build):
    model = os.path.join(tmp, preset + ".safetensors")
    subprocess.run([os.path.join(build, "tools", "mksdmodel"), "--preset", preset, "--layout",
                    "single", "--dtype", "f16", "--seed", "2", "-o", model], check=True)
    tensors, meta = st.load(model)
    m = ldm_ref.Model(tensors, meta)
    del tensors
    g = torch.Generator().manual_seed(5)
    ids = torch.tensor([[49406] + [(i * 7919 + 13) % 49406 for i in range(20)] + [49407] * 56])
    x = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64).float()
    z = torch.randn(1, 4, 2, 2, generator=g, dtype=torch.float64).float()
    ctx = m.text_encode(ids)
    ref = {"ctx": ctx,
           "eps": m.unet(x.double(), torch.tensor([637.5], dtype=torch.float64),
                         ctx.float().double()),
           "img": m.vae_decode(z.double())}
    del m
    prefix = os.path.join(tmp, preset)
    ids.numpy().astype("<i4").tofile(prefix + ".ids")
    x.numpy().astype("<f4").tofile(prefix + ".x")
    z.numpy().astype("<f4").tofile(prefix + ".z")
    ctx.float().numpy().astype("<f4").tofile(prefix + ".ctx32")
    subprocess.run([os.path.join(build, "bench", "engine_sd"), "--check", prefix, "-m", model],
                   check=True)
    ok = True
    for k, r in ref.items():
        c = np.fromfile(prefix + ".c_" + k, dtype="<f4").astype(np.float64)
        r = r.numpy().reshape(-1)
        err = np.linalg.norm(c - r) / np.linalg.norm(r)
        ok &= err <= BOUNDS[k]
        print(f"{preset} {k}: rel-L2 {err:.2e} (bound {BOUNDS[k]:.0e})")
    return ok


def main():
    build = os.path.join(ROOT, os.environ.get("BUILD", "build"))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for preset in sys.argv[1:] or ["sd15", "sd21"]:
            ok &= run(preset, tmp, build)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
