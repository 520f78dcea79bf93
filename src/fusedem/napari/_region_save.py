"""The fusion panel's region and save actions (a mixin of :class:`FusionWidget`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import napari

from ._crop import region_layer_kwargs
from ._run_controller import save_run
from ._ui import ask_save_path

_ERR, _OK = "#ff7b7b", "#9ad29a"


class RegionAndSave:
    """``select_region_layer`` / 'Whole image' and ``save`` / 'Save…' of the fusion panel.

    Expects the panel's ``_viewer``, ``inputs``, ``region_label``, ``result``, ``_plan``,
    ``_region_layer()``, ``_revalidate()`` and ``_say()``.
    """

    def select_region_layer(self, *_: Any) -> napari.layers.Shapes:
        """Create or select the 'fusion region' Shapes layer, ready to draw a rectangle."""
        layer = self._region_layer()
        if layer is None:
            layer = self._viewer.add_shapes(**region_layer_kwargs(self.inputs.haadf.value))
        self._viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        self.region_label.value = ("Drag a rectangle on the image; the fusion runs inside it. "
                                   "'Whole image' removes it.")
        return layer

    def _clear_region(self, *_: Any) -> None:
        layer = self._region_layer()
        if layer is not None and len(layer.data):
            layer.data = []
        self._revalidate()

    def save(self, path: str | Path, fmt: str | None = None,
             overwrite: bool = False) -> list[Path]:
        """Write the last result through :func:`fusedem.io.save_result`; returns the paths.

        ``fmt`` 'h5' or 'tiff' (default: from the suffix); existing files are kept unless
        ``overwrite``.
        """
        if self.result is None or self._plan is None:
            raise ValueError("Nothing to save yet: run the fusion first.")
        return save_run(path, self.result, self._plan, fmt=fmt, overwrite=overwrite)

    def _save_dialog(self, *_: Any) -> None:
        answer = ask_save_path(self.native)
        if answer is None:
            return
        path, fmt = answer
        try:  # the dialog already asked before replacing an existing file
            out = self.save(path, fmt=fmt, overwrite=True)
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the user
            self._say(f"Saving failed: {exc}", _ERR)
            return
        self._say("Saved " + ", ".join(str(p) for p in out) + ".", _OK)
