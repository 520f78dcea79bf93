"""Small magicgui helpers shared by the fusion panel's modules."""
from __future__ import annotations

from magicgui.widgets import Label
from qtpy.QtWidgets import QSizePolicy


def text_label(value: str = "", bold: bool = False) -> Label:
    """A word-wrapping label that takes the panel's full width (rich text allowed)."""
    label = Label(value=f"<b>{value}</b>" if bold else value)
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
    return label
