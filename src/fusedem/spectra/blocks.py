"""A spectrum image read as a (pixels × channels) matrix in blocks of scan rows.

For cubes larger than memory (dask arrays, e.g. RosettaSciIO ``lazy=True``, or
numpy memmaps): every pass over the matrix reads one block of scan rows at a
time, so only a block and the small (pixels × k) / (channels × k) factors are
ever in memory. The randomised SVD here (Halko, Martinsson & Tropp 2011, alg.
4.4) is written on such passes; with one block it is the in-memory algorithm.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .extract import _dense, _is_dask, as_spectrum_cube

#: Target size of one block of rows (float64 bytes).
BLOCK_BYTES = 64 * 2**20

#: A block reader: yields (pixel slice, (n_pixels_in_block, n_channels) float64 block).
Blocks = Callable[[], Iterator[tuple[slice, np.ndarray]]]


def is_out_of_core(x: Any) -> bool:
    """True for arrays read lazily (dask) or from disk on demand (numpy memmap)."""
    return _is_dask(x) or isinstance(x, np.memmap) or isinstance(
        getattr(x, "base", None), np.memmap)


def row_ranges(si: Any, block_bytes: int | None = None) -> list[tuple[int, int]]:
    """Scan-row ranges [y0, y1) of a (ny, nx, ne) cube, about ``block_bytes`` (default
    :data:`BLOCK_BYTES`) each as float64; dask chunk boundaries are kept."""
    ny, nx, ne = si.shape
    per_row = max(nx * ne * 8, 1)
    step = max(1, int(BLOCK_BYTES if block_bytes is None else block_bytes) // per_row)
    if _is_dask(si):
        edges = np.cumsum((0,) + tuple(si.chunks[0]))
        out, y0 = [], 0
        for y in edges[1:]:
            if y - y0 >= step or y == ny:
                out.append((y0, int(y)))
                y0 = int(y)
        return out
    return [(y, min(y + step, ny)) for y in range(0, ny, step)]


def cube_blocks(spectrum_image: Any, axis: int = -1,
                block_bytes: int | None = None) -> tuple[Blocks, tuple[int, int, int]]:
    """A reader of the cube's row blocks and its (ny, nx, ne) shape; blocks are checked
    for finite, non-negative counts (ValueError naming the first bad block)."""
    si = as_spectrum_cube(spectrum_image, axis)
    ny, nx, ne = (int(n) for n in si.shape)
    ranges = row_ranges(si, block_bytes)

    def blocks() -> Iterator[tuple[slice, np.ndarray]]:
        for y0, y1 in ranges:
            part = si[y0:y1]
            a = _dense(part.compute() if _is_dask(part) else part).reshape(-1, ne)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"the spectrum image holds NaN or infinite values (scan rows "
                                 f"{y0}-{y1 - 1}); PCA needs finite counts")
            if a.size and a.min() < 0:
                raise ValueError("the spectrum image holds negative values; Poisson-normalised "
                                 "PCA needs counts (not a background-subtracted cube)")
            yield slice(y0 * nx, y1 * nx), a

    return blocks, (ny, nx, ne)


def means(blocks: Blocks, n_pix: int, n_ch: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean image a (n_pix,), mean spectrum b (n_ch,) and the total count, in one pass."""
    a = np.zeros(n_pix)
    col = np.zeros(n_ch)
    for sl, x in blocks():
        a[sl] = x.mean(axis=1)
        col += x.sum(axis=0)
    return a, col / max(n_pix, 1), float(col.sum())


def weighted(blocks: Blocks, a: np.ndarray, b: np.ndarray) -> Blocks:
    """The blocks divided by sqrt(a bᵀ) (0 where a pixel or channel holds no counts)."""
    sb = np.sqrt(b)

    def gen() -> Iterator[tuple[slice, np.ndarray]]:
        for sl, x in blocks():
            c = np.outer(np.sqrt(a[sl]), sb)
            out = np.zeros_like(x)
            np.divide(x, c, out=out, where=c > 0)
            yield sl, out

    return gen


def randomised_svd(blocks: Blocks, shape: tuple[int, int], k: int, rng: np.random.Generator, *,
                   n_oversample: int = 10, n_power: int = 4,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """First k singular triplets of the blocked matrix m (p × q): U (p, k), s (k,), Vt (k, q),
    and ‖m‖² — randomised range finder with ``n_power`` power iterations, 2 + 2·n_power passes."""
    p, q = shape
    ell = k + n_oversample
    omega = rng.standard_normal((q, ell))
    y = np.empty((p, ell))
    total = 0.0
    for sl, x in blocks():
        y[sl] = x @ omega
        total += float(np.vdot(x, x))
    basis, _ = np.linalg.qr(y)
    for _ in range(n_power):
        z = np.zeros((q, ell))
        for sl, x in blocks():
            z += x.T @ basis[sl]
        z, _ = np.linalg.qr(z)
        for sl, x in blocks():
            y[sl] = x @ z
        basis, _ = np.linalg.qr(y)
    small = np.zeros((ell, q))
    for sl, x in blocks():
        small += basis[sl].T @ x
    ub, s, vt = np.linalg.svd(small, full_matrices=False)
    return (basis @ ub)[:, :k], s[:k], vt[:k], total


def single_block(m: np.ndarray) -> Blocks:
    """An in-memory matrix as one block."""
    return lambda: iter([(slice(0, m.shape[0]), m)])
