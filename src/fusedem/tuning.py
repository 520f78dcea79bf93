"""Automatic choice of λ_chem, λ_TV (per element), the TV strength and the number of
iterations, from the data alone.

:func:`autotune_steps` is a generator (stream it, close it to cancel);
:func:`autotune` drains it. Each candidate (λ_chem, λ_TV) is solved on the
held-out splits of :mod:`fusedem.validation`; the validation score is read
every few iterations along each solve, so the number of iterations is chosen
with the λ's at no extra cost. The search scores a coarse log grid, refines
around its best point until the score stops improving, and stops early when
the budget is spent.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import validation
from .elements import normalize_symbol
from .params import FusionParams
from .cuda import resolve_device
from .solver import _run, map_gains, prepare_inputs

Method = Literal["auto", "thinning", "masking", "frames"]
#: A candidate: (λ_chem, λ_TV, n_iter_tv, tv_step, λ_TV per element as (symbol, value)
#: pairs, tv_weight_exponent)
Point = tuple[float, float, int, float, tuple[tuple[str, float], ...], float]

LAMBDA_CHEM_RANGE = (1e-4, 1.0)  #: the search never leaves these
LAMBDA_TV_RANGE = (1e-4, 4.0)
LAMBDA_CHEM_GRID = (0.001, 0.3)  #: the span of the first line (LINE_N log-spaced values)
#: The first line of candidates: LINE_N values of λ_chem with λ_TV = RIDGE λ_chem (the
#: best λ_TV is 0.7-2 λ_chem in every phantom case, docs/quality.md). Then the TV
#: strengths at the best λ's, then MOVES while the score improves: λ_chem (and λ_TV
#: with it) times or divided by the first factor, λ_TV alone by the second. A 3 x 3
#: grid of (λ_chem, λ_TV) then rings of 8 neighbours spent most of the budget off
#: the ridge and left none for the rings (docs/autotune.md).
LINE_N = 5
RIDGE = 1.5
MOVES = ((2.0, 4.0), (math.sqrt(2.0), 2.0))
#: TV strengths (inner iterations, tv_step) tried at the best λ's (besides the base's):
#: from a cold start the TV step's strength comes in whole inner iterations, and a
#: shorter dual step (tv_step < 1) makes it weaker than one. Lattices of atomic
#: columns want one short step, particles 6 (docs/quality.md).
TV_STRENGTHS = ((1, 0.25), (1, 0.5), (6, 1.0))
#: Factors on λ_TV tried for each element alone at the end (FusionParams.lambda_tv_elements).
#: All elements are scaled together in one solve (a neighbour the search may
#: already have), each element's own held-out term says which factor suits it,
#: and the combination is kept if it lowers the total score.
PER_ELEMENT_FACTORS = (0.25, 0.5, 2.0, 4.0)
#: tv_weight_exponent tried besides the base's (λ_TV of element i × (mean w / w_i)^a):
#: the first line again at this exponent, scored on the first split, and its best
#: point on all splits if it leads there. Searching from bases 0, 1.5 and 2 and keeping
#: the lowest score gained up to 4.7 dB at 0.5-2 counts/px, 2 the most often
#: (docs/autotune.md).
TV_WEIGHT_EXPONENT = 2.0
#: Candidates of the first lines (scored on the first split) scored on every split.
FINALISTS = 2
#: The weighted line takes the line's lowest λ_chem values only (with the exponent
#: the best λ's were 0.003-0.01 in every phantom case, docs/autotune.md).
WEIGHTED_LINE_N = 3
#: A choice is flagged as unreliable when at least this fraction of the candidates (and
#: 3) lie within one paired standard error of it: on 16 phantom cases (docs/autotune.md)
#: the one where auto missed the best by > 1 dB had 10 of 15; all others 1 or 2.
INDISTINCT_FRACTION = 1 / 3
#: The score is read every this many outer iterations (the choice of n_iter).
CHECK_EVERY = 5
#: One scored solve in fuse-times: copies and scoring at every checkpoint (measured
#: 1.03-1.13 on 256² phantoms and DyScO3, 2 cores shared with other jobs).
SOLVE_COST = 1.1
#: Default budget, in full fuses of the image at the base parameters.
BUDGET_FUSES = 40.0


@dataclass(frozen=True)
class Candidate:
    """One point tried: its λ's, the best iteration count and the held-out score there."""

    lambda_chem: float
    lambda_tv: float
    n_iter: int
    score: float  #: held-out squared error (normalised units, summed over elements)
    curve: tuple[tuple[int, float], ...] = ()  #: (iteration, score) along the solve
    n_iter_tv: int = 3  #: TV inner iterations of this candidate
    tv_step: float = 1.0  #: its TV dual step fraction
    #: λ_TV of single elements ((symbol, value) pairs; the others have lambda_tv)
    lambda_tv_elements: tuple[tuple[str, float], ...] = ()
    tv_weight_exponent: float = 0.0  #: FusionParams.tv_weight_exponent of this candidate

    @property
    def point(self) -> Point:
        return (self.lambda_chem, self.lambda_tv, self.n_iter_tv, self.tv_step,
                self.lambda_tv_elements, self.tv_weight_exponent)

    def to_dict(self) -> dict[str, Any]:
        return {"lambda_chem": self.lambda_chem, "lambda_tv": self.lambda_tv,
                "n_iter": self.n_iter, "n_iter_tv": self.n_iter_tv, "tv_step": self.tv_step,
                "lambda_tv_elements": dict(self.lambda_tv_elements) or None,
                "tv_weight_exponent": self.tv_weight_exponent, "score": self.score}


