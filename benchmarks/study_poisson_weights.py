"""autotune with poisson_weights 'equal' against 'counts' on the phantom suite.

    python benchmarks/study_poisson_weights.py 101

Per case (phantom kind x dose, seed s, noise seed s + 1000, 96²): the mean PSNR
over elements of ``fuse`` at ``autotune``'s choice with each base weighting, the
validation method used and the seconds taken (autotune + fuse).
"""
from __future__ import annotations

import sys
import time

import numpy as np

import fusedem
from fusedem import FusionParams
from fusedem import phantoms as P


def main(seeds: list[int]) -> None:
    for seed in seeds:
        for kind in P.KINDS:
            for dose in (0.5, 2.0, 8.0, 32.0):
                ph = P.make(kind, (96, 96), seed)
                m = P.measure(ph, dose, seed=seed + 1000)
                row = []
                for pw in ("equal", "counts"):
                    t = time.perf_counter()
                    a = fusedem.autotune(m.haadf, m.maps, FusionParams(poisson_weights=pw))
                    r = fusedem.fuse(m.haadf, m.maps, a.params)
                    psnr = float(np.mean([P.psnr(r.maps[k], ph.truth[k]) for k in ph.truth]))
                    row.append(f"{pw} {psnr:6.2f} dB ({a.method}, {time.perf_counter() - t:4.1f} s)")
                print(f"seed {seed} {kind:9s} dose {dose:4g}: " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [101])
