"""Fused multi-modal tomography: :func:`iterate_tilt_series` (a generator) and :func:`fuse_tilt_series`.

Proximal gradient on F(x) = Psi1 + lambda_chem Psi2 + lambda_tv sum_i TV3(x_i),
x >= 0 (docs/tomography.md): a gradient step on the smooth part with a step
size from power-iteration estimates of ||P||² (halved whenever the sufficient-
decrease test fails), then the TV₃ proximal step by FGP with warm-started duals.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cuda import device_name, resolve_device
from . import _kernels
from .inputs import prepare
from .params import TomoParams
from .problem import Problem, build

COST_NAMES = ("haadf", "chem", "tv")
MAX_HALVINGS = 30
#: Steps grow by this factor after each accepted step (and halve on a failed test),
#: up to STEP_GROWTH_CAP times the initial estimate.
STEP_GROWTH = 1.25
STEP_GROWTH_CAP = 64.0


@dataclass(frozen=True)
class TomoState:
    """An intermediate state of :func:`iterate_tilt_series`; owns its arrays.

    ``volumes`` is None when withheld to respect ``min_interval``.
    """

    iteration: int  #: outer iterations completed (1..n_iter)
    n_iter: int
    volumes: dict[str, np.ndarray] | None  #: element -> (ny, nz, nx) float32, normalised units
    costs: dict[str, np.ndarray]  #: 'haadf', 'chem', 'tv' -> (iteration,) float64
    elapsed: float  #: seconds since the start
    device: str = "cpu"  #: where it runs: 'cpu', 'cuda: <GPU name>' or 'cuda: simulator'

    @property
    def done(self) -> bool:
        return self.iteration >= self.n_iter


@dataclass(frozen=True)
class TomoResult:
    """Result of :func:`fuse_tilt_series`.

    volumes: element -> (ny, nz, nx) float32 in normalised units (brightest voxels
    ~1); ``scales[e]`` converts to counts per voxel (per unit path) of the
    chemical signal: counts = volume × scale.
    """

    volumes: dict[str, np.ndarray]
    costs: dict[str, np.ndarray]
    params: TomoParams
    haadf_angles: np.ndarray
    chem_angles: np.ndarray
    elements: dict[str, int]  #: element symbol -> atomic number Z
    elapsed: float  #: seconds
    iterations: int
    autotune: Any = None  #: the :class:`fusedem.tomo.autotune.TomoAutoResult` of ``params="auto"``
    scales: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"  #: where it ran: 'cpu', 'cuda: <GPU name>' or 'cuda: simulator'


def _resolve(params, overrides: dict) -> TomoParams:
    p = params if params is not None else TomoParams()
    if not isinstance(p, TomoParams):
        raise ValueError(f"params must be a TomoParams, None or 'auto', got {type(p).__name__}")
    return p.replace(**overrides) if overrides else p


class _Stepper:
    """State of one solve on the CPU: x, the previous x and v = x_old - tau grad f, TV duals.

    The interface :func:`run` uses (shared with :class:`fusedem.cuda.tomo_stepper.CudaTomoStepper`):
    ``evaluate() -> (Psi1, Psi2)`` of x (keeping the residuals), ``step()``, ``shrink()``,
    ``model_bound(f_old)``, ``tv_total()``, ``volumes()`` and the step sizes ``tau`` (n,).
    """

    def __init__(self, pb: Problem, p: TomoParams):
        self.pb, self.p = pb, p
        nz, nx, n, ny = pb.shape
        self.x = pb.x0.copy()
        self.x_old = np.empty_like(self.x)
        self.v = np.empty_like(self.x)
        self.s = np.empty((nz, nx, ny), np.float32)
        self.lam_tv = pb.lambda_tv
        self.tv_on = max(self.lam_tv) > 0
        self.duals = np.zeros((3,) + self.x.shape, np.float32) if self.tv_on else None
        self.prev = np.empty((3, nz, nx, ny), np.float32) if self.tv_on else None
        self.tau = pb.tau0.copy()
        self.gamma = np.float32(p.gamma)

    def evaluate(self) -> tuple[float, float]:
        """(Psi1, Psi2) of x; keeps the residuals the next :meth:`step` needs
        (r_H / ||P_H||², c_e b / (P_c x + eps))."""
        pb, (nz, nx, n, ny) = self.pb, self.pb.shape
        _kernels.haadf_sum(self.x, pb.w, self.gamma, self.s)
        rh = pb.ph.forward(self.s.reshape(nz * nx, ny))
        a = 1.0
        if self.p.haadf_gain == "fit":  # variable projection: the model's gain at its optimum
            mm = float(np.dot(rh.ravel().astype(np.float64), rh.ravel()))
            a = float(np.dot(rh.ravel().astype(np.float64), pb.bh.ravel())) / mm if mm > 0 else 1.0
            a = a if a > 0 else 1.0
            rh *= np.float32(a)
        rh -= pb.bh
        psi1 = 0.5 * float(np.dot(rh.ravel().astype(np.float64), rh.ravel())) / pb.haadf_norm
        rh *= np.float32(a / pb.haadf_norm)
        yc = pb.pc.forward(self.x.reshape(nz * nx, n * ny))
        yc += np.float32(self.p.eps)
        y3, b3 = yc.reshape(-1, n, ny), pb.bc.reshape(-1, n, ny)
        per = (y3.sum(axis=(0, 2), dtype=np.float64) - self.p.eps * y3.shape[0] * ny
               - np.einsum("rei,rei->e", b3, np.log(y3), dtype=np.float64))
        psi2 = float(np.dot(pb.chem_weights.astype(np.float64), per))
        np.divide(pb.bc, yc, out=yc)
        y3 *= pb.chem_weights[None, :, None]
        self._res = (rh, yc)
        return psi1, psi2

    def step(self) -> None:
        """x_old <- x; v <- x - tau grad f(x); x <- TV prox of v."""
        pb, (nz, nx, n, ny) = self.pb, self.pb.shape
        rh, q = self._res
        gh = pb.ph.back(rh).reshape(nz, nx, ny)
        pb.pc.back(q, out=self.v.reshape(nz * nx, n * ny))
        _kernels.descent(self.x, gh, self.v, pb.colsum, pb.chem_weights, pb.w, self.gamma, self.tau.astype(np.float32),
                         np.float32(self.p.lambda_chem), self.v)
        self.x, self.x_old = self.x_old, self.x
        self.prox()

    def shrink(self) -> None:
        """Halve the step: v <- x_old - (tau/2) grad f(x_old) = (x_old + v) / 2; x <- prox(v)."""
        self.tau *= 0.5
        self.v += self.x_old
        self.v *= np.float32(0.5)
        self.prox()

    def prox(self) -> None:
        if not self.tv_on:
            np.maximum(self.v, 0, out=self.x)
            return
        if not self.p.warm_start_tv:
            self.duals[...] = 0
        for e in range(self.x.shape[2]):
            lam = self.tau[e] * self.lam_tv[e]
            if lam <= 0:
                np.maximum(self.v[:, :, e], 0, out=self.x[:, :, e])
                continue
            _kernels.tv_prox(self.v, self.x, self.duals, self.prev, e, lam, self.p.n_iter_tv,
                             momentum=self.p.tv_solver == "fgp")

    def model_bound(self, f_old: float) -> float:
        """f(x_old) + <grad f(x_old), x - x_old> + sum_e ||x_e - x_old,e||² / (2 tau_e)."""
        ab = _kernels.step_stats(self.x_old, self.v, self.x)
        return f_old + float(np.sum((ab[:, 0] + 0.5 * ab[:, 1]) / self.tau))

    def tv_total(self) -> float:
        return float(_kernels.tv_total(self.x))

    def volumes(self) -> dict[str, np.ndarray]:
        return {s: np.ascontiguousarray(self.x[:, :, e, :].transpose(2, 0, 1))
                for e, s in enumerate(self.pb.symbols)}


def make_stepper(pb: Problem, p: TomoParams, device: str = "cpu"):
    """The stepper of a resolved device ('cpu' or 'cuda') for a built problem."""
    if device == "cuda":
        from ..cuda.tomo_stepper import CudaTomoStepper

        return CudaTomoStepper(pb, p)
    return _Stepper(pb, p)


def run(pb: Problem, p: TomoParams, every: int = 1, min_interval: float = 0.0,
        costs: bool = True, device: str = "cpu") -> Iterator[TomoState]:
    """The solver loop over a built problem (a generator of :class:`TomoState`) on a
    resolved ``device`` ('cpu' or 'cuda'; the same acceptance tests on both).

    Without ``costs`` the TV term is computed only for the final iterate.
    """
    st = make_stepper(pb, p, device)
    name = device_name(device)
    hist = np.zeros((p.n_iter, 3))
    t0 = time.perf_counter()
    last = -np.inf
    k, bound, halvings = 0, None, 0
    while True:
        psi1, psi2 = st.evaluate()
        f = psi1 + p.lambda_chem * psi2
        if bound is not None:
            if f > bound + 1e-5 * abs(bound) and halvings < MAX_HALVINGS:
                halvings += 1
                st.shrink()
                bound = st.model_bound(f_old)
                continue
            k += 1
            tv = st.tv_total() if costs or k == p.n_iter else np.nan
            hist[k - 1] = (psi1, psi2, tv)
            if k % every == 0 or k == p.n_iter:
                now = time.perf_counter()
                give = k == p.n_iter or now - last >= min_interval
                last = now if give else last
                yield TomoState(k, p.n_iter, st.volumes() if give else None,
                                {c: hist[:k, i].copy() for i, c in enumerate(COST_NAMES)}, now - t0, name)
            if k == p.n_iter:
                return
        if bound is not None and halvings == 0:
            st.tau = np.minimum(st.tau * STEP_GROWTH, STEP_GROWTH_CAP * pb.tau0)
        f_old, halvings = f, 0
        st.step()
        bound = st.model_bound(f_old)


def _finite(states: Iterator[TomoState]) -> Iterator[TomoState]:
    try:
        for s in states:
            if not all(np.isfinite(c[-1]) for c in s.costs.values()):
                raise ValueError(f"the solver diverged: the cost terms are not finite at "
                                 f"iteration {s.iteration}")
            yield s
    finally:
        states.close()


def iterate_tilt_series(haadf, haadf_angles, maps: Mapping[str, object], chem_angles,
                        params: TomoParams | None = None, every: int = 1,
                        min_interval: float = 0.0, device: str = "auto",
                        **overrides) -> Iterator[TomoState]:
    """Run fused tomography, yielding a :class:`TomoState` every ``every`` iterations.

    haadf: (n_H, ny, nx) projections, tilt axis along y; haadf_angles: (n_H,)
    degrees; maps: element -> (n_c, ny, nx) chemical projections (counts);
    chem_angles: (n_c,) degrees. ``params="auto"`` chooses the lambdas first, at the
    first ``next()`` (:mod:`fusedem.tomo.autotune`). The inputs are validated before this returns
    (ValueError naming the problem); the last iteration is always yielded with
    volumes; with ``min_interval`` (s) volumes are attached at most that often.
    Closing the generator stops within one outer iteration. ``device``: 'auto' (a GPU
    when usable, else the CPU), 'cpu' or 'cuda' (docs/gpu.md); ``state.device`` says which.
    """
    dev = resolve_device(device)
    auto = params == "auto" if isinstance(params, str) else False
    if isinstance(params, str) and not auto:
        raise ValueError(f"params must be a TomoParams, None or 'auto', got {params!r}")
    p = _resolve(None if auto else params, overrides)
    if int(every) < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    data = prepare(haadf, haadf_angles, maps, chem_angles)
    p.lambda_tv_of(list(data.chem))  # lambda_tv_elements names only present elements
    if auto:
        from ..validation import are_counts

        if not are_counts(data.chem):  # fail now, not at the first next()
            raise ValueError("params='auto' thins the chemical series and needs raw counts "
                             "(non-negative integers); give TomoParams instead")
    return _finite(_lazy(data, p, int(every), float(min_interval), auto, dev))


def _lazy(data, p, every, min_interval, auto=False, device="cpu"):
    """The solve, run when first iterated; with ``auto`` the lambda search runs first
    (about 12 solves; closing the generator during it stops after the current solve)."""
    if auto:
        from .autotune import autotune_tilt_series

        p = autotune_tilt_series(data, p, device=device).params
    yield from run(build(data, p), p, every, min_interval, device=device)


def fuse_tilt_series(haadf, haadf_angles, maps: Mapping[str, object], chem_angles,
                     params: TomoParams | str | None = None, device: str = "auto",
                     **overrides) -> TomoResult:
    """Fused 3-D chemical volumes from a HAADF and a chemical tilt series; see
    :func:`iterate_tilt_series` for the inputs. ``params="auto"`` chooses
    lambda_chem and lambda_tv from the data first (:mod:`fusedem.tomo.autotune`).
    Returns a :class:`TomoResult` with volumes (ny, nz, nx) float32 per element;
    ``device`` as in :func:`iterate_tilt_series`, ``result.device`` says where it ran.
    """
    dev = resolve_device(device)
    data = prepare(haadf, haadf_angles, maps, chem_angles)
    auto = None
    if isinstance(params, str):
        if params != "auto":
            raise ValueError(f"params must be a TomoParams, None or 'auto', got {params!r}")
        from .autotune import autotune_tilt_series

        auto = autotune_tilt_series(data, _resolve(None, overrides), device=dev)
        p = auto.params
    else:
        p = _resolve(params, overrides)
    t0 = time.perf_counter()
    pb = build(data, p)
    state = None
    for state in _finite(run(pb, p, p.n_iter, device=dev)):
        pass
    return TomoResult(
        volumes=state.volumes, costs=state.costs, params=p,
        haadf_angles=data.haadf_angles.copy(), chem_angles=data.chem_angles.copy(),
        elements=dict(data.z), elapsed=time.perf_counter() - t0, iterations=state.iteration,
        autotune=auto, scales={s: float(g) for s, g in zip(pb.symbols, pb.scales)},
        device=state.device,
    )
