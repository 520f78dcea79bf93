"""The "Fuse chemical maps" dock widget: inputs, region, parameters, live run, save.

The widget only wires things together: choosing inputs (``_fusion_inputs``), the region
crop (``_crop``), parameters (``_param_controls``), the worker generator
(``_run_controller``), the output layers (``_fused_layers``) and the plot
(``_convergence_plot``), region and save actions (``_region_save``). All maths lives in
:mod:`fusedem`.
"""
from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any

import napari
import numpy as np
from magicgui.widgets import CheckBox, Container, ProgressBar, PushButton
from napari.qt.threading import create_worker
from qtpy.QtCore import QThreadPool, QTimer

from .. import solver
from ..params import FusionParams
from ._auto_plot import AutoScorePlot
from ._auto_run import AutoRunner
from ._convergence_plot import ConvergencePlot
from ._crop import Crop, find_region_layer, region_text
from ._fused_layers import FusedLayers
from ._fusion_inputs import InputsPanel, looks_like_haadf
from ._param_controls import ParamControls
from ._region_save import RegionAndSave
from ._run_controller import MIN_INTERVAL, KernelLoader, StopFlag, result_from_state, stream
from ._run_plan import (PROXY_NOTE, RunPlan, check_inputs, frame_text, input_frames,
                        make_plan, no_maps_reason)
from ._ui import CloseWatcher, fit_height, scrolled_with_footer, seconds_text, text_label

_ERR, _OK = "#ff7b7b", "#9ad29a"
#: The scrolled part of the panel never gets less height than this (two docks stacked
#: at 1280 x 800 must both stay usable); Run, Stop and the status line sit below it.
MIN_BODY_HEIGHT = 160
#: On closing the viewer mid-run, wait at most this long for the worker thread to end.
CLOSE_WAIT_MS = 10000


