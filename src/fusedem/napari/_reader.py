"""napari reader contributions: map bundles and instrument files.

``get_*_reader(path)`` look at the content (never raise) and return None for
what they cannot use, so other readers can try. When a claimed file turns out
bad while reading, the user gets a notification naming the file and the
problem and no layers are added (napari's null-layer sentinel ``[(None,)]``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..io import ReadError, load, sniff
from .layers import constant_images, dataset_to_layer_data

PathOrPaths = str | Sequence[str]
ReaderFunction = Callable[[PathOrPaths], list[tuple]]


def _single(path: PathOrPaths) -> PathOrPaths:
    if not isinstance(path, (str, os.PathLike)) and len(path) == 1:
        return path[0]
    return path


def read_layers(path: PathOrPaths) -> list[tuple[Any, ...]]:
    """Read ``path`` with :func:`fusedem.io.load`; on failure notify and return ``[(None,)]``."""
    from napari.utils.notifications import show_error, show_warning

    path = _single(path)
    try:
        ds = load(path, lazy="auto")
        layers = dataset_to_layer_data(ds)
    except ReadError as exc:
        show_error(f"fusedem could not open {exc}")
        return [(None,)]
    except Exception as exc:  # never let a damaged file crash the viewer
        show_error(f"fusedem could not open {path}: {type(exc).__name__}: {exc}")
        return [(None,)]
    for message in constant_images(ds):
        show_warning(message)
    return layers or [(None,)]


def get_maps_reader(path: PathOrPaths) -> ReaderFunction | None:
    """Reader for .npz/.h5 bundles and TIFFs named HAADF/element symbols (None if not such)."""
    return read_layers if sniff(_single(path)) == "maps" else None


def get_instrument_reader(path: PathOrPaths) -> ReaderFunction | None:
    """Reader for Velox .emd, Bruker .bcf, Gatan .dm3/.dm4 (through RosettaSciIO)."""
    return read_layers if sniff(_single(path)) == "instrument" else None
