"""Vectorisable float32 pow and log, for the numba kernels.

numba compiles ``x ** a`` and ``np.log`` to scalar libm calls (about 10 ns each
here, no SVML); these polynomial versions vectorise when called inside a loop
and run about 25x faster. ln has an absolute error below 2e-7; v ** a a
relative error of 1e-6 to 7e-6 for v in [1e-12, 1e3] and a in [0.4, 3], set by
the float32 rounding of a log2(v) (tests/test_solver_math.py). Float bits are
reinterpreted with LLVM bitcasts (two tiny intrinsics), so the functions are
plain scalar functions that fuse into the callers' loops.

Note for developers: numba's on-disk cache of a kernel is keyed on its own
file only (``kernels.py``, ``pipeline.py``); after editing this file, or the
inlined helpers of ``kernels.py``, clear ``__pycache__/*.nb[ic]`` (or touch
those files), else the cached kernels keep the old code.
"""
from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_JIT = dict(nogil=True, cache=True, fastmath=True, inline="always")
_ONE = np.float32(1.0)
_SQRT2 = np.float32(1.41421356)
_LN2 = np.float32(0.6931471805599453)
_C3, _C5, _C7, _C9 = (np.float32(1 / k) for k in (3, 5, 7, 9))


@intrinsic
def _bits(typingctx, v):
    """The int32 whose bits are those of the float32 v."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float32 whose bits are those of the int32 i."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@nb.njit(**_JIT)
def log2f(v):
    """log2(v) for a positive float32 v."""
    b = _bits(v)
    m = _from_bits((b & np.int32(0x007FFFFF)) | np.int32(0x3F800000))  # mantissa in [1, 2)
    e = np.float32((b >> 23) - 127)
    big = m > _SQRT2
    m = m * np.float32(0.5) if big else m
    e = e + _ONE if big else e
    t = (m - _ONE) / (m + _ONE)
    t2 = t * t
    series = _ONE + t2 * (_C3 + t2 * (_C5 + t2 * (_C7 + t2 * _C9)))
    return e + np.float32(2.0) / _LN2 * t * series


@nb.njit(**_JIT)
def logf(v):
    """ln(v) for a positive float32 v."""
    return _LN2 * log2f(v)


@nb.njit(**_JIT)
def powf(v, a):
    """v ** a for float32 v >= 0 and a >= 0 (0 ** a = 0 when a > 0)."""
    yv = a * log2f(v)
    yv = yv if yv > np.float32(-126.0) else np.float32(-126.0)
    k = np.floor(yv + np.float32(0.5))
    f = (yv - k) * _LN2  # |f| <= ln2 / 2: Taylor to degree 6 is float32-exact
    ex = _ONE + f * (_ONE + f * (np.float32(1 / 2) + f * (np.float32(1 / 6) + f * (
        np.float32(1 / 24) + f * (np.float32(1 / 120) + f * np.float32(1 / 720))))))
    r = ex * _from_bits((np.int32(k) + 127) << 23)
    if a == 0:
        r = _ONE
    elif v <= np.float32(1e-30):
        r = np.float32(0.0)
    return r


@nb.njit(**_JIT)
def pow_row(src, a, dst):
    """dst = src ** a for float32 rows src >= 0 (n,) and a >= 0."""
    for j in range(src.shape[0]):
        dst[j] = powf(src[j], a)
