"""Quality of 3-D reconstructions against ground truth: PSNR, SSIM (3-D) and FSC resolution.

PSNR and SSIM are :func:`fusedem.phantoms.psnr` / :func:`fusedem.phantoms.ssim`,
which work on arrays of any dimension (SSIM: Gaussian window, sigma 1.5 voxels).
"""
from __future__ import annotations

import numpy as np

from ..phantoms import psnr, ssim

__all__ = ["fsc", "fsc_resolution", "psnr", "ssim"]


def fsc(a: np.ndarray, b: np.ndarray, n_shells: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fourier shell correlation of two volumes of one shape: (frequency (cycles/voxel), FSC)."""
    fa, fb = np.fft.fftn(a - a.mean()), np.fft.fftn(b - b.mean())
    k = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.fft.fftfreq(s) for s in a.shape], indexing="ij")))
    n_shells = n_shells or min(a.shape) // 2
    idx = np.minimum((k / 0.5 * n_shells).astype(int), n_shells)
    num = np.bincount(idx.ravel(), (fa * np.conj(fb)).real.ravel(), n_shells + 1)
    da = np.bincount(idx.ravel(), (np.abs(fa) ** 2).ravel(), n_shells + 1)
    db = np.bincount(idx.ravel(), (np.abs(fb) ** 2).ravel(), n_shells + 1)
    c = num / np.sqrt(np.maximum(da * db, 1e-30))
    freq = (np.arange(n_shells) + 0.5) * 0.5 / n_shells
    return freq, c[:n_shells]


def fsc_resolution(estimate: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """Resolution in voxels: 1 / the first frequency where FSC(estimate, truth) drops below
    ``threshold`` (0.5 against a known truth); 2.0 (Nyquist) if it never does."""
    f, c = fsc(np.asarray(estimate, np.float64), np.asarray(truth, np.float64))
    below = np.nonzero(c[1:] < threshold)[0] + 1  # shell 0 holds only the removed mean
    return 2.0 if below.size == 0 else float(1.0 / f[below[0]])
