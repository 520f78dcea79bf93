"""Saving fused results (:func:`save_result`, :func:`save_maps`) and reading them back.

HDF5 layout (one file, ``fmt='h5'``)::

    /                 attrs: fusedem_result (format version 1), fusedem_version, created (ISO 8601),
                      params (JSON), elements (JSON symbol->Z), weights (JSON), input_names (JSON),
                      input_ranges (JSON), sources (JSON list), elapsed (s), iterations,
                      device (where it was solved: 'cpu' or 'cuda: <GPU name>'),
                      autotune (JSON, when the parameters were chosen automatically:
                      method, score, candidates, neighbourhood),
                      scale, units, translate (per axis (y, x), units e.g. 'nm')
    /maps/<symbol>    (ny, nx) float32 fused map, normalised units; attrs Z, weight
    /maps_input_units/<symbol>  (ny, nx) float32, the same map in its input's units
                      (lo + x·(hi − lo) with input_ranges; counts for count maps)
    /composition/<symbol>  (ny, nx) float32 atomic fraction (Cliff–Lorimer of the maps in
                      input units), only with k-factors; attrs kfactors, kfactor_basis,
                      min_counts, n_masked (masked pixels are 0)
    /haadf_model      (ny, nx) float32, A x^gamma
    /costs/<name>     (n_iter,) float64: 'haadf', 'chem', 'tv'
    /inputs/<name>    raw input arrays, only when given as arrays

TIFF (``fmt='tiff'``): one ImageJ hyperstack (axes CYX, float32), one page per
element map plus a last page ``HAADF_model``, page labels = names, pixel size
and unit in the ImageJ calibration, everything else as JSON in the ImageJ
``Info`` property. Fiji opens it with labelled channels.

Writes are atomic (temporary file in the target folder, then ``os.replace``)
and never overwrite an existing file unless ``overwrite=True``.
"""
from __future__ import annotations

import datetime
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write
from ._dataset import DatasetLayer, ReadError

FORMAT_VERSION = 1
_FMTS = {".h5": "h5", ".hdf5": "h5", ".tif": "tiff", ".tiff": "tiff"}


@dataclass
class SavedResult:
    """A fused result read back by :func:`load_result` (maps in normalised units)."""

    maps: dict[str, np.ndarray]  #: symbol -> (ny, nx) float32
    haadf_model: np.ndarray | None  #: (ny, nx) float32
    costs: dict[str, np.ndarray]  #: 'haadf'/'chem'/'tv' -> (n_iter,)
    params: dict[str, Any]  #: FusionParams.to_dict()
    metadata: dict[str, Any] = field(default_factory=dict)  #: the remaining root attributes
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  #: raw inputs when stored
    maps_input_units: dict[str, np.ndarray] = field(default_factory=dict)  #: maps in the inputs' units
    composition: dict[str, np.ndarray] = field(default_factory=dict)  #: atomic fractions (Cliff–Lorimer)


def _version() -> str:
    from .. import __version__

    return __version__


