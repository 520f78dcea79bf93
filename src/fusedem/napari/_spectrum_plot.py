"""Summed-spectrum plot with X-ray line markers and windows (matplotlib in the dock).

magicgui has no plot widget, so the matplotlib Qt canvas is the one plain-Qt
piece here (matplotlib is already a napari dependency). Integration windows are
shaded in the element's layer colour, background windows hatched grey; lines
that overlap another chosen line are labelled in red with a warning sign.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from magicgui.widgets import Container
from matplotlib.backends.backend_qtagg import NavigationToolbar2QT
from qtpy.QtCore import QSize

from ..spectra import LineWindows

from ._plot_style import BG as _BG, FG as _FG, dark_axes, embedded_figure

_WARN = "#ff6b6b"
_GREEK = {"Ka": "Kα", "La": "Lα", "Ma": "Mα"}


def line_label(lw: LineWindows) -> str:
    """'Cu Kα' style label."""
    return f"{lw.element} {_GREEK.get(lw.line, lw.line)}"


class SpectrumPlot(Container):
    """Sum spectrum (counts vs keV) of a spectrum image with the chosen lines marked."""

    def __init__(self) -> None:
        super().__init__(labels=False, widgets=[])
        self.figure, self.canvas = embedded_figure(
            self, (3.6, 2.4), 250, "Sum spectrum of all scan pixels. Shaded: integration "
            "window (±1 FWHM) of each line; hatched: its background windows. Use the toolbar "
            "to zoom.")
        self.toolbar = NavigationToolbar2QT(self.canvas, self.native, coordinates=False)
        self.toolbar.setIconSize(QSize(16, 16))
        self.toolbar.setStyleSheet("QToolBar { border: 0px; }")
        self.native.layout().insertWidget(0, self.toolbar)  # above the canvas
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.figure.subplots_adjust(left=0.16, right=0.98, top=0.95, bottom=0.17)
        self._style()

    def _style(self) -> None:
        ax = self.ax
        dark_axes(ax, fontsize=8)
        ax.set_xlabel("energy (keV)", color=_FG, fontsize=8)
        ax.set_ylabel("counts (sum)", color=_FG, fontsize=8)

    def show(  # noqa: D417 - shapes documented inline
        self,
        energies_kev: np.ndarray | None,
        spectrum: np.ndarray | None,
        lines: Mapping[str, LineWindows] = {},
        colors: Mapping[str, tuple] = {},
        beam_energy_kv: float | None = None,
        message: str = "no spectrum image selected",
    ) -> None:
        """Draw ``spectrum`` (n,) against ``energies_kev`` (n,) and the ``lines`` windows.

        ``colors`` maps element -> RGBA of its layer colormap. None spectrum: an empty plot
        showing ``message``.
        """
        ax = self.ax
        ax.clear()
        self._style()
        if spectrum is None or energies_kev is None:
            ax.text(0.5, 0.5, message, color=_FG, wrap=True, ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
            self.canvas.draw()
            return
        ax.plot(energies_kev, spectrum, color="#e8e8e8", lw=0.8)
        lo, hi = float(energies_kev[0]), float(energies_kev[-1])
        top = _display_top(energies_kev, spectrum)
        xmax = max([lw.background[1][1] if lw.background[1] else lw.integration[1]
                    for lw in lines.values()] + [min(hi, 10.0)])
        if beam_energy_kv:
            xmax = min(max(xmax, 0.0), hi, float(beam_energy_kv))
        ax.set_xlim(max(lo, 0.0), min(hi, xmax + 0.5))
        ax.set_ylim(0, top * 1.25)
        for i, (el, lw) in enumerate(lines.items()):
            color = tuple(colors.get(el, (1.0, 0.8, 0.2, 1.0)))[:3]
            light = tuple(0.55 * c + 0.45 for c in color)  # readable on the dark background
            ax.axvspan(*lw.integration, color=color, alpha=0.35, lw=0)
            for w in lw.background:
                if w is not None:
                    ax.axvspan(*w, facecolor="none", edgecolor="#9aa0aa", hatch="////",
                               lw=0.0, alpha=0.8)
            ax.axvline(lw.energy_kev, color=color, lw=1.0)
            warn = bool(lw.overlaps)
            text = ("⚠ " if warn else "") + line_label(lw)
            ax.text(lw.energy_kev, top * (1.22 - 0.1 * (i % 3)), text, ha="center", va="top",
                    fontsize=8, color=_WARN if warn else light, clip_on=True,
                    bbox={"facecolor": _BG, "edgecolor": "none", "alpha": 0.7, "pad": 0.5})
        self.canvas.draw()


def _display_top(e: np.ndarray, s: np.ndarray) -> float:
    """Highest count above the zero-energy noise peak (> 0.2 keV): peaks of elements
    not (yet) chosen stay visible."""
    vals = s[e > 0.2] if (e > 0.2).any() else s
    top = float(np.max(vals)) if vals.size else 1.0
    return top if top > 0 else 1.0
