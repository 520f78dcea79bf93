"""Batch fusion wall time: sequential vs Dask local clusters (issue 6).

    .venv/bin/python benchmarks/bench_batch.py            # 64 datasets of 512 x 512 x 3 elements
    .venv/bin/python benchmarks/bench_batch.py --quick    # 16 of 256 x 256, 3 repeats

Every mode runs the same unit of work as ``fusedem batch`` (load an .npz from
disk, fuse with the 'dysco3' preset, write an HDF5 result atomically) into a
fresh output folder:

- ``sequential``: one process, one dataset after the other; numba's parallel
  kernels use all cores (what ``fusedem fuse`` does).
- ``fusedem default``: what ``fusedem batch`` starts with no options: a
  LocalCluster with one worker process per core, 1 thread each, numba limited
  to cores / workers threads per process.
- ``LocalCluster(2 proc)``: a plain 2-worker LocalCluster of processes with
  numba left at its default (every worker may use every core).

Overheads are measured separately: cluster start-up, first task per worker
(imports + numba cache load/compile in a fresh process), per-task scheduling
and serialization (a no-op task round trip; bytes pickled per task), and file
IO (run time minus fusion time of each job).
"""
from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fusedem import FusionParams
from fusedem.cli._batch import machine_cores
from fusedem.cli._task import Job, Settings, run_job


