"""``fusedem extract``: elemental maps from EDS spectrum images, written as map bundles.

Each input gives ``OUTDIR/<stem>_maps.h5``: the HAADF (when the file has one) and one
map per element in counts (the same :mod:`fusedem.spectra` path the napari panel uses),
with the pixel size, readable by ``fusedem fuse`` and the napari plugin.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._config import UsageError
from ._run import _symbols, expand_patterns, extraction_options, unique_stems


def extract_bundle(source: str, out: Path, elements: list[str] | None,
                   options: dict[str, Any], overwrite: bool = False) -> list[str]:
    """Extract the maps of ``source`` into the bundle ``out``; returns the array names.

    ValueError (naming the file) when there is no EDS spectrum image, nothing to
    extract, or ``out`` exists and ``overwrite`` is False.
    """
    from .. import io

    if out.exists() and not overwrite:
        raise ValueError(f"{out}: exists; pass --overwrite to replace it")
    ds = io.load(source, lazy=True, extract=False)
    if not ds.spectrum_images:
        raise ValueError(f"{source}: no spectrum image to extract maps from")
    layers = io.extract_element_layers(ds, elements, **options)
    if not layers:
        raise ValueError(f"{source}: no EDS spectrum image with an energy axis, or no elements "
                         "listed in the file: name them with --elements Cu,O,...")
    arrays = {ly.element: np.asarray(ly.data, dtype=np.float32) for ly in layers}
    if ds.haadf is not None and tuple(ds.haadf.data.shape) == next(iter(arrays.values())).shape:
        arrays = {"HAADF": np.asarray(ds.haadf.data), **arrays}
    _write_h5(out, arrays, layers[0].scale[-2:], layers[0].units[-1], source)
    return list(arrays)


def _write_h5(out: Path, arrays: dict[str, np.ndarray], scale, units: str, source: str) -> None:
    """Write a map bundle atomically (a temporary file renamed into place)."""
    import h5py

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            for name, a in arrays.items():
                f.create_dataset(name, data=a, compression="gzip")
            f.attrs["scale"] = np.asarray(scale, dtype=float)
            f.attrs["units"] = units if units != "pixel" else ""
            f.attrs["source"] = source
            f.attrs["extracted_by"] = "fusedem extract (fusedem.spectra)"
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_extract(args: argparse.Namespace) -> int:
    """Extract every input; exit status 0, or 1 when some failed (each named)."""
    elements = _symbols(args.elements) if args.elements else None
    options = extraction_options(args)
    outdir = Path(args.output)
    sources, missing = expand_patterns(args.inputs)
    if not sources and not missing:
        raise UsageError("no inputs given")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{outdir}: cannot create the output folder ({exc.strerror})") from None
    failed = [o.message for o in missing]
    for source, stem in zip(sources, unique_stems(sources)):
        out = outdir / f"{stem}_maps.h5"
        try:
            got = extract_bundle(source, out, elements, options, args.overwrite)
        except (ValueError, OSError) as exc:
            msg = str(exc)
            failed.append(msg if source in msg or str(out) in msg else f"{source}: {msg}")
            continue
        if not args.quiet:
            print(f"{out}: {', '.join(got)} from {source}")
    for msg in failed:
        print(f"FAILED {msg}", file=sys.stderr)
    return 1 if failed else 0
