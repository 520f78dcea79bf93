"""Format readers behind :func:`fusedem.tomo.io.load_tilt_series` (see its module docstring).

Each reader returns a :class:`RawSeries`: stacks (tilt first), angles when the file has
them, pixel size in nm; :mod:`fusedem.tomo.io` checks and assembles it.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io._dataset import ReadError, check_numeric, classify_name, length_to_nm

HAADF_ANGLE_KEYS = ("haadf_angles", "haadfTiltAngles", "haadf_tilt_angles", "theta_haadf")
CHEM_ANGLE_KEYS = ("chem_angles", "chemTiltAngles", "chem_tilt_angles", "theta_chem")
BOTH_ANGLE_KEYS = ("angles", "tilt_angles", "tiltAngles", "tilts", "theta")
STACK_SUFFIXES = (".mrc", ".st", ".ali", ".hspy", ".tif", ".tiff")
PER_TILT_SUFFIXES = (".emd", ".bcf", ".dm3", ".dm4", ".hspy")
ANGLE_SUFFIXES = (".rawtlt", ".tlt")
_META = {"pixel_size", "scale", "units", "unit"}


@dataclass
class RawSeries:
    """What a reader found; angles None when the file has none."""

    source: str
    haadf: Any = None
    maps: dict[str, Any] = field(default_factory=dict)
    haadf_angles: Any = None
    chem_angles: Any = None
    pixel_size: float | None = None
    notes: list[str] = field(default_factory=list)
    angles_consumed: bool = False  #: the user's per-file angles were used by the reader


def _key(d: dict, keys: tuple[str, ...]) -> Any:
    low = {k.lower(): k for k in d}
    return next((d[low[k.lower()]] for k in keys if k.lower() in low), None)


def _pixel_size(source: str, value: Any, units: Any) -> float | None:
    if value is None:
        return None
    v = np.asarray(value, dtype=float).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ReadError(f"{source}: invalid pixel size {value!r}; expected a positive number")
    u = units.decode() if isinstance(units, bytes) else units
    u = str(np.asarray(u).ravel()[0]) if u is not None else "nm"
    size, unit = length_to_nm(float(v[-1]), u)
    return size if unit == "nm" else None


def _from_arrays(source: str, arrays: dict[str, Any], matlab: bool = False) -> RawSeries:
    """Stacks, angles and pixel size of a name -> array bundle."""
    ha = _key(arrays, HAADF_ANGLE_KEYS)
    ca = _key(arrays, CHEM_ANGLE_KEYS)
    both = _key(arrays, BOTH_ANGLE_KEYS)
    ha = both if ha is None else ha
    ca = both if ca is None else ca
    raw = RawSeries(source, haadf_angles=None if ha is None else np.ravel(ha).astype(float),
                    chem_angles=None if ca is None else np.ravel(ca).astype(float))
    raw.pixel_size = _pixel_size(source, _key(arrays, ("pixel_size", "scale")),
                                 _key(arrays, ("units", "unit")))
    angle_keys = {k.lower() for k in HAADF_ANGLE_KEYS + CHEM_ANGLE_KEYS + BOTH_ANGLE_KEYS}
    for name, arr in arrays.items():
        if name.lower() in angle_keys or name.lower() in _META or name.startswith("_"):
            continue
        kind = classify_name(name)
        if kind is None or kind[0] not in ("haadf", "element"):
            raw.notes.append(f"array {name!r} ignored (neither HAADF nor an element symbol)")
            continue
        check_numeric(source, name, arr)
        angles = raw.haadf_angles if kind[0] == "haadf" else raw.chem_angles
        arr = _tilt_first(source, name, np.asarray(arr), angles, matlab)
        if kind[0] == "haadf":
            raw.haadf = arr
        elif kind[1] not in raw.maps:
            raw.maps[kind[1]] = arr
    return raw


def _tilt_first(source: str, name: str, arr: np.ndarray, angles: Any, matlab: bool) -> np.ndarray:
    """The stack with its tilt axis first. MATLAB stacks are (ny, nx, n_tilts) unless the
    first axis alone matches the angle count."""
    if arr.ndim != 3:
        raise ReadError(f"{source}: {name!r} has shape {arr.shape}; expected a tilt series "
                        "(n_tilts, ny, nx)")
    if not matlab:
        return arr
    n = None if angles is None else np.size(angles)
    if n is not None and arr.shape[0] == n and arr.shape[-1] != n:
        return arr
    return np.moveaxis(arr, -1, 0)


def _read_npz(path: Path) -> RawSeries:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ReadError(f"{path}: cannot read .npz, it may be truncated or corrupt ({exc})") from None
    return _from_arrays(str(path), arrays)


def _h5_arrays(path: Path, transpose: bool = False) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        for k, v in f.items():
            if isinstance(v, h5py.Dataset) and not k.startswith("#"):
                a = v[()]
                out[k] = a.T if transpose and isinstance(a, np.ndarray) else a
        for k in f.attrs:
            out.setdefault(k, f.attrs[k])
    return out


def _read_h5(path: Path) -> RawSeries:
    import h5py

    if not h5py.is_hdf5(path):
        raise ReadError(f"{path}: not an HDF5 file")
    try:
        arrays = _h5_arrays(path)
    except Exception as exc:
        raise ReadError(f"{path}: cannot read HDF5, it may be truncated or corrupt ({exc})") from None
    return _from_arrays(str(path), arrays)


def _read_mat(path: Path) -> RawSeries:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # MATLAB v7.3: HDF5 with column-major (reversed) axes
        try:
            arrays = _h5_arrays(path, transpose=True)
        except Exception as exc:
            raise ReadError(f"{path}: cannot read MATLAB v7.3 file ({exc})") from None
    else:
        try:
            arrays = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        except Exception as exc:
            raise ReadError(f"{path}: cannot read MATLAB file ({type(exc).__name__}: {exc})") from None
    return _from_arrays(str(path), arrays, matlab=True)


# ---------------------------------------------------------------- folders of stacks
def _sidecar_angles(stack: Path) -> np.ndarray | None:
    from .io import read_angles

    for suffix in ANGLE_SUFFIXES:
        side = stack.with_suffix(suffix)
        if side.is_file():
            return read_angles(side)
    return None


def _read_mrc(path: Path) -> tuple[np.ndarray, float | None]:
    import mrcfile

    try:
        with mrcfile.open(path, permissive=True) as m:
            data = np.array(m.data)
            vx = float(m.voxel_size.x)
    except Exception as exc:
        raise ReadError(f"{path}: cannot read MRC ({type(exc).__name__}: {exc})") from None
    return data, (vx / 10.0 if vx > 0 else None)  # Å -> nm


def _hspy_signal(path: Path) -> dict:
    try:
        from rsciio.hspy import file_reader
    except ImportError as exc:
        raise ReadError(f"{path}: reading .hspy needs RosettaSciIO ({exc}); install fusedem[io]") from None
    try:
        return file_reader(str(path))[0]
    except Exception as exc:
        raise ReadError(f"{path}: cannot read .hspy ({type(exc).__name__}: {exc})") from None


def _hspy_stack(path: Path, sig: dict) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    """(stack tilt-first, angles or None, pixel nm) of a HyperSpy/ETSpy tilt stack."""
    from ..io._instrument import _ordered_axes

    data = np.asarray(sig["data"])
    axes = _ordered_axes(sig)
    nav = [i for i, a in enumerate(axes) if a.get("navigate")]
    t = nav[0] if len(nav) == 1 else 0
    data = np.moveaxis(data, t, 0)
    ax = axes[t]
    angles = None
    if ax.get("axis") is not None:
        angles = np.asarray(ax["axis"], dtype=float)
    elif str(ax.get("units", "")).lower() in ("degrees", "deg", "°", "degree") or any(
            w in str(ax.get("name", "")).lower() for w in ("tilt", "angle", "alpha")):
        angles = float(ax.get("offset", 0.0)) + float(ax.get("scale", 1.0)) * np.arange(ax["size"])
    tomo = (sig.get("metadata") or {}).get("Tomography") or {}
    if tomo.get("tilts") is not None and np.size(tomo["tilts"]) == data.shape[0]:
        angles = np.asarray(tomo["tilts"], dtype=float).ravel()
    spatial = [a for i, a in enumerate(axes) if i != t]
    size, unit = length_to_nm(float(spatial[-1].get("scale", 1.0)), str(spatial[-1].get("units", "")))
    return data, angles, (size if unit == "nm" else None)


def _hspy_name(path: Path, sig: dict) -> str:
    title = str(((sig.get("metadata") or {}).get("General") or {}).get("title") or "")
    return title if classify_name(title) else path.stem


def _stack_file(path: Path) -> tuple[str, np.ndarray, np.ndarray | None, float | None] | None:
    """(name, stack, angles, pixel nm) of one stack file, None when it is not a 3-D stack."""
    suffix = path.suffix.lower()
    if suffix in (".mrc", ".st", ".ali"):
        data, px = _read_mrc(path)
        return (path.stem, data, _sidecar_angles(path), px) if data.ndim == 3 else None
    if suffix == ".hspy":
        sig = _hspy_signal(path)
        if np.ndim(sig["data"]) != 3 or any(
                str(a.get("units", "")).lower() in ("ev", "kev") for a in sig["axes"]):
            return None
        data, angles, px = _hspy_stack(path, sig)
        side = _sidecar_angles(path)
        return _hspy_name(path, sig), data, side if side is not None else angles, px
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            data = tifffile.imread(path)
        except Exception as exc:
            raise ReadError(f"{path}: cannot read TIFF ({exc})") from None
        return (path.stem, data, _sidecar_angles(path), None) if data.ndim == 3 else None
    return None


def _same(source: str, what: str, a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return a if b is None else b
    if a.shape != b.shape or not np.allclose(a, b, atol=1e-3):
        raise ReadError(f"{source}: the element tilt series have different {what}; fused "
                        "tomography needs one set of chemical tilts")
    return a


def _read_stack_folder(folder: Path, files: list[Path]) -> RawSeries:
    raw = RawSeries(str(folder))
    sizes = []
    for f in files:
        got = _stack_file(f)
        if got is None:
            continue
        name, data, angles, px = got
        kind = classify_name(name)
        if kind is None or kind[0] not in ("haadf", "element"):
            raw.notes.append(f"{f.name} ignored (not named HAADF or by an element symbol)")
            continue
        check_numeric(str(f), name, data)
        sizes.append(px)
        if kind[0] == "haadf":
            raw.haadf, raw.haadf_angles = data, angles
        elif kind[1] not in raw.maps:
            raw.maps[kind[1]] = data
            raw.chem_angles = _same(str(folder), "angles", raw.chem_angles, angles)
    known = [s for s in sizes if s is not None]
    raw.pixel_size = known[0] if known else None
    return raw


# ---------------------------------------------------------------- per-tilt instrument files
def stage_tilt(layers: list) -> float | None:
    """The stage tilt (alpha, degrees) in any layer's instrument metadata, else None."""
    for ly in layers:
        ai = ((ly.metadata.get("original") or ly.metadata.get("original_metadata") or {})
              .get("Acquisition_instrument") or {})
        for mic in ("TEM", "SEM"):
            tilt = ((ai.get(mic) or {}).get("Stage") or {}).get("tilt_alpha")
            if tilt is not None:
                try:
                    return float(tilt)
                except (TypeError, ValueError):
                    return None
    return None