def make_inputs(folder: Path, n: int, size: int) -> list[Path]:
    """n synthetic HAADF + Sc/Dy/O datasets (atomic-lattice-like, Poisson noise) as .npz."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    paths = []
    for i in range(n):
        sh = rng.random(2) * 6
        cols = {s: (np.cos((yy + sh[0]) / p) * np.cos((xx + sh[1]) / p) + 1) / 2
                for s, p in (("Sc", 2.1), ("Dy", 3.3), ("O", 1.4))}
        maps = {s: rng.poisson(3 * c).astype(np.float32) for s, c in cols.items()}
        haadf = 21 * cols["Sc"] + 66 * cols["Dy"] + 8 * cols["O"] + rng.normal(0, 2, (size, size))
        p = folder / f"ds{i:03d}.npz"
        np.savez(p, HAADF=haadf.astype(np.float32), **maps)
        paths.append(p)
    return paths


def jobs_for(paths: list[Path], outdir: Path) -> list[Job]:
    outdir.mkdir(parents=True)
    return [Job(str(p), str(outdir / f"{p.stem}_fused.h5")) for p in paths]


def run_sequential(paths, outdir, settings) -> dict:
    import numba

    threads = numba.get_num_threads()
    t0 = time.perf_counter()
    try:
        outs = [run_job(j, settings) for j in jobs_for(paths, outdir)]
    finally:
        numba.set_num_threads(threads)
    wall = time.perf_counter() - t0
    return _stats(outs, wall)


def _stats(outs, wall: float) -> dict:
    bad = [o.message for o in outs if o.status != "done"]
    if bad:
        raise SystemExit(f"benchmark job failed: {bad[0]}")
    fusion = sum(o.fusion_seconds for o in outs)
    return {"wall": wall, "fusion": fusion, "io": sum(o.seconds for o in outs) - fusion}


def _noop() -> int:
    return 0


def _warm(threads: int | None) -> float:
    """First use in a fresh worker: import the solver and run a tiny fusion (numba cache)."""
    t0 = time.perf_counter()
    import numba

    from fusedem import fuse

    if threads:
        numba.set_num_threads(threads)
    rng = np.random.default_rng(0)
    fuse(rng.random((16, 16)), {"Sc": rng.random((16, 16)), "O": rng.random((16, 16))}, n_iter=1)
    return time.perf_counter() - t0


def run_cluster(paths, outdir, settings, n_workers: int) -> dict:
    from dask.distributed import Client, LocalCluster, as_completed, wait

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=50)
    client = Client(cluster)
    client.wait_for_workers(n_workers)
    startup = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        warm = client.run(_warm, settings.numba_threads)
        warmup = time.perf_counter() - t1
        t2 = time.perf_counter()
        wait([client.submit(_noop, pure=False) for _ in paths])
        per_task = (time.perf_counter() - t2) / len(paths)
        jobs = jobs_for(paths, outdir)
        t3 = time.perf_counter()
        futs = [client.submit(run_job, j, settings, pure=False) for j in jobs]
        outs = [f.result() for f in as_completed(futs)]
        batch = time.perf_counter() - t3
    finally:
        client.close()
        cluster.close()
    total = time.perf_counter() - t0
    res = _stats(outs, batch)
    res.update(startup=startup, warmup=warmup, warm_each=statistics.mean(warm.values()),
               per_task=per_task, total=total,
               pickled=len(pickle.dumps((jobs[0], settings))) + len(pickle.dumps(outs[0])))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="datasets (default 64)")
    ap.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per mode; the median is shown")
    ap.add_argument("--quick", action="store_true", help="16 datasets of 256 x 256, 3 repeats")
    ap.add_argument("--n-iter", type=int, default=None, help="outer iterations (default: preset, 30)")
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.size, a.repeats = 16, 256, 3
    cores = machine_cores()
    params = FusionParams.preset("dysco3", **({"n_iter": a.n_iter} if a.n_iter else {}))
    with tempfile.TemporaryDirectory(prefix="fusedem-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths = make_inputs(tmp / "in", a.n, a.size)
        mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{a.n} datasets of {a.size} x {a.size} x 3 elements ({mb:.0f} MiB .npz), "
              f"{params.n_iter} iterations, {cores} cores, python {sys.version.split()[0]}")
        modes = {
            "sequential": lambda out: run_sequential(paths, out, Settings(params.to_dict(), str(out))),
            "sequential, 1 numba thread": lambda out: run_sequential(
                paths, out, Settings(params.to_dict(), str(out), numba_threads=1)),
            f"fusedem default ({cores} proc x 1 numba thr)": lambda out: run_cluster(
                paths, out, Settings(params.to_dict(), str(out), numba_threads=1), cores),
            "LocalCluster(2 proc, numba default)": lambda out: run_cluster(
                paths, out, Settings(params.to_dict(), str(out)), 2),
        }
        run_sequential(paths[:1], tmp / "warm", Settings(params.to_dict(), str(tmp / "warm")))
        print(f"load average (1 min) before: {os.getloadavg()[0]:.2f}")
        results: dict[str, list[dict]] = {}
        k = 0
        for rep in range(a.repeats):
            for name, fn in modes.items():
                k += 1
                results.setdefault(name, []).append(fn(tmp / f"out{k}"))
                print(f"  run {rep + 1}/{a.repeats} {name}: {results[name][-1]['wall']:.1f} s", flush=True)
    report(results, a.n)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {cores} cores "
          "(other processes on the machine inflate every number)")
    return 0


def report(results: dict[str, list[dict]], n: int) -> None:
    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    best = {name: min(r["wall"] for r in runs) for name, runs in results.items()}
    base = med["sequential"]["wall"]
    print(f"\n{'mode':<38} {'batch s':>8} {'best s':>7} {'speed-up':>8} {'s/dataset':>9} {'fusion s':>9} {'IO s':>6}"
          f" {'start s':>7} {'warm s':>7} {'task ms':>7} {'total s':>8} {'vs seq':>6}")
    for name, m in med.items():
        total = m.get("total", m["wall"])
        print(f"{name:<38} {m['wall']:>8.1f} {best[name]:>7.1f} {base / m['wall']:>7.2f}x {m['wall'] / n:>9.2f} "
              f"{m['fusion']:>9.1f} {m['io']:>6.1f} {m.get('startup', 0):>7.1f} {m.get('warmup', 0):>7.1f} "
              f"{1e3 * m.get('per_task', 0):>7.1f} {total:>8.1f} {base / total:>5.2f}x")
    pickled = max(m.get("pickled", 0) for m in med.values())
    print("\nbatch s (median; best s: fastest run): submit -> last result (workers warm); total s adds cluster start-up, worker "
          "warm-up\n(imports + numba cache load in each fresh process) and the no-op round trips; "
          "fusion/IO s: summed over\njobs (CPU-seconds inside fuse() vs load+save); task ms: one "
          f"no-op task round trip. Bytes pickled per job (Job + Settings + Outcome): {pickled:.0f}.")


if __name__ == "__main__":
    raise SystemExit(main())
