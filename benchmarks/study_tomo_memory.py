"""Peak memory of one fused-tomography solve against its size, to state the peak of
``fusedem tomo`` on big volumes (docs/tomography-io.md).

Measured with tracemalloc (NumPy allocations) for slabs of rows ny at a fixed slice
nz = nx, 4 elements, 43 HAADF + 11 chemical tilts; fits peak = a + b * (ny * nz * nx * n_el)
and prints the fit and its prediction. Run: PYTHONPATH=src python benchmarks/study_tomo_memory.py [NX]
"""
from __future__ import annotations

import sys
import tracemalloc

import numpy as np

from fusedem.tomo import TomoParams, fuse_tilt_series


def peak_bytes(ny: int, nx: int, n_el: int = 4, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    ha, ca = np.linspace(-70, 70, 43), np.linspace(-70, 70, 11)
    haadf = rng.random((ha.size, ny, nx), np.float32) + 0.1
    maps = {el: rng.poisson(3.0, (ca.size, ny, nx)).astype(np.float32)
            for el in ("Au", "Fe", "O", "C")[:n_el]}
    tracemalloc.start()
    fuse_tilt_series(haadf, ha, maps, ca, TomoParams(n_iter=2))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(nx: int = 64) -> None:
    fuse_tilt_series(np.random.rand(43, 4, 8).astype(np.float32) + .1, np.linspace(-70, 70, 43),
                     {"Au": np.ones((11, 4, 8), np.float32)}, np.linspace(-70, 70, 11),
                     TomoParams(n_iter=1))  # compile first
    rows = [8, 16, 32, 64]
    peaks = [peak_bytes(ny, nx) for ny in rows]
    units = np.array([ny * nx * nx * 4 for ny in rows], float)
    b, a = np.polyfit(units, peaks, 1)
    print(f"nx = nz = {nx}, 4 elements, 43 + 11 tilts")
    print(f"{'ny':>4} {'peak MiB':>9} {'fit MiB':>8}")
    for ny, p, u in zip(rows, peaks, units):
        print(f"{ny:>4} {p / 2**20:9.1f} {(a + b * u) / 2**20:8.1f}")
    print(f"peak = {a / 2**20:.1f} MiB + {b:.1f} B per voxel-element (slab rows x nz x nx x elements)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
