"""Choosing the fusion inputs from the viewer: the HAADF layer and the element layers.

The layer metadata contract of the readers is ``layer.metadata["fusedem"] =
{"role": "haadf" | "element" | "spectrum_image" | "fused" | ..., "element": "Dy", ...}``;
layers without it are classified by name.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import napari
from magicgui.widgets import CheckBox, ComboBox, Container, LineEdit

from ..elements import element_symbol_or_none
from ._ui import text_label
from .layers import constant_value

_HAADF_NAME = re.compile(r"^\s*(HAADF|ADF|HAADF[-_ ]?STEM)\b", re.IGNORECASE)
#: Roles that are never inputs of a (2-D) fusion: outputs, spectrum images (the extraction
#: panel makes maps of them), tilt series and volumes (the tilt-series panel's)
_NOT_INPUT = ("fused", "spectrum_image", "haadf_model", "haadf_tilts", "element_tilts",
              "volume")


def role_of(layer: Any) -> str | None:
    """The fusedem role stored in the layer's metadata, if any."""
    meta = getattr(layer, "metadata", None) or {}
    info = meta.get("fusedem") if isinstance(meta, dict) else None
    return info.get("role") if isinstance(info, dict) else None


def is_map_image(layer: Any) -> bool:
    """True for a single-channel 2-D Image layer or a (frame, ny, nx) series of them."""
    return (
        isinstance(layer, napari.layers.Image)
        and not layer.rgb
        and not layer.multiscale
        and layer.ndim in (2, 3)
    )


def looks_like_haadf(layer: Any) -> bool:
    """HAADF by metadata role, else by name (HAADF, ADF ...)."""
    role = role_of(layer)
    if role is not None:
        return role == "haadf"
    return bool(_HAADF_NAME.match(layer.name))


def element_of(layer: Any) -> str | None:
    """Element symbol from metadata, else from the layer name; None when unknown."""
    info = (getattr(layer, "metadata", None) or {}).get("fusedem") or {}
    sym = element_symbol_or_none(str(info.get("element", ""))) if isinstance(info, dict) else None
    return sym or (None if looks_like_haadf(layer) else element_symbol_or_none(layer.name))


def haadf_candidates(layers: Sequence[Any]) -> list[Any]:
    """Image layers usable as HAADF (2-D or frame series): the likely HAADF first, then
    images the reader found to be of the maps' scan (``metadata['fusedem']['structural']``)."""
    imgs = [ly for ly in layers if is_map_image(ly) and role_of(ly) not in _NOT_INPUT]
    info = lambda ly: (getattr(ly, "metadata", None) or {}).get("fusedem") or {}  # noqa: E731
    return sorted(imgs, key=lambda ly: (not looks_like_haadf(ly), not info(ly).get("structural")))


def default_use(layer: Any, sym: str | None, ticked: dict[str, str]) -> tuple[bool, str]:
    """Whether a new element row starts ticked, and why not: a map of a known element,
    not constant (an empty or switched-off channel), whose element no ticked row has yet
    (``ticked``: element -> layer name; e.g. a file with EDS and EELS maps of Fe)."""
    if sym is None or role_of(layer) not in (None, "element"):
        return False, ""
    value = constant_value(layer.data)
    if value is not None:
        return False, f"Not ticked: the map is constant ({value:g}), it carries no information."
    if sym in ticked:
        return False, f"Not ticked: '{ticked[sym]}' is the {sym} map ticked first."
    return True, ""


class ElementRow(Container):
    """One element layer: a 'use' checkbox with the layer name and its element symbol."""

    def __init__(self, layer: Any, ticked: dict[str, str] | None = None) -> None:
        self.layer = layer
        sym = element_of(layer)
        use, why = default_use(layer, sym, ticked or {})
        self.use = CheckBox(
            value=use, text=layer.name,
            tooltip="Fuse this elemental map." + (f" {why}" if why else ""),
        )
        self.symbol = LineEdit(
            value=sym or "", enabled=sym is None,
            tooltip="Element symbol of this map (e.g. Dy); editable when the layer name "
            "is not an element.",
        )
        self.symbol.native.setPlaceholderText("element?")
        self.symbol.native.setMaximumWidth(70)
        super().__init__(layout="horizontal", labels=False, widgets=[self.use, self.symbol])
        self.margins = (0, 0, 0, 0)

    @property
    def element(self) -> str | None:
        """The canonical element symbol typed or derived, or None."""
        return element_symbol_or_none(str(self.symbol.value))


