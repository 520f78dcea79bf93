"""Calibrated energy axis of a spectrum image."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

_UNIT_TO_KEV = {"kev": 1.0, "ev": 1e-3}


def _unit_factor(units: Any) -> float:
    """keV per unit; ValueError for units that are not an energy we know."""
    key = str(units).strip().lower() if units is not None else ""
    if key not in _UNIT_TO_KEV:
        raise ValueError(
            f"energy axis units {units!r} are not known: expected 'keV' or 'eV' "
            "(the spectrum image has no usable energy calibration)"
        )
    return _UNIT_TO_KEV[key]


@dataclass(frozen=True)
class EnergyAxis:
    """Linear energy calibration: channel ``i`` is at ``offset + i * scale`` ``units``.

    ``units`` is 'keV' or 'eV' (case-insensitive); ``size`` is the number of
    channels (None when unknown; then it is taken from the data). ``axis`` is the
    index of the energy axis in the spectrum-image array (default last).
    Construction raises ValueError for an uncalibrated axis (scale 0, None,
    NaN or negative; units not an energy).
    """

    offset: float
    scale: float
    units: str = "keV"
    size: int | None = None
    axis: int = -1

    def __post_init__(self) -> None:
        if self.scale is None or not _finite(self.scale) or float(self.scale) <= 0:
            raise ValueError(
                f"energy axis is not calibrated (scale={self.scale!r}): "
                "a positive energy per channel is needed"
            )
        if self.offset is None or not _finite(self.offset):
            raise ValueError(f"energy axis offset {self.offset!r} is not a number")
        _unit_factor(self.units)
        if self.size is not None and int(self.size) < 2:
            raise ValueError(f"energy axis needs at least 2 channels, got {self.size}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "EnergyAxis") -> "EnergyAxis":
        """Build from a mapping with keys offset, scale, units[, size, axis].

        Accepts the ``energy_axis`` dict of fusedem layer metadata and
        RosettaSciIO axis dicts alike (extra keys ignored).
        """
        if isinstance(d, EnergyAxis):
            return d
        missing = [k for k in ("scale", "units") if d.get(k) is None]
        if missing:
            raise ValueError(f"energy axis is not calibrated: missing {missing}")
        size = d.get("size")
        return cls(
            offset=float(d.get("offset") or 0.0),
            scale=float(d["scale"]),
            units=str(d["units"]),
            size=None if size is None else int(size),
            axis=int(d.get("axis", -1)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (offset, scale, units, size, axis) for layer metadata."""
        return {"offset": float(self.offset), "scale": float(self.scale),
                "units": self.units, "size": self.size, "axis": self.axis}

    @property
    def offset_kev(self) -> float:
        """Energy of channel 0 in keV."""
        return float(self.offset) * _unit_factor(self.units)

    @property
    def scale_kev(self) -> float:
        """Channel width in keV."""
        return float(self.scale) * _unit_factor(self.units)

    def with_size(self, size: int) -> "EnergyAxis":
        """This axis with ``size`` channels; ValueError if a different size was set."""
        if self.size is not None and int(self.size) != int(size):
            raise ValueError(
                f"energy axis has {self.size} channels but the spectrum image has "
                f"{size} along its energy axis"
            )
        return EnergyAxis(self.offset, self.scale, self.units, int(size), self.axis)

    def energies_kev(self) -> np.ndarray:
        """Channel energies, shape (size,), keV."""
        if self.size is None:
            raise ValueError("energy axis size is unknown")
        return self.offset_kev + self.scale_kev * np.arange(int(self.size))

    @property
    def range_kev(self) -> tuple[float, float]:
        """(first, last) channel energy in keV."""
        if self.size is None:
            raise ValueError("energy axis size is unknown")
        return self.offset_kev, self.offset_kev + self.scale_kev * (int(self.size) - 1)

    def channels(self, lo_kev: float, hi_kev: float) -> slice:
        """Channels whose energies lie in [lo_kev, hi_kev], clipped to the axis.

        The slice may be empty (start >= stop) when the interval misses the axis.
        """
        n = int(self.size) if self.size is not None else None
        start = math.ceil((lo_kev - self.offset_kev) / self.scale_kev - 1e-9)
        stop = math.floor((hi_kev - self.offset_kev) / self.scale_kev + 1e-9) + 1
        start = max(start, 0)
        if n is not None:
            stop = min(stop, n)
        return slice(start, max(stop, start))


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
