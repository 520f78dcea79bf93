"""Sum spectra of the spectrum panel's layers, computed once per array in a worker."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..spectra import sum_spectrum
from ._spectrum_layers import error_text


class SumSpectra:
    """The summed spectrum of a layer's data (the last one is kept), or None while a worker
    (``jobs``, tag 'sum') computes it; ``on_ready(key)`` / ``on_error(key, exc)`` run on
    the main thread when it ends (key: ``id(data)``). A failed read is not retried until
    :meth:`retry` (the layer chosen again)."""

    def __init__(self, jobs: Any, on_ready: Callable[[int], None],
                 on_error: Callable[[int, BaseException], None]) -> None:
        self._jobs, self._on_ready, self._on_error = jobs, on_ready, on_error
        self._cache: dict[int, np.ndarray] = {}
        self._summing: int | None = None
        self._errors: dict[int, str] = {}

    def get(self, data: Any, energy_axis: int) -> np.ndarray | None:
        """(n_channels,) sum over the scan, or None (and a worker started) when not ready."""
        key = id(data)
        if key in self._cache:
            return self._cache[key]
        if self._summing != key and key not in self._errors:
            self._summing = key
            self._jobs.start("sum", sum_spectrum, data, axis=energy_axis,
                             done=partial(self._done, key), failed=partial(self._failed, key))
        return None

    def error(self, data: Any) -> str | None:
        """Why summing ``data`` failed, or None."""
        return self._errors.get(id(data))

    def retry(self, data: Any) -> None:
        """Forget a failed read of ``data`` so the next :meth:`get` reads again."""
        self._errors.pop(id(data), None)

    def _done(self, key: int, spectrum: np.ndarray) -> None:
        self._cache = {key: spectrum}
        self._summing = None
        self._on_ready(key)

    def _failed(self, key: int, exc: BaseException) -> None:
        self._summing = None
        self._errors[key] = error_text(exc)
        self._on_error(key, exc)
