"""The tomography GPU path against the CPU path: on a GPU when present, else in numba's simulator.

Without a GPU the kernels run through numba's CUDA simulator in a child process (it must
be switched on before numba.cuda is imported), on 8³ volumes of 2 elements for 3 outer
iterations: slow per voxel, but the very kernels that run on a GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusedem.cuda import resolve_device, unavailable_reason

sys.path.insert(0, str(Path(__file__).parent))
import cuda_tomo_checks  # noqa: E402

TOL = 1e-4  # relative, GPU against CPU
HAVE_GPU = resolve_device("auto") == "cuda"


def _check(res: dict) -> None:
    assert res["spmm"] < 1e-5, res["spmm"]
    assert set(res["tomo"]) == set(cuda_tomo_checks.CASES)
    for case, errs in res["tomo"].items():
        assert errs["volumes"] < TOL and errs["costs"] < TOL, (case, errs)
        assert errs["halvings"][0] == errs["halvings"][1], (case, errs)
    # the cases with too large a first step must have exercised the backtracking
    assert all(res["tomo"][c]["halvings"][0] > 0 for c in cuda_tomo_checks.CASES
               if "step" in cuda_tomo_checks.CASES[c]), res["tomo"]


@pytest.fixture(scope="module")
def simulated() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "cuda_tomo_checks.py"), "8", "3"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_simulated_tomo_kernels_match_the_cpu_path(simulated):
    assert all(e["device"] == "cuda: simulator" for e in simulated["tomo"].values())
    _check(simulated)


@pytest.mark.skipif(not HAVE_GPU, reason=f"no GPU: {unavailable_reason() or 'simulator only'}")
def test_gpu_tomo_matches_the_cpu_path():
    res = {"spmm": cuda_tomo_checks.spmm_error(2000, 3000, 300),
           "tomo": cuda_tomo_checks.tomo_errors(48, 15, n_haadf=31, n_chem=9, n_el=3)}
    assert all(e["device"].startswith("cuda: ") for e in res["tomo"].values())
    _check(res)


def test_tomo_on_cuda_without_a_gpu_names_the_reason():
    from fusedem.tomo import fuse_tilt_series, iterate_tilt_series

    if HAVE_GPU:
        pytest.skip("a GPU is present")
    args = cuda_tomo_checks.series(8)
    with pytest.raises(ValueError, match="device='cuda' was asked for, but"):
        fuse_tilt_series(*args, device="cuda", n_iter=1)
    with pytest.raises(ValueError, match="device='cuda' was asked for, but"):
        iterate_tilt_series(*args, device="cuda", n_iter=1)
    with pytest.raises(ValueError, match="device must be one of"):
        fuse_tilt_series(*args, device="gpu", n_iter=1)


def test_tomo_result_says_where_it_ran():
    from fusedem.tomo import fuse_tilt_series, iterate_tilt_series

    args = cuda_tomo_checks.series(8)
    res = fuse_tilt_series(*args, n_iter=2, n_init=1, device="cpu")
    assert res.device == "cpu"
    states = list(iterate_tilt_series(*args, n_iter=2, n_init=1, device="cpu"))
    assert [s.device for s in states] == ["cpu", "cpu"]
    auto = fuse_tilt_series(*args, n_iter=1, n_init=1)  # 'auto': the CPU here unless a GPU
    assert auto.device == "cpu" if not HAVE_GPU else auto.device.startswith("cuda: ")
    assert np.all(np.isfinite(auto.volumes[next(iter(auto.volumes))]))
