"""One fused-tomography solve on the GPU: :class:`CudaTomoStepper`.

The same small interface as the CPU stepper of :mod:`fusedem.tomo.solver`
(``evaluate``, ``step``, ``shrink``, ``model_bound``, ``tv_total``, ``volumes``
and the per-element step sizes ``tau``, kept on the host), so the solver loop,
its backtracking and its acceptance decisions are shared. The projectors' CSR
matrices, the data and every volume stay on the GPU; each call copies back only
the scalars it returns (a few float64 sums), and ``volumes`` the volumes.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import tomo_kernels as T

_F32 = np.float32


class _DeviceCSR:
    """A :class:`fusedem.tomo.projector.CSRArrays` on the GPU, applied to (n_cols, m) arrays."""

    def __init__(self, c):
        self.indptr = cuda.to_device(np.ascontiguousarray(c.indptr, np.int64))
        self.indices = cuda.to_device(np.ascontiguousarray(c.indices, np.int32))
        self.data = cuda.to_device(np.ascontiguousarray(c.data, _F32))
        self.shape = tuple(c.shape)

    def apply(self, x, out) -> None:
        """out = A @ x; x (n_cols, m), out (n_rows, m) device arrays."""
        T.csr_dense[T.sp_grid(self.shape[0], out.shape[1]), T.SP_BLOCK](
            self.indptr, self.indices, self.data, x, out)


class CudaTomoStepper:
    """State of one solve on the GPU: x, x_old, v = x_old - tau grad f, TV duals.

    pb: a built :class:`fusedem.tomo.problem.Problem`; p: its TomoParams.
    """

    def __init__(self, pb, p):
        self.pb, self.p = pb, p
        nz, nx, n, ny = pb.shape
        self.n, self.ny, self.nv = n, ny, nz * nx
        self.tau = pb.tau0.copy()
        self.gamma = _F32(p.gamma)
        self.lam_tv = np.asarray(pb.lambda_tv, np.float64)  # (n,) per element, as on the CPU
        self.tv_on = self.lam_tv.max() > 0
        self._ph, self._ph_t = _DeviceCSR(pb.ph.csr), _DeviceCSR(pb.ph.csr_t)
        self._pc, self._pc_t = _DeviceCSR(pb.pc.csr), _DeviceCSR(pb.pc.csr_t)
        self._bh = cuda.to_device(np.ascontiguousarray(pb.bh, _F32))
        self._bc = cuda.to_device(np.ascontiguousarray(pb.bc, _F32))
        self._colsum = cuda.to_device(np.ascontiguousarray(pb.colsum, _F32))
        self._w = cuda.to_device(np.asarray(pb.w, _F32))
        self._cw = cuda.to_device(np.asarray(pb.chem_weights, _F32))
        self._x = cuda.to_device(np.ascontiguousarray(pb.x0, _F32))
        self._x_old = cuda.device_array_like(self._x)
        self._v = cuda.device_array_like(self._x)
        self._s = cuda.device_array((nz, nx, ny), _F32)
        self._gh = cuda.device_array((nz, nx, ny), _F32)
        self._rh = cuda.device_array((pb.ph.shape[0], ny), _F32)
        self._yc = cuda.device_array((pb.pc.shape[0], n * ny), _F32)
        self._acc = cuda.device_array(T.acc_size(n), np.float64)
        self._dots = cuda.device_array(2, np.float64)
        if self.tv_on:
            self._p = cuda.device_array((3, nz, nx, n, ny), _F32)
            self._prev = cuda.device_array((3, nz, nx, n, ny), _F32)
            self._zero(self._p)
        self._vgrid = T.vol_grid(nz, nx, ny, n)
        self._sgrid = T.vol_grid(nz, nx, ny, 1)

    @staticmethod
    def _zero(a) -> None:
        flat = a.reshape(a.size)
        T.zero_flat[(a.size + 255) // 256, 256](flat, a.size)

    def _zero_acc(self, lo: int, hi: int) -> None:
        T.zero1d[1, max(hi - lo, 1)](self._acc[lo:hi])

    def _cols(self, a):
        """A (nz, nx, ...) volume as its (nz·nx, columns) matrix view."""
        return a.reshape(self.nv, a.size // self.nv)

    def evaluate(self) -> tuple[float, float]:
        """(Psi1, Psi2) of x; keeps the residuals the next :meth:`step` needs."""
        pb, n, ny = self.pb, self.n, self.ny
        self._zero_acc(T.ACC_PSI1, T.ACC_PSI1 + 1)
        self._zero_acc(T.ACC_PSI2, T.ACC_PSI2 + n)
        T.haadf_sum[self._sgrid, T.VOL_BLOCK](self._x, self._w, self.gamma, self._s)
        self._ph.apply(self._cols(self._s), self._rh)
        rows = self._rh.shape[0]
        grid = T.vol_grid(1, rows, ny, 1)
        a = 1.0
        if self.p.haadf_gain == "fit":  # the model's gain at its optimum, as on the CPU
            T.zero1d[1, 2](self._dots)
            T.haadf_dots[grid, T.VOL_BLOCK](self._rh, self._bh, self._dots)
            mm, mb = self._dots.copy_to_host()
            a = mb / mm if mm > 0 else 1.0
            a = a if a > 0 else 1.0
        T.haadf_residual[grid, T.VOL_BLOCK](
            self._rh, self._bh, _F32(a), _F32(a / pb.haadf_norm), self._acc)
        self._pc.apply(self._cols(self._x), self._yc)
        T.chem_residual[T.vol_grid(1, self._yc.shape[0], ny, n), T.VOL_BLOCK](
            self._yc, self._bc, _F32(self.p.eps), self._cw, ny, self._acc)
        acc = self._acc.copy_to_host()
        psi1 = 0.5 * float(acc[T.ACC_PSI1]) / pb.haadf_norm
        per = acc[T.ACC_PSI2:T.ACC_PSI2 + n]
        psi2 = float(np.dot(pb.chem_weights.astype(np.float64), per))
        return psi1, psi2

    def step(self) -> None:
        """x_old <- x; v <- x - tau grad f(x); x <- TV prox of v."""
        self._ph_t.apply(self._rh, self._cols(self._gh))
        self._pc_t.apply(self._yc, self._cols(self._v))
        T.descent[self._vgrid, T.VOL_BLOCK](
            self._x, self._gh, self._colsum, self._cw, self._w, self.gamma,
            cuda.to_device(self.tau.astype(_F32)), _F32(self.p.lambda_chem), self._v)
        self._x, self._x_old = self._x_old, self._x
        self.prox()

    def shrink(self) -> None:
        """Halve the step: v <- (x_old + v) / 2; x <- prox(v)."""
        self.tau *= 0.5
        T.halve[self._vgrid, T.VOL_BLOCK](self._v, self._x_old)
        self.prox()

    def prox(self) -> None:
        if not self.tv_on:
            T.clamp[self._vgrid, T.VOL_BLOCK](self._v, self._x)
            return
        if not self.p.warm_start_tv:
            self._zero(self._p)
        lam = [self.tau[e] * self.lam_tv[e] for e in range(self.n)]
        lam32 = cuda.to_device(np.array(lam, _F32))
        # an element without TV: dual step 0 keeps its duals 0, so its x is max(v, 0)
        step = cuda.to_device(np.array([1.0 / (12.0 * v) if v > 0 else 0.0 for v in lam], _F32))
        self._prev.copy_to_device(self._p)
        t, beta = 1.0, _F32(0.0)
        momentum = self.p.tv_solver == "fgp"
        for _ in range(int(self.p.n_iter_tv)):
            T.tv_primal[self._vgrid, T.VOL_BLOCK](self._v, self._x, self._p, self._prev, lam32, beta)
            T.tv_dual[self._vgrid, T.VOL_BLOCK](self._x, self._p, self._prev, step, beta)
            if momentum:
                tn = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
                beta = _F32((t - 1.0) / tn)
                t = tn
        T.tv_primal[self._vgrid, T.VOL_BLOCK](self._v, self._x, self._p, self._prev, lam32, _F32(0.0))

    def model_bound(self, f_old: float) -> float:
        """f(x_old) + <grad f(x_old), x - x_old> + sum_e ||x_e - x_old,e||² / (2 tau_e)."""
        n, lo = self.n, T.ACC_PSI2 + self.n
        self._zero_acc(lo, lo + 2 * n)
        T.step_stats[self._vgrid, T.VOL_BLOCK](self._x_old, self._v, self._x, self._acc)
        acc = self._acc.copy_to_host()
        a, b = acc[lo:lo + n], acc[lo + n:lo + 2 * n]
        return f_old + float(np.sum((a + 0.5 * b) / self.tau))

    def tv_total(self) -> float:
        """Sum over elements of TV₃ of x (float64)."""
        self._zero_acc(T.ACC_TV, T.ACC_TV + 1)
        T.tv_total[self._vgrid, T.VOL_BLOCK](self._x, self._acc)
        return float(self._acc[T.ACC_TV:T.ACC_TV + 1].copy_to_host()[0])

    def volumes(self) -> dict[str, np.ndarray]:
        """element -> (ny, nz, nx) float32, copied back."""
        x = self._x.copy_to_host()
        return {s: np.ascontiguousarray(x[:, :, e, :].transpose(2, 0, 1))
                for e, s in enumerate(self.pb.symbols)}

    def synchronize(self) -> None:
        """Wait for the GPU (for timing)."""
        cuda.synchronize()
