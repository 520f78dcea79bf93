"""Tilt series in, fused volumes out: the file side of fused electron tomography.

:func:`load_tilt_series` reads any supported input into one :class:`TiltSeries`:

- bundles ``.npz`` / ``.h5``: ``HAADF`` (n_tilts, ny, nx), element stacks named by symbol
  (``Au``, ``Fe-EDS`` ...), ``haadf_angles`` and ``chem_angles`` in degrees (or one
  ``angles`` for both); optional ``pixel_size`` (+ ``units``);
- MATLAB ``.mat`` (v5 through scipy.io, v7.3 through h5py), the same names (also the
  camelCase ``haadfTiltAngles``/``chemTiltAngles``); MATLAB's (ny, nx, n_tilts) stacks
  are recognised by the angle count and turned tilt-first;
- a folder of stacks named by role (``HAADF.mrc``, ``Au.mrc`` ...; ``.mrc`` with IMOD
  ``.rawtlt``/``.tlt`` angle files beside them, or HyperSpy/ETSpy ``.hspy`` stacks whose
  tilt axis or ``metadata.Tomography.tilts`` give the angles); a stack file inside such a
  folder reads the whole folder;
- a folder of per-tilt instrument files (Velox ``.emd``, Bruker ``.bcf``, Gatan ``.dm3/.dm4``,
  ``.hspy`` images), one per tilt, read with :func:`fusedem.io.load` (so element maps are
  extracted from EDS spectrum images as in 2-D); angles from the stage tilt
  (``Acquisition_instrument.TEM.Stage.tilt_alpha``) or given by the user.

Angles given by the user (``angles=``, an array or a text file: one angle per line,
IMOD ``.rawtlt``/``.tlt``, or comma/space separated) replace the file's. Every problem is a
:class:`fusedem.io.ReadError` (a ValueError) naming the file and what is wrong.
Writers are in :mod:`fusedem.tomo._io_results` (re-exported here).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..io._dataset import ReadError
from ._io_formats import RawSeries, read_any, sniff_tilt_series
from ._io_results import SavedTomoResult, load_tomo_result, save_tomo_result, save_volumes

__all__ = ["ReadError", "SavedTomoResult", "TiltSeries", "check_tilt_series", "load_tilt_series",
           "load_tomo_result", "read_angles", "save_tomo_result", "save_volumes",
           "sniff_tilt_series"]

PathLike = str | os.PathLike


@dataclass
class TiltSeries:
    """A fused-tomography input: a dense HAADF tilt series and sparse chemical ones.

    Tilt axis along y (rows); angles in degrees in (-90, 90].
    """

    haadf: np.ndarray  #: (n_H, ny, nx) float32 projections
    haadf_angles: np.ndarray  #: (n_H,) degrees
    maps: dict[str, np.ndarray]  #: element symbol -> (n_c, ny, nx) float32 (counts)
    chem_angles: np.ndarray  #: (n_c,) degrees
    pixel_size: float | None = None  #: detector pixel in nm (None: uncalibrated)
    source: str = ""  #: file or folder read
    notes: list[str] = field(default_factory=list)  #: what the reader assumed or changed

    @property
    def detector_shape(self) -> tuple[int, int]:
        """(ny, nx): rows along the tilt axis, columns across it."""
        return tuple(self.haadf.shape[1:])  # type: ignore[return-value]

    @property
    def elements(self) -> list[str]:
        return list(self.maps)

    def region(self, slices: tuple[int, int] | None = None,
               columns: tuple[int, int] | None = None) -> "TiltSeries":
        """The series restricted to rows ``slices`` = (y0, y1) (slices of the volume) and
        detector columns ``columns`` = (x0, x1), both half-open pixels.

        The columns must be centred on the tilt axis (the detector's centre), since the
        reconstruction puts the axis at the centre of what it is given.
        """
        ny, nx = self.detector_shape
        y0, y1 = slices if slices is not None else (0, ny)
        x0, x1 = columns if columns is not None else (0, nx)
        if not (0 <= y0 < y1 <= ny):
            raise ValueError(f"slices {y0}:{y1} lie outside the {ny} rows of the tilt series "
                             f"(valid: 0 <= a < b <= {ny})")
        if not (0 <= x0 < x1 <= nx):
            raise ValueError(f"crop {x0}:{x1} lies outside the {nx} detector columns "
                             f"(valid: 0 <= x0 < x1 <= {nx})")
        if abs((x0 + x1) - nx) > 1:
            raise ValueError(
                f"crop {x0}:{x1} is not centred on the tilt axis (column {nx / 2:g} of {nx}): an "
                f"off-centre crop moves the axis; use e.g. {max(0, (nx - (x1 - x0)) // 2)}:"
                f"{max(0, (nx - (x1 - x0)) // 2) + (x1 - x0)}")
        cut = (slice(None), slice(y0, y1), slice(x0, x1))
        return replace(self, haadf=self.haadf[cut], maps={k: v[cut] for k, v in self.maps.items()},
                       notes=list(self.notes))

    def check(self) -> None:
        """Raise ValueError naming the problem unless the series can be reconstructed."""
        check_tilt_series(self.haadf, self.haadf_angles, self.maps, self.chem_angles, self.source)


def check_tilt_series(haadf: Any, haadf_angles: Any, maps: dict[str, Any], chem_angles: Any,
                      source: str = "") -> None:
    """Validate a tilt series before any long computation (ValueError naming the problem):
    stacks (n, ny, nx) of one detector size, one angle per tilt within (-90, 90], at least
    two tilts, finite values, every element with counts."""
    where = f"{source}: " if source else ""
    if not maps:
        raise ValueError(f"{where}no element tilt series (stacks named by element symbol)")
    stacks = {"HAADF": (np.asarray(haadf), np.asarray(haadf_angles, dtype=float), "haadf_angles")}
    for el, m in maps.items():
        stacks[el] = (np.asarray(m), np.asarray(chem_angles, dtype=float), "chem_angles")
    for name, (stack, ang, key) in stacks.items():
        if stack.ndim != 3:
            raise ValueError(f"{where}{name} has shape {stack.shape}; expected a tilt series "
                             "(n_tilts, ny, nx)")
        if ang.ndim != 1 or ang.size != stack.shape[0]:
            raise ValueError(f"{where}{name} has {stack.shape[0]} tilts but {key} has {ang.size} "
                             "angles; give one angle per tilt")
        if stack.shape[0] < 2:
            raise ValueError(f"{where}{name} has only one tilt; tomography needs a tilt series")
        bad = ang[~np.isfinite(ang) | (ang <= -90) | (ang > 90)]
        if bad.size:
            raise ValueError(f"{where}{key} has angle(s) {bad[:3].tolist()} outside (-90, 90] "
                             "degrees (angles must be in degrees)")
        if not np.all(np.isfinite(stack)):
            t = int(np.argwhere(~np.isfinite(stack))[0][0])
            raise ValueError(f"{where}{name} has NaN or infinite values (first in tilt {t})")
    ref = stacks["HAADF"][0].shape[1:]
    other = {k: v[0].shape[1:] for k, v in stacks.items() if v[0].shape[1:] != ref}
    if other:
        desc = ", ".join(f"{k} {a} x {b}" for k, (a, b) in other.items())
        raise ValueError(f"{where}detector sizes differ: HAADF {ref[0]} x {ref[1]}, {desc}; "
                         "all tilt series must have the HAADF's ny x nx")
    for el, m in maps.items():
        if not np.any(np.asarray(m) > 0):
            raise ValueError(f"{where}element {el} has no counts (its tilt series is all <= 0)")


def read_angles(spec: Any, source: str = "angles") -> np.ndarray:
    """Tilt angles in degrees from an array, a list, or a text file (one per line as IMOD's
    ``.rawtlt``/``.tlt``, or separated by commas/spaces; ``#`` starts a comment)."""
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ReadError(f"{path}: cannot read the angle file ({exc.strerror})") from None
        tokens = [t for line in text.splitlines() for t in
                  line.split("#", 1)[0].replace(",", " ").replace(";", " ").split()]
        try:
            values = np.array([float(t) for t in tokens], dtype=float)
        except ValueError as exc:
            raise ReadError(f"{path}: not a list of angles in degrees ({exc})") from None
        if values.size == 0:
            raise ReadError(f"{path}: holds no angles")
        return values
    values = np.asarray(spec, dtype=float).ravel()
    if values.size == 0:
        raise ReadError(f"{source}: no angles given")
    return values


def load_tilt_series(path: PathLike, *, angles: Any = None, haadf_angles: Any = None,
                     chem_angles: Any = None, elements: list[str] | None = None,
                     extraction: dict[str, Any] | None = None) -> TiltSeries:
    """Read a tilt series (any format of the module docstring) into a :class:`TiltSeries`.

    ``angles``: angles for both series when they were acquired at the same tilts (a folder
    of per-tilt files: one per file, in file-name order); ``haadf_angles``/``chem_angles``:
    each separately. Each is an array or a text file and replaces the file's own angles.
    ``elements``: keep (and for spectrum images, extract) these only, in this order.
    ``extraction``: options of :func:`fusedem.io.extract_element_layers` for per-tilt
    spectrum images. Raises :class:`ReadError` naming the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise ReadError(f"{p}: no such file or folder")
    raw: RawSeries = read_any(p, elements=elements, extraction=extraction,
                              per_tilt_angles=None if angles is None else read_angles(angles))
    src = raw.source
    notes = list(raw.notes)
    ha = raw.haadf_angles
    ca = raw.chem_angles
    if angles is not None and not raw.angles_consumed:
        if ha is not None or ca is not None:
            notes.append("the angles given replace the file's own")
        ha = ca = read_angles(angles)
    if haadf_angles is not None:
        ha = read_angles(haadf_angles)
    if chem_angles is not None:
        ca = read_angles(chem_angles)
    if raw.haadf is None:
        raise ReadError(f"{src}: no HAADF tilt series found (a stack named HAADF/ADF/DF)")
    if not raw.maps:
        raise ReadError(f"{src}: no element tilt series found (stacks named by element symbol)")
    if ha is None and ca is None:
        raise ReadError(f"{src}: no tilt angles in the file; give them (e.g. --angles FILE, "
                        "an IMOD .rawtlt file, one angle per line)")
    if ha is None or ca is None:  # one set only: the series share their tilts
        ha = ca = ha if ca is None else ca
    maps = {k: v for k, v in raw.maps.items()}
    if elements:
        missing = [e for e in elements if e not in maps]
        if missing:
            raise ReadError(f"{src}: element(s) {', '.join(missing)} not found; it has "
                            f"{', '.join(maps)}")
        maps = {e: maps[e] for e in elements}
    series = TiltSeries(haadf=np.asarray(raw.haadf, dtype=np.float32),
                        haadf_angles=np.asarray(ha, dtype=float),
                        maps={k: np.asarray(v, dtype=np.float32) for k, v in maps.items()},
                        chem_angles=np.asarray(ca, dtype=float), pixel_size=raw.pixel_size,
                        source=src, notes=notes)
    try:
        series.check()
    except ReadError:
        raise
    except ValueError as exc:
        raise ReadError(str(exc)) from None
    return series
