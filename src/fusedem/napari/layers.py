"""Turn a :class:`fusedem.io.Dataset` into napari layer data tuples.

Appearance: the HAADF (or other detector image) is grey and opaque at the
bottom; each element map gets its own colormap from :data:`ELEMENT_COLORMAPS`
(in file order), additive blending and opacity 0.75, so the maps form a colour
composite over the HAADF straight after opening. Spectrum images (energy axis
first, so napari's slider walks energy) are added hidden when the file also
holds images or maps. ``scale``/``translate``/``units`` come from the file
(lengths in nm, energy in eV or keV), so layers of one scan line up and the
scale bar reads nanometres.

Layer ``metadata["fusedem"]`` keys (also in docs/layer-metadata.md):

- ``role``: 'haadf', 'element', 'image', 'spectrum_image', 'fused' or 'haadf_model'
- ``element``: element symbol ('Dy') or None; ``Z``: its atomic number or None
- ``source``: path of the file read; ``original_name``: the array's name in it
- ``energy_axis`` (spectrum images): {'name', 'offset', 'scale', 'units', 'size', 'axis'}
- when the file says so: ``signal_type`` ('EDS_TEM', 'EELS' ...), ``modality``
  ('EDS'/'EELS'), ``beam_energy_keV``, ``elements`` (listed in the file),
  ``energy_resolution_eV``, ``original_metadata`` (a subset of the file's metadata),
  ``calibration_from`` / ``original_offset`` (see :mod:`fusedem.io._instrument`)
- fused layers (written by the fusion widget, read by the writer): ``params``
  (FusionParams.to_dict()), ``costs`` ({'haadf','chem','tv'} -> list), ``weight``,
  ``inputs`` (names), ``sources`` (paths), ``iterations``, ``elapsed``
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..elements import ATOMIC_NUMBERS
from ..io import Dataset, DatasetLayer

#: Element colormaps, assigned in file order and cycled.
ELEMENT_COLORMAPS: tuple[str, ...] = ("red", "green", "blue", "magenta", "cyan", "yellow",
                                      "bop orange", "bop purple", "bop blue")
ELEMENT_OPACITY = 0.75
_ORDER = {"haadf": 0, "image": 1, "haadf_model": 2, "spectrum_image": 3, "element": 4, "fused": 5}

LayerDataTuple = tuple[Any, dict[str, Any], str]


def contrast_limits(data: Any, lo: float = 0.5, hi: float = 99.5) -> tuple[float, float]:
    """Robust (percentile) display range; subsamples big or lazy arrays to ~1e6 values."""
    step = max(1, int(np.ceil((int(np.prod(data.shape)) / 1e6) ** (1 / max(data.ndim, 1)))))
    sub = data[(slice(None, None, step),) * data.ndim]
    if hasattr(sub, "compute"):
        sub = sub.compute()
    sub = np.asarray(sub, dtype=np.float64)
    sub = sub[np.isfinite(sub)]
    if sub.size == 0:
        return (0.0, 1.0)
    a, b = (float(v) for v in np.percentile(sub, [lo, hi]))
    if b <= a:
        a, b = float(sub.min()), float(sub.max())
    return (a, b) if b > a else (a, a + 1.0)


def fusedem_metadata(layer: DatasetLayer, source: str) -> dict[str, Any]:
    """The ``metadata["fusedem"]`` dict for one dataset layer (keys in the module docstring)."""
    md = {k: v for k, v in layer.metadata.items() if k != "original"}
    if "original" in layer.metadata:
        md["original_metadata"] = layer.metadata["original"]
    md.update(role=layer.role, element=layer.element,
              Z=ATOMIC_NUMBERS.get(layer.element) if layer.element else None)
    md.setdefault("source", source)
    md.setdefault("original_name", layer.name)
    if layer.energy_axis is not None:
        md["energy_axis"] = dict(layer.energy_axis)
    return md


def layer_tuple(layer: DatasetLayer, source: str, colormap: str | None = None,
                visible: bool = True) -> LayerDataTuple:
    """One napari image layer data tuple for ``layer``."""
    kw: dict[str, Any] = {
        "name": layer.name, "scale": layer.scale, "translate": layer.translate, "units": layer.units,
        "metadata": {"fusedem": fusedem_metadata(layer, source)},
        "contrast_limits": contrast_limits(layer.data), "visible": visible,
    }
    if layer.role in ("element", "fused"):
        kw.update(colormap=colormap or ELEMENT_COLORMAPS[0], blending="additive", opacity=ELEMENT_OPACITY)
    elif layer.role == "spectrum_image":
        kw.update(colormap="inferno", blending="additive", opacity=ELEMENT_OPACITY)
    else:
        kw.update(colormap="gray", blending="translucent", opacity=1.0)
    return (layer.data, kw, "image")


def dataset_to_layer_data(ds: Dataset) -> list[LayerDataTuple]:
    """Layer data tuples for every layer of ``ds``: images first (bottom), element maps on top."""
    layers = sorted(ds.layers, key=lambda ly: _ORDER.get(ly.role, 9))
    has_2d = any(ly.role != "spectrum_image" for ly in layers)
    out, i = [], 0
    for ly in layers:
        cmap = None
        if ly.role in ("element", "fused"):
            cmap = ELEMENT_COLORMAPS[i % len(ELEMENT_COLORMAPS)]
            i += 1
        visible = not (ly.role == "spectrum_image" and has_2d)
        out.append(layer_tuple(ly, ds.source, cmap, visible))
    return out
