"""Poisson-normalised PCA in memory against the blocked path (dask chunks, a memmap).

    PYTHONPATH=src python benchmarks/bench_pca_blocked.py [--ny 128 --nx 128 --ne 1024 -k 5]

A synthetic low-rank Poisson cube (three spectra mixed smoothly over the scan)
is denoised with k components (randomised SVD, 4 power iterations) three ways:
numpy in memory, dask with 16-row chunks (result computed one block at a time into
a preallocated array), and a .npy memmap in blocks of 16 rows. Prints wall time,
peak Python-tracked memory (numpy allocations, tracemalloc; the blocked runs
include their 8-byte output array) and the largest
difference from the in-memory result relative to its maximum.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import fusedem.spectra.blocks as blocks
from fusedem.spectra import denoise_pca


def _cube(ny: int, nx: int, ne: int, seed: int = 0) -> np.ndarray:
    e = np.linspace(0, 1, ne)
    spectra = np.stack([np.exp(-((e - c) / 0.03) ** 2) + 0.2 for c in (0.2, 0.5, 0.8)])
    yy, xx = np.mgrid[0:ny, 0:nx] / max(ny, nx)
    w = np.stack([np.cos(3 * xx) ** 2, np.sin(2 * yy) ** 2, xx * yy])
    mu = 2.0 * np.tensordot(w, spectra, axes=(0, 0))
    return np.random.default_rng(seed).poisson(mu).astype(np.uint16)


def _run(label: str, fn, ref: np.ndarray | None) -> np.ndarray:
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    diff = "—" if ref is None else f"{np.max(np.abs(out - ref)) / np.max(np.abs(ref)):.1e}"
    print(f"| {label} | {dt:.2f} | {peak / 2**20:.0f} | {diff} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ny", type=int, default=128)
    ap.add_argument("--nx", type=int, default=128)
    ap.add_argument("--ne", type=int, default=1024)
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args()
    import dask.array as da

    raw = _cube(args.ny, args.nx, args.ne)
    mb = raw.size * 8 / 2**20
    print(f"cube {args.ny}x{args.nx}x{args.ne} (uint16 {raw.nbytes / 2**20:.0f} MiB, "
          f"float64 {mb:.0f} MiB), k = {args.k}")
    print("| path | s | peak MiB | max diff |")
    print("|---|---|---|---|")
    ref = _run("numpy in memory", lambda: denoise_pca(raw, args.k, randomised=True).cube, None)
    blocks.BLOCK_BYTES = 16 * args.nx * args.ne * 8  # 16 scan rows per block (float64)

    def lazy():
        out = np.empty(raw.shape)
        cube = denoise_pca(da.from_array(raw, chunks=(16, -1, -1)), args.k).cube
        da.store(cube, out, lock=False, scheduler="synchronous")  # one block at a time
        return out

    _run("dask, 16-row chunks", lazy, ref)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "si.npy", raw)
        mm = np.load(Path(tmp) / "si.npy", mmap_mode="r")
        _run("memmap, 16-row blocks", lambda: denoise_pca(mm, args.k).cube, ref)


if __name__ == "__main__":
    main()
