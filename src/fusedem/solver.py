"""The fused multi-modal solver: :func:`iterate` (a generator) and :func:`fuse`."""
from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import kernels
from .cuda import device_name, resolve_device
from .elements import atomic_number, normalize_symbol
from .objective import channel_weights  # noqa: F401  (public here too)
from .params import FusionParams
from .stepper import Stepper

MIN_SIZE = 8
COST_NAMES = ("haadf", "chem", "tv")


@dataclass(frozen=True)
class FusionState:
    """An intermediate state yielded by :func:`iterate`; owns its arrays.

    ``maps`` is None when the generator withheld the full maps to respect
    ``min_interval`` (only iteration and costs are then up to date).
    """

    iteration: int  #: outer iterations completed (1..n_iter)
    n_iter: int
    maps: dict[str, np.ndarray] | None  #: element -> (ny, nx) float32, normalised units
    costs: dict[str, np.ndarray]  #: 'haadf', 'chem', 'tv' -> (iteration,) float64
    elapsed: float  #: seconds since the start of the solve
    device: str = "cpu"  #: where it ran: 'cpu', 'cuda: <GPU name>' or 'cuda: simulator'

    @property
    def done(self) -> bool:
        return self.iteration >= self.n_iter


@dataclass(frozen=True)
class FusionResult:
    """Result of :func:`fuse`.

    maps: element -> (ny, nx) float32 fused map in normalised units (the solver's x).
    haadf_model: (ny, nx) float32, A x^gamma, comparable to the normalised HAADF.
    costs: 'haadf' (Psi1), 'chem' (Psi2), 'tv' (sum of TV) -> (n_iter,) arrays.
    """

    maps: dict[str, np.ndarray]
    haadf_model: np.ndarray
    costs: dict[str, np.ndarray]
    params: FusionParams
    elements: dict[str, int]  #: element symbol -> atomic number Z
    weights: dict[str, float]  #: element symbol -> channel weight w_i
    elapsed: float  #: seconds
    iterations: int  #: outer iterations actually run (< n_iter when stopped early)
    input_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: normalisation of each input ('HAADF' and elements): raw = lo + x·(hi − lo)
    autotune: Any = None
    #: the :class:`fusedem.tuning.AutoResult` that chose ``params`` (``params="auto"``), else None
    device: str = "cpu"  #: where it ran: 'cpu', 'cuda: <GPU name>' or 'cuda: simulator'

    def maps_in_input_units(self) -> dict[str, np.ndarray]:
        """The fused maps in their inputs' units (counts for count maps): lo + x·(hi − lo).

        element -> (ny, nx) float64; the inverse of the input normalisation
        recorded in ``input_ranges``. Raises ValueError when a range is missing.
        """
        return to_input_units(self.maps, self.input_ranges)


