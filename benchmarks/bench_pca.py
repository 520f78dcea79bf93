"""PCA denoising of synthetic EDS spectrum images: map error with/without PCA, rank choice.

For each dose (counts scale) and seed: a phase phantom (tests/spectrum_phantoms.py)
is drawn with Poisson noise; line maps are extracted from the raw cube and from
its rank-k reconstructions (k = 1..K); the error is against the maps extracted
from the noise-free cube (relative RMS over elements, %). Reported: the best k
(oracle), the held-out choice (Poisson thinning) and an elbow detector's choice,
and the map error at each. Optionally (--fuse) the fused maps' PSNR against the
truth with and without PCA. Prints a table; no timed assertions.

    PYTHONPATH=src python benchmarks/bench_pca.py [--doses 5 20 100 500] [--seeds 0 1] [--fuse]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from spectrum_phantoms import AXIS, expected_cube, phase_truth, poisson_cube  # noqa: E402

from fusedem.spectra import choose_rank, extract_maps  # noqa: E402
from fusedem.spectra.pca import _divide, poisson_weights, truncated_svd  # noqa: E402

ELEMENTS = ["O", "Ti", "Fe", "Cu"]
KMAX = 20


def map_error(maps, ref) -> float:
    """Relative RMS error (%), mean over elements."""
    return float(np.mean([100 * np.sqrt(np.mean((maps[e] - ref[e]) ** 2) / np.mean(ref[e] ** 2))
                          for e in ref]))


def elbow(evr: np.ndarray) -> int:
    """Knee of the log scree curve: farthest point from the chord (the usual detector)."""
    y = np.log(evr[:KMAX])
    x = np.arange(1, len(y) + 1, dtype=float)
    d = np.abs((y[-1] - y[0]) * x - (x[-1] - x[0]) * y + x[-1] * y[0] - y[-1] * x[0])
    return int(np.argmax(d)) + 1


def rare_mask(truth):
    ny, nx = truth["Cu"].shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return (np.abs(yy - ny // 4) <= 1) & (np.abs(xx - 3 * nx // 4) <= 1)


def extract(cube):
    return extract_maps(cube, AXIS, ELEMENTS, clip_negative=False).maps


def one_case(dose: float, seed: int, fuse: bool, p: float = 0.9):
    truth = phase_truth(seed=seed)
    ref = extract(expected_cube(truth, dose))
    raw = poisson_cube(truth, dose, seed=seed + 100)
    x = raw.reshape(-1, raw.shape[-1]).astype(float)
    c = poisson_weights(x)
    xt = _divide(x, c)
    u, s, vt = truncated_svd(xt, KMAX, np.random.default_rng(0))
    evr = s**2 / np.vdot(xt, xt)
    errs = []
    for k in range(1, KMAX + 1):
        den = ((u[:, :k] * s[:k]) @ vt[:k] * c).reshape(raw.shape)
        errs.append(map_error(extract(den), ref))
    t0 = time.perf_counter()
    rc = choose_rank(raw, max_components=KMAX, p=p)
    t_cv = time.perf_counter() - t0
    k_best, k_cv, k_el = int(np.argmin(errs)) + 1, rc.n_components, elbow(evr)
    # the rare 3 x 3 Cu-rich inclusion: its mean Cu counts relative to the truth (bias, %)
    inc = rare_mask(truth)
    den_cv = ((u[:, :k_cv] * s[:k_cv]) @ vt[:k_cv] * c).reshape(raw.shape)
    rare_raw = 100 * (extract(raw)["Cu"][inc].mean() / ref["Cu"][inc].mean() - 1)
    rare_cv = 100 * (extract(den_cv)["Cu"][inc].mean() / ref["Cu"][inc].mean() - 1)
    row = dict(dose=dose, seed=seed, counts=x.sum(1).mean(), raw=map_error(extract(raw), ref),
               k_best=k_best, e_best=errs[k_best - 1], k_cv=k_cv, e_cv=errs[k_cv - 1],
               k_el=k_el, e_el=errs[k_el - 1], t_cv=t_cv, rare_raw=rare_raw, rare_cv=rare_cv)
    if fuse:
        row.update(fuse_case(truth, raw, rc.n_components, seed))
    return row


def fuse_case(truth, raw, k, seed):
    from phantoms import psnr

    from fusedem import FusionParams, fuse
    from fusedem.spectra import denoise_pca

    z = {"O": 8, "Ti": 22, "Fe": 26, "Cu": 29}
    rng = np.random.default_rng(seed)
    haadf = sum(z[e] * truth[e] for e in ELEMENTS) ** 1.6
    haadf = haadf + 0.01 * haadf.max() * rng.standard_normal(haadf.shape)
    params = FusionParams(lambda_chem=0.05, lambda_tv=0.05, n_iter=30, map_scaling="max")
    out = {}
    for name, cube in (("fuse_raw", raw), ("fuse_pca", denoise_pca(raw, k).cube)):
        maps = {e: np.clip(m, 0, None) for e, m in extract(cube).items()}
        res = fuse(haadf, maps, params=params)
        out[name] = float(np.mean([psnr(res.maps[e], truth[e]) for e in ELEMENTS]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doses", type=float, nargs="+", default=[5, 20, 100, 500])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--p", type=float, default=0.9, help="thinning fraction of the rank choice")
    ap.add_argument("--fuse", action="store_true", help="also fuse (PSNR of fused maps)")
    a = ap.parse_args()
    hdr = (f"{'dose':>5} {'seed':>4} {'cts/px':>7} {'raw %':>7} {'k*':>3} {'best %':>7} "
           f"{'k_cv':>4} {'cv %':>7} {'k_elb':>5} {'elbow %':>7} {'t_cv s':>6} {'rare raw %':>10} {'rare cv %':>9}")
    if a.fuse:
        hdr += f" {'fused raw dB':>12} {'fused PCA dB':>12}"
    print(hdr)
    for dose in a.doses:
        for seed in a.seeds:
            r = one_case(dose, seed, a.fuse, a.p)
            line = (f"{r['dose']:5g} {r['seed']:4d} {r['counts']:7.1f} {r['raw']:7.2f} "
                    f"{r['k_best']:3d} {r['e_best']:7.2f} {r['k_cv']:4d} {r['e_cv']:7.2f} "
                    f"{r['k_el']:5d} {r['e_el']:7.2f} {r['t_cv']:6.2f} {r['rare_raw']:10.1f} {r['rare_cv']:9.1f}")
            if a.fuse:
                line += f" {r['fuse_raw']:12.2f} {r['fuse_pca']:12.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
