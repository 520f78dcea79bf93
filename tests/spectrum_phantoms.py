"""Synthetic EDS spectrum images with known per-pixel line counts (tests and benchmarks)."""
from __future__ import annotations

from math import log, sqrt

import numpy as np

from fusedem.spectra import EnergyAxis, fwhm_kev

#: Kα, Kβ (keV) from the X-ray data booklet, independent of the code's database.
LINES = {"O": (0.525, None), "Ti": (4.511, 4.932), "Fe": (6.404, 7.058), "Cu": (8.048, 8.905)}
KBETA = 0.13
AXIS = EnergyAxis(offset=-0.2, scale=0.02, units="keV", size=550)  # -0.2 … 10.78 keV


def phase_truth(shape=(48, 48), seed=0, rare: bool = True) -> dict[str, np.ndarray]:
    """Kα counts per pixel at dose 1 from a few phases (a low-rank cube, as in real SIs).

    Matrix (O, Ti), a Fe-rich grain, Cu particles, and (``rare``) a 3 × 3 Cu–Fe
    inclusion that a rank too low flattens. Dose scales all counts.
    """
    ny, nx = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx]
    grain = (xx > nx * 0.55 + 4 * np.sin(yy / 7.0)).astype(float)
    parts = np.zeros(shape)
    for _ in range(5):
        cy, cx, r = rng.uniform(6, ny - 6), rng.uniform(6, nx * 0.5), rng.uniform(2, 5)
        parts[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1.0
    matrix = (1 - grain) * (1 - parts)
    t = {"O": 1.0 * matrix + 0.6 * grain + 0.3 * parts,
         "Ti": 0.8 * matrix + 0.1 * grain,
         "Fe": 0.1 * matrix + 0.9 * grain,
         "Cu": 0.05 + 0.8 * parts}
    if rare:
        inc = (np.abs(yy - ny // 4) <= 1) & (np.abs(xx - 3 * nx // 4) <= 1)
        t["Cu"] = np.where(inc, 0.9, t["Cu"])
        t["Fe"] = np.where(inc, 0.2, t["Fe"])
    return t


def expected_cube(truth: dict[str, np.ndarray], dose: float, axis: EnergyAxis = AXIS) -> np.ndarray:
    """(ny, nx, n_channels) expected counts: Gaussian Kα/Kβ lines on a continuum, × dose."""
    e = axis.energies_kev()
    ny, nx = next(iter(truth.values())).shape
    ep = np.clip(e, 0, None)
    continuum = 0.02 * ep * np.exp(-ep / 2.5) + 0.002
    mass = 1.0 + 0.3 * np.add.outer(np.arange(ny) / ny, np.arange(nx) / nx)
    cube = mass[..., None] * continuum[None, None, :]
    for el, amount in truth.items():
        ka, kb = LINES[el]
        for energy, frac in ((ka, 1.0), (kb, KBETA)):
            if energy is None:
                continue
            sigma = fwhm_kev(energy) / (2 * sqrt(2 * log(2)))
            g = np.exp(-0.5 * ((e - energy) / sigma) ** 2) * axis.scale_kev / (sigma * sqrt(2 * np.pi))
            cube = cube + frac * amount[..., None] * g[None, None, :]
    return dose * cube


def poisson_cube(truth, dose, seed=0, axis: EnergyAxis = AXIS) -> np.ndarray:
    """Poisson counts (uint32) drawn from :func:`expected_cube`."""
    return np.random.default_rng(seed).poisson(expected_cube(truth, dose, axis)).astype(np.uint32)
