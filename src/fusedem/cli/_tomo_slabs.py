"""Slab-by-slab fusion of a tilt series, each slab written to the result file when done.

A slab keeps slices [a, b) and is solved on [a − margin, b + margin) (clipped to the
volume): the margin slices give TV₃ the neighbours it couples to and are dropped. Memory
is the input tilt series plus one slab's solver state, whatever the volume's height.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io._atomic import atomic_write_file


def slab_ranges(ny: int, slab: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(a, b, lo, hi) per slab: slices [a, b) kept, [lo, hi) solved; covers 0..ny once."""
    out = []
    for a in range(0, ny, slab):
        b = min(ny, a + slab)
        out.append((a, b, max(0, a - margin), min(ny, b + margin)))
    return out


@dataclass
class SlabTotals:
    """What the result file records of a slab-by-slab run (TomoResult's fields)."""

    params: Any
    haadf_angles: np.ndarray
    chem_angles: np.ndarray
    elements: dict[str, int] = field(default_factory=dict)
    costs: dict[str, np.ndarray] = field(default_factory=dict)  #: summed over slabs
    elapsed: float = 0.0
    iterations: int = 0
    autotune: Any = None

    def add_costs(self, costs: dict[str, Any]) -> None:
        for k, v in costs.items():
            v = np.asarray(v, dtype=float)
            old = self.costs.get(k)
            self.costs[k] = v if old is None or old.shape != v.shape else old + v


def _rows(series: Any, lo: int, hi: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return series.haadf[:, lo:hi], {k: v[:, lo:hi] for k, v in series.maps.items()}


def whole_series_ranges(series: Any) -> dict[str, Any] | None:
    """The normalisation of the whole series, given to every slab so that all slabs share it
    (a slab normalised by its own maximum would come out on another scale: seams). None when
    the solver takes no ``input_ranges`` (then each slab is normalised on its own)."""
    import inspect

    from .. import tomo

    if "input_ranges" not in inspect.signature(tomo.iterate_tilt_series).parameters:
        return None
    if hasattr(tomo, "input_ranges"):
        return tomo.input_ranges(series.haadf, series.maps)
    return {"HAADF": (float(series.haadf.min()), float(series.haadf.max())),
            **{el: (0.0, float(m.max())) for el, m in series.maps.items()}}


def _solve_slab(series: Any, lo: int, hi: int, params: Any, bar: Any,
                ranges: dict[str, Any] | None) -> Any:
    """Run the solver on slices [lo, hi), advancing ``bar`` per outer iteration; the final
    state (volumes (hi − lo, nz, nx) per element)."""
    from ..tomo import iterate_tilt_series

    haadf, maps = _rows(series, lo, hi)
    last, shown = None, 0
    kw = {} if ranges is None else {"input_ranges": ranges}
    for state in iterate_tilt_series(haadf, series.haadf_angles, maps, series.chem_angles,
                                     params=params, every=1, **kw):
        bar.update(state.iteration - shown)
        shown = state.iteration
        if state.volumes is not None:
            last = state
    if last is None:
        raise RuntimeError("the solver ended without returning volumes")
    return last


def _choose_params(series: Any, run: Any, ranges: list) -> tuple[Any, Any]:
    """--auto: the parameters chosen on the middle slab (used for every slab, so that the
    slabs agree) and the solver's record of the choice."""
    from ..tomo import fuse_tilt_series

    a, b, lo, hi = ranges[len(ranges) // 2]
    haadf, maps = _rows(series, lo, hi)
    res = fuse_tilt_series(haadf, series.haadf_angles, maps, series.chem_angles, params="auto")
    return res.params, res.autotune


def fuse_in_slabs(series: Any, run: Any, outputs: list[Path], digest: str,
                  settings: dict[str, Any]) -> dict[str, Any]:
    """Fuse ``series`` slab by slab into ``outputs[0]`` (HDF5, atomic), then write the MRC /
    TIFF volumes of ``outputs[1:]`` from it; returns {'summary', 'chosen'}."""
    import h5py

    from ..tomo._io_results import VolumeFile, save_volumes
    from ._tomo import bar_for

    ny = series.detector_shape[0]
    ranges = slab_ranges(ny, run.slab, run.margin)
    params, autotune = run.params, None
    if run.auto:
        if not run.quiet:
            print(f"choosing the parameters on slices {ranges[len(ranges) // 2][2]}:"
                  f"{ranges[len(ranges) // 2][3]} (--auto)…", flush=True)
        params, autotune = _choose_params(series, run, ranges)
    totals = SlabTotals(params, series.haadf_angles, series.chem_angles, autotune=autotune)
    t0 = time.perf_counter()
    norm = whole_series_ranges(series) if len(ranges) > 1 else None

    def write_to(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f, bar_for(run, len(ranges) * params.n_iter) as bar:
            out = VolumeFile(f, ny)
            for a, b, lo, hi in ranges:
                bar.set_postfix_str(f"slices {a}:{b} of {ny}", refresh=True)
                state = _solve_slab(series, lo, hi, params, bar, norm)
                out.write_slab(a, {k: v[a - lo:b - lo] for k, v in state.volumes.items()})
                totals.add_costs(state.costs)
                totals.iterations = state.iteration
            totals.elapsed = time.perf_counter() - t0
            from ..elements import atomic_number

            totals.elements = {el: atomic_number(el) for el in series.maps}
            region = {"slices": list(run.slices) if run.slices else None,
                      "crop": list(run.crop) if run.crop else None}
            out.finish(totals, sources=[str(series.source)], voxel_size=series.pixel_size,
                       extra={"input_digest": digest, "settings": settings, "region": region,
                              "slabs": [list(r) for r in ranges],
                              "slab_normalisation": "whole series" if norm or len(ranges) == 1
                              else "per slab (the solver takes no input_ranges)",
                              "costs_note": "summed over slabs; margin slices counted in each"})

    atomic_write_file(outputs[0], True, write_to)
    if len(outputs) > 1:
        info = {"source": str(series.source), "params": params.to_dict(), "result": outputs[0].name}
        with h5py.File(outputs[0], "r") as f:
            vols = {k: f["volumes"][k] for k in f["volumes"]}
            for fmt in run.formats[1:]:
                save_volumes(outputs[0].parent, outputs[0].stem, vols, fmt,
                             voxel_size=series.pixel_size, info=info, overwrite=True)
    shape = f"{ny} x {params.nz or series.detector_shape[1]} x {series.detector_shape[1]}"
    summary = (f"{len(series.maps)} element volume(s) of {shape} voxels from "
               f"{series.haadf.shape[0]} HAADF + {series.chem_angles.size} chemical tilts, "
               f"{len(ranges)} slab(s), {totals.elapsed:.1f} s")
    chosen = None
    if autotune is not None:
        chosen = {k: getattr(params, k) for k in ("lambda_chem", "lambda_tv", "n_iter")}
        summary += f"; chosen {chosen}"
    return {"summary": summary, "chosen": chosen}
