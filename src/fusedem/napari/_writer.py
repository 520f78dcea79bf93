"""napari writer contribution: save fused chemical maps (HDF5 or ImageJ TIFF).

Takes the selected image layers; the ones whose ``metadata["fusedem"]["role"]``
is 'fused' are saved as maps (one per element), a 'haadf_model' layer as the
HAADF model; parameters, cost curves, inputs and sources come from the fused
layers' metadata (keys in :mod:`fusedem.napari.layers`). The file format
follows the suffix (.h5/.hdf5 or .tif/.tiff). Existing files are never
overwritten: the user is told and nothing is written.
"""
from __future__ import annotations

from typing import Any

from ..io import save_maps


def _unit_str(u: Any) -> str:
    s = format(u, "~") if hasattr(u, "dimensionality") else str(u)
    return {"px": "pixel", "": "pixel"}.get(s, s)


def _fmeta(meta: dict[str, Any]) -> dict[str, Any]:
    return (meta.get("metadata") or {}).get("fusedem") or {}


def _is_fused(meta: dict[str, Any]) -> bool:
    role = _fmeta(meta).get("role")
    return role == "fused" or (role is None and str(meta.get("name", "")).startswith("fused "))


def write_fused(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write the fused layers among ``layer_data`` to ``path``; returns [path] or [] on failure."""
    from napari.utils.notifications import show_error

    from ._tomo_writer import is_volume, write_volumes

    if any(is_volume(m) for _, m, _ in layer_data):  # fused volumes: the tomography writer
        return write_volumes(path, layer_data)
    fused = [(d, m) for d, m, t in layer_data if t == "image" and _is_fused(m)]
    model = next((d for d, m, t in layer_data if _fmeta(m).get("role") == "haadf_model"), None)
    if not fused:
        show_error(f"fusedem: nothing saved to {path}: select the fused element layers "
                   "(made by 'Fuse chemical maps') before saving")
        return []
    first = _fmeta(fused[0][1])
    maps, elements, weights = {}, {}, {}
    for data, meta in fused:
        fm = _fmeta(meta)
        sym = fm.get("element") or meta.get("name")
        maps[sym] = data
        if fm.get("Z") is not None:
            elements[sym] = int(fm["Z"])
        if fm.get("weight") is not None:
            weights[sym] = float(fm["weight"])
    meta0 = fused[0][1]
    units = [_unit_str(u) for u in meta0.get("units") or ()][-2:] or None
    scale = [float(s) for s in meta0.get("scale", (1.0, 1.0))][-2:]
    translate = [float(t) for t in meta0.get("translate", (0.0, 0.0))][-2:]
    extra = {k: first[k] for k in ("iterations", "elapsed", "input_ranges", "autotune")
             if first.get(k) is not None}
    return saved_or_notified(path, f"{len(maps)} fused maps", lambda: save_maps(
        path, maps, haadf_model=model, costs=first.get("costs"), params=first.get("params"),
        elements=elements, weights=weights, inputs=first.get("inputs"),
        sources=first.get("sources") or (), scale=scale, units=units, translate=translate,
        extra=extra))


def saved_or_notified(path: str, what: str, save: Any) -> list[str]:
    """Run ``save()`` (returning the paths written) and tell the user how it went; [] when
    it failed (an existing file is never replaced: FileExistsError)."""
    from napari.utils.notifications import show_error, show_info

    try:
        written = save()
    except FileExistsError as exc:
        show_error(f"fusedem: {exc}")
        return []
    except (OSError, ValueError) as exc:
        show_error(f"fusedem could not save {path}: {exc}")
        return []
    show_info(f"fusedem: saved {what} to {', '.join(str(w) for w in written)}")
    return [str(w) for w in written]
