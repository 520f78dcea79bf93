"""numba CSR × dense products, parallel over the sparse matrix's rows (float32).

scipy's sparse @ dense runs on one thread; these run on numba's thread pool.
Each row of the result is a weighted sum of whole rows of the dense operand
(contiguous, so the inner loop vectorises).
"""
from __future__ import annotations

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True, fastmath=True, error_model="numpy")


@nb.njit(parallel=True, **_JIT)
def csr_dense(indptr, indices, data, x, out):
    """out = A @ x for A in CSR (indptr, indices, data); x (n_cols, m), out (n_rows, m) float32."""
    n_rows = indptr.shape[0] - 1
    m = x.shape[1]
    for r in nb.prange(n_rows):
        acc = out[r]
        for j in range(m):
            acc[j] = np.float32(0.0)
        for k in range(indptr[r], indptr[r + 1]):
            v = data[k]
            row = x[indices[k]]
            for j in range(m):
                acc[j] += v * row[j]


def matmul(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray,
           out: np.ndarray | None = None) -> np.ndarray:
    """A @ x (float32) with :func:`csr_dense`; x (n_cols, m) C-contiguous float32."""
    x = np.ascontiguousarray(x, np.float32)
    if out is None:
        out = np.empty((indptr.shape[0] - 1, x.shape[1]), np.float32)
    csr_dense(indptr, indices, data, x, out)
    return out
