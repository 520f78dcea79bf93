"""The fusion region: a rectangle in a Shapes layer mapped onto the HAADF's pixel grid."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..solver import MIN_SIZE

#: Name of the Shapes layer the panel creates for the region.
REGION_LAYER_NAME = "fusion region"
#: Vertices this close to a pixel centre (in pixels) count as on it: 3 * s / s is
#: 3.0000000000000004 for some pixel sizes s, which must not move the edge by a pixel.
_TOL = 1e-6


class CropError(ValueError):
    """The region cannot be used; the message says why, for the panel's status line."""


@dataclass(frozen=True)
class Crop:
    """A pixel window (rows y0:y1, columns x0:x1) of the HAADF grid."""

    y0: int
    y1: int
    x0: int
    x1: int
    whole: bool  #: True when no rectangle was drawn (the whole image)
    clipped: bool = False  #: True when the rectangle reached beyond the image

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    def describe(self) -> str:
        """Short text for the panel, e.g. 'region rows 10:90, cols 20:120 (80 x 100 px)'."""
        ny, nx = self.shape
        if self.whole:
            return f"whole image ({ny} x {nx} px)"
        note = ", clipped to the image" if self.clipped else ""
        return (f"region rows {self.y0}:{self.y1}, cols {self.x0}:{self.x1} "
                f"({ny} x {nx} px{note})")


def region_shape(shapes: Any) -> np.ndarray | None:
    """Vertices (k, 2) of the region: the selected shape if exactly one, else the last one."""
    if shapes is None or len(shapes.data) == 0:
        return None
    sel = sorted(shapes.selected_data)
    idx = sel[0] if len(sel) == 1 else len(shapes.data) - 1
    return np.asarray(shapes.data[idx], dtype=float)[:, -2:]


def crop_for(image: Any, shapes: Any) -> Crop:
    """The pixel window of ``image`` covered by the region rectangle in ``shapes``.

    Vertices go through the shapes layer's data->world and the image's world->data
    transforms (so scale and translate of both layers are respected); the window holds
    the pixels whose centres lie inside the rectangle's bounding box.
    """
    ny, nx = image.data.shape[-2:]
    verts = region_shape(shapes)
    if verts is None:
        return Crop(0, ny, 0, nx, whole=True)
    world = [np.asarray(shapes.data_to_world(v), dtype=float)[-2:] for v in verts]
    pix = np.array([np.asarray(image.world_to_data(w), dtype=float)[-2:] for w in world])
    (r0, c0), (r1, c1) = pix.min(axis=0) - _TOL, pix.max(axis=0) + _TOL
    y0, y1 = max(math.ceil(r0), 0), min(math.floor(r1) + 1, ny)
    x0, x1 = max(math.ceil(c0), 0), min(math.floor(c1) + 1, nx)
    if y1 <= y0 or x1 <= x0:
        raise CropError(
            f"The '{shapes.name}' rectangle lies outside the HAADF image '{image.name}' "
            f"({ny} x {nx} px): draw it over the image, or delete it to fuse the whole image."
        )
    if y1 - y0 < MIN_SIZE or x1 - x0 < MIN_SIZE:
        raise CropError(
            f"The region covers only {y1 - y0} x {x1 - x0} px of '{image.name}'; "
            f"draw a rectangle of at least {MIN_SIZE} x {MIN_SIZE} px."
        )
    clipped = (y0, y1, x0, x1) != (math.ceil(r0), math.floor(r1) + 1,
                                   math.ceil(c0), math.floor(c1) + 1)
    return Crop(y0, y1, x0, x1, whole=False, clipped=clipped)


def find_region_layer(layers: Any) -> Any:
    """The 'fusion region' Shapes layer among ``layers``, or None."""
    return next((ly for ly in layers if type(ly).__name__ == "Shapes"
                 and ly.name == REGION_LAYER_NAME), None)


def region_text(image: Any, shapes: Any) -> str:
    """'Fusing the whole image (50 x 50 px).' for ``image`` now; '' without an image or
    with an unusable rectangle (the panel's status line says why)."""
    if image is None:
        return ""
    try:
        return f"Fusing the {crop_for(image, shapes).describe()}."
    except CropError:
        return ""


def region_layer_kwargs(image: Any) -> dict[str, Any]:
    """``add_shapes`` arguments for the region layer over ``image`` (or None): its scale,
    translate and units (so napari sees consistent units), and a thin yellow edge about
    1/300 of the image (a few screen pixels whatever the image size)."""
    kw: dict[str, Any] = {"ndim": 2, "name": REGION_LAYER_NAME, "edge_color": "yellow",
                          "face_color": "transparent", "edge_width": 1.0}
    if image is not None:
        ny, nx = image.data.shape[-2:]
        kw.update(scale=tuple(image.scale[-2:]), translate=tuple(image.translate[-2:]),
                  units=tuple(image.units[-2:]), edge_width=max(ny, nx) / 300)
    return kw


def crop_translate(image: Any, crop: Crop) -> tuple[float, float]:
    """Translate that places a layer of the crop (same scale) exactly over the image."""
    scale = np.asarray(image.scale, dtype=float)[-2:]
    translate = np.asarray(image.translate, dtype=float)[-2:]
    return tuple(float(v) for v in translate + scale * np.array([crop.y0, crop.x0]))
