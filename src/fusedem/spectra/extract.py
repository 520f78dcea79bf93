"""Elemental maps (counts) from an EDS spectrum image by window integration."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from .axis import EnergyAxis
from .lines import LineWindows, plan_lines


@dataclass
class ExtractedMaps:
    """One background-subtracted map per element, in X-ray counts.

    ``maps[sym]`` has shape (ny // binning, nx // binning), float64;
    ``lines[sym]`` says which line and windows produced it. When ``clipped``
    is True, negative pixels (noise in the background subtraction) were set to 0.
    """

    maps: dict[str, np.ndarray]
    lines: dict[str, LineWindows]
    energy_axis: EnergyAxis
    binning: int = 1
    clipped: bool = True

    @property
    def elements(self) -> list[str]:
        """Element symbols in extraction order."""
        return list(self.maps)

    def __getitem__(self, element: str) -> np.ndarray:
        return self.maps[element]

    def stack(self) -> np.ndarray:
        """Maps stacked in ``elements`` order, shape (n_elements, ny, nx)."""
        return np.stack([self.maps[e] for e in self.elements])

    def layer_metadata(self, element: str, source: Any = None) -> dict[str, Any]:
        """The ``{"fusedem": {...}}`` metadata of an element image layer."""
        lw = self.lines[element]
        return {"fusedem": {
            "role": "element", "element": element, "Z": lw.Z, "source": source,
            "line": lw.label, "windows": lw.to_dict(), "units": "counts",
            "binning": self.binning, "clipped": self.clipped,
        }}


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask")


def _dense(x: Any) -> np.ndarray:
    """numpy float64 array from a numpy/sparse result (RosettaSciIO may use sparse)."""
    if hasattr(x, "todense"):
        x = x.todense()
    return np.asarray(x, dtype=np.float64)


def as_spectrum_cube(spectrum_image: Any, axis: int = -1) -> Any:
    """The spectrum image as a 3-D (y, x, energy) array (numpy or dask, not copied).

    Raises ValueError for anything that is not 3-D (a 2-D map, a 1-D spectrum).
    """
    si = spectrum_image if _is_dask(spectrum_image) or isinstance(
        spectrum_image, np.ndarray) else np.asarray(spectrum_image)
    if si.ndim != 3:
        what = {1: "a single spectrum", 2: "an image/map"}.get(si.ndim, "not a spectrum image")
        raise ValueError(
            f"a spectrum image must be 3-D (scan y, scan x, energy); got a {si.ndim}-D "
            f"array of shape {tuple(si.shape)} ({what})"
        )
    if not -3 <= axis <= 2:
        raise ValueError(f"energy axis index {axis} is out of range for a 3-D array")
    if not (np.issubdtype(si.dtype, np.integer) or np.issubdtype(si.dtype, np.floating)):
        raise ValueError(f"spectrum image dtype {si.dtype} is not numeric counts")
    return si if axis in (-1, 2) else _moveaxis(si, axis, -1)


def _moveaxis(a: Any, src: int, dst: int) -> Any:
    if _is_dask(a):
        import dask.array as da

        return da.moveaxis(a, src, dst)
    return np.moveaxis(a, src, dst)


def sum_spectrum(spectrum_image: Any, axis: int = -1) -> np.ndarray:
    """Sum over all scan pixels: shape (n_channels,), float64 counts (computes dask)."""
    si = as_spectrum_cube(spectrum_image, axis)
    s = si.sum(axis=(0, 1), dtype=np.float64)
    return _dense(s.compute() if _is_dask(s) else s)


def _bin_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.int64) if np.issubdtype(dtype, np.integer) else np.dtype(np.float64)


def bin_spatial(spectrum_image: Any, factor: int, axis: int = -1) -> Any:
    """Sum ``factor`` × ``factor`` blocks of scan pixels (counts are preserved).

    Returns (ny // factor, nx // factor, n_channels) with the energy axis last,
    int64 for integer input, float64 otherwise; rows/columns that do not fill
    a block are dropped. Dask input stays lazy.
    """
    factor = _check_factor(factor)
    si = as_spectrum_cube(spectrum_image, axis)
    if factor == 1:
        return si
    dt = _bin_dtype(si.dtype)
    if _is_dask(si):
        import dask.array as da

        return da.coarsen(np.sum, si.astype(dt), {0: factor, 1: factor}, trim_excess=True)
    return _bin_blocks(np.asarray(si, dtype=dt), factor)


def _check_factor(factor: int) -> int:
    if int(factor) != factor or factor < 1:
        raise ValueError(f"binning factor must be a positive integer, got {factor!r}")
    return int(factor)


def _bin_blocks(a: np.ndarray, f: int) -> np.ndarray:
    """Sum f×f blocks over the first two axes of a 2-D or 3-D numpy array."""
    ny, nx = a.shape[0] // f, a.shape[1] // f
    if ny == 0 or nx == 0:
        raise ValueError(f"binning {f}x{f} is larger than the scan {a.shape[:2]}")
    a = a[: ny * f, : nx * f]
    return a.reshape((ny, f, nx, f) + a.shape[2:]).sum(axis=(1, 3))


def _window_sum(si: Any, sl: slice | None) -> Any:
    if sl is None or sl.stop <= sl.start:
        return None
    return si[:, :, sl].sum(axis=-1, dtype=np.float64)


def _centre(axis: EnergyAxis, sl: slice) -> float:
    return axis.offset_kev + axis.scale_kev * (sl.start + sl.stop - 1) / 2.0


def extract_maps(
    spectrum_image: Any,
    energy_axis: EnergyAxis | Mapping[str, Any],
    elements: Iterable[str],
    *,
    beam_energy_kv: float | None = None,
    resolution_ev: float | None = None,
    binning: int = 1,
    axis: int | None = None,
    lines: Mapping[str, str] | None = None,
    clip_negative: bool = True,
) -> ExtractedMaps:
    """Background-subtracted X-ray line maps, one per element, in counts.

    spectrum_image: (ny, nx, n_channels) counts (numpy or dask; ``axis`` says
    where the energy axis is, default ``energy_axis.axis`` or -1).
    energy_axis: calibration (EnergyAxis or dict with offset, scale, units).
    The line per element follows :func:`fusedem.spectra.lines.choose_line`;
    ``resolution_ev`` is the FWHM at Mn Kα (default 130 eV). Each map is the
    sum over the integration window (line ± 1 FWHM) minus a linear background
    interpolated between the mean counts of the two background windows
    (one window only: flat). ``binning`` sums b×b pixel blocks afterwards.
    Dask input is computed one element at a time (only its window channels).
    """
    ea = EnergyAxis.from_dict(energy_axis)
    ax = ea.axis if axis is None else axis
    si = as_spectrum_cube(spectrum_image, ax)
    ea = ea.with_size(si.shape[-1])
    plan = plan_lines(elements, ea, beam_energy_kv=beam_energy_kv,
                      resolution_ev=resolution_ev, lines=lines)
    return extract_with_windows(si, ea, plan, binning=binning, axis=-1,
                                clip_negative=clip_negative)


def extract_with_windows(spectrum_image: Any, energy_axis: EnergyAxis | Mapping[str, Any],
                         windows: Mapping[str, LineWindows], *, binning: int = 1,
                         axis: int | None = None, clip_negative: bool = True) -> ExtractedMaps:
    """:func:`extract_maps` with the windows given (``plan_lines``'s, or
    ``LineWindows.from_dict`` of a layer's metadata) instead of planned: the maps
    (ny // binning, nx // binning) of the same extraction, e.g. from other counts."""
    ea = EnergyAxis.from_dict(energy_axis)
    si = as_spectrum_cube(spectrum_image, ea.axis if axis is None else axis)
    binning = _check_factor(binning)
    ea = ea.with_size(si.shape[-1])
    plan = dict(windows)
    maps: dict[str, np.ndarray] = {}
    for sym, lw in plan.items():
        m = _line_map(si, ea, lw)
        if binning > 1:
            m = _bin_blocks(m, binning)
        maps[sym] = np.maximum(m, 0.0) if clip_negative else m
    return ExtractedMaps(maps, plan, ea, binning, clip_negative)


def _line_map(si: Any, ea: EnergyAxis, lw: LineWindows) -> np.ndarray:
    """Integrated counts minus linear background for one line, shape (ny, nx)."""
    isl = ea.channels(*lw.integration)
    bsl = [None if w is None else ea.channels(*w) for w in lw.background]
    bsl = [s if s is not None and s.stop > s.start else None for s in bsl]
    parts = [_window_sum(si, isl)] + [_window_sum(si, s) for s in bsl]
    if _is_dask(si):
        import dask

        parts = list(dask.compute(*parts))
    parts = [None if p is None else _dense(p) for p in parts]
    total = parts[0]
    n_int = isl.stop - isl.start
    (left, right), (sl_l, sl_r) = parts[1:], bsl
    if left is not None and right is not None:
        mean_l, mean_r = left / (sl_l.stop - sl_l.start), right / (sl_r.stop - sl_r.start)
        e_l, e_r = _centre(ea, sl_l), _centre(ea, sl_r)
        t = (_centre(ea, isl) - e_l) / (e_r - e_l)
        background = n_int * ((1.0 - t) * mean_l + t * mean_r)
    elif left is not None or right is not None:
        side, s = (left, sl_l) if left is not None else (right, sl_r)
        background = n_int * side / (s.stop - s.start)
    else:
        background = 0.0
    return total - background
