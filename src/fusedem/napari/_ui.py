"""Small magicgui helpers shared by the fusion panel's modules."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from magicgui.widgets import Label
from napari.qt.threading import create_worker
from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QWidget


def seconds_text(t: float) -> str:
    """A duration for the panels: '12.3 s', '0.04 s'."""
    return f"{t:.1f} s" if t >= 1 else f"{t:.2f} s"


def text_label(value: str = "", bold: bool = False) -> Label:
    """A word-wrapping label that takes the panel's full width (rich text allowed)."""
    label = Label(value=f"<b>{value}</b>" if bold else value)
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
    return label


class _FitHeight(QObject):
    """Event filter: a resized word-wrapping label asks for the height its text needs."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Resize:
            _fit(obj)
        return False


_FIT = _FitHeight()


def _fit(label: QLabel) -> None:
    need = label.heightForWidth(max(label.width(), 100)) if label.text() else 0
    if need >= 0 and need != label.minimumHeight():
        label.setMinimumHeight(need)


def fit_height(label: Label) -> Label:
    """Make a word-wrapping label keep the height its whole text needs (Qt's minimum size
    ignores wrapping, so a squeezed dock cut the status lines under Run)."""
    label.native.installEventFilter(_FIT)
    label.changed.connect(lambda *_: _fit(label.native))
    return label


class VScrollArea(QScrollArea):
    """A frameless vertical scroll area as wide as its content needs (no horizontal bar).

    magicgui's ``Container(scrollable=True)`` does not survive docking: napari docks
    ``container.native``, the widget *inside* magicgui's QScrollArea, so the panel had no
    scroll area and Qt squeezed it, cutting off its top and bottom.
    """

    def __init__(self, content: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setWidget(content)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        hint = super().minimumSizeHint()
        content = self.widget()
        if content is not None:
            hint.setWidth(content.minimumSizeHint().width() + 2 * self.frameWidth() + 4
                          + self.verticalScrollBar().sizeHint().width())
        return hint

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # content grew (rows added): widen the dock if needed
        return super().eventFilter(obj, event)


def ask_save_path(parent: QWidget) -> tuple[str, str | None] | None:
    """Ask where to save fused maps: (path, 'h5'/'tiff' when the name has no suffix, else
    None), or None when cancelled. The dialog itself asks before replacing a file."""
    from pathlib import Path

    from qtpy.QtWidgets import QFileDialog

    path, chosen = QFileDialog.getSaveFileName(
        parent, "Save fused chemical maps", "fused_maps.h5",
        "HDF5 (*.h5 *.hdf5);;TIFF (*.tif *.tiff)")
    if not path:
        return None
    return path, None if Path(path).suffix else ("tiff" if chosen.startswith("TIFF") else "h5")


class CloseWatcher(QObject):
    """Event filter that calls ``callback`` when the watched window gets its Close event."""

    def __init__(self, callback: Any) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Close:
            self._callback()
        return False


class Jobs:
    """napari thread workers by kind ('sum', 'extract' …): only the newest job of a kind
    reports back, so the result of a superseded job is ignored.

    ``alive()`` says whether the owning widget still exists (a worker may finish after its
    dock was deleted). Errors go to the job's ``failed`` callback, never re-raised.
    """

    def __init__(self, alive: Callable[[], bool]) -> None:
        self._alive = alive
        self._ids: dict[str, int] = {}
        self._workers: dict[str, Any] = {}

    def running(self, kind: str) -> bool:
        """True while the newest job of ``kind`` has not finished."""
        return kind in self._workers

    def start(self, kind: str, fn: Callable[..., Any], *args: Any,
              done: Callable[[Any], None], failed: Callable[[BaseException], None],
              finished: Callable[[], None] | None = None, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` in a worker; the panel shows its own progress.

        (No ``_progress`` activity bar: two of them at once, e.g. summing and extracting,
        hung napari 0.9's activity dialog in its nested ``processEvents``.)
        """
        job = self._ids[kind] = self._ids.get(kind, 0) + 1
        old = self._workers.get(kind)
        if old is not None:
            old.quit()  # a running function cannot be interrupted: its result is dropped
        current = partial(self._current, kind, job)
        worker = create_worker(fn, *args, _start_thread=False,
                               _connect={"errored": lambda e: current() and failed(e)},
                               **kwargs)
        worker.returned.connect(lambda v: current() and done(v))
        worker.finished.connect(partial(self._finished, kind, job, finished))
        self._workers[kind] = worker
        worker.start()

    def _current(self, kind: str, job: int) -> bool:
        return self._ids.get(kind) == job and self._alive()

    def _finished(self, kind: str, job: int, callback: Callable[[], None] | None) -> None:
        if self._ids.get(kind) != job:
            return
        self._workers.pop(kind, None)
        if callback is not None and self._alive():
            callback()


def scrolled_with_footer(panel: Any, body: Any, footer: Any, min_body_height: int) -> VScrollArea:
    """Lay out a dock panel (an empty magicgui Container): ``body`` in a vertical scroll
    area that keeps ``min_body_height`` px, ``footer`` always visible under it."""
    panel.margins = (0, 0, 0, 0)
    scroll = VScrollArea(body.native)
    scroll.setMinimumHeight(min_body_height)
    panel.native.layout().addWidget(scroll)
    panel.native.layout().addWidget(footer.native)
    return scroll
