"""Ground-truth phantoms for measuring fusion quality (numpy and scipy only).

A :class:`Phantom` holds per-element truth maps (projected concentration,
dimensionless, in [0, 1]); :func:`measure` turns it into what a microscope
records: Poisson elemental maps in raw counts and a noisy HAADF image that
follows the solver's forward model sum_i w_i x_i^gamma. :func:`psnr` and
:func:`ssim` score an estimate against the truth up to an affine intensity
scale (the solver works in normalised units).

Kinds (:data:`KINDS`): ``"lattice"``, an atomic-resolution perovskite-like
projection (Dy A-site, Sc B-site and O columns, as in DyScO3), and
``"particles"``, Au-core / FeOx-shell nanoparticles on a SiO2 support.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

KINDS: tuple[str, ...] = ("lattice", "particles")


@dataclass(frozen=True)
class Phantom:
    """Truth of one specimen.

    truth: element symbol -> (ny, nx) float64 projected concentration in [0, 1].
    z: element symbol -> atomic number. yields: element symbol -> relative X-ray
    yield (counts per unit concentration, brightest = 1).
    """

    kind: str
    truth: dict[str, np.ndarray]
    z: dict[str, int]
    yields: dict[str, float]

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.truth.values())).shape


@dataclass(frozen=True)
class Measurement:
    """A simulated acquisition: haadf (ny, nx) float64 detector counts; maps:
    element -> (ny, nx) float64 integer X-ray counts; dose: counts/px at the
    brightest element's maximum (expected value)."""

    haadf: np.ndarray
    maps: dict[str, np.ndarray]
    dose: float


