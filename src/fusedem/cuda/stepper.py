"""Outer iterations on the GPU for a batch of K problems: :class:`CudaStepper`.

A batch shares the image size, the element list, the weights and every
parameter except λ_chem and λ_TV, which may differ per problem. Problems may
share their data (an autotune search: K parameter sets on one image) or not
(a series of frames): ``b`` holds Kb data slots and ``bidx`` maps problem k to
its slot. Everything stays on the GPU between iterations; costs are
accumulated there and copied back only when asked for, maps likewise.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import cuda

from ..params import FusionParams
from ..pipeline import fgp_alphas
from . import kernels as K

_SHARED = ("gamma", "eps", "n_iter_tv", "tv_solver", "poisson_step", "warm_start_tv")
#: besides lambda_chem, lambda_tv, lambda_tv_elements and tv_step, which may differ


def _per_problem_element(lam, per_problem: list[float], n: int):
    """A weight of K problems × n elements as a (K·n,) float32 device array: ``lam``
    (K, n) or (n,), or each problem's ``per_problem`` value for all its elements."""
    k_all = len(per_problem)
    a = (np.repeat(np.array(per_problem, np.float32)[:, None], n, axis=1) if lam is None
         else np.broadcast_to(np.asarray(lam, np.float32), (k_all, n)))
    return cuda.to_device(np.ascontiguousarray(a, np.float32).reshape(k_all * n))


