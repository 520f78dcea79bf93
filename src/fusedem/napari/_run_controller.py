"""What one fusion run needs and produces, and the generator its worker thread drives.

The generator only forwards solver states that carry maps (``fusedem.iterate`` attaches
them at most every ``min_interval`` seconds, plus the last iteration): that is the
throttle at the producer, so the GUI never receives more frames than it can draw.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np

from ..solver import (
    FusionResult, FusionState, channel_weights, haadf_model, load_kernels, map_range,
)
from ._run_plan import RunPlan

#: Seconds between two frames sent to the viewer.
MIN_INTERVAL = 0.1


class StopFlag:
    """Set by the Stop button; also true once napari asked the worker to quit."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.worker: Any = None
        self.ended = threading.Event()  #: set when :func:`stream` has returned

    def set(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set() or bool(getattr(self.worker, "abort_requested", False))


class KernelLoader:
    """Loads (the first time on a computer: compiles) the solver's numba kernels once per
    process, in a plain daemon thread started when a panel opens.

    No Qt object is involved, so closing the viewer mid-compile leaves nothing to clean
    up; panels poll :meth:`state`. A run started meanwhile waits for it in
    :func:`stream` (still answering Stop) and then streams at once.
    """

    _lock = threading.Lock()
    _thread: threading.Thread | None = None
    _started = 0.0
    seconds: float | None = None  #: load (or compile) time once ready
    error: str | None = None

    @classmethod
    def start(cls) -> None:
        """Start loading unless already started (idempotent, cheap)."""
        with cls._lock:
            if cls._thread is not None:
                return
            cls._started = time.perf_counter()
            cls._thread = threading.Thread(target=cls._load, name="fusedem-kernels",
                                           daemon=True)
            cls._thread.start()

    @classmethod
    def _load(cls) -> None:
        try:
            cls.seconds = load_kernels()
        except Exception as exc:  # noqa: BLE001 - shown in the panel; Run reports it again
            cls.error = f"{type(exc).__name__}: {exc}"

    @classmethod
    def wait(cls, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the loading to end."""
        thread = cls._thread
        if thread is not None:
            thread.join(timeout)

    @classmethod
    def ready(cls) -> bool:
        """True once the kernels are loaded (or loading failed)."""
        return cls.seconds is not None or cls.error is not None

    @classmethod
    def state(cls) -> str:
        """A line for the panel: loading (with seconds so far), ready, or failed."""
        if cls.error is not None:
            return f"Loading the solver failed: {cls.error}"
        if cls.seconds is not None:
            return f"Solver ready (loaded in {cls.seconds:.1f} s)."
        waited = time.perf_counter() - cls._started
        return (f"Loading the solver… {waited:.0f} s (first time on a computer: compiling, "
                "~20 s). Run may be pressed now.")


def stream(states: Iterator[Any], stop: StopFlag, field: str = "maps",
           kernels: bool = True) -> Generator[Any, None, None]:
    """Forward the states whose ``field`` ('maps'; 'volumes' for tomography) is not None;
    end within one outer iteration of ``stop``. With ``kernels``, wait for the 2-D
    solver's :class:`KernelLoader` first.

    Runs in the worker thread, whose numba kernels then use one core fewer than the
    machine has, so the GUI thread always finds a free core.
    """
    numba.set_num_threads(max(1, numba.config.NUMBA_NUM_THREADS - 1))
    try:
        if kernels:
            KernelLoader.start()
        while kernels and not KernelLoader.ready():  # the panel opened moments ago: compiling
            if stop():
                return
            KernelLoader.wait(0.1)
        for state in states:
            if stop():
                return
            if getattr(state, field) is not None:
                yield state
    finally:
        close = getattr(states, "close", None)
        if close is not None:
            close()
        stop.ended.set()


def result_from_state(plan: RunPlan, state: FusionState, started: float) -> FusionResult:
    """A :class:`fusedem.FusionResult` for the last state shown (final or stopped)."""
    p = plan.params
    z = np.array(list(plan.elements.values()), dtype=float)
    weights = {s: float(w) for s, w in zip(plan.maps, channel_weights(z, p.weighting, p.gamma))}
    ranges = {"HAADF": (float(plan.haadf.min()), float(plan.haadf.max()))}
    ranges.update({s: map_range(float(a.min()), float(a.max()), p.map_scaling)
                   for s, a in plan.maps.items()})
    return FusionResult(
        maps=dict(state.maps),
        haadf_model=haadf_model(state.maps, weights, p.gamma),
        costs={k: np.asarray(v) for k, v in state.costs.items()},
        params=p,
        elements=plan.elements,
        weights=weights,
        elapsed=state.elapsed if state.elapsed else time.perf_counter() - started,
        iterations=state.iteration,
        input_ranges=ranges,
        device=state.device,
    )


def save_run(path: str | Path, result: FusionResult, plan: RunPlan, fmt: str | None = None,
             overwrite: bool = False) -> list[Path]:
    """Write ``result`` with the run's inputs and placement through
    :func:`fusedem.io.save_result`; returns the paths written."""
    from ..io import save_result

    return save_result(
        path, result, inputs={"HAADF": plan.haadf, **plan.maps},
        sources=tuple(dict.fromkeys(plan.sources.values())),
        scale=plan.placement["scale"], translate=plan.placement["translate"],
        units=tuple(str(u) for u in plan.placement["units"]), fmt=fmt, overwrite=overwrite)
