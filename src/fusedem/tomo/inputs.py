"""Validation of tilt series before any computation (clear ValueErrors naming the problem)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..elements import atomic_number, normalize_symbol
from .geometry import check_angles

MIN_DETECTOR = 4  #: smallest ny and nx accepted


@dataclass(frozen=True)
class TiltData:
    """Validated inputs: HAADF (n_H, ny, nx) and chemical stacks (n_c, ny, nx), float32."""

    haadf: np.ndarray
    haadf_angles: np.ndarray  #: (n_H,) degrees
    chem: dict[str, np.ndarray]  #: element symbol -> (n_c, ny, nx) counts (negatives set to 0)
    chem_angles: np.ndarray  #: (n_c,) degrees
    z: dict[str, int]  #: element symbol -> atomic number

    @property
    def shape(self) -> tuple[int, int]:
        """Detector size (ny, nx)."""
        return self.haadf.shape[1:]


def check_stack(name: str, a: object) -> np.ndarray:
    """A (n_tilts, ny, nx) real, finite stack as float32, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: complex values are not supported")
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a tilt series (n_tilts, ny, nx), got shape {arr.shape}")
    if min(arr.shape[1:]) < MIN_DETECTOR:
        raise ValueError(f"{name}: projections of {arr.shape[1:]} pixels are too small "
                         f"(at least {MIN_DETECTOR} x {MIN_DETECTOR})")
    arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite.all(axis=(1, 2))).ravel()
        raise ValueError(f"{name}: {int(arr.size - finite.sum())} NaN or infinite value(s), "
                         f"in projection(s) {bad[:10].tolist()}")
    return arr


def prepare(haadf, haadf_angles, maps: Mapping[str, object], chem_angles) -> TiltData:
    """Validate a fused tilt series; see :func:`fusedem.tomo.fuse_tilt_series` for the shapes."""
    bh = check_stack("HAADF", haadf)
    th = check_angles("haadf_angles", haadf_angles, bh.shape[0])
    if bh.max() <= bh.min():
        raise ValueError("HAADF: the tilt series is constant; it carries no information to fuse")
    if not isinstance(maps, Mapping) or len(maps) == 0:
        raise ValueError("maps must be a non-empty mapping element symbol -> (n_tilts, ny, nx) stack")
    chem: dict[str, np.ndarray] = {}
    tc = None
    for key, a in maps.items():
        sym = normalize_symbol(str(key))
        if sym in chem:
            raise ValueError(f"element {sym} is given twice (keys {list(maps)})")
        arr = check_stack(f"element {key!r}", a)
        if arr.shape[1:] != bh.shape[1:]:
            raise ValueError(f"detector size mismatch: element {key!r} has projections of "
                             f"{arr.shape[1:]} (ny, nx) but the HAADF has {bh.shape[1:]}; "
                             "bin or crop them to the same size")
        if tc is None:
            tc = check_angles("chem_angles", chem_angles, arr.shape[0])
        elif arr.shape[0] != tc.size:
            raise ValueError(f"element {key!r}: {arr.shape[0]} projections but chem_angles has "
                             f"{tc.size}; all elements share the chemical tilts")
        np.maximum(arr, 0, out=arr)  # Poisson counts: negative values carry no counts
        if not np.any(arr > 0):
            raise ValueError(f"element {key!r} has no counts (all projections are zero or negative)")
        chem[sym] = arr
    return TiltData(bh, th, chem, tc, {s: atomic_number(s) for s in chem})
