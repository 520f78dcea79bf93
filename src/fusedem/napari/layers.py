"""Turn a :class:`fusedem.io.Dataset` into napari layer data tuples.

Appearance: the HAADF (or other detector image) is grey and opaque at the
bottom; each element map gets its element's fixed colour (:func:`element_colormap`,
from :data:`fusedem.elements.ELEMENT_COLOURS`), additive blending and opacity 0.75,
so the maps form a colour composite over the HAADF straight after opening.
Spectrum images (energy axis first, so napari's slider walks energy) are added
hidden when the file also holds images or maps. ``scale``/``translate``/``units`` come from the file
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

from ..elements import ATOMIC_NUMBERS, element_colour, element_symbol_or_none
from ..io import Dataset, DatasetLayer

#: Colormaps of maps whose element is unknown, assigned in order and cycled.
ELEMENT_COLORMAPS: tuple[str, ...] = ("red", "green", "blue", "magenta", "cyan", "yellow",
                                      "bop orange", "bop purple", "bop blue")
ELEMENT_OPACITY = 0.75
_ORDER = {"haadf": 0, "image": 1, "haadf_model": 2, "spectrum_image": 3,
          "denoised_spectrum_image": 3, "element": 4, "edge_map": 4, "fused": 5, "composition": 6}
_MAP_ROLES = ("element", "edge_map", "fused")  #: shown in their element's colour
_CUBE_ROLES = ("spectrum_image", "denoised_spectrum_image")

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
    return (a, b) if b > a else (a - 1.0, a + 1.0)  # constant: mid-grey, not black


def constant_value(data: Any) -> float | None:
    """The value of an in-memory image whose pixels are all equal, else None (lazy arrays:
    None, they are not read here)."""
    if not isinstance(data, np.ndarray) or data.size == 0 or data.dtype.kind not in "biuf":
        return None
    lo, hi = data.min(), data.max()
    return float(lo) if lo == hi else None


def element_colormap(symbol: str | None, index: int = 0) -> Any:
    """The colormap of an element (black to its fixed colour), the same in every layer
    and file; for an unknown element the ``index``-th of :data:`ELEMENT_COLORMAPS`."""
    from napari.utils.colormaps import Colormap

    sym = element_symbol_or_none(symbol) if symbol else None
    if sym is None:
        return ELEMENT_COLORMAPS[index % len(ELEMENT_COLORMAPS)]
    rgb = element_colour(sym)
    return Colormap(colors=[(0.0, 0.0, 0.0, 1.0), (*rgb, 1.0)], name=f"fusedem {sym}",
                    display_name=sym)


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


def layer_tuple(layer: DatasetLayer, source: str, colormap: Any = None,
                visible: bool = True) -> LayerDataTuple:
    """One napari image layer data tuple for ``layer``."""
    kw: dict[str, Any] = {
        "name": layer.name, "scale": layer.scale, "translate": layer.translate, "units": layer.units,
        "metadata": {"fusedem": fusedem_metadata(layer, source)},
        "contrast_limits": contrast_limits(layer.data), "visible": visible,
    }
    if layer.role in _MAP_ROLES:
        kw.update(colormap=colormap or element_colormap(layer.element), blending="additive", opacity=ELEMENT_OPACITY)
    elif layer.role in _CUBE_ROLES:
        kw.update(colormap="inferno", blending="additive", opacity=ELEMENT_OPACITY)
    elif layer.role == "composition":  # at.% of one element
        kw.update(colormap="viridis", blending="translucent", opacity=1.0)
    else:
        kw.update(colormap="gray", blending="translucent", opacity=1.0)
    return (layer.data, kw, "image")


def constant_images(ds: Dataset) -> list[str]:
    """Messages naming the images of ``ds`` that hold one value only (a saturated or
    switched-off detector): shown grey, and useless for fusion."""
    out = []
    for ly in ds.layers:
        value = None if ly.role == "spectrum_image" else constant_value(ly.data)
        if value is not None:
            what = ("it cannot serve as the HAADF of a fusion" if ly.role == "haadf"
                    else "it carries no information")
            out.append(f"'{ly.name}' is constant ({value:g} everywhere: a saturated or "
                       f"switched-off detector?), shown grey; {what}. ({ds.source})")
    return out


def dataset_to_layer_data(ds: Dataset) -> list[LayerDataTuple]:
    """Layer data tuples for every layer of ``ds``: images first (bottom), element maps on top."""
    layers = sorted(ds.layers, key=lambda ly: _ORDER.get(ly.role, 9))
    has_2d = any(ly.role not in _CUBE_ROLES for ly in layers)
    out, i = [], 0
    for ly in layers:
        cmap = None
        if ly.role in _MAP_ROLES:
            cmap = element_colormap(ly.element, i)
            i += ly.element is None
        visible = not (ly.role in _CUBE_ROLES and has_2d)
        out.append(layer_tuple(ly, ds.source, cmap, visible))
    return out
