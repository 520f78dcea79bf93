"""Core-loss edge maps from an EELS spectrum image (no napari/Qt imports).

Per element, the edge that fits the energy range (K, then L3 of L2,3, then M5
of M4,5; onsets from xraydb's edge table, eV). Per pixel, a power-law
background A·E^−r is fitted in a pre-edge window and extrapolated under an
integration window above the onset; the map is the counts there minus that
background (Egerton, *EELS in the Electron Microscope*, 3rd ed., §4.4).

The fit is the two-area method solved exactly on the channel grid: with the
pre-edge window split into halves holding S1 and S2 counts, the ratio
S1/S2 = Σ_h1 E^−r / Σ_h2 E^−r is a function of r alone (the channels are shared
by all pixels), so r is read off a precomputed table by interpolation and the
background under the window is S_pre · Σ_int E^−r / Σ_pre E^−r. Everything is
a window sum plus elementwise work: vectorised, and lazy for dask cubes.
A pixel whose halves are not both positive, or whose r falls outside
``R_RANGE``, is marked failed and gets the r of the summed spectrum.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..elements import atomic_number, normalize_symbol
from .axis import EnergyAxis
from .extract import _bin_blocks, _check_factor, _dense, _is_dask, as_spectrum_cube

#: Edges tried per element, in this order (xraydb names; L3 stands for L2,3, M5 for M4,5).
EDGE_ORDER = ("K", "L3", "M5")
EDGE_LABEL = {"K": "K", "L3": "L2,3", "M5": "M4,5"}
R_RANGE = (0.5, 8.0)  #: physically plausible power-law exponents
PRE_EDGE_EV = 50.0  #: default pre-edge window width
GAP_EV = 5.0  #: between the pre-edge window and the onset
SIGNAL_EV = 50.0  #: default integration window width


@dataclass(frozen=True)
class EdgeWindows:
    """The edge used for one element and its windows (eV)."""

    element: str
    edge: str  #: 'K', 'L2,3' or 'M4,5'
    onset_ev: float
    pre_edge: tuple[float, float]
    integration: tuple[float, float]
    edited: bool = False  #: True when the windows were given, not the defaults

    @property
    def label(self) -> str:
        return f"{self.element}_{self.edge}"

    def to_dict(self) -> dict[str, Any]:
        return {"element": self.element, "edge": self.edge, "onset_ev": self.onset_ev,
                "pre_edge_ev": list(self.pre_edge), "integration_ev": list(self.integration),
                "edited": self.edited}


@dataclass
class EdgeMaps:
    """Edge maps in counts; maps/failed/exponent: element -> (ny, nx) arrays.

    failed[el] marks pixels whose own power-law fit failed (fitted with the
    summed spectrum's exponent instead); exponent[el] is r per pixel.
    """

    maps: dict[str, np.ndarray]
    edges: dict[str, EdgeWindows]
    failed: dict[str, np.ndarray]
    exponent: dict[str, np.ndarray]
    energy_axis: EnergyAxis
    binning: int = 1
    clipped: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def elements(self) -> list[str]:
        """Element symbols in extraction order."""
        return list(self.maps)

    def layer_metadata(self, element: str, source: Any = None) -> dict[str, Any]:
        """The ``{"fusedem": {...}}`` metadata of an edge-map layer (role 'edge_map')."""
        return {"fusedem": {
            "role": "edge_map", "element": element, "Z": atomic_number(element), "source": source,
            "edge": self.edges[element].label, "windows": self.edges[element].to_dict(),
            "background": "power law A·E^-r, two-area fit per pixel", "units": "counts",
            "n_failed_fits": int(self.failed[element].sum()), "binning": self.binning,
            "clipped": self.clipped}}


def edge_onsets(element: str) -> dict[str, float]:
    """Onsets (eV) of the K, L3 and M5 edges of an element, those xraydb lists."""
    import xraydb

    sym = normalize_symbol(element)
    table = xraydb.xray_edges(sym)
    return {k: float(table[k].energy) for k in EDGE_ORDER if k in table and table[k].energy > 0}


def plan_edges(elements: Iterable[str], axis: EnergyAxis, *, pre_edge_ev: float = PRE_EDGE_EV,
               gap_ev: float = GAP_EV, signal_ev: float = SIGNAL_EV,
               windows: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, EdgeWindows]:
    """The edge and windows per element on this axis; ``windows`` overrides per element
    (keys 'pre_edge' and/or 'integration', (lo, hi) eV). ValueError naming the problem."""
    lo_ev, hi_ev = (e * 1e3 for e in axis.range_kev)
    out = {}
    for el in elements:
        sym = normalize_symbol(el)
        onsets = edge_onsets(sym)
        fits = [k for k in EDGE_ORDER if k in onsets and
                onsets[k] - gap_ev - pre_edge_ev >= max(lo_ev, 1e-6)  # a power law needs E > 0
                and onsets[k] + signal_ev <= hi_ev]
        over = (windows or {}).get(sym, {})
        if not fits:
            listed = ", ".join(f"{EDGE_LABEL[k]} {v:.0f} eV" for k, v in onsets.items())
            raise ValueError(
                f"no edge of {sym} fits the energy range {lo_ev:.0f}-{hi_ev:.0f} eV with a "
                f"{pre_edge_ev:g} eV pre-edge and a {signal_ev:g} eV signal window "
                f"(its edges: {listed or 'none listed'})")
        k = fits[0]
        on = onsets[k]
        pre = tuple(map(float, over.get("pre_edge", (on - gap_ev - pre_edge_ev, on - gap_ev))))
        sig = tuple(map(float, over.get("integration", (on, on + signal_ev))))
        for name, (a, b) in (("pre-edge", pre), ("integration", sig)):
            if not (max(lo_ev, 1e-6) <= a < b <= hi_ev):
                raise ValueError(f"{sym} {EDGE_LABEL[k]}: {name} window {a:.1f}-{b:.1f} eV lies "
                                 f"outside the energy range {lo_ev:.1f}-{hi_ev:.1f} eV (or is empty)")
        if pre[1] > sig[0]:
            raise ValueError(f"{sym}: the pre-edge window must end before the integration window")
        out[sym] = EdgeWindows(sym, EDGE_LABEL[k], on, pre, sig,
                               edited="pre_edge" in over or "integration" in over)
    return out


def _tables(e_pre: np.ndarray, e_int: np.ndarray, n1: int):
    """r grid, S1/S2 ratio and Σ_int E^-r / Σ_pre E^-r on that grid (increasing ratio)."""
    r = np.linspace(*R_RANGE, 1501)
    w_pre = np.exp(-np.outer(r, np.log(e_pre)))
    ratio = w_pre[:, :n1].sum(1) / w_pre[:, n1:].sum(1)
    g = np.exp(-np.outer(r, np.log(e_int))).sum(1) / w_pre.sum(1)
    return r, ratio, g


def extract_edge_maps(spectrum_image: Any, energy_axis: EnergyAxis | Mapping[str, Any],
                      elements: Iterable[str], *, binning: int = 1, axis: int | None = None,
                      clip_negative: bool = True, **plan_options: Any) -> EdgeMaps:
    """Background-subtracted edge maps, one per element, in counts.

    spectrum_image: (ny, nx, n_channels) counts (numpy or dask; ``axis``: the
    energy axis, default ``energy_axis.axis``); energy_axis: calibration (eV or
    keV). ``plan_options``: pre_edge_ev, gap_ev, signal_ev, windows (see
    :func:`plan_edges`). ``binning`` sums b×b pixels before the fits.
    Raises ValueError when no edge fits or the summed spectrum's fit fails.
    """
    ea = EnergyAxis.from_dict(energy_axis)
    si = as_spectrum_cube(spectrum_image, ea.axis if axis is None else axis)
    ea = ea.with_size(si.shape[-1])
    binning = _check_factor(binning)
    if ea.offset_kev <= 0 and ea.range_kev[1] <= 0:
        raise ValueError("the energy axis holds no positive energy losses")
    plan = plan_edges(elements, ea, **plan_options)
    e_ev = ea.energies_kev() * 1e3
    maps, failed, expo = {}, {}, {}
    notes = []
    for sym, w in plan.items():
        pre, sig = ea.channels(w.pre_edge[0] / 1e3, w.pre_edge[1] / 1e3), \
            ea.channels(w.integration[0] / 1e3, w.integration[1] / 1e3)
        if pre.stop - pre.start < 2 or sig.stop <= sig.start:
            raise ValueError(f"{sym}: the windows hold too few channels (pre-edge needs 2)")
        if e_ev[pre.start] <= 0:
            raise ValueError(f"{sym}: the pre-edge window reaches energies ≤ 0 eV")
        n1 = (pre.stop - pre.start) // 2
        h1, h2, s_int = _sums(si, [slice(pre.start, pre.start + n1),
                                   slice(pre.start + n1, pre.stop), sig])
        if binning > 1:
            h1, h2, s_int = (_bin_blocks(a, binning) for a in (h1, h2, s_int))
        r_grid, ratio, g = _tables(e_ev[pre], e_ev[sig], n1)
        r_all = _fit_r(np.array([h1.sum()]), np.array([h2.sum()]), r_grid, ratio)
        if not np.isfinite(r_all[0]):
            raise ValueError(f"{sym} {w.edge}: the power-law background does not fit the summed "
                             f"spectrum in the pre-edge window {w.pre_edge[0]:.0f}-"
                             f"{w.pre_edge[1]:.0f} eV (counts not falling with energy, or none)")
        r = _fit_r(h1, h2, r_grid, ratio)
        bad = ~np.isfinite(r)
        r[bad] = r_all[0]
        background = (h1 + h2) * np.interp(r, r_grid, g)
        m = s_int - background
        maps[sym] = np.maximum(m, 0.0) if clip_negative else m
        failed[sym], expo[sym] = bad, r
        if bad.any():
            notes.append(f"{sym}: the background fit failed on {int(bad.sum())} of {bad.size} "
                         f"pixels (fitted with the summed spectrum's r = {r_all[0]:.2f})")
    return EdgeMaps(maps, plan, failed, expo, ea, binning, clip_negative, notes)


def _sums(si: Any, slices: list[slice]) -> list[np.ndarray]:
    parts = [si[:, :, s].sum(axis=-1, dtype=np.float64) for s in slices]
    if _is_dask(si):
        import dask

        parts = list(dask.compute(*parts))
    return [_dense(p) for p in parts]


def _fit_r(h1: np.ndarray, h2: np.ndarray, r_grid: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """r per pixel from the half-window counts; NaN where the fit fails."""
    ok = (h1 > 0) & (h2 > 0)
    q = np.where(ok, h1 / np.where(h2 > 0, h2, 1.0), np.nan)
    ok &= (q >= ratio[0]) & (q <= ratio[-1])
    return np.where(ok, np.interp(np.where(ok, q, ratio[0]), ratio, r_grid), np.nan)
