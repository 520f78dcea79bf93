"""Put the maps of an extraction into the viewer as element layers (no maths).

One image layer per element, named by its symbol, placed on the spectrum
image's scan grid (binning enlarges the pixels and shifts their centres); an
existing layer of the same element and spectrum layer is updated in place.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image

from ._spectrum_layers import fusedem_md
from .layers import ELEMENT_OPACITY, contrast_limits, element_colormap


def put_element_layer(viewer: Any, si: Image, res: Any, el: str, i: int, energy_axis: int) -> Image:
    """Add or update the layer of ``res.maps[el]`` (ExtractedMaps or EdgeMaps) from ``si``.

    energy_axis: the axis of ``si.data`` holding energy; i: colour index of the element.
    EELS edge maps (role 'edge_map') enter as role 'element' with modality 'EELS' so
    that the fusion panel takes them.
    """
    md = res.layer_metadata(el, source=fusedem_md(si).get("source"))
    md["fusedem"]["spectrum_layer"] = si.name
    if md["fusedem"]["role"] == "edge_map":  # enters fusion as an element map
        md["fusedem"].update(role="element", modality="EELS")
    spatial = [k for k in range(3) if k != energy_axis % 3]
    b = res.binning
    scale = [float(si.scale[k]) * b for k in spatial]
    translate = [float(si.translate[k]) + (b - 1) / 2 * float(si.scale[k]) for k in spatial]
    data = res.maps[el].astype(np.float32)
    for ly in viewer.layers:
        fm = fusedem_md(ly)
        if (fm.get("role") == "element" and fm.get("spectrum_layer") == si.name
                and fm.get("element") == el and isinstance(ly, Image)):
            ly.data, ly.scale, ly.translate = data, scale, translate
            ly.metadata = md
            ly.contrast_limits = contrast_limits(data)
            return ly
    return viewer.add_image(
        data, name=el, metadata=md, scale=scale, translate=translate,
        units=[si.units[k] for k in spatial], colormap=element_colormap(el, i),
        blending="additive", opacity=ELEMENT_OPACITY, contrast_limits=contrast_limits(data))
