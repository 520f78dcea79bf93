"""CUDA kernels of the 3-D fused tomography solver (:mod:`fusedem.tomo.solver` on a GPU).

The maths and the layout are those of the CPU kernels (:mod:`fusedem.tomo._kernels`,
:mod:`fusedem.tomo._spmm`); every array is a float32 C-contiguous device array:

    x, x_old, v        (nz, nx, n, ny)      volumes in column layout; as (nz·nx, n·ny) the
                                            dense operand of the chemical projector
    s, gh              (nz, nx, ny)         HAADF model sum_e w_e x_e^gamma, its back-projection
    p, prev            (3, nz, nx, n, ny)   TV duals (z, x, y) and their previous values
    rh                 (n_H·nu, ny)         HAADF residual; yc (n_c·nu, n·ny) chemical one
    acc                (2 + 3n,) float64    block-reduced sums (see ACC_*)

Volume kernels use blocks of VOL_BLOCK threads along (y, x) of one slice z and one
element e: grid (ceil(ny/32), ceil(nx/8), nz·n), so each block belongs to one element
and its per-element sums reduce in shared memory before one atomic add per block.
Reductions sum float32 terms in float64, as the CPU kernels do.
"""
from __future__ import annotations

import math

from numba import cuda, float32, float64

from . import simulated
from .kernels import _pow

#: threads per block along (y, x) of volumes (y is contiguous in memory) and along
#: (columns, rows) of a sparse product; powers of two, at most _NT threads. The
#: kernels read the block size from blockDim, so the simulator, where every thread
#: is a Python thread, runs the same code on small blocks.
VOL_BLOCK = (8, 4) if simulated() else (32, 8)
SP_BLOCK = VOL_BLOCK
_NT = 256
#: slots of the float64 accumulator: Σ r_H², TV₃, then per element Ψ₂ sums, <x_old-v, d>, |d|²
ACC_PSI1, ACC_TV, ACC_PSI2 = 0, 1, 2


def acc_size(n: int) -> int:
    return 2 + 3 * n


