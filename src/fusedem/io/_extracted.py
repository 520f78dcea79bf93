"""Element layers extracted from an EDS or EELS spectrum image (through :mod:`fusedem.spectra`).

Most EDS data arrives as a spectrum image plus a HAADF image and the list of
elements the operator identified. :func:`extract_element_layers` turns that into
element map layers, so a file opens ready for fusion.
"""
from __future__ import annotations

from collections.abc import Iterable

from ._dataset import Dataset, DatasetLayer, ReadError


def _is_eds(ly: DatasetLayer) -> bool:
    return str(ly.metadata.get("signal_type") or "").upper().startswith("EDS")


def _is_eels(ly: DatasetLayer) -> bool:
    return str(ly.metadata.get("signal_type") or "").upper().startswith("EELS")


def _extract(si: DatasetLayer, els: list[str]):
    """(maps result, 'EDS'|'EELS') of the spectrum image (line maps or edge maps)."""
    from ..spectra import extract_edge_maps, extract_maps

    if _is_eels(si):
        return extract_edge_maps(si.data, si.energy_axis, els), "EELS"
    return extract_maps(si.data, si.energy_axis, els,
                        beam_energy_kv=si.metadata.get("beam_energy_keV"),
                        resolution_ev=si.metadata.get("energy_resolution_eV")), "EDS"


def extract_element_layers(ds: Dataset, elements: Iterable[str] | None = None) -> list[DatasetLayer]:
    """Element map layers (counts) from the first EDS (line maps) or EELS (edge maps)
    spectrum image of ``ds``.

    ``elements``: symbols to extract; None uses the elements listed in the
    file's metadata. Returns [] when there is no EDS spectrum image or no
    element to extract. Raises ReadError naming the file when extraction fails
    (e.g. an element without a line in the energy range).
    """
    si = next((ly for ly in ds.spectrum_images
               if (_is_eds(ly) or _is_eels(ly)) and ly.energy_axis), None)
    if si is None:
        return []
    els = list(elements) if elements is not None else list(si.metadata.get("elements") or [])
    if not els:
        return []
    try:
        res, modality = _extract(si, els)
    except ValueError as exc:
        raise ReadError(f"{ds.source}: cannot extract element maps from {si.name!r}: {exc}") from None
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
    except ReadError:
        pass
    si = next(ly for ly in ds.spectrum_images if _is_eds(ly) or _is_eels(ly))
    problems = []
    for el in si.metadata.get("elements") or []:
        try:
            ds.layers.extend(extract_element_layers(ds, [el]))
        except ReadError as exc:
            problems.append(str(exc))
    return problems
