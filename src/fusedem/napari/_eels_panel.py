"""EELS mode of the spectrum panel: edge windows on the summed spectrum (eV), plans, labels.

The maths is :mod:`fusedem.spectra.eels`; this module only plans per typed
element (collecting the problems), draws the windows and lets the user edit
them (:class:`EdgeWindowEditor`, spin boxes in eV).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton

from ..spectra import EdgeWindows, EnergyAxis, plan_edges

_FG = "#d6d6d6"


def is_eels(md: Mapping[str, Any]) -> bool:
    """True for a spectrum layer whose signal type is EELS."""
    return "EELS" in str(md.get("signal_type") or "").upper()


def plan(tokens: Iterable[str], axis: EnergyAxis,
         windows: Mapping[str, Mapping[str, Any]] | None = None,
         ) -> tuple[dict[str, EdgeWindows], list[str]]:
    """Edges of the typed elements that fit, and one message per element that does not.

    ``windows``: edited windows per element, as :func:`fusedem.spectra.plan_edges` takes them.
    """
    good, problems = {}, []
    for t in tokens:
        try:
            good.update(plan_edges([t], axis, windows=windows))
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


_KEYS = ("pre_edge", "integration")


class EdgeWindowEditor(Container):
    """Edge chooser and its pre-edge / signal windows (eV) in spin boxes; 'Default windows'.

    ``overrides`` (element -> {'pre_edge': (lo, hi), 'integration': (lo, hi)}) holds the
    edited windows, passed to planning and extraction; ``on_change()`` runs after each edit.
    """

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self.overrides: dict[str, dict[str, tuple[float, float]]] = {}
        self._shown: dict[str, EdgeWindows] = {}
        self._names: list[str] = []
        self._range: tuple[float, float] | None = None  # eV, of the axis the edits belong to
        # callable choices: the panel's reset_choices() must not empty the list
        self.edge = ComboBox(label="edge windows", choices=lambda _w: self._names, tooltip=(
            "The edge whose windows the boxes below show and edit."))
        tip = "eV; the plot and (if already extracted) the maps follow the edit."
        self.pre_lo = FloatSpinBox(label="pre-edge from", tooltip="Start of the power-law "
                                   "background fit window, " + tip)
        self.pre_hi = FloatSpinBox(label="pre-edge to", tooltip="End of the background fit "
                                   "window (at or below the signal window's start), " + tip)
        self.sig_lo = FloatSpinBox(label="signal from", tooltip="Start of the integration "
                                   "window (usually the edge onset), " + tip)
        self.sig_hi = FloatSpinBox(label="signal to", tooltip="End of the integration window, " + tip)
        self.reset = PushButton(text="Default windows", tooltip=(
            "Forget the edits of this edge: 50 eV pre-edge ending 5 eV below the onset, "
            "50 eV signal from the onset."))
        super().__init__(widgets=[self.edge, self.pre_lo, self.pre_hi, self.sig_lo, self.sig_hi,
                                  self.reset])
        for box in self.boxes:
            box.changed.connect(self._edited)
        self.edge.changed.connect(self._fill)
        self.reset.changed.connect(self._reset)

    @property
    def boxes(self) -> tuple[FloatSpinBox, ...]:
        return (self.pre_lo, self.pre_hi, self.sig_lo, self.sig_hi)

    def set_axis(self, axis: EnergyAxis) -> None:
        """Spin-box limits = the energy range (eV); edits of another range are forgotten."""
        lo, hi = (float(e) * 1e3 for e in axis.range_kev)
        if (lo, hi) != self._range:
            self.overrides.clear()
            self._range = (lo, hi)
        for box in self.boxes:
            with box.changed.blocked():
                box.range = (lo, hi)
                box.step = float(axis.scale_kev) * 1e3

    def show_plan(self, edges: Mapping[str, EdgeWindows], tokens: Iterable[str]) -> None:
        """Offer the planned edges (and typed elements with edits that failed to plan)."""
        self._shown = dict(edges)
        names = list(edges) + [t for t in self.overrides if t not in edges and t in set(tokens)]
        current = self.edge.value
        self._names = names
        with self.edge.changed.blocked():
            self.edge.reset_choices()
            if current in names:
                self.edge.value = current
        self.enabled = bool(names)
        self._fill()

    def window(self, element: str) -> dict[str, tuple[float, float]] | None:
        """The windows shown for ``element`` (edited, else planned)."""
        if element in self.overrides:
            return self.overrides[element]
        w = self._shown.get(element)
        return None if w is None else {"pre_edge": w.pre_edge, "integration": w.integration}

    def set_window(self, element: str, pre_edge: tuple[float, float],
                   integration: tuple[float, float]) -> None:
        """Edit ``element``'s windows (eV) as a user would, values clamped to the energy
        range as the spin boxes clamp typing (then ``on_change``)."""
        self.edge.value = element
        values = (*pre_edge, *integration)
        for box, v in zip(self.boxes, values):
            with box.changed.blocked():
                box.value = min(max(float(v), box.min), box.max)
        self._edited()

    def _fill(self, *_: Any) -> None:
        win = self.window(self.edge.value) if self.edge.value else None
        if win is None:
            return
        for box, v in zip(self.boxes, (*win["pre_edge"], *win["integration"])):
            with box.changed.blocked():
                box.value = float(v)

    def _edited(self, *_: Any) -> None:
        el = self.edge.value
        if not el:
            return
        self.overrides[el] = {"pre_edge": (float(self.pre_lo.value), float(self.pre_hi.value)),
                              "integration": (float(self.sig_lo.value), float(self.sig_hi.value))}
        self._on_change()

    def _reset(self, *_: Any) -> None:
        if self.overrides.pop(self.edge.value, None) is not None:
            self._on_change()