def save_maps(path: str | os.PathLike, maps: Mapping[str, Any], *, haadf_model: Any = None,
              costs: Mapping[str, Any] | None = None, params: Any = None,
              elements: Mapping[str, int] | None = None, weights: Mapping[str, float] | None = None,
              inputs: Mapping[str, Any] | Sequence[str] | None = None, sources: Sequence[str] = (),
              scale: Sequence[float] | None = None, units: Sequence[str] | str | None = None,
              translate: Sequence[float] | None = None, extra: Mapping[str, Any] | None = None,
              fmt: str | None = None, overwrite: bool = False,
              groups: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]] | None = None,
              ) -> list[Path]:
    """Save fused maps (symbol -> (ny, nx)) and their provenance; see the module docstring.

    ``params``: FusionParams or dict. ``inputs``: raw input names, or name -> array
    (arrays stored in HDF5 only). ``scale``/``translate``: (dy, dx) in ``units``.
    ``fmt``: 'h5' or 'tiff' (default from the suffix). Returns the written paths.
    """
    path = Path(path)
    fmt = (fmt or _FMTS.get(path.suffix.lower(), "")).lower().lstrip(".")
    fmt = {"hdf5": "h5", "tif": "tiff"}.get(fmt, fmt)
    if fmt not in ("h5", "tiff"):
        raise ValueError(f"{path}: cannot tell the output format; use a .h5/.hdf5/.tif/.tiff "
                         "suffix or fmt='h5'/'tiff'")
    if not maps:
        raise ValueError(f"{path}: nothing to save (no fused maps)")
    arrays = {str(k): np.asarray(v, dtype=np.float32) for k, v in maps.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"{path}: fused maps must be 2-D and of one shape, got {sorted(shapes)}")
    if params is not None and hasattr(params, "to_dict"):
        params = params.to_dict()
    if isinstance(units, str):
        units = (units, units)
    input_names = list(inputs) if inputs is not None else []
    attrs: dict[str, Any] = {
        "fusedem_result": FORMAT_VERSION, "fusedem_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": json.dumps(params or {}), "elements": json.dumps(dict(elements or {})),
        "weights": json.dumps({k: float(v) for k, v in (weights or {}).items()}),
        "input_names": json.dumps(input_names), "sources": json.dumps([str(s) for s in sources]),
        "scale": list(map(float, scale or (1.0, 1.0))), "units": json.dumps(list(units or ("pixel", "pixel"))),
        "translate": list(map(float, translate or (0.0, 0.0))),
    }
    for k, v in (extra or {}).items():
        attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)

    def write_h5() -> bytes:
        import h5py

        # built in memory (HDF5 core driver): h5py never meets a failing disk
        with h5py.File(f"fusedem-{id(arrays)}.h5", "w", driver="core", backing_store=False) as f:
            f.attrs.update(attrs)
            g = f.create_group("maps", track_order=True)  # keep the element order
            for sym, a in arrays.items():
                ds = g.create_dataset(sym, data=a, compression="gzip", compression_opts=4, fletcher32=True)
                if elements and sym in elements:
                    ds.attrs["Z"] = int(elements[sym])
                if weights and sym in weights:
                    ds.attrs["weight"] = float(weights[sym])
            if haadf_model is not None:
                f.create_dataset("haadf_model", data=np.asarray(haadf_model, np.float32), compression="gzip",
                                 fletcher32=True)
            c = f.create_group("costs")
            for name, curve in (costs or {}).items():
                c.create_dataset(name, data=np.asarray(curve, dtype=np.float64), fletcher32=True)
            for gname, (gattrs, garrays) in (groups or {}).items():
                gu = f.create_group(gname, track_order=True)
                gu.attrs.update({k: v if isinstance(v, (int, float, str)) else json.dumps(v)
                                 for k, v in gattrs.items()})
                for sym, a in garrays.items():
                    gu.create_dataset(str(sym), data=np.asarray(a, np.float32), compression="gzip",
                                      fletcher32=True)
            if isinstance(inputs, Mapping):
                gi = f.create_group("inputs", track_order=True)
                for name, a in inputs.items():
                    gi.create_dataset(str(name), data=np.asarray(a), compression="gzip", fletcher32=True)
            f.flush()
            return bytes(f.id.get_file_image())

    def write_tiff() -> bytes:
        import tifffile

        labels = list(arrays) + (["HAADF_model"] if haadf_model is not None else [])
        stack = list(arrays.values()) + ([np.asarray(haadf_model, np.float32)] if haadf_model is not None else [])
        info = {k: v for k, v in attrs.items()}
        info["costs"] = {k: np.asarray(v, float).tolist() for k, v in (costs or {}).items()}
        sy, sx = attrs["scale"]
        u = json.loads(attrs["units"])[-1]
        md = {"axes": "CYX", "Labels": labels, "Info": json.dumps(info), "mode": "grayscale"}
        kw = {}
        if u != "pixel":
            md["unit"] = "micron" if u in ("µm", "um") else u
            kw["resolution"] = (1.0 / sx, 1.0 / sy)
        buf = io.BytesIO()
        tifffile.imwrite(buf, np.stack(stack), imagej=True, metadata=md, **kw)
        return buf.getvalue()

    return [atomic_write(path, overwrite, write_h5 if fmt == "h5" else write_tiff)]


def save_result(path: str | os.PathLike, result: Any, *, inputs: Mapping[str, Any] | Sequence[str] | None = None,
                sources: Sequence[str] = (), scale: Sequence[float] | None = None,
                units: Sequence[str] | str | None = None, translate: Sequence[float] | None = None,
                fmt: str | None = None, overwrite: bool = False,
                extra: Mapping[str, Any] | None = None, composition: Any = None) -> list[Path]:
    """Save a :class:`~fusedem.FusionResult` to HDF5 or an ImageJ TIFF; returns the written paths.

    ``extra``: more root attributes (e.g. the CLI's ``input_digest``). HDF5 also holds
    the maps in the inputs' units and, given a :class:`fusedem.spectra.Composition`,
    its atomic-fraction maps.
    Raises FileExistsError when ``path`` exists and ``overwrite`` is False.
    """
    extra = {"elapsed": float(result.elapsed), "iterations": int(result.iterations),
             "device": str(getattr(result, "device", "cpu")),
             "input_ranges": {k: list(map(float, v)) for k, v in (result.input_ranges or {}).items()},
             **(extra or {})}
    if getattr(result, "autotune", None) is not None:
        # validation score, method and every candidate's score (the chosen point's neighbourhood)
        extra["autotune"] = result.autotune.to_dict()
    return save_maps(path, result.maps, haadf_model=result.haadf_model, costs=result.costs,
                     params=result.params, elements=result.elements, weights=result.weights,
                     inputs=inputs, sources=sources, scale=scale, units=units, translate=translate,
                     extra=extra, fmt=fmt, overwrite=overwrite,
                     groups=_extra_groups(result, composition))


