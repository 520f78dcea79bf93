"""Single-modality reconstructions: SIRT and Poisson maximum likelihood (MLEM).

The references fused tomography is compared with, and the solver's initial
volumes. Operands are in the projector's column form: tilt series
(n_angles·nu, m) and volumes (nz·nx, m), m columns = slices (× elements).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .projector import Projector


def _inverse(a: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a, dtype=np.float32)
    np.divide(1.0, a, out=out, where=a > 1e-6)
    return out


def sirt(P: Projector, b: np.ndarray, n_iter: int, x0: np.ndarray | None = None,
         nonneg: bool = True, callback: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """SIRT: x <- x + C Pᵀ R (b - P x), R = 1/(P 1), C = 1/(Pᵀ 1), clipped at 0 if ``nonneg``.

    b (n_angles·nu, m) -> x (nz·nx, m) float32. ``callback(k, x)`` after each iteration.
    """
    b = np.asarray(b, np.float32).reshape(P.shape[0], -1)
    r = _inverse(P.row_sums())[:, None]
    c = _inverse(P.col_sums())[:, None]
    x = np.zeros((P.shape[1], b.shape[1]), np.float32) if x0 is None else np.array(x0, np.float32)
    for k in range(int(n_iter)):
        x += c * P.back(r * (b - P.forward(x)))
        if nonneg:
            np.maximum(x, 0, out=x)
        if callback is not None:
            callback(k + 1, x)
    return x


def mlem(P: Projector, b: np.ndarray, n_iter: int, x0: np.ndarray | None = None,
         callback: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """MLEM (Poisson maximum likelihood): x <- x Pᵀ(b / P x) / Pᵀ 1.

    b (n_angles·nu, m) counts -> x (nz·nx, m) float32, starting from a uniform
    volume with the data's mean (or x0). ``callback(k, x)`` after each iteration.
    """
    b = np.asarray(b, np.float32).reshape(P.shape[0], -1)
    c = _inverse(P.col_sums())[:, None]
    rows = P.row_sums()
    if x0 is None:
        scale = b.sum(axis=0) / max(float(rows.sum()), 1e-12)
        x = np.repeat(scale[None, :].astype(np.float32), P.shape[1], axis=0)
        x[c[:, 0] == 0] = 0
    else:
        x = np.array(x0, np.float32)
    for k in range(int(n_iter)):
        y = P.forward(x)
        q = np.zeros_like(y)
        np.divide(b, y, out=q, where=y > 1e-12)
        x *= c * P.back(q)
        if callback is not None:
            callback(k + 1, x)
    return x


def to_columns(series: np.ndarray) -> np.ndarray:
    """Tilt series (n_angles, ny, nu) -> column form (n_angles·nu, ny)."""
    s = np.asarray(series, np.float32)
    return np.ascontiguousarray(s.transpose(0, 2, 1)).reshape(-1, s.shape[1])


def to_volume(x: np.ndarray, nz: int, nx: int) -> np.ndarray:
    """Column form (nz·nx, ny) -> volume (ny, nz, nx) float32."""
    return np.ascontiguousarray(np.asarray(x).reshape(nz, nx, -1).transpose(2, 0, 1))
