"""Saving fused volumes (HDF5 with provenance, MRC and multi-page TIFF per element) and
reading the HDF5 back.

HDF5 layout (:func:`save_tomo_result`)::

    /                 attrs: fusedem_result_tomo (format version 1), fusedem_version,
                      created (ISO 8601), params (JSON), elements (JSON symbol -> Z),
                      sources (JSON list), elapsed (s), iterations, voxel_size (nm; 0 when
                      uncalibrated), axes "y,z,x", geometry (the projection convention),
                      autotune (JSON, when chosen automatically), and what the caller adds
                      (region, slabs, input_digest ...)
    /volumes/<El>     (ny, nz, nx) float32, one chunk per slice y, gzip
    /haadf_angles     (n_H,) degrees        /chem_angles   (n_c,) degrees
    /costs/<name>     (n_iter,) float64 ('haadf', 'chem', 'tv')
    /inputs/<name>    the tilt series fused (n, ny, nx), when given

MRC (:func:`save_volumes` with fmt 'mrc'): one ``<stem>_<El>.mrc`` per element, float32,
sections along y (the tilt axis, as IMOD's ``tilt`` writes them), voxel size in Å, the
provenance in the header labels. TIFF ('tiff'): one ImageJ stack ``<stem>_<El>.tif`` per
element, one page per slice y, voxel size in the ImageJ calibration, provenance in ``Info``.
Fiji and ChimeraX open both. Every write is atomic and refuses to replace an existing file
unless ``overwrite=True``.
"""
from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io._atomic import atomic_write_file
from ..io._dataset import ReadError
from ..io._results import _json

FORMAT_VERSION = 1
MARKER = "fusedem_result_tomo"  #: root attribute of a result; contains the CLI's "fusedem_result"
GEOMETRY = ("volumes (ny, nz, nx); a voxel at centred (z, x) of slice y projects to detector "
            "position u = x cos(theta) + z sin(theta) of row y")


@dataclass
class SavedTomoResult:
    """A fused-tomography result read back by :func:`load_tomo_result`."""

    volumes: dict[str, np.ndarray]  #: symbol -> (ny, nz, nx) float32
    haadf_angles: np.ndarray
    chem_angles: np.ndarray
    costs: dict[str, np.ndarray]
    params: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)  #: the other root attributes
    inputs: dict[str, np.ndarray] = field(default_factory=dict)


def _version() -> str:
    from .. import __version__

    return __version__


def _attrs(result: Any, sources: Sequence[str], voxel_size: float | None,
           extra: Mapping[str, Any] | None) -> dict[str, Any]:
    params = result.params.to_dict() if hasattr(result.params, "to_dict") else dict(result.params or {})
    attrs: dict[str, Any] = {
        MARKER: FORMAT_VERSION, "fusedem_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": json.dumps(params), "elements": json.dumps(dict(getattr(result, "elements", {}) or {})),
        "sources": json.dumps([str(s) for s in sources]), "elapsed": float(result.elapsed),
        "iterations": int(result.iterations), "voxel_size": float(voxel_size or 0.0),
        "units": "nm" if voxel_size else "pixel", "axes": "y,z,x", "geometry": GEOMETRY,
        "device": str(getattr(result, "device", "cpu")),
    }
    if getattr(result, "autotune", None) is not None and hasattr(result.autotune, "to_dict"):
        attrs["autotune"] = json.dumps(result.autotune.to_dict())
    for k, v in (extra or {}).items():
        attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
    return attrs


def _check_volumes(path: Path, volumes: Mapping[str, Any]) -> dict[str, Any]:
    """The volumes as float32 arrays (array-likes such as h5py datasets are kept as they are,
    to be read slab by slab); ValueError unless 3-D and of one shape."""
    if not volumes:
        raise ValueError(f"{path}: nothing to save (no volumes)")
    arrays = {str(k): v if hasattr(v, "shape") and not isinstance(v, np.ndarray) else
              np.asarray(v, dtype=np.float32) for k, v in volumes.items()}
    shapes = {tuple(a.shape) for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"{path}: volumes must be 3-D (ny, nz, nx) and of one shape, got {sorted(shapes)}")
    return arrays


