"""The "Extract elemental maps" dock widget: EDS spectrum image -> element layers.

Pick a spectrum-image layer (``metadata["fusedem"]["role"] == "spectrum_image"``),
type element symbols, check the lines and windows on the summed spectrum, press
Extract: one image layer per element (counts) appears, ready for the fusion
widget. All maths is in :mod:`fusedem.spectra`; this module only wires it to napari.
"""
from __future__ import annotations

import re
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, LineEdit, PushButton
from napari.layers import Image
from napari.utils.colormaps import ensure_colormap

from ..elements import normalize_symbol
from ..spectra import (
    DEFAULT_RESOLUTION_EV,
    EnergyAxis,
    ExtractedMaps,
    LineWindows,
    extract_maps,
    plan_lines,
    sum_spectrum,
)
from ._spectrum_plot import SpectrumPlot, line_label
from .layers import ELEMENT_COLORMAPS, ELEMENT_OPACITY

_ERR, _OK, _WARN = "#ff7b7b", "#9ad29a", "#ffc66b"


def _fusedem_md(layer: Any) -> dict[str, Any]:
    md = getattr(layer, "metadata", None) or {}
    return md.get("fusedem") or {}


def is_spectrum_layer(layer: Any) -> bool:
    """True for a 3-D image layer tagged as a spectrum image with an energy axis."""
    md = _fusedem_md(layer)
    return (isinstance(layer, Image) and layer.ndim == 3 and md.get("role") == "spectrum_image"
            and isinstance(md.get("energy_axis"), dict))


def parse_elements(text: str) -> list[str]:
    """Tokens of a typed element list ('Cu, O pd;Ti' -> ['Cu', 'O', 'pd', 'Ti'])."""
    return [t for t in re.split(r"[,;\s]+", text or "") if t]


class SpectrumWidget(Container):
    """Dock panel: summed spectrum with line windows, element list, Extract button."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self._viewer = napari_viewer
        self._cache: dict[int, np.ndarray] = {}  # id(layer.data) -> sum spectrum
        self._current: Any = None
        self.plan: dict[str, LineWindows] = {}
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
        super().__init__(widgets=[self.layer_combo, self.elements_edit, self.beam,
                                  self.resolution, self.binning, self.plot, self.status,
                                  self.extract_button])
        self.status.native.setWordWrap(True)
        self.layer_combo.changed.connect(self._on_layer)
        for w in (self.elements_edit, self.beam, self.resolution):
            w.changed.connect(self._replan)
        self.extract_button.changed.connect(self.extract)
        events = napari_viewer.layers.events
        events.inserted.connect(self.reset_choices)
        events.removed.connect(self.reset_choices)
        self._on_layer(self.layer_combo.value)

    # ------------------------------------------------------------------ state
    def _spectrum_layers(self, _widget: Any = None) -> list[Image]:
        return [ly for ly in self._viewer.layers if is_spectrum_layer(ly)]

    def _energy_axis(self, layer: Image) -> EnergyAxis:
        return EnergyAxis.from_dict(_fusedem_md(layer)["energy_axis"])

    @property
    def elements(self) -> list[str]:
        """The typed element tokens."""
        return parse_elements(self.elements_edit.value)

    def set_elements(self, elements: list[str]) -> None:
        """Replace the element list (updates the plot)."""
        self.elements_edit.value = " ".join(elements)

    def _on_layer(self, layer: Image | None) -> None:
        if layer is not self._current and layer is not None:
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

    def _spectrum(self, layer: Image) -> np.ndarray:
        key = id(layer.data)
        if key not in self._cache:
            self._cache = {key: sum_spectrum(layer.data, axis=self._energy_axis(layer).axis)}
        return self._cache[key]

    def _replan(self, *_: Any) -> None:
        """Re-choose lines/windows for the typed elements and redraw the plot."""
        layer = self.layer_combo.value
        self.plan, problems = {}, []
        if layer is None:
            self.plot.show(None, None)
            return self._say("Open an EDS spectrum image (.emd, .bcf) to extract maps.", _WARN)
        md = _fusedem_md(layer)
        if "EELS" in str(md.get("signal_type") or "").upper():
            self.plot.show(None, None)
            return self._say("EELS spectrum image: X-ray line extraction applies to EDS only.", _ERR)
        try:
            axis = self._energy_axis(layer).with_size(layer.data.shape[md["energy_axis"].get("axis", 0)])
        except ValueError as exc:
            self.plot.show(None, None)
            return self._say(str(exc), _ERR)
        good = []
        for token in self.elements:
            try:
                plan_lines([token], axis, **self._settings())
                good.append(token)
            except ValueError as exc:
                problems.append(str(exc))
        if good:
            self.plan = plan_lines(good, axis, **self._settings())
        self.plot.show(axis.energies_kev(), self._spectrum(layer), self.plan,
                       {el: self._color(i) for i, el in enumerate(self.plan)},
                       self._settings()["beam_energy_kv"])
        self._report(problems)

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

    def _say(self, text: str, color: str) -> None:
        self.status.value = text
        self.status.native.setStyleSheet(f"color: {color};")

    @staticmethod
    def _color(i: int) -> tuple[float, ...]:
        cmap = ELEMENT_COLORMAPS[i % len(ELEMENT_COLORMAPS)]
        return tuple(float(c) for c in ensure_colormap(cmap).colors[-1])

    # ------------------------------------------------------------------ extraction
    def extract(self, *_: Any) -> list[Image]:
        """Extract the maps of the typed elements; add or update their layers."""
        layer = self.layer_combo.value
        if layer is None or not self.plan:
            self._say("Nothing to extract: choose a spectrum image and valid elements.", _ERR)
            return []
        axis = self._energy_axis(layer)
        try:
            res = extract_maps(layer.data, axis, list(self.plan), axis=axis.axis,
                               binning=int(self.binning.value), **self._settings())
        except ValueError as exc:
            self._say(str(exc), _ERR)
            return []
        out = [self._put_layer(layer, res, el, i) for i, el in enumerate(res.elements)]
        self._say(f"Extracted {', '.join(res.elements)} (counts, binning {res.binning}) "
                  f"from '{layer.name}'.", _OK)
        return out

    def _put_layer(self, si: Image, res: ExtractedMaps, el: str, i: int) -> Image:
        md = res.layer_metadata(el, source=_fusedem_md(si).get("source"))
        md["fusedem"]["spectrum_layer"] = si.name
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
                ly.reset_contrast_limits()
                return ly
        return self._viewer.add_image(
            data, name=el, metadata=md, scale=scale, translate=translate,
            units=[si.units[k] for k in spatial], colormap=ELEMENT_COLORMAPS[i % len(ELEMENT_COLORMAPS)],
            blending="additive", opacity=ELEMENT_OPACITY)
