"""The "Composition (at.%)" action of the spectrum panel: Cliff–Lorimer of extracted maps.

The maths is :func:`fusedem.spectra.cliff_lorimer`; this module reads the k-factors,
finds the element layers extracted from the chosen spectrum image and adds one
``at.% <El>`` layer per element (atomic percent, role ``composition``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import Container, FloatSpinBox, Label, LineEdit, PushButton

from ..spectra import cliff_lorimer, parse_kfactors


def _md(layer: Any) -> dict[str, Any]:
    return ((getattr(layer, "metadata", None) or {}).get("fusedem")) or {}


class CompositionStep(Container):
    """k-factors, minimum counts, the Composition button and a status line.

    ``viewer``: the napari viewer; ``current()``: the chosen spectrum layer or None.
    """

    def __init__(self, viewer: Any, current: Callable[[], Any]) -> None:
        self._viewer, self._current = viewer, current
        self.kfactors = LineEdit(label="k-factors", tooltip=(
            "Cliff–Lorimer weight-fraction k-factors, one per extracted element, e.g. "
            "'Cu=1.0, O=2.1' (as in HyperSpy or the vendor software)."))
        self.min_counts = FloatSpinBox(label="min counts", min=0.0, max=1e6, value=1.0, tooltip=(
            "Pixels whose summed line counts are below this are masked: 0 in the at.% layers."))
        self.button = PushButton(text="Composition (at.%)", tooltip=(
            "Add one 'at.% <El>' layer per element from the maps extracted from the chosen "
            "spectrum image (Cliff–Lorimer, thin film)."))
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.layers: list[Any] = []
        super().__init__(widgets=[self.kfactors, self.min_counts, self.button, self.status])
        self.button.changed.connect(self.run)

    def _maps(self) -> tuple[dict[str, Any], Any]:
        si = self._current()
        if si is None:
            raise ValueError("choose a spectrum image and extract its maps first")
        found = {}
        for ly in self._viewer.layers:
            md = _md(ly)
            if md.get("role") == "element" and md.get("spectrum_layer") == si.name and md.get("element"):
                found.setdefault(md["element"], ly)
        if not found:
            raise ValueError(f"no element maps extracted from '{si.name}' yet: press Extract maps first")
        return found, si

    def run(self, *_: Any) -> bool:
        """Compute the composition and add/update the at.% layers; False with a message on error."""
        try:
            k = parse_kfactors(self.kfactors.value)
            layers, si = self._maps()
            comp = cliff_lorimer({e: np.asarray(ly.data) for e, ly in layers.items()}, k,
                                 min_counts=float(self.min_counts.value))
        except ValueError as exc:
            self.status.value = f"Composition failed: {exc}"
            return False
        self.layers = [self._put(layers[e], comp, e) for e in comp.atomic]
        self.status.value = comp.summary()
        return True

    def _put(self, src: Any, comp: Any, el: str) -> Any:
        md = comp.layer_metadata(el, source=_md(src).get("source"))
        md["fusedem"]["maps_layer"] = src.name
        name = f"at.% {el}"
        data = (100.0 * comp.atomic[el]).astype(np.float32)
        old = next((ly for ly in self._viewer.layers if ly.name == name), None)
        if old is not None:
            old.data, old.metadata = data, md
            return old
        return self._viewer.add_image(data, name=name, metadata=md, scale=src.scale,
                                      translate=src.translate, units=src.units,
                                      colormap="viridis", contrast_limits=(0.0, 100.0),
                                      visible=False)
