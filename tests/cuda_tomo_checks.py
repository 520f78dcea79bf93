"""The tomography GPU path against the CPU path (used by tests/test_cuda_tomo.py).

On a GPU when one is present, otherwise through numba's CUDA simulator in a child
process (``NUMBA_ENABLE_CUDASIM=1`` must be set before numba.cuda is first
imported): ``python tests/cuda_tomo_checks.py N N_ITER`` prints one JSON object.
"""
from __future__ import annotations

import json
import sys

import numpy as np

# parameter variants the GPU must reproduce; "step" multiplies the initial step sizes,
# so that the sufficient-decrease test fails and the step is halved (backtracking)
CASES: dict[str, dict] = {
    "defaults": {},
    "halving_gp_cold_tv": {"step": 10.0, "tv_solver": "gp", "warm_start_tv": False,
                           "n_iter_tv": 2},
    "halving_no_tv": {"step": 10.0, "lambda_tv": 0.0},
    # the first element without TV, the second with 3x the common lambda_tv; fixed gain
    "per_element_tv_fixed_gain": {"per_element": (0.0, 3.0), "haadf_gain": "fixed"},
}


def series(n: int, n_haadf: int = 7, n_chem: int = 3, n_el: int = 2, seed: int = 0):
    """(haadf, haadf_angles, maps, chem_angles) of the 'core_shell' phantom with n³
    volumes, keeping its n_el elements of most counts."""
    from fusedem.tomo import phantoms

    _, ts = phantoms.simulate("core_shell", n=n, dose=20.0, oversample=1, seed=seed,
                              haadf_angles=np.linspace(-60, 60, n_haadf),
                              chem_angles=np.linspace(-45, 45, n_chem))
    keep = sorted(ts.maps, key=lambda k: -float(ts.maps[k].sum()))[:n_el]
    return ts.haadf, ts.haadf_angles, {k: ts.maps[k] for k in keep}, ts.chem_angles


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def _solve(args, p, step: float, device: str):
    """(final TomoState or TomoResult, number of step halvings) of one solve of the series
    ``args``; through fuse_tilt_series when ``step`` is 1."""
    from fusedem.tomo import fuse_tilt_series
    from fusedem.tomo.inputs import prepare
    from fusedem.tomo.problem import build
    from fusedem.tomo.solver import _finite, run

    cls = _stepper_class(device)
    count = [0]
    orig = cls.shrink

    def counted(self):
        count[0] += 1
        orig(self)

    cls.shrink = counted
    try:
        if step == 1.0:
            return fuse_tilt_series(*args, params=p, device=device), count[0]
        pb = build(prepare(*args), p)
        pb.tau0 = pb.tau0 * step
        state = None
        for state in _finite(run(pb, p, p.n_iter, device=device)):
            pass
    finally:
        cls.shrink = orig
    return state, count[0]


def tomo_errors(n: int, n_iter: int, **series_kw) -> dict[str, dict]:
    """Per case: the largest relative error of GPU volumes and costs against the CPU's,
    and the number of step halvings on each device (the same acceptance decisions)."""
    from fusedem.tomo import TomoParams

    args = series(n, **series_kw)
    out = {}
    for name, kw in CASES.items():
        kw = dict(kw)
        step = kw.pop("step", 1.0)
        factors = kw.pop("per_element", None)
        p = TomoParams(n_iter=n_iter, n_init=2, **kw)
        if factors is not None:
            p = p.replace(lambda_tv_elements={s: f * p.lambda_tv for s, f in zip(args[2], factors)})
        a, ha = _solve(args, p, step, "cpu")
        b, hb = _solve(args, p, step, "cuda")
        out[name] = {"volumes": max(_rel(a.volumes[k], b.volumes[k]) for k in a.volumes),
                     "costs": max(_rel(a.costs[k], b.costs[k]) for k in a.costs),
                     "halvings": [ha, hb], "device": b.device}
    return out


def _stepper_class(dev: str):
    if dev == "cpu":
        from fusedem.tomo.solver import _Stepper

        return _Stepper
    from fusedem.cuda.tomo_stepper import CudaTomoStepper

    return CudaTomoStepper


def spmm_error(n_rows: int = 37, n_cols: int = 29, m: int = 45, seed: int = 0) -> float:
    """The GPU sparse × dense product against scipy's, on a random CSR matrix (relative)."""
    import scipy.sparse as sp
    from numba import cuda

    from fusedem.cuda.tomo_stepper import _DeviceCSR
    from fusedem.tomo.projector import _arrays

    rng = np.random.default_rng(seed)
    a = sp.random(n_rows, n_cols, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    x = rng.random((n_cols, m)).astype(np.float32)
    out = cuda.device_array((n_rows, m), np.float32)
    _DeviceCSR(_arrays(a)).apply(cuda.to_device(x), out)
    return _rel(a @ x, out.copy_to_host())


def run_all(n: int, n_iter: int) -> dict:
    return {"spmm": spmm_error(), "tomo": tomo_errors(n, n_iter)}


if __name__ == "__main__":
    print(json.dumps(run_all(int(sys.argv[1]), int(sys.argv[2]))))
