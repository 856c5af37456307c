#!/usr/bin/python3
"""Goldens for src/engine/sample schedules and samplers (tests/goldens/engine/sample/sampling.bin).

An independent float64 port of the formulas the C code follows:
  - schedule: LDM make_beta_schedule("linear") (torch.linspace of sqrt(betas), float64),
    alphas_cumprod, k-diffusion DiscreteSchedule (sigma_to_t / t_to_sigma / get_sigmas),
    k-diffusion get_sigmas_karras / get_sigmas_exponential, ComfyUI sgm_uniform, diffusers
    EulerDiscreteScheduler "trailing" spacing (numpy arange) and LCMScheduler timesteps;
  - denoisers: k-diffusion DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser (sigma_data 1) and
    CFGDenoiser-style guidance on the denoised outputs (scale 1: no uncond pass);
  - samplers: k-diffusion sample_euler, sample_euler_ancestral (eta 1), sample_heun,
    sample_dpmpp_2m, sample_lcm, with noise from torch's CPU generator (torch.randn, float32).
The "network" is a toy analytic function (toy_model below, written identically in
tests/unit/engine/sample/test_sampling.c), so whole trajectories are checked.

Run: /usr/bin/python3 tests/reference/gen_sampling.py   (no build needed)
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smp_golden import GoldenWriter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/goldens/engine/sample/sampling.bin")

C, H, W = 4, 5, 7  # latent shape; 140 floats, not a multiple of 16 (exercises randn's tail)
N = C * H * W

# ---------------------------------------------------------------------------------------------
# schedules


def ldm_alphas_cumprod(n=1000, start=0.00085, end=0.012):
    betas = torch.linspace(start**0.5, end**0.5, n, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def cosine_alphas_cumprod(n=1000, s=0.008):
    """A different valid table (improved-DDPM cosine), standing in for a checkpoint's."""
    t = torch.arange(n + 1, dtype=torch.float64) / n
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = torch.clamp(1 - f[1:] / f[:-1], max=0.999)
    return torch.cumprod(1.0 - betas, dim=0)


class Discrete:
    """k-diffusion external.DiscreteSchedule in float64."""

    def __init__(self, alphas_cumprod):
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.log_sigmas = self.sigmas.log()

    @property
    def sigma_min(self):
        return self.sigmas[0]

    @property
    def sigma_max(self):
        return self.sigmas[-1]

    def sigma_to_t(self, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=self.log_sigmas.shape[0] - 2)
        high_idx = low_idx + 1
        low, high = self.log_sigmas[low_idx], self.log_sigmas[high_idx]
        w = (low - log_sigma) / (low - high)
        w = w.clamp(0, 1)
        t = (1 - w) * low_idx + w * high_idx
        return t.view(sigma.shape)

    def t_to_sigma(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        low_idx, high_idx, w = t.floor().long(), t.ceil().long(), t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low_idx] + w * self.log_sigmas[high_idx]
        return log_sigma.exp()


def append_zero(x):
    return torch.cat([x, x.new_zeros([1])])


def sched_sigmas(d, kind, n):
    T = len(d.sigmas)
    if kind == "discrete":
        t = torch.linspace(T - 1, 0, n, dtype=torch.float64)
        return append_zero(d.t_to_sigma(t))
    if kind == "karras":
        rho = 7.0
        ramp = torch.linspace(0, 1, n, dtype=torch.float64)
        min_inv_rho = d.sigma_min ** (1 / rho)
        max_inv_rho = d.sigma_max ** (1 / rho)
        return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)
    if kind == "exponential":
        return append_zero(torch.linspace(math.log(d.sigma_max), math.log(d.sigma_min), n,
                                          dtype=torch.float64).exp())
    if kind == "sgm_uniform":
        start = d.sigma_to_t(d.sigma_max)
        end = d.sigma_to_t(d.sigma_min)
        ts = torch.linspace(float(start), float(end), n + 1, dtype=torch.float64)[:-1]
        return append_zero(d.t_to_sigma(ts))
    if kind == "trailing":
        step_ratio = T / n
        ts = np.round(np.arange(T, 0, -step_ratio)).astype(np.int64)[:n] - 1
        return append_zero(d.sigmas[torch.from_numpy(ts)])
    if kind == "lcm":
        k = T // 50
        origin = np.asarray(list(range(1, 51))) * k - 1
        idx = np.floor(np.linspace(0, len(origin), num=n, endpoint=False)).astype(np.int64)
        ts = origin[::-1][idx]
        return append_zero(d.sigmas[torch.from_numpy(ts.copy())])
    raise ValueError(kind)


