"""How good and how costly is the automatic parameter choice (fusedem.autotune)?

    .venv/bin/python benchmarks/study_autotune.py              # all three tables
    .venv/bin/python benchmarks/study_autotune.py --quick      # 64² phantoms only

1. Phantoms (fusedem.phantoms, raw counts, thinning): mean PSNR over elements of
   auto against fusedem's own best over a grid of λ_chem (7) × λ_TV (7) ×
   n_iter (10, 20, 30) × n_iter_tv (1, 3, 6) × tv_step (1, 0.5, 0.25), and of
   the defaults; "+per-el" is that best refined by one sweep of a λ_TV per element
   (scored on the truth, like the grid), the bar auto is measured against. The
   grid's best per case is cached in benchmarks/results/.
2. The tutorials (normalised maps, masking): Pearson r per element between
   auto's maps and the published preset's maps, and the choice.
3. Cost: autotune's time in fuse-times of the same image (medians of 3).
"""
from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

import h5py
import numpy as np

import fusedem
from fusedem import phantoms as P
from fusedem.tuning import PER_ELEMENT_FACTORS

GRID = dict(lambda_chem=np.geomspace(0.0005, 0.5, 7), lambda_tv=np.geomspace(0.001, 1, 7),
            n_iter=(10, 20, 30), n_iter_tv=(1, 3, 6), tv_step=(1.0, 0.5, 0.25))
RESULTS = Path(__file__).parent / "results"
#: fusedem's best over GRID per case, kept between runs (it depends on the solver only)
CACHE = RESULTS / "study_autotune_grid_cache.json"


def mean_psnr(h, m, p, truth) -> float:
    res = fusedem.fuse(h, m, p)
    return float(np.mean([P.psnr(res.maps[e], truth[e]) for e in truth]))


def _best_along(h, m, p, truth) -> tuple[float, int]:
    """Best mean PSNR at n_iter in GRID["n_iter"] along one solve of ``p``, and that n_iter."""
    best = (-np.inf, 0)
    for st in fusedem.iterate(h, m, p, every=10):
        if st.iteration in GRID["n_iter"]:
            best = max(best, (float(np.mean([P.psnr(st.maps[e], truth[e]) for e in truth])),
                              st.iteration))
    return best


def grid_best(h, m, truth, key: str, cache: dict) -> tuple[float, float]:
    """fusedem's best mean PSNR over GRID (n_iter read along each solve), and that best
    refined by one sweep of a λ_TV per element (×PER_ELEMENT_FACTORS, scored on the
    truth as the grid is); cached by ``key``."""
    if key not in cache:
        best, at = -np.inf, None
        for lc in GRID["lambda_chem"]:
            for lt in GRID["lambda_tv"]:
                for nt in GRID["n_iter_tv"]:
                    for ts in GRID["tv_step"]:
                        p = fusedem.FusionParams(lambda_chem=float(lc), lambda_tv=float(lt),
                                                 n_iter=max(GRID["n_iter"]), n_iter_tv=nt, tv_step=ts)
                        v, _ = _best_along(h, m, p, truth)
                        if v > best:
                            best, at = v, p
        refined, per = best, {}
        for el in truth:
            keep = None
            for f in PER_ELEMENT_FACTORS:
                trial = {**per, el: at.lambda_tv * f}
                v, _ = _best_along(h, m, at.replace(lambda_tv_elements=trial), truth)
                if v > refined:
                    refined, keep = v, trial
            per = keep or per
        cache[key] = [best, refined]
        RESULTS.mkdir(exist_ok=True)
        CACHE.write_text(json.dumps(cache))
    return tuple(cache[key])


def phantom_cases(which: str) -> list[tuple[str, int, float, int]]:
    if which == "quick":
        return [(k, 64, d, s) for k in P.KINDS for d in (2, 8) for s in (3, 4)]
    if which == "bench":  # bench_quality's cases (seed 101)
        return [(k, 96, d, 101) for k in P.KINDS for d in (0.5, 2, 8, 32)]
    return phantom_cases("quick") + [(k, 96, d, 7) for k in P.KINDS for d in (0.5, 2, 8, 32)]


