"""Synthetic ground-truth phantoms for solver tests (written here, no external data)."""
from __future__ import annotations

import numpy as np

from fusedem.phantoms import psnr  # noqa: F401  (one definition, re-exported for the tests)
from fusedem.solver import channel_weights


def grain_phantom(shape=(96, 96), seed=0):
    """Three-element phantom: two grains with different chemistry and a matrix.

    Returns (truth: dict symbol -> (ny, nx) in [0, 1], z (3,)). Piecewise-constant
    regions with a few round particles: what TV-regularised fusion is made for.
    """
    ny, nx = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx]
    grain = (xx > nx * 0.45 + 6 * np.sin(yy / 9.0)).astype(float)
    parts = np.zeros(shape)
    for _ in range(7):
        cy, cx, r = rng.uniform(10, ny - 10), rng.uniform(10, nx * 0.4), rng.uniform(3, 7)
        parts[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1.0
    heavy = 0.9 * grain + 0.1  # e.g. Dy-rich grain
    light = 0.8 * (1 - grain) * (1 - parts) + 0.1  # e.g. Sc-rich matrix
    oxygen = 0.6 + 0.3 * parts  # O everywhere, richer in the particles
    truth = {"Dy": heavy, "Sc": light, "O": oxygen}
    return truth, np.array([66.0, 21.0, 8.0])


def measure(truth, z, gamma=1.6, dose=8.0, haadf_noise=0.01, seed=1):
    """Forward model: HAADF = A x^gamma (+ small Gaussian noise), maps ~ Poisson(dose * x)."""
    rng = np.random.default_rng(seed)
    w = channel_weights(z, "z", gamma)
    haadf = sum(wi * t**gamma for wi, t in zip(w, truth.values()))
    haadf = haadf + haadf_noise * haadf.max() * rng.standard_normal(haadf.shape)
    maps = {k: rng.poisson(dose * t).astype(float) for k, t in truth.items()}
    return haadf, maps
