"""params="auto" for fused tomography: lambda_chem and lambda_tv by Poisson thinning.

The chemical tilt series (raw counts) are split once by binomial thinning
(:func:`fusedem.validation.thinning_splits`, p = 0.8): the solver fits the 80 %
part (rescaled to the full dose) for candidate (lambda_chem, lambda_tv) pairs,
and each fit is scored by the Poisson negative log-likelihood of the held-out
20 % of the counts under the fit's projections. The search is by coordinates
on a 6 x 4 grid: every lambda_chem at LAMBDA_TV_START, then every lambda_tv at
the best lambda_chem, then the lambda_chem neighbours of the best at its
lambda_tv: 11 solves at the base n_iter. Last, each element's own best lambda_tv
at that lambda_chem (by its held-out score) is tried jointly (lambda_tv_elements)
and kept if the total score improves: one more solve, about twelve fuse-times in
all. The HAADF is not split.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import validation
from .inputs import TiltData
from .params import TomoParams
from .problem import build
from .solver import run

LAMBDA_CHEM_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
LAMBDA_TV_GRID = (0.01, 0.03, 0.1, 0.3)
LAMBDA_TV_START = 0.03
THINNING_P = 0.8


@dataclass(frozen=True)
class TomoAutoResult:
    """The chosen params and every grid point's held-out score (lower is better)."""

    params: TomoParams
    scores: dict[tuple[float, float], float]
    elapsed: float
    #: (lambda_tv_elements, score) of the per-element lambda_tv candidate, None if not tried
    per_element: tuple[dict[str, float], float] | None = None

    def to_dict(self) -> dict:
        """JSON-ready: method, chosen params, each (λ_chem, λ_TV) tried with its score."""
        return {"method": f"Poisson thinning (p = {THINNING_P}) of the chemical tilts",
                "params": self.params.to_dict(), "elapsed": self.elapsed,
                "candidates": [{"lambda_chem": lc, "lambda_tv": lt, "score": sc}
                               for (lc, lt), sc in self.scores.items()]
                + ([{"lambda_chem": self.params.lambda_chem, "lambda_tv": self.params.lambda_tv,
                     "lambda_tv_elements": self.per_element[0], "score": self.per_element[1]}]
                   if self.per_element else [])}

    def summary(self) -> str:
        p = self.params
        per = "".join(f", lambda_tv {k} {v:g}" for k, v in (p.lambda_tv_elements or {}).items())
        n = len(self.scores) + (self.per_element is not None)
        return (f"auto: lambda_chem {p.lambda_chem:g}, lambda_tv {p.lambda_tv:g}{per} of "
                f"{n} candidates ({self.elapsed:.1f} s)")


def _held_nll(pb, volumes, held: dict[str, np.ndarray], ratio: float) -> np.ndarray:
    """Poisson NLL of held counts under mean ratio · g_e · P_c x_e, per element (n,)."""
    out = np.zeros(len(pb.symbols))
    for e, s in enumerate(pb.symbols):
        x = volumes[s] * np.float32(pb.scales[e])  # (ny, nz, nx), counts per voxel
        mu = pb.pc.project(x).astype(np.float64) * ratio + 1e-9
        b = held[s].astype(np.float64)
        out[e] = float(np.sum(mu - b * np.log(mu)))
    return out


def autotune_tilt_series(data: TiltData, base: TomoParams, seed: int = 0,
                         device: str = "cpu") -> TomoAutoResult:
    """Choose lambda_chem and lambda_tv for validated data (see the module docstring);
    ``device``: a resolved device ('cpu' or 'cuda') for the candidate solves.

    Raises ValueError when the chemical series are not raw counts (non-negative integers).
    """
    t0 = time.perf_counter()
    split = validation.thinning_splits(data.chem, p=THINNING_P, n_splits=1, seed=seed)[0]
    fit = TiltData(data.haadf, data.haadf_angles,
                   {k: v.astype(np.float32) for k, v in split.fit.items()}, data.chem_angles, data.z)
    scores: dict[tuple[float, float], float] = {}
    per_el: dict[tuple[float, float], np.ndarray] = {}

    def solve(p: TomoParams) -> np.ndarray:
        pb = build(fit, p)
        state = None
        for state in run(pb, p, p.n_iter, costs=False, device=device):
            pass
        if not all(np.isfinite(v).all() for v in state.volumes.values()):
            return np.full(len(pb.symbols), np.inf)
        return _held_nll(pb, state.volumes, split.held, split.ratio)

    def score(lc: float, lt: float) -> None:
        if (lc, lt) not in scores:
            per_el[(lc, lt)] = solve(base.replace(lambda_chem=lc, lambda_tv=lt))
            scores[(lc, lt)] = float(per_el[(lc, lt)].sum())

    for lc in LAMBDA_CHEM_GRID:
        score(lc, LAMBDA_TV_START)
    lc = min(scores, key=scores.get)[0]
    for lt in LAMBDA_TV_GRID:
        score(lc, lt)
    lc, lt = min(scores, key=scores.get)
    i = LAMBDA_CHEM_GRID.index(lc)
    for j in (i - 1, i + 1):
        if 0 <= j < len(LAMBDA_CHEM_GRID):
            score(LAMBDA_CHEM_GRID[j], lt)
    lc, lt = min(scores, key=scores.get)
    best = base.replace(lambda_chem=lc, lambda_tv=lt)
    # each element's own best lambda_tv at this lambda_chem, kept if the joint score improves
    tried = [t for t in LAMBDA_TV_GRID if (lc, t) in per_el]
    symbols = list(fit.chem)
    own = {s: tried[int(np.argmin([per_el[(lc, t)][e] for t in tried]))] for e, s in enumerate(symbols)}
    per_element = None
    if any(v != lt for v in own.values()):
        cand = best.replace(lambda_tv_elements={s: v for s, v in own.items() if v != lt})
        sc = float(solve(cand).sum())
        per_element = (dict(cand.lambda_tv_elements), sc)
        if sc < scores[(lc, lt)]:
            best = cand
    return TomoAutoResult(best, scores, time.perf_counter() - t0, per_element)


