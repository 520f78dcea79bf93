"""autotune from bases that differ in one FusionParams field, on the phantom suite.

    python benchmarks/study_autotune_base.py poisson_weights equal counts --seeds 101
    python benchmarks/study_autotune_base.py eps 0.24 0.1 0.01 --seeds 101 102

Per case (phantom kind x dose, seed s, noise seed s + 1000, 96²) and base value: the mean
PSNR over elements of ``fuse`` at autotune's choice, the search's held-out score (what it
minimises: the lowest says which value the data prefer, no truth needed), the validation
method and the seconds taken (autotune + fuse).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import fusedem
from fusedem import FusionParams
from fusedem import phantoms as P


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("field", help="a FusionParams field, e.g. eps")
    ap.add_argument("values", nargs="+", help="its values (typed as the field's default)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[101])
    args = ap.parse_args()
    kind_of = type(getattr(FusionParams(), args.field))
    bases = [FusionParams().replace(**{args.field: kind_of(v)}) for v in args.values]
    warnings.simplefilter("ignore")  # the unreliable-choice note is not the point here
    for seed in args.seeds:
        for kind in P.KINDS:
            for dose in (0.5, 2.0, 8.0, 32.0):
                ph = P.make(kind, (96, 96), seed)
                m = P.measure(ph, dose, seed=seed + 1000)
                cells = []
                for v, base in zip(args.values, bases):
                    t = time.perf_counter()
                    a = fusedem.autotune(m.haadf, m.maps, base)
                    r = fusedem.fuse(m.haadf, m.maps, a.params)
                    psnr = float(np.mean([P.psnr(r.maps[k], ph.truth[k]) for k in ph.truth]))
                    cells.append(f"{v}: {psnr:6.2f} dB (score {a.score:.5f}, {a.method}, "
                                 f"{time.perf_counter() - t:4.1f} s)")
                print(f"seed {seed} {kind:9s} dose {dose:4g}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
