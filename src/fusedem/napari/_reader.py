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
        show_error(reason_first(str(exc), path))
        return [(None,)]
    except Exception as exc:  # never let a damaged file crash the viewer
        show_error(reason_first(f"{type(exc).__name__}: {exc}", path))
        return [(None,)]
    for message in [*ds.notes, *constant_images(ds)]:
        show_warning(message)
    return layers or [(None,)]


def reason_first(message: str, path: PathOrPaths) -> str:
    """'<reason> — fusedem could not open <name> (<folder>)': notifications show their
    start, and a long path first cut the reason off."""
    where = str(path) if isinstance(path, (str, os.PathLike)) else os.pathsep.join(map(str, path))
    reason = message[len(where) + 2:] if message.startswith(where + ": ") else message
    name, folder = os.path.basename(where.rstrip(os.sep)) or where, os.path.dirname(where)
    return f"{reason} — fusedem could not open {name}" + (f" (in {folder})" if folder else "")


def get_maps_reader(path: PathOrPaths) -> ReaderFunction | None:
    """Reader for .npz/.h5 bundles and TIFFs named HAADF/element symbols (None if not such)."""
    return read_layers if sniff(_single(path)) == "maps" else None


def get_instrument_reader(path: PathOrPaths) -> ReaderFunction | None:
    """Reader for Velox .emd, Bruker .bcf, Gatan .dm3/.dm4 (through RosettaSciIO)."""
    return read_layers if sniff(_single(path)) == "instrument" else None
