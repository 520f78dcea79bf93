"""Live convergence plot of the three cost terms (matplotlib embedded in the dock).

matplotlib's Qt canvas is the one plain-Qt piece of the panel: magicgui has no plot
widget. matplotlib is already a napari dependency (no new package), its three small
axes redraw in a few milliseconds at the throttled ~10 Hz of the stream, and the
figure can be reused for publication-style exports later.
"""
from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from magicgui.widgets import CheckBox, Container
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ._plot_style import BG as _BG, FG as _FG, dark_axes

#: cost key -> (axis label, line colour)
CURVES: dict[str, tuple[str, str]] = {
    "haadf": ("Ψ1 HAADF", "#f0f0f0"),
    "chem": ("Ψ2 chem", "#ff8c3a"),
    "tv": ("TV", "#5ac8fa"),
}


class ConvergencePlot(Container):
    """Three stacked axes (shared iteration axis) and a log-scale checkbox.

    Redraws at most every ``min_interval`` seconds unless forced (a redraw costs tens
    of milliseconds of the GUI thread).
    """

    def __init__(self, min_interval: float = 0.25) -> None:
        self.min_interval = min_interval
        self._drawn_at = -float("inf")
        self.log_scale = CheckBox(
            value=False, text="log scale",
            tooltip="Show the cost curves on a logarithmic axis (symlog if a cost is <= 0).",
        )
        super().__init__(labels=False, widgets=[self.log_scale])
        self.margins = (0, 0, 0, 0)
        self.figure = Figure(figsize=(3.2, 2.6), dpi=90, facecolor=_BG)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.native.layout().addWidget(self.canvas)
        self.axes = self.figure.subplots(len(CURVES), 1, sharex=True)
        self.lines = {}
        for ax, (key, (label, color)) in zip(self.axes, CURVES.items()):
            dark_axes(ax)
            ax.set_ylabel(label, color=_FG, fontsize=7)
            (self.lines[key],) = ax.plot([], [], color=color, lw=1.2)
        self.axes[-1].set_xlabel("iteration", color=_FG, fontsize=7)
        self.figure.subplots_adjust(left=0.2, right=0.97, top=0.97, bottom=0.14, hspace=0.12)
        self.log_scale.changed.connect(self._apply_scale)
        self._costs: dict[str, np.ndarray] = {}

    def clear(self) -> None:
        """Empty the curves (start of a run)."""
        self.set_costs({k: np.zeros(0) for k in CURVES}, force=True)

    def set_costs(self, costs: Mapping[str, np.ndarray], force: bool = False) -> None:
        """Show the cost histories (each (k,) array over iterations 1..k)."""
        self._costs = {k: np.asarray(costs.get(k, ()), dtype=float) for k in CURVES}
        now = time.perf_counter()
        if not force and now - self._drawn_at < self.min_interval:
            return
        self._drawn_at = now
        for key, line in self.lines.items():
            y = self._costs[key]
            line.set_data(np.arange(1, y.size + 1), y)
        self._apply_scale()

    def _apply_scale(self, *_: object) -> None:
        log = bool(self.log_scale.value)
        for ax, key in zip(self.axes, CURVES):
            y = self._costs.get(key, np.zeros(0))
            if log and y.size:
                ax.set_yscale("log" if np.all(y > 0) else "symlog")
            else:
                ax.set_yscale("linear")
            ax.relim()
            ax.autoscale_view()
        n = max((v.size for v in self._costs.values()), default=0)
        self.axes[-1].set_xlim(0.5, max(n, 1) + 0.5)
        self.canvas.draw_idle()
