#!/usr/bin/python3
"""Goldens for src/engine/nn and src/engine/engine.c (tests/goldens/engine/nn/*.bin).

Writes our tiny random-weight models with $BUILD/tools/mksdmodel (fixed seeds; the C tests
regenerate the same files with the same writer) and a synthetic CLIP vocabulary with
$BUILD/tools/mkclipvocab, runs the independent float64 reference (ldm_ref.py) on them and stores
named intermediates and outputs in the "ISDGOLD1" record format (smp_golden.py; layout in
tests/reference/README.md, section engine/nn):

  sd1.bin      tiny-sd1 (--exact, seed SEED): text encoder on fixed ids (every layer), UNet on a
               fixed batch of 2 (x, fractional t per item, random context; every block), VAE
               decode and encode (every level); plus the outputs on the non-exact F16 and BF16
               files of the same seed ("f16 ...", "bf16 ...": the reference reads those rounded
               weights).
  sd2.bin      tiny-sd2 (OpenCLIP text tower, penultimate layer + ln_final, Linear proj_in,
               16-channel heads): text encoder and UNet intermediates, VAE outputs.
  inpaint.bin  tiny-inpaint: the 9-channel UNet on cat(x, mask, masked-image latent).
  traj.bin     whole txt2img runs: tokenize (prompt, "") -> text encoder -> k-diffusion
               sampler (euler / dpm++2m, CFG 7.5, torch.manual_seed noise) -> VAE decode ->
               8-bit image, for tiny-sd1 (eps) and tiny-sd2 (v-prediction, pad 0).

Run: BUILD=build /usr/bin/python3 tests/reference/gen_nn.py   (needs $BUILD/tools/mksdmodel
and mkclipvocab; about a minute)
"""
import math
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
from gen_sampling import Discrete, ldm_alphas_cumprod, sample, sched_sigmas  # noqa: E402
from smp_golden import GoldenWriter  # noqa: E402
from tok_clip import SimpleTokenizer, hf_sd1_ids, open_clip_ids  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "goldens", "engine", "nn")

