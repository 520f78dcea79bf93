"""Solver parameters (:class:`FusionParams`) and the tutorial presets."""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Weighting = Literal["none", "z", "z_gamma", "z_sum", "z_gamma_sum"]
WEIGHTINGS: tuple[str, ...] = ("none", "z", "z_gamma", "z_sum", "z_gamma_sum")
TV_SOLVERS: tuple[str, ...] = ("fgp", "gp")
MAP_SCALINGS: tuple[str, ...] = ("max", "minmax")
POISSON_STEPS: tuple[str, ...] = ("gradient", "prox")
POISSON_WEIGHTS: tuple[str, ...] = ("equal", "counts")


def checked_per_element(per: Any, errors: list[str],
                        name: str = "lambda_tv_elements") -> dict[str, float] | None:
    """A per-element mapping {symbol: number >= 0} as plain floats (None when empty or
    None); each problem is appended to ``errors``."""
    if per is None:
        return None
    if not isinstance(per, Mapping):
        errors.append(f"{name} must map element symbols to numbers, got {per!r}")
        return None
    clean = {}
    for k, v in per.items():
        if (not isinstance(k, str) or isinstance(v, bool)
                or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0):
            errors.append(f"{name}[{k!r}] must be a number >= 0 for an element symbol, got {v!r}")
        else:
            clean[k] = float(v)
    return clean or None


def per_element_values(per: Mapping[str, float] | None, default: float,
                       symbols: Sequence[str], among: str,
                       name: str = "lambda_tv_elements") -> list[float]:
    """``per``'s value for each of ``symbols``, ``default`` for the others; ValueError
    when ``per`` names an element that is not among them (``among``: what they are)."""
    per = per or {}
    unknown = set(per) - set(symbols)
    if unknown:
        raise ValueError(f"{name} names element(s) {sorted(unknown)} that are not "
                         f"among the {among} {list(symbols)}")
    return [per.get(s, default) for s in symbols]


def params_hash(fields: Mapping[str, Any]) -> int:
    """Hash of a parameters dataclass's fields (dict values, e.g. per-element, as sorted items)."""
    return hash(tuple((k, tuple(sorted(v.items())) if isinstance(v, dict) else v)
                      for k, v in fields.items()))


