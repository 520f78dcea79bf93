"""numba kernels of the 3-D solver (float32, parallel over z slices, GIL released).

Volumes of all elements live in one array in *column layout* (nz, nx, n, ny):
reshaped to (nz·nx, n·ny) it is the dense operand of the projector's sparse
product, and each element's volume is x[:, :, e, :]. TV duals p have shape
(3, nz, nx, n, ny), components (z, x, y); ``prev`` (3, nz, nx, ny) holds one
element's previous duals for the FGP momentum. Notation as in
:func:`fusedem.tomo.objective.tv3_prox_fgp`: L(r) = sum_a (r_a - r_a shifted by
one along a), Lᵀ(x) = -grad x, dual step 1/(12 lam).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .._rowmath import pow_row

_JIT = dict(nogil=True, cache=True, fastmath=True, error_model="numpy")


@nb.njit(parallel=True, **_JIT)
def haadf_sum(x, w, gamma, out):
    """out = sum_e w_e x_e^gamma: x (nz, nx, n, ny), w (n,), out (nz, nx, ny)."""
    nz, nx, n, ny = x.shape
    for k in nb.prange(nz):
        tmp = np.empty(ny, np.float32)
        for j in range(nx):
            o = out[k, j]
            o[:] = 0.0
            for e in range(n):
                pow_row(x[k, j, e], gamma, tmp)
                for i in range(ny):
                    o[i] += w[e] * tmp[i]


@nb.njit(parallel=True, **_JIT)
def descent(x, gh, gc, colsum, cw, w, gamma, tau, lam_chem, v):
    """v = x - tau_e (gamma w_e x^(gamma-1) gh + lam_chem (c_e colsum - gc)), per element e.

    x, gc, v (nz, nx, n, ny) (gc may be v itself); gh (nz, nx, ny) = P_Hᵀ(P_H s - b_H) / ||P_H||²;
    gc = c_e P_cᵀ(b / (P_c x + eps)); colsum (nz, nx) = P_cᵀ 1; cw (n,) = c_e; tau (n,).
    """
    nz, nx, n, ny = x.shape
    g1 = gamma - np.float32(1.0)
    for k in nb.prange(nz):
        pw = np.empty(ny, np.float32)
        for j in range(nx):
            for e in range(n):
                c = colsum[k, j] * cw[e]
                pow_row(x[k, j, e], g1, pw)
                ce = gamma * w[e]
                te = tau[e]
                for i in range(ny):
                    v[k, j, e, i] = x[k, j, e, i] - te * (
                        ce * pw[i] * gh[k, j, i] + lam_chem * (c - gc[k, j, e, i]))


@nb.njit(inline="always", **_JIT)
def _r(p, prev, beta, c, k, j, e, i):
    """FGP extrapolated dual r = p + beta (p - prev) at one voxel."""
    pv = p[c, k, j, e, i]
    return pv + beta * (pv - prev[c, k, j, i])


@nb.njit(parallel=True, **_JIT)
def tv_primal(v, x, p, prev, e, lam, beta):
    """x_e = max(v_e - lam L(r), 0) with r = p + beta (p - prev) (element e)."""
    nz, nx, n, ny = v.shape
    for k in nb.prange(nz):
        for j in range(nx):
            for i in range(ny):
                l = (_r(p, prev, beta, 0, k, j, e, i) + _r(p, prev, beta, 1, k, j, e, i)
                     + _r(p, prev, beta, 2, k, j, e, i))
                if k > 0:
                    l -= _r(p, prev, beta, 0, k - 1, j, e, i)
                if j > 0:
                    l -= _r(p, prev, beta, 1, k, j - 1, e, i)
                if i > 0:
                    l -= _r(p, prev, beta, 2, k, j, e, i - 1)
                val = v[k, j, e, i] - lam * l
                x[k, j, e, i] = val if val > 0 else np.float32(0.0)


@nb.njit(parallel=True, **_JIT)
def tv_dual(x, p, prev, e, step, beta):
    """p_e <- proj_{|p|<=1}(r + step Lᵀ x_e), prev <- old p_e (r as in :func:`tv_primal`)."""
    nz, nx, n, ny = x.shape
    zero = np.float32(0.0)
    for k in nb.prange(nz):
        for j in range(nx):
            for i in range(ny):
                xv = x[k, j, e, i]
                q0 = _r(p, prev, beta, 0, k, j, e, i) + step * (xv - x[k + 1, j, e, i]) if k < nz - 1 else zero
                q1 = _r(p, prev, beta, 1, k, j, e, i) + step * (xv - x[k, j + 1, e, i]) if j < nx - 1 else zero
                q2 = _r(p, prev, beta, 2, k, j, e, i) + step * (xv - x[k, j, e, i + 1]) if i < ny - 1 else zero
                nrm = np.sqrt(q0 * q0 + q1 * q1 + q2 * q2)
                s = np.float32(1.0) / nrm if nrm > 1 else np.float32(1.0)
                prev[0, k, j, i] = p[0, k, j, e, i]
                prev[1, k, j, i] = p[1, k, j, e, i]
                prev[2, k, j, i] = p[2, k, j, e, i]
                p[0, k, j, e, i] = q0 * s
                p[1, k, j, e, i] = q1 * s
                p[2, k, j, e, i] = q2 * s


@nb.njit(parallel=True, **_JIT)
def copy_duals(p, e, prev):
    """prev = p[:, :, :, e, :]."""
    for k in nb.prange(p.shape[1]):
        for c in range(3):
            for j in range(p.shape[2]):
                for i in range(p.shape[4]):
                    prev[c, k, j, i] = p[c, k, j, e, i]


def tv_prox(v, x, p, prev, e: int, lam: float, n_iter: int, momentum: bool = True) -> None:
    """x_e = argmin_{x>=0} 1/2||x - v_e||² + lam TV3(x) by n_iter FGP (or GP) iterations.

    Warm-starts from the duals p[:, ..., e, :] and leaves the final duals there.
    """
    lam32 = np.float32(lam)
    step = np.float32(1.0 / (12.0 * lam))
    copy_duals(p, e, prev)
    t = 1.0
    beta = np.float32(0.0)
    for _ in range(int(n_iter)):
        tv_primal(v, x, p, prev, e, lam32, beta)
        tv_dual(x, p, prev, e, step, beta)
        if momentum:
            tn = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = np.float32((t - 1.0) / tn)
            t = tn
    tv_primal(v, x, p, prev, e, lam32, np.float32(0.0))


@nb.njit(parallel=True, **_JIT)
def tv_total(x):
    """sum over elements of the isotropic 3-D TV (forward differences), float64."""
    nz, nx, n, ny = x.shape
    part = np.zeros(nz)
    for k in nb.prange(nz):
        s = 0.0
        for j in range(nx):
            for e in range(n):
                for i in range(ny):
                    xv = x[k, j, e, i]
                    d0 = x[k + 1, j, e, i] - xv if k < nz - 1 else np.float32(0.0)
                    d1 = x[k, j + 1, e, i] - xv if j < nx - 1 else np.float32(0.0)
                    d2 = x[k, j, e, i + 1] - xv if i < ny - 1 else np.float32(0.0)
                    s += np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        part[k] = s
    return part.sum()


@nb.njit(parallel=True, **_JIT)
def step_stats(x_old, v, x_new):
    """Per element (n, 2): sum (x_old - v)(x_new - x_old) and sum (x_new - x_old)², float64."""
    nz, nx, n, ny = x_old.shape
    part = np.zeros((nz, n, 2))
    for k in nb.prange(nz):
        for j in range(nx):
            for e in range(n):
                a = 0.0
                b = 0.0
                for i in range(ny):
                    d = x_new[k, j, e, i] - x_old[k, j, e, i]
                    a += (x_old[k, j, e, i] - v[k, j, e, i]) * d
                    b += d * d
                part[k, e, 0] += a
                part[k, e, 1] += b
    return part.sum(axis=0)