SEEDS = {"tiny-sd1": 4242, "tiny-sd2": 4243, "tiny-inpaint": 4244}  # mksdmodel --seed
SHARPEN = 16.0       # attention query/key weights are multiplied by this (see sharpen())
SHARPEN_SUFFIXES = ("attn1.to_q.weight", "attn1.to_k.weight", "attn2.to_q.weight",
                    "attn2.to_k.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                    "mid.attn_1.q.weight", "mid.attn_1.k.weight")
VOCAB_SEED = 0       # mkclipvocab full 0
UNET_B, UNET_H, UNET_W = 2, 8, 6     # latent batch and size of the UNet cases
UNET_T = [999.0, 421.375]            # per-item timesteps (fractional on purpose)
VAE_H, VAE_W = 2, 3                  # latent size of the VAE cases (image 16 x 24)
TEXT_IDS_FIXED = [49406, 320, 1125, 539, 42, 7, 1000, 49000, 2368, 49407]

# whole-pipeline cases (see traj.bin above); keep in sync with test_engine_golden.c
TRAJ_PROMPT = "a photograph of an astronaut riding a horse, 8k"
TRAJ_W, TRAJ_H, TRAJ_STEPS, TRAJ_CFG, TRAJ_SEED = 64, 48, 4, 7.5, 42
TRAJ_CASES = [("sd1", "euler", "discrete"), ("sd1", "dpm++2m", "karras"),
              ("sd2", "euler", "discrete"), ("sd2", "dpm++2m", "karras")]


def tool(name):
    build = os.environ.get("BUILD", "build")
    path = os.path.join(ROOT, build, "tools", name)
    if not os.access(path, os.X_OK):
        sys.exit(f"gen_nn: {path} not found; build it first (make BUILD={build} tools)")
    return path


def sharpen(tensors):
    """Random weights ~N(0, 0.02) make every attention nearly uniform (scores ~1e-2), which
    would leave head splitting, scales and masks untested. So the query and key projections
    (q_proj/k_proj, to_q/to_k, the VAE's q/k, the first 2C rows of OpenCLIP's fused in_proj)
    are multiplied by SHARPEN, a power of two: exact in F32, F16 and BF16 alike. The C tests
    apply the same patch to the file bytes (nn_test.h, nn_sharpen_file)."""
    for name, t in tensors.items():
        if name.endswith(SHARPEN_SUFFIXES):
            tensors[name] = (t.double() * SHARPEN).to(t.dtype)
        elif name.endswith("attn.in_proj_weight"):
            c = t.shape[0] // 3
            u = t.double()
            u[:2 * c] *= SHARPEN
            tensors[name] = u.to(t.dtype)
    return tensors


def make_model(tmp, preset, dtype="f32", exact=True):
    path = os.path.join(tmp, f"{preset}-{dtype}-{int(exact)}.safetensors")
    cmd = [tool("mksdmodel"), "--preset", preset, "--layout", "single", "--dtype", dtype,
           "--seed", str(SEEDS[preset]), "-o", path]
    if exact:
        cmd.append("--exact")
    subprocess.run(cmd, check=True)
    tensors, meta = st.load(path)
    return ldm_ref.Model(sharpen(tensors), meta)


def inputs(gen_seed, *shape, scale=1.0):
    """float32 inputs (what the C side reads back from the golden)"""
    g = torch.Generator().manual_seed(gen_seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).float()


class Recorder:
    def __init__(self, w, prefix, keep=None):
        self.w, self.prefix, self.keep = w, prefix, keep

    def __call__(self, name, x):
        if self.keep is None or name in self.keep:
            self.w.f32(self.prefix + name, x.detach().numpy())


def text_ids():
    """two fixed 77-token sequences: ids spread over the vocabulary, EOS-padded (SD1 style)
    and zero-padded (SD2 style) variants are both used"""
    a = TEXT_IDS_FIXED + [49407] * (77 - len(TEXT_IDS_FIXED))
    b = [49406] + [(i * 7919 + 13) % 49406 for i in range(60)] + [49407] + [0] * 15
    return torch.tensor([a, b], dtype=torch.int64)


def net_cases(w, m, prefix, full=True, vae_full=True):
    ids = text_ids()
    if prefix == "":
        w.i64("input.ids", ids.numpy())
    keep = None if full else {"clip.final"}
    m.text_encode(ids, Recorder(w, prefix, keep))
    x = inputs(1, UNET_B, m.in_channels, UNET_H, UNET_W)
    ctx = inputs(2, UNET_B, 77, m.p[ldm_ref.UNET + "input_blocks.1.1.transformer_blocks.0."
                                     "attn2.to_k.weight"].shape[1])
    if prefix == "":
        w.f32("input.unet.x", x.numpy())
        w.f32("input.unet.t", np.array(UNET_T, dtype=np.float32))
        w.f32("input.unet.context", ctx.numpy())
    keep = None if full else {"unet.out"}
    m.unet(x.double(), torch.tensor(UNET_T, dtype=torch.float64), ctx.double(),
           Recorder(w, prefix, keep))
    z = inputs(3, 1, 4, VAE_H, VAE_W)
    img = (inputs(4, 1, 3, VAE_H * 8, VAE_W * 8) * 0.5).clamp(-1, 1)
    if prefix == "":
        w.f32("input.vae.z", z.numpy())
        w.f32("input.vae.image", img.numpy())
    keep = None if full and vae_full else {"vae.decoder.out", "vae.encoder.mean"}
    rec = Recorder(w, prefix, keep)
    m.vae_decode(z.double(), rec)
    rec("vae.encoder.mean", m.vae_encode(img.double(), rec))


def gen_sd(tmp, preset, out_name, dtype_variants, vae_full):
    w = GoldenWriter(os.path.join(OUT, out_name))
    w.i64("seed", np.array([SEEDS[preset]]))
    w.f64("sharpen", np.array([SHARPEN]))
    m = make_model(tmp, preset)
    net_cases(w, m, "", full=True, vae_full=vae_full)
    for dt in dtype_variants:
        net_cases(w, make_model(tmp, preset, dt, exact=False), dt + " ", full=False)
    return w.save()


def gen_inpaint(tmp):
    w = GoldenWriter(os.path.join(OUT, "inpaint.bin"))
    w.i64("seed", np.array([SEEDS["tiny-inpaint"]]))
    w.f64("sharpen", np.array([SHARPEN]))
    m = make_model(tmp, "tiny-inpaint")
    x = inputs(11, UNET_B, 4, UNET_H, UNET_W)
    mask = (inputs(12, UNET_B, 1, UNET_H, UNET_W) > 0).float()
    masked = inputs(13, UNET_B, 4, UNET_H, UNET_W)
    ctx = inputs(14, UNET_B, 77, 32)
    for k, v in (("x", x), ("mask", mask), ("masked", masked), ("context", ctx)):
        w.f32("inpaint." + k, v.numpy())
    w.f32("inpaint.t", np.array(UNET_T, dtype=np.float32))
    # LDM hybrid conditioning / sd.cpp / diffusers: cat(x_t, mask, masked-image latent)
    xin = torch.cat([x, mask, masked], dim=1).double()
    out = m.unet(xin, torch.tensor(UNET_T, dtype=torch.float64), ctx.double())
    w.f32("inpaint.out", out.numpy())
    return w.save()


class UnetDenoiser:
    """k-diffusion CompVisDenoiser / CompVisVDenoiser with CFG on [cond, uncond]"""

    def __init__(self, m, disc, pred, cfg, cond, uncond, shape):
        self.m, self.d, self.pred, self.cfg = m, disc, pred, cfg
        self.ctx = torch.cat([cond, uncond], dim=0)
        self.shape = shape

    def __call__(self, x, sigma):
        sigma = float(sigma)
        c_in = 1.0 / math.sqrt(sigma**2 + 1)
        if self.pred == "eps":
            c_skip, c_out = 1.0, -sigma
        else:
            c_skip, c_out = 1.0 / (sigma**2 + 1), -sigma / math.sqrt(sigma**2 + 1)
        t = float(self.d.sigma_to_t(sigma))
        xt = torch.from_numpy(x * c_in).reshape(self.shape)
        out = self.m.unet(torch.cat([xt, xt], dim=0), torch.tensor([t, t], dtype=torch.float64),
                          self.ctx).reshape(2, -1).numpy()
        dc = c_skip * x + c_out * out[0]
        du = c_skip * x + c_out * out[1]
        return du + self.cfg * (dc - du)


def gen_traj(tmp):
    d = os.path.join(tmp, "vocab")
    subprocess.run([tool("mkclipvocab"), d, "full", str(VOCAB_SEED)], check=True)
    tok = SimpleTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
    w = GoldenWriter(os.path.join(OUT, "traj.bin"))
    w.i64("sd1 seed", np.array([SEEDS["tiny-sd1"]]))
    w.i64("sd2 seed", np.array([SEEDS["tiny-sd2"]]))
    w.f64("sharpen", np.array([SHARPEN]))
    w.f64("params", np.array([TRAJ_W, TRAJ_H, TRAJ_STEPS, TRAJ_CFG, TRAJ_SEED, VOCAB_SEED]))
    disc = Discrete(ldm_alphas_cumprod())
    models = {"sd1": make_model(tmp, "tiny-sd1"), "sd2": make_model(tmp, "tiny-sd2")}
    lh, lw = TRAJ_H // 8, TRAJ_W // 8
    n = 4 * lh * lw
    for fam, m in models.items():
        ids_fn = hf_sd1_ids if fam == "sd1" else open_clip_ids
        ids = torch.tensor([ids_fn(tok, TRAJ_PROMPT), ids_fn(tok, "")], dtype=torch.int64)
        w.i64(f"{fam} ids", ids.numpy())
        ctx = m.text_encode(ids)
        w.f32(f"{fam} context", ctx.numpy())
    for fam, sampler, sched in TRAJ_CASES:
        m = models[fam]
        ids_fn = hf_sd1_ids if fam == "sd1" else open_clip_ids
        ids = torch.tensor([ids_fn(tok, TRAJ_PROMPT), ids_fn(tok, "")], dtype=torch.int64)
        ctx = m.text_encode(ids)
        pred = m.meta.get("sdc.prediction", "eps")
        den = UnetDenoiser(m, disc, pred, TRAJ_CFG, ctx[:1], ctx[1:], (1, 4, lh, lw))
        sigmas = sched_sigmas(disc, sched, TRAJ_STEPS)
        gen = torch.Generator().manual_seed(TRAJ_SEED)

        def noise():
            return torch.randn(n, generator=gen).numpy().astype(np.float64)

        x = float(sigmas[0]) * noise()
        xs = sample(sampler, den, x, sigmas, noise, lambda xx, s: xx)
        key = f"{fam} {sampler} {sched}"
        w.f32(key + " latents", np.stack(xs))
        img = m.vae_decode(torch.from_numpy(xs[-1]).reshape(1, 4, lh, lw))
        w.f32(key + " image", img.numpy())
        w.u32(key + " rgb", ldm_ref.to_uint8(img).numpy().astype(np.uint32))
    return w.save()


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for path in (gen_sd(tmp, "tiny-sd1", "sd1.bin", ["f16", "bf16"], True),
                     gen_sd(tmp, "tiny-sd2", "sd2.bin", [], False),
                     gen_inpaint(tmp), gen_traj(tmp)):
            print(f"gen_nn: wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
