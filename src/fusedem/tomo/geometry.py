"""Parallel-beam single-axis tilt geometry and the strip-area system matrix.

Convention (docs/tomography.md): volumes are (ny, nz, nx), the tilt axis is y.
Voxel (k, j) of a slice sits at centred coordinates z = k - (nz-1)/2,
x = j - (nx-1)/2 and projects at tilt θ to the detector position
u = x·cosθ + z·sinθ; detector bin m is centred at u_m = m - (nu-1)/2 and is
one voxel wide. A voxel is a unit square: its shadow on the detector is the
convolution of two boxes of widths |cosθ| and |sinθ| (a trapezoid of unit area),
and its weight in bin m is the area of that shadow falling in the bin
("strip-area" weights). Each voxel's weights sum to 1 where the detector holds
its whole shadow, so a projection conserves the volume's sum (counts stay counts).
"""
from __future__ import annotations

import numpy as np

MAX_ABS_ANGLE = 90.0  #: degrees; tilts beyond ±90° are rejected


def check_angles(name: str, angles: object, n_expected: int | None = None) -> np.ndarray:
    """Validate tilt angles in degrees; returns them as float64 (n,).

    Raises ValueError naming ``name`` for a non-1-D or non-finite array, fewer
    than 2 tilts, tilts outside ±90° or a count that differs from ``n_expected``
    (the number of projections in the stack).
    """
    try:
        a = np.asarray(angles, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be read as numbers ({exc})") from None
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D list of tilt angles in degrees, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite angles")
    if n_expected is not None and a.size != n_expected:
        raise ValueError(f"{name}: {a.size} angles given for a stack of {n_expected} projections; "
                         "there must be one angle per projection")
    if a.size < 2:
        raise ValueError(f"{name}: a tilt series needs at least 2 tilts, got {a.size}")
    bad = np.abs(a) > MAX_ABS_ANGLE
    if np.any(bad):
        raise ValueError(f"{name}: tilts must lie within ±{MAX_ABS_ANGLE:g}°, got "
                         f"{a[bad][:5].tolist()} (angles are in degrees)")
    return a


def centred(n: int) -> np.ndarray:
    """Centred coordinates of n unit cells: i - (n-1)/2, float64 (n,)."""
    return np.arange(n, dtype=np.float64) - (n - 1) / 2.0


def _ramp2(t: np.ndarray) -> np.ndarray:
    """max(t, 0)² (twice the second antiderivative of a unit step)."""
    r = np.maximum(t, 0.0)
    return r * r


def shadow_cdf(t: np.ndarray, a: float, b: float) -> np.ndarray:
    """Area of a unit voxel's shadow left of offset t (from its centre), for box widths a <= b.

    The shadow is box(a) * box(b) (unit area). For a < 1e-6 it is box(b) itself.
    """
    if a < 1e-6:
        return np.clip(t / b + 0.5, 0.0, 1.0)
    h1, h2 = (a + b) / 2.0, (b - a) / 2.0
    s = _ramp2(t + h1) - _ramp2(t + h2) - _ramp2(t - h2) + _ramp2(t - h1)
    return s / (2.0 * a * b)


def strip_weights(angle_deg: float, nz: int, nx: int, nu: int):
    """Weights of one tilt: (first bin (nz·nx,) int64, weights (nz·nx, 3) float64).

    Voxel v = k·nx + j puts weight w[v, d] in bin first[v] + d (d = 0, 1, 2): its
    shadow (width <= √2) touches at most 3 adjacent bins. Bins off the detector
    and weights below 1e-9 get weight 0 (the caller drops them).
    """
    th = np.deg2rad(angle_deg)
    c, s = np.cos(th), np.sin(th)
    a, b = sorted((abs(c), abs(s)))
    pos = (centred(nz)[:, None] * s + centred(nx)[None, :] * c).ravel() + (nu - 1) / 2.0
    first = np.floor(pos - 0.5).astype(np.int64)  # bins first..first+2 centred at those indices
    edge0 = first - 0.5 - pos  # left edge of the first bin relative to the voxel's centre
    cdf = np.stack([shadow_cdf(edge0 + d, a, b) for d in range(4)], axis=1)  # (nv, 4)
    w = np.diff(cdf, axis=1)
    bins = first[:, None] + np.arange(3)
    w[(bins < 0) | (bins >= nu) | (w < 1e-9)] = 0.0
    return first, w
