"""The unit of work shared by ``fuse`` and ``batch``: load one dataset, fuse, save.

Everything here is a small picklable value or a top-level function, so Dask
workers receive paths and parameters (never image arrays) and do the IO
themselves.
"""
from __future__ import annotations

import errno
import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io._atomic import stale_temporaries
from ..params import FusionParams
from ._config import Crop, CropError, crop_bounds
from ._notes import with_notes
from ._outputs import claim, input_digest, written_by_fusedem

EXTENSIONS = {"h5": ".h5", "tiff": ".tif"}
#: Write errors after which no later output can be saved either.
_FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


@dataclass(frozen=True)
class Settings:
    """What every job of a run shares."""

    params: dict[str, Any]  #: FusionParams.to_dict()
    outdir: str
    fmt: str = "h5"
    elements: tuple[str, ...] | None = None
    crop: Crop | None = None
    overwrite: bool = False
    numba_threads: int | None = None  #: per process; None keeps numba's default
    store_inputs: bool = True  #: embed the raw input arrays in HDF5 results (else their names)
    auto: bool = False  #: choose lambda_chem, lambda_tv, n_iter per input (fusedem.autotune)
    extraction: dict[str, Any] | None = None  #: beam_energy_kv / resolution_ev / lines
    run_id: str = ""  #: recorded in each result, so a rerun of a lost job knows it finished
    haadf: str | None = None  #: name of the structural image to use (--haadf), else the HAADF
    kfactors: tuple[tuple[str, float], ...] | None = None  #: Cliff–Lorimer of the fused maps
    min_counts: float = 1.0  #: pixels with less summed signal are masked in the composition
    device: str = "cpu"  #: 'cpu' or 'cuda' (resolved by the client)


@dataclass(frozen=True)
class Job:
    """One dataset to fuse: a file, or one frame of a 3-D stack file."""

    source: str
    output: str
    frame: int | None = None

    @property
    def label(self) -> str:
        return self.source if self.frame is None else f"{self.source}[frame {self.frame}]"


@dataclass
class Outcome:
    """What happened to one input ('done', 'skipped', 'busy' (another run makes it) or 'failed')."""

    label: str
    status: str
    message: str = ""
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0  #: wall time of the whole job
    fusion_seconds: float = 0.0  #: of which inside fusedem.fuse
    jobs: list[Job] = field(default_factory=list)  #: set by :func:`expand`
    usage: bool = False  #: failed because of the options (e.g. a crop outside the image)
    chosen: dict[str, Any] | None = None  #: --auto: the parameters chosen and the score
    notes: list[str] = field(default_factory=list)  #: the readers' warnings (see _notes)
    fatal: bool = False  #: the output folder cannot take more results (full, read-only)


OTHER_PARAMS = "made with other parameters"
OTHER_INPUT = "made from other input data (the input has changed)"


class DataError(ValueError):
    """An input that cannot be fused, with a message naming the file and problem."""


# ---------------------------------------------------------------- datasets
def _io():
    from .. import io

    return io


def load(source: str, lazy: bool = True):
    """Read a file through the plugin's readers (ReadError names file and problem)."""
    if not Path(source).exists():
        raise DataError(f"{source}: no such file or folder")
    return _io().load(source, lazy=lazy)


def structural_images(ds) -> list:
    """Layers that can serve as the structural image: the HAADF first, then other images."""
    return [ly for ly in ds.layers if ly.role == "haadf"] + \
        [ly for ly in ds.layers if ly.role == "image"]


