"""Reference NumPy statement of the 3-D objective and its gradient (docs/tomography.md).

Slow but plain; the solver's kernels are tested against it. Volumes x:
(n, ny, nz, nx) float64; projection operators P: scipy sparse matrices
((n_angles·nu) × (nz·nx)) applied slice by slice; tilt series (n_angles, ny, nu).

    F(x) = Psi1 + lambda_chem Psi2 + lambda_tv sum_i TV3(x_i)
    Psi1 = 1/2 ||P_H(sum_i w_i x_i^gamma) - b_H||^2
    Psi2 = sum_i (1^T P_c x_i - b_i^T log(P_c x_i + eps))
"""
from __future__ import annotations

import numpy as np


def project(p, v: np.ndarray, nu: int) -> np.ndarray:
    """Tilt series of one volume v (ny, nz, nx) with matrix p -> (n_angles, ny, nu)."""
    ny, nz, nx = v.shape
    y = p @ v.transpose(1, 2, 0).reshape(nz * nx, ny)
    return y.reshape(-1, nu, ny).transpose(0, 2, 1)


def backproject(p, s: np.ndarray, nz: int, nx: int) -> np.ndarray:
    """Pᵀ of a tilt series s (n_angles, ny, nu) -> (ny, nz, nx)."""
    na, ny, nu = s.shape
    v = p.T @ s.transpose(0, 2, 1).reshape(na * nu, ny)
    return v.reshape(nz, nx, ny).transpose(2, 0, 1)


def haadf_volume(x: np.ndarray, w: np.ndarray, gamma: float) -> np.ndarray:
    """sum_i w_i x_i^gamma, (ny, nz, nx)."""
    return np.tensordot(w, np.power(x, gamma), axes=1)


def psi1(x, bh, w, gamma, ph) -> float:
    """1/2 ||P_H(sum_i w_i x_i^gamma) - b_H||^2."""
    r = project(ph, haadf_volume(x, w, gamma), bh.shape[2]) - bh
    return 0.5 * float(np.sum(r * r))


def grad_psi1(x, bh, w, gamma, ph) -> np.ndarray:
    """gamma w_i x_i^(gamma-1) ⊙ P_Hᵀ(P_H(sum w x^gamma) - b_H), (n, ny, nz, nx)."""
    r = project(ph, haadf_volume(x, w, gamma), bh.shape[2]) - bh
    g = backproject(ph, r, x.shape[2], x.shape[3])
    return gamma * w[:, None, None, None] * np.power(x, gamma - 1) * g[None]


def psi1_fitted_gain(x, bh, w, gamma, ph) -> float:
    """min over a gain a >= 0 of 1/2 ||a P_H(sum w x^gamma) - b_H||^2 (TomoParams.haadf_gain='fit').

    Its gradient is a* times grad_psi1 with the model scaled by a* (envelope theorem).
    """
    m = project(ph, haadf_volume(x, w, gamma), bh.shape[2])
    a = max(float(np.sum(m * bh)) / float(np.sum(m * m)), 0.0)
    return 0.5 * float(np.sum((a * m - bh) ** 2))


def psi2(x, b, eps, pc) -> float:
    """sum_i (1ᵀ P_c x_i - b_iᵀ log(P_c x_i + eps)); b (n, n_c, ny, nu)."""
    total = 0.0
    for xi, bi in zip(x, b):
        y = project(pc, xi, bi.shape[2])
        total += float(np.sum(y - bi * np.log(y + eps)))
    return total


def grad_psi2(x, b, eps, pc) -> np.ndarray:
    """P_cᵀ(1 - b_i / (P_c x_i + eps)) per element, (n, ny, nz, nx)."""
    out = np.empty_like(x)
    for i, (xi, bi) in enumerate(zip(x, b)):
        y = project(pc, xi, bi.shape[2])
        out[i] = backproject(pc, 1.0 - bi / (y + eps), x.shape[2], x.shape[3])
    return out


def _diffs(v: np.ndarray) -> list[np.ndarray]:
    """Forward differences along each axis, 0 at the last index (Neumann)."""
    out = []
    for ax in range(v.ndim):
        d = np.zeros_like(v)
        sl = [slice(None)] * v.ndim
        sl[ax] = slice(0, -1)
        d[tuple(sl)] = np.diff(v, axis=ax)
        out.append(d)
    return out


def tv3(v: np.ndarray) -> float:
    """Isotropic 3-D total variation sum sqrt(dy² + dz² + dx²) of one volume (forward differences)."""
    return float(np.sum(np.sqrt(sum(d * d for d in _diffs(v)))))


def smooth_objective(x, bh, b, w, gamma, eps, lam_chem, ph, pc) -> float:
    """Psi1 + lambda_chem Psi2 (the part the gradient step sees)."""
    return psi1(x, bh, w, gamma, ph) + lam_chem * psi2(x, b, eps, pc)


def smooth_gradient(x, bh, b, w, gamma, eps, lam_chem, ph, pc) -> np.ndarray:
    """grad Psi1 + lambda_chem grad Psi2, (n, ny, nz, nx)."""
    return grad_psi1(x, bh, w, gamma, ph) + lam_chem * grad_psi2(x, b, eps, pc)


def objective(x, bh, b, w, gamma, eps, lam_chem, lam_tv, ph, pc) -> float:
    """The full cost F(x) (x >= 0 assumed)."""
    return (smooth_objective(x, bh, b, w, gamma, eps, lam_chem, ph, pc)
            + lam_tv * sum(tv3(xi) for xi in x))


def tv3_prox_fgp(v: np.ndarray, lam: float, n_iter: int, p: np.ndarray | None = None,
                 momentum: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """FGP (Beck & Teboulle 2009) for argmin_{x>=0} 1/2||x - v||² + lam TV3(x), one volume.

    p: dual (3, *v.shape) to warm-start from (None: zeros). Returns (x, p).
    Dual step 1/(12 lam); isotropic projection onto |p| <= 1; the dual at the
    last index of each axis stays 0.
    """
    p = np.zeros((3,) + v.shape) if p is None else p.astype(np.float64).copy()
    if lam <= 0:
        return np.maximum(v, 0.0), p

    def primal(r):
        div = np.zeros_like(v)  # L(r) = sum_a r_a - r_a shifted by one along a
        for ax in range(3):
            sh = np.zeros_like(v)
            sl_to = [slice(None)] * 3
            sl_from = [slice(None)] * 3
            sl_to[ax], sl_from[ax] = slice(1, None), slice(0, -1)
            sh[tuple(sl_to)] = r[ax][tuple(sl_from)]
            div += r[ax] - sh
        return np.maximum(v - lam * div, 0.0)

    r, prev, t = p.copy(), p.copy(), 1.0
    for _ in range(int(n_iter)):
        x = primal(r)
        q = r - np.stack(_diffs(x)) / (12.0 * lam)  # Lᵀ x = -grad x
        for ax in range(3):  # last index along each axis is not a difference
            sl = [slice(None)] * 3
            sl[ax] = slice(-1, None)
            q[ax][tuple(sl)] = 0.0
        pn = q / np.maximum(1.0, np.sqrt(np.sum(q * q, axis=0)))
        if momentum:
            tn = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
            r = pn + ((t - 1.0) / tn) * (pn - prev)
            t = tn
        else:
            r = pn
        prev = pn
    return primal(prev), prev