@dataclass(frozen=True)
class AutoResult:
    """What :func:`autotune` chose and why.

    ``params``: the chosen :class:`FusionParams`; ``candidates``: every point
    tried, in order; ``method``: 'thinning', 'frames' or 'masking'; ``elapsed``: s.
    """

    params: FusionParams
    base: FusionParams  #: the parameters the search started from (all but the chosen ones)
    score: float
    method: str
    candidates: tuple[Candidate, ...]
    elapsed: float
    n_solves: int
    stopped: str = "converged"  #: 'converged', 'budget' or 'cancelled'
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: candidates (the chosen one included) whose held-out score is within one paired
    #: standard error of the chosen one's: how many the data cannot tell apart
    n_indistinct: int = 1

    def neighbourhood(self) -> list[dict[str, Any]]:
        """Candidates within a factor 4 of the chosen λ's (both), sorted by score."""
        p = self.params
        near = [c for c in self.candidates
                if abs(math.log(c.lambda_chem / p.lambda_chem)) <= math.log(4.0) + 1e-9
                and abs(math.log(c.lambda_tv / p.lambda_tv)) <= math.log(4.0) + 1e-9]
        return [c.to_dict() for c in sorted(near, key=lambda c: c.score)]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for result files and reports."""
        return {"method": self.method, "score": self.score, "elapsed": self.elapsed,
                "n_solves": self.n_solves, "stopped": self.stopped,
                "params": self.params.to_dict(), "base": self.base.to_dict(),
                "candidates": [c.to_dict() for c in self.candidates],
                "neighbourhood": self.neighbourhood(), "notes": list(self.notes),
                "n_indistinct": self.n_indistinct}

    def summary(self) -> str:
        """One line for logs and the panel."""
        p = self.params
        return (f"auto ({self.method}): λ chem {p.lambda_chem:.3g}, λ TV {p.lambda_tv:.3g}, "
                f"{p.n_iter} iterations, {p.n_iter_tv} TV iterations"
                + (f", {p.extras_text()}" if p.extras_text() else "")
                + f"; score {self.score:.4g} from {len(self.candidates)} candidates in "
                f"{self.elapsed:.1f} s" + "".join(f". Note: {n}" for n in self.notes))


@dataclass(frozen=True)
class AutoProgress:
    """Yielded by :func:`autotune_steps` after every candidate (``result`` set at the end)."""

    candidate: Candidate | None
    best: Candidate | None
    n_solves: int
    max_solves: int
    elapsed: float
    result: AutoResult | None = None


def _choose_method(maps: Mapping[str, object], frames, method: str) -> str:
    if method not in ("auto", "thinning", "masking", "frames"):
        raise ValueError(f"method must be 'auto', 'thinning', 'masking' or 'frames', got {method!r}")
    if method == "auto":
        if frames is not None:
            return "frames"
        return "thinning" if validation.are_counts(maps) else "masking"
    if method == "frames" and frames is None:
        raise ValueError("method 'frames' needs the recorded frames (frames=...)")
    return method


def make_splits(maps: Mapping[str, object], method: str, frames=None, p: float = 0.8,
                n_splits: int = 2, seed: int = 0) -> list[validation.Split]:
    """The held-out splits for a method ('thinning', 'frames' or 'masking')."""
    if method == "thinning":
        return validation.thinning_splits(maps, p=p, n_splits=n_splits, seed=seed)
    if method == "frames":
        return validation.frame_splits(frames)
    return [validation.masking_split(maps, offset=seed + k) for k in range(max(1, n_splits // 2))]


class _Evaluator:
    """Solves candidates on the splits and scores them along the way (memoised per split)."""

    def __init__(self, haadf, splits: list[validation.Split], base: FusionParams,
                 device: str = "cpu"):
        self.base, self.splits, self.device = base, splits, device
        self.prepared = [prepare_inputs(haadf, s.fit, base.map_scaling) for s in splits]
        #: (point, split) -> the held-out score's checkpoints along the solve
        self.curves: dict[tuple[Point, int], list[validation.Checkpoint]] = {}
        self._ready: dict[tuple[Point, int], list[validation.Checkpoint]] = {}
        self.n_solves = 0

    def _params(self, point: Point) -> FusionParams:
        lam_chem, lam_tv, n_tv, tv_step, per, exponent = point
        return self.base.replace(lambda_chem=lam_chem, lambda_tv=lam_tv, n_iter_tv=n_tv,
                                 tv_step=tv_step, lambda_tv_elements=dict(per) or None,
                                 tv_weight_exponent=exponent)

    def prefetch(self, points, n_splits: int) -> None:
        """On a GPU, solve every missing (point, split) pair in one batch per n_iter_tv.

        The curves wait in a side table; :meth:`curve` counts a solve when it
        takes one, so the budget is spent as in one-by-one solving.
        """
        if self.device != "cuda":
            return
        from .cuda.batch import score_curves

        keys = [(pt, k) for pt in points for k in range(n_splits)]
        keys = [kk for kk in dict.fromkeys(keys) if kk not in self.curves and kk not in self._ready]
        for n_tv in sorted({pt[2] for pt, _ in keys}):
            group = [kk for kk in keys if kk[0][2] == n_tv]
            curves = score_curves(self.prepared, self.splits, [self._params(pt) for pt, _ in group],
                                  [k for _, k in group], CHECK_EVERY)
            self._ready.update(zip(group, curves))

    def curve(self, point: Point, k: int) -> list[validation.Checkpoint]:
        """The score along the solve of ``point`` on split ``k`` (solved once)."""
        if (point, k) in self._ready:
            self.curves[(point, k)] = self._ready.pop((point, k))
            self.n_solves += 1
        if (point, k) not in self.curves:
            p = self._params(point)
            bh, b, symbols, z, ranges = self.prepared[k]
            self.curves[(point, k)] = [
                validation.checkpoint(self.splits[k], state.maps, ranges, state.iteration)
                for state in _run(bh, b.copy(), symbols, z, p, CHECK_EVERY, 0.0, False,
                                  device=self.device, gains=map_gains(ranges, symbols))]
            self.n_solves += 1
        return self.curves[(point, k)]

    def __call__(self, point: Point, n_splits: int = 1) -> Candidate:
        """The candidate ``point`` scored on the first ``n_splits`` splits (mean score curve)."""
        curves = [self.curve(point, k) for k in range(n_splits)]
        its = [c.iteration for c in curves[0]]
        mean = [float(np.mean([c[i].score for c in curves])) for i in range(len(its))]
        i = int(np.argmin(mean))
        return Candidate(point[0], point[1], its[i], mean[i], tuple(zip(its, mean)), point[2],
                         point[3], point[4], point[5])

    def cost(self, points, n_splits: int = 1) -> int:
        """Solves that scoring ``points`` on ``n_splits`` splits still needs."""
        return sum((pt, k) not in self.curves for pt in points for k in range(n_splits))




def _sig(v: float, digits: int = 2) -> float:
    """``v`` to ``digits`` significant digits: values a user can type and a panel can show."""
    return float(f"{v:.{digits - 1}e}")


def _log_grid(rng: tuple[float, float], n: int) -> list[float]:
    return [_sig(v) for v in np.geomspace(rng[0], rng[1], n)]


def _clip(v: float, rng: tuple[float, float]) -> float:
    return _sig(min(max(v, rng[0]), rng[1]))


def _moves(c: Candidate, fc: float, ft: float) -> list[Point]:
    """λ_chem and λ_TV of ``c`` both times and divided by ``fc``, then λ_TV alone by ``ft``."""
    lc, lt = c.lambda_chem, c.lambda_tv
    pts = [(lc / fc, lt / fc), (lc * fc, lt * fc), (lc, lt / ft), (lc, lt * ft)]
    return list(dict.fromkeys(
        (_clip(a, LAMBDA_CHEM_RANGE), _clip(b, LAMBDA_TV_RANGE), c.n_iter_tv, c.tv_step,
         c.lambda_tv_elements, c.tv_weight_exponent) for a, b in pts))


def autotune_steps(
    haadf,
    maps: Mapping[str, object],
    base: FusionParams | None = None,
    *,
    method: Method = "auto",
    frames: Mapping[str, object] | None = None,
    splits: list[validation.Split] | None = None,
    budget: float = BUDGET_FUSES,
    seed: int = 0,
    device: str = "auto",
) -> Iterator[AutoProgress]:
    """Search λ_chem, λ_TV and n_iter on held-out splits; yields progress, then the result.

    haadf: (ny, nx); maps: element -> (ny, nx) (raw counts allow thinning);
    base: the other parameters (default FusionParams()); its n_iter is the
    longest solve tried. ``splits`` overrides ``method`` (which then only names
    them in the result): e.g.
    :func:`fusedem.spectra.spectrum_splits` for maps extracted from a spectrum
    image (thinned before extraction, where the counts are Poisson). ``budget``: the
    search's cost limit in fuses of the image at ``base``: a scored solve counts
    as :data:`SOLVE_COST` fuses. Counted in solves, not seconds, so the same data
    always give the same choice, whatever else the machine is doing.

    The search scores the base point and a line of λ_chem along the ridge
    λ_TV = RIDGE λ_chem, then the TV strengths (TV_STRENGTHS: inner iterations
    and tv_step) at the best point, then moves of λ_chem and λ_TV (MOVES) while
    the score improves and the budget lasts, and last a λ_TV per element
    (PER_ELEMENT_FACTORS, kept only if it lowers the score); every candidate is
    scored on every split (mean). On a GPU (``device``: 'auto', 'cpu' or 'cuda')
    the candidates of each stage are solved together in one batch, the budget
    counted as on the CPU. Raises ValueError for inputs that cannot be validated.
    """
    dev = resolve_device(device)
    t0 = time.perf_counter()
    base = base if base is not None else FusionParams()
    if not isinstance(base, FusionParams):
        raise ValueError(f"base must be a FusionParams, got {type(base).__name__}")
    prepare_inputs(haadf, maps, base.map_scaling)  # the solver's own checks first (constant HAADF, shapes ...)
    arrays = {k: np.asarray(v) for k, v in maps.items()}
    validation.check_holdout_size(next(iter(arrays.values())).shape)
    validation.check_has_counts(arrays)
    if splits is None:
        used = _choose_method(arrays, frames, method)
        splits = make_splits(arrays, used, frames=frames, seed=seed)
    else:
        used = method if method != "auto" else "given splits"
    # inputs are checked now (ValueError at the call); the search runs when iterated
    return _search(haadf, splits, base, used, budget, t0, dev)


def _affordable(ev: _Evaluator, points, n_splits: int, limit: int, first: bool) -> list:
    """The leading points that one-by-one scoring would reach within ``limit`` solves."""
    used, out = ev.n_solves, []
    for pt in points:
        cost = ev.cost([pt], n_splits)
        if not (first and not out) and used + cost > limit:
            break
        used += cost
        out.append(pt)
    return out


def _search(haadf, splits: list[validation.Split], base: FusionParams, used: str,
            budget: float, t0: float, device: str = "cpu") -> Iterator[AutoProgress]:
    """The search of :func:`autotune_steps` (a generator)."""
    ev = _Evaluator(haadf, splits, base, device)
    # solves, not seconds, so that the same data always give the same choice
    max_solves = max(len(splits), int(budget / SOLVE_COST))
    n_all = len(splits)
    strengths = [s for s in TV_STRENGTHS if s != (base.n_iter_tv, base.tv_step)]
    n_el = len(splits[0].fit)
    factors = PER_ELEMENT_FACTORS if n_el > 1 else ()
    # solves kept back for the later stages: TV strengths, one move, the per-element sweep
    reserve = (len(strengths) + 1) * n_all + (len(factors) + n_all if factors else 0)
    tried: dict[Point, Candidate] = {}
    best: Candidate | None = None
    stopped = "converged"

    def visit(points, limit: int) -> Iterator[AutoProgress]:
        nonlocal best, stopped
        ev.prefetch(_affordable(ev, [pt for pt in points if pt not in tried], n_all, limit,
                                best is None), n_all)
        for pt in points:
            if pt in tried:
                continue
            if best is not None and ev.n_solves + ev.cost([pt], n_all) > limit:
                stopped = "budget"
                return
            c = ev(pt, n_all)
            tried[pt] = c
            if best is None or c.score < best.score:
                best = c
            yield AutoProgress(c, best, ev.n_solves, max_solves, time.perf_counter() - t0)

    ntv, tstep = base.n_iter_tv, base.tv_step
    el_reserve = len(factors) + n_all if factors else 0
    # 1. the base point and a line of λ_chem along the ridge λ_TV = RIDGE λ_chem
    a0 = base.tv_weight_exponent
    line = [(lc, _clip(RIDGE * lc, LAMBDA_TV_RANGE), ntv, tstep, (), a0)
            for lc in _log_grid(LAMBDA_CHEM_GRID, LINE_N)]
    if a0 != TV_WEIGHT_EXPONENT:  # the line again with λ_TV weighted by the HAADF weights
        line += [pt[:5] + (TV_WEIGHT_EXPONENT,) for pt in line[:WEIGHTED_LINE_N]]
    first_pts = [(base.lambda_chem, base.lambda_tv, ntv, tstep, (), a0)] + line
    limit = max_solves - reserve
    # 1. the base point and the lines, scored on the first split only; the FINALISTS
    # best there are scored on every split and start the search
    ev.prefetch(_affordable(ev, first_pts, 1, limit - FINALISTS * (n_all - 1), True), 1)
    first: dict[Point, float] = {}
    for pt in first_pts:
        if first and ev.n_solves + 1 > limit - FINALISTS * (n_all - 1):
            stopped = "budget"
            break
        first[pt] = min(c.score for c in ev.curve(pt, 0))
    yield from visit(sorted(first, key=first.get)[:FINALISTS], max_solves - n_all)
    # 2. the TV step's strength per outer iteration at the best λ's (docs/quality.md)
    if strengths:
        stopped = "converged" if stopped == "budget" else stopped
        centre = best
        yield from visit([(centre.lambda_chem, centre.lambda_tv, n, t, (),
                           centre.tv_weight_exponent) for n, t in strengths],
                         max_solves - el_reserve)
    # 3. moves of λ_chem (along the ridge) and of λ_TV while the score improves
    for fc, ft in MOVES:
        while stopped != "budget":
            centre = best
            yield from visit(_moves(centre, fc, ft), max_solves - el_reserve)
            if best is centre:
                break
    if factors and stopped != "cancelled":
        stopped = "converged" if stopped == "budget" else stopped
        centre = best
        probes = _scaled(centre, factors)
        if n_all == 1:  # a probe is then a whole candidate
            yield from visit(probes, max_solves - n_all)
        per = _per_element_choice(ev, centre, probes, max_solves - n_all)
        if per:
            yield from visit([(centre.lambda_chem, centre.lambda_tv, centre.n_iter_tv,
                               centre.tv_step, per, centre.tv_weight_exponent)], max_solves)
    assert best is not None
    chosen = base.replace(lambda_chem=best.lambda_chem, lambda_tv=best.lambda_tv,
                          n_iter=best.n_iter, n_iter_tv=best.n_iter_tv, tv_step=best.tv_step,
                          lambda_tv_elements=dict(best.lambda_tv_elements) or None,
                          tv_weight_exponent=best.tv_weight_exponent)
    n_same = _indistinct(ev, best, list(tried.values()), n_all)
    notes = []
    if n_same >= max(3, INDISTINCT_FRACTION * len(tried)):
        notes.append(
            f"the held-out score cannot tell {n_same} of the {len(tried)} candidates apart "
            "(within one standard error): the maps are too noisy for a reliable choice, which "
            "may be far from the best; binning pixels (e.g. 2 × 2) or more frames would help")
        warnings.warn(f"autotune: {notes[-1]}", UserWarning, stacklevel=2)
    for name, rng, v in (("lambda_chem", LAMBDA_CHEM_RANGE, best.lambda_chem),
                         ("lambda_tv", LAMBDA_TV_RANGE, best.lambda_tv)):
        if v in rng:
            notes.append(f"{name} chose the edge of its search range ({v:g})")
    result = AutoResult(chosen, base, best.score, used, tuple(tried.values()),
                        time.perf_counter() - t0, ev.n_solves, stopped, tuple(notes), n_same)
    yield AutoProgress(None, best, ev.n_solves, max_solves, result.elapsed, result)


def _indistinct(ev: _Evaluator, best: Candidate, cands: list[Candidate], n_splits: int) -> int:
    """How many of ``cands`` (``best`` included) score within one paired standard error of
    ``best``, each at its chosen iteration: the tile residuals (mean over the splits) of a
    candidate minus the best's, SE = sqrt(n_tiles · variance of the differences)."""
    def tiles(c: Candidate) -> np.ndarray:
        return np.mean([next(cp.tiles for cp in ev.curve(c.point, k) if cp.iteration == c.n_iter)
                        for k in range(n_splits)], axis=0)

    ref = tiles(best)
    count = 0
    for c in cands:
        if not math.isfinite(c.score):
            continue
        d = tiles(c) - ref
        se = math.sqrt(d.size * float(d.var(ddof=1)))
        count += c.score - best.score <= se
    return max(count, 1)


