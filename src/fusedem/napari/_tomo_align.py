"""The "Align" step of the "Fuse tilt series" panel: the chosen tilt layers aligned by
:func:`fusedem.tomo.align.align_pair`, as new layers '<name> aligned' (the user's layers are
never changed). Glue only: the maths is in :mod:`fusedem.tomo.align`; no Qt here."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ._tomo_layers import is_tilt_layer, tilt_meta

_KEEP = ("scale", "translate", "units", "colormap", "blending", "opacity", "contrast_limits")


def _tuple(layer: Any, data: np.ndarray, alignment: dict[str, Any]) -> tuple:
    kw = {k: getattr(layer, k) for k in _KEEP if hasattr(layer, k)}
    meta = copy.deepcopy(dict(getattr(layer, "metadata", {}) or {}))
    meta.setdefault("fusedem", {})["alignment"] = alignment
    meta["fusedem"]["aligned_from"] = layer.name
    return data, {**kw, "name": f"{layer.name} aligned", "metadata": meta}, "image"


def check_align_inputs(haadf_layer: Any, element_layers: list[Any]) -> dict[str, Any]:
    """element symbol -> layer, after the checks that need no computation (ValueError)."""
    if haadf_layer is None or not is_tilt_layer(haadf_layer, "haadf_tilts"):
        raise ValueError("Choose a HAADF tilt series to align.")
    if not element_layers:
        raise ValueError("Tick at least one element tilt series to align with the HAADF.")
    chem = [np.asarray(tilt_meta(ly)["angles"], float) for ly in element_layers]
    if any(a.shape != chem[0].shape or not np.allclose(a, chem[0]) for a in chem[1:]):
        raise ValueError("The element tilt series have different angles; they must share one set.")
    names = {}
    for ly in element_layers:
        names[str(tilt_meta(ly).get("element") or ly.name)] = ly
    if len(names) != len(element_layers):
        raise ValueError("Two of the ticked layers are the same element; tick each element once.")
    return names


def aligned_layer_data(haadf_layer: Any, element_layers: list[Any]) -> tuple[list[tuple], str]:
    """Layer data tuples (HAADF first, then the elements in order) of the aligned series, and
    a one-line summary; ValueError naming the problem (as the run's checks)."""
    from ..tomo.align import align_pair

    names = check_align_inputs(haadf_layer, element_layers)
    chem = np.asarray(tilt_meta(element_layers[0])["angles"], float)
    haadf, maps, report = align_pair(np.asarray(haadf_layer.data), tilt_meta(haadf_layer)["angles"],
                                     {el: np.asarray(ly.data) for el, ly in names.items()}, chem)
    rep = report.to_dict()
    out = [_tuple(haadf_layer, haadf, rep["haadf"])]
    for ly, key in zip(names.values(), maps):  # align_pair keeps the order
        out.append(_tuple(ly, maps[key], {k: v for k, v in rep.items() if k != "haadf"}))
    a = report.haadf
    summary = (f"Aligned: axis offset {a.axis_offset:+.2f} px, largest shift "
               f"{np.abs(a.shifts).max():.1f} px; chemical tilts matched within "
               f"{report.angle_gap.max():.1f}°.")
    return out, summary
