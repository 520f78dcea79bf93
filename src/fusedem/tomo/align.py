"""Coarse alignment of tilt series: per-tilt shifts and the tilt-axis offset (docs/tomography.md,
"Alignment").

The reconstruction assumes the projections are aligned: every tilt in one frame, with the
tilt axis (y) through the detector's centre column (nx − 1)/2. This module estimates

1. **per-tilt shifts** by cross-correlating each projection with its neighbour one step
   closer to the tilt nearest 0° (the reference), walking outwards on both sides and adding
   the shifts up. Before correlating, the less-tilted neighbour is scaled along x about the
   tilt axis by cos θ_i / cos θ_j (the cosine stretch of IMOD-like coarse alignment: a thin
   object's features at tilt θ lie at x·cos θ). Both images are tapered at the borders
   (cosine edge) and band-passed (Gaussian low-pass, Gaussian high-pass) before the
   correlation; the peak is located to ~1/20 pixel by a local upsampled DFT of the
   cross-power spectrum (matrix-multiply DFT on a small grid around the integer peak).
2. **the tilt-axis offset** c (pixels, axis column minus the detector centre) from the
   centre of mass: for an object that stays inside the field of view, the centre of mass
   along x of the aligned projection i follows X·cos θ_i + Z·sin θ_i + c, where (X, Z) is
   the object's mass centre. (X, Z, c) are fitted by least squares, robustly (tilts whose
   residual exceeds 3 × 1.48 MAD are dropped, three rounds). Each projection's x profile has
   its background (the mean of its lowest 10 % of columns) removed first.

The chain is run twice: the second pass starts from the first pass's shifts and axis, so
the stretch is about the estimated axis. A shift of the form a·cos θ + b·sin θ in x is a
translation of the volume and cannot be measured from the projections; a common y shift
likewise. The returned shifts have neither (x: that part of their fit removed, y: zero
mean), so the object stays where the input had it on average; the constant left in x is
the axis correction. Optionally (``refine='com'``) each tilt is then moved onto the
centre-of-mass model itself (x onto the fitted sinusoid, y onto the median); this helps
objects with little structure along the axis but hurts when mass enters or leaves the
field of view (docs/tomography.md, Alignment, has the numbers), so it is off by default.

3. **chemical tilts** (:func:`align_pair`): each is correlated with the aligned HAADF tilt
   nearest in angle (scaled by the cosine ratio when the angles differ), using a weighted
   sum of the element maps as the chemical image: first Z^1.6 / mean counts per element,
   then the non-negative least-squares weights that best reproduce the HAADF (HAADF
   contrast is ~ Σ Z^γ x, the counts are not, and an unweighted sum, dominated by light
   elements such as a C film, gave ~1 px errors at high tilt).

:meth:`Alignment.apply` moves every projection by its shift with
``scipy.ndimage.shift`` (cubic spline, order 3; pixels uncovered at the border take the
median of the projection's border pixels).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .geometry import check_angles
from .inputs import check_stack, prepare

UPSAMPLE = 20  #: sub-pixel peak: 1/UPSAMPLE pixel grid
GAMMA = 1.6  #: HAADF contrast ~ Z^GAMMA, for the first weights of the chemical image


def _fit_weights(target: np.ndarray, maps: list[np.ndarray], lowpass: float) -> np.ndarray:
    """Non-negative weights w with target ≈ Σ w_e maps_e + offset, on Gaussian-smoothed images."""
    from scipy.optimize import nnls

    sigma = (0, 1 / (2 * np.pi * lowpass), 1 / (2 * np.pi * lowpass))
    cols = [ndimage.gaussian_filter(m, sigma).ravel() for m in maps]
    A = np.stack(cols + [np.ones_like(cols[0]), -np.ones_like(cols[0])], axis=1)
    w = nnls(A, ndimage.gaussian_filter(target, sigma).ravel())[0][:len(maps)]
    return w if w.sum() > 0 else np.ones(len(maps))


@dataclass(frozen=True)
class Alignment:
    """Shifts that align a tilt series (n tilts) and the tilt-axis offset found.

    ``shifts[i] = (dy, dx)`` in pixels is the translation :meth:`apply` gives projection i
    (+y down the rows, +x along the columns); it includes the axis correction, so after
    ``apply`` the axis lies on the detector's centre column. ``axis_offset`` is the axis
    column minus (nx − 1)/2 in the input: the part of the x corrections common to all
    tilts (fitting −dx = a·cos θ + b·sin θ + c; a, b move the volume, c is the offset).
    """

    angles: np.ndarray  #: (n,) degrees
    shifts: np.ndarray  #: (n, 2) pixels (dy, dx), applied by :meth:`apply`
    axis_offset: float  #: pixels; the constant c of −dx ≈ a·cos θ + b·sin θ + c over the tilts
    reference: int  #: index of the reference tilt (nearest 0°)
    peaks: np.ndarray  #: (n,) normalised correlation peak with the neighbour (1 at the reference)
    com_residual: float  #: RMS residual (px) of the centre-of-mass sinusoid fit (before ``refine``;
    #: NaN when no fit was made)
    com_outliers: tuple[int, ...] = ()  #: tilts left out of that fit

    def apply(self, stack: Any) -> np.ndarray:
        """Shifted copy of ``stack`` (n, ny, nx) as float32 (scipy.ndimage.shift, cubic)."""
        s = check_stack("stack", stack)
        if s.shape[0] != self.shifts.shape[0]:
            raise ValueError(f"stack: {s.shape[0]} projections, but the alignment has "
                             f"{self.shifts.shape[0]} tilts")
        return np.stack([shift_image(p, d) for p, d in zip(s, self.shifts)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: angles, shifts, axis offset, peaks, fit residual."""
        return {"method": "cross-correlation chain (cosine stretch) + centre-of-mass axis fit",
                "angles": [float(a) for a in self.angles],
                "shifts_yx_px": np.round(self.shifts, 3).tolist(),
                "axis_offset_px": round(float(self.axis_offset), 3),
                "reference_tilt": int(self.reference),
                "peaks": np.round(self.peaks, 3).tolist(),
                "com_residual_px": (None if np.isnan(self.com_residual)
                                    else round(float(self.com_residual), 3)),
                "com_outliers": list(self.com_outliers)}


