"""Speed of fused tomography: ms per outer iteration, and per 10⁶ voxels per element.

3 elements (the 'layers' phantom: Hf, Si, O), 43 HAADF + 11 chemical tilts over
±70°, volumes n³. Also the projector's build time and one projection with the
numba SpMM against scipy's (single-threaded) sparse product. A GPU column is
printed as n/a unless a GPU backend is importable (fusedem.tomo has none yet).

    NUMBA_CACHE_DIR=/tmp/numba PYTHONPATH=src python benchmarks/bench_tomo.py [n ...]

The machine this was written on has 2 cores shared with other jobs: timings are
the median of the iterations run and only indicative.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from fusedem.tomo import iterate_tilt_series, phantoms
from fusedem.tomo.projector import Projector


def gpu_available() -> bool:
    try:
        from fusedem.tomo import gpu  # noqa: F401  (added by the GPU backend, when there is one)
    except ImportError:
        return False
    return True


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


def per_iteration(n: int, n_iter: int = 3) -> tuple[float, float]:
    """(setup s, median s per outer iteration after the first) at n³ × 3 elements."""
    _, ts = phantoms.simulate("layers", n=n, dose=4.0, oversample=1)
    t0 = time.perf_counter()
    gen = iterate_tilt_series(ts.haadf, ts.haadf_angles, ts.maps, ts.chem_angles,
                              n_iter=n_iter, n_init=2, min_interval=1e9)
    times, last = [], None
    for st in gen:
        now = time.perf_counter()
        if last is None:
            setup = now - t0 - st.elapsed  # everything before the first iteration
        else:
            times.append(now - last)
        last = now
    return setup, float(np.median(times))


def main(sizes: list[int]) -> None:
    gpu = "available" if gpu_available() else "n/a"
    print("projector (43 tilts) and one projection of 3 elements × n slices")
    print(f"{'n':>5} {'build s':>8} {'numba s':>8} {'scipy s':>8}")
    for n in sizes:
        b, a, s = spmm(n)
        print(f"{n:>5} {b:>8.2f} {a:>8.2f} {s:>8.2f}")
    print("\nfused tomography, 3 elements, 43 HAADF + 11 chemical tilts (CPU, numba threads)")
    print(f"{'n':>5} {'setup s':>8} {'ms/iter CPU':>12} {'ms/iter/Mvox/el':>16} {'GPU':>6}")
    for n in sizes:
        setup, it = per_iteration(n)
        mvox = n**3 / 1e6
        print(f"{n:>5} {setup:>8.1f} {it * 1e3:>12.0f} {it * 1e3 / mvox / 3:>16.1f} {gpu:>6}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [128, 256])
