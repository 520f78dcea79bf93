"""The spectrum panel's always-visible footer: plan status, Extract button, job progress."""
from __future__ import annotations

import time

from magicgui.widgets import Container, Label, ProgressBar, PushButton
from qtpy.QtCore import QTimer

from ._ui import fit_height

COLOURS = {"error": "#ff7b7b", "ok": "#9ad29a", "warn": "#ffc66b", "": ""}


class ExtractFooter(Container):
    """``status`` (about the plan), ``button``, a busy ``progress`` bar and ``job_status``
    (about the running or last job, with a seconds counter while busy)."""

    def __init__(self) -> None:
        self.status = Label(value="")
        self.button = PushButton(text="Extract maps", tooltip=(
            "Add (or update) one image layer per element, in counts, named by its symbol."))
        self.progress = ProgressBar(min=0, max=0, visible=False, label="working")
        self.job_status = Label(value="")
        super().__init__(labels=False, widgets=[self.status, self.button, self.progress,
                                                self.job_status])
        for label in (self.status, self.job_status):
            label.native.setWordWrap(True)
            fit_height(label)
        self.started = 0.0
        self.job_text = ""
        self._ticker = QTimer()
        self._ticker.setInterval(250)
        self._ticker.timeout.connect(self._tick)

    def say(self, text: str, level: str = "", job: bool = False) -> None:
        """Show ``text`` on the status (or job) line, coloured by level ('error', 'warn', 'ok')."""
        label = self.job_status if job else self.status
        label.value = text
        label.native.setStyleSheet(f"color: {COLOURS[level]};")

    def set_busy(self, busy: bool, text: str = "") -> None:
        """Disable the button and count seconds after ``text`` while a job runs."""
        self.button.enabled = not busy
        self.progress.visible = busy
        if busy:
            self.started, self.job_text = time.perf_counter(), text
            self.say(text, job=True)
            self._ticker.start()
        else:
            self._ticker.stop()

    def stop_ticking(self) -> None:
        self._ticker.stop()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _tick(self) -> None:
        self.say(f"{self.job_text} {self.elapsed():.0f} s", job=True)
