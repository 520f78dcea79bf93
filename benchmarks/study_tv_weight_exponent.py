"""FusionParams.tv_weight_exponent on the phantom suite: fusedem's best over a grid per value.

    python benchmarks/study_tv_weight_exponent.py --seeds 101

Per case (phantom kind x dose, seed s, noise seed s + 1000, 96²) and exponent a (λ_TV of
element i × (mean w / w_i)^a): the best mean PSNR over elements (dB, scored on the truth)
over λ_chem {0.001 … 0.3} × λ_TV {0.0015 … 0.5} × n_iter_tv {1, 6} × n_iter {15, 60},
ε 0.01, Poisson weights 'counts', cold TV start, and where it lies. The grid is a subset
of bench_quality.py's, so its published best (docs/quality.md) compares conservatively.
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

import fusedem
from fusedem import phantoms as P

GRID = dict(lambda_chem=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
            lambda_tv=[0.0015, 0.005, 0.015, 0.05, 0.15, 0.5], n_iter_tv=[1, 6], n_iter=[15, 60])


def best_over_grid(m: P.Measurement, ph: P.Phantom, exponent: float) -> tuple[float, dict]:
    best: tuple[float, dict] = (-np.inf, {})
    for values in itertools.product(*GRID.values()):
        pt = dict(zip(GRID, values))
        r = fusedem.fuse(m.haadf, m.maps, eps=0.01, poisson_weights="counts", warm_start_tv=False,
                         tv_weight_exponent=exponent, **pt)
        psnr = float(np.mean([v[0] for v in P.scores(r.maps, ph).values()]))
        if psnr > best[0]:
            best = (psnr, pt)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[101])
    ap.add_argument("--exponents", nargs="+", type=float, default=[0.0, 1.0, 1.5, 2.0])
    ap.add_argument("--kinds", nargs="+", default=list(P.KINDS))
    ap.add_argument("--doses", nargs="+", type=float, default=[0.5, 2.0, 8.0, 32.0])
    args = ap.parse_args()
    for seed in args.seeds:
        for kind in args.kinds:
            for dose in args.doses:
                ph = P.make(kind, (96, 96), seed)
                m = P.measure(ph, dose, seed=seed + 1000)
                cells = []
                for a in args.exponents:
                    p, pt = best_over_grid(m, ph, a)
                    cells.append(f"a={a:g}: {p:6.2f} ({pt['lambda_chem']:g}, {pt['lambda_tv']:g}, "
                                 f"{pt['n_iter_tv']}, {pt['n_iter']})")
                print(f"seed {seed} {kind:9s} dose {dose:4g}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
