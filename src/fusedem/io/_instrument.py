"""Instrument files through RosettaSciIO: Velox .emd, Bruker .bcf, Gatan .dm3/.dm4,
and HyperSpy's own .hspy/.zspy (signal type, axes and ``Sample.elements`` kept).

2-D signals become images (HAADF/ADF/DF -> role 'haadf', element-named maps
such as ``Cu`` or ``Fe-EELS`` -> role 'element', others 'image'); 3-D EDS/EELS
spectrum images become role 'spectrum_image' with the energy axis moved
first, shape (n_energy, ny, nx). 1-D sum spectra are skipped. Lengths are
converted to nm. Layers of one scan (same scan shape and pixel size) share
one origin, so they line up exactly; the file's own offsets stay in metadata.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._dataset import DatasetLayer, ReadError, check_numeric, classify_name, length_to_nm

INSTRUMENT_SUFFIXES = (".emd", ".bcf", ".dm3", ".dm4", ".hspy", ".zspy")
_ENERGY_UNITS = ("ev", "kev")


def _plain(obj: Any, depth: int = 0) -> Any:
    """JSON-friendly copy of a metadata tree (numpy scalars -> Python, big arrays dropped)."""
    if depth > 8:
        return None
    if isinstance(obj, dict):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj[:256]]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 256 else f"<array {obj.shape} {obj.dtype}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _read_signals(path: Path, lazy: bool) -> list[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".emd":
            from rsciio.emd import file_reader

            return file_reader(str(path), lazy=lazy)
        if suffix == ".bcf":
            from ._bcf import read_bcf

            return read_bcf(path, lazy)
        if suffix in (".dm3", ".dm4"):
            from rsciio.digitalmicrograph import file_reader

            return file_reader(str(path), lazy=lazy)
        if suffix == ".hspy":
            from rsciio.hspy import file_reader

            return file_reader(str(path), lazy=lazy)
        if suffix == ".zspy":
            from rsciio.zspy import file_reader

            return file_reader(str(path), lazy=lazy)
    except ReadError:
        raise
    except ImportError as exc:
        if suffix == ".zspy" and ("zarr" in str(exc) or "numcodecs" in str(exc)):
            raise ReadError(f"{path}: reading .zspy needs the 'zarr' package ({exc}); "
                            "pip install zarr") from None
        raise ReadError(f"{path}: reading {suffix} needs RosettaSciIO ({exc}); "
                        "install fusedem[io]") from None
    except Exception as exc:  # RosettaSciIO raises many types on damaged files
        raise ReadError(f"{path}: cannot read {suffix} file, it may be truncated or corrupt "
                        f"({type(exc).__name__}: {exc})") from None
    raise ReadError(f"{path}: unsupported instrument format {suffix!r}")


def _ordered_axes(sig: dict) -> list[dict]:
    axes = list(sig["axes"])
    shape = tuple(sig["data"].shape)
    if tuple(a["size"] for a in axes) != shape and all("index_in_array" in a for a in axes):
        axes.sort(key=lambda a: a["index_in_array"])
    if tuple(a["size"] for a in axes) != shape:
        raise ReadError(f"axes sizes {[a['size'] for a in axes]} do not match data shape {shape}")
    return axes


def _is_energy(ax: dict) -> bool:
    return str(ax.get("units", "")).strip().lower() in _ENERGY_UNITS or "energy" in str(ax.get("name", "")).lower()


def _file_metadata(md: dict) -> dict[str, Any]:
    ai = md.get("Acquisition_instrument") or {}
    mic = next((ai[k] for k in ("TEM", "SEM") if k in ai), {})
    det = (mic.get("Detector") or {})
    out: dict[str, Any] = {
        "title": (md.get("General") or {}).get("title"),
        "signal_type": (md.get("Signal") or {}).get("signal_type") or None,
        "beam_energy_keV": mic.get("beam_energy"),
        "elements": list((md.get("Sample") or {}).get("elements", [])),
    }
    eds, eels = det.get("EDS") or {}, det.get("EELS") or {}
    if "energy_resolution_MnKa" in eds:
        out["energy_resolution_eV"] = eds["energy_resolution_MnKa"]
    if "resolution" in eels:
        out["energy_resolution_eV"] = eels["resolution"]
    out["original"] = _plain({k: md[k] for k in ("General", "Signal", "Sample", "Acquisition_instrument")
                              if k in md})
    return _plain(out)


def _signal_layer(path: Path, sig: dict) -> DatasetLayer | None:
    data, md = sig["data"], sig.get("metadata") or {}
    axes = _ordered_axes(sig)
    check_numeric(str(path), str((md.get("General") or {}).get("title")), data)
    meta = _file_metadata(md)
    title = str(meta.get("title") or path.stem)
    energy = [i for i, a in enumerate(axes) if _is_energy(a)]
    if data.ndim == 3 and len(energy) == 1:
        e = energy[0]
        data = np.moveaxis(data, e, 0)
        axes = [axes[e]] + [a for i, a in enumerate(axes) if i != e]
        ea = axes[0]
        energy_axis = {"name": ea.get("name", "Energy"), "offset": float(ea.get("offset", 0.0)),
                       "scale": float(ea.get("scale", 1.0)), "units": str(ea.get("units", "")),
                       "size": int(ea["size"]), "axis": 0}
        role, element, name = "spectrum_image", None, title
    elif data.ndim == 2 and not energy:
        energy_axis = None
        role, element = classify_name(title) or ("image", None)
        name = title
    else:
        return None  # sum spectra, line scans, stacks: not layers for fusion
    scale, units, translate = [], [], []
    for ax in axes:
        s, u = length_to_nm(float(ax.get("scale", 1.0)), str(ax.get("units", "")))
        if ax is axes[0] and energy_axis is not None:
            s, u = float(ax.get("scale", 1.0)), energy_axis["units"]
        scale.append(s)
        units.append(u)
        translate.append(float(ax.get("offset", 0.0)) * (s / float(ax.get("scale", 1.0) or 1.0)))
    if energy_axis is not None:
        meta["signal_type"] = meta.get("signal_type") or ("EELS" if "eels" in title.lower() else "EDS")
    if role == "element":
        meta["modality"] = "EELS" if "EELS" in title.upper() else "EDS"
    meta["original_name"] = title
    return DatasetLayer(name=name, data=data, role=role, element=element, scale=tuple(scale),
                        units=tuple(units), translate=tuple(translate), energy_axis=energy_axis,
                        metadata=meta)


def _align_scan(layers: list[DatasetLayer]) -> None:
    """Give uncalibrated maps the calibration of a same-shape map and one origin per scan."""
    calibrated = [ly for ly in layers if "pixel" not in ly.units[-2:]]
    for ly in layers:
        if "pixel" in ly.units[-2:]:
            ref = next((c for c in calibrated if c.spatial_shape == ly.spatial_shape), None)
            if ref is not None:
                ly.scale = ly.scale[:-2] + ref.scale[-2:]
                ly.units = ly.units[:-2] + ref.units[-2:]
                ly.metadata["calibration_from"] = ref.name
    groups: dict[tuple, list[DatasetLayer]] = {}
    for ly in layers:
        key = (ly.spatial_shape, tuple(round(s, 6) for s in ly.scale[-2:]), ly.units[-2:])
        groups.setdefault(key, []).append(ly)
    for group in groups.values():
        if len({ly.translate[-2:] for ly in group}) > 1:
            for ly in group:
                ly.metadata["original_offset"] = list(ly.translate[-2:])
                ly.translate = ly.translate[:-2] + (0.0, 0.0)


_REL = 0.01  #: pixel sizes of one scan that differ by more than this are reported


def _place_images(layers: list[DatasetLayer], copied_calibration: bool = False) -> list[str]:
    """Check that every image can be placed over the scan; returns notes for the user.

    The scan is the spectrum image's (else the first map's) grid. An image of the scan's
    shape is of that scan: it gets the scan's calibration (its own, if different, is
    reported and kept in ``metadata['original_scale']``) and ``metadata['structural']``
    (it can serve as the structural image of a fusion). With ``copied_calibration`` (Bruker
    .bcf files, whose reader gives e.g. an SEM overview image the map's pixel size), an
    image of another shape that carries exactly the scan's pixel size cannot be placed
    and is left out.
    """
    scan = next((ly for ly in layers if ly.role == "spectrum_image"), None) or next(
        (ly for ly in layers if ly.role == "element"), None)
    if scan is None:
        return []
    shape, scale = scan.spatial_shape, np.asarray(scan.scale[-2:], dtype=float)
    notes, drop = [], []
    for ly in layers:
        if ly.role not in ("haadf", "image"):
            continue
        own = np.asarray(ly.scale[-2:], dtype=float)
        if ly.spatial_shape == shape:
            ly.metadata["structural"] = True
            if np.any(np.abs(own - scale) > _REL * scale) and ly.units[-2:] == scan.units[-2:]:
                ly.metadata["original_scale"] = own.tolist()
                ly.scale = ly.scale[:-2] + scan.scale[-2:]
                ly.translate = ly.translate[:-2] + scan.translate[-2:]
                notes.append(f"'{ly.name}' has the scan's {shape[0]} x {shape[1]} pixels but a "
                             f"pixel size of {own[0]:.4g} x {own[1]:.4g} {ly.units[-1]} against "
                             f"the maps' {scale[0]:.4g} x {scale[1]:.4g}: shown and fused with "
                             "the maps' calibration, pixel for pixel")
        elif (copied_calibration and np.allclose(own, scale, rtol=1e-9)
              and ly.units[-2:] == scan.units[-2:]):
            drop.append(ly)
            notes.append(f"'{ly.name}' ({ly.spatial_shape[0]} x {ly.spatial_shape[1]} px) "
                         "was left out: the file gives it the scan's pixel size although it "
                         "has another shape (an overview image?), so it cannot be placed "
                         "over the maps")
    for ly in drop:
        layers.remove(ly)
    return notes


def read_instrument(path: str | Path, lazy: bool = False,
                    notes: list[str] | None = None) -> list[DatasetLayer]:
    """Read the images, element maps and spectrum images of an instrument file.

    ``lazy`` keeps arrays as dask arrays (RosettaSciIO lazy mode) for big files.
    ``notes`` receives what was adjusted or left out (see :func:`_place_images`).
    Raises :class:`ReadError` when the file is unreadable or holds nothing usable.
    """
    path = Path(path)
    if not (path.is_file() or (path.is_dir() and path.suffix.lower() == ".zspy")):
        raise ReadError(f"{path}: no such file")
    signals = _read_signals(path, lazy)
    layers = []
    for sig in signals:
        try:
            ly = _signal_layer(path, sig)
        except ReadError as exc:
            msg = str(exc)
            raise ReadError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
        if ly is not None:
            layers.append(ly)
    if not layers:
        raise ReadError(f"{path}: holds no images, elemental maps or spectrum images")
    _align_scan(layers)
    placed = _place_images(layers, copied_calibration=path.suffix.lower() == ".bcf")
    if notes is not None:
        notes.extend(placed)
    return layers
