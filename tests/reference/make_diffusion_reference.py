#!/usr/bin/env python3
"""Independent reference values for dualrs' diffusion denoiser (denoised smoothing).

The C++ code under test is src/dualrs/core/diffusion_schedule.{h,cpp} and
src/dualrs/model/{diffusion_denoiser,denoised_classifier}.{h,cpp} (Carlini et al.,
"(Certified!!) Adversarial Robustness for Free!", ICLR 2023; docs/method.md Section 9).
Nothing here calls dualrs. The schedules are written out in numpy float64 the way
improved-diffusion's gaussian_diffusion.py builds them:

  cosine: f(s) = cos(((s + 0.008) / 1.008) * pi / 2) ** 2,
          beta_i = min(1 - f((i + 1) / T) / f(i / T), 0.999), i = 0 .. T-1
  linear: scale = 1000 / T, beta = np.linspace(scale * 1e-4, scale * 0.02, T)
  alpha_bar = np.cumprod(1 - beta)

t* for sigma is Carlini et al.'s rule: the first t with
sqrt(1 - alpha_bar_t) / sqrt(alpha_bar_t) >= 2 sigma (found here by a linear
scan over all t, not a bisection); the network receives t * 1000 / T
(rescale_timesteps) and the effective sigma is sqrt(1 - abar) / (2 sqrt(abar)).

One-step denoising (the x0_hat formula) for the TorchScript epsilon-model fixtures of
tests/fixtures/make_torchscript_fixtures.py, whose outputs are known in closed form:

  eps_zero:          eps = 0
  eps_const:         eps = 0.5
  eps_linear:        eps = 0.5 * x_t + 0.001 * t          (t = the network timestep)
  eps_learned_sigma: first C of 2C channels = 0.25 * x_t - 0.1

  x_t = sqrt(abar) * (2 * x_noisy - 1)
  x0_hat = clip((x_t - sqrt(1 - abar) * eps) / sqrt(abar), -1, 1)

Resize: torch.nn.functional.interpolate(x, size, mode="bicubic", antialias=True,
align_corners=False) of fixed inputs (Debian python3-torch 1.13), the operation
Carlini et al.'s code applies before the classifier.

Usage (from the repository root):

    /usr/bin/python3 tests/reference/make_diffusion_reference.py --out tests/data/

Output: diffusion_reference.json with
  schedules: [{kind, steps, rescale, alpha_bar_samples: {t: abar}, betas_samples: {t: beta},
               steps_for_sigma: [{sigma, t, network_timestep, sqrt_alpha_bar,
                                  sqrt_one_minus_alpha_bar, effective_sigma,
                                  ratio_at_t, ratio_before_t}],
               out_of_range_sigma}]
  denoise: [{fixture, kind, steps, sigma, shape [B, C, H, W], x_noisy (flat), x0_hat (flat)}]
  resize: [{shape, size [h, w], x (flat), y (flat)}]
Floats are written by json (repr precision, round-trips to the same double).
"""
import argparse
import json
import math
import os

import numpy as np


def cosine_betas(T):
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=np.float64)


def linear_betas(T):
    scale = 1000 / T
    return np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)


def schedule(kind, T):
    betas = cosine_betas(T) if kind == "cosine" else linear_betas(T)
    return betas, np.cumprod(1.0 - betas, axis=0)


def t_star(alpha_bar, sigma):
    ratio = np.sqrt(1.0 - alpha_bar) / np.sqrt(alpha_bar)
    for t in range(len(alpha_bar)):
        if ratio[t] >= 2 * sigma:
            return t, ratio
    return None, ratio


