"""Held-out splits of a spectrum image, for :func:`fusedem.autotune`.

Extracted line maps are background-subtracted, so they are not Poisson and
cannot be thinned themselves; the spectrum image's counts can (DESIGN.md 2b).
Each count of the cube is kept with probability p (b1 ~ Binomial(b, p)) and
b2 = b − b1; extraction is linear, so the maps of b2 are independent of those
of b1 with (1 − p)/p times their mean.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..validation import Split
from .axis import EnergyAxis
from .extract import _dense, _is_dask, as_spectrum_cube, extract_with_windows
from .lines import LineWindows, plan_lines


def thin_counts(cube: Any, p: float, rng: np.random.Generator) -> np.ndarray:
    """b1 ~ Binomial(cube, p) elementwise; cube: non-negative integer counts (any shape)."""
    a = _dense(cube.compute() if _is_dask(cube) else cube)
    if a.size and (a.min() < 0 or not np.array_equal(a, np.round(a))):
        raise ValueError("the spectrum image does not hold raw counts (negative or fractional "
                         "values), so it cannot be thinned; use masking instead")
    return rng.binomial(a.astype(np.int64), p).astype(np.float64)


def spectrum_splits(spectrum_image: Any, energy_axis: Any, elements: Iterable[str], *,
                    p: float = 0.8, n_splits: int = 2, seed: int = 0, axis: int | None = None,
                    lines: Mapping[str, str] | None = None, beam_energy_kv: float | None = None,
                    resolution_ev: float | None = None, binning: int = 1,
                    clip_negative: bool = True) -> list[Split]:
    """``n_splits`` held-out splits of the maps that :func:`extract_maps` makes.

    spectrum_image: (ny, nx, n_channels) counts (``axis``: the energy axis, as in
    extract_maps); the extraction's own options (lines, beam_energy_kv,
    resolution_ev, binning, clip_negative) make the fitted maps exactly as the
    maps being fused. Pass the result to ``fusedem.autotune(haadf, maps, splits=...)``.
    """
    ea = EnergyAxis.from_dict(energy_axis)
    cube = as_spectrum_cube(spectrum_image, ea.axis if axis is None else axis)
    plan = plan_lines(elements, ea.with_size(cube.shape[-1]), beam_energy_kv=beam_energy_kv,
                      resolution_ev=resolution_ev, lines=lines)
    return window_splits(cube, ea, plan, p=p, n_splits=n_splits, seed=seed, axis=-1,
                         binning=binning, clip_negative=clip_negative)


def window_splits(spectrum_image: Any, energy_axis: Any, windows: Mapping[str, LineWindows], *,
                  p: float = 0.8, n_splits: int = 2, seed: int = 0, axis: int | None = None,
                  binning: int = 1, clip_negative: bool = True,
                  region: tuple[slice, slice] | None = None) -> list[Split]:
    """:func:`spectrum_splits` with the line windows given (element -> LineWindows).

    ``region``: (rows, columns) slices of the *maps* (binned pixels) being fused;
    only that part of the cube is thinned. The held-out maps are never clipped
    (clipping would bias their mean). ValueError when the cube is not raw counts.
    """
    if not 0 < p < 1:
        raise ValueError(f"thinning fraction p must lie in (0, 1), got {p}")
    ea = EnergyAxis.from_dict(energy_axis)
    cube = as_spectrum_cube(spectrum_image, ea.axis if axis is None else axis)
    if region is not None:
        b = int(binning)
        rows, cols = (slice((s.start or 0) * b, None if s.stop is None else s.stop * b)
                      for s in region)
        cube = cube[rows, cols]
    counts = _dense(cube.compute() if _is_dask(cube) else cube)
    ea = ea.with_size(counts.shape[-1])
    rng = np.random.default_rng(seed)
    opts = {"binning": binning, "axis": -1}
    out = []
    for _ in range(int(n_splits)):
        b1 = thin_counts(counts, p, rng)
        fit = extract_with_windows(b1, ea, windows, clip_negative=clip_negative, **opts)
        held = extract_with_windows(counts - b1, ea, windows, clip_negative=False, **opts)
        out.append(Split(fit={k: v / p for k, v in fit.maps.items()}, held=dict(held.maps),
                         ratio=1.0 - p))
    return out


def extracted_map_splits(spectrum_image: Any, spectrum_metadata: Mapping[str, Any],
                         map_metadata: Mapping[str, Mapping[str, Any]],
                         region: tuple[slice, slice] | None = None, *,
                         seed: int = 0) -> list[Split] | None:
    """Held-out splits for X-ray line maps already extracted from ``spectrum_image``,
    repeating the extraction each map's metadata records (its ``windows``,
    ``binning`` and ``clipped``; the keys fusedem's readers and panels write).

    spectrum_metadata: the cube's, with its ``energy_axis``; map_metadata: element ->
    that map's metadata. None (use masking) unless every map is such a line map of
    this cube with one binning, and the cube holds raw counts.
    """
    if not map_metadata or not spectrum_metadata.get("energy_axis"):
        return None
    try:
        windows = {el: LineWindows.from_dict(md["windows"]) for el, md in map_metadata.items()}
    except (KeyError, TypeError, ValueError):
        return None  # not X-ray line maps (e.g. EELS edges: their background fit is not linear)
    binnings = {int(md.get("binning") or 1) for md in map_metadata.values()}
    clipped = {bool(md.get("clipped", True)) for md in map_metadata.values()}
    if len(binnings) != 1 or len(clipped) != 1:
        return None
    try:
        return window_splits(spectrum_image, spectrum_metadata["energy_axis"], windows,
                             seed=seed, binning=binnings.pop(), clip_negative=clipped.pop(),
                             region=region)
    except ValueError:  # not raw counts: thinning does not apply
        return None
