"""Which layers the spectrum panel works on, and how it words their errors (no maths)."""
from __future__ import annotations

import re
from typing import Any

from napari.layers import Image


def fusedem_md(layer: Any) -> dict[str, Any]:
    """``layer.metadata["fusedem"]`` or {}."""
    md = getattr(layer, "metadata", None) or {}
    return md.get("fusedem") or {}


def is_spectrum_layer(layer: Any) -> bool:
    """True for a 3-D image layer tagged as a spectrum image with an energy axis."""
    md = fusedem_md(layer)
    return (isinstance(layer, Image) and layer.ndim == 3
            and md.get("role") in ("spectrum_image", "denoised_spectrum_image")
            and isinstance(md.get("energy_axis"), dict))


def parse_elements(text: str) -> list[str]:
    """Tokens of a typed element list ('Cu, O pd;Ti' -> ['Cu', 'O', 'pd', 'Ti'])."""
    return [t for t in re.split(r"[,;\s]+", text or "") if t]


def is_lazy(data: Any) -> bool:
    """True for a dask (lazily read) array."""
    return type(data).__module__.startswith("dask")


def error_text(exc: BaseException) -> str:
    """The message of ``exc`` for the panel (type name too unless it is a ValueError)."""
    msg = str(exc) or type(exc).__name__
    return msg if isinstance(exc, ValueError) else f"{type(exc).__name__}: {msg}"
