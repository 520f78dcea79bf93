"""CPU solver on a machine that is not quiet: adaptive thread count against fixed ones.

    python benchmarks/bench_busy.py [--size 512] [--rounds 15] [--busy N]

Runs 30 outer iterations (3 elements, 3 TV iterations, bench_solver's data)
in rounds that alternate the three settings, so that every setting sees the
same background load: 'adaptive' (the default: each outer iteration uses the
cores other processes leave free, fusedem.threads), 'all threads' (numba's
full count every iteration) and '1 thread'. ``--busy N`` starts N core-bound
processes of its own for the whole run (0: whatever else runs). Prints the
median and quartiles of each, and the machine's load average before and after.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_solver import make_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--busy", type=int, default=0)
    args = ap.parse_args()
    import numba

    import fusedem.threads as threads
    from fusedem import fuse

    haadf, maps = make_data(args.size)
    kw = dict(n_iter=30, n_iter_tv=3, lambda_chem=0.08, lambda_tv=0.15, eps=0.24, device="cpu")
    fuse(haadf, maps, **{**kw, "n_iter": 1})
    n_all = numba.get_num_threads()
    settings = {"adaptive": (True, n_all), "all threads": (False, n_all), "1 thread": (False, 1)}
    times: dict[str, list[float]] = {k: [] for k in settings}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    load0 = os.getloadavg()
    try:
        time.sleep(0.3 if hogs else 0)
        for _ in range(args.rounds):
            for name, (adaptive, n) in settings.items():
                threads.ADAPTIVE = adaptive
                numba.set_num_threads(n)
                t = time.perf_counter()
                fuse(haadf, maps, **kw)
                times[name].append(time.perf_counter() - t)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        threads.ADAPTIVE = True
        numba.set_num_threads(n_all)
    load1 = os.getloadavg()
    print(f"{args.size}² x 3 elements, 30 iterations, {args.rounds} interleaved rounds, "
          f"{threads.machine_cores()} cores, numba {n_all} threads, {args.busy} busy process(es) "
          f"of our own; load average {load0[0]:.1f} before, {load1[0]:.1f} after")
    print(f"{'setting':>12} {'median ms':>10} {'q25 ms':>8} {'q75 ms':>8}")
    for name, ts in times.items():
        q25, med, q75 = np.percentile(ts, [25, 50, 75]) * 1e3
        print(f"{name:>12} {med:>10.0f} {q25:>8.0f} {q75:>8.0f}")


if __name__ == "__main__":
    main()
