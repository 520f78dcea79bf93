"""The CUDA backend: the same outer iteration as the CPU solver, on an NVIDIA GPU.

Kernels are written with numba's CUDA target (``numba-cuda``; ``pip install
"fusedem[cuda]"``), so the same source runs on a GPU and, for tests without
one, in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``). Nothing here is
imported unless a GPU is asked for: fusedem installs and runs without any GPU
library.

``device`` arguments across fusedem take "auto" (CUDA when a usable GPU and
numba's CUDA target are present, else CPU), "cpu" or "cuda".
"""
from __future__ import annotations

import functools
import os

DEVICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the CUDA backend cannot run here (None when it can). Cached per process."""
    try:
        from numba import config, cuda
    except Exception as exc:  # pragma: no cover - numba is a core dependency
        return f"numba's CUDA target cannot be imported ({exc})"
    if config.ENABLE_CUDASIM:
        return None
    try:
        if not cuda.is_available():
            return "no usable NVIDIA GPU or CUDA driver was found"
    except Exception as exc:  # driver present but broken
        return f"the CUDA driver failed to initialise ({exc})"
    return None


def simulated() -> bool:
    """True when numba's CUDA simulator stands in for a GPU (tests without one)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def resolve_device(device: str) -> str:
    """'cpu' or 'cuda' for a requested device; 'auto' never picks the simulator.

    Raises ValueError for an unknown name, or for 'cuda' when no GPU can be used
    (with the reason).
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    reason = unavailable_reason()
    if device == "auto":
        return "cuda" if reason is None and not simulated() else "cpu"
    if reason is not None:
        raise ValueError(f"device='cuda' was asked for, but {reason}; use device='cpu' or 'auto'")
    return "cuda"


def device_name(device: str) -> str:
    """A readable name of a resolved device: 'cpu', 'cuda: NVIDIA H200', 'cuda: simulator'."""
    if device != "cuda":
        return "cpu"
    if simulated():
        return "cuda: simulator"
    from numba import cuda

    name = cuda.get_current_device().name
    return f"cuda: {name.decode() if isinstance(name, bytes) else name}"