def velox_alpha_tilt(path: Path) -> float | None:
    """A Velox .emd file's stage alpha tilt in degrees (``Stage.AlphaTilt`` of its original
    metadata, stored in radians), None when absent or not a Velox file."""
    if path.suffix.lower() != ".emd":
        return None
    try:
        from rsciio.emd import file_reader

        for sig in file_reader(str(path), lazy=True):
            alpha = ((sig.get("original_metadata") or {}).get("Stage") or {}).get("AlphaTilt")
            if alpha is not None:
                return float(np.degrees(float(alpha)))
    except Exception:  # unreadable metadata: the angle must then be given
        return None
    return None


def _read_per_tilt(folder: Path, files: list[Path], elements: list[str] | None,
                   extraction: dict | None, user_angles: np.ndarray | None) -> RawSeries:
    from ..io import extract_element_layers, load

    raw = RawSeries(str(folder))
    if user_angles is not None and user_angles.size != len(files):
        raise ReadError(f"{folder}: {len(files)} per-tilt files but {user_angles.size} angles "
                        "given; give one angle per file, in file-name order")
    haadf, chem = [], []  # (angle, file, array / maps)
    for i, f in enumerate(files):
        ds = load(f, extract=True)
        maps = {el: ly.data for el, ly in ds.element_maps.items()}
        if elements and any(e not in maps for e in elements) and ds.spectrum_images:
            maps = {ly.element: ly.data for ly in
                    extract_element_layers(ds, elements, **(extraction or {}))}
        angle = (float(user_angles[i]) if user_angles is not None else
                 stage_tilt(ds.layers) if stage_tilt(ds.layers) is not None else velox_alpha_tilt(f))
        if angle is None:
            raise ReadError(f"{f}: no stage tilt in its metadata; give the angles of all "
                            "files (e.g. --angles FILE, one per file in name order)")
        if ds.haadf is not None:
            haadf.append((angle, f, np.asarray(ds.haadf.data)))
            if ds.haadf.units[-1] == "nm" and raw.pixel_size is None:
                raw.pixel_size = float(ds.haadf.scale[-1])
        if maps:
            chem.append((angle, f, {k: np.asarray(v) for k, v in maps.items()}))
    raw.angles_consumed = user_angles is not None
    if haadf:
        haadf.sort(key=lambda t: t[0])
        _check_shapes(str(folder), [(f, a.shape) for _, f, a in haadf])
        raw.haadf = np.stack([a for _, _, a in haadf])
        raw.haadf_angles = np.array([t for t, _, _ in haadf])
    if chem:
        chem.sort(key=lambda t: t[0])
        names = list(chem[0][2])
        for _, f, m in chem:
            if list(m) != names:
                raise ReadError(f"{f}: has maps of {', '.join(m)} but {chem[0][1].name} of "
                                f"{', '.join(names)}; every chemical tilt needs the same elements")
        _check_shapes(str(folder), [(f, m[names[0]].shape) for _, f, m in chem])
        raw.maps = {el: np.stack([m[el] for _, _, m in chem]) for el in names}
        raw.chem_angles = np.array([t for t, _, _ in chem])
    raw.notes.append(f"{len(files)} per-tilt files: {len(haadf)} HAADF tilts, {len(chem)} "
                     "chemical tilts, sorted by angle")
    return raw