class VolumeFile:
    """An open HDF5 result written slab by slab: :meth:`write_slab` as slabs are solved,
    then :meth:`finish` with the provenance (the layout of the module docstring)."""

    def __init__(self, f: Any, ny: int) -> None:
        self.f, self.ny = f, ny
        self.group = f.create_group("volumes", track_order=True)

    def write_slab(self, y0: int, volumes: Mapping[str, np.ndarray]) -> None:
        """Store slices y0.. of each element's (rows, nz, nx) volume."""
        for sym, a in volumes.items():
            a = np.asarray(a, dtype=np.float32)
            if sym not in self.group:
                self.group.create_dataset(sym, shape=(self.ny,) + a.shape[1:], dtype=np.float32,
                                          chunks=(1,) + a.shape[1:], compression="gzip",
                                          compression_opts=4, fletcher32=True)
            self.group[sym][y0:y0 + a.shape[0]] = a

    def finish(self, result: Any, *, sources: Sequence[str] = (), voxel_size: float | None = None,
               inputs: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Root attributes, angles, costs and inputs from ``result`` (a TomoResult or any
        object with its params, costs, angles, elements, elapsed, iterations)."""
        self.f.attrs.update(_attrs(result, sources, voxel_size, extra))
        self.f.create_dataset("haadf_angles", data=np.asarray(result.haadf_angles, float))
        self.f.create_dataset("chem_angles", data=np.asarray(result.chem_angles, float))
        c = self.f.create_group("costs")
        for name, curve in (result.costs or {}).items():
            c.create_dataset(name, data=np.asarray(curve, dtype=np.float64))
        if inputs:
            gi = self.f.create_group("inputs", track_order=True)
            for name, a in inputs.items():
                gi.create_dataset(str(name), data=np.asarray(a), compression="gzip")


def save_tomo_result(path: str | os.PathLike, result: Any, *, sources: Sequence[str] = (),
                     voxel_size: float | None = None, inputs: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write a :class:`fusedem.tomo.TomoResult` (or anything with its fields) to HDF5.

    ``voxel_size``: nm (the detector pixel). ``inputs``: name -> tilt series to embed.
    Raises FileExistsError when ``path`` exists and ``overwrite`` is False.
    """
    import h5py

    path = Path(path)
    arrays = _check_volumes(path, result.volumes)

    def write_to(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            out = VolumeFile(f, next(iter(arrays.values())).shape[0])
            out.write_slab(0, arrays)
            out.finish(result, sources=sources, voxel_size=voxel_size, inputs=inputs, extra=extra)

    return atomic_write_file(path, overwrite, write_to)


def save_volumes(folder: str | os.PathLike, stem: str, volumes: Mapping[str, Any], fmt: str, *,
                 voxel_size: float | None = None, info: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> list[Path]:
    """One ``<stem>_<El>.mrc`` (fmt 'mrc') or ``.tif`` (fmt 'tiff') per element volume
    (ny, nz, nx; arrays or h5py datasets, read slab by slab); ``voxel_size`` in nm; ``info``
    (JSON-able) is stored as provenance. Checks every target first: nothing is written when
    one exists and not ``overwrite``."""
    folder = Path(folder)
    arrays = _check_volumes(folder / stem, volumes)
    ext = {"mrc": ".mrc", "tiff": ".tif", "tif": ".tif"}.get(fmt)
    if ext is None:
        raise ValueError(f"unknown volume format {fmt!r}; expected 'mrc' or 'tiff'")
    targets = {sym: folder / f"{stem}_{sym}{ext}" for sym in arrays}
    taken = [str(p) for p in targets.values() if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{taken[0]} already exists; refusing to overwrite it "
                              "(choose another name or pass overwrite=True)")
    text = json.dumps({MARKER: FORMAT_VERSION, "fusedem_version": _version(), **dict(info or {})})
    writer = _write_mrc if ext == ".mrc" else _write_tiff
    return [atomic_write_file(target, overwrite, lambda tmp, a=arrays[sym], s=sym:
                              writer(tmp, a, voxel_size, s, text))
            for sym, target in targets.items()]


_ROWS = 16  #: slices copied at a time from a volume on disk


def _write_mrc(tmp: Path, volume: Any, voxel_size: float | None, sym: str, text: str) -> None:
    import mrcfile

    with mrcfile.new_mmap(tmp, shape=tuple(volume.shape), mrc_mode=2, overwrite=True) as m:
        for y in range(0, volume.shape[0], _ROWS):
            m.data[y:y + _ROWS] = volume[y:y + _ROWS]
        m.update_header_from_data()
        m.update_header_stats()
        if voxel_size:
            m.voxel_size = float(voxel_size) * 10.0  # nm -> Å
        for label in (f"{MARKER} {_version()} element {sym}",
                      "axes: sections y (tilt axis), rows z, columns x", text):
            m.add_label(label[:80])


def _write_tiff(tmp: Path, volume: Any, voxel_size: float | None, sym: str, text: str) -> None:
    import tifffile

    md: dict[str, Any] = {"axes": "ZYX", "Info": text}
    kw: dict[str, Any] = {}
    if voxel_size:
        md.update(unit="nm", spacing=float(voxel_size))
        kw["resolution"] = (1.0 / voxel_size, 1.0 / voxel_size)
    pages = (np.asarray(volume[y], dtype=np.float32) for y in range(volume.shape[0]))
    tifffile.imwrite(tmp, pages, shape=tuple(volume.shape), dtype=np.float32, imagej=True,
                     metadata=md, **kw)


def load_tomo_result(path: str | os.PathLike) -> SavedTomoResult:
    """Read an HDF5 file written by :func:`save_tomo_result`; ReadError when unusable."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if MARKER not in f.attrs or "volumes" not in f:
                raise ReadError(f"{path}: not a fusedem tomography result (no {MARKER!r} attribute)")
            meta = {k: _json(f.attrs[k]) for k in f.attrs}
            return SavedTomoResult(
                volumes={k: f["volumes"][k][()] for k in f["volumes"]},
                haadf_angles=f["haadf_angles"][()], chem_angles=f["chem_angles"][()],
                costs={k: f["costs"][k][()] for k in f.get("costs", {})},
                params=meta.pop("params", {}) or {}, metadata=meta,
                inputs={k: f["inputs"][k][()] for k in f.get("inputs", {})})
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError(f"{path}: cannot read result ({type(exc).__name__}: {exc})") from None


def is_tomo_result(path: str | os.PathLike) -> bool:
    """True when ``path`` is an HDF5 file written by :func:`save_tomo_result` (never raises)."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return MARKER in f.attrs
    except Exception:
        return False
