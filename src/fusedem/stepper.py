"""Outer iterations of the solver on preallocated buffers, with the faster kernel.

Up to :data:`MAX_FUSED_INNER` TV inner iterations, one outer iteration is one
pass over memory (:func:`fusedem.pipeline.fused_iteration`). Beyond that its
per-band ring buffers (a few rows per inner iteration and element) outgrow the
cache and its band margins (n_iter_tv + 1 rows) eat into the parallel work, so
the two-pass kernels (``kernels.gradient_step`` then ``kernels.tv_prox``) are
faster. ``benchmarks/bench_kernels.py``, ms per outer iteration, 3 elements,
2 threads:

    inner iterations          3        10        20        30        40
    512²   one / two pass   1.8/1.8   4.3/4.1   8.1/7.4   12/11     16/14
    2048²  one / two pass    32/46     66/122   134/223   274/339   428/420

Small images fit in cache either way; there the one-pass kernel's per-row
overhead costs up to 15 %.
"""
from __future__ import annotations

import numba
import numpy as np

from . import kernels, pipeline
from .params import FusionParams
from .threads import step_threads

MAX_FUSED_INNER = 20


class Stepper:
    """Holds the iterate ``x`` (n, ny, nx) float32 and the TV duals between outer iterations.

    b: (n, ny, nx) float32 normalised maps; bh: (ny, nx) normalised HAADF;
    w: (n,) float32 channel weights; lam_h: the HAADF term's weight. ``fused``
    picks the kernel (None: the one-pass kernel up to MAX_FUSED_INNER). x0: the
    initial iterate (n, ny, nx) float32 (None: b, the published choice). lam_tv:
    the TV weight per element (n,) (None: p.lambda_tv for all; the solver passes
    ``p.lambda_tv_of(symbols)``); lam_chem likewise the Poisson weight per element
    (None: p.lambda_chem for all; the solver passes ``p.lambda_chem_of(gains)``).
    """

    def __init__(self, bh: np.ndarray, b: np.ndarray, w: np.ndarray, lam_h: float,
                 p: FusionParams, fused: bool | None = None, x0: np.ndarray | None = None,
                 lam_tv: np.ndarray | None = None, lam_chem: np.ndarray | None = None):
        self.bh, self.b, self.w, self.p = bh, b, w, p
        f32 = np.float32
        lam_c = kernels.per_element(p.lambda_chem if lam_chem is None else lam_chem, b.shape[0])
        self.scalars = (f32(p.gamma), f32(lam_h), lam_c, f32(p.eps))
        self.fused = p.n_iter_tv <= MAX_FUSED_INNER if fused is None else bool(fused)
        self.x = np.array(b if x0 is None else x0, dtype=np.float32, order="C", copy=True)
        self._p, self._q = np.zeros_like(b), np.zeros_like(b)
        self._stepped = False
        self._hist: list[np.ndarray] = []  # costs of x_0, x_1, ... as the steps computed them
        self._prox = p.poisson_step == "prox"
        self._lam_tv = kernels.per_element(p.lambda_tv if lam_tv is None else lam_tv, b.shape[0])
        self._alphas = pipeline.fgp_alphas(p.n_iter_tv, momentum=p.tv_solver == "fgp")
        self._threads = numba.get_num_threads()  # the caller's limit; each step may use fewer
        if self.fused:
            self._bands = pipeline.n_bands_for(b.shape[1], self._threads, p.n_iter_tv)
        else:  # gradient step y and the extrapolated duals r, s of the two-pass kernels
            self._y, self._r, self._s = (np.empty_like(b) for _ in range(3))
            self._block = max(8, min(64, -(-b.shape[1] // 8)))  # rows per task of tv_prox

    def step(self) -> np.ndarray:
        """One outer iteration; returns the costs (Psi1, Psi2, TV) (3,) of the iterate before it.

        With ``warm_start_tv`` the TV dual iteration starts from the previous
        iteration's duals (from 0 in the first iteration, and always without it).
        """
        p = self.p
        warm = p.warm_start_tv and self._stepped
        self._stepped = True
        numba.set_num_threads(step_threads(self._threads))  # the cores others leave free now
        try:
            if self.fused:
                costs = pipeline.fused_iteration(
                    self.x, self.b, self.bh, self.w, *self.scalars, self._p, self._q,
                    self._lam_tv, self._alphas, warm, p.warm_start_tv, True, self._bands,
                    self._prox, p.tv_step,
                )
            else:
                costs = kernels.gradient_step(self.x, self.b, self.bh, self.w, *self.scalars,
                                              self._y, True, self._prox)
                kernels.tv_prox(self._y, self._lam_tv, p.n_iter_tv, self._p, self._q, self._r,
                                self._s, self.x, momentum=p.tv_solver == "fgp", warm=warm,
                                block=self._block, tv_step=p.tv_step)
        finally:
            numba.set_num_threads(self._threads)
        self._hist.append(costs)
        return costs

    def history(self, k: int) -> np.ndarray:
        """Costs (Psi1, Psi2, TV) of the iterates x_0 .. x_(k-1) as the steps computed them, (k, 3)."""
        if k > len(self._hist):
            raise ValueError(f"only {len(self._hist)} steps were taken, asked for {k} costs")
        return np.array(self._hist[:k]).reshape(k, 3)

    def maps(self) -> np.ndarray:
        """The current iterate (n, ny, nx) float32 (the stepper's own array: copy to keep it)."""
        return self.x

    def costs(self) -> np.ndarray:
        """Costs (Psi1, Psi2, TV) (3,) of the current iterate."""
        if self.fused:  # costs only (update=False): no other kernel to compile
            return pipeline.fused_iteration(
                self.x, self.b, self.bh, self.w, *self.scalars, self._p, self._q, 0.0,
                self._alphas, False, False, False, self._bands,
            )
        return kernels.gradient_step(self.x, self.b, self.bh, self.w, *self.scalars, self._y, False)
