"""Data model shared by all readers: :class:`Dataset`, :class:`DatasetLayer`, :class:`ReadError`.

Also the naming rules that decide what an array *is* from its name
(HAADF/ADF/DF detector images, element maps) and the length-unit handling
(every calibrated length axis is converted to nanometres).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..elements import element_symbol_or_none

ROLES = ("haadf", "element", "spectrum_image", "image", "fused", "haadf_model",
         "denoised_spectrum_image", "edge_map", "composition")

#: Names of Z-contrast detector images (case-insensitive), e.g. HAADF, ADF, DF, DF4, DF-S, HAADF_1.
_HAADF_RE = re.compile(r"^(HAADF|ADF|DF|HAADF-?STEM)(?:[\s_\-]?[A-Za-z0-9]{0,3})?$", re.IGNORECASE)
#: Other detector images: BF, ABF, SE, BSE, DF images with longer names...
_IMAGE_RE = re.compile(r"^(BF|ABF|SE|BSE|SEI|BEI|STEM|ADF[\w\-]*|DF[\w\-]*)$", re.IGNORECASE)

_TO_NM = {"nm": 1.0, "µm": 1e3, "μm": 1e3, "um": 1e3, "micron": 1e3, "mm": 1e6, "m": 1e9,
          "pm": 1e-3, "Å": 0.1, "A": 0.1, "angstrom": 0.1}


class ReadError(ValueError):
    """A file cannot be used: unreadable, corrupt, inconsistent or without usable data.

    The message always names the file and the problem.
    """


def haadf_name(name: str) -> bool:
    """True when ``name`` names a Z-contrast (HAADF/ADF/DF) detector image."""
    return bool(_HAADF_RE.match(name.strip()))


def classify_name(name: str) -> tuple[str, str | None] | None:
    """Role and element symbol implied by an array name, or None when unknown.

    'HAADF'/'adf'/'DF' -> ('haadf', None); 'Dy', 'Co-EELS', 'O_K' -> ('element', 'Dy'|'Co'|'O');
    'BF', 'SE' -> ('image', None).  Detector names win over element symbols
    (so 'DF' is a detector, not an element).
    """
    if name.strip().lower().replace(" ", "_") == "haadf_model":
        return ("haadf_model", None)
    if haadf_name(name):
        return ("haadf", None)
    if _IMAGE_RE.match(name.strip()):
        return ("image", None)
    sym = element_symbol_or_none(name)
    if sym is not None:
        return ("element", sym)
    return None


def length_to_nm(scale: float, units: str | None) -> tuple[float, str]:
    """Convert a calibrated length ``scale`` in ``units`` to nm; others pass through.

    Uncalibrated axes (empty/unknown units, or 'pixel') come back as (scale, 'pixel').
    """
    u = (units or "").strip()
    if u in _TO_NM:
        return float(scale) * _TO_NM[u], "nm"
    if u in ("", "<undefined>", "px", "pixel", "pixels"):
        return float(scale), "pixel"
    return float(scale), u


@dataclass
class DatasetLayer:
    """One array of a :class:`Dataset`, ready to become a napari layer.

    ``data``: numpy or dask array. Images are (ny, nx); spectrum images are
    (n_energy, ny, nx) with the energy axis first (``energy_axis['axis'] == 0``).
    ``scale``/``translate``: per axis, in ``units`` (lengths in nm, energy in eV/keV).
    """

    name: str
    data: Any
    role: str
    element: str | None = None
    scale: tuple[float, ...] = ()
    units: tuple[str, ...] = ()
    translate: tuple[float, ...] = ()
    energy_axis: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nd = len(self.data.shape)
        self.scale = tuple(float(s) for s in self.scale) if self.scale else (1.0,) * nd
        self.units = tuple(self.units) if self.units else ("pixel",) * nd
        self.translate = tuple(float(t) for t in self.translate) if self.translate else (0.0,) * nd
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the last two (scan) axes."""
        return tuple(self.data.shape[-2:])


@dataclass
class Dataset:
    """Everything usable that was read from one file, folder or file selection."""

    source: str
    layers: list[DatasetLayer] = field(default_factory=list)
    #: what the reader changed or left out, for the user (e.g. an image it could not place)
    notes: list[str] = field(default_factory=list)

    @property
    def haadf(self) -> DatasetLayer | None:
        """The first HAADF/ADF/DF layer, or None."""
        return next((ly for ly in self.layers if ly.role == "haadf"), None)

    @property
    def element_maps(self) -> dict[str, DatasetLayer]:
        """Element symbol -> its map layer, in file order (first of duplicates kept)."""
        out: dict[str, DatasetLayer] = {}
        for ly in self.layers:
            if ly.role == "element" and ly.element and ly.element not in out:
                out[ly.element] = ly
        return out

    @property
    def spectrum_images(self) -> list[DatasetLayer]:
        """All spectrum-image layers (energy axis first)."""
        return [ly for ly in self.layers if ly.role == "spectrum_image"]


def check_numeric(source: str, name: str, arr: Any) -> Any:
    """Return ``arr`` if it is a numeric array, else raise :class:`ReadError`."""
    dtype = getattr(arr, "dtype", None)
    if dtype is None or not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise ReadError(f"{source}: array {name!r} is not numeric (dtype {dtype})")
    if np.issubdtype(dtype, np.complexfloating):
        raise ReadError(f"{source}: array {name!r} is complex; expected real intensities")
    return arr


def check_bundle(source: str, layers: list[DatasetLayer], *, need_maps: bool = True) -> None:
    """Validate a map bundle: 2-D maps (or 3-D frame series) of one shape, at least one element map."""
    if not layers:
        raise ReadError(f"{source}: no HAADF image or element maps found")
    for ly in layers:
        if len(ly.data.shape) not in (2, 3):
            raise ReadError(f"{source}: {ly.name!r} has shape {tuple(ly.data.shape)}; expected a 2-D map "
                            "or a 3-D series of frames (frame, ny, nx)")
    shapes = {ly.name: tuple(ly.data.shape) for ly in layers}
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in shapes.items())
        raise ReadError(f"{source}: maps have different shapes ({desc}); all must match the HAADF")
    if need_maps and not any(ly.role == "element" for ly in layers):
        names = ", ".join(shapes)
        raise ReadError(f"{source}: contains {names} but no elemental maps (arrays named by element symbol)")
