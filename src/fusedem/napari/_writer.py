"""napari writer contribution: save fused chemical maps, or spectrum-step layers.

Takes the selected image layers. When some have ``metadata["fusedem"]["role"]``
'fused', those are saved as maps (one per element), a 'haadf_model' layer as
the HAADF model; parameters, cost curves, inputs and sources come from the
fused layers' metadata (keys in :mod:`fusedem.napari.layers`); the format
follows the suffix (.h5/.hdf5 or .tif/.tiff). Otherwise denoised spectrum
images, EELS edge maps and 'at.% <El>' composition layers are saved with their
whole metadata (windows, fits, k-factors, PCA components) to an HDF5 layers
file (:func:`fusedem.io.save_layers`), which the reader opens again.
Existing files are never overwritten: the user is told and nothing is written.
"""
from __future__ import annotations

from typing import Any

from ..io import LayerToSave, save_layers, save_maps, saved_role


def _unit_str(u: Any) -> str:
    s = format(u, "~") if hasattr(u, "dimensionality") else str(u)
    return {"px": "pixel", "": "pixel"}.get(s, s)


def _fmeta(meta: dict[str, Any]) -> dict[str, Any]:
    return (meta.get("metadata") or {}).get("fusedem") or {}


def _is_fused(meta: dict[str, Any]) -> bool:
    role = _fmeta(meta).get("role")
    return role == "fused" or (role is None and str(meta.get("name", "")).startswith("fused "))


def write_fused(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write the fused layers among ``layer_data`` to ``path`` (else the spectrum-step
    layers, see the module docstring); returns the written paths or [] on failure."""
    from napari.utils.notifications import show_error

    from ._tomo_writer import is_volume, write_volumes

    if any(is_volume(m) for _, m, _ in layer_data):  # fused volumes: the tomography writer
        return write_volumes(path, layer_data)
    fused = [(d, m) for d, m, t in layer_data if t == "image" and _is_fused(m)]
    if not fused:
        steps = [(d, m) for d, m, t in layer_data if t == "image" and saved_role(_fmeta(m))]
        if steps:
            return _write_steps(path, steps, len(layer_data) - len(steps))
        show_error(f"fusedem: nothing saved to {path}: select the fused element layers "
                   "(made by 'Fuse chemical maps'), or denoised spectrum images, EELS edge "
                   "maps or 'at.%' composition layers, before saving")
        return []
    model = next((d for d, m, t in layer_data if _fmeta(m).get("role") == "haadf_model"), None)
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


def _write_steps(path: str, steps: list[tuple[Any, dict]], n_skipped: int) -> list[str]:
    layers = [LayerToSave(name=str(m.get("name")), data=d, fusedem=_fmeta(m),
                          scale=m.get("scale") or (), translate=m.get("translate") or (),
                          units=[_unit_str(u) for u in m.get("units") or ()])
              for d, m in steps]
    skipped = f" ({n_skipped} other selected layers not saved)" if n_skipped else ""
    return saved_or_notified(path, f"{len(layers)} layers ({', '.join(ly.name for ly in layers)})"
                             f"{skipped}", lambda: save_layers(path, layers))


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
