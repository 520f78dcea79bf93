"""napari's dark theme for the panels' matplotlib plots (one place for the colours)."""
from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

BG, FG, SPINE = "#262930", "#d6d6d6", "#5a5f6b"


def embedded_figure(container: Any, figsize: tuple[float, float], min_height: int,
                    tooltip: str = "") -> tuple[Figure, FigureCanvasQTAgg]:
    """A dark matplotlib figure and its Qt canvas, added to a magicgui ``container``."""
    container.margins = (0, 0, 0, 0)
    figure = Figure(figsize=figsize, dpi=90, facecolor=BG)
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumHeight(min_height)
    if tooltip:
        canvas.setToolTip(tooltip)
    container.native.layout().addWidget(canvas)
    return figure, canvas


def dark_axes(ax: Any, fontsize: float = 7) -> None:
    """Dark background, light ticks and grey spines on a matplotlib Axes."""
    ax.set_facecolor(BG)
    ax.tick_params(colors=FG, labelsize=fontsize)
    for spine in ax.spines.values():
        spine.set_color(SPINE)
