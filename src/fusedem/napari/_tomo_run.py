"""What a "Fuse tilt series" run needs (inputs, region, parameters), the generator its
worker thread drives, and its result; no Qt here."""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tomo_layers import is_tilt_layer, tilt_meta

#: Seconds between two volumes sent to the viewer (3-D frames cost more to draw than 2-D).
MIN_INTERVAL = 0.3


@dataclass
class TomoPlan:
    """One run: the tilt series cut to the region, angles, parameters and placement."""

    haadf: np.ndarray  #: (n_H, rows, columns)
    haadf_angles: np.ndarray
    maps: dict[str, np.ndarray]  #: element -> (n_c, rows, columns)
    chem_angles: np.ndarray
    params: Any  #: TomoParams, or "auto"
    slices: tuple[int, int]
    columns: tuple[int, int]
    pixel_size: float | None
    sources: list[str]

    def describe(self) -> str:
        rows, cols = self.slices[1] - self.slices[0], self.columns[1] - self.columns[0]
        return (f"slices {self.slices[0]}:{self.slices[1]} ({rows}) × {cols} columns, "
                f"{', '.join(self.maps)}")

    @property
    def placement(self) -> dict[str, Any]:
        """scale/translate/units of the volume layers (ny, nz, nx), in the tilt layers' frame."""
        px = self.pixel_size or 1.0
        unit = "nm" if self.pixel_size else "pixel"
        return {"scale": (px, px, px), "translate": (self.slices[0] * px, 0.0, self.columns[0] * px),
                "units": (unit, unit, unit)}


def centred_columns(nx: int, width: int) -> tuple[int, int]:
    """Detector columns [x0, x1) of ``width`` centred on the tilt axis (the detector centre)."""
    width = max(1, min(int(width), nx))
    x0 = (nx - width) // 2
    return x0, x0 + width


def make_plan(haadf_layer: Any, element_layers: list[Any], slices: tuple[int, int], width: int,
              params: Any) -> TomoPlan:
    """Check the chosen layers and cut them to the region; ValueError naming the problem."""
    from ..tomo.io import check_tilt_series

    if haadf_layer is None or not is_tilt_layer(haadf_layer, "haadf_tilts"):
        raise ValueError("Choose a HAADF tilt series (open a tilt series file or the sample).")
    if not element_layers:
        raise ValueError("Tick at least one element tilt series.")
    ny, nx = haadf_layer.data.shape[1:]
    y0, y1 = slices
    if not (0 <= y0 < y1 <= ny):
        raise ValueError(f"Slices {y0}:{y1} lie outside the {ny} rows of the tilt series.")
    x0, x1 = centred_columns(nx, width)
    cut = (slice(None), slice(y0, y1), slice(x0, x1))
    maps = {}
    for layer in element_layers:
        el = tilt_meta(layer).get("element") or layer.name
        if layer.data.shape[1:] != (ny, nx):
            raise ValueError(f"'{layer.name}' is {layer.data.shape[1]} x {layer.data.shape[2]} "
                             f"pixels, the HAADF tilts {ny} x {nx}: detector sizes must match.")
        maps[el] = np.asarray(layer.data[cut], dtype=np.float32)
    chem = [np.asarray(tilt_meta(ly)["angles"], float) for ly in element_layers]
    if any(a.shape != chem[0].shape or not np.allclose(a, chem[0]) for a in chem[1:]):
        raise ValueError("The element tilt series have different angles; they must share one set.")
    haadf = np.asarray(haadf_layer.data[cut], dtype=np.float32)
    h_angles = np.asarray(tilt_meta(haadf_layer)["angles"], float)
    check_tilt_series(haadf, h_angles, maps, chem[0])
    sources = list(dict.fromkeys(str(tilt_meta(ly).get("source", "")) for ly in
                                 [haadf_layer, *element_layers]))
    return TomoPlan(haadf, h_angles, maps, chem[0], params, (y0, y1), (x0, x1),
                    tilt_meta(haadf_layer).get("pixel_size_nm"), sources)


@dataclass(frozen=True)
class ChosenState:
    """The one state of an Auto run: the fusion with the parameters chosen from the data."""

    iteration: int
    n_iter: int
    volumes: dict[str, np.ndarray]
    costs: dict[str, np.ndarray]
    elapsed: float
    params: Any  #: the TomoParams chosen
    autotune: Any  #: how they were chosen


def _auto(plan: TomoPlan) -> Iterator[ChosenState]:
    from ..tomo import fuse_tilt_series

    res = fuse_tilt_series(plan.haadf, plan.haadf_angles, plan.maps, plan.chem_angles, params="auto")
    yield ChosenState(res.iterations, res.iterations, res.volumes, res.costs, res.elapsed,
                      res.params, res.autotune)


def start_states(plan: TomoPlan) -> Iterator[Any]:
    """The solver's generator for ``plan`` (inputs validated before it returns). With
    ``params == 'auto'`` one state at the end: the choice runs whole solves first."""
    from ..tomo import iterate_tilt_series

    if isinstance(plan.params, str):
        return _auto(plan)
    return iterate_tilt_series(plan.haadf, plan.haadf_angles, plan.maps, plan.chem_angles,
                               params=plan.params, every=1, min_interval=MIN_INTERVAL)


def result_from_state(plan: TomoPlan, state: Any, params: Any, started: float) -> Any:
    """A :class:`fusedem.tomo.TomoResult` of the last state shown (final or stopped);
    an Auto run's state brings its chosen ``params`` and ``autotune``."""
    from ..elements import atomic_number
    from ..tomo import TomoResult

    return TomoResult(volumes=dict(state.volumes),
                      costs={k: np.asarray(v) for k, v in state.costs.items()},
                      params=getattr(state, "params", params), autotune=getattr(state, "autotune", None),
                      haadf_angles=plan.haadf_angles, chem_angles=plan.chem_angles,
                      elements={el: atomic_number(el) for el in plan.maps},
                      elapsed=state.elapsed or time.perf_counter() - started,
                      iterations=state.iteration, device=getattr(state, "device", "cpu"))