class CudaStepper:
    """The iterate x (K, n, ny, nx) and the TV duals of K problems, resident on the GPU.

    bh: (Kb, ny, nx) or (ny, nx) normalised HAADF; b: (Kb, n, ny, nx) or (n, ny, nx)
    normalised maps; w: (n,) channel weights; lam_h: the HAADF term's weight;
    params: one FusionParams or K of them (equal in all but lambda_chem, lambda_tv,
    lambda_tv_elements and tv_step); lam_tv: (K, n) or (n,) λ_TV per problem and
    element (None: each problem's lambda_tv for all its elements); lam_chem likewise
    λ_chem (None: each problem's lambda_chem for all its elements); bidx: (K,) data slot of each problem (default: k, or 0 when Kb = 1).
    x0: initial iterate, (n, ny, nx) or (K, n, ny, nx) (None: b, the published choice).
    """

    def __init__(self, bh: np.ndarray, b: np.ndarray, w: np.ndarray, lam_h: float,
                 params: FusionParams | Sequence[FusionParams], bidx: Sequence[int] | None = None,
                 x0: np.ndarray | None = None, history: int = 0,
                 lam_tv: np.ndarray | None = None, lam_chem: np.ndarray | None = None):
        plist = [params] if isinstance(params, FusionParams) else list(params)
        if not plist:
            raise ValueError("CudaStepper needs at least one parameter set")
        p0 = plist[0]
        for p in plist[1:]:
            diff = [f for f in _SHARED if getattr(p, f) != getattr(p0, f)]
            if diff:
                raise ValueError(f"a batch must share {', '.join(diff)}; solve those separately")
        b = np.asarray(b, np.float32)
        bh = np.asarray(bh, np.float32)
        if b.ndim == 3:
            b, bh = b[None], bh[None]
        kb, n, ny, nx = b.shape
        k_all = len(plist)
        idx = np.asarray(bidx if bidx is not None else
                         (np.arange(k_all) if kb == k_all else np.zeros(k_all)), np.int32)
        if idx.shape != (k_all,) or idx.min() < 0 or idx.max() >= kb:
            raise ValueError(f"bidx must give each of the {k_all} problems a data slot in 0..{kb - 1}")
        self.p, self.n, self.k = p0, n, k_all
        self.shape = (k_all, n, ny, nx)
        f32 = np.float32
        self._scal = (f32(p0.gamma), f32(lam_h), f32(p0.eps))
        self._lam_chem = _per_problem_element(lam_chem, [p.lambda_chem for p in plist], n)
        self._lam_tv = _per_problem_element(lam_tv, [p.lambda_tv for p in plist], n)
        self._tv_step = cuda.to_device(np.array([p.tv_step for p in plist], f32))
        self._alphas = fgp_alphas(p0.n_iter_tv, momentum=p0.tv_solver == "fgp").astype(f32)
        self._prox = p0.poisson_step == "prox"
        self._b = cuda.to_device(np.ascontiguousarray(b.reshape(kb * n, ny, nx)))
        self._bh = cuda.to_device(np.ascontiguousarray(bh))
        self._bidx = cuda.to_device(idx)
        self._w = cuda.to_device(np.asarray(w, f32))
        img = (k_all * n, ny, nx)
        self._grid_k = K.grid_for(ny, nx, k_all)
        self._grid_m = K.grid_for(ny, nx, k_all * n)
        if x0 is None:  # each problem starts from its data slot: device-to-device copies
            self._x = cuda.device_array(img, f32)
            for k, s in enumerate(idx):
                self._x[k * n:(k + 1) * n].copy_to_device(self._b[s * n:(s + 1) * n])
        else:
            x0 = np.asarray(x0, f32)
            x_init = np.broadcast_to(x0, self.shape) if x0.ndim == 3 else x0
            self._x = cuda.to_device(np.ascontiguousarray(x_init, f32).reshape(img))
        self._y, self._pd, self._qd = (cuda.device_array(img, f32) for _ in range(3))
        self._rs = [(cuda.device_array(img, f32), cuda.device_array(img, f32)) for _ in range(2)]
        K.fill_zero[self._grid_m, K.BLOCK](self._pd)
        K.fill_zero[self._grid_m, K.BLOCK](self._qd)
        self._hist = cuda.to_device(np.zeros((max(history, 1), k_all, 3)))
        self._scratch = cuda.device_array((k_all, 3), np.float64)
        self.steps = 0

    def _gradient(self, write: bool, costs) -> None:
        gamma, lam_h, eps = self._scal
        K.gradient_step[self._grid_k, K.BLOCK](
            self._x, self._b, self._bh, self._bidx, self._w, self.n, gamma, lam_h,
            self._lam_chem, eps, self._prox, write, self._y, costs)

    def step(self) -> None:
        """One outer iteration of every problem; the costs of the iterate before it are kept
        on the GPU (:meth:`history`)."""
        if self.steps >= self._hist.shape[0]:  # grow the cost history (doubling)
            old = self._hist.copy_to_host()
            self._hist = cuda.to_device(np.concatenate([old, np.zeros_like(old)]))
        self._gradient(True, self._hist[self.steps])
        warm = self.p.warm_start_tv and self.steps > 0
        self.steps += 1
        n_in = len(self._alphas)
        (r0, s0), (r1, s1) = self._rs
        if warm:
            K.copy_pair[self._grid_m, K.BLOCK](self._pd, self._qd, r0, s0)
        for it in range(n_in):
            rin, sin = self._rs[it % 2]
            rout, sout = self._rs[(it + 1) % 2]
            K.tv_dual_step[self._grid_m, K.BLOCK](
                self._y, self._pd, self._qd, rin, sin, rout, sout, self._lam_tv, self._tv_step, self.n,
                self._alphas[it], it == 0 and not warm, it < n_in - 1)
        K.tv_primal[self._grid_m, K.BLOCK](self._y, self._pd, self._qd, self._lam_tv, self._x)

    def costs(self) -> np.ndarray:
        """Costs (Psi1, Psi2, TV) of the current iterates, (K, 3) float64 (copied back)."""
        self._scratch.copy_to_device(np.zeros((self.k, 3)))
        self._gradient(False, self._scratch)
        return self._scratch.copy_to_host()

    def history(self, k: int) -> np.ndarray:
        """Costs of the iterates x_0 .. x_(k-1), (k, K, 3) float64, as computed by the steps."""
        if k > self.steps:
            raise ValueError(f"only {self.steps} steps were taken, asked for {k} costs")
        if k == 0:
            return np.zeros((0, self.k, 3))
        return self._hist[:k].copy_to_host()

    def maps(self) -> np.ndarray:
        """The current iterates, copied back: (K, n, ny, nx) float32."""
        return self._x.copy_to_host().reshape(self.shape)

    def synchronize(self) -> None:
        """Wait for the GPU (for timing)."""
        cuda.synchronize()


class SingleCudaStepper:
    """One problem on the GPU with the CPU :class:`fusedem.stepper.Stepper`'s interface:
    step(), costs() -> (3,), history(k) -> (k, 3), maps() -> (n, ny, nx)."""

    def __init__(self, bh: np.ndarray, b: np.ndarray, w: np.ndarray, lam_h: float,
                 p: FusionParams, x0: np.ndarray | None = None, lam_tv: np.ndarray | None = None,
                 lam_chem: np.ndarray | None = None):
        self._s = CudaStepper(bh, b, w, lam_h, p, x0=x0, history=p.n_iter, lam_tv=lam_tv,
                              lam_chem=lam_chem)

    def step(self) -> None:
        self._s.step()

    def costs(self) -> np.ndarray:
        return self._s.costs()[0]

    def history(self, k: int) -> np.ndarray:
        return self._s.history(k)[:, 0]

    def maps(self) -> np.ndarray:
        return self._s.maps()[0]
