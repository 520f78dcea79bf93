"""CUDA kernels of one outer iteration, for a batch of K problems at once.

The maths is :mod:`fusedem.objective` (tested against it through the CPU
kernels and directly in ``tests/test_cuda_backend.py``). Layout, all float32
C-contiguous device arrays:

    x, y, p, q, r0, s0, r1, s1   (K * n, ny, nx)   problem k, element e at row k * n + e
    b                            (Kb * n, ny, nx)  measured maps; problem k uses slot bidx[k]
    bh                           (Kb, ny, nx)      normalised HAADF, slot bidx[k]
    tv_step                      (K,)              per-problem parameters
    lam_chem, lam_tv             (K * n,)          λ of problem k, element e at k * n + e
    costs                        (K, 3) float64    accumulated (Psi1, Psi2, TV) of the input x

One outer iteration is ``gradient_step`` (x -> y, and the costs of x), then
``n_inner`` calls of ``tv_dual_step`` (FGP on the duals) and ``tv_primal``
(y, p, q -> x). Each kernel is one pass over memory; a thread owns one pixel
(of one element, or of all elements of one problem in ``gradient_step``).
The duals' extrapolated point (r, s) is read at neighbouring pixels, so it is
double-buffered (r0/s0 -> r1/s1 and back); p and q are read and written only
at the thread's own pixel.
"""
from __future__ import annotations

import math

from numba import cuda, float32, float64

BLOCK = (32, 8)  # threads per block along (x, y); 256 threads
_NT = BLOCK[0] * BLOCK[1]
_TINY = float32(1e-30)


@cuda.jit(device=True, inline=True)
def _pow(v, a):
    """v ** a for v >= 0, as fusedem._rowmath.powf: 0 for v <= 1e-30, 1 when a == 0."""
    if a == 0:
        return float32(1.0)
    if v <= _TINY:
        return float32(0.0)
    return math.pow(v, a)


@cuda.jit(device=True, inline=True)
def _prox_psi2(v, bv, lam, eps):
    """argmin_u 1/2 (u - v)^2 + lam (u - b ln(u + eps)), as fusedem.kernels.prox_psi2."""
    c = v + eps - lam
    d = math.sqrt(c * c + float32(4.0) * lam * bv)
    if c >= 0:
        u = float32(0.5) * (c + d)
    elif d - c > 0:
        u = float32(2.0) * lam * bv / (d - c)
    else:
        u = float32(0.0)
    return u - eps


