"""Reference NumPy implementation of the objective and its gradients (DESIGN.md 1).

Slow but plain: the numba kernels are tested against it, and it documents the
maths. x, b: (n, ny, nx) float64 stacks; bh: (ny, nx); w: (n,).
"""
from __future__ import annotations

import numpy as np


def channel_weights(z: np.ndarray, weighting: str, gamma: float) -> np.ndarray:
    """Channel weights w_i for atomic numbers z (n,) by the named scheme (DESIGN.md 1)."""
    z = np.asarray(z, dtype=np.float64)
    if weighting == "none":
        return np.ones_like(z)
    if weighting == "z":
        return z / z.mean()
    if weighting == "z_gamma":
        return z**gamma / np.mean(z**gamma)
    if weighting == "z_sum":
        return z / z.sum()
    if weighting == "z_gamma_sum":
        return z**gamma / np.sum(z**gamma)
    raise ValueError(f"unknown weighting {weighting!r}")


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


def _L(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """L(p, q)_ij = p_ij + q_ij - p_(i-1)j - q_i(j-1) on (..., ny, nx) stacks."""
    out = p + q
    out[..., 1:, :] -= p[..., :-1, :]
    out[..., :, 1:] -= q[..., :, :-1]
    return out


def _LT(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L^T(x) = (x_ij - x_(i+1)j, x_ij - x_i(j+1)), zero on the last row / column."""
    p = np.zeros_like(x)
    q = np.zeros_like(x)
    p[..., :-1, :] = x[..., :-1, :] - x[..., 1:, :]
    q[..., :, :-1] = x[..., :, :-1] - x[..., :, 1:]
    return p, q


def tv_prox_steps(y: np.ndarray, lam, n_inner: int, momentum: bool = True,
                  tv_step: float = 1.0, p0: np.ndarray | None = None,
                  q0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_inner`` FGP (GP without momentum) iterations on the dual of each element's
    constrained TV denoising, argmin_{x>=0} 1/2 ||x - y_e||^2 + lam_e TV(x).

    y: (n, ny, nx); lam: a number or (n,) (an element with lam <= 0 gets max(y, 0)
    and zero duals); the dual step is tv_step / (8 lam_e), tv_step in (0, 1]
    (1: the largest step that converges). Duals start at (p0, q0) (default 0).
    Returns (x, p, q): the primal result and the final duals, each (n, ny, nx).
    """
    y = np.asarray(y, dtype=np.float64)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (y.shape[0],))
    on = (lam > 0)[:, None, None]
    lam3 = np.where(lam > 0, lam, 1.0)[:, None, None]
    c = tv_step / (8.0 * lam3)
    p = np.zeros_like(y) if p0 is None else np.array(p0, dtype=np.float64)
    q = np.zeros_like(y) if q0 is None else np.array(q0, dtype=np.float64)
    r, s, t = p.copy(), q.copy(), 1.0
    for _ in range(n_inner):
        dp, dq = _LT(np.maximum(y - lam3 * _L(r, s), 0.0))
        pn, qn = r + c * dp, s + c * dq
        nrm = np.maximum(1.0, np.sqrt(pn * pn + qn * qn))
        pn, qn = pn / nrm, qn / nrm
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        alpha = (t - 1.0) / t_next if momentum else 0.0
        r, s = pn + alpha * (pn - p), qn + alpha * (qn - q)
        p, q, t = pn, qn, t_next
    p, q = np.where(on, p, 0.0), np.where(on, q, 0.0)
    x = np.maximum(y - np.where(on, lam3, 0.0) * _L(p, q), 0.0)
    return x, p, q


def outer_iteration(x: np.ndarray, b: np.ndarray, bh: np.ndarray, w: np.ndarray, gamma: float,
                    lam_h: float, lam_chem: float, eps: float, lam_tv, n_inner: int,
                    momentum: bool = True, tv_step: float = 1.0, prox: bool = False,
                    p0: np.ndarray | None = None, q0: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One outer iteration of the solver (DESIGN.md 1): the step on lam_h Psi1 + lam_chem
    Psi2 (explicit, or with ``prox`` the exact proximal step on lam_chem Psi2), clipped
    at 0, then :func:`tv_prox_steps` with the per-element weights lam_tv (number or (n,)).

    x, b: (n, ny, nx); bh: (ny, nx); w: (n,); lam_chem: a number or one per element (n,).
    Returns (x_new, p, q).
    """
    lam_chem = np.reshape(lam_chem, (-1, 1, 1)) if np.ndim(lam_chem) else lam_chem
    g1 = lam_h * grad_psi1(x, bh, w, gamma)
    if prox:
        y = prox_psi2(x - g1, b, eps, lam_chem)
    else:
        y = np.maximum(x - g1 - lam_chem * grad_psi2(x, b, eps), 0.0)
    return tv_prox_steps(y, lam_tv, n_inner, momentum, tv_step, p0, q0)
