"""napari writer for fused volumes (layers with ``metadata["fusedem"]["role"] == "volume"``,
made by the "Fuse tilt series" panel): ``.h5`` -> one result file with angles, parameters,
costs and provenance; ``.mrc`` / ``.tif`` -> one file per element, ``<name>_<El>.<ext>``.
Existing files are never overwritten: the user is told and nothing is written."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..tomo.io import save_tomo_result, save_volumes


def _fmeta(meta: dict[str, Any]) -> dict[str, Any]:
    return (meta.get("metadata") or {}).get("fusedem") or {}


def is_volume(meta: dict[str, Any]) -> bool:
    """True for the layer attributes of a fused volume."""
    return _fmeta(meta).get("role") == "volume"


def write_volumes(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write the volume layers among ``layer_data``; returns the paths written ([] on failure)."""
    from napari.utils.notifications import show_error

    from ._writer import saved_or_notified

    vols = [(d, m) for d, m, t in layer_data if t == "image" and is_volume(m)]
    if not vols:
        show_error(f"fusedem: nothing saved to {path}: select the fused volume layers "
                   "(made by 'Fuse tilt series') before saving")
        return []
    first = _fmeta(vols[0][1])
    volumes = {(_fmeta(m).get("element") or m.get("name")): d for d, m in vols}
    voxel = first.get("voxel_size_nm")
    p = Path(path)
    suffix = p.suffix.lower()
    info = {k: first.get(k) for k in ("params", "sources", "region", "haadf_angles", "chem_angles")}
    if suffix in (".h5", ".hdf5"):
        result = SimpleNamespace(
            volumes=volumes, costs=first.get("costs") or {}, params=first.get("params") or {},
            haadf_angles=first.get("haadf_angles") or [], chem_angles=first.get("chem_angles") or [],
            elements={el: _fmeta(m).get("Z") for el, (_, m) in zip(volumes, vols)},
            elapsed=float(first.get("elapsed") or 0.0), iterations=int(first.get("iteration") or 0),
            autotune=None)

        def save() -> list:
            return [save_tomo_result(p, result, sources=first.get("sources") or (),
                                     voxel_size=voxel, extra={"region": first.get("region")})]
    elif suffix in (".mrc", ".tif", ".tiff"):
        def save() -> list:
            return save_volumes(p.parent, p.stem, volumes, "mrc" if suffix == ".mrc" else "tiff",
                                voxel_size=voxel, info=info)
    else:
        show_error(f"fusedem: cannot save volumes as {suffix!r}; use .h5, .mrc or .tif")
        return []
    return saved_or_notified(path, f"{len(volumes)} volume(s)", save)
