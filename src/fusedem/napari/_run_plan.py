"""Checking the chosen inputs and cutting them into a :class:`RunPlan` for one run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..elements import atomic_number
from ..params import FusionParams
from ._crop import Crop, crop_for, crop_translate


@dataclass
class RunPlan:
    """Validated inputs of a run: cropped arrays (copies) and where the outputs go."""

    haadf: np.ndarray  #: (ny, nx) crop of the HAADF
    maps: dict[str, np.ndarray]  #: element -> (ny, nx) crop, in the panel's order
    params: FusionParams
    crop: Crop
    placement: dict[str, Any]  #: scale / translate / units for the output layers
    sources: dict[str, str] = field(default_factory=dict)  #: 'HAADF'/element -> layer/file

    @property
    def elements(self) -> dict[str, int]:
        return {s: atomic_number(s) for s in self.maps}


def check_inputs(haadf: Any, chosen: list[tuple[Any, str | None]],
                 region: Any) -> tuple[list[tuple[Any, str]], Crop]:
    """Element layers with their symbols, and the crop; ValueError says what is wrong."""
    if haadf is None:
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
        if layer.data.shape != haadf.data.shape:
            (a, b), (c, d) = layer.data.shape, haadf.data.shape
            raise ValueError(f"Shape mismatch: '{layer.name}' is {a} x {b} px but the "
                             f"HAADF '{haadf.name}' is {c} x {d} px; the maps must come "
                             "from the same scan.")
        out.append((layer, sym))
    return out, crop_for(haadf, region)


def _source(layer: Any) -> str:
    info = (layer.metadata or {}).get("fusedem") or {}
    return str(info.get("source") or layer.source.path or layer.name)


def make_plan(haadf: Any, chosen: list[tuple[Any, str]], crop: Crop,
              params: FusionParams) -> RunPlan:
    """Copy the crop of every input (the run never touches the layers again)."""
    ys, xs = crop.slices
    return RunPlan(
        haadf=np.array(haadf.data[ys, xs]),
        maps={s: np.array(ly.data[ys, xs]) for ly, s in chosen},
        params=params, crop=crop,
        placement={"scale": tuple(haadf.scale[-2:]), "translate": crop_translate(haadf, crop),
                   "units": tuple(getattr(haadf, "units", ("pixel", "pixel"))[-2:])},
        sources={"HAADF": _source(haadf), **{s: _source(ly) for ly, s in chosen}},
    )