def select(ds, elements: tuple[str, ...] | None, source: str,
           extraction: dict[str, Any] | None = None, haadf_name: str | None = None):
    """The HAADF layer and the element layers to fuse, in the requested order.

    ``haadf_name`` picks another structural image by name (an SEM file's SE/BSE image).
    Requested elements that the file has no maps of are extracted, all from its EDS
    spectrum image (one consistent source), with the ``extraction`` options.
    """
    haadf = ds.haadf
    maps = ds.element_maps
    images = structural_images(ds)
    listed = ", ".join(f"{ly.name!r} ({' x '.join(map(str, ly.data.shape))})" for ly in images)
    if haadf_name is not None:
        haadf = next((ly for ly in images if ly.name.lower() == haadf_name.lower()), None)
        if haadf is None:
            raise DataError(f"{source}: no image named {haadf_name!r} for --haadf "
                            f"({'images: ' + listed if images else 'it has no images'})")
    if haadf is None:
        if images:
            raise DataError(f"{source}: no HAADF/ADF image; choose the structural image with "
                            f"--haadf NAME (images: {listed}; a BSE/SE image is only a rough "
                            "proxy of Z contrast)")
        names = ", ".join(ly.name for ly in ds.layers) or "nothing"
        raise DataError(f"{source}: no HAADF/ADF image found (it contains {names})")
    if elements and any(e not in maps for e in elements) and ds.spectrum_images:
        layers = _io().extract_element_layers(ds, elements, **(extraction or {}))
        maps = {ly.element: ly for ly in layers} or maps
    if not maps:
        hint = (" (only a spectrum image: name the elements to extract, e.g. --elements "
                "Cu,O, or run 'fusedem extract')" if ds.spectrum_images else "")
        raise DataError(f"{source}: no elemental maps found{hint}")
    if elements:
        missing = [e for e in elements if e not in maps]
        if missing:
            raise DataError(
                f"{source}: element(s) {', '.join(missing)} not found; it has {', '.join(maps)}"
            )
        maps = {e: maps[e] for e in elements}
    return haadf, maps


def n_frames(haadf, maps: dict, source: str) -> int | None:
    """Number of frames of a 3-D stack (frame axis first), None for single 2-D maps."""
    shapes = {"HAADF": tuple(haadf.data.shape), **{k: tuple(v.data.shape) for k, v in maps.items()}}
    dims = {len(s) for s in shapes.values()}
    if dims == {2}:
        return None
    if dims == {3} and len({s[0] for s in shapes.values()}) == 1:
        return shapes["HAADF"][0]
    desc = ", ".join(f"{k} {s}" for k, s in shapes.items())
    raise DataError(f"{source}: cannot pair the HAADF with the maps: shapes {desc}")


def output_name(source: str, frame: int | None, fmt: str, stem: str | None = None) -> str:
    """``<stem>[_fNNNN]_fused.<ext>`` for one job."""
    base = stem or Path(source).stem
    if frame is not None:
        base += f"_f{frame:04d}"
    return f"{base}_fused{EXTENSIONS[fmt]}"


