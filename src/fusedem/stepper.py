"""Outer iterations of the solver on preallocated buffers, with the faster kernel.

Up to :data:`MAX_FUSED_INNER` TV inner iterations, one outer iteration is one
pass over memory (:func:`fusedem.pipeline.fused_iteration`). Beyond that its
per-band ring buffers (a few rows per inner iteration and element) outgrow the
cache and its band margins (n_iter_tv + 1 rows) eat into the parallel work, so
the two-pass kernels (``kernels.gradient_step`` then ``kernels.tv_prox``) are
faster. Measured per outer iteration on random 3-element maps, 2 threads:

    inner iterations        10           20           40
    512²,  one/two pass   9.2 / 8.7    16.7 / 16.3   40 / 31 ms
    2048², one/two pass   137 / 279    234 / 472    710 / 457 ms
"""
from __future__ import annotations

import numba
import numpy as np

from . import kernels, pipeline
from .params import FusionParams

MAX_FUSED_INNER = 20


class Stepper:
    """Holds the iterate ``x`` (n, ny, nx) float32 and the TV duals between outer iterations.

    b: (n, ny, nx) float32 normalised maps; bh: (ny, nx) normalised HAADF;
    w: (n,) float32 channel weights; lam_h: the HAADF term's weight.
    """

    def __init__(self, bh: np.ndarray, b: np.ndarray, w: np.ndarray, lam_h: float, p: FusionParams):
        self.bh, self.b, self.w, self.p = bh, b, w, p
        f32 = np.float32
        self.scalars = (f32(p.gamma), f32(lam_h), f32(p.lambda_chem), f32(p.eps))
        self.fused = p.n_iter_tv <= MAX_FUSED_INNER
        self.x = b.copy()
        self._x2 = np.empty_like(b)  # next iterate (one pass) or gradient step y (two passes)
        self._duals = [np.zeros_like(b), np.zeros_like(b), np.empty_like(b), np.empty_like(b)]
        self._alphas = pipeline.fgp_alphas(p.n_iter_tv, momentum=p.tv_solver == "fgp")
        self._bands = pipeline.n_bands_for(b.shape[1], numba.get_num_threads(), p.n_iter_tv)
        self._block = max(8, min(64, -(-b.shape[1] // 8)))  # rows per task of tv_prox

    def step(self, warm: bool) -> np.ndarray:
        """One outer iteration; returns the costs (Psi1, Psi2, TV) (3,) of the iterate before it.

        ``warm``: start the TV dual iteration from the previous iteration's duals.
        """
        p, (pd, qd, pn, qn) = self.p, self._duals
        if self.fused:
            costs = pipeline.fused_iteration(
                self.x, self.b, self.bh, self.w, *self.scalars, pd, qd, float(p.lambda_tv),
                self._alphas, warm, p.warm_start_tv, self._bands, self._x2, pn, qn,
            )
            self.x, self._x2 = self._x2, self.x
            self._duals = [pn, qn, pd, qd]
            return costs
        y = self._x2
        costs = kernels.gradient_step(self.x, self.b, self.bh, self.w, *self.scalars, y, True)
        kernels.tv_prox(y, p.lambda_tv, p.n_iter_tv, pd, qd, pn, qn, self.x,
                        momentum=p.tv_solver == "fgp", warm=warm, block=self._block)
        return costs

    def costs(self) -> np.ndarray:
        """Costs (Psi1, Psi2, TV) (3,) of the current iterate."""
        if self.fused:  # a gradient step into scratch, no TV step: no other kernel to compile
            pd, qd, pn, qn = self._duals
            return pipeline.fused_iteration(
                self.x, self.b, self.bh, self.w, *self.scalars, pd, qd, 0.0, self._alphas,
                False, False, self._bands, self._x2, pn, qn,
            )
        return kernels.gradient_step(self.x, self.b, self.bh, self.w, *self.scalars, self._x2, False)
