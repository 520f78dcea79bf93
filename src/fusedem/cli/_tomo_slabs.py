"""Slab-by-slab fusion of a tilt series, each slab written to the result file when done.

A slab keeps slices [a, b) and is solved on [a − margin, b + margin) (clipped to the
volume): the margin slices give TV₃ the neighbours it couples to and are dropped. Memory
is the input tilt series plus one slab's solver state, whatever the volume's height.
The middle slab is solved first: its parameters (chosen there with --auto) and its
normalisation gains are used for every slab (each solver call normalises by its own
gains; the volumes are rescaled to the middle slab's, so the slabs share one scale).
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
    device: str = "cpu"  #: where the slabs were solved


def add_costs(total: dict[str, np.ndarray], costs: dict[str, Any]) -> None:
    """Add one slab's cost curves into ``total`` (curves of another length start over)."""
    for k, v in costs.items():
        v = np.asarray(v, dtype=float)
        old = total.get(k)
        total[k] = v if old is None or old.shape != v.shape else old + v


def _rows(series: Any, lo: int, hi: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return series.haadf[:, lo:hi], {k: v[:, lo:hi] for k, v in series.maps.items()}


def _solve_slab(series: Any, lo: int, hi: int, params: Any, device: str = "cpu") -> Any:
    """The solver's result on slices [lo, hi) (volumes (hi − lo, nz, nx) per element) on a
    resolved ``device``; ``params`` 'auto' chooses them from these slices first."""
    from ..tomo import fuse_tilt_series

    haadf, maps = _rows(series, lo, hi)
    present = {el: m for el, m in maps.items() if np.any(m > 0)}
    if len(present) == len(maps):
        return fuse_tilt_series(haadf, series.haadf_angles, maps, series.chem_angles, params=params,
                                device=device)
    # an element without counts in these slices (e.g. a particle that ends above them) is
    # absent here: fuse the others, give it zeros
    nz = (params.nz if not isinstance(params, str) else None) or haadf.shape[2]
    zeros = np.zeros((hi - lo, nz, haadf.shape[2]), np.float32)
    if not present or haadf.max() <= haadf.min():
        return EmptySlab({el: zeros for el in maps}, params)
    res = fuse_tilt_series(haadf, series.haadf_angles, present, series.chem_angles, params=params,
                           device=device)
    res.volumes.update({el: zeros for el in maps if el not in present})
    return res


@dataclass
class EmptySlab:
    """The result of slices where no element has counts: zero volumes."""

    volumes: dict[str, np.ndarray]
    params: Any
    costs: dict[str, np.ndarray] = field(default_factory=dict)
    iterations: int = 0
    autotune: Any = None
    scales: dict[str, float] = field(default_factory=dict)


def common_units(result: Any, ref_scales: dict[str, float]) -> dict[str, np.ndarray]:
    """A slab's volumes in the reference slab's units. The solver normalises each call by
    its own gains (counts per voxel = volume × scale), so slabs would differ by a factor:
    volume × scale_slab / scale_ref puts them all on the reference's scale."""
    scales = getattr(result, "scales", None) or {}
    return {el: v * np.float32(scales.get(el, 1.0) / ref_scales.get(el, 1.0)) if scales else v
            for el, v in result.volumes.items()}


def fuse_in_slabs(series: Any, run: Any, outputs: list[Path], digest: str,
                  settings: dict[str, Any]) -> dict[str, Any]:
    """Fuse ``series`` slab by slab into ``outputs[0]`` (HDF5, atomic), then write the MRC /
    TIFF volumes of ``outputs[1:]`` from it; returns {'summary', 'chosen'}."""
    import h5py

    from ..tomo._io_results import VolumeFile, save_volumes
    from ._progress import progress

    ny = series.detector_shape[0]
    ranges = slab_ranges(ny, run.slab, run.margin)
    mid = len(ranges) // 2
    order = [mid] + [i for i in range(len(ranges)) if i != mid]  # the reference slab first
    if run.auto and not run.quiet:
        print(f"choosing the parameters on slices {ranges[mid][2]}:{ranges[mid][3]} "
              "(--auto; then used for every slab)…", flush=True)
    t0 = time.perf_counter()

    def write_to(tmp: Path) -> None:
        from ..elements import atomic_number

        with h5py.File(tmp, "w") as f, progress(total=len(ranges), desc="fusing", unit="slab",
                                                 quiet=run.quiet) as bar:
            out = VolumeFile(f, ny)
            params, ref = ("auto" if run.auto else run.params), {}
            costs: dict[str, np.ndarray] = {}
            iterations, autotune, ran_on = 0, None, "cpu"
            for i in order:
                a, b, lo, hi = ranges[i]
                bar.set_postfix_str(f"slices {a}:{b} of {ny}", refresh=True)
                res = _solve_slab(series, lo, hi, params, getattr(run, "device", "cpu"))
                ran_on = getattr(res, "device", ran_on)
                if isinstance(params, str) and not isinstance(res, EmptySlab):
                    params, autotune = res.params, res.autotune  # chosen here, used for all
                # the first slab's gains (the middle one's) set the units of every slab
                ref.update({el: g for el, g in (getattr(res, "scales", None) or {}).items()
                            if el not in ref})
                vols = common_units(res, ref)
                out.write_slab(a, {el: vols[el][a - lo:b - lo] for el in series.maps})
                add_costs(costs, res.costs)
                iterations = max(iterations, res.iterations)
                bar.update(1)
            totals = SlabTotals(params, series.haadf_angles, series.chem_angles,
                                costs=costs, iterations=iterations, autotune=autotune)
            totals.elapsed = time.perf_counter() - t0
            totals.device = ran_on
            totals.elements = {el: atomic_number(el) for el in series.maps}
            region = {"slices": list(run.slices) if run.slices else None,
                      "crop": list(run.crop) if run.crop else None}
            out.finish(totals, sources=[str(series.source)], voxel_size=series.pixel_size,
                       extra={"input_digest": digest, "settings": settings, "region": region,
                              "slabs": [list(r) for r in ranges], "scales": ref,
                              "units_note": "normalised: counts per voxel = volume x scales[El] "
                              f"(the gains of slab {ranges[mid][0]}:{ranges[mid][1]}, all slabs "
                              "rescaled to them)",
                              "costs_note": "summed over slabs; margin slices counted in each",
                              **({"alignment": run.alignment} if getattr(run, "alignment", None)
                                 else {})})
        held["totals"] = totals

    held: dict[str, Any] = {}
    atomic_write_file(outputs[0], True, write_to)
    totals = held["totals"]
    params = totals.params
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
               f"{len(ranges)} slab(s), {totals.elapsed:.1f} s on {totals.device}")
    chosen = None
    if totals.autotune is not None:
        chosen = {k: getattr(params, k) for k in ("lambda_chem", "lambda_tv", "n_iter")}
        if params.lambda_tv_elements:
            chosen["lambda_tv_elements"] = dict(params.lambda_tv_elements)
        summary += f"; chosen {chosen}"
    return {"summary": summary, "chosen": chosen}
