"""3-D phantoms with ground truth per element, and simulated tilt series.

Truth volumes are (ny, nz, nx) float32 in [0, 1] per element. :func:`simulate`
projects them with the strip-area projector on a grid ``oversample`` times finer
than the reconstruction's (so the reconstruction's operator is not the one that
made the data), then bins to the detector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..elements import atomic_number
from .projector import Projector

KINDS = ("core_shell", "layers")


@dataclass(frozen=True)
class TiltSeries:
    """Simulated data: HAADF (n_H, ny, nx), element -> (n_c, ny, nx) counts, angles (degrees)."""

    haadf: np.ndarray
    haadf_angles: np.ndarray
    maps: dict[str, np.ndarray]
    chem_angles: np.ndarray
    dose: float  #: expected counts per unit path through a voxel of value 1


def _grid(n: int, shape: tuple[int, int, int]):
    """Centred coordinates (y, z, x) in units of n (the cube's side), each (ny, nz, nx)."""
    return np.meshgrid(*[(np.arange(s) - (s - 1) / 2.0) / n for s in shape], indexing="ij")


def core_shell(n: int = 64, seed: int = 0, oversample: int = 1) -> dict[str, np.ndarray]:
    """Au-core / Fe-O-shell nanoparticles on a C support film: element -> (n, n, n) truth.

    The volume is built at n·oversample voxels and block-averaged to n (partial volumes).
    """
    m = n * oversample
    y, z, x = _grid(m, (m, m, m))
    rng = np.random.default_rng(seed)
    film_top = -0.2
    vol = {k: np.zeros((m, m, m), np.float32) for k in ("Au", "Fe", "O", "C")}
    vol["C"][(z > film_top - 0.1) & (z <= film_top) & (np.abs(x) < 0.38)] = 0.6
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(200):
        if len(placed) == 5:
            break
        r = rng.uniform(0.08, 0.14)
        cy, cx = rng.uniform(-0.38 + r, 0.38 - r), rng.uniform(-0.36 + r, 0.36 - r)
        cz = film_top + r
        if any((cy - a) ** 2 + (cx - c) ** 2 < (r + q + 0.02) ** 2 for a, _, c, q in placed):
            continue
        placed.append((cy, cz, cx, r))
        d = np.sqrt((y - cy) ** 2 + (z - cz) ** 2 + (x - cx) ** 2)
        core = d <= 0.6 * r
        shell = (d > 0.6 * r) & (d <= r)
        vol["Au"][core] = 1.0
        vol["Fe"][shell] = 0.75
        vol["O"][shell] = 1.0
    return {k: _bin(v, oversample) for k, v in vol.items()}


def layers(n: int = 64, seed: int = 0, oversample: int = 1) -> dict[str, np.ndarray]:
    """A pillar (axis y) of alternating HfO2 / SiO2 layers of varied thickness across x.

    element -> (n, n, n) truth: Hf and Si alternate, O fills the pillar.
    """
    m = n * oversample
    y, z, x = _grid(m, (m, m, m))
    rng = np.random.default_rng(seed)
    pillar = (z**2 + x**2 <= 0.36**2) & (np.abs(y) < 0.45)
    edges = [-0.36]
    while edges[-1] < 0.36:
        edges.append(edges[-1] + rng.uniform(0.04, 0.11))
    layer = np.digitize(x, np.array(edges)) % 2
    vol = {"Hf": (pillar & (layer == 1)).astype(np.float32),
           "Si": (pillar & (layer == 0)).astype(np.float32) * np.float32(0.8),
           "O": pillar.astype(np.float32)}
    return {k: _bin(v, oversample) for k, v in vol.items()}


def _bin(v: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return np.ascontiguousarray(v, np.float32)
    s = tuple(d // f for d in v.shape)
    return v.reshape(s[0], f, s[1], f, s[2], f).mean(axis=(1, 3, 5)).astype(np.float32)


def make(kind: str, n: int = 64, seed: int = 0, oversample: int = 1) -> dict[str, np.ndarray]:
    """A phantom by name: 'core_shell' or 'layers'."""
    if kind not in KINDS:
        raise ValueError(f"unknown phantom {kind!r}; known: {KINDS}")
    return (core_shell if kind == "core_shell" else layers)(n, seed, oversample)


def simulate(kind: str, n: int = 64, dose: float = 4.0, haadf_angles=None, chem_angles=None,
             haadf_counts: float = 2000.0, read_noise: float = 0.01, gamma: float = 1.6,
             seed: int = 0, oversample: int = 2) -> tuple[dict[str, np.ndarray], TiltSeries]:
    """Truth (element -> (n, n, n)) and a noisy tilt series of phantom ``kind``.

    HAADF: Poisson counts of P(sum_e Z_e^gamma x_e) scaled to ``haadf_counts`` at
    its brightest pixel, plus Gaussian read noise of ``read_noise`` x haadf_counts.
    Chemical: Poisson(dose · P x_e), ``dose`` = counts per unit path through a voxel
    of value 1 (the brightest element's). Defaults: 43 HAADF tilts over ±70°, 11
    chemical tilts over ±70°.
    """
    th = np.linspace(-70, 70, 43) if haadf_angles is None else np.asarray(haadf_angles, float)
    tc = np.linspace(-70, 70, 11) if chem_angles is None else np.asarray(chem_angles, float)
    truth = make(kind, n, seed)
    rng = np.random.default_rng(seed + 1)
    zg = {k: atomic_number(k) ** gamma for k in truth}
    zmax = max(zg.values())
    hvol = {"H": sum(truth[k] * np.float32(zg[k] / zmax) for k in truth)}
    fine_h = None
    if oversample > 1:
        fine = make(kind, n * oversample, seed)
        fine_h = {"H": sum(fine[k] * np.float32(zg[k] / zmax) for k in fine)}
    h = _project(hvol, fine_h, th, oversample)["H"]
    h = rng.poisson(h * (haadf_counts / max(float(h.max()), 1e-12))).astype(np.float32)
    h += np.float32(read_noise * haadf_counts) * rng.standard_normal(h.shape).astype(np.float32)
    clean = _project(truth, fine if oversample > 1 else None, tc, oversample)
    maps = {k: rng.poisson(dose * np.maximum(v, 0)).astype(np.float32) for k, v in clean.items()}
    return truth, TiltSeries(h, th, maps, tc, float(dose))


def _project(coarse, fine, angles, f):
    """Project ``fine`` (f x finer, binned) when given, else ``coarse``."""
    src, ff = (fine, f) if fine is not None else (coarse, 1)
    ny, nz, nx = next(iter(src.values())).shape
    P = Projector(angles, nz, nx)
    out = {}
    for k, v in src.items():
        s = P.project(v) / ff
        if ff > 1:
            s = s.reshape(s.shape[0], ny // ff, ff, nx // ff, ff).mean(axis=(2, 4))
        out[k] = np.ascontiguousarray(s, np.float32)
    return out


def chemical_only(series: TiltSeries, method: str = "mlem", n_iter: int = 30,
                  nz: int | None = None) -> dict[str, np.ndarray]:
    """Each element reconstructed from its own chemical series: 'sirt' or 'mlem'; (ny, nz, nx)."""
    from .recon import mlem, sirt, to_columns, to_volume

    ny, nx = next(iter(series.maps.values())).shape[1:]
    nz = nz or nx
    P = Projector(series.chem_angles, nz, nx)
    alg = {"sirt": sirt, "mlem": mlem}[method]
    return {k: to_volume(alg(P, to_columns(b), n_iter), nz, nx) for k, b in series.maps.items()}
