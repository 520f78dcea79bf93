"""Speed of fused tomography: ms per outer iteration, and per 10⁶ voxels per element, CPU and GPU.

3 elements (the 'layers' phantom: Hf, Si, O), 43 HAADF + 11 chemical tilts over
±70°, volumes n³. Also the projector's build time and one projection with the
numba SpMM against scipy's (single-threaded) sparse product. The GPU columns
(``device="cuda"``: fusedem.cuda.tomo_stepper) read n/a when no GPU is usable;
the GPU run also reports the largest relative difference of its volumes from the
CPU run's (same iterations), and 'first' the first iteration (kernel compilation).

    NUMBA_CACHE_DIR=/tmp/numba PYTHONPATH=src python benchmarks/bench_tomo.py [n ...]
        [--n-iter K] [--skip-cpu] [--skip-spmm]

Timings are medians over the iterations after the first; each iteration
includes the copies back of its cost scalars (the backtracking test needs them),
not of the volumes (``min_interval`` withholds them until the last).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from fusedem.cuda import device_name, resolve_device, simulated
from fusedem.tomo import iterate_tilt_series, phantoms
from fusedem.tomo.projector import Projector


def spmm(n: int) -> tuple[float, float, float]:
    """(build s, numba s, scipy s) for one projection of 3 × n slices at 43 tilts."""
    t = time.perf_counter()
    P = Projector(np.linspace(-70, 70, 43), n, n)
    build = time.perf_counter() - t
    x = np.random.default_rng(0).random((n * n, 3 * n)).astype(np.float32)
    P.forward(x[:, :4])  # compile / load the kernel
    out = []
    for backend in ("numba", "scipy"):
        P.backend = backend
        t = time.perf_counter()
        P.forward(x)
        out.append(time.perf_counter() - t)
    return build, out[0], out[1]


def per_iteration(ts, device: str, n_iter: int) -> dict:
    """setup s, first-iteration s, median s per later iteration, final volumes, at n³ × 3."""
    t0 = time.perf_counter()
    gen = iterate_tilt_series(ts.haadf, ts.haadf_angles, ts.maps, ts.chem_angles,
                              n_iter=n_iter, n_init=2, min_interval=1e9, device=device)
    times, last, first, st = [], None, 0.0, None
    for st in gen:
        now = time.perf_counter()
        if last is None:
            first = st.elapsed
            setup = now - t0 - st.elapsed  # everything before the first iteration
        else:
            times.append(now - last)
        last = now
    return {"setup": setup, "first": first, "iter": float(np.median(times)), "volumes": st.volumes,
            "device": st.device}


def _fmt(v: float | None, spec: str, width: int) -> str:
    return f"{'n/a':>{width}}" if v is None else f"{v:>{width}{spec}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[128, 256])
    ap.add_argument("--n-iter", type=int, default=4, help="outer iterations per run (>= 2)")
    ap.add_argument("--skip-cpu", action="store_true", help="GPU runs only (no CPU column)")
    ap.add_argument("--skip-spmm", action="store_true", help="no projector/SpMM table")
    a = ap.parse_args()
    # NUMBA_ENABLE_CUDASIM=1 runs the GPU column in numba's simulator: a check of this
    # script at tiny n, its times mean nothing
    gpu = resolve_device("auto") == "cuda" or simulated()
    print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores; "
          f"GPU: {device_name('cuda') if gpu else 'none (n/a)'}")
    if not a.skip_spmm:
        print("\nprojector (43 tilts) and one projection of 3 elements × n slices")
        print(f"{'n':>5} {'build s':>8} {'numba s':>8} {'scipy s':>8}")
        for n in a.sizes:
            b, t_nb, t_sp = spmm(n)
            print(f"{n:>5} {b:>8.2f} {t_nb:>8.2f} {t_sp:>8.2f}", flush=True)
    print(f"\nfused tomography, 3 elements, 43 HAADF + 11 chemical tilts, {a.n_iter} iterations "
          "(median of iterations 2..)")
    print(f"{'n':>5} {'setup s':>8} {'ms/it CPU':>10} {'/Mvox/el':>9} {'ms/it GPU':>10} "
          f"{'/Mvox/el':>9} {'GPU first s':>12} {'GPU vs CPU':>11}")
    for n in a.sizes:
        _, ts = phantoms.simulate("layers", n=n, dose=4.0, oversample=1)
        mvox = n**3 / 1e6
        cpu = None if a.skip_cpu else per_iteration(ts, "cpu", a.n_iter)
        gp = per_iteration(ts, "cuda", a.n_iter) if gpu else None
        diff = None
        if cpu and gp:
            diff = max(float(np.abs(cpu["volumes"][k] - gp["volumes"][k]).max()
                             / max(np.abs(cpu["volumes"][k]).max(), 1e-30)) for k in cpu["volumes"])
        setup = (cpu or gp or {}).get("setup")
        c_ms = cpu["iter"] * 1e3 if cpu else None
        g_ms = gp["iter"] * 1e3 if gp else None
        print(f"{n:>5} {_fmt(setup, '.1f', 8)} {_fmt(c_ms, '.0f', 10)} "
              f"{_fmt(c_ms / mvox / 3 if c_ms else None, '.2f', 9)} {_fmt(g_ms, '.1f', 10)} "
              f"{_fmt(g_ms / mvox / 3 if g_ms else None, '.3f', 9)} "
              f"{_fmt(gp['first'] if gp else None, '.1f', 12)} {_fmt(diff, '.1e', 11)}", flush=True)


if __name__ == "__main__":
    main()
