"""Held-out splits of a spectrum image, for :func:`fusedem.autotune`.

Extracted line maps are background-subtracted, so they are not Poisson and
cannot be thinned themselves; the spectrum image's counts can (DESIGN.md 2b).
Each count of the cube is kept with probability p (b1 ~ Binomial(b, p)) and
b2 = b − b1; extraction is linear, so the maps of b2 are independent of those
of b1 with (1 − p)/p times their mean.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..validation import Split
from .extract import _dense, _is_dask, as_spectrum_cube, extract_maps


def thin_counts(cube: Any, p: float, rng: np.random.Generator) -> np.ndarray:
    """b1 ~ Binomial(cube, p) elementwise; cube: non-negative integer counts (any shape)."""
    a = _dense(cube.compute() if _is_dask(cube) else cube)
    if a.size and (a.min() < 0 or not np.array_equal(a, np.round(a))):
        raise ValueError("the spectrum image does not hold raw counts (negative or fractional "
                         "values), so it cannot be thinned; use masking instead")
    return rng.binomial(a.astype(np.int64), p).astype(np.float64)


def spectrum_splits(spectrum_image: Any, energy_axis: Any, elements: Iterable[str], *,
                    p: float = 0.8, n_splits: int = 2, seed: int = 0, axis: int | None = None,
                    **extract_options: Any) -> list[Split]:
    """``n_splits`` held-out splits of the maps that :func:`extract_maps` makes.

    spectrum_image: (ny, nx, n_channels) counts (``axis``: the energy axis, as in
    extract_maps); ``extract_options``: the extraction's own options (lines,
    binning, beam_energy_kv, resolution_ev, clip_negative), so the fitted maps
    are made exactly as the maps being fused. The held-out maps are never
    clipped (clipping would bias their mean). Pass the result to
    ``fusedem.autotune(haadf, maps, splits=...)``.
    """
    if not 0 < p < 1:
        raise ValueError(f"thinning fraction p must lie in (0, 1), got {p}")
    from .axis import EnergyAxis

    ea = EnergyAxis.from_dict(energy_axis)
    cube = as_spectrum_cube(spectrum_image, ea.axis if axis is None else axis)
    counts = _dense(cube.compute() if _is_dask(cube) else cube)
    elements = list(elements)
    rng = np.random.default_rng(seed)
    held_opts = {**extract_options, "clip_negative": False}
    out = []
    for _ in range(int(n_splits)):
        b1 = thin_counts(counts, p, rng)
        fit = extract_maps(b1, ea, elements, axis=-1, **extract_options)
        held = extract_maps(counts - b1, ea, elements, axis=-1, **held_opts)
        out.append(Split(fit={k: v / p for k, v in fit.maps.items()}, held=dict(held.maps),
                         ratio=1.0 - p))
    return out