@cuda.jit(device=True, inline=True)
def _block_sum3(c1, c2, c3, out, k):
    """Add three per-thread float64 values, summed over the block, to out[k, 0..2]."""
    sh = cuda.shared.array((3, _NT), float64)
    t = cuda.threadIdx.y * BLOCK[0] + cuda.threadIdx.x
    sh[0, t] = c1
    sh[1, t] = c2
    sh[2, t] = c3
    cuda.syncthreads()
    half = _NT // 2
    while half > 0:
        if t < half:
            sh[0, t] += sh[0, t + half]
            sh[1, t] += sh[1, t + half]
            sh[2, t] += sh[2, t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        cuda.atomic.add(out, (k, 0), sh[0, 0])
        cuda.atomic.add(out, (k, 1), sh[1, 0])
        cuda.atomic.add(out, (k, 2), sh[2, 0])


@cuda.jit(fastmath=True)
def gradient_step(x, b, bh, bidx, w, n, gamma, lam_h, lam_chem, eps, prox, write, y, costs):
    """y = max(x - (lam_h grad Psi1 + lam_chem grad Psi2), 0) (or the prox form), and the
    costs of x added to costs[k]. Grid: (nx, ny) pixels by K problems (z)."""
    j, i = cuda.grid(2)
    k = cuda.blockIdx.z
    ny = x.shape[1]
    nx = x.shape[2]
    c1 = float64(0.0)
    c2 = float64(0.0)
    c3 = float64(0.0)
    if i < ny and j < nx:
        s = bidx[k]
        g1 = gamma - float32(1.0)
        res = -bh[s, i, j]
        for e in range(n):
            xv = x[k * n + e, i, j]
            res += w[e] * _pow(xv, g1) * xv
        c1 = float64(0.5) * float64(res) * float64(res)
        one = float32(1.0)
        for e in range(n):
            lc = lam_chem[k * n + e]
            xv = x[k * n + e, i, j]
            bv = b[s * n + e, i, j]
            if write:
                ce = lam_h * gamma * w[e]
                g = ce * _pow(xv, g1) * res
                if prox:
                    v = _prox_psi2(xv - g, bv, lc, eps)
                else:
                    v = xv - (g + lc * (one - bv / (xv + eps)))
                y[k * n + e, i, j] = v if v > 0 else float32(0.0)
            c2 += float64(xv - bv * math.log(xv + eps))
            dx = x[k * n + e, i + 1, j] - xv if i + 1 < ny else float32(0.0)
            dy = x[k * n + e, i, j + 1] - xv if j + 1 < nx else float32(0.0)
            c3 += float64(math.sqrt(dx * dx + dy * dy))
    _block_sum3(c1, c2, c3, costs, k)


@cuda.jit(device=True, inline=True)
def _primal(y, r, s, m, i, j, lam, ny, nx, zero_duals):
    """max(y - lam L(r, s), 0) at pixel (i, j) of image m; L(r, s) = 0 with zero_duals."""
    v = y[m, i, j]
    if not zero_duals:
        l = float32(0.0)
        if i < ny - 1:
            l += r[m, i, j]
        if i > 0:
            l -= r[m, i - 1, j]
        if j < nx - 1:
            l += s[m, i, j]
        if j > 0:
            l -= s[m, i, j - 1]
        v -= lam * l
    return v if v > 0 else float32(0.0)


@cuda.jit(fastmath=True)
def tv_dual_step(y, p, q, r_in, s_in, r_out, s_out, lam_tv, tv_step, n, alpha, zero_in,
                 write_rs):
    """One FGP/GP dual iteration for every image, on pixel (i, j) of image m (grid z).

    (p, q) = P_1((r, s) + tv_step L^T(x) / (8 lam)) with x = max(y - lam L(r, s), 0), where
    (r, s) is (r_in, s_in), or 0 with ``zero_in`` (a cold start); with ``write_rs``,
    (r_out, s_out) = (p, q) + alpha ((p, q) - (p_old, q_old)). lam <= 0: no TV, duals 0.
    """
    j, i = cuda.grid(2)
    m = cuda.blockIdx.z
    ny = y.shape[1]
    nx = y.shape[2]
    if i >= ny or j >= nx:
        return
    lam = lam_tv[m]
    if lam <= 0:
        p[m, i, j] = float32(0.0)
        q[m, i, j] = float32(0.0)
        if write_rs:
            r_out[m, i, j] = float32(0.0)
            s_out[m, i, j] = float32(0.0)
        return
    c = tv_step[m // n] / (float32(8.0) * lam)
    xc = _primal(y, r_in, s_in, m, i, j, lam, ny, nx, zero_in)
    pv = float32(0.0)
    qv = float32(0.0)
    if i < ny - 1:
        rv = float32(0.0) if zero_in else r_in[m, i, j]
        pv = rv + c * (xc - _primal(y, r_in, s_in, m, i + 1, j, lam, ny, nx, zero_in))
    if j < nx - 1:
        sv = float32(0.0) if zero_in else s_in[m, i, j]
        qv = sv + c * (xc - _primal(y, r_in, s_in, m, i, j + 1, lam, ny, nx, zero_in))
    nrm = math.sqrt(pv * pv + qv * qv)
    if nrm > 1:
        pv = pv / nrm
        qv = qv / nrm
    if write_rs:
        po = p[m, i, j]
        qo = q[m, i, j]
        r_out[m, i, j] = pv + alpha * (pv - po)
        s_out[m, i, j] = qv + alpha * (qv - qo)
    p[m, i, j] = pv
    q[m, i, j] = qv


@cuda.jit(fastmath=True)
def tv_primal(y, p, q, lam_tv, x):
    """x = max(y - lam L(p, q), 0) on pixel (i, j) of image m (grid z): the TV step's result."""
    j, i = cuda.grid(2)
    m = cuda.blockIdx.z
    ny = y.shape[1]
    nx = y.shape[2]
    if i >= ny or j >= nx:
        return
    lam = lam_tv[m]
    x[m, i, j] = _primal(y, p, q, m, i, j, lam, ny, nx, lam <= 0)


@cuda.jit
def copy_pair(p, q, r, s):
    """r, s = p, q (the warm-start extrapolated point), pixel per thread, grid z images."""
    j, i = cuda.grid(2)
    m = cuda.blockIdx.z
    if i < p.shape[1] and j < p.shape[2]:
        r[m, i, j] = p[m, i, j]
        s[m, i, j] = q[m, i, j]


def grid_for(ny: int, nx: int, nz: int) -> tuple[int, int, int]:
    """Blocks of BLOCK threads covering (nx, ny) pixels, by nz images or problems."""
    return ((nx + BLOCK[0] - 1) // BLOCK[0], (ny + BLOCK[1] - 1) // BLOCK[1], nz)


@cuda.jit
def fill_zero(a):
    """a = 0 for a (m, ny, nx) array; grid z over m."""
    j, i = cuda.grid(2)
    m = cuda.blockIdx.z
    if i < a.shape[1] and j < a.shape[2]:
        a[m, i, j] = float32(0.0)