def shift_image(img: np.ndarray, shift: Any) -> np.ndarray:
    """``img`` (ny, nx) moved by ``shift`` (dy, dx) pixels; border filled with its border median."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return ndimage.shift(img, shift, order=3, mode="constant",
                         cval=float(np.median(border))).astype(np.float32)


def _taper(ny: int, nx: int, frac: float) -> np.ndarray:
    def edge(n: int) -> np.ndarray:
        w = np.ones(n)
        m = max(1, int(round(frac * n)))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        w[:m], w[n - m:] = ramp, ramp[::-1]
        return w
    return np.outer(edge(ny), edge(nx))


def _filter(ny: int, nx: int, lowpass: float, highpass: float) -> np.ndarray:
    """Gaussian band-pass in the Fourier domain (rfft layout); frequencies in cycles/pixel."""
    f2 = np.fft.fftfreq(ny)[:, None] ** 2 + np.fft.rfftfreq(nx)[None, :] ** 2
    g = np.exp(-f2 / (2 * lowpass ** 2)) if lowpass > 0 else np.ones_like(f2)
    if highpass > 0:
        g = g * (1 - np.exp(-f2 / (2 * highpass ** 2)))
    return g


def _rfft_weights(nx: int) -> np.ndarray:
    """Multiplicity of each rfft column in the full spectrum (1 for 0 and Nyquist, else 2)."""
    w = np.full(nx // 2 + 1, 2.0)
    w[0] = 1.0
    if nx % 2 == 0:
        w[-1] = 1.0
    return w


def _prep(img: np.ndarray, taper: np.ndarray, filt: np.ndarray) -> np.ndarray:
    """Tapered, band-passed spectrum (rfft2) of one image, unit energy."""
    a = (img - img.mean()) * taper
    f = np.fft.rfft2(a) * filt
    n = np.sqrt(np.sum(_rfft_weights(img.shape[1]) * np.abs(f) ** 2))
    return f / n if n > 0 else f


def _stretch(img: np.ndarray, factor: float, centre: float) -> np.ndarray:
    """``img`` scaled along x by ``factor`` about column ``centre`` (linear interpolation)."""
    if abs(factor - 1) < 1e-6:
        return img
    return ndimage.affine_transform(img, [1.0, 1.0 / factor], offset=[0.0, centre - centre / factor],
                                    order=1, mode="nearest")


def _dft_local(spec: np.ndarray, nx: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Real inverse DFT of an rfft2 spectrum sampled at (ys × xs) fractional positions."""
    ny = spec.shape[0]
    ky = np.fft.fftfreq(ny)
    kx = np.fft.rfftfreq(nx)
    wx = _rfft_weights(nx)
    ey = np.exp(2j * np.pi * ys[:, None] * ky[None, :])  # (len(ys), ny)
    ex = np.exp(2j * np.pi * kx[:, None] * xs[None, :]) * wx[:, None]  # (nkx, len(xs))
    return (ey @ spec @ ex).real / (ny * nx)