class FusionWidget(RegionAndSave, Container):
    """Dock panel that fuses elemental maps with the HAADF image, streaming live results."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self._viewer = napari_viewer
        self._ready = False
        self.inputs = InputsPanel(napari_viewer, self._revalidate)
        self.region_button = PushButton(text="Draw fusion region", tooltip=(
            "Create (or select) the 'fusion region' Shapes layer and draw a rectangle: "
            "the fusion then runs inside it only. No rectangle = whole image."))
        self.whole_button = PushButton(text="Whole image", tooltip="Delete the region rectangles.")
        self.region_label = text_label()
        self.params_panel = ParamControls()
        self.keep_previous = CheckBox(text="keep previous results", tooltip=(
            "Keep the fused layers of earlier runs (renamed '... (run k)') instead of replacing "
            "them."))
        self.run_button = PushButton(text="Run", tooltip="Start the fusion (live preview).")
        self.auto_button = PushButton(text="Auto", tooltip=(
            "Choose λ chem, λ TV and the number of iterations from these data (held-out "
            "validation: Poisson thinning of raw counts, else masked pixels), fill them in "
            "above, then run. Stop cancels the search and keeps the parameters."))
        self.stop_button = PushButton(text="Stop", enabled=False, tooltip=(
            "Stop after the current iteration and keep the last state as the result."))
        self.auto_plot = AutoScorePlot()
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.progress_label = fit_height(text_label())
        self.status = fit_height(text_label())
        self.plot = ConvergencePlot()
        self.reset_contrast_button = PushButton(text="Reset contrast", enabled=False, tooltip=(
            "Fit the contrast limits of the fused layers to their data."))
        self.save_button = PushButton(text="Save…", enabled=False, tooltip=(
            "Save the fused maps with parameters and cost curves (HDF5, or TIFF)."))
        row = partial(Container, layout="horizontal", labels=False)
        self.body = Container(labels=False, widgets=[
            text_label("Inputs", bold=True), self.inputs,
            text_label("Region", bold=True), row(widgets=[self.region_button, self.whole_button]),
            self.region_label, text_label("Parameters", bold=True), self.params_panel,
            self.keep_previous,
            self.auto_plot,
            text_label("Convergence", bold=True), self.plot,
            row(widgets=[self.reset_contrast_button, self.save_button]),
        ])
        # Always visible under the scrolled part: Run, and why it is (not) enabled.
        self.run_row = row(widgets=[self.run_button, self.auto_button, self.stop_button])
        self.footer = Container(labels=False, widgets=[
            self.run_row, self.status, self.progress, self.progress_label])
        super().__init__(labels=False, widgets=[])
        self.scroll = scrolled_with_footer(self, self.body, self.footer, MIN_BODY_HEIGHT)
        self.fused = FusedLayers(napari_viewer)
        self.result: solver.FusionResult | None = None
        self._plan: RunPlan | None = None
        self._last_state: solver.FusionState | None = None
        self._worker: Any = None
        self._stop: StopFlag | None = None
        self._run_id = 0
        self._started = 0.0
        self._outcome = ""
        self._close_watcher: CloseWatcher | None = None
        self._run_inputs: list[Any] = []
        self._in_frame = False
        self._hide_inputs = False
        self._pending: solver.FusionState | None = None
        self.auto = AutoRunner(self)
        self._preset_for: Any = None  # the HAADF layer whose sample preset was applied
        self.region_button.changed.connect(self.select_region_layer)
        self.whole_button.changed.connect(self._clear_region)
        self.run_button.changed.connect(self.run)
        self.auto_button.changed.connect(self.auto.start)
        self.stop_button.changed.connect(self.stop)
        self.reset_contrast_button.changed.connect(self.fused.reset_contrast)
        self.save_button.changed.connect(self._save_dialog)
        self.params_panel.changed.connect(self._revalidate)
        events = napari_viewer.layers.events
        events.inserted.connect(self._on_inserted)
        events.removed.connect(self._on_removed)
        events.moved.connect(self._on_layers_changed)
        napari_viewer.dims.events.current_step.connect(self._revalidate)  # frame slider
        for layer in napari_viewer.layers:
            self._watch(layer)
        self._ready = True
        self.inputs.refresh()
        KernelLoader.start()  # the first Run then need not wait for the compiler
        self._loader_timer = QTimer(self.native)  # dies with the panel (no late ticks)
        self._loader_timer.setInterval(250)
        self._loader_timer.timeout.connect(self._show_loader)
        self._show_loader()
        if not KernelLoader.ready():
            self._loader_timer.start()

    # ---- state -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a worker thread (fusion or Auto search) is alive, or stopping."""
        return self._worker is not None or self.auto.running

    def _region_layer(self) -> napari.layers.Shapes | None:
        return find_region_layer(self._viewer.layers)

    def _watch(self, layer: Any) -> None:
        layer.events.name.connect(self._on_layers_changed)
        layer.events.data.connect(self._revalidate)  # new values: checked before Run
        if isinstance(layer, napari.layers.Shapes):
            layer.events.highlight.connect(self._revalidate)

    def _on_inserted(self, event: Any) -> None:
        self._watch(event.value)
        self._on_layers_changed()

    def _on_removed(self, event: Any) -> None:
        if self.running and self._plan is not None and any(
                event.value is ly for ly in self._run_inputs):
            self._end_run(f"Stopped: input layer '{event.value.name}' was removed.")
        self._on_layers_changed()

    def _on_layers_changed(self, *_: Any) -> None:
        if self._ready and not self.running:
            self.inputs.refresh()

    def _show_loader(self) -> None:
        """Show the solver's loading state until it is ready (then once 'ready')."""
        if KernelLoader.ready():
            self._loader_timer.stop()
        if not self.running and self._last_state is None:
            self.progress_label.value = KernelLoader.state()

    # ---- validation ------------------------------------------------------------------
    def _check(self) -> tuple[Any, list[tuple[Any, str]], Crop, solver.FusionParams]:
        """Raise ValueError with a message for the panel unless the inputs can run."""
        haadf, chosen = self.inputs.haadf.value, self.inputs.selected()
        if not self.inputs.has_maps():
            raise ValueError(no_maps_reason(self._viewer.layers))
        chosen, crop = check_inputs(haadf, chosen, self._region_layer(), self._viewer.dims.point,
                                    self.inputs.other_images())
        return haadf, chosen, crop, self.params_panel.params()

    def _revalidate(self, *_: Any) -> None:
        if not self._ready or self.running:
            return
        self.params_panel.set_element_count(len(self.inputs.selected()))
        preset = self._apply_sample_preset()
        if self._run_inputs and any(ly not in self._viewer.layers for ly in self._run_inputs):
            self._forget_run()
        self.region_label.value = region_text(self.inputs.haadf.value, self._region_layer())
        try:
            _, chosen, crop, params = self._check()
        except ValueError as exc:
            self._say(str(exc), _ERR)
            self.run_button.enabled = self.auto_button.enabled = False
            return
        frame, n = input_frames([ly for ly, _ in chosen] + [self.inputs.haadf.value],
                                self._viewer.dims.point)
        shown = f" · {frame_text(frame, n)}, as on the slider" if frame is not None else ""
        auto = self.auto.result
        if auto is not None and auto.params == self.params_panel.params():
            hint = " Parameters: chosen by Auto from these data."
        elif preset:
            hint = f" Parameters: the {preset} sample's published ones."
        else:
            hint = " On your own data, press Auto to choose the parameters from them."
        extra = params.extras_text()
        if extra:  # values in force that no control shows (e.g. Auto's λ TV per element)
            hint += f" Also in force (no control): {extra}."
        proxy = "" if looks_like_haadf(self.inputs.haadf.value) else f" {PROXY_NOTE}"
        self._say(f"Ready: {', '.join(s for _, s in chosen)}{shown}.{proxy}{hint}", _OK)
        self.run_button.enabled = self.auto_button.enabled = True

    def _apply_sample_preset(self) -> str | None:
        """Set the parameters to the preset a bundled sample's HAADF carries (once per layer)."""
        haadf = self.inputs.haadf.value
        key = ((getattr(haadf, "metadata", None) or {}).get("fusedem") or {}).get("preset")
        if key and haadf is not self._preset_for:
            self._preset_for = haadf
            self.params_panel.set_params(FusionParams.preset(key))
        return key or None

    def _forget_run(self) -> None:
        """The last run's input layers were closed: its progress no longer describes them."""
        self._run_inputs, self.progress.value = [], 0
        if any(ly in self._viewer.layers for ly in self.fused.layers.values()):
            self.progress_label.value = ("The inputs of the last run were closed; its fused "
                                         "layers are kept (Save… still writes them).")
            return
        self.result, self._last_state, self._plan = None, None, None
        self.progress_label.value = ""
        self.plot.clear()
        self.save_button.enabled = self.reset_contrast_button.enabled = False

    def _say(self, text: str, color: str = "") -> None:
        self.status.value = f'<span style="color:{color}">{text}</span>' if color else text

    def _make_plan(self) -> RunPlan:
        haadf, chosen, crop, params = self._check()
        self._run_inputs = [haadf] + [ly for ly, _ in chosen]
        return make_plan(haadf, chosen, crop, params, self._viewer.dims.point)

    # what the Auto runner uses of the panel
    make_plan = _make_plan
    say = _say

    def plan_sources(self) -> tuple[list[Any], Any]:
        """The element layers of the last plan (in its maps' order) and the viewer's layers."""
        return self._run_inputs[1:], self._viewer.layers

    def say_error(self, text: str) -> None:
        self._say(text, _ERR)

    def say_ok(self, text: str) -> None:
        self._say(text, _OK)

    def set_running(self, running: bool) -> None:
        self._set_running(running)

    # ---- running -----------------------------------------------------------------
    def run(self) -> bool:
        """Start a fusion; returns False (with a message in the panel) when it cannot."""
        if self.running:
            self._say("A fusion is still running: stop it first.", _ERR)
            return False
        try:
            plan = self._make_plan()
            states = solver.iterate(plan.haadf, plan.maps, plan.params, every=1,
                                    min_interval=MIN_INTERVAL)
        except ValueError as exc:
            self._say(str(exc), _ERR)
            self.run_button.enabled = False
            return False
        self._run_id += 1
        self._plan, self._last_state, self.result = plan, None, None
        self._stop = stop = StopFlag()
        worker = create_worker(stream, states, stop, _start_thread=False, _progress={
            "total": plan.params.n_iter, "desc": "Fusing chemical maps"})
        worker.yielded.disconnect(worker.pbar.increment_with_overflow)
        stop.worker = self._worker = worker
        worker.yielded.connect(partial(self._on_frame, self._run_id))
        worker.errored.connect(partial(self._on_error, self._run_id))
        worker.finished.connect(partial(self._on_finished, self._run_id, worker))
        meta = {"role": "fused", "params": plan.params.to_dict(),
                "region": plan.crop.describe(), "frame": plan.frame}
        auto = self.auto.result
        if auto is not None and auto.params == plan.params:  # how Auto chose them (the writer saves it)
            meta["autotune"] = auto.to_dict()
        self.fused.begin(list(plan.maps), keep_previous=bool(self.keep_previous.value),
                         placement=plan.placement, meta=meta)
        # the first fused layers are shown alone: the noisy input maps, and the HAADF (its
        # full-brightness grey under additive colour maps washed them out to white), are
        # hidden once; their eyes in the layer list show them again
        self._hide_inputs = not self.fused.layers
        self._set_running(True)
        self._outcome = ""
        self.plot.clear()
        self.progress.max, self.progress.value = plan.params.n_iter, 0
        self.progress_label.value = f"starting on {plan.describe()}…" + (
            "" if KernelLoader.ready() else
            " (waiting for the solver to load; the first time on a computer it is compiled, ~20 s)")
        self._say("")
        self._watch_close()
        self._started = time.perf_counter()
        worker.start()
        return True

    def stop(self, *_: Any) -> None:
        """Stop the running fusion within one outer iteration, keeping the last state
        (or the Auto search after its current solve, keeping the parameters)."""
        if self.auto.running:
            self.auto.stop()
            self.stop_button.enabled = False
        elif self.running:
            self._end_run("")

    def _end_run(self, outcome: str) -> None:
        self._outcome = outcome
        if self._stop is not None:
            self._stop.set()
        if self._worker is not None:
            self._worker.quit()
        self.stop_button.enabled = False
        self.progress_label.value = "stopping…"

    def _on_frame(self, run_id: int, state: solver.FusionState) -> None:
        """Main thread: show a state yielded by the worker of run ``run_id``."""
        if run_id != self._run_id or state.maps is None or self._plan is None:
            return
        if self._in_frame:  # nested event processing inside a frame: show it right after
            self._pending = state
            return
        self._in_frame = True  # layer and progress updates may process queued events
        try:
            while state is not None:
                self._show_frame(state)
                state, self._pending = self._pending, None
        finally:
            self._in_frame = False

    def _show_frame(self, state: solver.FusionState) -> None:
        self._last_state = state
        plan = self._plan
        costs = {k: np.asarray(v) for k, v in state.costs.items()}
        self.fused.update(state.maps, {s: {
            "Z": z, "costs": costs, "source": plan.sources.get(s, ""),
            "iteration": state.iteration, "n_iter": state.n_iter} for s, z in plan.elements.items()})
        if self._hide_inputs:
            self._hide_inputs = False
            for layer in self._run_inputs:
                layer.visible = False
        self.progress.value = state.iteration
        pbar = getattr(self._worker, "pbar", None)
        if pbar is not None:
            pbar.update(state.iteration - pbar.n)
        self.progress_label.value = (f"iteration {state.iteration} of {state.n_iter} · "
                                     f"{seconds_text(state.elapsed)} · {state.device}")
        self.plot.set_costs(costs)

    def _on_error(self, run_id: int, exc: Exception) -> None:
        if run_id == self._run_id:
            self._outcome = f"Fusion failed: {exc}"

    def _on_finished(self, run_id: int, worker: Any) -> None:
        if self._in_frame:  # re-entered from a frame's nested event processing: finish after it
            QTimer.singleShot(0, partial(self._on_finished, run_id, worker))
            return
        if worker is self._worker:
            self._worker = None
        if run_id != self._run_id:
            return
        state, plan = self._last_state, self._plan
        self._set_running(False)
        if state is not None and plan is not None and state.maps is not None:
            self.fused.finish()  # contrast limits that fit the result
            self.plot.set_costs(state.costs, force=True)
            self.result = result_from_state(plan, state, self._started)
            auto = self.auto.result
            if auto is not None and auto.params == plan.params:  # the run Auto chose
                self.result = dataclasses.replace(self.result, autotune=auto)
            end = ("Done" if state.iteration >= state.n_iter
                   else f"Stopped at iteration {state.iteration} of {state.n_iter}")
            self.progress_label.value = (f"{end}: {state.iteration} iterations in "
                                         f"{seconds_text(state.elapsed)} on {plan.describe()} "
                                         f"({state.device}).")
        else:
            self.progress_label.value = "Stopped before the first update: nothing to keep."
        self.save_button.enabled = self.result is not None
        self.reset_contrast_button.enabled = bool(self.fused.layers)
        self.inputs.refresh()  # layer changes during the run were not followed
        if self._outcome:
            self._say(self._outcome, _ERR)

    def _set_running(self, running: bool) -> None:
        bar = self.scroll.verticalScrollBar()
        at = bar.value()  # disabling the focused control moves focus, which scrolled the panel
        self.params_panel.set_running(running)
        self.inputs.set_running(running)
        for w in (self.region_button, self.whole_button, self.keep_previous, self.run_button,
                  self.auto_button, self.save_button, self.reset_contrast_button):
            w.enabled = not running
        self.stop_button.enabled = running
        bar.setValue(at)

    def _watch_close(self) -> None:
        window = self.native.window()
        if self._close_watcher is None and window is not self.native:
            self._close_watcher = CloseWatcher(self._on_viewer_closing)
            window.installEventFilter(self._close_watcher)

    def _on_viewer_closing(self) -> None:
        """The viewer closes: stop the run (or Auto search) and wait for its worker thread
        to end, so that it never emits into Qt objects the closing window deletes (napari's
        pattern: a generator that checks for quit every iteration, then wait for the thread)."""
        self._loader_timer.stop()
        if self.running:
            self.auto.cancel()
            self._run_id += 1  # whatever the worker still sends is ignored
            self._end_run("")
            QThreadPool.globalInstance().waitForDone(CLOSE_WAIT_MS)