def to_input_units(maps: Mapping[str, np.ndarray],
                   input_ranges: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """element -> lo + x·(hi − lo) as float64, for normalised maps x and their (lo, hi)."""
    out = {}
    for k, x in maps.items():
        if k not in input_ranges:
            raise ValueError(f"no input range recorded for map {k!r}: cannot return it in the "
                             f"input's units (ranges known for {list(input_ranges)})")
        lo, hi = (float(v) for v in input_ranges[k])
        out[k] = lo + np.asarray(x, dtype=np.float64) * (hi - lo)
    return out


def _check_image(name: str, a: object) -> tuple[np.ndarray, float, float]:
    """Validate one input image; returns (array, min, max). Raises ValueError naming it."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # e.g. ragged lists
        raise ValueError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: complex values are not supported")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D image, got shape {arr.shape}")
    if min(arr.shape) < MIN_SIZE:
        raise ValueError(
            f"{name}: image of shape {arr.shape} is too small (at least {MIN_SIZE} x {MIN_SIZE})"
        )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    lo, hi = float(arr.min()), float(arr.max())  # NaN or inf shows up here
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    if hi == lo:
        what = "all zero" if hi == 0 else f"constant ({hi:g})"
        raise ValueError(f"{name}: the image is {what}; it carries no information to fuse")
    return arr, lo, hi


check_image = _check_image  # public: the napari panel checks its inputs before Run


def _normalise(arr: np.ndarray, lo: float, hi: float, out: np.ndarray) -> None:
    """out = (arr - lo) / (hi - lo) into float32, computed in float64 blocks of rows.

    Exact for any finite input range, also one float32 cannot hold (1e39, 1e300,
    or a span below ~1e-38); temporaries stay small (2 MiB).
    """
    s = 1.0 if math.isfinite(hi - lo) else 0.5  # hi - lo overflows: halve everything
    lo_s, span = lo * s, hi * s - lo * s
    rows = max(1, (1 << 18) // max(1, arr.shape[1]))
    for i in range(0, arr.shape[0], rows):
        blk = np.multiply(arr[i:i + rows], s, dtype=np.float64)
        blk -= lo_s
        np.divide(blk, span, out=out[i:i + rows], casting="same_kind")


def map_range(lo: float, hi: float, map_scaling: str) -> tuple[float, float]:
    """The (lo, hi) an elemental map with raw range [lo, hi] is normalised by."""
    return (min(lo, 0.0), hi) if map_scaling == "max" else (lo, hi)


def prepare_inputs(haadf, maps: Mapping[str, object], map_scaling: str = "max"):
    """Validate and normalise inputs (HAADF min-max; maps by ``map_scaling``).

    Returns (bh (ny, nx), b (n, ny, nx), symbols, z (n,), input_ranges), where
    input_ranges[name] = (lo, hi) is the normalisation: raw = lo + x·(hi − lo).
    With 'max', lo is 0 unless a map has negative values (then its minimum).
    The caller's arrays are not modified. Raises ValueError naming the problem.
    """
    if not isinstance(maps, Mapping):
        raise ValueError("maps must be a mapping element symbol -> 2-D array")
    if len(maps) == 0:
        raise ValueError("maps is empty: give at least one elemental map")
    bh_raw, *rng_h = _check_image("HAADF", haadf)
    symbols: list[str] = []
    raws = []
    for key, a in maps.items():
        sym = normalize_symbol(str(key))
        if sym in symbols:
            raise ValueError(f"element {sym} is given twice (keys {list(maps)})")
        arr, lo, hi = _check_image(f"map {key!r}", a)
        lo, hi = map_range(lo, hi, map_scaling)
        if arr.shape != bh_raw.shape:
            raise ValueError(
                f"shape mismatch: map {key!r} has shape {arr.shape} but the HAADF has "
                f"shape {bh_raw.shape}; all inputs must come from the same scan"
            )
        symbols.append(sym)
        raws.append((arr, lo, hi))
    bh = np.empty(bh_raw.shape, np.float32)
    _normalise(bh_raw, *rng_h, bh)
    ranges = {"HAADF": tuple(rng_h)}
    b = np.empty((len(raws),) + bh.shape, np.float32)
    for k, (sym, (arr, lo, hi)) in enumerate(zip(symbols, raws)):
        _normalise(arr, lo, hi, b[k])
        ranges[sym] = (lo, hi)
    z = np.array([atomic_number(s) for s in symbols], dtype=np.float64)
    return bh, b, symbols, z, ranges


def map_gains(ranges: Mapping[str, Sequence[float]], symbols: Sequence[str]) -> list[float]:
    """The gain hi − lo each element's map was divided by (``prepare_inputs``'s ranges)."""
    return [float(ranges[s][1]) - float(ranges[s][0]) for s in symbols]


def _resolve(params: FusionParams | None, overrides: dict) -> FusionParams:
    p = params if params is not None else FusionParams()
    if not isinstance(p, FusionParams):
        raise ValueError(f"params must be a FusionParams, got {type(p).__name__}")
    return p.replace(**overrides) if overrides else p


def _costs_so_far(hist: np.ndarray, k: int) -> dict[str, np.ndarray]:
    return {name: hist[:k, c].copy() for c, name in enumerate(COST_NAMES)}


def iterate(
    haadf,
    maps: Mapping[str, object],
    params: FusionParams | None = None,
    every: int = 1,
    min_interval: float = 0.0,
    device: str = "auto",
    **overrides,
) -> Iterator[FusionState]:
    """Run the solver, yielding a :class:`FusionState` every ``every`` iterations.

    haadf: (ny, nx) array; maps: element symbol -> (ny, nx) array (order kept).
    The final iteration is always yielded with maps. With ``min_interval`` > 0
    (seconds), full maps are attached (copied back from a GPU) at most that often
    (others carry maps=None); closing the generator stops the work within one
    outer iteration. ``device``: 'auto' (a GPU when usable, else the CPU), 'cpu'
    or 'cuda'; each state says which ran.
    """
    p = _resolve(params, overrides)
    if int(every) < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    dev = resolve_device(device)
    bh, b, symbols, z, ranges = prepare_inputs(haadf, maps, p.map_scaling)
    p.lambda_tv_of(symbols)  # names an element that is not there: ValueError now
    return _finite(_run(bh, b, symbols, z, p, int(every), float(min_interval), device=dev,
                        gains=map_gains(ranges, symbols)))


def _finite(states: Iterator[FusionState]) -> Iterator[FusionState]:
    """Pass states through; raise ValueError once a cost term is not finite (a diverged run).

    Used by :func:`iterate` and :func:`fuse`; autotune calls :func:`_run` directly and
    scores a diverged candidate as infinitely bad instead.
    """
    try:
        for st in states:
            if not all(np.isfinite(c).all() for c in st.costs.values()):
                raise ValueError(f"the solver diverged: the cost terms are not finite at iteration "
                                 f"{st.iteration}; lower lambda_chem or lambda_haadf")
            yield st
    finally:
        states.close()  # closing the caller's generator stops the solver at once


def make_stepper(bh, b, w, lam_h: float, p: FusionParams, device: str, x0=None, lam_tv=None,
                 lam_chem=None):
    """The stepper of a resolved device ('cpu' or 'cuda'): step(), costs(), history(k), maps().
    lam_tv, lam_chem: (n,) λ_TV and λ_chem per element (None: p's value for all)."""
    if device == "cuda":
        from .cuda.stepper import SingleCudaStepper

        return SingleCudaStepper(bh, b, w, lam_h, p, x0=x0, lam_tv=lam_tv, lam_chem=lam_chem)
    return Stepper(bh, b, w, lam_h, p, x0=x0, lam_tv=lam_tv, lam_chem=lam_chem)


def _run(bh, b, symbols, z, p: FusionParams, every: int, min_interval: float,
         checkpoint_costs: bool = True, device: str = "cpu", gains=None):
    """The solver loop (a generator of FusionState) on a resolved ``device``. Without
    ``checkpoint_costs`` the costs of the yielded iterate are computed only at the end
    (each costs one more pass over memory), as :mod:`fusedem.tuning` needs the maps only.
    gains: (n,) the gain each map was divided by (:func:`map_gains`; None: all equal),
    for ``p.poisson_weights``."""
    x0 = None
    if p.background_threshold is not None:  # the initial iterate only; b stays the data
        x0 = np.where(b < p.background_threshold, np.float32(0), b)
    w = channel_weights(z, p.weighting, p.gamma).astype(np.float32)
    lam_h = p.lambda_haadf if p.lambda_haadf is not None else 1.0 / len(symbols)
    lam_chem = p.lambda_chem_of(np.ones(len(symbols)) if gains is None else gains)
    steps = make_stepper(bh, b, w, lam_h, p, device, x0=x0,
                         lam_tv=np.array(p.lambda_tv_of(symbols), np.float32),
                         lam_chem=np.array(lam_chem, np.float32))
    name = device_name(device)
    t0 = time.perf_counter()
    last_maps = -np.inf
    for k in range(1, p.n_iter + 1):
        steps.step()
        if k % every == 0 or k == p.n_iter:
            hist = np.zeros((k, 3))
            hist[:k - 1] = steps.history(k)[1:]  # step j computed the costs of x_(j-1)
            if checkpoint_costs or k == p.n_iter:
                hist[k - 1] = steps.costs()
            now = time.perf_counter()
            give = k == p.n_iter or now - last_maps >= min_interval
            if give:
                last_maps = now
                x = steps.maps()
            yield FusionState(
                iteration=k,
                n_iter=p.n_iter,
                maps={s: x[i].copy() for i, s in enumerate(symbols)} if give else None,
                costs=_costs_so_far(hist, k),
                elapsed=now - t0,
                device=name,
            )


def haadf_model(maps: Mapping[str, np.ndarray], weights: Mapping[str, float], gamma: float) -> np.ndarray:
    """A x^gamma = sum_i w_i x_i^gamma, (ny, nx) float32, for maps in normalised units."""
    x = np.ascontiguousarray(np.stack([np.maximum(m, 0) for m in maps.values()]), np.float32)
    w = np.array([weights[s] for s in maps], np.float32)
    out = np.empty(x.shape[1:], np.float32)
    kernels.forward_model(x, w, np.float32(gamma), out)
    return out


def fuse(haadf, maps: Mapping[str, object], params: FusionParams | str | None = None,
         device: str = "auto", **overrides) -> FusionResult:
    """Fuse noisy elemental maps with the HAADF image; see :func:`iterate`.

    Returns a :class:`FusionResult` whose maps are (ny, nx) float32 in
    normalised units. ``overrides`` change single parameters, e.g. ``n_iter=50``.
    ``params="auto"`` chooses λ_chem, λ_TV and n_iter from the data first
    (:func:`fusedem.autotune`, with ``overrides`` as the other parameters); the
    choice and its validation scores are in ``result.autotune``. ``device``: 'auto'
    (a GPU when usable, else the CPU), 'cpu' or 'cuda'; ``result.device`` says which ran.
    """
    dev = resolve_device(device)
    auto = None
    if isinstance(params, str):
        if params != "auto":
            raise ValueError(f"params must be a FusionParams, None or 'auto', got {params!r}")
        from .tuning import autotune

        auto = autotune(haadf, maps, _resolve(None, overrides), device=dev)
        p = auto.params
    else:
        p = _resolve(params, overrides)
    bh, b, symbols, z, ranges = prepare_inputs(haadf, maps, p.map_scaling)
    p.lambda_tv_of(symbols)  # names an element that is not there: ValueError now
    t0 = time.perf_counter()
    state = None
    for state in _finite(_run(bh, b, symbols, z, p, p.n_iter, 0.0, device=dev,
                              gains=map_gains(ranges, symbols))):
        pass
    w = channel_weights(z, p.weighting, p.gamma)
    weights = {s: float(wi) for s, wi in zip(symbols, w)}
    return FusionResult(
        maps=state.maps,
        haadf_model=haadf_model(state.maps, weights, p.gamma),
        costs=state.costs,
        params=p,
        elements={s: int(zi) for s, zi in zip(symbols, z)},
        weights=weights,
        elapsed=time.perf_counter() - t0,
        iterations=state.iteration,
        input_ranges=ranges,
        autotune=auto,
        device=state.device,
    )


def load_kernels() -> float:
    """Compile the solver's numba kernels, or load them from numba's on-disk cache.

    The first call on a machine compiles (about 15 s on 2 cores) and fills the
    cache; later processes load it in about 0.3 s. Call it before starting
    worker processes so that they load instead of each compiling while holding
    the GIL. Returns the seconds taken.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    fuse(rng.random((16, 16)), {"O": rng.random((16, 16))}, n_iter=1)
    return time.perf_counter() - t0