def _gaussians(shape: tuple[int, int], centres: np.ndarray, heights: np.ndarray,
               sigma: float) -> np.ndarray:
    """Sum of isotropic Gaussians (peak ``heights``, width ``sigma`` px) at ``centres`` (k, 2)."""
    img = np.zeros(shape)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    r = int(np.ceil(4 * sigma))
    for (cy, cx), h in zip(centres, heights):
        y0, y1 = max(0, int(cy) - r), min(shape[0], int(cy) + r + 2)
        x0, x1 = max(0, int(cx) - r), min(shape[1], int(cx) + r + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        d2 = (yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2
        img[y0:y1, x0:x1] += h * np.exp(-d2 / (2 * sigma**2))
    return img


def lattice(shape: tuple[int, int] = (128, 128), seed: int = 0, spacing: float = 9.0,
            sigma: float = 1.2) -> Phantom:
    """Perovskite-like [001] projection: Dy (A-site) and Sc (B-site) cation columns
    with O columns between the B sites, ``spacing`` px apart, Gaussian columns of
    width ``sigma`` px.

    Each column's occupancy varies (0.6-1.0, a few vacancies), positions jitter by
    0.15 px, and a band of the crystal has Sc substituted on A sites (antisite
    defects), so the maps are not simply periodic.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    a = spacing
    off = rng.uniform(0, a, 2)
    gy, gx = np.mgrid[-1:ny / a + 1, -1:nx / a + 1]
    base = np.stack([gy.ravel() * a + off[0], gx.ravel() * a + off[1]], 1)

    def sites(shift: tuple[float, float]) -> np.ndarray:
        c = base + np.array(shift) * a
        c = c + rng.normal(0, 0.15, c.shape)
        keep = (c[:, 0] > -3 * sigma) & (c[:, 0] < ny + 3 * sigma) & \
               (c[:, 1] > -3 * sigma) & (c[:, 1] < nx + 3 * sigma)
        return c[keep]

    def occupancy(k: int, vacancy: float) -> np.ndarray:
        occ = rng.uniform(0.6, 1.0, k)
        occ[rng.random(k) < vacancy] = 0.0
        return occ

    a_sites = sites((0.0, 0.0))
    b_sites = sites((0.5, 0.5))
    o_sites = np.vstack([sites((0.5, 0.0)), sites((0.0, 0.5))])
    occ_a = occupancy(len(a_sites), 0.05)
    # antisite band: a diagonal stripe where a third of the A sites hold Sc instead of Dy
    band = np.abs((a_sites[:, 0] - ny / 2) + 0.5 * (a_sites[:, 1] - nx / 2)) < 0.15 * ny
    swap = band & (rng.random(len(a_sites)) < 0.35)
    dy = _gaussians(shape, a_sites[~swap], occ_a[~swap], sigma)
    sc = _gaussians(shape, np.vstack([b_sites, a_sites[swap]]),
                    np.concatenate([occupancy(len(b_sites), 0.05), 0.8 * occ_a[swap]]), sigma)
    o = _gaussians(shape, o_sites, occupancy(len(o_sites), 0.1), sigma)
    truth = {"Dy": dy, "Sc": sc, "O": o}
    truth = {k: np.clip(v / max(v.max(), 1e-12), 0, 1) for k, v in truth.items()}
    return Phantom("lattice", truth, {"Dy": 66, "Sc": 21, "O": 8},
                   {"Dy": 1.0, "Sc": 0.8, "O": 0.5})


def particles(shape: tuple[int, int] = (128, 128), seed: int = 0) -> Phantom:
    """Nanoparticles on a support: Au-core / FeOx-shell particles, some pure Au and
    some pure FeOx particles, on an SiO2 film of smoothly varying thickness.

    Concentrations are projected thicknesses of spheres (sqrt(r^2 - d^2) / r), so
    the particles have soft edges and interiors that vary, as in a real projection.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    au = np.zeros(shape)
    fe = np.zeros(shape)
    o = np.zeros(shape)
    scale = min(ny, nx) / 128
    placed: list[tuple[float, float, float]] = []
    tries = 0
    while len(placed) < 9 and tries < 500:
        tries += 1
        r = rng.uniform(6, 14) * scale
        cy, cx = rng.uniform(r, ny - r), rng.uniform(r, nx - r)
        if any(np.hypot(cy - py, cx - px) < r + pr + 2 for py, px, pr in placed):
            continue
        placed.append((cy, cx, r))

    def sphere(cy: float, cx: float, r: float) -> np.ndarray:
        return np.sqrt(np.clip(r * r - (yy - cy) ** 2 - (xx - cx) ** 2, 0, None)) / r

    for k, (cy, cx, r) in enumerate(placed):
        style = k % 3  # 0: core-shell, 1: pure Au, 2: pure FeOx
        outer = sphere(cy, cx, r)
        if style == 1:
            au += outer
        elif style == 2:
            fe += outer
            o += 1.3 * outer
        else:
            core = sphere(cy + rng.normal(0, 1), cx + rng.normal(0, 1), 0.6 * r) * 0.6
            shell = np.clip(outer - core, 0, None)
            au += core
            fe += shell
            o += 1.3 * shell
    film = ndimage.gaussian_filter(rng.standard_normal(shape), 12 * scale)
    film = 0.25 + 0.15 * film / max(np.abs(film).max(), 1e-12)
    si = film
    o = o + 2 * film
    truth = {"Au": au, "Fe": fe, "Si": si, "O": o}
    top = max(v.max() for v in truth.values())
    truth = {k: np.clip(v / top, 0, 1) for k, v in truth.items()}
    return Phantom("particles", truth, {"Au": 79, "Fe": 26, "Si": 14, "O": 8},
                   {"Au": 1.0, "Fe": 0.9, "Si": 0.6, "O": 0.4})


def make(kind: str, shape: tuple[int, int] = (128, 128), seed: int = 0) -> Phantom:
    """The phantom of the named ``kind`` (one of :data:`KINDS`)."""
    if kind == "lattice":
        return lattice(shape, seed)
    if kind == "particles":
        return particles(shape, seed)
    raise ValueError(f"unknown phantom kind {kind!r}; known kinds: {KINDS}")


def expected_counts(ph: Phantom, dose: float) -> dict[str, np.ndarray]:
    """Mean X-ray counts per pixel of each map, (ny, nx): yield x truth, scaled so
    that the brightest element's maximum is ``dose`` counts/px."""
    top = max(ph.yields[k] * v.max() for k, v in ph.truth.items())
    return {k: dose * ph.yields[k] * v / top for k, v in ph.truth.items()}


def haadf_signal(ph: Phantom, gamma: float = 1.6) -> np.ndarray:
    """Noise-free HAADF sum_i w_i x_i^gamma with w_i = Z_i / mean(Z), (ny, nx)."""
    z = np.array([ph.z[k] for k in ph.truth], float)
    w = z / z.mean()
    return sum(wi * np.power(t, gamma) for wi, t in zip(w, ph.truth.values()))


def measure(ph: Phantom, dose: float, seed: int = 1, gamma: float = 1.6,
            haadf_counts: float = 2000.0, read_noise: float = 0.005,
            probe_sigma: float = 0.0) -> Measurement:
    """Simulate an acquisition of ``ph``.

    maps: Poisson draws of :func:`expected_counts` (raw counts, no offset).
    haadf: :func:`haadf_signal`, blurred by a Gaussian probe of ``probe_sigma`` px
    (0: none), scaled to ``haadf_counts`` electrons at its maximum, Poisson
    noise, plus Gaussian read noise of ``read_noise`` x haadf_counts.
    """
    if not dose > 0:
        raise ValueError(f"dose must be > 0 counts/px, got {dose}")
    rng = np.random.default_rng(seed)
    maps = {k: rng.poisson(lam).astype(np.float64) for k, lam in expected_counts(ph, dose).items()}
    h = haadf_signal(ph, gamma)
    if probe_sigma > 0:
        h = ndimage.gaussian_filter(h, probe_sigma)
    h = haadf_counts * h / h.max()
    h = rng.poisson(h).astype(np.float64) + read_noise * haadf_counts * rng.standard_normal(h.shape)
    return Measurement(h, maps, float(dose))


def _affine_fit(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The estimate mapped onto the truth by the least-squares a * estimate + c."""
    e = np.asarray(estimate, np.float64).ravel()
    t = np.asarray(truth, np.float64).ravel()
    ec = e - e.mean()
    var = float(ec @ ec)
    a = float(ec @ (t - t.mean())) / var if var > 0 else 0.0
    return (a * ec + t.mean()).reshape(np.shape(truth))


def psnr(estimate: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of ``estimate`` (ny, nx) after a least-squares affine fit onto
    ``truth`` (ny, nx); peak = the truth's range. inf for a perfect match."""
    t = np.asarray(truth, np.float64)
    mse = float(np.mean((_affine_fit(estimate, t) - t) ** 2))
    peak = float(t.max() - t.min())
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def _moment_match(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The estimate shifted and scaled to the truth's mean and standard deviation
    (sign kept from their correlation)."""
    e = np.asarray(estimate, np.float64)
    sd = float(e.std())
    if sd == 0:
        return np.full(np.shape(truth), float(np.mean(truth)))
    sign = 1.0 if float(np.mean((e - e.mean()) * (truth - np.mean(truth)))) >= 0 else -1.0
    return (e - e.mean()) * (sign * float(np.std(truth)) / sd) + float(np.mean(truth))


def ssim(estimate: np.ndarray, truth: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004, Gaussian window of ``sigma`` px,
    K1 = 0.01, K2 = 0.03, data range = the truth's range) of ``estimate`` after
    matching its mean and standard deviation to ``truth``'s; both (ny, nx).

    Moments, not a least-squares fit as in :func:`psnr`: a least-squares fit
    shrinks a noisy estimate towards a constant, which SSIM would reward.
    1 for a perfect match.
    """
    t = np.asarray(truth, np.float64)
    e = _moment_match(estimate, t)
    rng_ = float(t.max() - t.min()) or 1.0
    c1, c2 = (0.01 * rng_) ** 2, (0.03 * rng_) ** 2

    def f(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=3.5)

    mu_e, mu_t = f(e), f(t)
    ve = f(e * e) - mu_e**2
    vt = f(t * t) - mu_t**2
    cov = f(e * t) - mu_e * mu_t
    s = ((2 * mu_e * mu_t + c1) * (2 * cov + c2)) / ((mu_e**2 + mu_t**2 + c1) * (ve + vt + c2))
    return float(s.mean())


def scores(estimates: Mapping[str, np.ndarray], ph: Phantom) -> dict[str, tuple[float, float]]:
    """element -> (PSNR dB, SSIM) of each estimate against the phantom's truth."""
    return {k: (psnr(estimates[k], ph.truth[k]), ssim(estimates[k], ph.truth[k])) for k in ph.truth}
