"""Data for a one-standard-error rule in autotune (docs/autotune.md).

    python benchmarks/study_one_se_rule.py 101     # writes onese_101.json
    python benchmarks/study_one_se_rule_report.py onese_101.json

For each phantom case (2 kinds x 4 doses, 96², seed s, noise seed s + 1000) runs
autotune, then re-solves every candidate it visited on the same thinning splits
and on the full data, and records per (candidate, iteration): the held-out squared
residuals summed in 8 x 8 tiles (for a paired standard error), the TV of the fitted
maps and the PSNR of the full-data fuse against the truth.
"""
import json
import sys

import numpy as np
import fusedem
from fusedem import FusionParams, phantoms as P, validation as V
from fusedem.tuning import make_splits
from fusedem.solver import prepare_inputs

def tv(maps):
    return sum(float(np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()) for m in maps.values())

res = []
for seed in [int(s) for s in sys.argv[1:]] or [101]:
    for kind in ("lattice", "particles"):
        for dose in (0.5, 2, 8, 32):
            ph = P.make(kind, (96, 96), seed); m = P.measure(ph, dose, seed=seed + 1000)
            a = fusedem.autotune(m.haadf, m.maps)
            splits = make_splits({k: np.asarray(v) for k, v in m.maps.items()}, "thinning", seed=0)
            rows = []
            for c in a.candidates:
                p = FusionParams(lambda_chem=c.lambda_chem, lambda_tv=c.lambda_tv, n_iter_tv=c.n_iter_tv,
                                 tv_step=c.tv_step, lambda_tv_elements=dict(c.lambda_tv_elements) or None)
                blocks = {}; tvs = {}
                for s in splits:
                    _, _, _, _, ranges = prepare_inputs(m.haadf, s.fit)
                    for st in fusedem.iterate(m.haadf, s.fit, p, every=5):
                        blocks.setdefault(st.iteration, []).append(V.tile_residuals(s, st.maps, ranges))
                        tvs.setdefault(st.iteration, []).append(tv(st.maps))
                for st in fusedem.iterate(m.haadf, m.maps, p, every=5):
                    ps = float(np.mean([P.psnr(st.maps[k], ph.truth[k]) for k in ph.truth]))
                    b = np.mean(blocks[st.iteration], 0)
                    rows.append(dict(pt=[c.lambda_chem, c.lambda_tv, c.n_iter_tv, c.tv_step, st.iteration],
                                     blocks=b.tolist(), tv=float(np.mean(tvs[st.iteration])), psnr=ps))
            res.append(dict(seed=seed, kind=kind, dose=dose, auto_psnr=None, rows=rows))
            print(seed, kind, dose, len(rows), flush=True)
json.dump(res, open(f"onese_{'_'.join(sys.argv[1:]) or '101'}.json", "w"))
