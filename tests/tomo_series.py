"""Tiny synthetic tilt series for the tomography IO/CLI/panel tests, projected here with the
documented convention (a voxel at centred (z, x) of slice y lands at u = x cosθ + z sinθ of
row y, linear interpolation), independent of fusedem.tomo's own projector."""
from __future__ import annotations

import numpy as np


def core_shell(n: int = 16) -> dict[str, np.ndarray]:
    """Element volumes (ny, nz, nx) = (n, n, n): an Au core in an Fe shell."""
    c = (np.arange(n) - (n - 1) / 2) / (n / 2)
    y, z, x = np.meshgrid(c, c, c, indexing="ij")
    r = np.sqrt(y ** 2 + z ** 2 + x ** 2)
    return {"Au": (r < 0.35).astype(np.float32), "Fe": ((r >= 0.35) & (r < 0.7)).astype(np.float32)}


def project(volume: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(n_angles, ny, nx) parallel projections of a (ny, nz, nx) volume."""
    ny, nz, nx = volume.shape
    zc, xc = np.meshgrid(np.arange(nz) - (nz - 1) / 2, np.arange(nx) - (nx - 1) / 2, indexing="ij")
    out = np.zeros((len(angles), ny, nx))
    for k, t in enumerate(np.deg2rad(angles)):
        u = xc * np.cos(t) + zc * np.sin(t) + (nx - 1) / 2
        i0 = np.floor(u).astype(int)
        w = u - i0
        for off, wt in ((0, 1 - w), (1, w)):
            i = i0 + off
            ok = (i >= 0) & (i < nx)
            for y in range(ny):
                np.add.at(out[k, y], i[ok], (volume[y] * wt)[ok])
    return out.astype(np.float32)


def tilt_series(n: int = 16, haadf_angles=None, chem_angles=None, dose: float = 20.0, seed: int = 0):
    """(haadf (n_H, n, n), haadf_angles, maps {'Au', 'Fe'} of Poisson counts, chem_angles)."""
    ha = np.linspace(-70, 70, 15) if haadf_angles is None else np.asarray(haadf_angles, float)
    ca = np.linspace(-60, 60, 5) if chem_angles is None else np.asarray(chem_angles, float)
    vols = core_shell(n)
    rng = np.random.default_rng(seed)
    haadf = project(79 ** 1.6 * vols["Au"] ** 1.6 + 26 ** 1.6 * vols["Fe"] ** 1.6, ha)
    haadf = haadf / haadf.max() + rng.normal(0, 0.01, haadf.shape).astype(np.float32)
    maps = {el: rng.poisson(dose * project(v, ca) / max(project(v, ca).max(), 1e-9)).astype(np.float32)
            for el, v in vols.items()}
    return haadf, ha, maps, ca


def write_npz(path, n: int = 16, **kw) -> None:
    """A tilt-series bundle as the readers expect it."""
    haadf, ha, maps, ca = tilt_series(n, **kw)
    np.savez(path, HAADF=haadf, haadf_angles=ha, chem_angles=ca, pixel_size=0.5, units="nm", **maps)
