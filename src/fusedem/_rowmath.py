"""Vectorisable float32 pow and log on contiguous rows, for the numba kernels.

numba compiles ``x ** a`` and ``np.log`` to scalar libm calls (about 10 ns each
here, no SVML); these polynomial versions vectorise and run about 25x faster at
a relative error below 1e-6. Each takes an int32 scratch row ``ibuf`` of the
same length, used to reinterpret float bits.

Note for developers: numba's on-disk cache of a kernel is keyed on its own
file only (``kernels.py``, ``pipeline.py``); after editing this file, or the
inlined helpers of ``kernels.py``, clear ``__pycache__/*.nb[ic]`` (or touch
those files), else the cached kernels keep the old code.
"""
from __future__ import annotations

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True, fastmath=True, inline="always")
_ONE = np.float32(1.0)
_SQRT2 = np.float32(1.41421356)
_LN2 = np.float32(0.6931471805599453)
_C3, _C5, _C7, _C9 = (np.float32(1 / k) for k in (3, 5, 7, 9))


@nb.njit(**_JIT)
def _log2_parts(bits, fbuf, ibuf, j):
    """log2 of the positive float whose bits are bits[j]; fbuf aliases ibuf."""
    b = bits[j]
    ibuf[j] = (b & 0x007FFFFF) | 0x3F800000
    e = np.float32((b >> 23) - 127)
    m = fbuf[j]  # mantissa in [1, 2)
    big = m > _SQRT2
    m = m * np.float32(0.5) if big else m
    e = e + _ONE if big else e
    t = (m - _ONE) / (m + _ONE)
    t2 = t * t
    series = _ONE + t2 * (_C3 + t2 * (_C5 + t2 * (_C7 + t2 * _C9)))
    return e + np.float32(2.0) / _LN2 * t * series


@nb.njit(**_JIT)
def log_row(src, dst, ibuf):
    """dst = ln(src) for positive float32 rows src (n,)."""
    bits = src.view(np.int32)
    fbuf = ibuf.view(np.float32)
    for j in range(src.shape[0]):
        dst[j] = _LN2 * _log2_parts(bits, fbuf, ibuf, j)


@nb.njit(**_JIT)
def pow_row(src, a, dst, ibuf):
    """dst = src ** a for float32 rows src >= 0 (n,) and a >= 0 (0 ** a = 0 when a > 0)."""
    bits = src.view(np.int32)
    fbuf = ibuf.view(np.float32)
    for j in range(src.shape[0]):
        yv = a * _log2_parts(bits, fbuf, ibuf, j)
        yv = yv if yv > np.float32(-126.0) else np.float32(-126.0)
        k = np.floor(yv + np.float32(0.5))
        f = (yv - k) * _LN2  # |f| <= ln2 / 2: Taylor to degree 6 is float32-exact
        ex = _ONE + f * (_ONE + f * (np.float32(1 / 2) + f * (np.float32(1 / 6) + f * (
            np.float32(1 / 24) + f * (np.float32(1 / 120) + f * np.float32(1 / 720))))))
        ibuf[j] = (np.int32(k) + 127) << 23
        v = ex * fbuf[j]
        if a == 0:
            v = _ONE
        elif src[j] <= np.float32(1e-30):
            v = np.float32(0.0)
        dst[j] = v