def _extra_groups(result: Any, composition: Any) -> dict[str, tuple[dict, dict]]:
    """/maps_input_units (when every map's input range is known) and /composition."""
    out: dict[str, tuple[dict, dict]] = {}
    ranges = getattr(result, "input_ranges", None) or {}
    if result.maps and all(k in ranges for k in result.maps):
        from ..solver import to_input_units

        out["maps_input_units"] = (
            {"units": "inputs' units: lo + x·(hi − lo), (lo, hi) = input_ranges"},
            to_input_units(result.maps, ranges))
    if composition is not None:
        meta = composition.layer_metadata(next(iter(composition.atomic)))["fusedem"]
        out["composition"] = ({"units": "atomic fraction (0-1); 0 where masked",
                               **{k: meta[k] for k in ("kfactors", "kfactor_basis",
                                                       "min_counts", "n_masked")}},
                              composition.atomic)
    return out


def _json(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v.tolist() if isinstance(v, np.ndarray) else (v.item() if isinstance(v, np.generic) else v)


def _read_result(path: Path, f: Any) -> SavedResult:
    if "fusedem_result" not in f.attrs or "maps" not in f:
        raise ReadError(f"{path}: not a fusedem result file (no 'fusedem_result' attribute or /maps)")
    maps = {k: f["maps"][k][()] for k in f["maps"]}
    if not maps:
        raise ReadError(f"{path}: result file holds no fused maps")
    meta = {k: _json(f.attrs[k]) for k in f.attrs}
    return SavedResult(
        maps=maps,
        haadf_model=f["haadf_model"][()] if "haadf_model" in f else None,
        costs={k: f["costs"][k][()] for k in f.get("costs", {})},
        params=meta.pop("params", {}) or {},
        metadata=meta,
        inputs={k: f["inputs"][k][()] for k in f.get("inputs", {})},
        maps_input_units={k: f["maps_input_units"][k][()] for k in f.get("maps_input_units", {})},
        composition={k: f["composition"][k][()] for k in f.get("composition", {})},
    )


def load_result(path: str | os.PathLike) -> SavedResult:
    """Read an HDF5 file written by :func:`save_result`; raises :class:`ReadError` if unusable."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return _read_result(path, f)
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError(f"{path}: cannot read result ({type(exc).__name__}: {exc})") from None


def result_layers(path: Path, f: Any) -> list[DatasetLayer]:
    """Layers of an open result file: fused maps ('<sym> (fused)'), HAADF model, stored inputs."""
    from ._dataset import classify_name

    res = _read_result(path, f)
    md = res.metadata
    calib = {"scale": tuple(md.get("scale") or (1.0, 1.0)), "units": tuple(md.get("units") or ("pixel",) * 2),
             "translate": tuple(md.get("translate") or (0.0, 0.0))}
    common = {"params": res.params, "costs": {k: v.tolist() for k, v in res.costs.items()},
              "sources": md.get("sources", []), "inputs": md.get("input_names", [])}
    if md.get("autotune"):  # how the parameters were chosen (method, score, candidates)
        common["autotune"] = md["autotune"]
    elements = md.get("elements") or {}
    layers = [DatasetLayer(name=f"{s} (fused)", data=a, role="fused", element=s, **calib,
                           metadata={"Z": elements.get(s), "original_name": s, **common})
              for s, a in res.maps.items()]
    if res.haadf_model is not None:
        layers.append(DatasetLayer(name="HAADF model", data=res.haadf_model, role="haadf_model", **calib,
                                   metadata={"original_name": "haadf_model", **common}))
    for name, a in res.inputs.items():
        role, sym = classify_name(name) or ("image", None)
        layers.append(DatasetLayer(name=name, data=a, role=role, element=sym, **calib,
                                   metadata={"original_name": name}))
    return layers
