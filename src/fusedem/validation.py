"""Held-out splits of noisy maps, for choosing parameters without ground truth.

A :class:`Split` is a pair of maps with independent noise: the solver is fitted
on ``fit`` and its prediction, scaled by ``ratio``, is scored against ``held``
(optionally only on the pixels of ``mask``). Three ways to make them
(DESIGN.md 2b):

- :func:`thinning_splits` — Poisson thinning of raw counts: b1 ~ Binomial(b, p),
  b2 = b - b1 are independent Poisson with means p·mu and (1 - p)·mu;
- :func:`frame_splits` — the sums of the even and the odd recorded frames;
- :func:`masking_split` — Noise2Self-style: a strided subset of pixels is
  replaced by the mean of its four neighbours in the input and predicted.

Only masking is valid for maps that are not raw counts (normalised, background
subtracted or fitted maps); thinning of such maps is refused.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: Smallest image (pixels per side) that leaves enough held-out pixels.
MIN_HOLDOUT_SIZE = 16
MASK_STRIDE = 4
#: Tiles per side for the paired standard error of score differences (tile_residuals).
N_TILES = 8


@dataclass(frozen=True)
class Split:
    """One held-out pair. fit/held: element -> (ny, nx) float64 in the input's units.

    The prediction of ``held`` is ``ratio`` times the fitted maps mapped back to
    the input's units; ``mask`` (ny, nx) bool limits the score to some pixels.
    """

    fit: dict[str, np.ndarray]
    held: dict[str, np.ndarray]
    ratio: float = 1.0
    mask: np.ndarray | None = None


def _stack(maps: Mapping[str, object]) -> dict[str, np.ndarray]:
    return {str(k): np.asarray(v, dtype=np.float64) for k, v in maps.items()}


def check_holdout_size(shape: tuple[int, ...]) -> None:
    """Raise ValueError when an image is too small to hold pixels out."""
    if len(shape) != 2 or min(shape) < MIN_HOLDOUT_SIZE:
        raise ValueError(
            f"automatic parameters need at least {MIN_HOLDOUT_SIZE} x {MIN_HOLDOUT_SIZE} pixels "
            f"to hold pixels out for validation; the maps are {tuple(shape)} "
            "(choose a larger region or set the parameters by hand)"
        )


def check_has_counts(maps: Mapping[str, np.ndarray]) -> None:
    """Raise ValueError naming a map that holds no signal at all (all zero)."""
    for k, m in maps.items():
        if not np.any(m):
            raise ValueError(f"map {k!r} has no counts (all zero): there is nothing to fit or validate")


def are_counts(maps: Mapping[str, object]) -> bool:
    """True when every map holds non-negative integers (raw counts, Poisson-thinnable)."""
    for m in maps.values():
        a = np.asarray(m)
        if a.dtype.kind in "biu":
            if a.dtype.kind == "i" and a.min() < 0:
                return False
            continue
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or a.min() < 0:
            return False
        if not np.array_equal(a, np.round(a)):
            return False
    return True


def thinning_splits(maps: Mapping[str, object], p: float = 0.8, n_splits: int = 2,
                    seed: int = 0) -> list[Split]:
    """Poisson thinning of raw-count maps into ``n_splits`` (fit, held) pairs.

    The fit maps are b1 / p (same mean as b); the held maps are b2 = b - b1 with
    ``ratio`` = 1 - p. Raises ValueError when the maps are not raw counts.
    """
    if not 0 < p < 1:
        raise ValueError(f"thinning fraction p must lie in (0, 1), got {p}")
    if not are_counts(maps):
        raise ValueError(
            "Poisson thinning needs raw counts (non-negative integers); these maps are not "
            "(normalised, background-subtracted or fitted maps): use masking instead"
        )
    b = _stack(maps)
    check_has_counts(b)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_splits)):
        b1 = {k: rng.binomial(v.astype(np.int64), p).astype(np.float64) for k, v in b.items()}
        out.append(Split(fit={k: v / p for k, v in b1.items()},
                         held={k: b[k] - v for k, v in b1.items()}, ratio=1.0 - p))
    return out


def frame_splits(frames: Mapping[str, object]) -> list[Split]:
    """Even/odd frame split of recorded map series: element -> (n_frames, ny, nx).

    Fit on the sum of even frames scaled to all frames, score against the odd
    frames' sum; independent when frames are (as for counting detectors).
    """
    f = _stack(frames)
    n = {k: v.shape[0] if v.ndim == 3 else 0 for k, v in f.items()}
    if min(n.values()) < 2:
        raise ValueError(f"frame splits need at least 2 frames per map, got {n}")
    fit, held, ratios = {}, {}, set()
    for k, v in f.items():
        even, odd = v[0::2].sum(axis=0), v[1::2].sum(axis=0)
        n_even, n_odd = len(v[0::2]), len(v[1::2])
        fit[k] = even * (len(v) / n_even)
        held[k] = odd
        ratios.add(n_odd / len(v))
    if len(ratios) != 1:
        raise ValueError("all maps need the same number of frames for a frame split")
    return [Split(fit=fit, held=held, ratio=ratios.pop())]


def _neighbour_mean(a: np.ndarray) -> np.ndarray:
    """Mean of the 4-neighbours of every pixel (edges: of the neighbours that exist)."""
    s = np.zeros_like(a)
    c = np.zeros_like(a)
    s[1:] += a[:-1]
    c[1:] += 1
    s[:-1] += a[1:]
    c[:-1] += 1
    s[:, 1:] += a[:, :-1]
    c[:, 1:] += 1
    s[:, :-1] += a[:, 1:]
    c[:, :-1] += 1
    return s / c


def stride_mask(shape: tuple[int, int], offset: int = 0, stride: int = MASK_STRIDE) -> np.ndarray:
    """(ny, nx) bool: every ``stride``-th pixel in both directions, on a diagonal-shifted grid."""
    yy, xx = np.indices(shape)
    return ((yy % stride) == (offset % stride)) & ((xx % stride) == ((offset * 3 + 1) % stride))


def masking_split(maps: Mapping[str, object], offset: int = 0) -> Split:
    """One Noise2Self split: masked pixels replaced by their neighbours' mean in ``fit``."""
    b = _stack(maps)
    check_has_counts(b)
    shape = next(iter(b.values())).shape
    check_holdout_size(shape)
    mask = stride_mask(shape, offset)
    fit = {}
    for k, v in b.items():
        fv = v.copy()
        fv[mask] = _neighbour_mean(v)[mask]
        fit[k] = fv
    return Split(fit=fit, held=b, ratio=1.0, mask=mask)


