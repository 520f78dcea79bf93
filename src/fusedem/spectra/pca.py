"""Poisson-normalised PCA denoising of a spectrum image, rank chosen on held-out counts.

The cube X (pixels × channels) is weighted as in Keenan & Kotula (2004) and
HyperSpy's ``decomposition(normalize_poissonian_noise=True)``: X̃ = X / sqrt(a bᵀ)
with a the mean image (counts per pixel) and b the mean spectrum, so that every
entry has about unit noise variance; a truncated SVD of X̃ (randomised for large
cubes, Halko et al. 2011) gives the first k spectral components V_k, each
weighted spectrum is projected onto them (X̃ V_k V_kᵀ) and the weights are undone.
Dask and memmap cubes are processed in blocks of scan rows (:mod:`.blocks`):
means, SVD passes and the projection never hold the whole cube; a dask input
gives a lazy dask result.

The rank k is chosen by Poisson thinning (DESIGN.md 2b): X1 ~ Binomial(X, p),
X2 = X − X1; the SVD of X1/p is truncated at every k ≤ k_max and scored by the
weighted squared error against X2/(1 − p). Valid only on raw counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from . import blocks as blk
from .extract import _dense, _is_dask, as_spectrum_cube
from .thinning import thin_counts

#: Components computed when choosing the rank (the scree plot's length).
MAX_COMPONENTS = 30
#: Above this many matrix entries (pixels × channels) the SVD is randomised.
RANDOMISED_ABOVE = 250_000


@dataclass(frozen=True)
class RankChoice:
    """Held-out choice of the number of components.

    scores[k - 1]: weighted squared error of the rank-k reconstruction of the fit
    half against the held-out half (mean over splits, per matrix entry; lower is
    better); ``n_components``: the argmin; ``p``: the thinning fraction.
    """

    n_components: int
    scores: np.ndarray
    p: float
    n_splits: int

    def to_dict(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "scores": [float(s) for s in self.scores],
                "p": self.p, "n_splits": self.n_splits, "method": "poisson_thinning"}


@dataclass
class PCADenoised:
    """Result of :func:`denoise_pca`; unpacks as ``(cube, explained_variance_ratio)``.

    cube: denoised spectrum image, float64, same shape and axis order as the input
    (counts, not integers: it cannot be thinned again); explained_variance_ratio:
    (n_computed,) share of ‖X̃‖² per component of the weighted cube, for a scree
    plot; n_components: the k used; rank: the held-out choice (None when k was given).
    """

    cube: np.ndarray
    explained_variance_ratio: np.ndarray
    n_components: int
    rank: RankChoice | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cube, self.explained_variance_ratio))


def _as_matrix(spectrum_image: Any, axis: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    si = as_spectrum_cube(spectrum_image, axis)
    a = _dense(si.compute() if _is_dask(si) else si)
    if not np.all(np.isfinite(a)):
        raise ValueError("the spectrum image holds NaN or infinite values; PCA needs finite counts")
    if a.min() < 0:
        raise ValueError("the spectrum image holds negative values; Poisson-normalised PCA "
                         "needs counts (not a background-subtracted cube)")
    ny, nx, ne = a.shape
    return a.reshape(ny * nx, ne), (ny, nx, ne)


def poisson_weights(x: np.ndarray) -> np.ndarray:
    """sqrt(a bᵀ) for x (pixels × channels): a = counts per pixel / n_ch, b = mean spectrum.

    Returns (pixels, channels) float64; 0 where a pixel or a channel holds no counts.
    """
    a = x.mean(axis=1)
    b = x.mean(axis=0)
    return np.sqrt(np.outer(a, b))


def _divide(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    np.divide(x, c, out=out, where=c > 0)
    return out


def truncated_svd(m: np.ndarray, k: int, rng: np.random.Generator, *,
                  randomised: bool | None = None, n_oversample: int = 10,
                  n_power: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First k singular triplets of m (p × q): U (p, k), s (k,), Vt (k, q).

    Randomised range finder with ``n_power`` power iterations (Halko, Martinsson
    & Tropp 2011, alg. 4.4) when ``randomised`` (default: m.size > RANDOMISED_ABOVE);
    otherwise the full SVD, truncated.
    """
    if randomised is None:
        randomised = m.size > RANDOMISED_ABOVE
    if not randomised or 2 * (k + n_oversample) >= min(m.shape):
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        return u[:, :k], s[:k], vt[:k]
    u, s, vt, _ = blk.randomised_svd(blk.single_block(m), m.shape, k, rng,
                                     n_oversample=n_oversample, n_power=n_power)
    return u, s, vt


def _check_k(k: int, shape: tuple[int, int], what: str) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"{what} must be a positive integer, got {k!r}")
    n_pix, n_ch = shape
    if k > min(n_pix, n_ch):
        raise ValueError(
            f"{what} = {k} is more than the spectrum image allows: it has {n_pix} pixels "
            f"and {n_ch} channels (at most {min(n_pix, n_ch)} components)")
    return int(k)


