"""HDF5 files of spectrum-step layers: denoised spectrum images, EELS edge maps, composition.

Layout (``fmt`` HDF5 only)::

    /                attrs: fusedem_layers (format version 1), fusedem_version, created
    /layers/<name>   float32 array (2-D map or (n_energy, ny, nx) cube), gzip; attrs:
                     role, metadata (JSON: the layer's whole ``metadata["fusedem"]`` —
                     windows, fits, k-factors, PCA settings …), scale, translate (per
                     axis), units (JSON list, per axis)

Reading gives the layers back with the same names, roles, metadata and placement,
so a denoised cube can be extracted from again and maps keep their provenance.
Writes are atomic and never overwrite (as :func:`fusedem.io.save_maps`).
"""
from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write
from ._dataset import DatasetLayer, ReadError

FORMAT_VERSION = 1
#: Roles this file is for (an EELS edge map made in the panel has role 'element' + 'edge').
SAVED_ROLES = ("denoised_spectrum_image", "edge_map", "composition")


@dataclass
class LayerToSave:
    """One layer for :func:`save_layers`: data (numpy or dask), ``metadata["fusedem"]``,
    and per-axis scale, translate and units (as strings)."""

    name: str
    data: Any
    fusedem: Mapping[str, Any]
    scale: Sequence[float] = ()
    translate: Sequence[float] = ()
    units: Sequence[str] = ()


def saved_role(fusedem: Mapping[str, Any]) -> str | None:
    """The role under which a layer's metadata is saved here, or None when it is not."""
    role = fusedem.get("role")
    if role in SAVED_ROLES:
        return role
    if role == "element" and fusedem.get("edge") and fusedem.get("modality") == "EELS":
        return "edge_map"
    return None


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def save_layers(path: str | os.PathLike, layers: Sequence[LayerToSave], *,
                overwrite: bool = False) -> list[Path]:
    """Write ``layers`` to an HDF5 layers file (layout in the module docstring).

    Raises ValueError when nothing is given, a suffix is not .h5/.hdf5, or two layers
    share a name; FileExistsError when ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"{path}: denoised spectrum images, edge maps and composition maps "
                         "are saved to HDF5: use an .h5 or .hdf5 name")
    if not layers:
        raise ValueError(f"{path}: nothing to save")
    names = [ly.name for ly in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: two layers share a name ({names}); rename one first")
    from .. import __version__

    def write() -> bytes:
        import h5py

        with h5py.File(f"fusedem-layers-{id(layers)}.h5", "w", driver="core",
                       backing_store=False) as f:
            f.attrs.update({"fusedem_layers": FORMAT_VERSION, "fusedem_version": __version__,
                            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                                timespec="seconds")})
            g = f.create_group("layers", track_order=True)
            for ly in layers:
                data = ly.data.compute() if hasattr(ly.data, "compute") else ly.data
                ds = g.create_dataset(ly.name, data=np.asarray(data, np.float32),
                                      compression="gzip", compression_opts=4, fletcher32=True)
                nd = ds.ndim
                ds.attrs.update({
                    "role": str(ly.fusedem.get("role")),
                    "metadata": json.dumps(dict(ly.fusedem), default=_jsonable),
                    "scale": [float(s) for s in ly.scale] if ly.scale else [1.0] * nd,
                    "translate": [float(t) for t in ly.translate] if ly.translate else [0.0] * nd,
                    "units": json.dumps([str(u) for u in ly.units] or ["pixel"] * nd)})
            f.flush()
            return bytes(f.id.get_file_image())

    return [atomic_write(path, overwrite, write)]


def read_layers_file(path: str | os.PathLike, f: Any) -> list[DatasetLayer]:
    """Layers of an open layers file (``f``: h5py.File); ReadError naming a bad entry."""
    src = str(path)
    group = f.get("layers")
    if group is None or not len(group):
        raise ReadError(f"{src}: a fusedem layers file without layers")
    out = []
    for name, ds in group.items():
        try:
            md = json.loads(ds.attrs["metadata"])
            units = tuple(json.loads(ds.attrs["units"]))
            scale, translate = tuple(ds.attrs["scale"]), tuple(ds.attrs["translate"])
        except (KeyError, ValueError) as exc:
            raise ReadError(f"{src}: layer {name!r} has no readable metadata ({exc})") from None
        role = md.pop("role", None) or str(ds.attrs.get("role"))
        element = md.pop("element", None)
        md.pop("Z", None)
        energy_axis = md.pop("energy_axis", None)
        out.append(DatasetLayer(name=name, data=ds[()], role=role, element=element, scale=scale,
                                units=units, translate=translate, energy_axis=energy_axis,
                                metadata=md))
    return out