SCHED_KINDS = ["discrete", "karras", "exponential", "sgm_uniform", "trailing", "lcm"]
SCHED_STEPS = [1, 2, 3, 4, 7, 8, 10, 20, 25, 48, 50, 100, 1000]

# ---------------------------------------------------------------------------------------------
# the toy network (keep identical to toy_model() in test_sampling.c)


def toy_model(x_in, t, batch):
    i = np.arange(N)
    out = []
    for b in range(batch):
        x = x_in[b]
        p = (0.6 * x * (1 + 0.3 * np.cos(t / 150.0)) + 0.4 * np.sin(1.7 * x + 0.01 * t)
             + 0.05 * ((i % 5) - 2))
        if b == 1:
            p = p + 0.2 * np.cos(x) - 0.1
        out.append(p)
    return out


class Denoiser:
    def __init__(self, disc, pred, cfg):
        self.d, self.pred, self.cfg = disc, pred, cfg
        self.calls = 0
        self.items = 0

    def __call__(self, x, sigma):
        sigma = float(sigma)
        c_in = 1.0 / math.sqrt(sigma**2 + 1)
        if self.pred == "eps":
            c_skip, c_out = 1.0, -sigma
        else:
            c_skip, c_out = 1.0 / (sigma**2 + 1), -sigma / math.sqrt(sigma**2 + 1)
        batch = 1 if self.cfg == 1.0 else 2
        t = float(self.d.sigma_to_t(sigma))
        preds = toy_model([x * c_in] * batch, t, batch)
        self.calls += 1
        self.items += batch
        dc = c_skip * x + c_out * preds[0]
        if batch == 1:
            return dc
        du = c_skip * x + c_out * preds[1]
        return du + self.cfg * (dc - du)


# ---------------------------------------------------------------------------------------------
# k-diffusion samplers, float64; `after` runs after each step (masked blending), `noise` draws


def to_d(x, sigma, denoised):
    return (x - denoised) / sigma


def get_ancestral_step(sigma_from, sigma_to, eta=1.0):
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def sample(kind, model, x, sigmas, noise, after):
    sig = [float(s) for s in sigmas]
    xs = []
    old_denoised = None
    for i in range(len(sig) - 1):
        denoised = model(x, sig[i])
        if kind == "euler":
            x = x + to_d(x, sig[i], denoised) * (sig[i + 1] - sig[i])
        elif kind == "euler_a":
            down, up = get_ancestral_step(sig[i], sig[i + 1])
            x = x + to_d(x, sig[i], denoised) * (down - sig[i])
            if sig[i + 1] > 0:
                x = x + noise() * up
        elif kind == "heun":
            d = to_d(x, sig[i], denoised)
            dt = sig[i + 1] - sig[i]
            if sig[i + 1] == 0:
                x = x + d * dt
            else:
                x_2 = x + d * dt
                denoised_2 = model(x_2, sig[i + 1])
                d_2 = to_d(x_2, sig[i + 1], denoised_2)
                x = x + (d + d_2) / 2 * dt
        elif kind == "dpm++2m":
            t, t_next = -math.log(sig[i]), (-math.log(sig[i + 1]) if sig[i + 1] > 0 else math.inf)
            h = t_next - t
            ratio = math.exp(-t_next) / math.exp(-t)
            if old_denoised is None or sig[i + 1] == 0:
                x = ratio * x - math.expm1(-h) * denoised
            else:
                h_last = t - (-math.log(sig[i - 1]))
                r = h_last / h
                denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
                x = ratio * x - math.expm1(-h) * denoised_d
            old_denoised = denoised
        elif kind == "lcm":
            x = denoised
            if sig[i + 1] > 0:
                x = x + sig[i + 1] * noise()
        else:
            raise ValueError(kind)
        x = after(x, sig[i + 1])
        xs.append(x.copy())
    return xs