def choose_rank(spectrum_image: Any, *, axis: int = -1, max_components: int = MAX_COMPONENTS,
                p: float = 0.9, n_splits: int = 3, seed: int = 0) -> RankChoice:
    """Number of PCA components chosen by Poisson thinning (module docstring).

    spectrum_image: (ny, nx, n_channels) raw counts (``axis``: the energy axis).
    Each split fits X1/p and scores rank 1..max_components against X2/(1−p) in
    the fit's Poisson weights, entries with zero weight left out. Raises
    ValueError for data that are not raw counts.
    """
    if not 0 < p < 1:
        raise ValueError(f"thinning fraction p must lie in (0, 1), got {p}")
    if blk.is_out_of_core(spectrum_image):
        return _choose_rank_blocked(spectrum_image, axis, max_components, p, n_splits, seed)
    x, _ = _as_matrix(spectrum_image, axis)
    kmax = min(int(max_components), *x.shape)
    _check_k(kmax, x.shape, "max_components")
    rng = np.random.default_rng(seed)
    total = np.zeros(kmax)
    for _ in range(int(n_splits)):
        x1 = thin_counts(x, p, rng)
        fit = x1 / p
        c = poisson_weights(fit)
        ft, held = _divide(fit, c), _divide((x - x1) / (1.0 - p), c)
        u, s, vt = truncated_svd(ft, kmax, rng)
        total += _held_out_errors(u, s, vt, blk.single_block(held)) / np.count_nonzero(c > 0)
    scores = total / int(n_splits)
    return RankChoice(int(np.argmin(scores)) + 1, scores, float(p), int(n_splits))


def _held_out_errors(u: np.ndarray, s: np.ndarray, vt: np.ndarray, held: blk.Blocks) -> np.ndarray:
    """‖Y − R_k‖² for k = 1..len(s), R_k = Σ_{i<k} s_i u_i v_iᵀ, Y given in blocks:
    ‖Y‖² − 2 Σ_{i<k} s_i u_iᵀ Y v_i + Σ_{i<k} s_i²."""
    cross = np.zeros(s.size)
    norm = 0.0
    for sl, y in held():
        cross += np.einsum("pi,pi->i", u[sl], y @ vt.T)
        norm += float(np.vdot(y, y))
    return norm - 2.0 * np.cumsum(cross * s) + np.cumsum(s**2)


