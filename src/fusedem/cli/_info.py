"""``fusedem info FILE``: what the readers find in a file."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ._notes import collected
from ._run import EXIT_FAILED, EXIT_OK


def _calibration(layer) -> str:
    if all(u == "pixel" for u in layer.units[-2:]):
        return "uncalibrated (no pixel size in the file)"
    return " x ".join(f"{s:g} {u}" for s, u in zip(layer.scale[-2:], layer.units[-2:]))


def _range(data) -> str:
    from ..io import ReadError

    try:
        a = np.asarray(data)
        return f"{float(a.min()):.4g} .. {float(a.max()):.4g}"
    except ReadError:  # a damaged file found while computing a lazy array
        raise
    except Exception:  # a lazy array that cannot be computed cheaply
        return "?"


def describe(ds, stats: bool = True) -> dict:
    """A JSON-friendly description of a Dataset."""
    layers = []
    for ly in ds.layers:
        d = {"name": ly.name, "role": ly.role, "element": ly.element,
             "shape": list(ly.data.shape), "dtype": str(ly.data.dtype),
             "scale": list(ly.scale), "units": list(ly.units)}
        if ly.energy_axis:
            d["energy_axis"] = {k: v for k, v in ly.energy_axis.items() if isinstance(v, (int, float, str))}
        if stats and ly.role != "spectrum_image":
            d["range"] = _range(ly.data)
        layers.append(d)
    return {"source": ds.source, "haadf": ds.haadf.name if ds.haadf else None,
            "elements": list(ds.element_maps), "layers": layers}


def missing(ds) -> str:
    """Exactly what ``ds`` lacks for a fusion, and the way out where there is one."""
    out = []
    if ds.haadf is None:
        images = [ly.name for ly in ds.layers if ly.role == "image"]
        out.append("no HAADF/ADF image" + (f" (choose one of {', '.join(images)} with --haadf)"
                                           if images else ""))
    if not ds.element_maps:
        out.append("no elemental maps" + (" (a spectrum image: extract them with "
                                          "'fusedem extract' or 'fuse --elements')"
                                          if ds.spectrum_images else ""))
    return "; ".join(out)


def run_info(args: argparse.Namespace) -> int:
    """Print the layers of each FILE; 1 when some cannot be read."""
    from .. import io

    status = EXIT_OK
    reports = []
    for path in args.files:
        notes: list[str] = []
        try:
            with collected(notes):
                ds = io.load(path, lazy=True)
                d = describe(ds, stats=not args.no_stats)
        except Exception as exc:  # every failure names its file; the other files go on
            msg = str(exc) if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {exc}"
            print(f"error: {msg if str(path) in msg else f'{path}: {msg}'}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        if args.json:
            reports.append(d)
            continue
        print(f"{'' if path == args.files[0] else chr(10)}{d['source']}")
        notes = list(dict.fromkeys(notes))
        for note in notes if args.verbose else ():
            print(f"  warning:  {note}")
        if notes and not args.verbose:
            print(f"  ({len(notes)} warning(s) from the reader; -v shows them)")
        print(f"  HAADF:    {d['haadf'] or '(none)'}")
        others = [ly for ly in ds.layers if ly.role == "image"]
        if others:
            shapes = ", ".join(f"{ly.name} ({' x '.join(map(str, ly.data.shape))}"
                               f"{', of the scan' if ly.metadata.get('structural') else ''})"
                               for ly in others)
            print(f"  images:   {shapes}  (--haadf NAME uses one as the structural image)")
        for note in ds.notes:
            print(f"  note:     {note}")
        print(f"  elements: {', '.join(d['elements']) or '(none)'}")
        if ds.haadf is not None:
            print(f"  pixel:    {_calibration(ds.haadf)}")
        print("  layers:")
        for ly in d["layers"]:
            shape = " x ".join(map(str, ly["shape"]))
            extra = f"  range {ly['range']}" if "range" in ly else ""
            role = ly["role"] + (f" {ly['element']}" if ly["element"] else "")
            print(f"    {ly['name']:<16} {role:<16} {shape:<14} {ly['dtype']:<8}{extra}")
        fused = [ly for ly in ds.layers if ly.role == "fused"]
        if fused:
            p = fused[0].metadata.get("params") or {}
            print("  a fusedem result; parameters: " + ", ".join(f"{k}={v}" for k, v in p.items()))
            auto = fused[0].metadata.get("autotune")
            if auto:
                print(f"  parameters chosen automatically ({auto['method']}): held-out score "
                      f"{auto['score']:.4g}, best of {len(auto['candidates'])} candidates")
        elif ds.haadf is not None and ds.element_maps:
            print("  ready to fuse")
        else:
            print(f"  not ready to fuse: {missing(ds)}")
    if args.json:
        print(json.dumps(reports if len(reports) != 1 else reports[0], indent=2))
    return status
