"""Small magicgui helpers shared by the fusion panel's modules."""
from __future__ import annotations

from typing import Any

from magicgui.widgets import Label
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QSizePolicy


def text_label(value: str = "", bold: bool = False) -> Label:
    """A word-wrapping label that takes the panel's full width (rich text allowed)."""
    label = Label(value=f"<b>{value}</b>" if bold else value)
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
    return label


class CloseWatcher(QObject):
    """Event filter that calls ``callback`` when the watched window gets its Close event."""

    def __init__(self, callback: Any) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Close:
            self._callback()
        return False
