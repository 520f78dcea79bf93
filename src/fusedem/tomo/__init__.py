"""Fused multi-modal electron tomography (docs/tomography.md).

3-D chemical volumes from a dense HAADF tilt series and a sparse chemical
(EDS/EELS) tilt series. Volumes are (ny, nz, nx), the tilt axis is y, and a
voxel at centred (z, x) projects to u = x·cosθ + z·sinθ.
"""
from . import phantoms
from .align import Alignment, align_pair, align_tilt_series
from .params import TomoParams
from .projector import CSRArrays, Projector
from .solver import TomoResult, TomoState, fuse_tilt_series, iterate_tilt_series

__all__ = ["Alignment", "CSRArrays", "Projector", "TomoParams", "TomoResult", "TomoState",
           "align_pair", "align_tilt_series", "fuse_tilt_series", "iterate_tilt_series", "phantoms"]