@dataclass(frozen=True)
class FusionParams:
    """Parameters of the fused multi-modal solver (see DESIGN.md section 1).

    Inputs are normalised first, so the weights below are dimensionless and carry
    over between datasets: the HAADF min-max to [0, 1], each elemental map by its
    maximum (``map_scaling='max'``: a gain only, so raw counts keep their Poisson
    statistics) or min-max as the published code does (``'minmax'``, the presets;
    the same for maps whose minimum is 0, as in both tutorials). The defaults are the DyScO3
    tutorial's values with the published algorithm's cold TV start: values tuned
    with the published code carry over unchanged. On other data use
    :func:`fusedem.autotune` (or ``fuse(..., params="auto")``).
    """

    #: Weight of the Poisson term Psi2 (typically 0.005-0.3).
    lambda_chem: float = 0.08
    #: Weight of the total variation term (typically 0.001-1; < 0.2 keeps detail).
    lambda_tv: float = 0.15
    #: Z-contrast exponent gamma of the HAADF model A x^gamma (1.4-2).
    gamma: float = 1.6
    #: Background epsilon in Psi2's log(x + eps) (typically 0.01-0.5).
    eps: float = 0.24
    #: Outer iterations.
    n_iter: int = 30
    #: Inner iterations of the TV proximal step.
    n_iter_tv: int = 3
    #: Channel weights w_i: 'none', 'z', 'z_gamma', 'z_sum' or 'z_gamma_sum'.
    weighting: Weighting = "z"
    #: Weight of the HAADF term; None means 1/n_elements.
    lambda_haadf: float | None = None
    #: TV solver: 'fgp' (fast, with momentum) or 'gp' (plain gradient projection).
    tv_solver: Literal["fgp", "gp"] = "fgp"
    #: Zero normalised map values below this threshold (None: keep all).
    background_threshold: float | None = None
    #: Keep the TV dual variables between outer iterations. False (the default)
    #: restarts them every outer iteration as the published algorithm does, so its
    #: tuned lambda values mean the same here; True makes a given lambda_tv much
    #: stronger and was worse at the best lambdas in 6 of 8 phantom cases
    #: (docs/warm-start.md).
    warm_start_tv: bool = False
    #: Elemental maps divided by their maximum ('max'; an offset is subtracted only
    #: when a map has negative values) or min-max normalised ('minmax').
    map_scaling: Literal["max", "minmax"] = "max"
    #: Step on the Poisson term: 'gradient' (explicit, as published) or 'prox' (its
    #: exact proximal step: stays bounded where x ~ 0 and eps is small).
    poisson_step: Literal["gradient", "prox"] = "gradient"
    #: Dual step of the TV inner iterations as a fraction of 1 / (8 lambda_tv), the
    #: largest that converges (1, as published). Below 1 each inner iteration smooths
    #: less, so the TV step's strength per outer iteration varies continuously instead
    #: of in whole inner iterations; atomic-column lattices gained 0.5-1 dB with
    #: 0.25-0.5 (docs/quality.md). In (0, 1].
    tv_step: float = 1.0
    #: lambda_tv of single elements, by symbol ({"O": 0.6}); the others keep lambda_tv.
    #: Elements differ in SNR and in how much of them the HAADF shows (O barely).
    lambda_tv_elements: Mapping[str, float] | None = None
    #: How lambda_chem is shared among the elements: 'equal' (one weight for all, as
    #: published) or 'counts' (element i gets lambda_chem · g_i / mean(g), g_i the gain
    #: its map was divided by, so each element's Poisson term weighs its counts as the
    #: Poisson likelihood does; for maps in raw counts. docs/quality.md).
    poisson_weights: Literal["equal", "counts"] = "equal"
    #: lambda_tv of element i times (mean(w) / w_i) ** tv_weight_exponent, w the HAADF
    #: channel weights (``weighting``): elements the HAADF shows strongly (heavy ones)
    #: get less TV, weak ones more. 0 (default, as published): one lambda_tv for all.
    #: Elements in lambda_tv_elements keep their own value. In [0, 4]; 1.5-2 gained
    #: 0.4-2.5 dB on nanoparticles at 0.5-2 counts/px and lost up to 1 dB at 8-32
    #: (docs/quality.md).
    tv_weight_exponent: float = 0.0

    def __post_init__(self) -> None:
        errors = []

        def num(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                errors.append(f"{name} must be a finite number, got {v!r}")
                return math.nan
            return float(v)

        for name in ("lambda_chem", "lambda_tv"):
            v = num(name)
            if v < 0:
                errors.append(f"{name} must be >= 0, got {v}")
        g = num("gamma")
        if not (1.0 <= g <= 3.0):
            errors.append(f"gamma must lie in [1, 3] (typically 1.4-2), got {g}")
        a = num("tv_weight_exponent")
        if not 0 <= a <= 4:
            errors.append(f"tv_weight_exponent must lie in [0, 4], got {a}")
        t = num("tv_step")
        if not 0 < t <= 1:
            errors.append(f"tv_step must lie in (0, 1] (a fraction of the largest dual step), got {t}")
        e = num("eps")
        if not e > 0:
            errors.append(f"eps must be > 0 (it keeps log(x + eps) finite), got {e}")
        for name in ("n_iter", "n_iter_tv"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                errors.append(f"{name} must be an integer >= 1, got {v!r}")
            elif type(v) is not int:  # numpy integers and the like: stored as a plain int
                object.__setattr__(self, name, int(v))
        if self.weighting not in WEIGHTINGS:
            errors.append(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.map_scaling not in MAP_SCALINGS:
            errors.append(f"map_scaling must be one of {MAP_SCALINGS}, got {self.map_scaling!r}")
        if self.poisson_step not in POISSON_STEPS:
            errors.append(f"poisson_step must be one of {POISSON_STEPS}, got {self.poisson_step!r}")
        if self.poisson_weights not in POISSON_WEIGHTS:
            errors.append(f"poisson_weights must be one of {POISSON_WEIGHTS}, "
                          f"got {self.poisson_weights!r}")
        if self.tv_solver not in TV_SOLVERS:
            errors.append(f"tv_solver must be one of {TV_SOLVERS}, got {self.tv_solver!r}")
        if self.lambda_haadf is not None:
            v = num("lambda_haadf")
            if not v > 0:
                errors.append(f"lambda_haadf must be > 0 or None (1/n), got {v}")
        if self.background_threshold is not None:
            v = num("background_threshold")
            if not 0 <= v < 1:
                errors.append(
                    "background_threshold is in normalised units and must lie in [0, 1), "
                    f"got {v}"
                )
        object.__setattr__(self, "lambda_tv_elements",
                           checked_per_element(self.lambda_tv_elements, errors))
        if not isinstance(self.warm_start_tv, bool):
            errors.append(f"warm_start_tv must be True or False, got {self.warm_start_tv!r}")
        if errors:
            raise ValueError("invalid fusion parameters: " + "; ".join(errors))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "FusionParams":
        """Parameters of a published tutorial: 'dysco3' or 'co3o4_mn3o4'."""
        key = name.lower().replace("-", "_").replace("–", "_")
        if key not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
        return dataclasses.replace(PRESETS[key], **overrides)

    def __hash__(self) -> int:  # lambda_tv_elements is a dict
        return params_hash(self.to_dict())

    def lambda_tv_of(self, symbols: Sequence[str]) -> list[float]:
        """lambda_tv for each element of ``symbols`` (lambda_tv_elements first, then
        lambda_tv scaled by ``tv_weight_exponent``); ValueError when lambda_tv_elements
        names an element that is not there."""
        values = per_element_values(self.lambda_tv_elements, self.lambda_tv, symbols, "maps")
        if not self.tv_weight_exponent or not symbols:
            return values
        from .elements import atomic_number, normalize_symbol
        from .objective import channel_weights

        w = channel_weights([atomic_number(s) for s in symbols], self.weighting, self.gamma)
        own = {normalize_symbol(k) for k in (self.lambda_tv_elements or {})}
        return [v if normalize_symbol(s) in own else
                float(v * (w.mean() / wi) ** self.tv_weight_exponent)
                for s, v, wi in zip(symbols, values, w)]

    def lambda_chem_of(self, gains: Sequence[float]) -> list[float]:
        """lambda_chem for each element, given the gain g_i (> 0) each map was divided by
        (``poisson_weights``: 'equal' ignores them, 'counts' gives lambda_chem · g_i / mean(g))."""
        g = [float(v) for v in gains]
        if self.poisson_weights == "equal" or not g:
            return [self.lambda_chem] * len(g)
        if not all(math.isfinite(v) and v > 0 for v in g):
            raise ValueError(f"poisson_weights='counts' needs map gains > 0, got {g}")
        mean = sum(g) / len(g)
        return [self.lambda_chem * v / mean for v in g]

    def extras_text(self) -> str:
        """The fields beyond the published parameters (no panel control) that differ from
        their defaults, e.g. 'TV step 0.5, λ TV Sc 0.075'; '' when none."""
        out = []
        if self.tv_step != 1.0:
            out.append(f"TV step {self.tv_step:g}")
        if self.tv_weight_exponent:
            out.append(f"λ TV by HAADF weight^-{self.tv_weight_exponent:g}")
        out += [f"λ TV {el} {v:.3g}" for el, v in (self.lambda_tv_elements or {}).items()]
        if self.poisson_weights != "equal":
            out.append(f"Poisson weights {self.poisson_weights}")
        if self.poisson_step != "gradient":
            out.append(f"Poisson step {self.poisson_step}")
        return ", ".join(out)

    def replace(self, **overrides: Any) -> "FusionParams":
        """A copy with some fields changed (validated); unknown names raise ValueError."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown fusion parameter(s): {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (for saving with results)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FusionParams":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        return cls().replace(**dict(d))


# The tutorial presets restart the TV duals each outer iteration, as the published
# algorithm does, so that the tutorials' tuned weights mean the same thing here.
PRESETS: dict[str, FusionParams] = {
    "dysco3": FusionParams(
        lambda_chem=0.08, lambda_tv=0.15, gamma=1.6, eps=0.24, n_iter=30, n_iter_tv=3,
        weighting="z", background_threshold=None, warm_start_tv=False, map_scaling="minmax",
    ),
    "co3o4_mn3o4": FusionParams(
        lambda_chem=0.006, lambda_tv=0.022, gamma=1.6, eps=0.01, n_iter=30, n_iter_tv=6,
        weighting="z", background_threshold=0.2, warm_start_tv=False, map_scaling="minmax",
    ),
}
