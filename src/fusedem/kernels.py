"""numba kernels: the gradient step with its costs, the FGP/GP TV step, the forward model.

The solver runs both steps in one pass (:mod:`fusedem.pipeline`); the separate
kernels here are the standalone TV denoiser (any number of inner iterations)
and the two-pass reference that the one-pass kernel is tested against.

Arrays are float32, C-contiguous. Stacks of element maps have shape
(n_elements, ny, nx). All kernels release the GIL (``nogil=True``) so a GUI
thread keeps running while a worker thread solves.

TV dual variables follow Beck & Teboulle (2009): ``p`` (vertical differences,
row ny-1 unused) and ``q`` (horizontal differences, column nx-1 unused) have the
image's shape. ``L(p, q)_ij = p_ij + q_ij - p_(i-1)j - q_i(j-1)`` and
``L^T(x) = (x_ij - x_(i+1)j, x_ij - x_i(j+1))``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from ._rowmath import logf, pow_row

_JIT = dict(nogil=True, cache=True, fastmath=True, error_model="numpy")
_ROWS = 16  # rows per parallel task of the gradient step


@nb.njit(inline="always", **_JIT)
def _add_to_residual(xr, g1, we, pwr, res):
    """One element's share of the HAADF residual on a row: pwr = xr^g1; res += we pwr xr."""
    pow_row(xr, g1, pwr)
    for j in range(xr.shape[0]):
        res[j] += we * pwr[j] * xr[j]


@nb.njit(inline="always", **_JIT)
def prox_psi2(v, bv, lam, eps):
    """argmin_x 1/2 (x - v)^2 + lam (x - b ln(x + eps)) over x > -eps, for float32 scalars.

    With u = x + eps the optimality condition is u^2 - (v + eps - lam) u - lam b = 0;
    its positive root, in the form that does not cancel for either sign of
    c = v + eps - lam. The caller clips the result at 0.
    """
    c = v + eps - lam
    d = np.sqrt(c * c + np.float32(4.0) * lam * bv)
    if c >= 0:
        u = np.float32(0.5) * (c + d)
    else:
        u = np.float32(2.0) * lam * bv / (d - c) if d - c > 0 else np.float32(0.0)
    return u - eps


