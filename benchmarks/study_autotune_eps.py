"""autotune with the base's eps at 0.24 (default), 0.1 and 0.01, on the phantom suite.

    python benchmarks/study_autotune_eps.py 101 102

Per case (phantom kind x dose, seed s, noise seed s + 1000, 96²): the mean PSNR over
elements of ``fuse`` at each search's choice, and that search's held-out score (the
number the search itself minimises: the lowest of the three says which eps the data
prefer, no truth needed).
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

import fusedem
from fusedem import FusionParams
from fusedem import phantoms as P

EPS = (0.24, 0.1, 0.01)


def main(seeds: list[int]) -> None:
    warnings.simplefilter("ignore")  # the unreliable-choice note is not the point here
    for seed in seeds:
        for kind in P.KINDS:
            for dose in (0.5, 2.0, 8.0, 32.0):
                ph = P.make(kind, (96, 96), seed)
                m = P.measure(ph, dose, seed=seed + 1000)
                cells = []
                for eps in EPS:
                    a = fusedem.autotune(m.haadf, m.maps, FusionParams(eps=eps))
                    r = fusedem.fuse(m.haadf, m.maps, a.params)
                    psnr = float(np.mean([P.psnr(r.maps[k], ph.truth[k]) for k in ph.truth]))
                    cells.append(f"eps {eps:g}: {psnr:6.2f} dB (score {a.score:.5f})")
                print(f"seed {seed} {kind:9s} dose {dose:4g}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [101])
