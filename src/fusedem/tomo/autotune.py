"""params="auto" for fused tomography: lambda_chem and lambda_tv by Poisson thinning.

The chemical tilt series (raw counts) are split once by binomial thinning
(:func:`fusedem.validation.thinning_splits`, p = 0.8): the solver fits the 80 %
part (rescaled to the full dose) for each point of a 3 x 3 grid over
lambda_chem x lambda_tv, and each fit is scored by the Poisson negative
log-likelihood of the held-out 20 % of the counts under the fit's projections.
Nine solves at the base n_iter: about nine fuse-times. The HAADF is not split.
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

LAMBDA_CHEM_GRID = (3.0, 30.0, 300.0)
LAMBDA_TV_GRID = (0.03, 0.1, 0.3)
THINNING_P = 0.8


@dataclass(frozen=True)
class TomoAutoResult:
    """The chosen params and every grid point's held-out score (lower is better)."""

    params: TomoParams
    scores: dict[tuple[float, float], float]
    elapsed: float

    def to_dict(self) -> dict:
        """JSON-ready: method, chosen params, each (λ_chem, λ_TV) tried with its score."""
        return {"method": f"Poisson thinning (p = {THINNING_P}) of the chemical tilts",
                "params": self.params.to_dict(), "elapsed": self.elapsed,
                "candidates": [{"lambda_chem": lc, "lambda_tv": lt, "score": sc}
                               for (lc, lt), sc in self.scores.items()]}

    def summary(self) -> str:
        p = self.params
        return (f"auto: lambda_chem {p.lambda_chem:g}, lambda_tv {p.lambda_tv:g} of "
                f"{len(self.scores)} candidates ({self.elapsed:.1f} s)")


def _held_nll(pb, volumes, held: dict[str, np.ndarray], ratio: float) -> float:
    """Poisson NLL of held counts under mean ratio · g_e · P_c x_e (summed over elements)."""
    total = 0.0
    for e, s in enumerate(pb.symbols):
        x = volumes[s] * np.float32(pb.scales[e])  # (ny, nz, nx), counts per voxel
        mu = pb.pc.project(x).astype(np.float64) * ratio + 1e-9
        b = held[s].astype(np.float64)
        total += float(np.sum(mu - b * np.log(mu)))
    return total


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
    scores = {}
    for lc in LAMBDA_CHEM_GRID:
        for lt in LAMBDA_TV_GRID:
            p = base.replace(lambda_chem=lc, lambda_tv=lt)
            pb = build(fit, p)
            state = None
            for state in run(pb, p, p.n_iter, costs=False, device=device):
                pass
            ok = all(np.isfinite(v).all() for v in state.volumes.values())
            scores[(lc, lt)] = _held_nll(pb, state.volumes, split.held, split.ratio) if ok else np.inf
    lc, lt = min(scores, key=scores.get)
    return TomoAutoResult(base.replace(lambda_chem=lc, lambda_tv=lt), scores, time.perf_counter() - t0)


