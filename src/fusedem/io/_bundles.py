"""Element-map bundles: .npz, .h5/.hdf5, and TIFFs (a folder, a selection, or one file).

A bundle holds 2-D arrays named ``HAADF`` (or ``ADF``/``DF``, any case) and
element symbols (``Dy``, ``Sc``, ``O``, ``Co-EELS`` ...), all of one shape.
Optional calibration: npz keys / HDF5 root attributes ``scale`` (or
``pixel_size``; one number or (dy, dx)), ``units`` (e.g. 'nm') and ``translate``.
fusedem result files (see :mod:`fusedem.io._results`) are bundles too.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._dataset import DatasetLayer, ReadError, check_bundle, check_numeric, classify_name, length_to_nm

BUNDLE_SUFFIXES = (".npz", ".h5", ".hdf5")
TIFF_SUFFIXES = (".tif", ".tiff")
META_KEYS = {"scale", "pixel_size", "units", "unit", "translate", "origin", "metadata"}


def _is_meta(name: str) -> bool:
    return name.lower() in META_KEYS or name.startswith("_")


def _names_usable(names: Sequence[str]) -> bool:
    data_names = [n for n in names if not _is_meta(n)]
    return bool(data_names) and all(classify_name(n) is not None for n in data_names)


def sniff_bundle(path: str | Path | Sequence[str | Path]) -> bool:
    """Whether the maps reader should claim ``path`` (never raises).

    Claimed: bundles whose array names are all HAADF-like or element symbols;
    folders/selections with at least one TIFF named so; and files with a bundle
    suffix whose container is unreadable (so that reading reports the damage).
    """
    try:
        if not isinstance(path, (str, os.PathLike)):
            return bool(path) and all(sniff_bundle(p) for p in path)
        p = Path(path)
        if p.is_dir():
            return any(classify_name(f.stem) for f in _tiffs_in(p))
        suffix = p.suffix.lower()
        if suffix == ".npz":
            try:
                with zipfile.ZipFile(p) as zf:
                    names = [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]
            except (zipfile.BadZipFile, OSError, EOFError):
                return p.is_file()
            return _names_usable(names)
        if suffix in (".h5", ".hdf5"):
            import h5py

            try:
                with h5py.File(p, "r") as f:
                    if "fusedem_result" in f.attrs or "fusedem_layers" in f.attrs:
                        return True
                    names = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
            except OSError:
                return p.is_file()
            return _names_usable(names)
        if suffix in TIFF_SUFFIXES:
            return p.is_file() and bool(_tiff_names(p))
    except Exception:  # a sniff never raises
        return False
    return False


def _tiffs_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in TIFF_SUFFIXES and f.is_file())


def _calibration(source: str, scale: Any, units: Any, translate: Any) -> dict[str, tuple]:
    """scale/units/translate for 2-D maps from optional file values (lengths -> nm)."""
    if scale is None:
        return {}
    try:
        s = np.broadcast_to(np.asarray(scale, dtype=float).ravel(), (2,)) if np.size(scale) in (1, 2) else None
    except (TypeError, ValueError):
        s = None
    if s is None or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ReadError(f"{source}: invalid pixel size {scale!r}; expected one or two positive numbers")
    if isinstance(units, bytes):
        units = units.decode()
    u = str(np.asarray(units).ravel()[0]) if units is not None else ""
    conv = [length_to_nm(v, u) for v in s]
    factor = conv[0][0] / float(s[0])
    t = np.zeros(2) if translate is None else np.broadcast_to(np.asarray(translate, float).ravel(), (2,))
    return {"scale": tuple(c[0] for c in conv), "units": tuple(c[1] for c in conv),
            "translate": tuple(float(v) * factor for v in t)}


def _layers_from_arrays(source: str, arrays: dict[str, Any], calib: dict, extra_md: dict | None = None
                        ) -> list[DatasetLayer]:
    layers = []
    for name, arr in arrays.items():
        kind = classify_name(name)
        if kind is None:
            continue
        check_numeric(source, name, arr)
        role, sym = kind
        kw = dict(calib)
        if np.ndim(arr) == 3:  # a series of frames (frame, ny, nx)
            kw = {"scale": (1.0,) + tuple(calib.get("scale", (1.0, 1.0))),
                  "units": ("frame",) + tuple(calib.get("units", ("pixel", "pixel"))),
                  "translate": (0.0,) + tuple(calib.get("translate", (0.0, 0.0)))}
        layers.append(DatasetLayer(name=sym or name, data=arr, role=role, element=sym,
                                   metadata={"original_name": name, **(extra_md or {})}, **kw))
    return layers


def read_npz(path: Path) -> list[DatasetLayer]:
    """Read an .npz map bundle (raises :class:`ReadError`)."""
    src = str(path)
    with open(path, "rb") as fh:
        if fh.read(2) != b"PK":
            raise ReadError(f"{src}: not an .npz file (no zip signature: another kind of "
                            "file with an .npz name?)")
    try:  # every member's CRC: a damaged block is reported, not loaded as changed values
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except Exception as exc:  # BadZipFile, zlib.error, OSError, EOFError ...
        raise ReadError(f"{src}: file is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if bad is not None:
        raise ReadError(f"{src}: file is damaged (array {bad!r} fails its checksum)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ReadError(f"{src}: contains non-numeric (object) arrays; expected numeric maps") from None
        raise ReadError(f"{src}: cannot read .npz ({exc})") from None
    except Exception as exc:  # BadZipFile, zlib.error, OSError, EOFError ...
        raise ReadError(f"{src}: file is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    meta = {k: arrays.pop(k) for k in list(arrays) if _is_meta(k)}
    calib = _calibration(src, meta.get("scale", meta.get("pixel_size")),
                         meta.get("units", meta.get("unit")), meta.get("translate", meta.get("origin")))
    layers = _layers_from_arrays(src, arrays, calib)
    unknown = [k for k in arrays if classify_name(k) is None]
    if unknown and not layers:
        raise ReadError(f"{src}: arrays {unknown} are neither HAADF nor element symbols")
    check_bundle(src, layers)
    return layers


def read_h5(path: Path) -> list[DatasetLayer]:
    """Read an .h5/.hdf5 map bundle or a fusedem result file (raises :class:`ReadError`)."""
    import h5py

    src = str(path)
    if Path(path).is_file() and not h5py.is_hdf5(path):
        raise ReadError(f"{src}: not an HDF5 file (no HDF5 signature: another kind of file "
                        "with an .h5 name?)")
    try:
        with h5py.File(path, "r") as f:
            if "fusedem_result" in f.attrs:
                from ._results import result_layers

                return result_layers(path, f)
            if "fusedem_layers" in f.attrs:  # denoised cubes, edge maps, composition
                from ._layers_file import read_layers_file

                return read_layers_file(path, f)
            arrays = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset)}
            attrs = {k: f.attrs[k] for k in f.attrs}
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError(f"{src}: file is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    for k in [k for k in arrays if _is_meta(k)]:
        attrs.setdefault(k, arrays.pop(k))
    calib = _calibration(src, attrs.get("scale", attrs.get("pixel_size")),
                         attrs.get("units", attrs.get("unit")), attrs.get("translate"))
    layers = _layers_from_arrays(src, arrays, calib)
    check_bundle(src, layers)
    return layers


def _tiff_names(path: Path) -> list[str]:
    """Layer names a TIFF file holds: ImageJ labels of a stack, else the file stem; [] if unknown."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        labels = (tf.imagej_metadata or {}).get("Labels")
        n = len(tf.pages)
    if n > 1 and labels and len(labels) == n and all(classify_name(str(s)) for s in labels):
        return [str(s) for s in labels]
    return [path.stem] if n == 1 and classify_name(path.stem) else []


