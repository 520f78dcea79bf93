"""Element layers extracted from an EDS or EELS spectrum image (through :mod:`fusedem.spectra`).

Most EDS data arrives as a spectrum image plus a HAADF image and the list of
elements the operator identified. :func:`extract_element_layers` turns that into
element map layers, so a file opens ready for fusion.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._dataset import Dataset, DatasetLayer, ReadError


class ExtractionError(ReadError):
    """The spectrum image was read but maps cannot be extracted (e.g. no line in range)."""


def _is_eds(ly: DatasetLayer) -> bool:
    return str(ly.metadata.get("signal_type") or "").upper().startswith("EDS")


def _is_eels(ly: DatasetLayer) -> bool:
    return str(ly.metadata.get("signal_type") or "").upper().startswith("EELS")


def _extract(si: DatasetLayer, els: list[str], beam_energy_kv: float | None = None,
             resolution_ev: float | None = None, lines: Mapping[str, str] | None = None):
    """(maps result, 'EDS'|'EELS') of the spectrum image (line maps or edge maps)."""
    from ..spectra import extract_edge_maps, extract_maps

    if _is_eels(si):
        return extract_edge_maps(si.data, si.energy_axis, els), "EELS"
    return extract_maps(si.data, si.energy_axis, els, lines=lines,
                        beam_energy_kv=beam_energy_kv or si.metadata.get("beam_energy_keV"),
                        resolution_ev=resolution_ev or si.metadata.get("energy_resolution_eV")
                        ), "EDS"


def extract_element_layers(ds: Dataset, elements: Iterable[str] | None = None, *,
                           beam_energy_kv: float | None = None,
                           resolution_ev: float | None = None,
                           lines: Mapping[str, str] | None = None) -> list[DatasetLayer]:
    """Element map layers (counts) from the first EDS (line maps) or EELS (edge maps)
    spectrum image of ``ds``.

    ``elements``: symbols to extract; None uses the elements listed in the
    file's metadata. ``beam_energy_kv`` (kV) and ``resolution_ev`` (FWHM at Mn Kα,
    eV) default to the file's metadata; ``lines`` chooses a line per element
    ({'Cu': 'La'}), see :func:`fusedem.spectra.extract_maps`. Returns [] when there is
    no EDS spectrum image or no element to extract. Raises ReadError naming the file
    when extraction fails (e.g. an element without a line in the energy range:
    :class:`ExtractionError`) or when the spectrum image cannot be read (a damaged
    file read lazily).
    """
    si = next((ly for ly in ds.spectrum_images
               if (_is_eds(ly) or _is_eels(ly)) and ly.energy_axis), None)
    if si is None:
        return []
    els = list(elements) if elements is not None else list(si.metadata.get("elements") or [])
    if not els:
        return []
    try:
        res, modality = _extract(si, els, beam_energy_kv, resolution_ev, lines)
    except ReadError:
        raise
    except ValueError as exc:
        raise ExtractionError(f"{ds.source}: cannot extract element maps from {si.name!r}: {exc}") from None
    except Exception as exc:  # zlib.error, StopIteration, IndexError... from a lazy read
        raise ReadError(f"{ds.source}: cannot read the spectrum image {si.name!r}, the file may be "
                        f"truncated or corrupt ({type(exc).__name__}: {exc})") from None
    layers = []
    for el, m in res.maps.items():
        md = res.layer_metadata(el, ds.source)["fusedem"]
        md.pop("role")
        md["spectrum_layer"] = si.name
        md["modality"] = modality
        layers.append(DatasetLayer(
            name=el, data=m, role="element", element=el,
            scale=si.scale[-2:], units=si.units[-2:], translate=si.translate[-2:],
            metadata={**md, "extracted": True},
        ))
    return layers


def extraction_splits(ds: Dataset, elements: Iterable[str], crop: tuple | None = None, *,
                      beam_energy_kv: float | None = None, resolution_ev: float | None = None,
                      lines: Mapping[str, str] | None = None, seed: int = 0) -> list | None:
    """Held-out splits for :func:`fusedem.autotune` of maps extracted by
    :func:`extract_element_layers` with the same options: the EDS spectrum image's
    counts are thinned before extraction (:func:`fusedem.spectra.spectrum_splits`).

    ``crop``: (y0, y1, x0, x1) pixels of the maps being fused. None when ``ds`` has
    no EDS spectrum image or its values are not raw counts (then use masking).
    """
    import numpy as np

    si = next((ly for ly in ds.spectrum_images if _is_eds(ly) and ly.energy_axis), None)
    if si is None:
        return None
    from ..spectra import spectrum_splits

    axis = int(si.energy_axis.get("axis", -1)) % si.data.ndim
    index = [slice(None)] * si.data.ndim
    if crop is not None:
        spatial = [d for d in range(si.data.ndim) if d != axis]
        index[spatial[0]], index[spatial[1]] = slice(crop[0], crop[1]), slice(crop[2], crop[3])
    cube = si.data[tuple(index)]
    cube = np.asarray(cube.compute() if hasattr(cube, "compute") else cube)
    try:
        return spectrum_splits(
            cube, si.energy_axis, list(elements), seed=seed, lines=lines,
            beam_energy_kv=beam_energy_kv or si.metadata.get("beam_energy_keV"),
            resolution_ev=resolution_ev or si.metadata.get("energy_resolution_eV"))
    except ValueError:  # not raw counts: thinning does not apply
        return None


def add_extracted_maps(ds: Dataset) -> list[str]:
    """Append extracted element layers when ``ds`` has an EDS spectrum image, elements
    listed in its metadata and no element maps of its own.

    Listed elements that cannot be extracted (no line in the energy range) are
    left out; returns their messages.
    """
    if ds.element_maps:
        return []
    try:
        ds.layers.extend(extract_element_layers(ds))
        return []
    except ExtractionError:
        pass
    si = next(ly for ly in ds.spectrum_images if _is_eds(ly) or _is_eels(ly))
    problems = []
    for el in si.metadata.get("elements") or []:
        try:
            ds.layers.extend(extract_element_layers(ds, [el]))
        except ExtractionError as exc:
            problems.append(str(exc))
    return problems
