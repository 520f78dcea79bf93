"""fusedem: fused multi-modal electron microscopy.

Recover high-SNR elemental maps by fusing noisy EDS/EELS maps with the HAADF
image of the same scan. The core (this package minus ``fusedem.napari``) needs
only numpy, scipy and numba.
"""
from .elements import ATOMIC_NUMBERS, atomic_number, normalize_symbol
from .params import FusionParams
from .solver import FusionResult, FusionState, fuse, iterate

__version__ = "0.1.0"
__all__ = [
    "ATOMIC_NUMBERS",
    "FusionParams",
    "FusionResult",
    "FusionState",
    "atomic_number",
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