def _affine_residual(pred: np.ndarray, held: np.ndarray, h_sums: tuple[float, float]) -> float:
    """Mean squared residual of the least-squares fit a·pred + c to held (1-D float64).

    From sums (no temporaries); ``h_sums`` = (Σ held, Σ held²). einsum, not BLAS:
    OpenBLAS's threads spin beside the solver's and made each dot product ~10x slower.
    """
    n = pred.size
    sp, sh, shh = float(pred.sum()), h_sums[0], h_sums[1]
    var_p = float(np.einsum("i,i->", pred, pred)) - sp * sp / n
    var_h = shh - sh * sh / n
    cov = float(np.einsum("i,i->", pred, held)) - sp * sh / n
    res = var_h - (cov * cov / var_p if var_p > 0 else 0.0)
    return max(res, 0.0) / n


def _held_vectors(split: Split) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
    """Per element: the held-out values (1-D float64, masked) and their sums, cached."""
    cache = split.__dict__.get("_held")
    if cache is None:
        cache = {}
        for k, held in split.held.items():
            h = np.ascontiguousarray(held[split.mask] if split.mask is not None else held.ravel(),
                                     dtype=np.float64)
            cache[k] = (h, (float(h.sum()), float(np.einsum("i,i->", h, h))))
        object.__setattr__(split, "_held", cache)
    return cache