def step(kind, T, sigma, rescale=True):
    _, abar = schedule(kind, T)
    t, ratio = t_star(abar, sigma)
    a = math.sqrt(abar[t])
    b = math.sqrt(1.0 - abar[t])
    return {
        "sigma": sigma, "t": t, "network_timestep": t * (1000.0 / T) if rescale else float(t),
        "sqrt_alpha_bar": a, "sqrt_one_minus_alpha_bar": b, "effective_sigma": b / (2 * a),
        "ratio_at_t": float(ratio[t]), "ratio_before_t": float(ratio[t - 1]) if t > 0 else None,
    }


SIGMAS = [0.12, 0.25, 0.5, 1.0]


def epsilon(fixture, x_t, t_net):
    if fixture == "eps_zero":
        return np.zeros_like(x_t)
    if fixture == "eps_const":
        return np.full_like(x_t, 0.5)
    if fixture == "eps_linear":
        return 0.5 * x_t + 0.001 * t_net
    if fixture == "eps_learned_sigma":
        return 0.25 * x_t - 0.1
    raise ValueError(fixture)


def noisy_input(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=shape)
    return x + rng.normal(0.0, 0.5, size=shape)  # pixel space x + delta (leaves [0, 1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    args = parser.parse_args()

    schedules = []
    for kind, T in [("cosine", 4000), ("linear", 1000), ("cosine", 1000), ("linear", 200)]:
        betas, abar = schedule(kind, T)
        samples = sorted({0, 1, 2, 10, 100, T // 4, T // 2, (3 * T) // 4, T - 2, T - 1})
        ratio_last = math.sqrt(1 - abar[-1]) / math.sqrt(abar[-1])
        schedules.append({
            "kind": kind, "steps": T, "rescale": True,
            "alpha_bar_samples": {str(t): float(abar[t]) for t in samples},
            "betas_samples": {str(t): float(betas[t]) for t in samples},
            "steps_for_sigma": [step(kind, T, s) for s in SIGMAS],
            "out_of_range_sigma": ratio_last / 2 * 1.01,
        })

    denoise = []
    shape = [2, 3, 4, 5]
    for i, (fixture, kind, T, sigma) in enumerate([
            ("eps_zero", "cosine", 4000, 0.25), ("eps_const", "cosine", 4000, 0.5),
            ("eps_linear", "cosine", 4000, 1.0), ("eps_linear", "linear", 1000, 0.12),
            ("eps_learned_sigma", "linear", 1000, 0.5), ("eps_const", "linear", 1000, 1.0)]):
        st = step(kind, T, sigma)
        x_noisy = noisy_input(shape, 100 + i)
        x_t = st["sqrt_alpha_bar"] * (2 * x_noisy - 1)
        eps = epsilon(fixture, x_t, st["network_timestep"])
        x0 = np.clip((x_t - st["sqrt_one_minus_alpha_bar"] * eps) / st["sqrt_alpha_bar"], -1, 1)
        denoise.append({"fixture": fixture, "kind": kind, "steps": T, "sigma": sigma, "shape": shape,
                        "x_noisy": x_noisy.ravel().tolist(), "x0_hat": x0.ravel().tolist()})

    import torch  # Debian python3-torch 1.13: the reference resize
    resize = []
    for shape_in, size in [([1, 1, 28, 28], [14, 14]), ([2, 3, 8, 8], [20, 20]), ([1, 2, 7, 9], [16, 5])]:
        rng = np.random.default_rng(7)
        x = rng.uniform(-1.0, 1.0, size=shape_in).astype(np.float32)
        y = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bicubic", antialias=True,
                                            align_corners=False)
        resize.append({"shape": shape_in, "size": size, "x": x.astype(np.float64).ravel().tolist(),
                       "y": y.double().numpy().ravel().tolist()})

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "diffusion_reference.json")
    with open(path, "w") as f:
        json.dump({"schedules": schedules, "denoise": denoise, "resize": resize}, f)
        f.write("\n")
    print("wrote", path)
    for s in schedules:
        print(s["kind"], s["steps"], [(d["sigma"], d["t"]) for d in s["steps_for_sigma"]])


if __name__ == "__main__":
    main()
