"""Study: warm-starting the TV dual variables across outer iterations, or not.

    .venv/bin/python benchmarks/study_warm_start.py

For a phantom with known truth (tests/phantoms.py) and the DyScO3 tutorial, prints
per (warm_start_tv, n_iter_tv): time, the objective value
lambda_H Psi1 + lambda_chem Psi2 + lambda_TV TV at the end, the mean PSNR gain over
the raw maps (phantom), and the Pearson r with the published algorithm's output
(tutorial). Medians of 3 runs for the times.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from phantoms import grain_phantom, measure, psnr  # noqa: E402

from fusedem import FusionParams, fuse  # noqa: E402

PUBLISHED = ROOT / "tests" / "data" / "DyScO3_tutorial_params.npz"  # shipped (tests/data/README.md)


def objective(res, n_el: int) -> float:
    p = res.params
    lam_h = p.lambda_haadf if p.lambda_haadf is not None else 1 / n_el
    c = res.costs
    return lam_h * c["haadf"][-1] + p.lambda_chem * c["chem"][-1] + p.lambda_tv * c["tv"][-1]


def run(haadf, maps, params):
    fuse(haadf, maps, params.replace(n_iter=1))
    ts, res = [], None
    for _ in range(3):
        t = time.perf_counter()
        res = fuse(haadf, maps, params)
        ts.append(time.perf_counter() - t)
    return res, float(np.median(ts))


def main() -> None:
    truth, z = grain_phantom((256, 256))
    haadf, maps = measure(truth, z, dose=8.0)
    raw = {el: psnr(maps[el], truth[el]) for el in truth}
    d = np.load(ROOT / "src/fusedem/data/PTO_Trilayer_dataset.npz")
    tut = (d["HAADF"], {k: d[k] for k in ("Sc", "Dy", "O")})
    pub = np.load(PUBLISHED) if PUBLISHED.exists() else None

    print(f"{'warm':>5} {'n_tv':>4} | {'phantom s':>9} {'objective':>10} {'PSNR gain dB':>12} | "
          f"{'DyScO3 s':>8} {'objective':>10} {'min r vs published':>18}")
    base = FusionParams(lambda_chem=0.1, lambda_tv=0.05, eps=0.1, n_iter=30)
    for n_tv in (1, 3, 10):
        for warm in (False, True):
            p = base.replace(n_iter_tv=n_tv, warm_start_tv=warm)
            res, t = run(haadf, maps, p)
            gain = np.mean([psnr(res.maps[el], truth[el]) - raw[el] for el in truth])
            pt = FusionParams.preset("dysco3", n_iter_tv=n_tv, warm_start_tv=warm)
            rt, tt = run(*tut, pt)
            r = min(np.corrcoef(rt.maps[k].ravel(), pub[k].ravel())[0, 1] for k in rt.maps) if pub else np.nan
            print(f"{warm!s:>5} {n_tv:>4} | {t:>9.3f} {objective(res, 3):>10.2f} {gain:>12.2f} | "
                  f"{tt:>8.3f} {objective(rt, 3):>10.2f} {r:>18.3f}", flush=True)


if __name__ == "__main__":
    main()