def phantom_table(which: str) -> None:
    base = fusedem.FusionParams()
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    print("kind       size dose seed | default  grid-best  +per-el  auto   gap | auto's choice")
    gaps = []
    for kind, n, dose, seed in phantom_cases(which):
        ph = P.make(kind, (n, n), seed=seed)
        acq = P.measure(ph, dose, seed=seed + 1000)
        h, m = acq.haadf, acq.maps
        grid, best = grid_best(h, m, ph.truth, f"{kind}|{n}|{dose:g}|{seed}|el", cache)
        r = fusedem.autotune(h, m)
        auto = mean_psnr(h, m, r.params, ph.truth)
        gaps.append(auto - best)
        p = r.params
        print(f"{kind:10s} {n:4d} {dose:4g} {seed:4d} | {mean_psnr(h, m, base, ph.truth):7.2f} "
              f"{grid:9.2f} {best:8.2f} {auto:6.2f} {auto - best:+5.2f} | λ chem {p.lambda_chem:g}, "
              f"λ TV {p.lambda_tv:g}, {p.n_iter} it, {p.n_iter_tv} TV it, TV step {p.tv_step:g}"
              f"{', λ TV per element ' + str(p.lambda_tv_elements) if getattr(p, 'lambda_tv_elements', None) else ''}"
              f" ({r.n_solves} solves)", flush=True)
    g = np.array(gaps)
    print(f"auto - grid best: mean {g.mean():+.2f} dB, worst {g.min():+.2f} dB, "
          f"within 1 dB in {(g >= -1).sum()} of {g.size}\n")


def tutorials() -> dict:
    data = resources.files("fusedem") / "data"
    with resources.as_file(data / "PTO_Trilayer_dataset.npz") as f:
        d = np.load(f)
        dy = (d["HAADF"], {k: d[k] for k in ("Sc", "Dy", "O")})
    with resources.as_file(data / "Co3O4_Mn3O4.h5") as f, h5py.File(f, "r") as h:
        co = (h["HAADF"][()], {k: h[k][()] for k in ("Co", "Mn", "O")})
    return {"dysco3": dy, "co3o4_mn3o4": co}


def tutorial_table() -> None:
    for name, (h, m) in tutorials().items():
        auto = fusedem.fuse(h, m, "auto")
        ref = fusedem.fuse(h, m, fusedem.FusionParams.preset(name))
        rs = {e: np.corrcoef(auto.maps[e].ravel(), ref.maps[e].ravel())[0, 1] for e in m}
        print(f"{name}: {auto.autotune.summary()}")
        print("  r(auto, preset): " + ", ".join(f"{e} {r:.3f}" for e, r in rs.items()))
    print()


def cost_table() -> None:
    ph = P.make("lattice", (256, 256), seed=5)
    acq = P.measure(ph, 8, seed=1005)
    h, m = tutorials()["dysco3"]
    for label, (hh, mm) in (("DyScO3 256² (masking)", (h, m)),
                            ("lattice 256² (thinning)", (acq.haadf, acq.maps))):
        fusedem.fuse(hh, mm)
        tf, ta = [], []
        for _ in range(3):
            t = time.perf_counter()
            fusedem.fuse(hh, mm)
            tf.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = fusedem.autotune(hh, mm)
            ta.append(time.perf_counter() - t)
        f, a = np.median(tf), np.median(ta)
        print(f"{label}: fuse {f:.3f} s, autotune {a:.2f} s = {a / f:.0f} fuse-times "
              f"({r.n_solves} solves, {len(r.candidates)} candidates)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="64² phantom cases only")
    ap.add_argument("--cases", choices=("study", "quick", "bench"), default="study",
                    help="phantom cases: the 16 of the study (default), its 8 at 64², or "
                    "bench_quality's 8 (seed 101)")
    ap.add_argument("--phantoms-only", action="store_true", help="table 1 only")
    args = ap.parse_args()
    phantom_table("quick" if args.quick else args.cases)
    if not args.phantoms_only:
        tutorial_table()
        cost_table()


if __name__ == "__main__":
    main()