@nb.njit(inline="always", **_JIT)
def _step_costs_row(xr, xn, br, pwr, res, ce, lam_chem, eps, has_next, yr, write, prox):
    """Gradient step and cost terms of one element on one row.

    xr, xn: this row and the next of x (xn unused unless has_next); br: measured
    row; pwr: x^(gamma - 1); res: A x^gamma - b_H; ce = lam_h gamma w_e. With
    ``write``, yr = max(x - (ce pwr res + lam_chem (1 - b / (x + eps))), 0), or
    with ``prox`` yr = max(prox_psi2(x - ce pwr res), 0): a gradient step on
    Psi1 and the exact proximal step on lam_chem Psi2 (no blow-up near x = 0).
    Returns this row's (Psi2, TV) terms: sum(x - b ln(x + eps)) and the
    isotropic TV sum of sqrt(dx^2 + dy^2) with forward differences.
    """
    nx = xr.shape[0]
    one = np.float32(1.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    for j in range(nx):
        xv = xr[j]
        bv = br[j]
        if write:
            if prox:
                v = prox_psi2(xv - ce * pwr[j] * res[j], bv, lam_chem, eps)
            else:
                v = xv - (ce * pwr[j] * res[j] + lam_chem * (one - bv / (xv + eps)))
            yr[j] = v if v > 0 else np.float32(0.0)
        s2 += xv - bv * logf(xv + eps)
        dx = xn[j] - xv if has_next else np.float32(0.0)
        dy = xr[j + 1] - xv if j < nx - 1 else np.float32(0.0)
        s3 += np.sqrt(dx * dx + dy * dy)
    return s2, s3


def gradient_step(x, b, bh, w, gamma, lam_h, lam_chem, eps, y, write_y, prox=False):
    """y = max(x - (lam_h grad Psi1(x) + lam_chem grad Psi2(x)), 0), and the costs of x.

    With ``prox`` the Psi2 part is its exact proximal step instead (see
    :func:`_step_costs_row`).

    x, b, y: (n, ny, nx) float32 current iterate, measured maps, output.
    bh: (ny, nx) normalised HAADF; w: (n,) channel weights; lam_chem: one for all
    elements or one per element (n,); other scalars float32. With ``write_y``
    False only the costs are computed. Returns (Psi1, Psi2, sum_i TV(x_i)) of x
    as float64 (3,); Psi2 is the unweighted sum over elements.
    """
    return _gradient_step(x, b, bh, w, gamma, lam_h, per_element(lam_chem, x.shape[0]), eps,
                          y, write_y, prox)


@nb.njit(parallel=True, **_JIT)
def _gradient_step(x, b, bh, w, gamma, lam_h, lam_chem, eps, y, write_y, prox):
    """:func:`gradient_step` with lam_chem (n,) float32. Rows run in parallel; inner
    loops run along rows so they vectorise."""
    n, ny, nx = x.shape
    g1 = gamma - np.float32(1.0)
    part = np.zeros((ny, 3))
    n_blocks = (ny + _ROWS - 1) // _ROWS
    for blk in nb.prange(n_blocks):  # scratch rows allocated once per block of rows
        pw = np.empty((n, nx), np.float32)
        res = np.empty(nx, np.float32)
        for i in range(blk * _ROWS, min((blk + 1) * _ROWS, ny)):
            for j in range(nx):
                res[j] = -bh[i, j]
            for e in range(n):
                _add_to_residual(x[e, i], g1, w[e], pw[e], res)
            c1 = np.float32(0.0)
            for j in range(nx):
                c1 += res[j] * res[j]
            c2 = 0.0
            c3 = 0.0
            for e in range(n):
                xn = x[e, i + 1] if i + 1 < ny else x[e, i]
                r2, r3 = _step_costs_row(x[e, i], xn, b[e, i], pw[e], res, lam_h * gamma * w[e],
                                         lam_chem[e], eps, i + 1 < ny, y[e, i], write_y, prox)
                c2 += r2
                c3 += r3
            part[i, 0] = 0.5 * c1
            part[i, 1] = c2
            part[i, 2] = c3
    out = np.zeros(3)
    for i in range(ny):
        for k in range(3):
            out[k] += part[i, k]
    return out


@nb.njit(parallel=True, **_JIT)
def forward_model(x, w, gamma, out):
    """out = A x^gamma = sum_i w_i x_i^gamma; x (n, ny, nx), w (n,), out (ny, nx) float32."""
    n, ny, nx = x.shape
    for i in nb.prange(ny):
        tmp = np.empty(nx, np.float32)
        for j in range(nx):
            out[i, j] = 0.0
        for e in range(n):
            pow_row(x[e, i], gamma, tmp)
            for j in range(nx):
                out[i, j] += w[e] * tmp[j]


@nb.njit(inline="always", **_JIT)
def _x_row(y, r, s, e, i, lam, buf):
    """buf[:] = max(y - lam * L(r, s), 0) on row i of element e."""
    ny = y.shape[1]
    nx = y.shape[2]
    for j in range(nx):
        l = np.float32(0.0)
        if i < ny - 1:
            l += r[e, i, j]
        if i > 0:
            l -= r[e, i - 1, j]
        if j < nx - 1:
            l += s[e, i, j]
        if j > 0:
            l -= s[e, i, j - 1]
        v = y[e, i, j] - lam * l
        buf[j] = v if v > 0 else np.float32(0.0)


@nb.njit(parallel=True, **_JIT)
def tv_inner(y, p, q, r, s, lam, alpha, first, last, block, tv_step):
    """One FGP/GP inner iteration for every element, in place, streaming over rows.

    y: (n, ny, nx) input of the proximal step; lam: (n,) float32 TV weights (an
    element with lam <= 0 is skipped); dual step tv_step / (8 lam). p, q: dual variables (updated);
    r, s: extrapolated duals (updated to p + alpha (p_new - p_old)). With
    ``first`` the extrapolated point is taken to be (p, q) (restart); with
    ``last`` r and s are not written (the next call restarts from p, q). Work is
    split into (element, row block) tasks of ``block`` rows.
    """
    n, ny, nx = y.shape
    nb_ = (ny + block - 1) // block
    # rows that neighbouring blocks overwrite: save them before the parallel pass
    halo_top = np.empty((n, nb_, nx), np.float32)  # r row (start - 1)
    halo_r = np.empty((n, nb_, nx), np.float32)  # r row end
    halo_s = np.empty((n, nb_, nx), np.float32)  # s row end
    rr = p if first else r
    ss = q if first else s
    for t in nb.prange(n * nb_):
        e = t // nb_
        k = t % nb_
        a = k * block
        bnd = min(a + block, ny)
        for j in range(nx):
            halo_top[e, k, j] = rr[e, a - 1, j] if a > 0 else 0.0
            halo_r[e, k, j] = rr[e, bnd, j] if bnd < ny else 0.0
            halo_s[e, k, j] = ss[e, bnd, j] if bnd < ny else 0.0
    al = np.float32(alpha)
    for t in nb.prange(n * nb_):
        e = t // nb_
        k = t % nb_
        lam32 = lam[e]
        if lam32 <= 0:
            continue
        c = np.float32(tv_step / (8.0 * lam32))
        a = k * block
        bnd = min(a + block, ny)
        cur = np.empty(nx, np.float32)
        nxt = np.empty(nx, np.float32)
        # x on row a, with the saved r row a-1
        for j in range(nx):
            l = np.float32(0.0)
            if a < ny - 1:
                l += rr[e, a, j]
            if a > 0:
                l -= halo_top[e, k, j]
            if j < nx - 1:
                l += ss[e, a, j]
            if j > 0:
                l -= ss[e, a, j - 1]
            v = y[e, a, j] - lam32 * l
            cur[j] = v if v > 0 else np.float32(0.0)
        for i in range(a, bnd):
            if i + 1 < ny:
                if i + 1 < bnd:
                    _x_row(y, rr, ss, e, i + 1, lam32, nxt)
                else:  # first row of the next block: use the saved rows
                    for j in range(nx):
                        l = np.float32(0.0)
                        if i + 1 < ny - 1:
                            l += halo_r[e, k, j]
                        l -= rr[e, i, j]
                        if j < nx - 1:
                            l += halo_s[e, k, j]
                        if j > 0:
                            l -= halo_s[e, k, j - 1]
                        v = y[e, i + 1, j] - lam32 * l
                        nxt[j] = v if v > 0 else np.float32(0.0)
            for j in range(nx):
                pv = rr[e, i, j] + c * (cur[j] - nxt[j]) if i < ny - 1 else np.float32(0.0)
                qv = ss[e, i, j] + c * (cur[j] - cur[j + 1]) if j < nx - 1 else np.float32(0.0)
                nrm = np.sqrt(pv * pv + qv * qv)
                if nrm > 1.0:
                    pv = pv / nrm
                    qv = qv / nrm
                po = p[e, i, j]
                qo = q[e, i, j]
                p[e, i, j] = pv
                q[e, i, j] = qv
                if not last:
                    r[e, i, j] = pv + al * (pv - po)
                    s[e, i, j] = qv + al * (qv - qo)
            for j in range(nx):
                cur[j] = nxt[j]


@nb.njit(parallel=True, **_JIT)
def tv_output(y, p, q, lam, x):
    """x = max(y - lam_e * L(p, q), 0) for every element e: the TV step's primal result.

    lam: (n,) float32 (an element with lam <= 0 gets max(y, 0))."""
    n, ny, nx = y.shape
    for t in nb.prange(n * ny):
        e = t // ny
        i = t % ny
        _x_row(y, p, q, e, i, max(lam[e], np.float32(0.0)), x[e, i])


def per_element(lam, n: int) -> np.ndarray:
    """A weight (lam_tv or lam_chem: a number, or one per element) as a (n,) float32 array."""
    lam = np.asarray(lam, dtype=np.float32)
    if lam.ndim == 1 and lam.shape[0] == n:
        return np.ascontiguousarray(lam)
    if lam.ndim != 0:
        raise ValueError(f"lam must be a number or one value per element ({n}), "
                         f"got shape {lam.shape}")
    return np.full(n, lam, np.float32)


def tv_prox(y, lam, n_inner, p, q, r, s, x, momentum=True, warm=False, block=32, tv_step=1.0):
    """Constrained TV denoising of each element map by FGP (or GP).

    Solves x_e = argmin_{x>=0} 1/2 ||x - y_e||^2 + lam_e TV(x) approximately with
    ``n_inner`` dual iterations (step tv_step/(8 lam_e); tv_step in (0, 1]). lam:
    one weight for all elements or one per element (n,). y, x: (n, ny, nx)
    float32; p, q, r, s: dual work arrays of the same shape (kept when ``warm``).
    Stated in NumPy by :func:`fusedem.objective.tv_prox_steps`.
    """
    lam = per_element(lam, y.shape[0])
    if lam.max() <= 0:
        x[...] = np.maximum(y, 0)
        return
    if not warm:
        p.fill(0.0)
        q.fill(0.0)
    t = 1.0
    for k in range(n_inner):
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        alpha = (t - 1.0) / t_next if momentum else 0.0
        tv_inner(y, p, q, r, s, lam, alpha, k == 0, k == n_inner - 1, block, np.float32(tv_step))
        t = t_next
    tv_output(y, p, q, lam, x)
