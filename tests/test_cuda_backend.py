"""The CUDA backend against the CPU path: on a GPU when present, else in numba's simulator.

Without a GPU (CI), the same kernels run through numba's CUDA simulator in a
child process (it must be switched on before numba.cuda is imported), on
small images: slow per pixel, but the very code that runs on a GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusedem import fuse
from fusedem.cuda import resolve_device, unavailable_reason

sys.path.insert(0, str(Path(__file__).parent))
import cuda_checks  # noqa: E402

TOL = 1e-4  # relative, the bound for GPU against CPU
HAVE_GPU = resolve_device("auto") == "cuda"


def _check(res: dict) -> None:
    for case, errs in res["fuse"].items():
        assert errs["maps"] < TOL and errs["costs"] < TOL, (case, errs)
    assert res["batch_maps"] < TOL and res["frame_maps"] < TOL, res
    at = res["autotune"]
    assert at["same_points"] and at["n_points"] >= 2, at
    assert at["score_rel"] < 1e-3 and at["same_choice"], at
    assert at["n_solves"][0] == at["n_solves"][1], at


@pytest.fixture(scope="module")
def simulated() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "cuda_checks.py"), "16", "5", "10"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_simulated_kernels_match_the_cpu_path(simulated):
    assert all(e["device"] == "cuda: simulator" for e in simulated["fuse"].values())
    _check(simulated)


@pytest.mark.skipif(not HAVE_GPU, reason=f"no GPU: {unavailable_reason() or 'simulator only'}")
def test_gpu_matches_the_cpu_path():
    _check(cuda_checks.run_all(96, 30, budget=12))


@pytest.mark.skipif(not HAVE_GPU, reason=f"no GPU: {unavailable_reason() or 'simulator only'}")
def test_gpu_matches_the_cpu_path_on_the_tutorial():
    from fusedem import FusionParams, io
    from fusedem.demo import ELEMENTS, SAMPLE

    ds = io.load(SAMPLE)
    haadf = np.asarray(ds.haadf.data)
    maps = {s: np.asarray(ds.element_maps[s].data) for s in ELEMENTS}
    p = FusionParams.preset("dysco3")
    a = fuse(haadf, maps, p, device="cpu")
    b = fuse(haadf, maps, p, device="cuda")
    assert b.device.startswith("cuda: ")
    for k in a.maps:
        assert np.abs(a.maps[k] - b.maps[k]).max() / a.maps[k].max() < TOL, k


def test_device_names_are_checked():
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("gpu")


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_asking_for_cuda_without_a_gpu_names_the_reason():
    with pytest.raises(ValueError, match="device='cuda' was asked for, but"):
        resolve_device("cuda")


def test_auto_runs_on_the_cpu_without_a_gpu_and_says_so():
    rng = np.random.default_rng(0)
    res = fuse(rng.random((16, 16)), {"O": rng.poisson(2, (16, 16))}, n_iter=2)
    assert res.device == ("cpu" if not HAVE_GPU else res.device)
    assert res.device == "cpu" or res.device.startswith("cuda: ")