def score_terms(split: Split, fitted: Mapping[str, np.ndarray],
                ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Each element's term of :func:`score` (element -> held-out squared error)."""
    terms = {}
    for k, (h, sums) in _held_vectors(split).items():
        lo, hi = ranges[k]
        x = np.asarray(fitted[k])
        x = x[split.mask] if split.mask is not None else x.ravel()
        norm = ((hi - lo) * split.ratio) ** 2
        terms[k] = _affine_residual(x.astype(np.float64), h, sums) / norm
    return terms


def _tile_labels(split: Split) -> np.ndarray:
    """Tile index (0 .. N_TILES² − 1) of each held-out value (1-D int64, masked), cached."""
    labels = split.__dict__.get("_tiles")
    if labels is None:
        ny, nx = next(iter(split.held.values())).shape
        ty = np.minimum(np.arange(ny) * N_TILES // ny, N_TILES - 1)
        tx = np.minimum(np.arange(nx) * N_TILES // nx, N_TILES - 1)
        grid = ty[:, None] * N_TILES + tx[None, :]
        labels = np.ascontiguousarray(grid[split.mask] if split.mask is not None else grid.ravel())
        object.__setattr__(split, "_tiles", labels)
    return labels


def _element_tiles(split: Split, fitted: Mapping[str, np.ndarray],
                   ranges: Mapping[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per element: its :func:`score_terms` term split over the N_TILES × N_TILES tiles,
    (N_TILES²,) float64 (the squared residuals of the same affine fit, per tile)."""
    labels = _tile_labels(split)
    out = {}
    for k, (h, (sh, _)) in _held_vectors(split).items():
        lo, hi = ranges[k]
        x = np.asarray(fitted[k])
        x = (x[split.mask] if split.mask is not None else x.ravel()).astype(np.float64)
        n = x.size
        xm, hm = float(x.mean()), sh / n
        var_p = float(np.einsum("i,i->", x - xm, x - xm))
        a = float(np.einsum("i,i->", x - xm, h - hm)) / var_p if var_p > 0 else 0.0
        r = h - hm - a * (x - xm)
        out[k] = np.bincount(labels, r * r, N_TILES * N_TILES) / (n * ((hi - lo) * split.ratio) ** 2)
    return out


def tile_residuals(split: Split, fitted: Mapping[str, np.ndarray],
                   ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """:func:`score` split over N_TILES × N_TILES tiles of the image, (N_TILES²,) float64
    summing to the score: the squared residuals of the same affine fits, per tile. Two
    candidates' tile vectors give their score difference a paired standard error
    (the held-out noise, common to both, cancels)."""
    return sum(_element_tiles(split, fitted, ranges).values(), np.zeros(N_TILES * N_TILES))


def score(split: Split, fitted: Mapping[str, np.ndarray],
          ranges: Mapping[str, tuple[float, float]]) -> float:
    """Held-out squared error of fitted maps (normalised units), summed over elements.

    fitted: element -> (ny, nx) map in the solver's normalised units; ranges:
    element -> (lo, hi) of the fit maps, mapping x back to the input's units.
    Each map's intensity scale is not identified by the model (A x^γ ties only
    weighted sums to the HAADF), so, as when maps are compared with a truth up
    to an affine intensity scale, the error is that of the least-squares
    affine fit of the prediction to the held-out values (two numbers per map
    against thousands of pixels; it is the same for x and for x mapped back to
    the input's units). Errors are divided by ((hi - lo)·ratio)² so that every
    element counts in normalised units.
    """
    return float(sum(score_terms(split, fitted, ranges).values()))


class Checkpoint(NamedTuple):
    """The held-out score of one solve at one iteration."""

    iteration: int
    score: float  #: :func:`score` (inf when not finite: a diverged solve)
    terms: dict[str, float]  #: :func:`score_terms`
    tiles: np.ndarray  #: :func:`tile_residuals` (N_TILES²,)


def checkpoint(split: Split, fitted: Mapping[str, np.ndarray],
               ranges: Mapping[str, tuple[float, float]], iteration: int) -> Checkpoint:
    """Score, per-element terms and tile residuals of ``fitted`` at ``iteration`` (one
    affine fit per element: the terms are the sums of its tiles)."""
    tiles = _element_tiles(split, fitted, ranges)
    terms = {k: float(t.sum()) for k, t in tiles.items()}
    sc = sum(terms.values())
    return Checkpoint(int(iteration), sc if math.isfinite(sc) else math.inf, terms,
                      sum(tiles.values(), np.zeros(N_TILES * N_TILES)))