@with_notes
def expand(source: str, settings: Settings, stem: str | None = None) -> Outcome:
    """Open ``source`` lazily; the jobs it yields (one per frame of a stack) or a failure."""
    t0 = time.perf_counter()
    try:
        ds = load(source, lazy=True)
        haadf, maps = select(ds, settings.elements, source, settings.extraction, settings.haadf)
        n = n_frames(haadf, maps, source)
        if settings.crop is not None:
            try:
                crop_bounds(settings.crop, tuple(haadf.data.shape))
            except CropError as exc:
                return Outcome(source, "failed", f"{source}: {exc}", usage=True)
        frames: list[int | None] = [None] if n is None else list(range(n))
        jobs = [
            Job(source, str(Path(settings.outdir) / output_name(source, f, settings.fmt, stem)), f)
            for f in frames
        ]
        return Outcome(source, "expanded", jobs=jobs, seconds=time.perf_counter() - t0)
    except Exception as exc:  # reported per input; the batch goes on
        return Outcome(source, "failed", _reason(exc, source), seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------- one job
def existing_valid(output: str, params: FusionParams, auto: bool = False,
                   digest: str | None = None, meta_out: dict | None = None) -> tuple[bool, str]:
    """(True, '') when ``output`` holds a complete result made with ``params`` from the input
    whose :func:`~fusedem.cli._outputs.input_digest` is ``digest`` (None: not compared).

    With ``auto``, ``params`` are the fixed parameters of an automatic choice,
    compared with the base the stored result's choice started from. ``meta_out``
    (a dict) receives the result's root attributes when it could be read.
    """
    if not Path(output).exists():
        return False, "missing"
    try:
        if Path(output).suffix.lower() in (".tif", ".tiff"):
            meta = _tiff_info(output)
        else:
            saved = _io().load_result(output)
            meta = {**saved.metadata, "params": saved.params}
        got = meta.get("params")
        if auto:
            got = (meta.get("autotune") or {}).get("base")
    except Exception as exc:
        return False, f"unreadable ({exc})"
    if meta_out is not None:
        meta_out.update(meta)
    if isinstance(got, dict):
        try:
            got = FusionParams.from_dict(got)
        except ValueError:
            got = None
    if got != params:
        return False, OTHER_PARAMS
    if digest is not None and meta.get("input_digest") != digest:
        return False, OTHER_INPUT if meta.get("input_digest") else "without a record of its input"
    return True, ""


def _tiff_info(path: str) -> dict[str, Any]:
    """Provenance stored in a result TIFF (ImageJ ``Info`` JSON, decoded); raises if unusable."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        info = json.loads((tf.imagej_metadata or {})["Info"])
        tf.asarray()  # a truncated file fails here
    return {k: json.loads(v) if k in ("params", "autotune") and isinstance(v, str) else v
            for k, v in info.items()}


def _frame(layer, frame: int | None, crop: Crop | None) -> np.ndarray:
    data = layer.data if frame is None else layer.data[frame]
    if crop is not None:
        y0, y1, x0, x1 = crop
        data = data[y0:y1, x0:x1]
    return np.asarray(data)


@with_notes
def run_job(job: Job, settings: Settings) -> Outcome:
    """Load, fuse and save one dataset; never raises for a bad input.

    The output is claimed first (another run making it: status 'busy'); a file at
    the output name that fusedem did not write is never replaced without
    ``overwrite``, nor a result made with other parameters or from other data.
    """
    t0 = time.perf_counter()
    try:
        with claim(job.output) as mine:
            if not mine:
                return Outcome(job.label, "busy", f"{job.output}: being made by another fusedem run",
                               seconds=time.perf_counter() - t0)
            return _run_claimed(job, settings, t0)
    except Exception as exc:
        fatal = isinstance(exc, OSError) and exc.errno in _FATAL_ERRNOS
        return Outcome(job.label, "failed", _reason(exc, job.label), [], time.perf_counter() - t0,
                       fatal=fatal)


def _run_claimed(job: Job, settings: Settings, t0: float) -> Outcome:
    params = FusionParams.from_dict(settings.params)
    for tmp in stale_temporaries(job.output):  # left by a killed run; we hold the output's lock
        tmp.unlink(missing_ok=True)
    if not Path(job.source).exists():
        raise DataError(f"{job.source}: no such file or folder")
    digest = input_digest(job.source)
    redo = ""
    if Path(job.output).exists():
        if not settings.overwrite and not written_by_fusedem(job.output):
            raise DataError(f"{job.output}: exists and was not written by fusedem; not replaced "
                            "(use --overwrite or another output folder)")
        meta: dict = {}
        ok, why = existing_valid(job.output, params, settings.auto, digest, meta)
        if ok and settings.run_id and meta.get("run_id") == settings.run_id:
            # made by this run: a worker that finished it was lost before reporting back
            return Outcome(job.label, "done", "finished (its worker was lost before reporting)",
                           [job.output], time.perf_counter() - t0)
        if ok and not settings.overwrite:
            return Outcome(job.label, "skipped", "already complete", [job.output])
        if why in (OTHER_PARAMS, OTHER_INPUT) and not settings.overwrite:
            raise DataError(f"{job.output}: exists and was {why}; use --overwrite or another output folder")
        redo = "" if ok else f" (redone: previous output {why})"
    if settings.numba_threads:
        import numba

        numba.set_num_threads(max(1, min(settings.numba_threads, numba.config.NUMBA_NUM_THREADS)))
    from ..solver import fuse

    ds = load(job.source, lazy=True)
    haadf, maps = select(ds, settings.elements, job.source, settings.extraction, settings.haadf)
    crop = None
    if settings.crop is not None:
        crop = crop_bounds(settings.crop, tuple(haadf.data.shape))
    bh = _frame(haadf, job.frame, crop)
    raw = {k: _frame(ly, job.frame, crop) for k, ly in maps.items()}
    _use_gpu(settings.device)
    try:
        if settings.auto:
            result = _fuse_auto(ds, maps, bh, raw, crop, job, settings)
        else:
            result = fuse(bh, raw, params, device=settings.device)
    except ValueError as exc:
        raise DataError(f"{job.label}: {exc}") from None
    composition = _composition(job, settings, result)
    outputs = _save(job, settings, result, haadf, bh, raw, crop, digest, composition)
    chosen = None
    note = f"{result.elapsed:.2f} s fusion on {result.device}{redo}"
    if composition is not None:
        note += f"; {composition.summary()}"
    if result.autotune is not None:
        a = result.autotune
        chosen = {"lambda_chem": a.params.lambda_chem, "lambda_tv": a.params.lambda_tv,
                  "n_iter": a.params.n_iter, "method": a.method, "score": a.score,
                  "n_indistinct": a.n_indistinct}
        if a.notes:  # e.g. data too noisy for a reliable choice: printed and recorded
            chosen["notes"] = list(a.notes)
        note = f"{a.summary()}; {note}"
    return Outcome(job.label, "done", note, outputs, time.perf_counter() - t0,
                   fusion_seconds=result.elapsed, chosen=chosen)


def _use_gpu(device: str) -> str:
    """``device``, after choosing this process's GPU when there are several: a batch
    runs one worker per GPU, and Dask worker k (named k) takes GPU k."""
    if device == "cuda":
        from numba import cuda

        if len(cuda.gpus) > 1:
            try:
                from dask.distributed import get_worker

                cuda.select_device(int(get_worker().name) % len(cuda.gpus))
            except (ImportError, ValueError, TypeError):
                pass  # not on a Dask worker: the current GPU
    return device


def _fuse_auto(ds, maps, bh, raw, crop, job: Job, settings: Settings):
    """--auto: choose the parameters from the data, then fuse. Maps extracted from an
    EDS spectrum image are validated by thinning its counts before extraction."""
    import dataclasses

    from ..solver import fuse
    from ..tuning import autotune

    base = FusionParams.from_dict(settings.params)
    splits = None
    if job.frame is None and all(ly.metadata.get("extracted") for ly in maps.values()):
        splits = _io().extraction_splits(ds, list(maps), crop, **(settings.extraction or {}))
    with warnings.catch_warnings():  # its notes are reported with the outcome instead
        warnings.filterwarnings("ignore", message="autotune: ", category=UserWarning)
        if splits is None:
            auto = autotune(bh, raw, base, device=settings.device)
        else:
            auto = autotune(bh, raw, base, splits=splits, method="thinning (spectrum image)",
                            device=settings.device)
    return dataclasses.replace(fuse(bh, raw, auto.params, device=settings.device), autotune=auto)


def _composition(job: Job, settings: Settings, result):
    """Cliff–Lorimer of the fused maps in the inputs' units (None without --kfactors)."""
    if not settings.kfactors:
        return None
    from ..spectra.quant import cliff_lorimer

    try:
        return cliff_lorimer(result.maps_in_input_units(), dict(settings.kfactors),
                             min_counts=settings.min_counts)
    except ValueError as exc:
        raise DataError(f"{job.label}: --kfactors: {exc}") from None


def _save(job: Job, settings: Settings, result, haadf, bh, raw, crop, digest: str,
          composition=None) -> list[str]:
    scale = tuple(haadf.scale[-2:]) if haadf.scale else None
    units = tuple(haadf.units[-2:]) if haadf.units else None
    translate = tuple(haadf.translate[-2:]) if haadf.translate else None
    if crop is not None and translate is not None and scale is not None:
        translate = (translate[0] + crop[0] * scale[0], translate[1] + crop[2] * scale[1])
    out = Path(job.output)
    # an existing output is invalid or --overwrite was given (run_job decided):
    # save_result replaces it atomically
    paths = _io().save_result(
        out, result, inputs={"HAADF": bh, **raw} if settings.store_inputs else ["HAADF", *raw],
        sources=(job.label,),
        scale=scale, units=units, translate=translate, fmt=settings.fmt, overwrite=True,
        extra={"input_digest": digest, "run_id": settings.run_id},
        composition=composition,
    )
    return [str(p) for p in paths]


def _reason(exc: BaseException, label: str) -> str:
    """One line naming the file and the problem (traceback only for the unexpected)."""
    msg = str(exc).strip() or type(exc).__name__
    if isinstance(exc, (ValueError, OSError, KeyError)):
        return msg if label in msg or (isinstance(exc, OSError) and exc.filename) else f"{label}: {msg}"
    if os.environ.get("FUSEDEM_DEBUG"):
        msg += "\n" + traceback.format_exc()
    return f"{label}: unexpected {type(exc).__name__}: {msg}"
