"""Small plot of the automatic search: held-out score of every candidate tried.

x: λ chem (log), y: score (lower is better), colour: λ TV (log); the current best is
ringed. matplotlib, like the convergence plot (no new dependency).
"""
from __future__ import annotations

import math

import numpy as np
from magicgui.widgets import Container, Label

from ..tuning import Candidate
from ._plot_style import FG as _FG, dark_axes, embedded_figure


class AutoScorePlot(Container):
    """Scatter of the candidates' validation scores; hidden until a search starts."""

    def __init__(self) -> None:
        super().__init__(labels=False, widgets=[])
        self.figure, self.canvas = embedded_figure(self, (3.2, 1.9), 150)
        self.ax = self.figure.subplots()
        dark_axes(self.ax)
        self.ax.set_xscale("log")
        self.ax.set_xlabel("λ chem (colour: λ TV)", color=_FG, fontsize=7)
        self.ax.set_ylabel("held-out score", color=_FG, fontsize=7)
        self.figure.subplots_adjust(left=0.22, right=0.97, top=0.95, bottom=0.24)
        self.label = Label(value="")
        self.label.native.setWordWrap(True)
        self.native.layout().addWidget(self.label.native)
        self.candidates: list[Candidate] = []
        self.visible = False

    def clear(self) -> None:
        self.candidates = []
        self.label.value = ""
        self._draw(None)

    def add(self, candidate: Candidate, best: Candidate | None) -> None:
        """Show one more candidate (and ring the best so far)."""
        self.candidates.append(candidate)
        self._draw(best)

    def _draw(self, best: Candidate | None) -> None:
        ax = self.ax
        for artist in list(ax.collections):
            artist.remove()
        cands = [c for c in self.candidates if math.isfinite(c.score)]
        if cands:
            x = np.array([c.lambda_chem for c in cands])
            y = np.array([c.score for c in cands])
            tv = np.log10([c.lambda_tv for c in cands])
            ax.scatter(x, y, c=tv, cmap="viridis", s=14, vmin=-4, vmax=0.6)
            if best is not None:
                ax.scatter([best.lambda_chem], [best.score], s=80, facecolors="none",
                           edgecolors="#ff8c3a", linewidths=1.5)
            ax.relim()
            ax.autoscale_view()
        self.canvas.draw_idle()