# (sampler, prediction, schedule, steps, cfg, seed, strength, mask, alphas)
CASES = [
    ("euler", "eps", "discrete", 10, 7.5, 1, 1.0, 0, "ldm"),
    ("euler", "v", "karras", 6, 1.0, 2, 1.0, 0, "ldm"),
    ("euler_a", "eps", "karras", 10, 5.0, 3, 1.0, 0, "ldm"),
    ("euler_a", "eps", "sgm_uniform", 4, 1.0, 4, 1.0, 0, "ldm"),
    ("heun", "v", "karras", 8, 1.0, 5, 1.0, 0, "ldm"),
    ("heun", "eps", "exponential", 5, 3.0, 6, 1.0, 0, "ldm"),
    ("dpm++2m", "eps", "karras", 12, 7.0, 7, 1.0, 0, "ldm"),
    ("dpm++2m", "v", "exponential", 10, 3.0, 8, 1.0, 0, "ldm"),
    ("dpm++2m", "eps", "discrete", 9, 1.0, 9, 1.0, 0, "cosine"),
    ("lcm", "eps", "lcm", 4, 1.0, 10, 1.0, 0, "ldm"),
    ("euler", "eps", "trailing", 1, 1.0, 11, 1.0, 0, "ldm"),
    ("euler_a", "eps", "trailing", 4, 1.0, 12, 1.0, 0, "ldm"),
    # img2img (strength < 1) and masked blending
    ("euler_a", "eps", "karras", 20, 6.0, 13, 0.6, 0, "ldm"),
    ("dpm++2m", "eps", "karras", 10, 5.0, 14, 0.75, 1, "ldm"),
    ("euler", "eps", "discrete", 8, 1.0, 15, 1.0, 1, "ldm"),
    ("lcm", "eps", "lcm", 6, 1.0, 16, 0.5, 1, "ldm"),
]


def init_latent():
    i = np.arange(N)
    return (1.5 * np.sin(0.37 * i) + 0.2 * np.cos(1.3 * i)).astype(np.float32)


def mask_plane():
    m = np.zeros((H, W), dtype=np.float32)
    m[1:4, 2:6] = 1.0
    m[1:4, 1] = 0.5  # a soft edge
    return m.reshape(-1)


def run_case(case, discs):
    kind, pred, sched, steps, cfg, seed, strength, use_mask, alphas = case
    d = discs[alphas]
    sigmas = sched_sigmas(d, sched, steps)
    start = steps - int(steps * strength)
    sigmas = sigmas[start:]
    gen = torch.Generator().manual_seed(seed)

    def noise():
        return torch.randn(N, generator=gen).numpy().astype(np.float64)

    first_noise = noise()
    init = init_latent().astype(np.float64) if strength < 1.0 or use_mask else np.zeros(N)
    x = init + float(sigmas[0]) * first_noise
    if use_mask:
        m = np.tile(mask_plane().astype(np.float64), C)

        def after(xx, sigma_next):
            return m * xx + (1 - m) * (init + sigma_next * first_noise)
    else:
        def after(xx, sigma_next):
            return xx
    model = Denoiser(d, pred, cfg)
    xs = sample(kind, model, x, sigmas, noise, after)
    return np.stack(xs), model.calls, model.items


def main():
    discs = {"ldm": Discrete(ldm_alphas_cumprod()), "cosine": Discrete(cosine_alphas_cumprod())}
    w = GoldenWriter(OUT)
    w.f64("alphas ldm", ldm_alphas_cumprod())
    w.f64("alphas cosine", cosine_alphas_cumprod())
    for name, d in discs.items():
        w.f64(f"sigmas {name}", d.sigmas)
        probe = torch.cat([torch.tensor([0.001, 0.01, float(d.sigmas[0])], dtype=torch.float64),
                           torch.exp(torch.linspace(math.log(0.02), math.log(20.0), 61,
                                                    dtype=torch.float64)),
                           torch.tensor([float(d.sigmas[-1]), 100.0, 1e4], dtype=torch.float64)])
        w.f64(f"s2t_in {name}", probe)
        w.f64(f"s2t_out {name}", d.sigma_to_t(probe))
        ts = torch.tensor([0, 0.25, 0.5, 1, 1.5, 17.3, 250, 499.5, 500, 998.75, 999],
                          dtype=torch.float64)
        w.f64(f"t2s_in {name}", ts)
        w.f64(f"t2s_out {name}", d.t_to_sigma(ts))
        for kind in SCHED_KINDS:
            for steps in SCHED_STEPS:
                if kind == "lcm" and steps > 50:
                    continue
                w.f64(f"sched {name} {kind} {steps}", sched_sigmas(d, kind, steps))
    w.f32("init", init_latent())
    w.f32("mask", mask_plane())
    for case in CASES:
        xs, calls, items = run_case(case, discs)
        key = "%s %s %s %d %g %d %g %d %s" % case
        w.f64(f"traj {key}", xs)
        w.i64(f"calls {key}", [calls, items])
    print("gen_sampling: wrote", w.save())


if __name__ == "__main__":
    main()
