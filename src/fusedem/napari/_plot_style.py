"""napari's dark theme for the panels' matplotlib plots (one place for the colours)."""
from __future__ import annotations

from typing import Any

BG, FG, SPINE = "#262930", "#d6d6d6", "#5a5f6b"


def dark_axes(ax: Any, fontsize: float = 7) -> None:
    """Dark background, light ticks and grey spines on a matplotlib Axes."""
    ax.set_facecolor(BG)
    ax.tick_params(colors=FG, labelsize=fontsize)
    for spine in ax.spines.values():
        spine.set_color(SPINE)