def _scaled(c: Candidate, factors) -> list[Point]:
    """``c`` with λ_TV times each factor (all elements alike)."""
    return [(c.lambda_chem, _clip(c.lambda_tv * f, LAMBDA_TV_RANGE), c.n_iter_tv, c.tv_step, (),
             c.tv_weight_exponent) for f in factors]


def _per_element_choice(ev: _Evaluator, centre: Candidate, probes: list[Point], limit: int
                        ) -> tuple[tuple[str, float], ...]:
    """λ_TV per element: each element takes the λ_TV, among the centre's and the
    probes' (all elements scaled alike), of its own smallest held-out term on split
    0 at the centre's n_iter. Probes not yet solved are solved within ``limit``
    solves. () when no element moves."""
    options = [centre.point] + [pt for pt in probes
                                if not ev.cost([pt]) or ev.n_solves + 1 <= limit]
    terms = [next(c.terms for c in ev.curve(pt, 0) if c.iteration == centre.n_iter)
             for pt in options]
    symbols = ev.prepared[0][2]
    lam_tv = [dict(zip(symbols, ev._params(pt).lambda_tv_of(symbols))) for pt in options]
    per = []
    for el in terms[0]:
        k = min(range(len(options)), key=lambda k: terms[k][el])
        if k:  # the element's own λ_TV at that probe (with the exponent's scaling)
            per.append((el, _sig(lam_tv[k][normalize_symbol(el)], 3)))
    return tuple(per)


def autotune(haadf, maps: Mapping[str, object], base: FusionParams | None = None,
             **kwargs: Any) -> AutoResult:
    """Choose fusion parameters from the data alone; see :func:`autotune_steps`.

    Returns an :class:`AutoResult` (chosen params, every candidate's score,
    the method used, the time taken).
    """
    result = None
    for step in autotune_steps(haadf, maps, base, **kwargs):
        result = step.result
    assert result is not None
    return result