class InputsPanel(Container):
    """HAADF chooser and element rows, rebuilt from the viewer's layers on :meth:`refresh`."""

    def __init__(self, viewer: napari.Viewer, on_change: Callable[[], None]) -> None:
        self._viewer = viewer
        self._on_change = on_change
        self._rows: dict[int, ElementRow] = {}  # id(layer) -> row, kept across refreshes
        self.haadf = ComboBox(
            label="HAADF", choices=self._haadf_choices, nullable=True,
            tooltip="The HAADF (Z-contrast) image of the same scan as the elemental maps. "
            "Without one, another detector image of the scan (BSE, SE) can stand in: the "
            "Z^γ model is for HAADF/ADF, so a BSE image is only a rough proxy.",
        )
        self.elements_box = Container(labels=False)
        self.elements_box.margins = (0, 0, 0, 0)
        super().__init__(
            labels=True,
            widgets=[self.haadf, text_label("Elemental maps (tick to fuse; symbol):"),
                     self.elements_box],
        )
        self.haadf.changed.connect(self._on_haadf)
        self.refresh()

    def _haadf_choices(self, *_: Any) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in haadf_candidates(self._viewer.layers)]

    def refresh(self) -> None:
        """Update choices after layers were added, removed or renamed."""
        current = self.haadf.value
        self.haadf.reset_choices()
        layers = [c[1] for c in self._haadf_choices()]
        if current is None or current not in layers:
            pick = next((ly for ly in layers if looks_like_haadf(ly)), None)
            with self.haadf.changed.blocked():
                self.haadf.value = pick
        self._rebuild_rows()

    def _on_haadf(self, *_: Any) -> None:
        self._rebuild_rows()

    def _rebuild_rows(self) -> None:
        haadf = self.haadf.value
        wanted = [ly for ly in self._viewer.layers
                  if is_map_image(ly) and ly is not haadf and role_of(ly) not in _NOT_INPUT
                  and role_of(ly) != "haadf"]
        rows = []
        ticked = {r.element: r.layer.name for r in self._rows.values()
                  if r.use.value and r.element and r.layer in wanted}
        for ly in wanted:
            row = self._rows.get(id(ly))
            if row is None or row.layer is not ly:
                row = ElementRow(ly, ticked)
                row.changed.connect(lambda *_: self._on_change())
                if row.use.value and row.element:
                    ticked[row.element] = ly.name
            row.use.text = ly.name
            rows.append(row)
        self._rows = {id(r.layer): r for r in rows}
        with self.elements_box.changed.blocked():
            while len(self.elements_box):
                self.elements_box.pop()
            self.elements_box.extend(rows)
        if not rows:
            self.elements_box.append(text_label("<i>no image layers besides the HAADF</i>"))
        self._on_change()

    def selected(self) -> list[tuple[Any, str | None]]:
        """(layer, element symbol or None) for each checked element row, in layer order."""
        return [(r.layer, r.element) for r in self._rows.values() if r.use.value]

    def has_maps(self) -> bool:
        """Whether any layer is offered as an elemental map (ticked or not), not counting
        the images a reader marked as structural (e.g. a lone STEM image)."""
        return any(role_of(r.layer) != "image" for r in self._rows.values())

    def input_layers(self) -> list[Any]:
        """The HAADF layer and the checked element layers (for 'removed' detection)."""
        out = [self.haadf.value] if self.haadf.value is not None else []
        return out + [ly for ly, _ in self.selected()]

    def other_images(self) -> list[Any]:
        """Image layers that are neither element maps nor outputs (SE, BSE, 'Ch 1' ...):
        the candidates to name when no HAADF is chosen."""
        return [ly for ly in haadf_candidates(self._viewer.layers)
                if role_of(ly) in ("image", "haadf") or (role_of(ly) is None
                                                         and element_of(ly) is None)]

    def set_running(self, running: bool) -> None:
        """Lock the choice of inputs during a run."""
        self.haadf.enabled = not running
        self.elements_box.enabled = not running