def _read_tiff(path: Path) -> tuple[list[DatasetLayer], dict[str, Any]]:
    import tifffile

    src = str(path)
    try:
        names = _tiff_names(path)
        with tifffile.TiffFile(path) as tf:
            data = tf.asarray()
            ij = tf.imagej_metadata or {}
            tags = tf.pages[0].tags
            xres, yres = tags.get("XResolution"), tags.get("YResolution")
            xres = xres.value if xres else None
            yres = yres.value if yres else None
    except Exception as exc:
        raise ReadError(f"{src}: cannot read TIFF ({type(exc).__name__}: {exc})") from None
    if not names:
        raise ReadError(f"{src}: TIFF name/labels are neither HAADF nor element symbols")
    calib = {}
    unit = ij.get("unit")
    if unit and xres and yres and xres[0] and yres[0]:
        unit = {"micron": "µm", "\\u00B5m": "µm"}.get(unit, unit)
        calib = _calibration(src, (yres[1] / yres[0], xres[1] / xres[0]), unit, None)
    data = np.asarray(data)
    stack = data.reshape((-1,) + data.shape[-2:]) if len(names) > 1 else [np.squeeze(data)]
    arrays = dict(zip(names, stack))
    info = {}
    if ij.get("Info"):
        try:
            info = json.loads(ij["Info"])
        except (TypeError, ValueError):
            info = {}
    return _layers_from_arrays(src, arrays, calib), info


def read_tiffs(path: str | Path | Sequence[str | Path]) -> list[DatasetLayer]:
    """Read one TIFF, a folder of TIFFs or a list of TIFF paths named by element/HAADF."""
    if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
        files = [f for f in _tiffs_in(Path(path)) if classify_name(f.stem)]
        src = str(path)
    elif isinstance(path, (str, os.PathLike)):
        layers, info = _read_tiff(Path(path))
        if info.get("fusedem_result"):  # a TIFF written by fusedem.io.save_result
            for ly in layers:
                ly.metadata["params"] = info.get("params", "{}")
                if ly.role == "element":
                    ly.role, ly.name = "fused", f"{ly.element} (fused)"
        check_bundle(str(path), layers, need_maps=False)
        return layers
    else:
        files = [Path(p) for p in path]
        src = ", ".join(str(p) for p in files)
    if not files:
        raise ReadError(f"{src}: no TIFF files named HAADF/ADF/DF or by element symbol")
    layers = []
    for f in files:
        for ly in _read_tiff(f)[0]:
            ly.metadata["file"] = str(f)
            layers.append(ly)
    check_bundle(src, layers)
    return layers
