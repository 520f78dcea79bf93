"""Characteristic X-ray lines, detector resolution and extraction windows.

Line energies come from xraydb (Elam, Ravel & Sieber tables, kept by the
xraylarch project). The line of an element is chosen by the convention of
HyperSpy/exspy and the Bruker/Velox software: among the Kα, Lα and Mα
families whose integration window lies inside the energy axis, take the one
with the highest energy below half the beam energy (overvoltage ≥ 2); when
none is below it, the lowest-energy one.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Iterable, Mapping

from ..elements import atomic_number, normalize_symbol
from .axis import EnergyAxis

#: Default detector resolution: FWHM of Mn Kα in eV (typical SDD).
DEFAULT_RESOLUTION_EV = 130.0
#: Mn Kα energy (eV), the reference of the resolution.
MN_KA_EV = 5898.7
#: Fiori & Newbury constant (eV): FWHM² grows by 2.5 eV · ΔE.
FIORI_EV = 2.5
#: Lines below this energy (keV) are not used (Li Kα and below).
MIN_LINE_KEV = 0.1
#: Integration window: line ± INTEGRATION_FWHM · FWHM.
INTEGRATION_FWHM = 1.0
#: Background windows start BACKGROUND_GAP_FWHM · FWHM from the line and are
#: BACKGROUND_WIDTH_FWHM · FWHM wide (exspy's defaults: 2 and 1).
BACKGROUND_GAP_FWHM = 2.0
BACKGROUND_WIDTH_FWHM = 1.0
#: A background window starting below NOISE_PEAK_FWHM · FWHM(0 keV) would sit on
#: the tail of the detector's zero-energy (noise) peak: it is not used.
NOISE_PEAK_FWHM = 4.0

FAMILIES = ("Ka", "La", "Ma")
_db_lock = threading.Lock()


def fwhm_kev(energy_kev: float, resolution_ev: float | None = None) -> float:
    """Detector FWHM (keV) at ``energy_kev`` given the FWHM of Mn Kα in eV.

    Fiori & Newbury: FWHM² = N² + 2.5 eV · E with the electronic noise term
    N² = R² − 2.5 eV · E(Mn Kα) (clamped at 0 for R below ~121 eV); this is
    the usual √E-type growth of SDD resolution and matches exspy.
    """
    r = DEFAULT_RESOLUTION_EV if resolution_ev is None else float(resolution_ev)
    if not r > 0:
        raise ValueError(f"detector resolution must be positive, got {resolution_ev!r} eV")
    noise2 = max(r * r - FIORI_EV * MN_KA_EV, 0.0)
    return math.sqrt(noise2 + FIORI_EV * max(energy_kev * 1e3, 0.0)) * 1e-3


@lru_cache(maxsize=None)
def line_energies(element: str) -> dict[str, float]:
    """Energies (keV) of the Kα, Lα, Mα families of ``element`` present in xraydb.

    Each is the intensity-weighted centroid of the family's lines (Kα1, Kα2 …).
    Unknown elements raise ValueError.
    """
    sym = normalize_symbol(element)
    with _db_lock:
        import xraydb  # imported lazily: ~0.5 s

        lines = xraydb.xray_lines(sym)
    out: dict[str, float] = {}
    for fam in FAMILIES:
        members = [v for k, v in lines.items() if k.startswith(fam)]
        weight = sum(v.intensity for v in members)
        if members and weight > 0:
            out[fam] = sum(v.energy * v.intensity for v in members) / weight * 1e-3
    return out


Window = tuple[float, float]


@dataclass(frozen=True)
class LineWindows:
    """The X-ray line used for one element and its windows (all energies in keV).

    ``background`` holds the (lo, hi) of the left and right windows, None for a
    side that falls outside the energy axis. ``overlaps`` lists the other
    chosen elements whose integration windows intersect this one;
    ``shared_background`` the neighbours whose lines lie between this line's
    background windows, so the group shares its outermost windows (as exspy's
    ``estimate_background_windows`` does).
    """

    element: str
    Z: int
    line: str
    energy_kev: float
    fwhm_kev: float
    integration: Window
    background: tuple[Window | None, Window | None]
    overlaps: tuple[str, ...] = field(default=())
    shared_background: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """exspy-style name, e.g. 'Cu_Ka'."""
        return f"{self.element}_{self.line}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict for layer metadata."""
        return {
            "line": self.label, "energy_kev": self.energy_kev, "fwhm_kev": self.fwhm_kev,
            "integration_kev": list(self.integration),
            "background_kev": [None if w is None else list(w) for w in self.background],
            "overlaps": list(self.overlaps),
            "shared_background": list(self.shared_background),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LineWindows":
        """The windows :meth:`to_dict` wrote (e.g. an extracted layer's ``windows``
        metadata), so the same extraction can be repeated. ValueError names a bad entry."""
        try:
            element, line = str(d["line"]).split("_", 1)
            integration = tuple(float(v) for v in d["integration_kev"])
            background = tuple(None if w is None else tuple(float(v) for v in w)
                               for w in d.get("background_kev") or (None, None))
            if len(integration) != 2 or len(background) != 2:
                raise ValueError("a window needs (lo, hi), and there are two background sides")
            return cls(normalize_symbol(element), atomic_number(element), line,
                       float(d["energy_kev"]), float(d["fwhm_kev"]), integration, background,
                       tuple(d.get("overlaps") or ()), tuple(d.get("shared_background") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not the windows of an X-ray line map ({exc}): {dict(d)!r}") from None


def choose_line(
    element: str,
    energy_axis: EnergyAxis,
    *,
    beam_energy_kv: float | None = None,
    resolution_ev: float | None = None,
) -> tuple[str, float]:
    """(family, energy_keV) of the line used for ``element`` (see module doc).

    Raises ValueError when no Kα/Lα/Mα line fits in the energy axis.
    """
    sym = normalize_symbol(element)
    lo, hi = energy_axis.range_kev
    candidates = []
    for fam, e in line_energies(sym).items():
        w = INTEGRATION_FWHM * fwhm_kev(e, resolution_ev)
        if e >= MIN_LINE_KEV and e - w >= lo and e + w <= hi:
            candidates.append((fam, e))
    if not candidates:
        known = ", ".join(f"{f} {e:.3f} keV" for f, e in line_energies(sym).items()) or "none"
        raise ValueError(
            f"{sym} has no X-ray line in the energy range {lo:.3f}-{hi:.3f} keV "
            f"(lines: {known}; lines below {MIN_LINE_KEV} keV are not used)"
        )
    candidates.sort(key=lambda c: -c[1])  # highest energy first
    limit = beam_energy_kv / 2.0 if beam_energy_kv else math.inf
    for fam, e in candidates:
        if e < limit:
            return fam, e
    return candidates[-1]


def _windows(
    energy: float, fwhm: float, axis: EnergyAxis, resolution_ev: float | None
) -> tuple[Window, tuple]:
    lo_ax, hi_ax = axis.range_kev
    lo_ax = max(lo_ax, NOISE_PEAK_FWHM * fwhm_kev(0.0, resolution_ev))
    integ = (energy - INTEGRATION_FWHM * fwhm, energy + INTEGRATION_FWHM * fwhm)
    gap, width = BACKGROUND_GAP_FWHM * fwhm, BACKGROUND_WIDTH_FWHM * fwhm
    left = (energy - gap - width, energy - gap)
    right = (energy + gap, energy + gap + width)
    left = left if left[0] >= lo_ax else None
    right = right if right[1] <= hi_ax else None
    return integ, (left, right)


def plan_lines(
    elements: Iterable[str],
    energy_axis: EnergyAxis | Mapping[str, Any],
    *,
    beam_energy_kv: float | None = None,
    resolution_ev: float | None = None,
    lines: Mapping[str, str] | None = None,
) -> dict[str, LineWindows]:
    """Line and windows for each element, keyed by canonical symbol (input order).

    ``lines`` optionally forces a family per element, e.g. {'Pd': 'La'}.
    Raises ValueError for unknown elements, elements without a line in range
    and an uncalibrated or sizeless energy axis.
    """
    axis = EnergyAxis.from_dict(energy_axis)
    if axis.size is None:
        raise ValueError("energy axis size is unknown: pass EnergyAxis(..., size=n)")
    forced = {normalize_symbol(k): v for k, v in (lines or {}).items()}
    plan: dict[str, LineWindows] = {}
    for name in elements:
        sym = normalize_symbol(name)
        if sym in plan:
            continue
        if sym in forced:
            fam = forced[sym]
            if fam not in line_energies(sym):
                raise ValueError(f"{sym} has no {fam} line (known: {list(line_energies(sym))})")
            energy = line_energies(sym)[fam]
        else:
            fam, energy = choose_line(sym, axis, beam_energy_kv=beam_energy_kv,
                                      resolution_ev=resolution_ev)
        fw = fwhm_kev(energy, resolution_ev)
        integ, bg = _windows(energy, fw, axis, resolution_ev)
        plan[sym] = LineWindows(sym, atomic_number(sym), fam, energy, fw, integ, bg)
    return _share_backgrounds(_mark_overlaps(plan))


def _mark_overlaps(plan: dict[str, LineWindows]) -> dict[str, LineWindows]:
    out = {}
    for sym, lw in plan.items():
        a0, a1 = lw.integration
        others = tuple(o for o, ow in plan.items()
                       if o != sym and ow.integration[0] < a1 and a0 < ow.integration[1])
        out[sym] = replace(lw, overlaps=others)
    return out


def _outer(lw: LineWindows, side: int) -> float:
    """Where the background window on ``side`` (0 left, 1 right) starts, keV."""
    gap = BACKGROUND_GAP_FWHM * lw.fwhm_kev
    return lw.energy_kev - gap if side == 0 else lw.energy_kev + gap


def _share_backgrounds(plan: dict[str, LineWindows]) -> dict[str, LineWindows]:
    """Neighbouring lines whose background windows cross share the outermost ones.

    Otherwise a background window could sit on the neighbour's peak (Al Kα next
    to Si Kα) and over-estimate the background.
    """
    order = sorted(plan, key=lambda s: plan[s].energy_kev)
    groups: list[list[str]] = []
    for sym in order:
        if groups and _outer(plan[groups[-1][-1]], 1) > _outer(plan[sym], 0) - (
                BACKGROUND_WIDTH_FWHM * plan[sym].fwhm_kev):
            groups[-1].append(sym)
        else:
            groups.append([sym])
    out = dict(plan)
    for g in groups:
        if len(g) < 2:
            continue
        bg = (plan[g[0]].background[0], plan[g[-1]].background[1])
        for sym in g:
            out[sym] = replace(plan[sym], background=bg,
                               shared_background=tuple(o for o in g if o != sym))
    return out
