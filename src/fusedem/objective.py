"""Reference NumPy implementation of the objective and its gradients (DESIGN.md 1).

Slow but plain: the numba kernels are tested against it, and it documents the
maths. x, b: (n, ny, nx) float64 stacks; bh: (ny, nx); w: (n,).
"""
from __future__ import annotations

import numpy as np


def haadf_model(x: np.ndarray, w: np.ndarray, gamma: float) -> np.ndarray:
    """A x^gamma = sum_i w_i x_i^gamma, (ny, nx)."""
    return np.tensordot(w, np.power(x, gamma), axes=1)


def psi1(x: np.ndarray, bh: np.ndarray, w: np.ndarray, gamma: float) -> float:
    """1/2 ||b_H - A x^gamma||^2."""
    return 0.5 * float(np.sum((bh - haadf_model(x, w, gamma)) ** 2))


def grad_psi1(x: np.ndarray, bh: np.ndarray, w: np.ndarray, gamma: float) -> np.ndarray:
    """-gamma x^(gamma-1) * A^T (b_H - A x^gamma), (n, ny, nx)."""
    res = bh - haadf_model(x, w, gamma)
    return -gamma * np.power(x, gamma - 1) * w[:, None, None] * res[None]


def psi2(x: np.ndarray, b: np.ndarray, eps: float) -> float:
    """sum_i (1^T x_i - b_i^T log(x_i + eps)): Poisson negative log-likelihood."""
    return float(np.sum(x - b * np.log(x + eps)))


def grad_psi2(x: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """1 - b / (x + eps), (n, ny, nx)."""
    return 1.0 - b / (x + eps)


def prox_psi2(v: np.ndarray, b: np.ndarray, eps: float, lam: float) -> np.ndarray:
    """argmin_x 1/2 ||x - v||^2 + lam Psi2(x) pixel-wise, then clipped at 0.

    The proximal (implicit) step on lam Psi2, an option to the explicit step
    v - lam grad Psi2: with u = x + eps, u^2 - (v + eps - lam) u - lam b = 0,
    whose positive root is taken. Unlike lam b / (x + eps), it stays bounded as
    x -> 0. v, b: same shape.
    """
    c = v + eps - lam
    u = 0.5 * (c + np.sqrt(c * c + 4.0 * lam * b))
    return np.maximum(u - eps, 0.0)


def tv(img: np.ndarray) -> float:
    """Isotropic total variation of a 2-D image (Beck & Teboulle's TV_I)."""
    dx = np.diff(img, axis=0)  # (ny-1, nx)
    dy = np.diff(img, axis=1)  # (ny, nx-1)
    inner = np.sqrt(dx[:, :-1] ** 2 + dy[:-1, :] ** 2).sum()
    return float(inner + np.abs(dx[:, -1]).sum() + np.abs(dy[-1, :]).sum())


def tv_prox_objective(x: np.ndarray, y: np.ndarray, lam: float) -> float:
    """1/2 ||x - y||^2 + lam TV(x): what the TV proximal step minimises over x >= 0."""
    return 0.5 * float(np.sum((x - y) ** 2)) + lam * tv(x)
