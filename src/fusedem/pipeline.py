"""One outer iteration of the solver in a single pass over memory, in place.

:func:`fused_iteration` computes what ``kernels.gradient_step`` followed by
``kernels.tv_prox`` (FGP or GP, ``n_inner`` dual iterations) computes, but
streams over rows: at step j it does the gradient step on row j, dual
iteration k on row j - k and the TV output on row j - n_inner - 1. Only a few
rows of each intermediate are kept, in a small per-band scratch buffer that
stays in cache, so main memory sees one read and one write of x, p, q (and a
read of b) per outer iteration instead of a sweep per inner iteration.

Rows are split into bands, one parallel task each. A band recomputes up to
n_inner + 1 rows of its neighbours at either edge, so bands never wait for
each other, and reads those rows from copies taken before the parallel pass
(x, p and q are updated in place: a row is written n_inner + 1 steps after it
is last read, while it is still in cache, so no write misses main memory).
Every band rounds alike, so the result does not depend on the number of
bands (threads) to the last bit.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import _add_to_residual, _step_costs_row, per_element

_JIT = dict(nogil=True, cache=True, fastmath=True, error_model="numpy")


@nb.njit(inline="always", **_JIT)
def _primal_row(buf, yr, rp, rc, sc, i, ny, lam, nx, out):
    """buf[out] = max(y - lam * L(r, s), 0) on image row i.

    All arguments but i, ny, lam, nx are rows of ``buf``: y, r rows i-1 and i, s row i.
    """
    for j in range(nx):
        l = np.float32(0.0)
        if i < ny - 1:
            l += buf[rc, j]
        if i > 0:
            l -= buf[rp, j]
        if j < nx - 1:
            l += buf[sc, j]
        if j > 0:
            l -= buf[sc, j - 1]
        v = buf[yr, j] - lam * l
        buf[out, j] = v if v > 0 else np.float32(0.0)


@nb.njit(inline="always", **_JIT)
def _dual_row(buf, rc, sc, xc, xn, po, qo, last_row, c, al, p, q, r, s, write_rs, nx):
    """Projected dual step on one row, all arguments rows of ``buf``.

    (p, q) = P(r + c L^T x) from r, s and the primal rows xc, xn (this row and
    the next); with ``write_rs``, (r, s) = (p, q) + al ((p, q) - (po, qo)).
    """
    for j in range(nx):
        pv = buf[rc, j] + c * (buf[xc, j] - buf[xn, j]) if not last_row else np.float32(0.0)
        qv = buf[sc, j] + c * (buf[xc, j] - buf[xc, j + 1]) if j < nx - 1 else np.float32(0.0)
        nrm = np.sqrt(pv * pv + qv * qv)
        if nrm > 1.0:
            pv = pv / nrm
            qv = qv / nrm
        pold = buf[po, j]
        qold = buf[qo, j]
        buf[p, j] = pv
        buf[q, j] = qv
        if write_rs:
            buf[r, j] = pv + al * (pv - pold)
            buf[s, j] = qv + al * (qv - qold)


@nb.njit(inline="always", **_JIT)
def _row(arr, snap, t, a, bnd, base, e, r):
    """Row r of element e: from arr for the band's own rows a..bnd-1, else from the
    snapshot of the band edge above (t) or below (t + 1)."""
    if r < a:
        return snap[t, e, r - base[t]]
    if r >= bnd:
        return snap[t + 1, e, r - base[t + 1]]
    return arr[e, r]


@nb.njit(**_JIT)
def _band(t, a, bnd, x, b, bh, w, gamma, lam_h, lam_chem, eps, p, q, lam_tv,
          alphas, warm, keep, update, snap_x, snap_p, snap_q, base, prox, tv_step):
    """:func:`fused_iteration` on output rows a..bnd-1; returns their costs (3,)."""
    n, ny, nx = x.shape
    n_in = alphas.shape[0] if lam_tv.max() > 0 else 0
    g1 = gamma - np.float32(1.0)
    # per element: the TV weight and the dual step tv_step / (8 lam) (0: no TV step)
    cs = np.zeros(n, np.float32)
    for e in range(n):
        if lam_tv[e] > 0:
            cs[e] = np.float32(tv_step / (8.0 * lam_tv[e]))
    ry = n_in + 2  # rows of y kept: the output reads y row j - n_in - 1
    nr = n_in + 1  # dual rings: 0 holds the starting duals, k the result of iteration k
    # All scratch rows live in one buffer. Vectorised loops load one value past
    # either end of a row and discard it, so rows are padded by 64 bytes, and the
    # buffer is zeroed: garbage there (NaN or denormal) made them up to ~7x slower.
    # Row numbers within it:
    o_p = n * ry  # y: e * ry + (image row % ry); then p, q, r, s rings of 4 rows
    o_q = o_p + 4 * n * nr  # (element e, ring k, image row i) -> o + (e nr + k) 4 + i % 4
    o_r = o_q + 4 * n * nr
    o_s = o_r + 4 * n * nr
    o_x = o_s + 4 * n * nr  # primal rows i, i+1 per element and ring: o_x + (e nr + k) 2 + i % 2
    o_w = o_x + 2 * n * nr  # x^(gamma - 1) per element
    o_m = o_w + n  # residual, output row
    buf = np.zeros((o_m + 2, nx + 16), np.float32)
    res = buf[o_m, :nx]
    out_row = buf[o_m + 1, :nx]
    lo0 = max(0, a - n_in)
    hi0 = min(ny - 1, bnd - 1 + n_in)
    c1 = 0.0
    c2 = 0.0
    c3 = 0.0
    for jj in range(max(0, lo0 - 1), bnd + n_in + 1):
        # stage 0: starting duals, gradient step (all elements) and costs of x_in on row jj
        if n_in > 0 and jj <= hi0:
            for e in range(n):
                rp = o_p + e * nr * 4 + (jj & 3)
                rq = o_q + e * nr * 4 + (jj & 3)
                if warm:
                    pr = _row(p, snap_p, t, a, bnd, base, e, jj)
                    qr = _row(q, snap_q, t, a, bnd, base, e, jj)
                    for j in range(nx):
                        buf[rp, j] = pr[j]
                        buf[rq, j] = qr[j]
                else:
                    for j in range(nx):
                        buf[rp, j] = np.float32(0.0)
                        buf[rq, j] = np.float32(0.0)
        if jj >= lo0 and jj <= hi0:
            for j in range(nx):
                res[j] = -bh[jj, j]
            for e in range(n):
                _add_to_residual(_row(x, snap_x, t, a, bnd, base, e, jj), g1, w[e],
                                 buf[o_w + e, :nx], res)
            own = jj >= a and jj < bnd
            for e in range(n):
                xr = _row(x, snap_x, t, a, bnd, base, e, jj)
                xn = _row(x, snap_x, t, a, bnd, base, e, jj + 1) if jj + 1 < ny else xr
                r2, r3 = _step_costs_row(xr, xn, b[e, jj], buf[o_w + e, :nx], res,
                                         lam_h * gamma * w[e], lam_chem[e], eps, jj + 1 < ny,
                                         buf[e * ry + jj % ry, :nx], True, prox)
                if own:
                    c2 += r2
                    c3 += r3
            if own:
                s1 = np.float32(0.0)
                for j in range(nx):
                    s1 += res[j] * res[j]
                c1 += 0.5 * s1
        for e in range(n):
            lam32 = lam_tv[e]
            c = cs[e]
            # dual iteration k on row i = jj - k, from ring k - 1 into ring k
            for k in range(1, n_in + 1 if lam32 > 0 else 1):
                i = jj - k
                lo_k = max(0, a - 1 - (n_in - k))
                hi_k = min(ny - 1, bnd - 1 + n_in - k)
                if i < lo_k or i > hi_k:
                    continue
                src = (e * nr + k - 1) * 4
                dst = (e * nr + k) * 4
                o_rr = o_p if k == 1 else o_r  # r = p for the starting duals
                o_ss = o_q if k == 1 else o_s
                xc = o_x + (e * nr + k) * 2 + (i & 1)
                xn = o_x + (e * nr + k) * 2 + ((i + 1) & 1)
                # primal rows i (first row only; else kept from the last step) and i + 1,
                # through one call site so that every band rounds alike
                for m in range(i if i == lo_k else i + 1, min(i + 2, ny)):
                    _primal_row(buf, e * ry + m % ry, o_rr + src + ((m - 1) & 3),
                                o_rr + src + (m & 3), o_ss + src + (m & 3), m, ny, lam32, nx,
                                o_x + (e * nr + k) * 2 + (m & 1))
                _dual_row(buf, o_rr + src + (i & 3), o_ss + src + (i & 3), xc, xn,
                          o_p + src + (i & 3), o_q + src + (i & 3), i == ny - 1, c,
                          np.float32(alphas[k - 1]), o_p + dst + (i & 3), o_q + dst + (i & 3),
                          o_r + dst + (i & 3), o_s + dst + (i & 3), k < n_in, nx)
            # TV output on row i = jj - n_in - 1
            i = jj - n_in - 1
            if i >= a and i < bnd and update:
                yc = e * ry + i % ry
                if n_in == 0 or lam32 <= 0:
                    for j in range(nx):
                        x[e, i, j] = buf[yc, j]
                    if keep and n_in > 0:
                        for j in range(nx):
                            p[e, i, j] = np.float32(0.0)
                            q[e, i, j] = np.float32(0.0)
                else:
                    last = (e * nr + n_in) * 4
                    _primal_row(buf, yc, o_p + last + ((i - 1) & 3), o_p + last + (i & 3),
                                o_q + last + (i & 3), i, ny, lam32, nx, o_m + 1)
                    for j in range(nx):
                        x[e, i, j] = out_row[j]
                    if keep:
                        for j in range(nx):
                            p[e, i, j] = buf[o_p + last + (i & 3), j]
                            q[e, i, j] = buf[o_q + last + (i & 3), j]
    out = np.empty(3)
    out[0] = c1
    out[1] = c2
    out[2] = c3
    return out


def fused_iteration(x, b, bh, w, gamma, lam_h, lam_chem, eps, p, q, lam_tv,
                    alphas, warm, keep, update, n_bands, prox=False, tv_step=1.0):
    """x = TV-prox(max(x - grad, 0)) in place; returns the costs (Psi1, Psi2, TV) of x before.

    x, b: (n, ny, nx) float32; bh: (ny, nx); w: (n,) channel weights. p, q: TV
    dual variables, read when ``warm`` (else the duals start at 0) and
    overwritten with the final duals when ``keep``. lam_chem, lam_tv: the Poisson
    and TV weights, one for all elements or one per element (n,); an element with weight <= 0 gets
    no TV step. alphas: (n_inner,) float64 FGP momentum factors (zeros for GP);
    ``tv_step``: the dual step as a fraction of 1 / (8 lam_tv) (in (0, 1]). With
    ``update`` False nothing is written (costs only). Rows are split into
    ``n_bands`` parallel bands. With ``prox`` the Psi2 part of the step is its
    exact proximal step (``kernels.gradient_step``). Costs are float64 (3,).
    The step is stated in NumPy by :func:`fusedem.objective.outer_iteration`.
    """
    n = x.shape[0]
    return _fused_iteration(x, b, bh, w, gamma, lam_h, per_element(lam_chem, n), eps, p, q,
                            per_element(lam_tv, n), alphas, warm, keep, update, n_bands,
                            prox, np.float32(tv_step))


@nb.njit(parallel=True, **_JIT)
def _fused_iteration(x, b, bh, w, gamma, lam_h, lam_chem, eps, p, q, lam_tv,
                     alphas, warm, keep, update, n_bands, prox, tv_step):
    """:func:`fused_iteration` with lam_chem, lam_tv (n,) float32 and tv_step float32."""
    n, ny, nx = x.shape
    n_in = alphas.shape[0] if lam_tv.max() > 0 else 0
    band = (ny + n_bands - 1) // n_bands
    # rows around each band edge that both neighbours read, saved before either writes
    h = 2 * n_in + 2
    base = np.empty(n_bands + 1, np.int64)
    snap_x = np.empty((n_bands + 1, n, h, nx), np.float32)
    snap_p = np.empty_like(snap_x)
    snap_q = np.empty_like(snap_x)
    for k in range(n_bands + 1):
        base[k] = k * band - n_in - 1
        if k == 0 or k == n_bands:
            continue
        for r in range(max(0, base[k]), min(ny, base[k] + h)):
            for e in range(n):
                for j in range(nx):
                    snap_x[k, e, r - base[k], j] = x[e, r, j]
                    snap_p[k, e, r - base[k], j] = p[e, r, j]
                    snap_q[k, e, r - base[k], j] = q[e, r, j]
    part = np.zeros((n_bands, 3))
    for t in nb.prange(n_bands):
        a = t * band
        bnd = min(a + band, ny)
        if a < bnd:
            part[t] = _band(t, a, bnd, x, b, bh, w, gamma, lam_h, lam_chem, eps, p, q,
                            lam_tv, alphas, warm, keep, update, snap_x, snap_p, snap_q, base,
                            prox, tv_step)
    out = np.zeros(3)
    for t in range(n_bands):
        for k in range(3):
            out[k] += part[t, k]
    return out


def fgp_alphas(n_inner: int, momentum: bool = True) -> np.ndarray:
    """FGP momentum factors (t_k - 1) / t_(k+1) with t_1 = 1, (n_inner,); zeros for GP."""
    al = np.zeros(n_inner)
    t = 1.0
    for k in range(n_inner):
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        al[k] = (t - 1.0) / t_next if momentum else 0.0
        t = t_next
    return al


def n_bands_for(ny: int, n_threads: int, n_inner: int) -> int:
    """Row bands for ny rows: one per thread, each at least 4 (n_inner + 2) rows high."""
    return max(1, min(n_threads, ny // (4 * (n_inner + 2))))
