"""fusedem: fused multi-modal electron microscopy.

Recover high-SNR elemental maps by fusing noisy EDS/EELS maps with the HAADF
image of the same scan. The core (this package minus ``fusedem.napari``) needs
only numpy, scipy and numba.
"""
import os as _os

# numba's OpenMP threads spin-wait for work by default; on a busy machine (a
# napari session, a test suite, other users) they then wait for cores that are
# taken, and a 2-thread solve ran 3x slower than with passive waiting (256² x 3,
# 30 iterations, load 5 on 2 cores: 126 ms spinning, 41 ms passive). libgomp
# reads this when numba first starts its thread pool; a user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .elements import ATOMIC_NUMBERS, atomic_number, normalize_symbol
from .params import FusionParams
from .solver import FusionResult, FusionState, fuse, iterate
from .tuning import AutoResult, autotune

__version__ = "0.1.0"
__all__ = [
    "ATOMIC_NUMBERS",
    "AutoResult",
    "FusionParams",
    "FusionResult",
    "FusionState",
    "atomic_number",
    "autotune",
    "fuse",
    "iterate",
    "normalize_symbol",
]

#: Subpackages loaded on first use (``fusedem.io.load(...)`` after ``import fusedem``),
#: so that ``import fusedem`` stays light; ``fusedem.napari`` is never loaded this way.
_LAZY = ("io", "spectra", "cli", "demo")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