def _peak(fa: np.ndarray, fb: np.ndarray, nx: int,
          max_shift: tuple[float, float]) -> tuple[np.ndarray, float]:
    """Shift (dy, dx) that moves image b onto image a, and the normalised peak height."""
    cross = fa * np.conj(fb)
    cc = np.fft.irfft2(cross, s=(fa.shape[0], nx))
    ny = cc.shape[0]
    dy = np.fft.fftfreq(ny, 1 / ny)[:, None]
    dx = np.fft.fftfreq(nx, 1 / nx)[None, :]
    cc = np.where((np.abs(dy) <= max_shift[0]) & (np.abs(dx) <= max_shift[1]), cc, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
    y0, x0 = float(dy[iy, 0]), float(dx[0, ix])
    grid = np.arange(-1.5, 1.5 + 1e-9, 1.0 / UPSAMPLE)
    local = _dft_local(cross, nx, y0 + grid, x0 + grid)
    jy, jx = np.unravel_index(int(np.argmax(local)), local.shape)
    height = float(local[jy, jx]) * ny * nx  # unit-energy spectra: 1 for identical images
    return np.array([y0 + grid[jy], x0 + grid[jx]]), height


def _chain(stack: np.ndarray, angles: np.ndarray, start: np.ndarray, axis_x: float,
           lowpass: float, highpass: float, taper: float,
           max_shift: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Shifts (n, 2) by the neighbour chain on ``stack`` already moved by ``start``."""
    n, ny, nx = stack.shape
    moved = np.stack([shift_image(p, d) for p, d in zip(stack, start)])
    win, filt = _taper(ny, nx, taper), _filter(ny, nx, lowpass, highpass)
    ref = int(np.argmin(np.abs(angles)))
    order = np.argsort(angles, kind="stable")
    pos = int(np.nonzero(order == ref)[0][0])
    shifts = np.zeros((n, 2))
    peaks = np.ones(n)
    lim = (max_shift * ny, max_shift * nx)
    for step in (1, -1):
        prev = ref
        k = pos + step
        while 0 <= k < n:
            i = int(order[k])
            c = np.cos(np.deg2rad(angles[i])) / np.cos(np.deg2rad(angles[prev]))
            # the neighbour (already aligned) foreshortened to this tilt, moved by its shift
            nb = shift_image(_stretch(moved[prev], c, axis_x), shifts[prev] * np.array([1.0, c]))
            d, peaks[i] = _peak(_prep(nb, win, filt), _prep(moved[i], win, filt), nx, lim)
            shifts[i] = d
            prev, k = i, k + step
    return start + shifts, peaks, ref


def _centres(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass (x, y) of each projection, centred pixels, (n,) each (NaN for one with
    no signal). Each profile (sum over the other axis) loses its background first: the mean
    of its lowest 10 %."""
    out = []
    for axis in (1, 2):  # axis 1 summed: the x profile; axis 2: the y profile
        prof = stack.sum(axis=axis).astype(np.float64)
        m = prof.shape[1]
        bg = np.sort(prof, axis=1)[:, :max(1, m // 10)].mean(axis=1, keepdims=True)
        w = np.maximum(prof - bg, 0)
        mass = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):  # no signal: NaN, left out
            out.append(np.where(mass > 0, (w @ (np.arange(m) - (m - 1) / 2.0)) / mass, np.nan))
    return out[0], out[1]


def _design(angles: np.ndarray) -> np.ndarray:
    t = np.deg2rad(angles)
    return np.stack([np.cos(t), np.sin(t), np.ones_like(t)], axis=1)


def _sinusoid_fit(com: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust fit com ≈ X·cos θ + Z·sin θ + c: (X, Z, c), residuals (n,), inlier mask (n,)."""
    A = _design(angles)
    keep = np.isfinite(com)
    if keep.sum() < 4:
        raise ValueError(f"alignment: the tilt axis needs at least 4 projections with signal "
                         f"above their background, got {int(keep.sum())}; pass fit_axis=False "
                         "to keep the axis on the centre column")
    for _ in range(3):
        coef = np.linalg.lstsq(A[keep], com[keep], rcond=None)[0]
        res = com - A @ coef
        mad = 1.4826 * np.median(np.abs(res[keep] - np.median(res[keep])))
        new = np.abs(res) <= max(3 * mad, 0.5)
        if new.sum() < 4 or np.array_equal(new, keep):
            break
        keep = new
    coef = np.linalg.lstsq(A[keep], com[keep], rcond=None)[0]
    return coef, com - A @ coef, keep


def _moved(stack: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    return np.stack([shift_image(p, d) for p, d in zip(stack, shifts)])


def align_tilt_series(stack: Any, angles: Any, *, lowpass: float = 0.15, highpass: float = 0.01,
                      taper: float = 0.1, max_shift: float = 0.4, fit_axis: bool = True,
                      refine: str = "none", passes: int = 2) -> Alignment:
    """Per-tilt shifts and the tilt-axis offset of a tilt series (module docstring: method).

    stack (n, ny, nx), angles (n,) degrees. ``lowpass``/``highpass``: Gaussian band-pass
    widths in cycles/pixel (lower the low-pass for noisy data); ``taper``: fraction of each
    border tapered; ``max_shift``: largest shift between neighbours, as a fraction of the
    detector size. ``fit_axis`` False assumes the axis is on the centre column (offset 0).
    ``refine`` 'com' then moves each tilt onto the centre-of-mass model (x: the
    fitted sinusoid, y: constant), except the fit's outliers; 'none' (default) keeps the
    cross-correlation shifts. Both need the object inside the field of view at every tilt.
    """
    s = check_stack("stack", stack)
    th = check_angles("angles", angles, s.shape[0])
    if not 0 < max_shift <= 0.5:
        raise ValueError(f"max_shift must lie in (0, 0.5] (a fraction of the detector), got {max_shift}")
    if lowpass < 0 or highpass < 0 or (lowpass and highpass >= lowpass):
        raise ValueError(f"band-pass: need 0 <= highpass < lowpass (cycles/pixel), got "
                         f"{highpass}, {lowpass}")
    if refine not in ("com", "none"):
        raise ValueError(f"refine must be 'com' or 'none', got {refine!r}")
    if s.max() <= s.min():
        raise ValueError("stack: the tilt series is constant; nothing to align")
    centre = (s.shape[2] - 1) / 2.0
    shifts = np.zeros((s.shape[0], 2))
    for _ in range(max(1, int(passes))):
        # the stretch is about the centre column: the axis, once its offset is corrected
        shifts, peaks, ref = _chain(s, th, shifts, centre, lowpass, highpass, taper, max_shift)
        shifts[:, 0] -= shifts[:, 0].mean()
        if fit_axis or refine == "com":
            cx, cy = _centres(_moved(s, shifts))
            coef, res, keep = _sinusoid_fit(cx, th)
        if fit_axis:
            shifts[:, 1] -= coef[2]
    if refine == "com":
        shifts[keep, 1] -= res[keep]
        shifts[keep, 0] -= cy[keep] - np.median(cy[keep])
        shifts[:, 0] -= shifts[:, 0].mean()
    # a·cos θ + b·sin θ in x (and a common y) only moves the volume: removed, so the object
    # stays where the input had it on average; the constant left is the axis correction
    A = _design(th)
    fit = np.linalg.lstsq(A, shifts[:, 1], rcond=None)[0]
    shifts[:, 1] -= A[:, :2] @ fit[:2] + (0.0 if fit_axis else fit[2])
    offset = float(-fit[2]) if fit_axis else 0.0
    rms = float(np.sqrt(np.mean(res[keep] ** 2))) if fit_axis or refine == "com" else float("nan")
    keep = keep if fit_axis or refine == "com" else np.ones(th.size, bool)
    return Alignment(th, shifts, offset, ref, peaks, rms, tuple(np.nonzero(~keep)[0].tolist()))


@dataclass(frozen=True)
class PairReport:
    """How the chemical tilts were put in the HAADF's frame."""

    haadf: Alignment
    chem_shifts: np.ndarray  #: (n_c, 2) pixels (dy, dx) applied to every element at that tilt
    nearest_haadf: np.ndarray  #: (n_c,) index of the HAADF tilt each chemical tilt was matched to
    angle_gap: np.ndarray  #: (n_c,) degrees between the chemical tilt and that HAADF tilt
    peaks: np.ndarray  #: (n_c,) normalised correlation peak
    weights: dict[str, float]  #: element -> weight in the chemical image correlated

    def to_dict(self) -> dict[str, Any]:
        return {"haadf": self.haadf.to_dict(), "chem_shifts_yx_px": np.round(self.chem_shifts, 3).tolist(),
                "nearest_haadf_tilt": self.nearest_haadf.tolist(),
                "angle_gap_deg": np.round(self.angle_gap, 3).tolist(),
                "chem_peaks": np.round(self.peaks, 3).tolist(),
                "chem_weights": {k: float(f"{v:.4g}") for k, v in self.weights.items()}}


def align_pair(haadf: Any, haadf_angles: Any, maps: Mapping[str, Any], chem_angles: Any, *,
               element: str | None = None, chem_lowpass: float = 0.08,
               **haadf_options: Any) -> tuple[np.ndarray, dict[str, np.ndarray], PairReport]:
    """Align a HAADF series, then each chemical tilt to the aligned HAADF tilt nearest in angle.

    haadf (n_H, ny, nx), maps element -> (n_c, ny, nx) counts, angles in degrees. The
    chemical image correlated is a weighted sum of the elements (or ``element`` alone):
    first Z^1.6 / mean counts, then the non-negative least-squares weights that best give
    the aligned HAADF (HAADF ≈ Σ w_e map_e + offset, smoothed), band-passed with the
    low-pass ``chem_lowpass`` (cycles/pixel; counts are noisy); the HAADF tilt is scaled
    along x by cos θ_c / cos θ_H about the (now centred) axis when the angles differ.
    ``haadf_options`` go to :func:`align_tilt_series`. Returns (HAADF aligned, maps aligned
    with the elements' normalised symbols as keys, report). ValueError for bad input.
    """
    data = prepare(haadf, haadf_angles, maps, chem_angles)
    if element is not None:
        from ..elements import normalize_symbol

        element = normalize_symbol(element)
        if element not in data.chem:
            raise ValueError(f"element {element!r} is not among the maps {list(data.chem)}")
    al = align_tilt_series(data.haadf, data.haadf_angles, **haadf_options)
    h = al.apply(data.haadf)
    ny, nx = data.shape
    near = np.argmin(np.abs(data.chem_angles[:, None] - data.haadf_angles[None, :]), axis=1)
    c = np.cos(np.deg2rad(data.chem_angles)) / np.cos(np.deg2rad(data.haadf_angles[near]))
    target = np.stack([_stretch(h[j], ck, (nx - 1) / 2.0) for j, ck in zip(near, c)])
    win = _taper(ny, nx, haadf_options.get("taper", 0.1))
    filt = _filter(ny, nx, chem_lowpass, haadf_options.get("highpass", 0.01))
    els = [element] if element else list(data.chem)
    lim = haadf_options.get("max_shift", 0.4)
    # HAADF ≈ Σ_e Z_e^γ x_e: start from those weights on maps of unit mean, then refit them
    weights = np.array([data.z[e] ** GAMMA / max(float(data.chem[e].mean()), 1e-12) for e in els])
    shifts = np.zeros((data.chem_angles.size, 2))
    for rnd in range(2 if len(els) > 1 else 1):
        if rnd:
            weights = _fit_weights(target, [_moved(data.chem[e], shifts) for e in els], chem_lowpass)
        img = sum(w * data.chem[e] for w, e in zip(weights, els))
        res = [_peak(_prep(t, win, filt), _prep(m, win, filt), nx, (lim * ny, lim * nx))
               for t, m in zip(target, img)]
        shifts, peaks = np.array([r[0] for r in res]), np.array([r[1] for r in res])
    out = {el: np.stack([shift_image(p, d) for p, d in zip(m, shifts)]) for el, m in data.chem.items()}
    for m in out.values():
        np.maximum(m, 0, out=m)  # counts: the spline's undershoot is not a count
    gap = np.abs(data.chem_angles - data.haadf_angles[near])
    report = PairReport(al, shifts, near, gap, peaks, dict(zip(els, weights.tolist())))
    return h, out, report
