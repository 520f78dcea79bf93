"""GPU-backend checks against the CPU path, shared by the tests and the GPU benchmark.

Run on a GPU when one is present, and otherwise through numba's CUDA simulator
in a child process (``NUMBA_ENABLE_CUDASIM=1`` must be set before numba.cuda
is first imported): ``python tests/cuda_checks.py SIZE N_ITER`` prints one
JSON object of relative errors.
"""
from __future__ import annotations

import json
import sys

import numpy as np

# parameter variants every backend must reproduce (beyond the defaults)
CASES: dict[str, dict] = {
    "defaults": {},
    "warm_start": {"warm_start_tv": True},
    "prox": {"poisson_step": "prox"},
    "gp_4": {"tv_solver": "gp", "n_iter_tv": 4},
    "tv_step_per_element": {"tv_step": 0.5, "lambda_tv_elements": {"O": 0.3}},
    "count_weights": {"poisson_weights": "counts", "poisson_step": "prox"},
    "dysco3_preset": {"background_threshold": 0.2, "map_scaling": "minmax", "lambda_tv": 0.0},
}


def inputs(size: int, seed: int = 0):
    """A small lattice phantom's HAADF and count maps (3 elements), shapes (size, size)."""
    from fusedem import phantoms

    m = phantoms.measure(phantoms.lattice(shape=(size, size), seed=seed), dose=8.0, seed=seed + 1)
    return m.haadf, m.maps


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def fuse_errors(size: int, n_iter: int) -> dict[str, dict[str, float]]:
    """Per case: the largest relative error of GPU maps and costs against the CPU's."""
    from fusedem import fuse

    haadf, maps = inputs(size)
    out = {}
    for name, kw in CASES.items():
        a = fuse(haadf, maps, device="cpu", n_iter=n_iter, **kw)
        b = fuse(haadf, maps, device="cuda", n_iter=n_iter, **kw)
        out[name] = {"maps": max(_rel(a.maps[k], b.maps[k]) for k in a.maps),
                     "costs": max(_rel(a.costs[k], b.costs[k]) for k in a.costs),
                     "device": b.device}
    return out


def batch_errors(size: int, n_iter: int) -> dict[str, float]:
    """Batches of parameter sets and of frames against one CPU fuse each: the largest errors."""
    from fusedem import FusionParams, fuse
    from fusedem.cuda.batch import fuse_frames, fuse_parameter_sets

    haadf, maps = inputs(size, seed=1)
    sets = [FusionParams(n_iter=n_iter, lambda_chem=lc, lambda_tv=lt, poisson_weights=pw)
            for lc, lt, pw in ((0.01, 0.02, "equal"), (0.1, 0.3, "counts"), (0.05, 0.0, "equal"))]
    got = fuse_parameter_sets(haadf, maps, sets)
    err = 0.0
    for p, g in zip(sets, got):
        ref = fuse(haadf, maps, p, device="cpu")
        err = max(err, max(_rel(ref.maps[k], g[k]) for k in ref.maps))
    frames = [inputs(size, seed=s) for s in (3, 4)]
    hs = np.stack([h for h, _ in frames])
    ms = {k: np.stack([m[k] for _, m in frames]) for k in frames[0][1]}
    p = FusionParams(n_iter=n_iter)
    err_f = 0.0
    for (h, m), g in zip(frames, fuse_frames(hs, ms, p)):
        ref = fuse(h, m, p, device="cpu")
        err_f = max(err_f, max(_rel(ref.maps[k], g[k]) for k in ref.maps))
    return {"batch_maps": err, "frame_maps": err_f}


def autotune_agreement(size: int, n_iter: int, budget: float) -> dict[str, object]:
    """autotune on the GPU (batched candidates) against the CPU: same points, scores, choice."""
    from fusedem import FusionParams, autotune

    haadf, maps = inputs(size, seed=2)
    base = FusionParams(n_iter=n_iter)
    a = autotune(haadf, maps, base, device="cpu", budget=budget)
    b = autotune(haadf, maps, base, device="cuda", budget=budget)
    sa = {c.point: c.score for c in a.candidates}  # every parameter that tells candidates apart
    sb = {c.point: c.score for c in b.candidates}
    common = set(sa) & set(sb)
    return {"same_points": set(sa) == set(sb), "n_points": len(sa),
            "score_rel": max(abs(sa[k] - sb[k]) / abs(sa[k]) for k in common),
            "same_choice": a.params == b.params, "n_solves": [a.n_solves, b.n_solves]}


def run_all(size: int, n_iter: int, budget: float) -> dict:
    """Every check at one image size; autotune with ``budget`` fuses (16² at the least)."""
    return {"fuse": fuse_errors(size, n_iter), **batch_errors(size, n_iter),
            "autotune": autotune_agreement(max(size, 16), n_iter, budget)}


if __name__ == "__main__":
    size, n_iter, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(run_all(size, n_iter, budget)))
