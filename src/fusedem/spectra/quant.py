"""Cliff–Lorimer quantification of line maps into composition maps (no napari/Qt).

Thin-film approximation (Cliff & Lorimer 1975): C_A / C_B = k_AB · I_A / I_B,
so with k-factors k_i relative to any reference, C_i = k_i I_i / Σ_j k_j I_j.
k-factors are weight-fraction k-factors by default (as in HyperSpy/exspy and
the vendor software); the weight fractions are converted to atomic fractions
with the atomic masses (xraydb). ``basis="atomic"`` takes k-factors that give
atomic fractions directly.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..elements import normalize_symbol


@dataclass
class Composition:
    """Composition maps from :func:`cliff_lorimer`.

    atomic / weight: element -> (ny, nx) float64 fractions in [0, 1] that sum to
    1 over elements on every pixel that is not ``masked``; 0 on masked pixels.
    masked: (ny, nx) bool, pixels whose total intensity Σ I_i is below
    ``min_counts`` (or zero); n_masked: their number.
    """

    atomic: dict[str, np.ndarray]
    weight: dict[str, np.ndarray]
    masked: np.ndarray
    kfactors: dict[str, float]
    min_counts: float
    basis: str

    @property
    def n_masked(self) -> int:
        return int(self.masked.sum())

    def summary(self) -> str:
        """One line: the mean atomic % of each element over unmasked pixels, masked count."""
        keep = ~self.masked
        parts = [f"{e} {100 * float(m[keep].mean()) if keep.any() else 0.0:.1f} at.%"
                 for e, m in self.atomic.items()]
        return ", ".join(parts) + f"; {self.n_masked} of {self.masked.size} pixels masked " \
            f"(total signal < {self.min_counts:g})"

    def layer_metadata(self, element: str, source: Any = None) -> dict[str, Any]:
        """``{"fusedem": {...}}`` metadata of an ``at.% <El>`` layer (role 'composition')."""
        return {"fusedem": {"role": "composition", "element": element, "units": "at.%",
                            "source": source, "kfactors": dict(self.kfactors),
                            "kfactor_basis": self.basis, "min_counts": self.min_counts,
                            "n_masked": self.n_masked}}


def parse_kfactors(text: str) -> dict[str, float]:
    """'Cu=1.0,O=2.1' -> {'Cu': 1.0, 'O': 2.1}; ValueError naming a malformed item."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in str(text).split(","))):
        sym, sep, val = item.partition("=")
        if not sep:
            raise ValueError(f"k-factor {item!r} is not of the form Element=value (e.g. Cu=1.0)")
        try:
            out[normalize_symbol(sym.strip())] = float(val)
        except ValueError as e:
            raise ValueError(f"k-factor {item!r}: {e}") from None
    if not out:
        raise ValueError("no k-factors given (expected e.g. 'Cu=1.0,O=2.1')")
    return out


def _atomic_masses(elements: list[str]) -> np.ndarray:
    import xraydb

    return np.array([float(xraydb.atomic_mass(e)) for e in elements])


def cliff_lorimer(maps: Mapping[str, Any], kfactors: Mapping[str, float], *,
                  min_counts: float = 1.0,
                  basis: Literal["weight", "atomic"] = "weight") -> Composition:
    """Atomic- and weight-fraction maps from line intensities by Cliff–Lorimer.

    maps: element -> (ny, nx) line intensities (counts: raw extracted maps, or
    fused maps in counts, see ``FusionResult.maps_in_input_units``); negative
    values (background-subtraction noise) count as 0. kfactors: element ->
    k-factor, one for every map and no others. Pixels whose total intensity is
    below ``min_counts`` are masked: set to 0 and reported, never NaN.
    Raises ValueError for missing/extra/non-positive k-factors or mismatched shapes.
    """
    if basis not in ("weight", "atomic"):
        raise ValueError(f"k-factor basis must be 'weight' or 'atomic', got {basis!r}")
    m = {normalize_symbol(str(k)): np.asarray(v, dtype=np.float64) for k, v in maps.items()}
    k = {normalize_symbol(str(e)): float(v) for e, v in kfactors.items()}
    if len(m) < 2:
        raise ValueError(f"Cliff–Lorimer needs at least two element maps, got {list(m)}")
    extra, missing = sorted(set(k) - set(m)), sorted(set(m) - set(k))
    if extra:
        raise ValueError(f"k-factors given for elements that have no map: {extra} "
                         f"(maps: {list(m)})")
    if missing:
        raise ValueError(f"no k-factor for {missing}: every map needs one (e.g. --kfactors "
                         + ",".join(f"{e}=1.0" for e in m) + ")")
    bad = [e for e, v in k.items() if not np.isfinite(v) or v <= 0]
    if bad:
        raise ValueError(f"k-factors must be positive numbers; not so for {bad}")
    shapes = {a.shape for a in m.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"maps must be 2-D images of one shape, got { {e: a.shape for e, a in m.items()} }")
    els = list(m)
    stack = np.stack([np.nan_to_num(m[e], nan=0.0, posinf=0.0, neginf=0.0) for e in els])
    stack = np.clip(stack, 0.0, None)
    masked = (stack.sum(axis=0) < float(min_counts)) | (stack.sum(axis=0) <= 0)
    ki = np.array([k[e] for e in els])[:, None, None]
    first = _fractions(ki * stack, masked)
    if basis == "weight":
        mass = _atomic_masses(els)[:, None, None]
        weight, atomic = first, _fractions(first / mass, masked)
    else:
        atomic = first
        weight = _fractions(first * _atomic_masses(els)[:, None, None], masked)
    return Composition(dict(zip(els, atomic)), dict(zip(els, weight)), masked, k,
                       float(min_counts), basis)


def _fractions(a: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """a (n, ny, nx) / its sum over n, 0 where masked or the sum is 0."""
    tot = a.sum(axis=0)
    out = np.zeros_like(a)
    ok = ~masked & (tot > 0)
    out[:, ok] = a[:, ok] / tot[ok]
    return out
