"""The "Fuse tilt series" dock widget: tilt-series inputs and their angles, a region (a box
of slices and a centred crop), parameters with Auto, Run/Stop, live 3-D volumes and the
convergence plot.

Wiring only: the maths is :mod:`fusedem.tomo`; the run plan and worker generator are in
``_tomo_run``; the output layers reuse the 2-D panel's ``FusedLayers`` (element colours,
contrast kept while streaming) with 3-D rendering; the plot is the 2-D ``ConvergencePlot``.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox, ComboBox, Container, FloatSpinBox, ProgressBar, PushButton, Select, SpinBox,
)
from napari.qt.threading import create_worker

from ..elements import ATOMIC_NUMBERS
from ._convergence_plot import ConvergencePlot
from ._fused_layers import FusedLayers
from ._param_controls import _TIPS
from ._run_controller import StopFlag, stream
from ._tomo_layers import angles_text, is_tilt_layer, tilt_meta
from ._tomo_run import TomoPlan, make_plan, result_from_state, start_states
from ._ui import fit_height, scrolled_with_footer, seconds_text, text_label

_ERR, _OK = "#ff7b7b", "#9ad29a"
RENDERINGS = ("attenuated_mip", "iso", "mip")
_FIELDS = (("lambda_chem", "λ chem", 0.0, 1e4, 0.01), ("lambda_tv", "λ TV", 0.0, 100.0, 0.001),
           ("gamma", "γ", 1.0, 3.0, 0.05), ("eps", "ε", 0.0001, 1.0, 0.001))


def volume_limits(volume: np.ndarray) -> tuple[float, float]:
    """Display range of a fused volume: 0 (or its minimum) to its maximum. A particle fills
    a small fraction of a volume, so the robust percentiles used in 2-D would saturate it."""
    lo, hi = min(0.0, float(np.min(volume))), float(np.max(volume))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


class TomoWidget(Container):
    """Dock panel that fuses a HAADF and chemical tilt series into element volumes, live."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from ..tomo import TomoParams

        self._viewer = napari_viewer
        self.haadf = ComboBox(label="HAADF tilts", choices=self._haadf_choices,
                              tooltip="The HAADF tilt series (role 'haadf_tilts').")
        self.elements = Select(label="elements", choices=self._element_choices,
                               tooltip="Element tilt series to fuse (ctrl-click for several).")
        self.elements.native.setMaximumHeight(90)  # a few rows; it scrolls beyond
        self.angles = text_label()
        self.y0 = SpinBox(label="first slice", min=0, max=100000, tooltip=(
            "First detector row (slice y along the tilt axis) to reconstruct."))
        self.y1 = SpinBox(label="end slice", min=1, max=100000, tooltip=(
            "One past the last slice to reconstruct."))
        self.crop_width = SpinBox(label="crop width", min=2, max=100000, tooltip=(
            "Detector columns used, centred on the tilt axis; the object must stay inside "
            "them at every tilt."))
        defaults = TomoParams()
        self.fields = {name: FloatSpinBox(label=label, min=lo, max=hi, step=step,
                                          value=getattr(defaults, name), tooltip=_TIPS[name])
                       for name, label, lo, hi, step in _FIELDS}
        for w in (self.fields["lambda_chem"], self.fields["lambda_tv"], self.fields["eps"]):
            w.native.setDecimals(5)
        self.n_iter = SpinBox(label="iterations", min=1, max=10000, value=defaults.n_iter,
                              tooltip=_TIPS["n_iter"])
        self.n_iter_tv = SpinBox(label="TV iterations", min=1, max=200, value=defaults.n_iter_tv,
                                 tooltip=_TIPS["n_iter_tv"])
        self.auto = CheckBox(text="Auto (choose λ chem, λ TV, iterations from the data)",
                             tooltip="params='auto': held-out validation, as in 2-D.")
        from ..cli._tomo import auto_available

        if not auto_available():
            self.auto.enabled = False
            self.auto.tooltip = "Not available in this build (fusedem.tomo.autotune is missing)."
        self.rendering = ComboBox(label="rendering", choices=RENDERINGS, value=RENDERINGS[0],
                                  tooltip="How the volumes are drawn in 3-D view.")
        self.align_button = PushButton(text="Align", tooltip=(
            "Align the chosen tilt series first (per-tilt shifts, tilt-axis offset, chemical "
            "tilts to the nearest HAADF tilt); adds '<name> aligned' layers and uses them."))
        self.run_button = PushButton(text="Run")
        self.stop_button = PushButton(text="Stop", enabled=False,
                                      tooltip="Stop after the current iteration; keep the volumes.")
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = fit_height(text_label())
        self.progress_label = fit_height(text_label())
        self.plot = ConvergencePlot()
        row = partial(Container, layout="horizontal", labels=False)
        self.body = Container(labels=False, widgets=[
            text_label("Tilt series", bold=True), Container(widgets=[self.haadf, self.elements]),
            self.angles, self.align_button, text_label("Region", bold=True),
            Container(widgets=[self.y0, self.y1, self.crop_width]),
            text_label("Parameters", bold=True),
            Container(widgets=[*self.fields.values(), self.n_iter, self.n_iter_tv, self.rendering]),
            self.auto, text_label("Convergence", bold=True), self.plot])
        self.footer = Container(labels=False, widgets=[
            row(widgets=[self.run_button, self.stop_button]), self.status, self.progress,
            self.progress_label])
        super().__init__(labels=False, widgets=[])
        self.scroll = scrolled_with_footer(self, self.body, self.footer, 160)
        self.volumes = FusedLayers(napari_viewer, volume_limits)
        self.result: Any = None
        self._plan: TomoPlan | None = None
        self._state: Any = None
        self._worker: Any = None
        self._stop: StopFlag | None = None
        self._run_id = 0
        self._started = 0.0
        self._known: list[Any] = []  # element tilt layers seen, so that new ones get ticked
        self._aligning: Any = None  # the alignment worker while it runs
        self.run_button.changed.connect(self.run)
        self.align_button.changed.connect(self.align)
        self.stop_button.changed.connect(self.stop)
        self.haadf.changed.connect(self._on_haadf)
        self.elements.changed.connect(self._show_angles)
        self.rendering.changed.connect(self._apply_rendering)
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    # ---- inputs ---------------------------------------------------------------------
    def _haadf_choices(self, *_: Any) -> list:
        return [(ly.name, ly) for ly in self._viewer.layers if is_tilt_layer(ly, "haadf_tilts")]

    def _element_choices(self, *_: Any) -> list:
        return [(ly.name, ly) for ly in self._viewer.layers if is_tilt_layer(ly, "element_tilts")]

    @property
    def running(self) -> bool:
        return self._worker is not None

    def _refresh(self, *_: Any) -> None:
        if self.running:
            return
        self.haadf.reset_choices()
        chosen = list(self.elements.value or [])
        self.elements.reset_choices()
        new = [ly for ly in self.elements.choices if not any(ly is k for k in self._known)]
        self._known = list(self.elements.choices)
        self.elements.value = [ly for ly in self.elements.choices
                               if any(ly is c for c in chosen + new)]  # new series are ticked
        self._on_haadf()

    def _on_haadf(self, *_: Any) -> None:
        layer = self.haadf.value
        if layer is not None:
            ny, nx = layer.data.shape[1:]
            for w, v in ((self.y0, 0), (self.y1, ny), (self.crop_width, nx)):
                w.max = ny if w is not self.crop_width else nx
                w.value = v
        self._show_angles()

    def _show_angles(self, *_: Any) -> None:
        layer, els = self.haadf.value, list(self.elements.value or [])
        lines = [f"HAADF: {angles_text(tilt_meta(layer)['angles'])}"] if layer is not None else []
        if els:
            lines.append(f"chemical ({', '.join(tilt_meta(e).get('element') or e.name for e in els)}): "
                         f"{angles_text(tilt_meta(els[0])['angles'])}")
        self.angles.value = "<br>".join(lines) or "Open a tilt series (File ▸ Open, or the sample)."
        try:
            self._plan_now()
            self._say(f"Ready: {len(els)} element(s).", _OK)
            self.run_button.enabled = True
        except ValueError as exc:
            self._say(str(exc), _ERR)
            self.run_button.enabled = False

    def _params(self) -> Any:
        from ..tomo import TomoParams

        if self.auto.value:
            return "auto"
        return TomoParams().replace(n_iter=int(self.n_iter.value), n_iter_tv=int(self.n_iter_tv.value),
                                    **{k: float(w.value) for k, w in self.fields.items()})

    def _show_params(self, p: Any) -> None:
        for name, w in self.fields.items():
            w.value = getattr(p, name)
        self.n_iter.value, self.n_iter_tv.value = p.n_iter, p.n_iter_tv

    def _plan_now(self) -> TomoPlan:
        return make_plan(self.haadf.value, list(self.elements.value or []),
                         (int(self.y0.value), int(self.y1.value)), int(self.crop_width.value),
                         self._params())

    def _say(self, text: str, color: str = "") -> None:
        self.status.value = f'<span style="color:{color}">{text}</span>' if color else text

    # ---- alignment ----------------------------------------------------------------------
    def align(self, *_: Any) -> bool:
        """Align the chosen tilt layers in a worker thread, then add '<name> aligned' copies
        and choose them; False (with a message) when it cannot start. The maths (seconds to a
        minute: 61 tilts of 256² took 13 s on 2 busy cores) is fusedem.tomo.align's."""
        from ._tomo_align import aligned_layer_data, check_align_inputs

        if self.running or self._aligning is not None:
            self._say("Busy: wait for the fusion or the alignment to finish.", _ERR)
            return False
        originals = [self.haadf.value, *list(self.elements.value or [])]
        try:
            check_align_inputs(originals[0], originals[1:])
        except ValueError as exc:
            self._say(f"Cannot align: {exc}", _ERR)
            return False
        worker = create_worker(aligned_layer_data, originals[0], originals[1:], _start_thread=False)
        self._aligning = worker
        worker.returned.connect(partial(self._on_aligned, originals))
        worker.errored.connect(lambda exc: self._say(f"Cannot align: {exc}", _ERR))
        worker.finished.connect(self._align_finished)
        self.align_button.enabled = self.run_button.enabled = False
        self._say("Aligning the tilt series…")
        worker.start()
        return True

    def _on_aligned(self, originals: list[Any], out: tuple[list[tuple], str]) -> None:
        tuples, summary = out
        new = [self._viewer.add_image(data, **kw) for data, kw, _ in tuples]
        for layer in originals:
            if layer in self._viewer.layers:
                layer.visible = False
        self.haadf.value = new[0]
        self.elements.value = new[1:]
        self._say(summary, _OK)

    def _align_finished(self) -> None:
        self._aligning = None
        self.align_button.enabled = True
        self.run_button.enabled = self.haadf.value is not None and bool(self.elements.value)

    # ---- running ----------------------------------------------------------------------
    def run(self) -> bool:
        """Start a fusion in a worker thread; False (with a message) when it cannot start."""
        if self.running:
            self._say("A fusion is still running: stop it first.", _ERR)
            return False
        try:
            plan = self._plan_now()
            states = start_states(plan)
        except ValueError as exc:
            self._say(str(exc), _ERR)
            return False
        self._run_id += 1
        self._plan, self._state, self.result = plan, None, None
        self._stop = stop = StopFlag()
        worker = create_worker(stream, states, stop, "volumes", False, _start_thread=False)
        stop.worker = self._worker = worker
        worker.yielded.connect(partial(self._on_state, self._run_id))
        worker.errored.connect(partial(self._on_error, self._run_id))
        worker.finished.connect(partial(self._on_finished, self._run_id))
        params = plan.params if isinstance(plan.params, str) else plan.params.to_dict()
        self.volumes.begin(list(plan.maps), keep_previous=False, placement={
            **plan.placement, "rendering": self.rendering.value},
            meta={"role": "volume", "params": params, "sources": plan.sources,
                  "haadf_angles": plan.haadf_angles.tolist(), "chem_angles": plan.chem_angles.tolist(),
                  "region": {"slices": list(plan.slices), "columns": list(plan.columns)},
                  "voxel_size_nm": plan.pixel_size})
        self.plot.clear()
        n_iter = int(self.n_iter.value)
        self.progress.max, self.progress.value = n_iter, 0
        self.progress_label.value = f"starting on {plan.describe()}…" + (
            " (Auto: choosing the parameters first)" if self.auto.value else "")
        self._set_running(True)
        self._started = time.perf_counter()
        worker.start()
        return True

    def stop(self, *_: Any) -> None:
        """Stop within one outer iteration, keeping the last volumes shown."""
        if self._stop is not None:
            self._stop.set()
        if self._worker is not None:
            self._worker.quit()
        self.stop_button.enabled = False
        self.progress_label.value = "stopping…"

    def _on_state(self, run_id: int, state: Any) -> None:
        if run_id != self._run_id or self._plan is None:
            return
        first = self._state is None
        self._state = state
        costs = {k: np.asarray(v) for k, v in state.costs.items()}
        self.volumes.update(state.volumes, {el: {
            "Z": ATOMIC_NUMBERS.get(el), "costs": {k: v.tolist() for k, v in costs.items()},
            "iteration": state.iteration, "n_iter": state.n_iter, "elapsed": state.elapsed}
            for el in state.volumes})
        if first:  # the volumes replace the tilt stacks in view
            for layer in self._viewer.layers:
                if tilt_meta(layer).get("role") in ("haadf_tilts", "element_tilts"):
                    layer.visible = False
            self._apply_rendering()
        self.progress.max, self.progress.value = state.n_iter, state.iteration
        self.progress_label.value = (f"iteration {state.iteration} of {state.n_iter} · "
                                     f"{seconds_text(state.elapsed)}")
        self.plot.set_costs(costs)

    def _apply_rendering(self, *_: Any) -> None:
        for layer in self.volumes.layers.values():
            if layer in self._viewer.layers:
                layer.rendering = self.rendering.value
                if self.rendering.value == "iso":
                    lo, hi = layer.contrast_limits
                    layer.iso_threshold = lo + 0.4 * (hi - lo)

    def _on_error(self, run_id: int, exc: Exception) -> None:
        if run_id == self._run_id:
            self._say(f"Fusion failed: {exc}", _ERR)

    def _on_finished(self, run_id: int) -> None:
        self._worker = None
        if run_id != self._run_id:
            return
        self._set_running(False)
        state, plan = self._state, self._plan
        if state is None or plan is None:
            self.progress_label.value = "Stopped before the first update: nothing to keep."
            return
        self.volumes.finish()
        self.plot.set_costs(state.costs, force=True)
        self.result = result_from_state(plan, state, plan.params, self._started)
        if isinstance(plan.params, str):  # Auto: show what it chose, and record it
            self._show_params(self.result.params)
            for layer in self.volumes.layers.values():
                layer.metadata["fusedem"]["params"] = self.result.params.to_dict()
        end = "Done" if state.iteration >= state.n_iter else f"Stopped at iteration {state.iteration}"
        self.progress_label.value = (f"{end}: {state.iteration} iterations in "
                                     f"{seconds_text(state.elapsed)} on {plan.describe()}. "
                                     "Press ctrl-Y (2D/3D) to see the volumes in 3-D.")

    def _set_running(self, running: bool) -> None:
        for w in (self.haadf, self.elements, self.y0, self.y1, self.crop_width, self.n_iter,
                  self.n_iter_tv, self.auto, self.run_button, self.align_button,
                  *self.fields.values()):
            w.enabled = not running
        self.stop_button.enabled = running
