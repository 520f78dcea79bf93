"""The normalised fused-tomography problem: operators, data and initial volumes.

Normalisation (docs/tomography.md): each element's chemical series is divided
by a gain g_e (a gain only, so the Poisson term still sees counts up to scale),
chosen so that the element's initial volume (SIRT of its own series) has its
99.9th percentile at 1. The HAADF series is multiplied by the gain that best
fits it (least squares) to the projected HAADF model of the initial volumes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..solver import channel_weights
from . import _kernels
from .inputs import TiltData
from .params import TomoParams
from .projector import Projector
from .recon import sirt, to_columns

ROBUST_PERCENTILE = 99.9


@functools.lru_cache(maxsize=4)
def _projector(angles: tuple[float, ...], nz: int, nx: int) -> Projector:
    return Projector(np.array(angles), nz, nx)


def projector(angles: np.ndarray, nz: int, nx: int) -> Projector:
    """A :class:`Projector` for these tilts and slice size (the last 4 are kept and reused)."""
    return _projector(tuple(float(a) for a in angles), int(nz), int(nx))


@dataclass
class Problem:
    """Operators and normalised data, in column layout (see :mod:`fusedem.tomo._kernels`)."""

    symbols: list[str]
    ph: Projector
    pc: Projector
    bh: np.ndarray  #: (n_H·nx, ny) normalised HAADF series
    bc: np.ndarray  #: (n_c·nx, n·ny) chemical series / gain
    colsum: np.ndarray  #: (nz, nx) P_cᵀ 1
    w: np.ndarray  #: (n,) float32 channel weights
    x0: np.ndarray  #: (nz, nx, n, ny) initial volumes, normalised
    scales: np.ndarray  #: (n,) gains g_e: counts per voxel = x·g_e
    haadf_gain: float
    haadf_norm: float  #: ||P_H||²: Psi1 is divided by it
    chem_weights: np.ndarray  #: (n,) float32 c_e = mean counts per ray / ||P_c||²: Psi2_e is multiplied by it
    tau0: np.ndarray  #: (n,) initial step sizes 1 / (L_H,e + lambda_chem L_c,e)
    lambda_tv: np.ndarray  #: (n,) lambda_tv of each element (TomoParams.lambda_tv_of)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.x0.shape


def _robust_max(a: np.ndarray) -> float:
    v = float(np.percentile(a, ROBUST_PERCENTILE))
    return v if v > 0 else float(a.max())


def build(data: TiltData, p: TomoParams) -> Problem:
    """Set up the problem for validated data and parameters (projectors, gains, x0, step)."""
    ny, nx = data.shape
    nz = p.nz or nx
    symbols = list(data.chem)
    p.lambda_tv_of(symbols)  # names an element that is not there: ValueError before any work
    n = len(symbols)
    ph = projector(data.haadf_angles, nz, nx)
    pc = projector(data.chem_angles, nz, nx)
    bc = np.stack([to_columns(data.chem[s]) for s in symbols], axis=1).reshape(-1, n * ny)
    if p.n_init > 0:
        x0 = sirt(pc, bc, p.n_init)
    else:  # a uniform volume with the data's mean density
        x0 = np.repeat((bc.sum(axis=0) / max(float(pc.row_sums().sum()), 1e-12))[None], nz * nx, 0)
    x0 = np.ascontiguousarray(x0, np.float32).reshape(nz, nx, n, ny)
    scales = np.array([_robust_max(x0[:, :, e]) for e in range(n)])
    scales = np.maximum(scales, 1e-12)
    x0 /= scales[None, None, :, None].astype(np.float32)
    bc = (bc.reshape(-1, n, ny) / scales[None, :, None].astype(np.float32)).reshape(-1, n * ny)
    z = np.array([data.z[s] for s in symbols], np.float64)
    w = channel_weights(z, p.weighting, p.gamma).astype(np.float32)
    s = np.empty((nz, nx, ny), np.float32)
    _kernels.haadf_sum(x0, w, np.float32(p.gamma), s)
    model = ph.forward(s.reshape(nz * nx, ny))
    bh = to_columns(data.haadf)
    den = float(np.dot(bh.ravel().astype(np.float64), bh.ravel()))
    gain = float(np.dot(model.ravel().astype(np.float64), bh.ravel())) / den
    if not gain > 0:  # model and data anti-correlated: fall back to matching robust maxima
        gain = _robust_max(model) / max(_robust_max(bh), 1e-12)
    bh = (bh * np.float32(gain)).astype(np.float32)
    b3 = bc.reshape(-1, n, ny)
    mean_counts = np.array([float(b3[:, e][b3[:, e] > 0].mean()) for e in range(n)])
    cw = (mean_counts / pc.norm_sq()).astype(np.float32)
    tau0 = 1.0 / (lipschitz_haadf(w, p.gamma)
                  + p.lambda_chem * cw * lipschitz_chem(pc, x0, bc, p.eps))
    colsum = pc.col_sums().reshape(nz, nx)
    lam_tv = np.array(p.lambda_tv_of(symbols), np.float64)
    return Problem(symbols, ph, pc, bh, bc, colsum, w, x0, scales, gain, ph.norm_sq(), cw, tau0, lam_tv)


def lipschitz_haadf(w: np.ndarray, gamma: float) -> np.ndarray:
    """Per-element curvature bounds of Psi1 / ||P_H||² for x <= 1: gamma² w_e sum_k w_k, (n,).

    From ||sum_e a_e||² <= (sum_e w_e)(sum_e ||a_e||² / w_e): steps 1/L_e then
    decrease Psi1 jointly, and weak (low-Z) elements get larger steps than the
    single bound gamma² sum_e w_e² would give them.
    """
    w = np.asarray(w, np.float64)
    return gamma**2 * w * w.sum()


def lipschitz_chem(pc: Projector, x: np.ndarray, bc: np.ndarray, eps: float) -> np.ndarray:
    """Per-element curvature estimates of Psi2 at x: ||P_c||² × 90th percentile of
    b / (P_c x + eps)² over rays with counts, (n,). Not a bound (Psi2 has none near
    P x = 0): the solver halves its steps when the sufficient-decrease test fails."""
    nz, nx, n, ny = x.shape
    y = pc.forward(x.reshape(nz * nx, n * ny)).reshape(-1, n, ny) + np.float32(eps)
    b = bc.reshape(-1, n, ny)
    out = np.zeros(n)
    for e in range(n):
        has = b[:, e] > 0
        if np.any(has):
            out[e] = pc.norm_sq() * float(np.percentile(b[:, e][has] / y[:, e][has] ** 2, 90))
    return out