def _check_shapes(source: str, shapes: list[tuple[Path, tuple]]) -> None:
    ref_file, ref = shapes[0]
    for f, s in shapes[1:]:
        if s != ref:
            raise ReadError(f"{source}: {f.name} is {s[-2]} x {s[-1]} pixels but {ref_file.name} "
                            f"is {ref[-2]} x {ref[-1]}; all tilts need one detector size")


def _folder_kind(files: list[Path]) -> str:
    if any(f.suffix.lower() in (".mrc", ".st", ".ali", ".tif", ".tiff") for f in files):
        return "stacks"
    for f in files:
        if f.suffix.lower() == ".hspy":
            return "stacks" if _stack_file(f) is not None else "per_tilt"
    return "per_tilt"


def read_any(path: Path, *, elements: list[str] | None = None, extraction: dict | None = None,
             per_tilt_angles: np.ndarray | None = None) -> RawSeries:
    """Dispatch on the path: bundle, MATLAB file, folder of stacks or of per-tilt files."""
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".npz":
            return _read_npz(path)
        if suffix in (".h5", ".hdf5"):
            return _read_h5(path)
        if suffix == ".mat":
            return _read_mat(path)
        if suffix in STACK_SUFFIXES:
            return read_any(path.parent, elements=elements, extraction=extraction,
                            per_tilt_angles=per_tilt_angles)
        if suffix in PER_TILT_SUFFIXES:
            raise ReadError(f"{path}: one instrument file is one tilt; give the folder that "
                            "holds one file per tilt")
        raise ReadError(f"{path}: unsupported tilt-series file {suffix!r} (expected .npz, .h5, "
                        ".mat, .mrc/.hspy/.tif stacks or a folder)")
    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    stacks = [f for f in files if f.suffix.lower() in STACK_SUFFIXES]
    per_tilt = [f for f in files if f.suffix.lower() in PER_TILT_SUFFIXES]
    if not stacks and not per_tilt:
        raise ReadError(f"{path}: no tilt-series files (.mrc/.hspy/.tif stacks named HAADF or by "
                        "element, or one .emd/.bcf/.dm4/.hspy file per tilt)")
    if _folder_kind(stacks or per_tilt) == "stacks":
        return _read_stack_folder(path, stacks)
    return _read_per_tilt(path, per_tilt, elements, extraction, per_tilt_angles)


def sniff_tilt_series(path: str | Path) -> bool:
    """Whether ``path`` looks like a tilt series this module reads (never raises)."""
    try:
        p = Path(path)
        suffix = p.suffix.lower()
        if p.is_file() and suffix == ".npz":
            with zipfile.ZipFile(p) as zf:
                names = {n[:-4].lower() for n in zf.namelist()}
        elif p.is_file() and suffix in (".h5", ".hdf5", ".mat"):
            import h5py

            if not h5py.is_hdf5(p):
                return suffix == ".mat"
            with h5py.File(p, "r") as f:
                names = {k.lower() for k in f} | {k.lower() for k in f.attrs}
        elif p.is_file() and suffix in (".mrc", ".st", ".ali"):
            return True
        elif p.is_dir():
            return any(f.suffix.lower() in (".mrc", ".st", ".ali") for f in p.iterdir())
        else:
            return False
        keys = {k.lower() for k in HAADF_ANGLE_KEYS + CHEM_ANGLE_KEYS + BOTH_ANGLE_KEYS}
        return bool(names & keys)
    except Exception:
        return False
