"""The ``fused <El>`` output layers: created on a run's first frame, then updated in place.

Only the main thread calls into this module. Contrast limits stay fixed while a run
streams (a robust range of its first frame, so the display does not flicker) and are
fitted to the result when the run ends (:meth:`FusedLayers.finish`); a layer whose
contrast or colormap the user changed keeps those settings across frames and runs.
Each element has the same colour as its input layer (:func:`.layers.element_colormap`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import napari
import numpy as np

from .layers import contrast_limits, element_colormap


def fused_name(symbol: str) -> str:
    return f"fused {symbol}"


class FusedLayers:
    """The set of fused layers of the current run, one per element."""

    def __init__(self, viewer: napari.Viewer, limits: Any = contrast_limits) -> None:
        """``limits(array) -> (lo, hi)``: the display range of a new or finished layer."""
        self._viewer = viewer
        self._limits = limits
        self.layers: dict[str, napari.layers.Image] = {}
        self._touched: set[int] = set()  # id() of layers whose display the user changed
        self._quiet = False  # True while this class changes display settings itself
        self._run = 0
        self._placement: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}

    def begin(self, symbols: list[str], *, keep_previous: bool, placement: Mapping[str, Any],
              meta: Mapping[str, Any]) -> None:
        """Prepare a new run: ``placement`` (scale, translate, units) and shared metadata.

        Without ``keep_previous`` the previous layers are reused (same element) or removed;
        with it they stay in the viewer, renamed ``fused <El> (run k)``.
        """
        previous, self._run = self.layers, self._run + 1
        self.layers = {}
        for sym, layer in previous.items():
            if layer not in self._viewer.layers:
                continue
            if keep_previous:
                layer.name = f"{fused_name(sym)} (run {self._run - 1})"
            elif sym in symbols:
                self.layers[sym] = layer
            else:
                self._viewer.layers.remove(layer)
        self._placement = dict(placement)
        self._meta = dict(meta)
        self._fresh = set(symbols)  # layers whose contrast the first frame sets

    def update(self, maps: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
        """Show one frame: ``maps`` element -> (ny, nx) array owned by the caller's state."""
        for k, (sym, arr) in enumerate(maps.items()):
            layer = self.layers.get(sym)
            meta = {"fusedem": {**self._meta, **info.get(sym, {}), "element": sym}}
            if layer is not None and layer not in self._viewer.layers:
                continue  # the user deleted it mid-run: leave it deleted
            self._quiet = True
            try:
                if layer is None:
                    layer = self._add(sym, arr, k, meta)
                else:
                    if sym in self._fresh:  # first frame of a run on a reused layer
                        for key, value in self._placement.items():
                            setattr(layer, key, value)
                    current = layer.data
                    if sym not in self._fresh and current.shape == arr.shape \
                            and current.dtype == arr.dtype:
                        current[...] = arr  # cheaper than a new array: no dims update
                        layer.refresh()
                    else:
                        layer.data = arr.copy()
                    layer.metadata = meta
                    if sym in self._fresh and id(layer) not in self._touched:
                        layer.contrast_limits = self._limits(arr)
            finally:
                self._quiet = False
            self._fresh.discard(sym)

    def _add(self, sym: str, arr: np.ndarray, k: int, meta: dict) -> napari.layers.Image:
        layer = self._viewer.add_image(
            arr.copy(), name=fused_name(sym), colormap=element_colormap(sym, k),
            blending="additive", contrast_limits=self._limits(arr), metadata=meta,
            **self._placement,
        )
        self.layers[sym] = layer
        for ev in (layer.events.contrast_limits, layer.events.colormap, layer.events.gamma):
            ev.connect(lambda *_, _id=id(layer): self._mark_touched(_id))
        return layer

    def _mark_touched(self, layer_id: int) -> None:
        if not self._quiet:
            self._touched.add(layer_id)

    def is_touched(self, layer: Any) -> bool:
        """True once the user changed the layer's contrast, gamma or colormap."""
        return id(layer) in self._touched

    def finish(self) -> None:
        """End of a run: fit the limits of the layers the user has not adjusted."""
        self._fit(forget_user=False)

    def reset_contrast(self) -> None:
        """Fit the contrast limits of the current layers to their data (the user's too)."""
        self._fit(forget_user=True)

    def _fit(self, forget_user: bool) -> None:
        self._quiet = True
        try:
            for layer in self.layers.values():
                if layer not in self._viewer.layers:
                    continue
                if forget_user:
                    self._touched.discard(id(layer))
                if id(layer) not in self._touched:
                    layer.contrast_limits = self._limits(np.asarray(layer.data))
        finally:
            self._quiet = False
