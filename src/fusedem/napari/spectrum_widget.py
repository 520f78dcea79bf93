"""The "Extract elemental maps" dock widget: EDS/EELS spectrum image -> element layers.

Pick a spectrum-image layer (``metadata["fusedem"]["role"] == "spectrum_image"``),
type element symbols, check the lines and windows on the summed spectrum, press
Extract: one image layer per element (counts) appears, ready for the fusion
widget. All maths is in :mod:`fusedem.spectra`; this module only wires it to napari.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import napari
import numpy as np
from magicgui.widgets import (ComboBox, Container, FloatSpinBox, Label, LineEdit, ProgressBar,
                              PushButton)
from napari.layers import Image
from qtpy.QtCore import QTimer

from ..elements import element_colour, normalize_symbol
from ..spectra import (
    DEFAULT_RESOLUTION_EV,
    EnergyAxis,
    ExtractedMaps,
    LineWindows,
    extract_edge_maps,
    extract_maps,
    plan_lines,
    sum_spectrum,
)
from . import _eels_panel as eels
from ._composition_step import CompositionStep
from ._pca_step import PCAStep, denoised_layer
from ._spectrum_plot import SpectrumPlot, line_label
from ._ui import Jobs, fit_height, scrolled_with_footer, seconds_text
from .layers import ELEMENT_OPACITY, contrast_limits, element_colormap

_ERR, _OK, _WARN = "#ff7b7b", "#9ad29a", "#ffc66b"
MIN_BODY_HEIGHT = 140  #: px of the scrolled part that stay visible however small the dock


def _fusedem_md(layer: Any) -> dict[str, Any]:
    md = getattr(layer, "metadata", None) or {}
    return md.get("fusedem") or {}


def is_spectrum_layer(layer: Any) -> bool:
    """True for a 3-D image layer tagged as a spectrum image with an energy axis."""
    md = _fusedem_md(layer)
    return (isinstance(layer, Image) and layer.ndim == 3
            and md.get("role") in ("spectrum_image", "denoised_spectrum_image")
            and isinstance(md.get("energy_axis"), dict))


def parse_elements(text: str) -> list[str]:
    """Tokens of a typed element list ('Cu, O pd;Ti' -> ['Cu', 'O', 'pd', 'Ti'])."""
    return [t for t in re.split(r"[,;\s]+", text or "") if t]


def _lazy(data: Any) -> bool:
    """True for a dask (lazily read) array."""
    return type(data).__module__.startswith("dask")


def _error_text(exc: BaseException) -> str:
    """The message of ``exc`` for the panel (type name too unless it is a ValueError)."""
    msg = str(exc) or type(exc).__name__
    return msg if isinstance(exc, ValueError) else f"{type(exc).__name__}: {msg}"


class SpectrumWidget(Container):
    """Dock panel: summed spectrum with line windows, element list, Extract button.

    Summing the spectrum and extracting the maps run in napari thread workers (a large
    or lazily read file never freezes the viewer); each job is tagged, and the result of
    a superseded job (another layer chosen, a newer Extract) is ignored.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self._viewer = napari_viewer
        self._cache: dict[int, np.ndarray] = {}  # id(layer.data) -> sum spectrum
        self._current: Any = None
        self.plan: dict[str, LineWindows] = {}
        self.extracted: list[Image] = []  #: layers written by the last extraction
        self._jobs = Jobs(self._alive)
        self._summing: int | None = None  # id(layer.data) being summed
        self._sum_error: dict[int, str] = {}
        self._started = 0.0
        self._job_text = ""
        self._axis: EnergyAxis | None = None
        self.layer_combo = ComboBox(label="spectrum image", choices=self._spectrum_layers,
                                    tooltip="EDS spectrum-image layer (opened from .emd/.bcf …)")
        self.elements_edit = LineEdit(label="elements", tooltip=(
            "Element symbols separated by spaces or commas, e.g. 'Cu O Pd Ti'. "
            "Edit to add or remove elements; the plot updates as you type."))
        self.beam = FloatSpinBox(label="beam energy (kV)", min=0.0, max=1000.0, step=1.0, tooltip=(
            "Accelerating voltage; lines are chosen below half of it (0 = unknown: the highest "
            "line inside the energy axis)."))
        self.resolution = FloatSpinBox(
            label="FWHM at Mn Kα (eV)", min=40.0, max=400.0, step=1.0, value=DEFAULT_RESOLUTION_EV,
            tooltip="Detector resolution; windows are ±1 FWHM (integration) and 2–3 FWHM "
                    "(background) around each line.")
        self.binning = ComboBox(label="binning", choices=[1, 2, 4], value=1,
                                tooltip="Sum b×b scan pixels (counts are kept as counts).")
        self.plot = SpectrumPlot()
        self.status = Label(value="")
        self.extract_button = PushButton(text="Extract maps", tooltip=(
            "Add (or update) one image layer per element, in counts, named by its symbol."))
        self.progress = ProgressBar(min=0, max=0, visible=False, label="working")
        self.job_status = Label(value="")
        self.pca = PCAStep(self._current_with_axis, self._jobs,
                           lambda si, res: denoised_layer(self._viewer, si, res, self.layer_combo))
        self.composition = CompositionStep(napari_viewer, lambda: self.layer_combo.value)
        self.body = Container(widgets=[self.layer_combo, self.elements_edit, self.beam,
                                       self.resolution, self.binning, self.plot, self.pca,
                                       self.composition])
        # Always visible under the scrolled part (also when docked under the fusion panel).
        self.footer = Container(labels=False, widgets=[
            self.status, self.extract_button, self.progress, self.job_status])
        super().__init__(labels=False, widgets=[])
        self.scroll = scrolled_with_footer(self, self.body, self.footer, MIN_BODY_HEIGHT)
        for label in (self.status, self.job_status):
            label.native.setWordWrap(True)
            fit_height(label)
        self._ticker = QTimer()
        self._ticker.setInterval(250)
        self._ticker.timeout.connect(self._tick)
        self.layer_combo.changed.connect(self._on_layer)
        for w in (self.elements_edit, self.beam, self.resolution):
            w.changed.connect(self._replan)
        self.extract_button.changed.connect(self.extract)
        events = napari_viewer.layers.events
        events.inserted.connect(self.reset_choices)
        events.removed.connect(self.reset_choices)
        self._on_layer(self.layer_combo.value)

    # ------------------------------------------------------------------ state
    def reset_choices(self, *_: Any) -> None:
        """Refresh the spectrum-image choices (the combo box lives in the scrolled body)."""
        self.body.reset_choices()
        if self.layer_combo.value is not self._current:  # emptied lists emit no 'changed'
            self._on_layer(self.layer_combo.value)

    def _spectrum_layers(self, _widget: Any = None) -> list[Image]:
        return [ly for ly in self._viewer.layers if is_spectrum_layer(ly)]

    def _energy_axis(self, layer: Image) -> EnergyAxis:
        return EnergyAxis.from_dict(_fusedem_md(layer)["energy_axis"])

    def _current_with_axis(self) -> tuple[Image, EnergyAxis] | None:
        layer = self.layer_combo.value
        return None if layer is None else (layer, self._energy_axis(layer))

    @property
    def elements(self) -> list[str]:
        """The typed element tokens."""
        return parse_elements(self.elements_edit.value)

    @property
    def busy(self) -> bool:
        """True while an extraction runs."""
        return self._jobs.running("extract")

    @property
    def summing(self) -> bool:
        """True while the sum spectrum of the chosen layer is being computed."""
        return self._jobs.running("sum")

    def set_elements(self, elements: list[str]) -> None:
        """Replace the element list (updates the plot)."""
        self.elements_edit.value = " ".join(elements)

    def _on_layer(self, layer: Image | None) -> None:
        if layer is not self._current and not self.busy:
            self._say("", "", self.job_status)  # about the previous layer: no longer true
        if layer is not self._current and layer is not None:
            self._sum_error.pop(id(layer.data), None)  # chosen again: try reading again
            md = _fusedem_md(layer)
            beam = md.get("beam_energy_kv", md.get("beam_energy_keV"))
            res = md.get("energy_resolution_eV", md.get("resolution_ev"))
            with self.beam.changed.blocked(), self.resolution.changed.blocked():
                self.beam.value = float(beam) if beam else 0.0
                self.resolution.value = float(res) if res else DEFAULT_RESOLUTION_EV
            listed = [e for e in md.get("elements") or [] if isinstance(e, str)]
            if listed:
                with self.elements_edit.changed.blocked():
                    self.elements_edit.value = " ".join(listed)
        self._current = layer
        self._replan()

    def _spectrum(self, layer: Image) -> np.ndarray | None:
        """The cached sum spectrum of ``layer``; None (and a worker started) when not ready."""
        key = id(layer.data)
        if key in self._cache:
            return self._cache[key]
        if self._summing != key and key not in self._sum_error:
            self._summing = key
            self._jobs.start("sum", sum_spectrum, layer.data, axis=self._energy_axis(layer).axis,
                             done=partial(self._on_sum, key),
                             failed=partial(self._on_sum_error, key))
        return None

    def _on_sum(self, key: int, spectrum: np.ndarray) -> None:
        self._cache = {key: spectrum}
        self._summing = None
        layer = self.layer_combo.value
        if layer is not None and id(layer.data) == key:
            self._draw(layer)

    def _replan(self, *_: Any) -> None:
        """Re-choose lines/windows for the typed elements and redraw the plot."""
        layer = self.layer_combo.value
        self.plan, problems = {}, []
        if layer is None:
            self.plot.show(None, None)
            return self._say("Open an EDS spectrum image (.emd, .bcf) to extract maps.", _WARN)
        md = _fusedem_md(layer)
        try:
            axis = self._energy_axis(layer).with_size(layer.data.shape[md["energy_axis"].get("axis", 0)])
        except ValueError as exc:
            self.plot.show(None, None)
            return self._say(str(exc), _ERR)
        self._axis = axis
        self.beam.visible = self.resolution.visible = not eels.is_eels(md)  # X-ray settings
        if eels.is_eels(md):  # core-loss edges instead of X-ray lines
            self.plan, problems = eels.plan(self.elements, axis)
            self._draw(layer)
            if problems or not self.plan:
                return self._say("; ".join(problems) or "Type element symbols, e.g. 'Fe O'.",
                                 _ERR if problems else _WARN)
            return self._say(eels.summary(self.plan), _OK)
        good = []
        for token in self.elements:
            try:
                plan_lines([token], axis, **self._settings())
                good.append(token)
            except ValueError as exc:
                problems.append(str(exc))
        if good:
            self.plan = plan_lines(good, axis, **self._settings())
        self._axis = axis
        self._draw(layer)
        self._report(problems)

    def _draw(self, layer: Image) -> None:
        spectrum = self._spectrum(layer)
        if spectrum is None:
            err = self._sum_error.get(id(layer.data))
            msg = (f"could not read the spectrum:\n{err}" if err else
                   f"summing the spectrum of {np.prod(layer.data.shape[1:]):,} pixels…")
            return self.plot.show(None, None, message=msg)
        if eels.is_eels(_fusedem_md(layer)):
            return eels.draw(self.plot, self._axis.energies_kev(), spectrum, self.plan,
                             {el: (*element_colour(el), 1.0) for el in self.plan})
        self.plot.show(self._axis.energies_kev(), spectrum, self.plan,
                       {el: (*element_colour(el), 1.0) for el in self.plan},
                       self._settings()["beam_energy_kv"])

    def _settings(self) -> dict[str, Any]:
        return {"beam_energy_kv": float(self.beam.value) or None,
                "resolution_ev": float(self.resolution.value)}

    def _report(self, problems: list[str]) -> None:
        overlaps = [f"{line_label(lw)} overlaps {', '.join(lw.overlaps)}"
                    for lw in self.plan.values() if lw.overlaps]
        if problems:
            return self._say("; ".join(problems), _ERR)
        if not self.plan:
            return self._say("Type element symbols, e.g. 'Cu O Ti'.", _WARN)
        lines = ", ".join(f"{line_label(lw)} {lw.energy_kev:.3f} keV" for lw in self.plan.values())
        if overlaps:
            return self._say(f"{lines}. ⚠ {'; '.join(overlaps)}: maps include both lines.", _WARN)
        self._say(lines, _OK)

    def _say(self, text: str, color: str, label: Label | None = None) -> None:
        label = label or self.status
        label.value = text
        label.native.setStyleSheet(f"color: {color};")

    # ------------------------------------------------------------------ workers
    def _alive(self) -> bool:
        try:
            self.native.objectName()
        except RuntimeError:  # the dock was deleted with its viewer
            return False
        return True

    def _on_sum_error(self, key: int, exc: BaseException) -> None:
        self._summing = None
        self._sum_error[key] = _error_text(exc)
        layer = self.layer_combo.value
        if layer is not None and id(layer.data) == key:
            self._draw(layer)
        self._say(f"Could not read the spectrum image: {_error_text(exc)}", _ERR, self.job_status)

    def _on_extract_error(self, exc: BaseException) -> None:
        self._ticker.stop()
        self._say(f"Extraction failed: {_error_text(exc)}", _ERR, self.job_status)

    def _set_busy(self, busy: bool) -> None:
        self.extract_button.enabled = not busy
        self.progress.visible = busy
        if busy:
            self._started = time.perf_counter()
            self._ticker.start()
        else:
            self._ticker.stop()

    def _tick(self) -> None:
        self._say(f"{self._job_text} {time.perf_counter() - self._started:.0f} s", "",
                  self.job_status)

    # ------------------------------------------------------------------ extraction
    def extract(self, *_: Any) -> bool:
        """Start extracting the maps of the typed elements in a worker thread.

        Returns False (with a message in the panel) when there is nothing to extract. The
        layers are added or updated when the worker returns (see :attr:`extracted`); a
        newer call supersedes a running one.
        """
        layer = self.layer_combo.value
        if layer is None or not self.plan:
            self._say("Nothing to extract: choose a spectrum image and valid elements.", _ERR,
                      self.job_status)
            return False
        axis, elements = self._energy_axis(layer), list(self.plan)
        lazy = " (reading the file)" if _lazy(layer.data) else ""
        self._job_text = f"Extracting {', '.join(elements)} from '{layer.name}'{lazy}…"
        self._set_busy(True)
        self._say(self._job_text, "", self.job_status)
        fn, opts = ((extract_edge_maps, {}) if eels.is_eels(_fusedem_md(layer))
                    else (extract_maps, self._settings()))
        self._jobs.start("extract", fn, layer.data, axis, elements, axis=axis.axis,
                         binning=int(self.binning.value), **opts,
                         done=partial(self._on_extracted, layer), failed=self._on_extract_error,
                         finished=partial(self._set_busy, False))
        return True

    def _on_extracted(self, layer: Image, res: ExtractedMaps) -> None:
        """Main thread: add or update the element layers of a finished extraction."""
        self._ticker.stop()
        if layer not in self._viewer.layers:
            return self._say(f"'{layer.name}' was closed during the extraction: nothing added.",
                             _WARN, self.job_status)
        self.extracted = [self._put_layer(layer, res, el, i) for i, el in enumerate(res.elements)]
        binned = f", {res.binning}×{res.binning} binned" if res.binning > 1 else ""
        notes = " ".join(getattr(res, "notes", None) or [])  # EELS: pixels whose fit failed
        self._say(f"Extracted {', '.join(res.elements)} from '{layer.name}' (counts{binned}) "
                  f"in {seconds_text(time.perf_counter() - self._started)}. {notes}".strip(),
                  _WARN if notes else _OK, self.job_status)

    def _put_layer(self, si: Image, res: ExtractedMaps, el: str, i: int) -> Image:
        md = res.layer_metadata(el, source=_fusedem_md(si).get("source"))
        md["fusedem"]["spectrum_layer"] = si.name
        if md["fusedem"]["role"] == "edge_map":  # enters fusion as an element map
            md["fusedem"].update(role="element", modality="EELS")
        e_ax = self._energy_axis(si).axis % 3
        spatial = [k for k in range(3) if k != e_ax]
        b = res.binning
        scale = [float(si.scale[k]) * b for k in spatial]
        translate = [float(si.translate[k]) + (b - 1) / 2 * float(si.scale[k]) for k in spatial]
        data = res.maps[el].astype(np.float32)
        for ly in self._viewer.layers:
            fm = _fusedem_md(ly)
            if (fm.get("role") == "element" and fm.get("spectrum_layer") == si.name
                    and fm.get("element") == el and isinstance(ly, Image)):
                ly.data, ly.scale, ly.translate = data, scale, translate
                ly.metadata = md
                ly.contrast_limits = contrast_limits(data)
                return ly
        return self._viewer.add_image(
            data, name=el, metadata=md, scale=scale, translate=translate,
            units=[si.units[k] for k in spatial], colormap=element_colormap(el, i),
            blending="additive", opacity=ELEMENT_OPACITY, contrast_limits=contrast_limits(data))
