"""CPU scaling: the solver's time against numba's thread count, and against the copy bound.

    python benchmarks/bench_threads.py                    # 512² and 2048², 1..all threads
    python benchmarks/bench_threads.py --bands 1 2 4      # also with 2x and 4x more row bands

3 elements, 30 outer iterations, 3 TV iterations (bench_solver's data), medians
of ``--repeats``. The bound is bench_solver's: 76 B per element-pixel per outer
iteration at the machine's copy bandwidth measured with all threads. ``--bands``
multiplies the one-pass kernel's row bands per thread (a study of what limits
scaling at small sizes; the solver uses 1).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_solver import BYTES_PER_ELEMENT_PIXEL, bandwidth_gbs, time_fusedem_threads  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bands", type=int, nargs="+", default=[1], help="row bands per thread")
    args = ap.parse_args()
    import numba

    from fusedem import pipeline

    n_max = numba.config.NUMBA_NUM_THREADS
    threads = sorted({t for t in (1, 2, 4, 8, 16, 32, 64, n_max) if t <= n_max})
    bw = bandwidth_gbs()
    print(f"machine: {os.cpu_count()} CPUs, numba {numba.__version__} "
          f"({numba.threading_layer() if hasattr(numba, 'threading_layer') else '?'} layer), "
          f"copy bandwidth {bw:.1f} GB/s (read + write, {n_max} threads)")
    original = pipeline.n_bands_for
    print(f"{'size':>6} {'bands/thr':>9} " + " ".join(f"{t:>7}t" for t in threads)
          + f" {'bound s':>8} {'best x bound':>12}")
    for n in args.sizes:
        for m in args.bands:
            pipeline.n_bands_for = lambda ny, nt, ni, m=m: original(ny, nt * m, ni)
            try:
                ts = [time_fusedem_threads(n, 3, args.repeats, t) for t in threads]
            finally:
                pipeline.n_bands_for = original
            bound = BYTES_PER_ELEMENT_PIXEL * 3 * n * n * 30 / (bw * 1e9)
            print(f"{n:>5}² {m:>9} " + " ".join(f"{t:>8.3f}" for t in ts)
                  + f" {bound:>8.3f} {min(ts) / bound:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
