"""One outer iteration: the one-pass kernel against the two-pass kernels.

    .venv/bin/python benchmarks/bench_kernels.py [--sizes 512 2048] [--inner 3 10 20 30 40]

Prints the median time (ms) of ``pipeline.fused_iteration`` and of
``kernels.gradient_step`` + ``kernels.tv_prox`` on the same 3-element maps
(warm-started FGP, lambda_tv 0.15), each run on fresh copies of the iterate
and duals. ``stepper.MAX_FUSED_INNER`` is chosen from this table.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_solver import make_data  # noqa: E402

from fusedem import kernels, pipeline  # noqa: E402
from fusedem.solver import prepare_inputs  # noqa: E402


def median_ms(fn, setup, reps: int) -> float:
    setup()
    fn()
    ts = []
    for _ in range(reps):
        setup()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--inner", type=int, nargs="+", default=[3, 10, 20, 30, 40])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    f = np.float32
    scalars = (f(1.6), f(1 / 3), f(0.08), f(0.24))
    lam = 0.15
    print(f"{numba.get_num_threads()} threads; ms per outer iteration, median of {args.repeats}")
    print(f"{'size':>6} {'inner':>6} {'one pass':>9} {'two pass':>9}")
    for n in args.sizes:
        haadf, maps = make_data(n)
        bh, b, _, _, _ = prepare_inputs(haadf, maps)
        w = np.ones(len(maps), f)
        rng = np.random.default_rng(0)
        x0 = b.copy()
        p0 = rng.uniform(-0.5, 0.5, b.shape).astype(f)
        q0 = rng.uniform(-0.5, 0.5, b.shape).astype(f)
        x, p, q, r, s, y = (np.empty_like(b) for _ in range(6))

        def setup():
            np.copyto(x, x0)
            np.copyto(p, p0)
            np.copyto(q, q0)

        for n_in in args.inner:
            al = pipeline.fgp_alphas(n_in)
            bands = pipeline.n_bands_for(n, numba.get_num_threads(), n_in)
            blk = max(8, min(64, -(-n // 8)))

            def one():
                pipeline.fused_iteration(x, b, bh, w, *scalars, p, q, lam, al, True, True, True, bands)

            def two():
                kernels.gradient_step(x, b, bh, w, *scalars, y, True)
                kernels.tv_prox(y, lam, n_in, p, q, r, s, x, warm=True, block=blk)

            print(f"{n:>5}² {n_in:>6} {median_ms(one, setup, args.repeats):>9.1f} "
                  f"{median_ms(two, setup, args.repeats):>9.1f}", flush=True)


if __name__ == "__main__":
    main()
