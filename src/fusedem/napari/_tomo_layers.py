"""Tilt series as napari layers (reader contribution) and the metadata the tomography panel
reads back.

A tilt series opens as one image stack per series, (n_tilts, ny, nx), so napari's slider
walks the tilts: the HAADF grey, each element in its fixed colour (as in 2-D), additive.
``metadata["fusedem"]`` carries ``role`` 'haadf_tilts' / 'element_tilts', ``element``,
``Z``, ``angles`` (degrees, one per tilt), ``tilt_axis`` ('y'), ``pixel_size_nm``,
``source`` (docs/layer-metadata.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..elements import ATOMIC_NUMBERS
from .layers import ELEMENT_OPACITY, LayerDataTuple, contrast_limits, element_colormap

TILT_ROLES = ("haadf_tilts", "element_tilts")


def tilt_layer_data(series: Any) -> list[LayerDataTuple]:
    """Layer data tuples of a :class:`fusedem.tomo.io.TiltSeries` (HAADF first)."""
    px = series.pixel_size or 1.0
    unit = "nm" if series.pixel_size else "pixel"
    # the tilt axis is an index; it carries the spatial unit only because napari wants one
    # unit per viewer axis, shared with the volumes (ny, nz, nx) the panel adds
    common = {"scale": (1.0, px, px), "units": (unit, unit, unit)}
    base = {"source": series.source, "tilt_axis": "y", "pixel_size_nm": series.pixel_size,
            "notes": list(series.notes)}
    out: list[LayerDataTuple] = [(series.haadf, {
        **common, "name": "HAADF tilts", "colormap": "gray", "blending": "translucent",
        "contrast_limits": contrast_limits(series.haadf),
        "metadata": {"fusedem": {**base, "role": "haadf_tilts", "element": None, "Z": None,
                                 "angles": [float(a) for a in series.haadf_angles]}}}, "image")]
    for i, (el, stack) in enumerate(series.maps.items()):
        out.append((stack, {
            **common, "name": f"{el} tilts", "colormap": element_colormap(el, i),
            "blending": "additive", "opacity": ELEMENT_OPACITY,
            "contrast_limits": contrast_limits(stack),
            "metadata": {"fusedem": {**base, "role": "element_tilts", "element": el,
                                     "Z": ATOMIC_NUMBERS.get(el),
                                     "angles": [float(a) for a in series.chem_angles]}}}, "image"))
    return out


def tilt_meta(layer: Any) -> dict[str, Any]:
    """The fusedem metadata of a layer ({} when none)."""
    return ((getattr(layer, "metadata", None) or {}).get("fusedem") or {})


def is_tilt_layer(layer: Any, role: str) -> bool:
    """True for an image layer of a tilt series with this role and one angle per tilt."""
    md = tilt_meta(layer)
    data = getattr(layer, "data", None)
    return (md.get("role") == role and data is not None and np.ndim(data) == 3
            and len(md.get("angles") or ()) == data.shape[0])


def angles_text(angles: Any) -> str:
    """'37 tilts, −72° … 72° (step 4°)' or '7 tilts, −60° … 60°' for uneven steps."""
    a = np.asarray(angles, dtype=float)
    if a.size == 0:
        return "no angles"
    text = f"{a.size} tilts, {a.min():g}° … {a.max():g}°"
    steps = np.diff(np.sort(a))
    if steps.size and np.allclose(steps, steps[0], atol=1e-3):
        text += f" (step {steps[0]:g}°)"
    return text


def volume_layer_data(saved: Any, source: str) -> list[LayerDataTuple]:
    """Layer data tuples of a saved result (:func:`fusedem.tomo.io.load_tomo_result`): one
    3-D ``fused <El>`` layer per element, drawn as in the panel."""
    md = saved.metadata
    px = float(md.get("voxel_size") or 0.0) or None
    unit = "nm" if px else "pixel"
    region = md.get("region") or {}
    y0 = (region.get("slices") or [0])[0]
    x0 = (region.get("crop") or region.get("columns") or [0])[0]
    s = px or 1.0
    common = {"params": saved.params, "costs": {k: v.tolist() for k, v in saved.costs.items()},
              "haadf_angles": saved.haadf_angles.tolist(), "chem_angles": saved.chem_angles.tolist(),
              "region": region, "voxel_size_nm": px, "sources": md.get("sources", []),
              "source": source, "role": "volume"}
    elements = md.get("elements") or {}
    return [(vol, {"name": f"fused {el}", "scale": (s, s, s), "units": (unit,) * 3,
                   "translate": (y0 * s, 0.0, x0 * s), "colormap": element_colormap(el, i),
                   "blending": "additive", "rendering": "attenuated_mip",
                   "contrast_limits": contrast_limits(vol),
                   "metadata": {"fusedem": {**common, "element": el, "Z": elements.get(el)}}},
             "image") for i, (el, vol) in enumerate(saved.volumes.items())]


def read_tilt_series_layers(path: str) -> list[tuple]:
    """Reader function: the tilt series at ``path`` as layers; notify and ``[(None,)]`` on failure."""
    from napari.utils.notifications import show_error, show_info

    from ..tomo._io_results import is_tomo_result
    from ..tomo.io import load_tilt_series, load_tomo_result
    from ._reader import reason_first

    try:
        if is_tomo_result(path):
            return volume_layer_data(load_tomo_result(path), str(path))
        series = load_tilt_series(path)
    except Exception as exc:  # a bad file never crashes the viewer
        show_error(reason_first(str(exc) if isinstance(exc, ValueError)
                                else f"{type(exc).__name__}: {exc}", path))
        return [(None,)]
    for note in series.notes:
        show_info(f"fusedem: {note}")
    return tilt_layer_data(series)


def get_tilt_series_reader(path: Any) -> Any:
    """Reader contribution: claims tilt-series bundles, .mat files and MRC stacks/folders."""
    from ..tomo.io import sniff_tilt_series

    if not isinstance(path, str):
        path = path[0] if len(path) == 1 else None
    from ..tomo._io_results import is_tomo_result

    ok = path is not None and (sniff_tilt_series(path) or is_tomo_result(path))
    return read_tilt_series_layers if ok else None
