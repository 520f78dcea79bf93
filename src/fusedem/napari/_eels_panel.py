"""EELS mode of the spectrum panel: edge windows on the summed spectrum (eV), plans, labels.

The maths is :mod:`fusedem.spectra.eels`; this module only plans per typed
element (collecting the problems) and draws the windows.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..spectra import EdgeWindows, EnergyAxis, plan_edges

_FG = "#d6d6d6"


def is_eels(md: Mapping[str, Any]) -> bool:
    """True for a spectrum layer whose signal type is EELS."""
    return "EELS" in str(md.get("signal_type") or "").upper()


def plan(tokens: Iterable[str], axis: EnergyAxis) -> tuple[dict[str, EdgeWindows], list[str]]:
    """Edges of the typed elements that fit, and one message per element that does not."""
    good, problems = {}, []
    for t in tokens:
        try:
            good.update(plan_edges([t], axis))
        except ValueError as exc:
            problems.append(str(exc))
    return good, problems


def summary(edges: Mapping[str, EdgeWindows]) -> str:
    """'Fe L2,3 708 eV, O K 543 eV' for the status line."""
    return ", ".join(f"{w.element} {w.edge} {w.onset_ev:.0f} eV" for w in edges.values())


def draw(plot: Any, energies_kev: np.ndarray, spectrum: np.ndarray,
         edges: Mapping[str, EdgeWindows], colors: Mapping[str, tuple]) -> None:
    """Summed spectrum against energy loss (eV) with each edge's pre-edge (hatched) and
    integration (shaded) windows and its onset, on ``plot`` (a SpectrumPlot)."""
    ax = plot.ax
    ax.clear()
    plot._style()
    e = np.asarray(energies_kev) * 1e3
    ax.set_xlabel("energy loss (eV)", color=_FG, fontsize=8)
    ax.plot(e, spectrum, color="#e8e8e8", lw=0.8)
    top = float(np.max(spectrum)) if spectrum.size and np.max(spectrum) > 0 else 1.0
    ax.set_xlim(float(e[0]), float(e[-1]))
    ax.set_ylim(0, top * 1.25)
    for i, (el, w) in enumerate(edges.items()):
        color = tuple(colors.get(el, (1.0, 0.8, 0.2, 1.0)))[:3]
        ax.axvspan(*w.pre_edge, facecolor="none", edgecolor="#9aa0aa", hatch="////", lw=0.0)
        ax.axvspan(*w.integration, color=color, alpha=0.35, lw=0)
        ax.axvline(w.onset_ev, color=color, lw=1.0)
        ax.text(w.onset_ev, top * (1.22 - 0.1 * (i % 3)), f"{el} {w.edge}", ha="center",
                va="top", fontsize=8, color=tuple(0.55 * c + 0.45 for c in color), clip_on=True)
    plot.canvas.draw()
