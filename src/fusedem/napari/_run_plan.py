"""Checking the chosen inputs and cutting them into a :class:`RunPlan` for one run."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..elements import atomic_number
from ..params import FusionParams
from ..solver import check_image
from ._crop import Crop, crop_for, crop_translate
from ._fusion_inputs import role_of


@dataclass
class RunPlan:
    """Validated inputs of a run: cropped arrays (copies) and where the outputs go."""

    haadf: np.ndarray  #: (ny, nx) crop of the HAADF
    maps: dict[str, np.ndarray]  #: element -> (ny, nx) crop, in the panel's order
    params: FusionParams
    crop: Crop
    placement: dict[str, Any]  #: scale / translate / units for the output layers
    sources: dict[str, str] = field(default_factory=dict)  #: 'HAADF'/element -> layer/file
    frame: int | None = None  #: frame fused when some inputs are (frame, ny, nx) series
    n_frames: int = 1

    @property
    def elements(self) -> dict[str, int]:
        return {s: atomic_number(s) for s in self.maps}

    def describe(self) -> str:
        """'the region rows … (… px) of frame 2 (0–4)', or without the frame for 2-D inputs."""
        of = f" of {frame_text(self.frame, self.n_frames)}" if self.frame is not None else ""
        return f"the {self.crop.describe()}{of}"


def frame_text(frame: int | None, n_frames: int) -> str:
    """'frame 2 (0–4)' for a series (indices as on napari's slider), else ''."""
    return "" if frame is None else f"frame {frame} (0–{n_frames - 1})"


def frame_of(layer: Any, point: Sequence[float]) -> int | None:
    """Index of the frame of a (frame, ny, nx) layer shown at the viewer's world ``point``
    (``viewer.dims.point``); None for a 2-D layer. ValueError when the slider is past it."""
    if layer.ndim == 2:
        return None
    pos = np.asarray(layer.world_to_data(np.asarray(point, dtype=float)[-layer.ndim:]))
    k, n = int(round(float(pos[0]))), int(layer.data.shape[0])
    if not 0 <= k < n:
        raise ValueError(f"The viewer shows frame {k} but '{layer.name}' has frames 0–{n - 1}: "
                         "move the frame slider.")
    return k


def input_frames(layers: Sequence[Any], point: Sequence[float]) -> tuple[int | None, int]:
    """The frame shown (of the first 3-D input) and its layer's frame count; (None, 1) if 2-D."""
    for layer in layers:
        k = frame_of(layer, point)
        if k is not None:
            return k, int(layer.data.shape[0])
    return None, 1


def _plane(layer: Any, point: Sequence[float]) -> Any:
    """The (ny, nx) image of ``layer`` shown at ``point`` (lazy arrays stay lazy)."""
    k = frame_of(layer, point)
    return layer.data if k is None else layer.data[k]


#: Where the user may pick a detector image other than HAADF/ADF (physics note).
PROXY_NOTE = ("The Z^γ model is for HAADF/ADF images; a BSE or SE image is only a rough "
              "proxy of Z contrast.")


def no_maps_reason(layers: Sequence[Any]) -> str:
    """What to do when no layer can be fused as an elemental map, from what is open:
    a tilt series goes to the tilt-series panel, a spectrum image to the extraction panel."""
    roles = {role_of(ly): ly.name for ly in layers}
    if "haadf_tilts" in roles or "element_tilts" in roles:
        name = roles.get("haadf_tilts") or roles["element_tilts"]
        return (f"'{name}' is a tilt series: fuse it in the tilt-series panel "
                "(Plugins > fusedem > Fuse tilt series); this panel fuses 2-D maps.")
    if "spectrum_image" in roles:
        return (f"No elemental maps yet: extract them from the spectrum image "
                f"'{roles['spectrum_image']}' (Plugins > fusedem > Extract elemental maps), "
                "then they appear here.")
    if not roles:
        return ("Nothing to fuse yet: open a HAADF image with its EDS/EELS maps, or a vendor "
                "file (File > Open), or a sample (File > Open Sample > fusedem).")
    return ("No elemental maps open: open the EDS/EELS maps of this scan, or its spectrum "
            "image, beside the HAADF (File > Open, or File > Open Sample > fusedem).")


def check_inputs(haadf: Any, chosen: list[tuple[Any, str | None]], region: Any,
                 point: Sequence[float] = (), images: Sequence[Any] = ()
                 ) -> tuple[list[tuple[Any, str]], Crop]:
    """Element layers with their symbols, and the crop; ValueError says what is wrong.

    Layers may be 2-D or (frame, ny, nx) series; their last two dimensions must agree and
    each series must hold the frame the viewer shows at ``point``. ``images``: other
    image layers, named when no HAADF is chosen (e.g. an SEM file's SE/BSE image).
    """
    if haadf is None:
        shape = chosen[0][0].data.shape[-2:] if chosen else None
        fit = [ly.name for ly in images if shape is None or ly.data.shape[-2:] == shape]
        if fit:
            raise ValueError(
                f"No HAADF image chosen. Choose the structural image of the same scan above "
                f"({', '.join(repr(n) for n in fit)}{' have' if len(fit) > 1 else ' has'} the "
                f"maps' shape). {PROXY_NOTE}")
        raise ValueError("No HAADF image: open the HAADF image of the scan "
                         "(e.g. File > Open Sample > fusedem) and choose it above.")
    if not chosen:
        raise ValueError("No elemental map selected: tick at least one element layer.")
    seen: dict[str, str] = {}
    out = []
    for layer, sym in chosen:
        if sym is None:
            raise ValueError(f"Type the element symbol of layer '{layer.name}' (e.g. Dy).")
        if sym in seen:
            raise ValueError(f"Element {sym} is ticked twice ('{seen[sym]}' and "
                             f"'{layer.name}'): untick one.")
        seen[sym] = layer.name
        if layer.data.shape[-2:] != haadf.data.shape[-2:]:
            (a, b), (c, d) = layer.data.shape[-2:], haadf.data.shape[-2:]
            raise ValueError(f"Shape mismatch: '{layer.name}' is {a} x {b} px but the "
                             f"HAADF '{haadf.name}' is {c} x {d} px; the maps must come "
                             "from the same scan.")
        out.append((layer, sym))
    for layer in (haadf, *(ly for ly, _ in out)):
        frame_of(layer, point)
    crop = crop_for(haadf, region)
    for layer, what in ((haadf, "HAADF"), *((ly, f"map {s}") for ly, s in out)):
        _check_values(layer, _plane(layer, point), what, crop)
    return out, crop


def _check_values(layer: Any, plane: Any, what: str, crop: Crop) -> None:
    """ValueError when the image shown cannot be fused (constant, NaN ...), so the panel
    says so before Run. Lazily read arrays are left to the check on Run."""
    if not isinstance(plane, np.ndarray):
        return
    try:
        check_image(f"{what} '{layer.name}'", plane[crop.slices])
    except ValueError as exc:
        where = "" if crop.whole else " (inside the fusion region)"
        hint = (" A saturated or switched-off detector? Choose another image of the same "
                "scan as HAADF." if what == "HAADF" and "constant" in str(exc) else "")
        raise ValueError(f"{exc}{where}.{hint}") from None


def _source(layer: Any) -> str:
    info = (layer.metadata or {}).get("fusedem") or {}
    return str(info.get("source") or layer.source.path or layer.name)


def make_plan(haadf: Any, chosen: list[tuple[Any, str]], crop: Crop,
              params: FusionParams, point: Sequence[float] = ()) -> RunPlan:
    """Copy the crop of every input, of the frame shown for series (the run never touches
    the layers again); outputs are 2-D, placed over the crop by the last two axes."""
    ys, xs = crop.slices
    frame, n_frames = input_frames([haadf, *(ly for ly, _ in chosen)], point)
    return RunPlan(
        haadf=np.array(_plane(haadf, point)[ys, xs]),
        maps={s: np.array(_plane(ly, point)[ys, xs]) for ly, s in chosen},
        frame=frame, n_frames=n_frames,
        params=params, crop=crop,
        placement={"scale": tuple(haadf.scale[-2:]), "translate": crop_translate(haadf, crop),
                   "units": tuple(getattr(haadf, "units", ("pixel", "pixel"))[-2:])},
        sources={"HAADF": _source(haadf), **{s: _source(ly) for ly, s in chosen}},
    )