def vol_grid(nz: int, nx: int, ny: int, n: int) -> tuple[int, int, int]:
    """Blocks of VOL_BLOCK covering (ny, nx) by nz·n slices-and-elements."""
    return ((ny + VOL_BLOCK[0] - 1) // VOL_BLOCK[0], (nx + VOL_BLOCK[1] - 1) // VOL_BLOCK[1], nz * n)


def sp_grid(n_rows: int, n_cols: int) -> tuple[int, int]:
    """Blocks of SP_BLOCK covering (n_rows, n_cols): rows on grid x (which allows 2³¹ blocks)."""
    return ((n_rows + SP_BLOCK[1] - 1) // SP_BLOCK[1], (n_cols + SP_BLOCK[0] - 1) // SP_BLOCK[0])


@cuda.jit(device=True, inline=True)
def _block_add(a, b, acc, sa, sb):
    """acc[sa] += block sum of a, acc[sb] += block sum of b (float64; sb < 0: b unused)."""
    sh = cuda.shared.array((2, _NT), float64)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    sh[0, t] = a
    sh[1, t] = b
    cuda.syncthreads()
    half = cuda.blockDim.x * cuda.blockDim.y // 2
    while half > 0:
        if t < half:
            sh[0, t] += sh[0, t + half]
            sh[1, t] += sh[1, t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        cuda.atomic.add(acc, sa, sh[0, 0])
        if sb >= 0:
            cuda.atomic.add(acc, sb, sh[1, 0])


@cuda.jit(fastmath=True)
def csr_dense(indptr, indices, data, x, out):
    """out = A @ x for A in CSR; x (n_cols_A, m), out (n_rows_A, m). One thread per
    (row, column); a warp reads 32 consecutive columns of one row of x (coalesced)."""
    c = cuda.blockIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    if r < out.shape[0] and c < out.shape[1]:
        acc = float32(0.0)
        for k in range(indptr[r], indptr[r + 1]):
            acc += data[k] * x[indices[k], c]
        out[r, c] = acc


@cuda.jit
def zero1d(a):
    """a = 0 (1-D)."""
    t = cuda.grid(1)
    if t < a.shape[0]:
        a[t] = 0.0


@cuda.jit
def zero_flat(a, size):
    """a.ravel()[:size] = 0 for a C-contiguous float32 array viewed 1-D."""
    t = cuda.grid(1)
    if t < size:
        a[t] = float32(0.0)


@cuda.jit(fastmath=True)
def haadf_sum(x, w, gamma, s):
    """s[k, j, i] = sum_e w_e x[k, j, e, i]^gamma; grid (ny, nx) by nz."""
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    j = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    k = cuda.blockIdx.z
    if i < x.shape[3] and j < x.shape[1]:
        o = float32(0.0)
        for e in range(x.shape[2]):
            o += w[e] * _pow(x[k, j, e, i], gamma)
        s[k, j, i] = o


@cuda.jit(fastmath=True)
def haadf_residual(model, bh, gain, out_scale, acc):
    """d = gain·model - bh: model <- d · out_scale (in place) and acc[ACC_PSI1] += sum d²;
    model, bh (rows, ny); grid (ny, rows)."""
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    c = float64(0.0)
    if r < model.shape[0] and i < model.shape[1]:
        d = gain * model[r, i] - bh[r, i]
        c = float64(d) * float64(d)
        model[r, i] = d * out_scale
    _block_add(c, float64(0.0), acc, ACC_PSI1, -1)


@cuda.jit(fastmath=True)
def haadf_dots(model, bh, dots):
    """dots[0] += sum model², dots[1] += sum model·bh (the HAADF gain fit); grid (ny, rows)."""
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    a = float64(0.0)
    b = float64(0.0)
    if r < model.shape[0] and i < model.shape[1]:
        m = float64(model[r, i])
        a = m * m
        b = m * float64(bh[r, i])
    _block_add(a, b, dots, 0, 1)


@cuda.jit(fastmath=True)
def chem_residual(yc, bc, eps, cw, ny, acc):
    """yc <- c_e bc / (yc + eps) (in place) and acc[ACC_PSI2 + e] += sum (y - eps) - b log y
    with y = yc + eps; yc, bc (rows, n·ny); grid (ny, rows) by n elements."""
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    e = cuda.blockIdx.z
    c = float64(0.0)
    if r < yc.shape[0] and i < ny:
        col = e * ny + i
        y = yc[r, col] + eps
        bv = bc[r, col]
        c = (float64(y) - float64(eps)) - float64(bv) * float64(math.log(y))
        yc[r, col] = bv / y * cw[e]
    _block_add(c, float64(0.0), acc, ACC_PSI2 + e, -1)


@cuda.jit(device=True, inline=True)
def _voxel(n):
    """(i, j, k, e) of this thread on the volume grid (n elements): i along y, j along x,
    k the slice z and e the element, from grid z = k · n + e."""
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    j = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    return i, j, cuda.blockIdx.z // n, cuda.blockIdx.z % n


@cuda.jit(fastmath=True)
def descent(x, gh, colsum, cw, w, gamma, tau, lam_chem, v):
    """v = x - tau_e (gamma w_e x^(gamma-1) gh + lam_chem (c_e colsum - gc)) where gc = v on
    entry (c_e P_cᵀ(b / (P_c x + eps))); gh (nz, nx, ny), colsum (nz, nx); volume grid."""
    n = x.shape[2]
    i, j, k, e = _voxel(n)
    if i < x.shape[3] and j < x.shape[1]:
        c = colsum[k, j] * cw[e]
        xv = x[k, j, e, i]
        pw = _pow(xv, gamma - float32(1.0))
        v[k, j, e, i] = xv - tau[e] * (gamma * w[e] * pw * gh[k, j, i]
                                       + lam_chem * (c - v[k, j, e, i]))


@cuda.jit(fastmath=True)
def halve(v, x_old):
    """v = (v + x_old) / 2: the step of half the size from x_old; volume grid."""
    n = v.shape[2]
    i, j, k, e = _voxel(n)
    if i < v.shape[3] and j < v.shape[1]:
        v[k, j, e, i] = (v[k, j, e, i] + x_old[k, j, e, i]) * float32(0.5)


@cuda.jit(fastmath=True)
def clamp(v, x):
    """x = max(v, 0) (the prox without TV); volume grid."""
    n = v.shape[2]
    i, j, k, e = _voxel(n)
    if i < v.shape[3] and j < v.shape[1]:
        val = v[k, j, e, i]
        x[k, j, e, i] = val if val > 0 else float32(0.0)


@cuda.jit(device=True, inline=True)
def _r(p, prev, beta, c, k, j, e, i):
    """FGP extrapolated dual r = p + beta (p - prev) at one voxel."""
    pv = p[c, k, j, e, i]
    return pv + beta * (pv - prev[c, k, j, e, i])


@cuda.jit(fastmath=True)
def tv_primal(v, x, p, prev, lam, beta):
    """x = max(v - lam_e L(r), 0) with r = p + beta (p - prev), every element; volume grid."""
    n = v.shape[2]
    i, j, k, e = _voxel(n)
    if i < v.shape[3] and j < v.shape[1]:
        l = (_r(p, prev, beta, 0, k, j, e, i) + _r(p, prev, beta, 1, k, j, e, i)
             + _r(p, prev, beta, 2, k, j, e, i))
        if k > 0:
            l -= _r(p, prev, beta, 0, k - 1, j, e, i)
        if j > 0:
            l -= _r(p, prev, beta, 1, k, j - 1, e, i)
        if i > 0:
            l -= _r(p, prev, beta, 2, k, j, e, i - 1)
        val = v[k, j, e, i] - lam[e] * l
        x[k, j, e, i] = val if val > 0 else float32(0.0)


@cuda.jit(fastmath=True)
def tv_dual(x, p, prev, step, beta):
    """p <- proj_{|p|<=1}(r + step_e Lᵀ x), prev <- old p (r as in :func:`tv_primal`)."""
    nz, nx, n, ny = x.shape
    i, j, k, e = _voxel(n)
    if i < ny and j < nx:
        zero = float32(0.0)
        st = step[e]
        xv = x[k, j, e, i]
        q0 = _r(p, prev, beta, 0, k, j, e, i) + st * (xv - x[k + 1, j, e, i]) if k < nz - 1 else zero
        q1 = _r(p, prev, beta, 1, k, j, e, i) + st * (xv - x[k, j + 1, e, i]) if j < nx - 1 else zero
        q2 = _r(p, prev, beta, 2, k, j, e, i) + st * (xv - x[k, j, e, i + 1]) if i < ny - 1 else zero
        nrm = math.sqrt(q0 * q0 + q1 * q1 + q2 * q2)
        s = float32(1.0) / nrm if nrm > 1 else float32(1.0)
        for c in range(3):
            prev[c, k, j, e, i] = p[c, k, j, e, i]
        p[0, k, j, e, i] = q0 * s
        p[1, k, j, e, i] = q1 * s
        p[2, k, j, e, i] = q2 * s


@cuda.jit(fastmath=True)
def tv_total(x, acc):
    """acc[ACC_TV] += sum over elements of the isotropic 3-D TV (forward differences)."""
    nz, nx, n, ny = x.shape
    i, j, k, e = _voxel(n)
    c = float64(0.0)
    if i < ny and j < nx:
        xv = x[k, j, e, i]
        d0 = x[k + 1, j, e, i] - xv if k < nz - 1 else float32(0.0)
        d1 = x[k, j + 1, e, i] - xv if j < nx - 1 else float32(0.0)
        d2 = x[k, j, e, i + 1] - xv if i < ny - 1 else float32(0.0)
        c = float64(math.sqrt(d0 * d0 + d1 * d1 + d2 * d2))
    _block_add(c, float64(0.0), acc, ACC_TV, -1)


@cuda.jit(fastmath=True)
def step_stats(x_old, v, x_new, acc):
    """Per element e: acc[2+n+e] += sum (x_old - v)(x_new - x_old), acc[2+2n+e] += sum
    (x_new - x_old)²; volume grid."""
    n = x_old.shape[2]
    i, j, k, e = _voxel(n)
    a = float64(0.0)
    b = float64(0.0)
    if i < x_old.shape[3] and j < x_old.shape[1]:
        xo = x_old[k, j, e, i]
        d = x_new[k, j, e, i] - xo
        a = float64((xo - v[k, j, e, i]) * d)
        b = float64(d * d)
    _block_add(a, b, acc, ACC_PSI2 + n + e, ACC_PSI2 + 2 * n + e)
