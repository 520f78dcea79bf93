"""The panel's Auto button: stream :func:`fusedem.tuning.autotune_steps` in a worker,
plot every candidate's score, fill the parameter controls with the choice, then Run.

No maths here: the search, its scores and its choice come from :mod:`fusedem.tuning`.
"""
from __future__ import annotations

from collections.abc import Generator, Iterator
from functools import partial
from typing import Any

import numba
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer

from ..spectra.thinning import extracted_map_splits
from ..tuning import AutoProgress, AutoResult, autotune_steps
from ._spectrum_layers import fusedem_md
from ._run_controller import StopFlag
from ._ui import seconds_text


def auto_steps(w: Any, plan: Any) -> Iterator[AutoProgress]:
    """The search for ``plan`` (inputs checked now: ValueError). Maps extracted from an
    EDS spectrum image that is still open are validated by thinning its counts before
    extraction, as ``fusedem fuse --auto`` does (in the worker: a large cube takes a while);
    other maps by thinning or masking of the maps themselves."""
    steps = autotune_steps(plan.haadf, plan.maps, plan.params)
    map_layers, layers = w.plan_sources()
    mds = {s: fusedem_md(ly) for ly, s in zip(map_layers, plan.maps)}
    names = {md.get("spectrum_layer") for md in mds.values()}
    name = names.pop() if len(names) == 1 else None
    if plan.frame is not None or name is None or name not in layers:
        return steps
    steps.close()
    return _thinned_spectrum_steps(plan, layers[name], mds)


def _thinned_spectrum_steps(plan: Any, si: Any, mds: dict) -> Iterator[AutoProgress]:
    splits = extracted_map_splits(si.data, fusedem_md(si), mds, plan.crop.slices)
    if splits is None:  # not raw counts, or not X-ray line maps
        yield from autotune_steps(plan.haadf, plan.maps, plan.params)
    else:
        yield from autotune_steps(plan.haadf, plan.maps, plan.params, splits=splits,
                                  method="thinning (spectrum image)")


def stream_auto(steps: Iterator[AutoProgress], stop: StopFlag) -> Generator[AutoProgress, None, None]:
    """Worker side: forward the search's progress; end after the current solve on ``stop``."""
    numba.set_num_threads(max(1, numba.config.NUMBA_NUM_THREADS - 1))  # a core for the GUI
    try:
        for step in steps:
            if stop():
                return
            yield step
    finally:
        steps.close()  # type: ignore[attr-defined]


class AutoRunner:
    """Runs the automatic search for a :class:`~fusedem.napari.fusion_widget.FusionWidget`."""

    def __init__(self, widget: Any) -> None:
        self.w = widget
        self.worker: Any = None
        self._stop: StopFlag | None = None
        self._id = 0
        self.result: AutoResult | None = None  #: the last completed search

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> bool:
        """Start the search on the current inputs/region; False (message shown) if it cannot."""
        w = self.w
        if w.running:
            w.say_error("A fusion is still running: stop it first.")
            return False
        try:
            plan = w.make_plan()
            steps = auto_steps(w, plan)
        except ValueError as exc:
            w.say_error(f"Auto: {exc}")
            return False
        self._id += 1
        self.result = None
        self._stop = stop = StopFlag()
        worker = create_worker(stream_auto, steps, stop, _start_thread=False)
        stop.worker = self.worker = worker
        worker.yielded.connect(partial(self._on_progress, self._id))
        worker.errored.connect(partial(self._on_error, self._id))
        worker.finished.connect(partial(self._on_finished, self._id, worker))
        w.auto_plot.clear()
        w.auto_plot.visible = True
        w.set_running(True)
        w.progress.max, w.progress.value = 1, 0
        w.progress_label.value = f"Auto: choosing parameters on {plan.describe()}…"
        w.say("")
        w._watch_close()
        worker.start()
        return True

    def stop(self) -> None:
        """Stop the search after the current solve; the parameters stay as they were."""
        if self._stop is not None:
            self._stop.set()
        if self.worker is not None:
            self.worker.quit()

    def cancel(self) -> None:
        """Ignore whatever the worker still sends (viewer closing) and stop it."""
        self._id += 1
        self.stop()

    def _on_progress(self, run_id: int, step: AutoProgress) -> None:
        if run_id != self._id:
            return
        w = self.w
        if step.candidate is not None:
            w.auto_plot.add(step.candidate, step.best)
        w.progress.max, w.progress.value = step.max_solves, min(step.n_solves, step.max_solves)
        if step.result is not None:
            self.result = step.result
            return
        b = step.best
        w.progress_label.value = (
            f"Auto: {step.n_solves} of at most {step.max_solves} solves · "
            f"{seconds_text(step.elapsed)} · best so far λ chem {b.lambda_chem:.3g}, "
            f"λ TV {b.lambda_tv:.3g}, {b.n_iter} iterations")

    def _on_error(self, run_id: int, exc: Exception) -> None:
        if run_id == self._id:
            self.w.say_error(f"Auto failed: {exc}")

    def _on_finished(self, run_id: int, worker: Any) -> None:
        if worker is self.worker:
            self.worker = None
        if run_id != self._id:
            return
        w = self.w
        w.set_running(False)
        res = self.result
        if res is None:
            w.progress_label.value = "Auto stopped: the parameters were not changed."
            return
        w.params_panel.set_params(res.params)
        w.auto_plot.label.value = "Chosen " + res.summary() + "."
        w.say_ok(res.summary() + ". Running with these parameters…")
        QTimer.singleShot(0, w.run)  # after this handler: the panel is idle again
