"""The "Extract elemental maps" dock widget: EDS/EELS spectrum image -> element layers.

Pick a spectrum-image layer (``metadata["fusedem"]["role"] == "spectrum_image"``),
type element symbols, check the lines (EDS) or edges (EELS, windows editable) on
the summed spectrum, press Extract: one image layer per element (counts)
appears, ready for the fusion widget. All maths is in :mod:`fusedem.spectra`;
the pieces of this panel are in ``_eds_panel``, ``_eels_panel``, ``_pca_step``,
``_composition_step``, ``_extract_footer`` and ``_element_layers``.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, LineEdit
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
)
from . import _eds_panel as eds
from . import _eels_panel as eels
from ._composition_step import CompositionStep
from ._element_layers import put_element_layer
from ._extract_footer import ExtractFooter
from ._pca_step import PCAStep, denoised_layer
from ._spectrum_layers import error_text, fusedem_md, is_lazy
from ._spectrum_layers import is_spectrum_layer, parse_elements  # noqa: F401  (public here)
from ._spectrum_plot import SpectrumPlot
from ._sum_spectra import SumSpectra
from ._ui import Jobs, scrolled_with_footer, seconds_text

MIN_BODY_HEIGHT = 140  #: px of the scrolled part that stay visible however small the dock
REEXTRACT_DELAY_MS = 400  #: after an edit of the EELS windows, extracted maps are recomputed


class SpectrumWidget(Container):
    """Dock panel: summed spectrum with line windows, element list, Extract button.

    Summing the spectrum and extracting the maps run in napari thread workers (a large
    or lazily read file never freezes the viewer); each job is tagged, and the result of
    a superseded job (another layer chosen, a newer Extract) is ignored.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self._viewer = napari_viewer
        self._current: Any = None
        self.plan: dict[str, LineWindows] = {}
        self.problems: list[str] = []  #: one message per typed element that does not plan
        self.extracted: list[Image] = []  #: layers written by the last extraction
        self._jobs = Jobs(self._alive)
        self._sums = SumSpectra(self._jobs, self._on_sum, self._on_sum_error)
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
        self.edge_windows = eels.EdgeWindowEditor(self._windows_edited)
        self.pca = PCAStep(self._current_with_axis, self._jobs,
                           lambda si, res: denoised_layer(self._viewer, si, res, self.layer_combo))
        self.composition = CompositionStep(napari_viewer, lambda: self.layer_combo.value)
        self.body = Container(widgets=[self.layer_combo, self.elements_edit, self.beam,
                                       self.resolution, self.binning, self.plot,
                                       self.edge_windows, self.pca, self.composition])
        # Always visible under the scrolled part (also when docked under the fusion panel).
        self.footer = ExtractFooter()
        self.status, self.job_status = self.footer.status, self.footer.job_status
        self.extract_button, self.progress = self.footer.button, self.footer.progress
        super().__init__(labels=False, widgets=[])
        self.scroll = scrolled_with_footer(self, self.body, self.footer, MIN_BODY_HEIGHT)
        self._reextract = QTimer(self.native)  # dies with the dock
        self._reextract.setSingleShot(True)
        self._reextract.setInterval(REEXTRACT_DELAY_MS)
        self._reextract.timeout.connect(self.extract)
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
        return EnergyAxis.from_dict(fusedem_md(layer)["energy_axis"])

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
            self.footer.say("", job=True)  # about the previous layer: no longer true
        if layer is not self._current and layer is not None:
            self._sums.retry(layer.data)  # chosen again: try reading again
            md = fusedem_md(layer)
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

    def _on_sum(self, key: int) -> None:
        layer = self.layer_combo.value
        if layer is not None and id(layer.data) == key:
            self._draw(layer)

    def _replan(self, *_: Any) -> None:
        """Re-choose lines/edges and windows for the typed elements and redraw the plot."""
        layer = self.layer_combo.value
        self.plan, self.problems = {}, []
        if layer is None:
            self.plot.show(None, None)
            return self.footer.say("Open an EDS spectrum image (.emd, .bcf) to extract maps.",
                                   "warn")
        md = fusedem_md(layer)
        try:
            axis = self._energy_axis(layer).with_size(layer.data.shape[md["energy_axis"].get("axis", 0)])
        except ValueError as exc:
            self.plot.show(None, None)
            return self.footer.say(str(exc), "error")
        self._axis = axis
        self.beam.visible = self.resolution.visible = not eels.is_eels(md)  # X-ray settings
        self.edge_windows.visible = eels.is_eels(md)
        if eels.is_eels(md):  # core-loss edges instead of X-ray lines
            self.edge_windows.set_axis(axis)
            self.plan, self.problems = eels.plan(self.elements, axis, self.edge_windows.overrides)
            self.edge_windows.show_plan(self.plan, self._symbols())
            self._draw(layer)
            if self.problems or not self.plan:
                return self.footer.say("; ".join(self.problems) or "Type element symbols, "
                                       "e.g. 'Fe O'.", "error" if self.problems else "warn")
            return self.footer.say(eels.summary(self.plan), "ok")
        self.plan, self.problems = eds.plan(self.elements, axis, self._settings())
        self._draw(layer)
        self.footer.say(*eds.summary(self.plan, self.problems))

    def _symbols(self) -> list[str]:
        """The typed tokens that are element symbols, normalised ('fe' -> 'Fe')."""
        out = []
        for t in self.elements:
            try:
                out.append(normalize_symbol(t))
            except ValueError:
                pass
        return out

    def _windows_edited(self) -> None:
        """Redraw with the edited EELS windows; recompute the edge maps already extracted."""
        self._replan()
        layer = self.layer_combo.value
        has_maps = layer is not None and any(
            fusedem_md(ly).get("spectrum_layer") == layer.name
            and fusedem_md(ly).get("modality") == "EELS" for ly in self._viewer.layers)
        if has_maps and self.plan and not self.problems:
            self._reextract.start()

    def _draw(self, layer: Image) -> None:
        spectrum = self._sums.get(layer.data, self._energy_axis(layer).axis)
        if spectrum is None:
            err = self._sums.error(layer.data)
            msg = (f"could not read the spectrum:\n{err}" if err else
                   f"summing the spectrum of {np.prod(layer.data.shape[1:]):,} pixels…")
            return self.plot.show(None, None, message=msg)
        colours = {el: (*element_colour(el), 1.0) for el in self.plan}
        if eels.is_eels(fusedem_md(layer)):
            return eels.draw(self.plot, self._axis.energies_kev(), spectrum, self.plan, colours)
        self.plot.show(self._axis.energies_kev(), spectrum, self.plan, colours,
                       self._settings()["beam_energy_kv"])

    def _settings(self) -> dict[str, Any]:
        return {"beam_energy_kv": float(self.beam.value) or None,
                "resolution_ev": float(self.resolution.value)}

    # ------------------------------------------------------------------ workers
    def _alive(self) -> bool:
        try:
            self.native.objectName()
        except RuntimeError:  # the dock was deleted with its viewer
            return False
        return True

    def _on_sum_error(self, key: int, exc: BaseException) -> None:
        layer = self.layer_combo.value
        if layer is not None and id(layer.data) == key:
            self._draw(layer)
        self.footer.say(f"Could not read the spectrum image: {error_text(exc)}", "error", job=True)

    def _on_extract_error(self, exc: BaseException) -> None:
        self.footer.stop_ticking()
        self.footer.say(f"Extraction failed: {error_text(exc)}", "error", job=True)

    # ------------------------------------------------------------------ extraction
    def extract(self, *_: Any) -> bool:
        """Start extracting the maps of the typed elements in a worker thread.

        Returns False (with a message in the panel) when there is nothing to extract. The
        layers are added or updated when the worker returns (see :attr:`extracted`); a
        newer call supersedes a running one. EELS maps use the edited windows.
        """
        layer = self.layer_combo.value
        if layer is None or not self.plan:
            self.footer.say("Nothing to extract: choose a spectrum image and valid elements.",
                            "error", job=True)
            return False
        axis, elements = self._energy_axis(layer), list(self.plan)
        lazy = " (reading the file)" if is_lazy(layer.data) else ""
        self.footer.set_busy(True, f"Extracting {', '.join(elements)} from '{layer.name}'{lazy}…")
        if eels.is_eels(fusedem_md(layer)):
            fn, opts = extract_edge_maps, {"windows": {
                el: w for el, w in self.edge_windows.overrides.items() if el in self.plan}}
        else:
            fn, opts = extract_maps, self._settings()
        self._jobs.start("extract", fn, layer.data, axis, elements, axis=axis.axis,
                         binning=int(self.binning.value), **opts,
                         done=partial(self._on_extracted, layer), failed=self._on_extract_error,
                         finished=partial(self.footer.set_busy, False))
        return True

    def _on_extracted(self, layer: Image, res: ExtractedMaps) -> None:
        """Main thread: add or update the element layers of a finished extraction."""
        self.footer.stop_ticking()
        if layer not in self._viewer.layers:
            return self.footer.say(f"'{layer.name}' was closed during the extraction: nothing "
                                   "added.", "warn", job=True)
        axis = self._energy_axis(layer).axis
        self.extracted = [put_element_layer(self._viewer, layer, res, el, i, axis)
                          for i, el in enumerate(res.elements)]
        binned = f", {res.binning}×{res.binning} binned" if res.binning > 1 else ""
        notes = " ".join(getattr(res, "notes", None) or [])  # EELS: pixels whose fit failed
        self.footer.say(f"Extracted {', '.join(res.elements)} from '{layer.name}' (counts{binned}) "
                        f"in {seconds_text(self.footer.elapsed())}. {notes}".strip(),
                        "warn" if notes else "ok", job=True)
