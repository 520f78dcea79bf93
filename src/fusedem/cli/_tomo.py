"""``fusedem tomo``: fuse one tilt series into per-element volumes, slab by slab.

Single-axis tomography reconstructs every slice y (a detector row) on its own; only the
3-D TV term couples neighbouring slices. Large series are therefore solved in slabs of
``--slab`` slices, each with ``--margin`` extra slices on both sides that are solved and
thrown away, so TV sees the slab's neighbours and the seams do not show; memory then
depends on the slab, not on the volume (docs/tomography.md gives the figures). Each slab
is written to the result file as soon as it is done.

Outputs in OUTDIR: ``<stem>_tomo.h5`` (:func:`fusedem.tomo.io.save_tomo_result`'s layout),
with ``--format mrc``/``tiff`` also one ``<stem>_tomo_<El>.mrc``/``.tif`` per element, and
``fusedem_tomo_params.toml`` (rerun with ``--config``). Exit status as ``fusedem fuse``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io._dataset import ReadError
from ._config import (UsageError, _toml_value, params_toml, read_config, resolve_params,
                      write_text_atomic)
from ._notes import collected
from ._outputs import claim, input_digest, written_by_fusedem
from ._run import device_option

PARAMS_FILE = "fusedem_tomo_params.toml"
TOP_KEYS = ("elements", "slices", "crop", "format", "auto", "angles", "haadf_angles",
            "chem_angles", "slab", "margin", "align", "params", "chosen")
FORMATS = ("h5", "mrc", "tiff")
EXIT_OK, EXIT_FAILED = 0, 1


def add_tomo_parser(sub: Any, epilog: str) -> None:
    """The ``tomo`` subcommand and its options."""
    from ..tomo import TomoParams
    from ._config import add_param_options

    p = sub.add_parser("tomo", help="fuse a HAADF + chemical tilt series into 3-D chemical volumes",
                       epilog=epilog.replace("fusedem_params.toml", PARAMS_FILE),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="tilt series: .npz/.h5 bundle, .mat, folder of "
                   ".mrc/.hspy stacks (HAADF.mrc, Au.mrc ... with .rawtlt angles) or of per-tilt "
                   ".emd/.bcf/.hspy files")
    p.add_argument("-o", "--output", metavar="OUTDIR", help="output folder (default: <stem>_tomo)")
    p.add_argument("--angles", metavar="FILE", help="tilt angles (degrees, one per line as IMOD "
                   ".rawtlt) of both series, or one per file of a per-tilt folder")
    p.add_argument("--haadf-angles", metavar="FILE", help="angles of the HAADF series only")
    p.add_argument("--chem-angles", metavar="FILE", help="angles of the chemical series only")
    p.add_argument("--elements", type=lambda s: [e for e in s.split(",") if e], metavar="SYM,SYM",
                   help="elements to fuse, in this order (default: all)")
    p.add_argument("--slices", metavar="a:b", help="reconstruct only slices a..b-1 (detector rows, "
                   "along the tilt axis)")
    p.add_argument("--crop", metavar="x0:x1", help="use only detector columns x0..x1-1, centred "
                   "on the tilt axis (the object must stay inside them at every tilt)")
    p.add_argument("--align", action="store_true", default=None, help="align the projections "
                   "first (fusedem.tomo.align: per-tilt shifts by cross-correlation, the tilt-axis "
                   "offset, each chemical tilt to the nearest HAADF tilt); the report goes into the "
                   "result file's 'alignment' attribute")
    p.add_argument("--slab", type=int, metavar="N", help="slices solved at once (default 64; "
                   "memory scales with it)")
    p.add_argument("--margin", type=int, metavar="M", help="extra slices solved on each side of a "
                   "slab and dropped, for TV's coupling across slab borders (default 8)")
    p.add_argument("--format", metavar="h5[,mrc,tiff]", help="outputs besides the HDF5 result: mrc "
                   "and/or tiff volumes per element (default h5 only)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to solve: auto (an NVIDIA GPU when usable, else the CPU; default), "
                   "cpu or cuda (pip install 'fusedem[cuda]')")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress; errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="show the readers' warnings")
    add_param_options(p, TomoParams, PARAMS_FILE)


def auto_available() -> bool:
    """Whether fusedem.tomo can choose the parameters from the data (params='auto')."""
    import importlib.util

    return importlib.util.find_spec("fusedem.tomo.autotune") is not None


def _range(text: Any, what: str) -> tuple[int, int] | None:
    if text is None or text == "":
        return None
    parts = str(text).replace(" ", "").split(":")
    try:
        a, b = (int(v) for v in parts)
    except ValueError:
        raise UsageError(f"--{what} {text!r}: expected a:b (pixels, half-open), e.g. 0:64") from None
    if a < 0 or b <= a:
        raise UsageError(f"--{what} {text!r}: expected 0 <= a < b")
    return a, b


@dataclass
class TomoRun:
    """Everything one ``fusedem tomo`` run needs, resolved from options and config."""

    source: Path
    outdir: Path
    params: Any  #: TomoParams (the base of an automatic choice with auto)
    auto: bool
    formats: tuple[str, ...]
    slices: tuple[int, int] | None
    crop: tuple[int, int] | None
    slab: int
    margin: int
    angles: dict[str, str | None]
    elements: list[str] | None
    align: bool
    overwrite: bool
    quiet: bool
    verbose: bool
    toml: str
    alignment: dict[str, Any] | None = None  #: the alignment report, once aligned
    device: str = "cpu"  #: resolved: 'cpu' or 'cuda'

    @property
    def stem(self) -> str:
        return f"{self.source.stem}_tomo"


def prepare_tomo(args: argparse.Namespace) -> TomoRun:
    """Resolve options and config file; UsageError (exit status 2) when they do not fit."""
    from ..tomo import TomoParams

    cfg = read_config(args.config, TOP_KEYS) if args.config else {}
    params = resolve_params(args, cfg, str(args.config or ""), TomoParams)

    def opt(name: str) -> Any:
        value = getattr(args, name, None)
        return value if value is not None else cfg.get(name)

    source = Path(args.input)
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder")
    fmt_text = opt("format") or "h5"
    formats = tuple(dict.fromkeys(["h5"] + [f.strip().replace("tif", "tiff").replace("tifff", "tiff")
                                            for f in str(fmt_text).split(",") if f.strip()]))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UsageError(f"--format: unknown {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    slab, margin = opt("slab") or 64, opt("margin")
    margin = 8 if margin is None else margin
    if slab < 1 or margin < 0:
        raise UsageError(f"--slab must be >= 1 and --margin >= 0, got {slab} and {margin}")
    outdir = Path(args.output) if args.output else Path(f"{source.stem}_tomo")
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: exists and is not a folder")
    elements = opt("elements")
    auto = bool(opt("auto"))
    if auto and not auto_available():
        raise UsageError("--auto: this fusedem build has no automatic parameter choice for "
                         "tomography yet (fusedem.tomo.autotune); give the parameters")
    angles = {k: opt(k) for k in ("angles", "haadf_angles", "chem_angles")}
    slices, crop = _range(opt("slices"), "slices"), _range(opt("crop"), "crop")
    command = [f"command: fusedem {' '.join(map(str, args.argv))}"] if getattr(args, "argv", None) else []
    toml = params_toml(params, elements=elements, comment=command, auto=auto,
                       repeat="fusedem tomo INPUT -o OUTDIR --config THIS_FILE",
                       extra={"slices": opt("slices"), "crop": opt("crop"), "slab": slab,
                              "margin": margin, "format": ",".join(formats), **angles,
                              "align": True if opt("align") else None})
    return TomoRun(source, outdir, params, auto, formats, slices, crop, slab, margin, angles,
                   elements, bool(opt("align")), bool(args.overwrite), bool(args.quiet),
                   bool(args.verbose), toml, device=device_option(args))


def _outputs(run: TomoRun, elements: list[str]) -> list[Path]:
    out = [run.outdir / f"{run.stem}.h5"]
    for fmt in run.formats[1:]:
        ext = ".mrc" if fmt == "mrc" else ".tif"
        out += [run.outdir / f"{run.stem}_{el}{ext}" for el in elements]
    return out


def _refuse_existing(run: TomoRun, outputs: list[Path], digest: str) -> str | None:
    """'skip' when the HDF5 result of these settings and data exists, else raise unless
    --overwrite; never replaces a file fusedem did not write without --overwrite."""
    existing = [p for p in outputs if p.exists()]
    if not existing or run.overwrite:
        return None
    foreign = [p for p in existing if not written_by_fusedem(p)]
    if foreign:
        raise DataError(f"{foreign[0]}: exists and was not written by fusedem; not replaced "
                        "(use --overwrite or another output folder)")
    from ..tomo.io import load_tomo_result

    try:
        meta = load_tomo_result(outputs[0]).metadata if outputs[0].exists() else {}
    except ReadError:
        meta = {}
    same = (meta.get("input_digest") == digest and meta.get("settings") == _settings(run))
    if same and all(p.exists() for p in outputs):
        return "skip"
    raise DataError(f"{existing[0]}: exists (made with other settings or data); use --overwrite "
                    "or another output folder")


def _settings(run: TomoRun) -> dict[str, Any]:
    return {"params": run.params.to_dict(), "auto": run.auto, "slices": run.slices,
            "crop": run.crop, "slab": run.slab, "margin": run.margin,
            "elements": run.elements, "angles": run.angles, "align": run.align}


class DataError(ValueError):
    """An input or output problem, reported in one line naming the file (exit status 1)."""


def run_tomo(args: argparse.Namespace) -> int:
    """The ``fusedem tomo`` command; returns the exit status."""
    run = prepare_tomo(args)
    t0 = time.perf_counter()
    notes: list[str] = []
    try:
        with collected(notes):
            status, message = _run(run)
    except (ReadError, DataError, OSError, ValueError) as exc:
        _print_notes(run, notes)
        print(f"FAILED {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print_notes(run, notes)
    if not run.quiet:
        print(f"{status}: {message} in {time.perf_counter() - t0:.1f} s; outputs and "
              f"{PARAMS_FILE} in {run.outdir}")
    return EXIT_OK


def _print_notes(run: TomoRun, notes: list[str]) -> None:
    notes = list(dict.fromkeys(notes))
    if run.quiet or not notes:
        return
    if run.verbose:
        for n in notes:
            print(f"warning: {run.source}: {n}", file=sys.stderr)
    else:
        print(f"{len(notes)} warning(s) from the readers not shown (-v shows them)", file=sys.stderr)


def _aligned(series: Any, run: TomoRun) -> Any:
    """The series with its projections aligned (before any crop: the crop is centred on the
    axis, which alignment puts on the centre column); the report kept on ``run``."""
    import dataclasses

    from ..tomo.align import align_pair

    haadf, maps, report = align_pair(series.haadf, series.haadf_angles, series.maps,
                                     series.chem_angles)
    run.alignment = report.to_dict()
    if not run.quiet:
        shifts = np.abs(report.haadf.shifts).max(axis=0)
        print(f"aligned: tilt axis offset {report.haadf.axis_offset:+.2f} px, largest HAADF "
              f"shift {shifts[0]:.1f} px (y) {shifts[1]:.1f} px (x), chemical tilts matched "
              f"within {report.angle_gap.max():.1f}°", flush=True)
    return dataclasses.replace(series, haadf=haadf, maps=maps,
                               notes=[*series.notes, "projections aligned (fusedem.tomo.align)"])


def _run(run: TomoRun) -> tuple[str, str]:
    from ..tomo.io import load_tilt_series

    series = load_tilt_series(run.source, angles=run.angles["angles"],
                              haadf_angles=run.angles["haadf_angles"],
                              chem_angles=run.angles["chem_angles"], elements=run.elements)
    if run.align:
        series = _aligned(series, run)
    try:
        series = series.region(run.slices, run.crop)
    except ValueError as exc:
        raise UsageError(f"{run.source}: {exc}") from None
    outputs = _outputs(run, series.elements)
    digest = input_digest(run.source)
    try:
        run.outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{run.outdir}: cannot create the output folder ({exc.strerror})") from None
    with claim(outputs[0]) as mine:
        if not mine:
            raise DataError(f"{outputs[0]}: being made by another fusedem run")
        if _refuse_existing(run, outputs, digest) == "skip":
            write_text_atomic(run.outdir / PARAMS_FILE, run.toml)
            return "skipped", f"{outputs[0]} already complete"
        from ._tomo_slabs import fuse_in_slabs

        info = fuse_in_slabs(series, run, outputs, digest, _settings(run))
    write_text_atomic(run.outdir / PARAMS_FILE, run.toml if info.get("chosen") is None else
                      run.toml + "\n[chosen]\n" + "\n".join(
                          f"{k} = {_toml_value(v)}" for k, v in info["chosen"].items()) + "\n")
    return "done", info["summary"]
