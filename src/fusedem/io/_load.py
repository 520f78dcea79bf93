"""Entry points :func:`load` and :func:`sniff`: pick the reader for a path."""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ._bundles import BUNDLE_SUFFIXES, TIFF_SUFFIXES, read_h5, read_npz, read_tiffs, sniff_bundle
from ._dataset import Dataset, DatasetLayer, ReadError
from ._extracted import add_extracted_maps
from ._instrument import INSTRUMENT_SUFFIXES, read_instrument

PathLike = str | os.PathLike
#: Files larger than this open lazily when ``lazy="auto"``.
LAZY_THRESHOLD_BYTES = 512 * 2**20


def sniff(path: PathLike | Sequence[PathLike]) -> Literal["maps", "instrument"] | None:
    """Which fusedem reader family can open ``path``: 'maps', 'instrument' or None.

    Never raises. Instrument files are claimed by suffix (RosettaSciIO checks
    the content at read time); bundles by the names of their arrays.
    """
    try:
        if isinstance(path, (str, os.PathLike)):
            p = Path(path)
            if p.suffix.lower() in INSTRUMENT_SUFFIXES:
                return "instrument" if p.is_file() or p.suffix.lower() == ".zspy" else None
        elif not path:
            return None
        return "maps" if sniff_bundle(path) else None
    except Exception:
        return None


def _unique_names(layers: list[DatasetLayer]) -> None:
    """Element layers keep their bare symbol unless two maps share it (then the file's name)."""
    count = Counter(ly.element for ly in layers if ly.role == "element")
    for ly in layers:
        if ly.role == "element" and count[ly.element] > 1:
            ly.name = ly.metadata.get("original_name", ly.name)
    si_names = Counter(ly.name for ly in layers if ly.role == "spectrum_image")
    for ly in layers:
        if ly.role == "spectrum_image" and si_names[ly.name] > 1 and ly.energy_axis:
            e = ly.energy_axis
            lo, hi = e["offset"], e["offset"] + e["scale"] * (e["size"] - 1)
            ly.name = f"{ly.name} {lo:.4g}-{hi:.4g} {e['units']}"


def load(path: PathLike | Sequence[PathLike], lazy: bool | Literal["auto"] = False,
         extract: bool = True) -> Dataset:
    """Read an element-map bundle or an instrument file into a :class:`Dataset`.

    ``path``: .npz/.h5/.hdf5 bundle or fusedem result, a TIFF file, a folder
    or list of TIFFs named by element/HAADF, or a .emd/.bcf/.dm3/.dm4/.hspy/.zspy file.
    ``lazy``: dask arrays for instrument files (True), numpy (False), or
    'auto' (lazy above :data:`LAZY_THRESHOLD_BYTES`). ``extract``: when the file
    has an EDS spectrum image and lists its elements but stores no maps, add
    element layers integrated from the spectrum image (:mod:`fusedem.spectra`).
    Raises :class:`ReadError` (a ValueError) naming the file and the problem.
    """
    if not isinstance(path, (str, os.PathLike)):
        paths = [Path(p) for p in path]
        if len(paths) == 1:
            return load(paths[0], lazy)
        if not paths or any(p.suffix.lower() not in TIFF_SUFFIXES for p in paths):
            raise ReadError(f"{', '.join(map(str, paths)) or '(nothing)'}: a selection of several "
                            "files must be TIFFs named by element/HAADF")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ReadError(f"{missing[0]}: no such file")
        ds = Dataset(source=os.pathsep.join(map(str, paths)), layers=read_tiffs(paths))
        _unique_names(ds.layers)
        return ds
    p = Path(path)
    suffix = p.suffix.lower()
    notes: list[str] = []
    if not p.exists():
        raise ReadError(f"{p}: no such file or folder")
    if p.is_dir() and suffix != ".zspy":  # a .zspy file is a zarr folder
        layers = read_tiffs(p)
    elif suffix in INSTRUMENT_SUFFIXES:
        if lazy == "auto":
            lazy = p.is_file() and p.stat().st_size > LAZY_THRESHOLD_BYTES
        layers = read_instrument(p, lazy=bool(lazy), notes=notes)
    elif suffix == ".npz":
        layers = read_npz(p)
    elif suffix in BUNDLE_SUFFIXES:
        layers = read_h5(p)
    elif suffix in TIFF_SUFFIXES:
        layers = read_tiffs(p)
    else:
        raise ReadError(f"{p}: unsupported file type {suffix!r} (expected .npz, .h5, .hdf5, .tif, "
                        f".tiff, {', '.join(INSTRUMENT_SUFFIXES)} or a folder of TIFFs)")
    _unique_names(layers)
    for ly in layers:
        ly.metadata.setdefault("source", str(p))
    ds = Dataset(source=str(p), layers=layers, notes=notes)
    if extract:
        add_extracted_maps(ds)
    return ds
