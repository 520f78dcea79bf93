"""Parameters of the fused tomography solver (:class:`TomoParams`)."""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..params import (TV_SOLVERS, WEIGHTINGS, Weighting, checked_per_element,
                      params_hash, per_element_values)


@dataclass(frozen=True)
class TomoParams:
    """Parameters of :func:`fusedem.tomo.fuse_tilt_series` (docs/tomography.md).

    Shared knobs mean what they mean in :class:`fusedem.FusionParams`; the
    volumes are in normalised units (each element's brightest voxels ~1), the
    chemical data keep their Poisson statistics (a gain only).
    """

    #: Weight of the Poisson term Psi2 relative to the HAADF term (both normalised, see docs).
    lambda_chem: float = 30.0
    #: Weight of the 3-D total variation of each element's volume.
    lambda_tv: float = 0.3
    #: Z-contrast exponent gamma of the HAADF model sum_i w_i x_i^gamma (1-3).
    gamma: float = 1.6
    #: Background epsilon in Psi2's log(P x + eps), in normalised projection units.
    eps: float = 1e-3
    #: Outer iterations (one gradient step + one TV proximal step each).
    n_iter: int = 40
    #: FGP inner iterations of each TV proximal step.
    n_iter_tv: int = 3
    #: Channel weights w_i: 'none', 'z', 'z_gamma', 'z_sum' or 'z_gamma_sum'.
    weighting: Weighting = "z"
    #: Volume depth (voxels along the beam at 0°); None = nx.
    nz: int | None = None
    #: SIRT iterations on each element's chemical series for the initial volumes.
    n_init: int = 10
    #: Keep the TV dual variables between outer iterations (warm start).
    warm_start_tv: bool = True
    #: TV solver: 'fgp' (with momentum) or 'gp' (plain gradient projection).
    tv_solver: Literal["fgp", "gp"] = "fgp"
    #: HAADF model gain: 'fixed' (fitted once to the initial volumes) or 'fit' (refitted
    #: at every iteration, so the HAADF term constrains shape and element ratios, not scale).
    haadf_gain: Literal["fixed", "fit"] = "fit"
    #: lambda_tv of single elements, by symbol ({"O": 0.1}); the others keep lambda_tv.
    lambda_tv_elements: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        errors = []

        def num(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                errors.append(f"{name} must be a finite number, got {v!r}")
                return math.nan
            return float(v)

        for name in ("lambda_chem", "lambda_tv"):
            if num(name) < 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 1.0 <= num("gamma") <= 3.0:
            errors.append(f"gamma must lie in [1, 3] (typically 1.4-2), got {self.gamma}")
        if not num("eps") > 0:
            errors.append(f"eps must be > 0 (it keeps log(P x + eps) finite), got {self.eps}")
        for name, lo in (("n_iter", 1), ("n_iter_tv", 1), ("n_init", 0), ("nz", 1)):
            v = getattr(self, name)
            if v is None and name == "nz":
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
                errors.append(f"{name} must be an integer >= {lo}, got {v!r}")
            elif type(v) is not int:
                object.__setattr__(self, name, int(v))
        if self.weighting not in WEIGHTINGS:
            errors.append(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.tv_solver not in TV_SOLVERS:
            errors.append(f"tv_solver must be one of {TV_SOLVERS}, got {self.tv_solver!r}")
        if self.haadf_gain not in ("fixed", "fit"):
            errors.append(f"haadf_gain must be 'fixed' or 'fit', got {self.haadf_gain!r}")
        object.__setattr__(self, "lambda_tv_elements",
                           checked_per_element(self.lambda_tv_elements, errors))
        if not isinstance(self.warm_start_tv, bool):
            errors.append(f"warm_start_tv must be True or False, got {self.warm_start_tv!r}")
        if errors:
            raise ValueError("invalid tomography parameters: " + "; ".join(errors))

    def __hash__(self) -> int:  # lambda_tv_elements is a dict
        return params_hash(self.to_dict())

    def lambda_tv_of(self, symbols: Sequence[str]) -> list[float]:
        """lambda_tv for each element of ``symbols`` (lambda_tv_elements first);
        ValueError when lambda_tv_elements names an element that is not there."""
        return per_element_values(self.lambda_tv_elements, self.lambda_tv, symbols,
                                  "chemical series")

    def replace(self, **overrides: Any) -> "TomoParams":
        """A copy with some fields changed (validated); unknown names raise ValueError."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown tomography parameter(s): {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (for saving with results)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TomoParams":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        return cls().replace(**dict(d))
