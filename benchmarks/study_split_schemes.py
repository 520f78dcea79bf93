"""Does another way of thinning the counts rank autotune's candidates better?

    python benchmarks/study_split_schemes.py --seeds 101 102 --split-seeds 1 2 3 4

For each phantom case (kind x dose, 96², phantom seed s, noise seed s + 1000) autotune runs
once; every candidate it visited is fused at every checkpoint iteration (5, 10, ... 30) and
scored on the truth (mean PSNR over elements). Each split scheme then re-scores the same
(candidate, iteration) pairs on its own held-out splits, and the PSNR of its lowest-scoring
pair is compared with the best visited pair: the loss (dB) from ranking alone, the search
path held fixed. Schemes (p = 0.8 of the counts fitted in all):

- ``independent x2``: fusedem's splits (two independent Binomial(b, 0.8) thinnings);
- ``disjoint x2`` / ``x3`` / ``x5``: the counts partitioned into five Poisson parts
  (multinomial), each split holding out a different part (K-fold thinning).

Prints the loss per case and split seed, then per scheme the mean, the largest and how many
exceed 1 dB.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

import fusedem
from fusedem import phantoms as P
from fusedem import tuning as T
from fusedem import validation as V


def disjoint_splits(maps, n_parts: int, use: int, seed: int) -> list[V.Split]:
    """``use`` splits, each holding out a different one of ``n_parts`` multinomial parts."""
    rng = np.random.default_rng(seed)
    b = {k: np.asarray(v).astype(np.int64) for k, v in maps.items()}
    parts = {}
    for k, v in b.items():
        rem, left, out = v.ravel().copy(), 1.0, []
        for _ in range(n_parts - 1):
            part = rng.binomial(rem, (1 / n_parts) / left)
            out.append(part)
            rem, left = rem - part, left - 1 / n_parts
        parts[k] = [p.reshape(v.shape) for p in out + [rem]]
    q = 1 / n_parts
    return [V.Split(fit={k: (b[k] - parts[k][j]) / (1 - q) for k in b},
                    held={k: parts[k][j].astype(float) for k in b}, ratio=q) for j in range(use)]


SCHEMES = {
    "independent x2": lambda maps, s: V.thinning_splits(maps, seed=s),
    "disjoint x2": lambda maps, s: disjoint_splits(maps, 5, 2, s),
    "disjoint x3": lambda maps, s: disjoint_splits(maps, 5, 3, s),
    "disjoint x5": lambda maps, s: disjoint_splits(maps, 5, 5, s),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[101, 102])
    ap.add_argument("--split-seeds", nargs="+", type=int, default=[1, 2, 3, 4])
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    loss: dict[str, list[float]] = {n: [] for n in SCHEMES}
    for seed in args.seeds:
        for kind in P.KINDS:
            for dose in (0.5, 2.0, 8.0, 32.0):
                ph = P.make(kind, (96, 96), seed)
                m = P.measure(ph, dose, seed=seed + 1000)
                res = fusedem.autotune(m.haadf, m.maps)
                psnr = {}
                for c in res.candidates:
                    for it in range(T.CHECK_EVERY, res.base.n_iter + 1, T.CHECK_EVERY):
                        p = res.base.replace(
                            lambda_chem=c.lambda_chem, lambda_tv=c.lambda_tv, n_iter=it,
                            n_iter_tv=c.n_iter_tv, tv_step=c.tv_step,
                            lambda_tv_elements=dict(c.lambda_tv_elements) or None,
                            tv_weight_exponent=c.tv_weight_exponent)
                        s = P.scores(fusedem.fuse(m.haadf, m.maps, params=p).maps, ph)
                        psnr[(c.point, it)] = float(np.mean([v[0] for v in s.values()]))
                best = max(psnr.values())
                cells = []
                for name, make in SCHEMES.items():
                    for ss in args.split_seeds:
                        splits = make(m.maps, ss)
                        ev = T._Evaluator(m.haadf, splits, res.base)
                        keys, scores = [], []
                        for c in res.candidates:
                            for it, v in ev(c.point, len(splits)).curve:
                                keys.append((c.point, it))
                                scores.append(v)
                        loss[name].append(best - psnr[keys[int(np.argmin(scores))]])
                    cells.append(f"{name} " + " ".join(f"{x:.2f}" for x in
                                                       loss[name][-len(args.split_seeds):]))
                print(f"seed {seed} {kind:9s} dose {dose:4g}: best visited {best:.2f} dB; "
                      "loss " + " | ".join(cells), flush=True)
    print("\nscheme            mean loss  largest  > 1 dB")
    for name, v in loss.items():
        print(f"{name:16s} {np.mean(v):9.3f} {np.max(v):8.2f} {sum(x > 1 for x in v):6d} of {len(v)}")


if __name__ == "__main__":
    main()