def _thinned_rows(blocks: blk.Blocks, n_x: int, p: float, seed: int, split: int) -> blk.Blocks:
    """(fit, held) blocks: X1 ~ Binomial(X, p) drawn per scan row from a generator keyed
    by (seed, split, row), so every pass and every blocking draws the same X1."""
    def gen():
        for sl, x in blocks():
            if x.size and not np.array_equal(x, np.round(x)):
                raise ValueError("the spectrum image does not hold raw counts (fractional "
                                 "values), so k cannot be chosen on held-out counts; give "
                                 "n_components")
            x1 = np.empty_like(x)
            y0 = sl.start // n_x
            for r in range(x.shape[0] // n_x):
                rows = slice(r * n_x, (r + 1) * n_x)
                rng = np.random.default_rng((seed, split, y0 + r))
                x1[rows] = rng.binomial(x[rows].astype(np.int64), p)
            yield sl, x1, x
    return gen


def _choose_rank_blocked(spectrum_image: Any, axis: int, max_components: int, p: float,
                         n_splits: int, seed: int) -> RankChoice:
    """:func:`choose_rank` in blocks of scan rows (dask/memmap cubes); always randomised."""
    blocks, (ny, nx, ne) = blk.cube_blocks(spectrum_image, axis)
    kmax = min(int(max_components), ny * nx, ne)
    _check_k(kmax, (ny * nx, ne), "max_components")
    total = np.zeros(kmax)
    for split in range(int(n_splits)):
        pairs = _thinned_rows(blocks, nx, p, seed, split)
        fit = lambda: ((sl, x1 / p) for sl, x1, _ in pairs())  # noqa: E731
        held = lambda: ((sl, (x - x1) / (1.0 - p)) for sl, x1, x in pairs())  # noqa: E731
        a, b, _ = blk.means(fit, ny * nx, ne)
        rng = np.random.default_rng((seed, split))
        u, s, vt, _ = blk.randomised_svd(blk.weighted(fit, a, b), (ny * nx, ne), kmax, rng)
        n_used = np.count_nonzero(a > 0) * np.count_nonzero(b > 0)
        total += _held_out_errors(u, s, vt, blk.weighted(held, a, b)) / max(n_used, 1)
    scores = total / int(n_splits)
    return RankChoice(int(np.argmin(scores)) + 1, scores, float(p), int(n_splits))


def denoise_pca(spectrum_image: Any, n_components: int | None = None, *, axis: int = -1,
                max_components: int = MAX_COMPONENTS, p: float = 0.9, n_splits: int = 3,
                seed: int = 0, randomised: bool | None = None) -> PCADenoised:
    """Poisson-normalised PCA reconstruction of a spectrum image with k components.

    spectrum_image: (ny, nx, n_channels) counts, numpy or dask (``axis``: the
    energy axis; the result keeps the input's axis order). n_components: k, or
    None for the held-out choice of :func:`choose_rank` (needs raw counts).
    Returns a :class:`PCADenoised` (unpack: ``cube, evr = denoise_pca(...)``);
    the denoised cube is float64 counts, negative entries kept (an unbiased
    reconstruction; extraction subtracts a background anyway).
    Raises ValueError when k exceeds min(pixels, channels) or the data are not counts.
    """
    if blk.is_out_of_core(spectrum_image):
        return _denoise_blocked(spectrum_image, n_components, axis, max_components, p,
                                n_splits, seed)
    x, (ny, nx, ne) = _as_matrix(spectrum_image, axis)
    rank = None
    if n_components is None:
        rank = choose_rank(x.reshape(ny, nx, ne), max_components=max_components, p=p,
                           n_splits=n_splits, seed=seed)
        k = rank.n_components
    else:
        k = _check_k(n_components, x.shape, "n_components")
    n_scree = min(max(k, int(max_components)), *x.shape)
    c = poisson_weights(x)
    xt = _divide(x, c)
    u, s, vt = truncated_svd(xt, n_scree, np.random.default_rng(seed), randomised=randomised)
    total = float(np.vdot(xt, xt))
    evr = s**2 / total if total > 0 else np.zeros_like(s)
    den = ((xt @ vt[:k].T) @ vt[:k]) * c  # projection on the first k spectral components
    cube = den.reshape(ny, nx, ne)
    if axis not in (-1, 2):
        cube = np.moveaxis(cube, -1, axis)
    settings = {"n_components": k, "normalize_poissonian_noise": True,
                "randomised": bool(x.size > RANDOMISED_ABOVE if randomised is None else randomised),
                "blocked": False,
                "rank_choice": None if rank is None else rank.to_dict()}
    return PCADenoised(cube, evr, k, rank, settings)


def _project(x: np.ndarray, b: np.ndarray, vk: np.ndarray) -> np.ndarray:
    """Denoise spectra x (..., ne): weight by sqrt(a bᵀ) (a: each spectrum's mean),
    project on the rows of vk (k, ne), undo the weights. float64, same shape."""
    x = np.asarray(x, dtype=np.float64)
    c = np.sqrt(x.mean(axis=-1, keepdims=True) * b)
    xt = np.zeros_like(x)
    np.divide(x, c, out=xt, where=c > 0)
    return ((xt @ vk.T) @ vk) * c


def _denoise_blocked(spectrum_image: Any, n_components: int | None, axis: int,
                     max_components: int, p: float, n_splits: int, seed: int) -> PCADenoised:
    """:func:`denoise_pca` for dask/memmap cubes, in blocks of scan rows (always randomised).

    A dask input gives a lazy dask cube (computed block by block when read); a memmap a
    numpy cube filled block by block.
    """
    blocks, (ny, nx, ne) = blk.cube_blocks(spectrum_image, axis)
    rank = None
    if n_components is None:
        rank = _choose_rank_blocked(spectrum_image, axis, max_components, p, n_splits, seed)
        k = rank.n_components
    else:
        k = _check_k(n_components, (ny * nx, ne), "n_components")
    n_scree = min(max(k, int(max_components)), ny * nx, ne)
    a, b, _ = blk.means(blocks, ny * nx, ne)
    _, s, vt, total = blk.randomised_svd(blk.weighted(blocks, a, b), (ny * nx, ne), n_scree,
                                         np.random.default_rng(seed))
    evr = s**2 / total if total > 0 else np.zeros_like(s)
    vk = vt[:k]
    si = as_spectrum_cube(spectrum_image, axis)
    if _is_dask(si):
        cube = si.rechunk({2: -1}).map_blocks(lambda blk_: _project(_dense(blk_), b, vk),
                                              dtype=np.float64)
    else:
        cube = np.empty((ny, nx, ne))
        for y0, y1 in blk.row_ranges(si):
            cube[y0:y1] = _project(_dense(si[y0:y1]), b, vk)
    if axis not in (-1, 2):
        cube = _moveaxis(cube, axis)
    settings = {"n_components": k, "normalize_poissonian_noise": True, "randomised": True,
                "blocked": True, "rank_choice": None if rank is None else rank.to_dict()}
    return PCADenoised(cube, evr, k, rank, settings)


def _moveaxis(cube: Any, axis: int) -> Any:
    if _is_dask(cube):
        import dask.array as da

        return da.moveaxis(cube, -1, axis)
    return np.moveaxis(cube, -1, axis)
