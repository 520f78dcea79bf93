"""The parallel-beam projector: one sparse system matrix per angle set, shared by all slices.

P maps one slice (nz·nx voxels, index k·nx + j) to its sinogram (n_angles·nu
values, index a·nu + m). A whole volume, or all elements' volumes at once, is
projected as one sparse × dense product by putting the slices (and elements)
in the columns: X (nz·nx, n_cols) -> P X (n_angles·nu, n_cols). Pᵀ is kept as
its own CSR matrix, so the back-projection is as fast as the projection.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import _spmm
from .geometry import check_angles, strip_weights

BACKENDS = ("numba", "scipy")


class CSRArrays(NamedTuple):
    """A CSR matrix as plain arrays, for a backend that applies it itself (e.g. on a GPU).

    Row r holds data[indptr[r]:indptr[r+1]] at columns indices[indptr[r]:indptr[r+1]];
    indptr int64 (n_rows + 1,), indices int32 (nnz,), data float32 (nnz,), shape (n_rows, n_cols).
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]


def _arrays(m: sp.csr_matrix) -> CSRArrays:
    return CSRArrays(m.indptr.astype(np.int64, copy=False), m.indices.astype(np.int32, copy=False),
                     m.data.astype(np.float32, copy=False), (int(m.shape[0]), int(m.shape[1])))


class Projector:
    """Strip-area parallel-beam projector for tilts ``angles`` (degrees) and slices (nz, nx).

    ``csr`` holds P ((n_angles·nu) × (nz·nx)), ``csr_t`` holds Pᵀ, both as
    :class:`CSRArrays`. ``backend``: 'numba' (multi-threaded, default) or 'scipy'.
    """

    def __init__(self, angles, nz: int, nx: int, nu: int | None = None, backend: str = "numba"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.angles = check_angles("angles", angles)
        self.nz, self.nx = int(nz), int(nx)
        self.nu = int(nu) if nu is not None else self.nx
        self.backend = backend
        nv, na = self.nz * self.nx, self.angles.size
        # Order (voxel, angle, bin) gives Pᵀ in CSR with sorted column indices.
        bins = np.empty((nv, na, 3), np.int32)
        wts = np.empty((nv, na, 3), np.float32)
        for a, th in enumerate(self.angles):
            first, wts[:, a] = strip_weights(th, self.nz, self.nx, self.nu)
            bins[:, a] = (first + a * self.nu)[:, None] + np.arange(3, dtype=np.int32)
        bins, wts = bins.reshape(nv, -1), wts.reshape(nv, -1)
        keep = wts > 0
        indptr = np.zeros(nv + 1, np.int64)
        np.cumsum(keep.sum(axis=1), out=indptr[1:])
        pt = sp.csr_matrix((wts[keep], bins[keep], indptr),
                           shape=(nv, na * self.nu))
        self.csr_t = _arrays(pt)
        self.csr = _arrays(pt.T.tocsr())
        self._mats = None
        self._norm_sq: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(n_angles·nu, nz·nx)."""
        return self.csr.shape

    def _scipy(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        if self._mats is None:
            self._mats = tuple(sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)
                               for c in (self.csr, self.csr_t))
        return self._mats

    def _apply(self, c: CSRArrays, which: int, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        x2 = np.ascontiguousarray(x, np.float32).reshape(c.shape[1], -1)
        if self.backend == "scipy":
            r = np.asarray(self._scipy()[which] @ x2, np.float32)
            if out is None:
                return r
            out.reshape(r.shape)[...] = r
            return out
        o = None if out is None else out.reshape(c.shape[0], -1)
        r = _spmm.matmul(c.indptr, c.indices, c.data, x2, o)
        return r if out is None else out

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """P X: x (nz·nx, m) or (nz, nx, ...) float32 -> (n_angles·nu, m) (or ``out``'s shape)."""
        return self._apply(self.csr, 0, x, out)

    def back(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Pᵀ Y: y (n_angles·nu, m) or (n_angles, nu, ...) -> (nz·nx, m) (or ``out``'s shape)."""
        return self._apply(self.csr_t, 1, y, out)

    def project(self, volume: np.ndarray) -> np.ndarray:
        """Tilt series of a volume: (ny, nz, nx) -> (n_angles, ny, nu) float32."""
        v = np.asarray(volume, np.float32)
        ny = v.shape[0]
        y = self.forward(np.ascontiguousarray(v.transpose(1, 2, 0)))  # (na·nu, ny)
        return np.ascontiguousarray(y.reshape(-1, self.nu, ny).transpose(0, 2, 1))

    def backproject(self, series: np.ndarray) -> np.ndarray:
        """Pᵀ of a tilt series: (n_angles, ny, nu) -> (ny, nz, nx) float32."""
        s = np.asarray(series, np.float32)
        ny = s.shape[1]
        v = self.back(np.ascontiguousarray(s.transpose(0, 2, 1)))  # (nz·nx, ny)
        return np.ascontiguousarray(v.reshape(self.nz, self.nx, ny).transpose(2, 0, 1))

    def norm_sq(self, n_iter: int = 30, seed: int = 0) -> float:
        """‖P‖² (largest eigenvalue of PᵀP) by power iteration, cached; a slight over-estimate (×1.01)."""
        if self._norm_sq is None:
            v = np.random.default_rng(seed).random((self.shape[1], 1)).astype(np.float32)
            lam = 0.0
            for _ in range(int(n_iter)):
                w = self.back(self.forward(v))
                lam = float(np.linalg.norm(w) / max(np.linalg.norm(v), 1e-30))
                v = w / max(float(np.linalg.norm(w)), 1e-30)
            self._norm_sq = 1.01 * lam
        return self._norm_sq

    def row_sums(self) -> np.ndarray:
        """P 1: (n_angles·nu,) float32, the path length of each ray through the slice."""
        return _row_sums(self.csr)

    def col_sums(self) -> np.ndarray:
        """Pᵀ 1: (nz·nx,) float32, each voxel's total weight over the tilts."""
        return _row_sums(self.csr_t)


def _row_sums(c: CSRArrays) -> np.ndarray:
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    return np.bincount(rows, weights=c.data, minlength=c.shape[0]).astype(np.float32)
