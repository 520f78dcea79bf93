"""Quality on ground truth: fusedem against the published implementations.

    python benchmarks/bench_quality.py --quick
    nice python benchmarks/bench_quality.py --size 96 --seeds 101

For each case (phantom kind x dose, fusedem.phantoms) prints the mean over
elements of PSNR (dB) and SSIM for: the raw maps; the best point of a stated
parameter grid for multimodal-fusion 0.6.0 ("mmf", PyPI, run in .venv-published),
for the tutorial's algorithm as published ("tutorial", benchmarks/published.py),
and for fusedem (each of ``--variants``); fusedem's automatic choice
(``params="auto"``, where fusedem has ``autotune``); and mmf at the two
tutorials' parameter sets (the better of the two). Every method sees the same
inputs (raw counts; each normalises them itself) and a cold TV start.

"maxdrop" is the largest PSNR difference between neighbouring points of the
lambda_chem x lambda_TV grid (any eps / n_iter_tv slice): how spiky the quality
surface is. Results are also written as JSON to benchmarks/results/.

The seeds used here (default 101) are not those the solver was studied on (0, 1).
Phantom seed s, noise seed s + 1000.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import fusedem  # noqa: E402
from fusedem import FusionParams  # noqa: E402
from fusedem import phantoms as P  # noqa: E402

import published  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: (mean PSNR, mean SSIM) of the published codes per case and grid point, kept between
#: runs: they do not change, and they are most of a run's time
CACHE = RESULTS / "bench_quality_published_cache.json"
GRID = {
    "lambda_chem": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
    "lambda_tv": [0.0015, 0.005, 0.015, 0.05, 0.15, 0.5],
    "eps": [0.01, 0.1],
    "n_iter_tv": [3, 6],
}
QUICK_GRID = {"lambda_chem": [0.003, 0.01, 0.03, 0.1], "lambda_tv": [0.005, 0.015, 0.05, 0.15],
              "eps": [0.1], "n_iter_tv": [3]}
N_ITER = 30
TUTORIAL_POINTS = [  # (lambda_chem, lambda_tv, eps, n_iter_tv) of the two tutorials
    (0.08, 0.15, 0.24, 3), (0.006, 0.022, 0.01, 6)]


KEYS = ("lambda_chem", "lambda_tv", "eps", "n_iter_tv", "n_iter")


def grid_points(grid: dict) -> list[dict]:
    """Every point of ``grid`` (n_iter: the grid's list, default [N_ITER])."""
    g = {"n_iter": [N_ITER], **grid}
    return [dict(zip(KEYS, v)) for v in itertools.product(*(g[k] for k in KEYS))]


def score(est: dict, ph: P.Phantom) -> tuple[float, float]:
    """(mean PSNR dB, mean SSIM) over elements."""
    s = P.scores(est, ph)
    return float(np.mean([v[0] for v in s.values()])), float(np.mean([v[1] for v in s.values()]))


def max_drop(psnrs: list[float], grid: dict) -> float:
    """Largest |PSNR difference| between lambda-grid neighbours, over eps / n_iter_tv /
    n_iter slices."""
    a = np.array(psnrs).reshape(len(grid["lambda_chem"]), len(grid["lambda_tv"]), -1)
    d0 = np.abs(np.diff(a, axis=0)).max() if a.shape[0] > 1 else 0.0
    d1 = np.abs(np.diff(a, axis=1)).max() if a.shape[1] > 1 else 0.0
    return float(max(d0, d1))


def best(psnrs, ssims, pts) -> dict:
    i = int(np.nanargmax(psnrs))
    return {"psnr": psnrs[i], "ssim": ssims[i], "at": pts[i]}


def _parse(name: str, text: str):
    """A --variants value as the type of the FusionParams field (None defaults: float)."""
    default = getattr(FusionParams(), name)
    if isinstance(default, bool):
        return text == "True"
    return float(text) if default is None else type(default)(text)


def _scored(cache: dict, method: str, case: str, pts: list[dict], run) -> list[tuple[float, float]]:
    """Scores of ``method`` at ``pts`` from the cache, running ``run(missing points)``
    (-> estimates) for the rest."""
    keys = [f"{method}|{case}|" + json.dumps(pt, sort_keys=True) for pt in pts]
    missing = [pt for pt, k in zip(pts, keys) if k not in cache]
    if missing:
        for pt, sc in zip(missing, run(missing)):
            cache[f"{method}|{case}|" + json.dumps(pt, sort_keys=True)] = list(sc)
    return [tuple(cache[k]) for k in keys]


PER_ELEMENT_FACTORS = (0.125, 0.25, 0.5, 2.0, 4.0)


def per_element_refine(m: P.Measurement, ph: P.Phantom, start: dict, extra: dict) -> dict:
    """From a grid point of a fusedem variant (``extra``: the variant's own fields), one
    coordinate sweep over the elements of lambda_tv x PER_ELEMENT_FACTORS for that element
    alone (FusionParams.lambda_tv_elements), each change kept if it raises the mean PSNR
    (scored on the truth, as the grid is)."""
    at = {**start["at"], **extra}
    lam = at["lambda_tv"]
    per: dict[str, float] = {}
    best_p, best_s = start["psnr"], start["ssim"]
    for el in ph.truth:
        keep = None
        for f in PER_ELEMENT_FACTORS:
            trial = {**per, el: lam * f}
            p, s = score(fusedem.fuse(m.haadf, m.maps, warm_start_tv=False,
                                      lambda_tv_elements=trial, **at).maps, ph)
            if p > best_p:
                best_p, best_s, keep = p, s, trial
        per = keep or per
    return {"psnr": best_p, "ssim": best_s, "at": {**at, "lambda_tv_elements": per}}


def refine_starts(scored: list[tuple[float, float]], pts: list[dict], k: int) -> list[dict]:
    """The ``k`` best grid points of one method as start points (psnr, ssim, at)."""
    order = np.argsort([-s[0] for s in scored])[:k]
    return [{"psnr": scored[i][0], "ssim": scored[i][1], "at": pts[i]} for i in order]


def run_case(kind: str, dose: float, seed: int, size: int, grid: dict, variants: list[str],
             use_mmf: bool, use_tutorial: bool, cache: dict, use_auto: bool = True,
             per_element: int = 0) -> dict:
    ph = P.make(kind, (size, size), seed)
    m = P.measure(ph, dose, seed=seed + 1000)
    z = [ph.z[k] for k in ph.truth]
    pts = grid_points(grid)
    case = f"{kind}|{dose:g}|{seed}|{size}"
    out: dict = {"kind": kind, "dose": dose, "seed": seed, "size": size}
    out["raw"] = dict(zip(("psnr", "ssim"), score(m.maps, ph)))
    scored: dict[str, list[tuple[float, float]]] = {}

    def mmf(points):
        return [score(dict(zip(ph.truth, s)), ph) for s in published.mmf_grid(m.haadf, m.maps, points)]

    if use_mmf:
        scored["mmf"] = _scored(cache, "mmf", case, pts, mmf)
        tut_pts = [dict(lambda_chem=a, lambda_tv=b, eps=e, n_iter_tv=n, n_iter=N_ITER)
                   for a, b, e, n in TUTORIAL_POINTS]
        sc = _scored(cache, "mmf", case, tut_pts, mmf)
        k = int(np.argmax([s[0] for s in sc]))
        out["mmf@tutorial"] = {"psnr": sc[k][0], "ssim": sc[k][1], "at": TUTORIAL_POINTS[k]}
    if use_tutorial:
        scored["tutorial"] = _scored(cache, "tutorial", case, pts, lambda points: [
            score(published.tutorial_fuse(m.haadf, m.maps, z, **pt), ph) for pt in points])
    extras: dict[str, dict] = {}
    for v in variants:
        extra = {k: _parse(k, x) for k, x in (kv.split("=") for kv in v.split(",") if "=" in kv)}
        extras["fusedem" + (f"[{v}]" if v else "")] = extra
        scored["fusedem" + (f"[{v}]" if v else "")] = [score(
            fusedem.fuse(m.haadf, m.maps, warm_start_tv=False, **{**pt, **extra}).maps, ph)
            for pt in pts]
    for name, sc in scored.items():
        ps, ss = [s[0] for s in sc], [s[1] for s in sc]
        out[name] = {**best(ps, ss, pts), "maxdrop": max_drop(ps, grid), "grid_psnr": ps}
    fus = [n for n in out if n.startswith("fusedem")]
    if per_element and fus:
        out["fusedem+el"] = max((per_element_refine(m, ph, start, extras[n]) for n in fus
                                 for start in refine_starts(scored[n], pts, per_element)),
                                key=lambda r: r["psnr"])
    if use_auto and hasattr(fusedem, "autotune"):
        t = time.perf_counter()
        res = fusedem.fuse(m.haadf, m.maps, params="auto")
        p, s = score(res.maps, ph)
        out["auto"] = {"psnr": p, "ssim": s, "seconds": time.perf_counter() - t,
                       "at": res.params.to_dict()}
    return out


def fmt(r: dict | None, drop: bool = True) -> str:
    if r is None:
        return f"{'n/a':>17}" + (f" {'':>5}" if drop else "")
    s = f"{r['psnr']:6.2f} {r['ssim']:.3f}"
    s = f"{s:>17}"
    if drop:
        s += f" {r['maxdrop']:5.2f}" if "maxdrop" in r else f" {'':>5}"
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one small case, a 4 x 4 grid")
    ap.add_argument("--kinds", nargs="+", default=list(P.KINDS))
    ap.add_argument("--doses", nargs="+", type=float, default=[0.5, 2.0, 8.0, 32.0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[101])
    ap.add_argument("--size", type=int, default=96, help="image side in pixels")
    ap.add_argument("--variants", nargs="+", default=[""],
                    help="fusedem parameter overrides per variant, e.g. '' 'tv_solver=gp'")
    ap.add_argument("--n-iter-tv", nargs="+", type=int,
                    help=f"TV inner iterations of the grid (default {GRID['n_iter_tv']})")
    ap.add_argument("--n-iters", nargs="+", type=int,
                    help=f"outer iterations as a grid dimension, for every method (default {N_ITER})")
    ap.add_argument("--no-mmf", action="store_true", help="skip multimodal-fusion 0.6.0")
    ap.add_argument("--no-tutorial", action="store_true", help="skip the tutorial's algorithm")
    ap.add_argument("--no-auto", action="store_true", help="skip fusedem's automatic choice")
    ap.add_argument("--per-element", type=int, nargs="?", const=1, default=0, metavar="K",
                    help="also refine the K best grid points of each fusedem variant "
                         "(default 1) with a lambda_tv per element")
    args = ap.parse_args()
    grid = dict(QUICK_GRID if args.quick else GRID)
    if args.n_iter_tv:
        grid["n_iter_tv"] = args.n_iter_tv
    if args.n_iters:
        grid["n_iter"] = args.n_iters
    cases = [("lattice", 8.0, args.seeds[0])] if args.quick else \
        [(k, d, s) for k in args.kinds for d in args.doses for s in args.seeds]
    size = 64 if args.quick else args.size
    use_mmf = not args.no_mmf and published.mmf_python() is not None
    print(f"grid ({len(grid_points(grid))} points, outer iterations {grid.get('n_iter', [N_ITER])}, "
          "cold TV start): "
          + "; ".join(f"{k} {v}" for k, v in grid.items()))
    print(f"images {size}², phantom seeds {sorted({c[2] for c in cases})} (noise seed + 1000); "
          "PSNR dB / SSIM are means over elements; maxdrop = largest PSNR step between grid neighbours")
    names = (["mmf"] if use_mmf else []) + ([] if args.no_tutorial else ["tutorial"]) + \
        ["fusedem" + (f"[{v}]" if v else "") for v in args.variants]
    el = ["fusedem+el"] if args.per_element else []
    head = f"{'case':<22} {'raw':>17} " + " ".join(f"{n[:17]:>17} {'drop':>5}" for n in names) + \
        "".join(f" {n:>17}" for n in el) + f" {'fusedem auto':>17} {'mmf@tutorial':>17}"
    print(head)
    print("-" * len(head))
    rows = []
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    for kind, dose, seed in cases:
        r = run_case(kind, dose, seed, size, grid, args.variants, use_mmf, not args.no_tutorial,
                     cache, not args.no_auto, args.per_element)
        RESULTS.mkdir(exist_ok=True)
        CACHE.write_text(json.dumps(cache))
        rows.append(r)
        print(f"{kind + ' ' + format(dose, 'g') + ' s' + str(seed):<22} {fmt(r['raw'], False)} "
              + " ".join(fmt(r.get(n)) for n in names)
              + "".join(" " + fmt(r.get(n), False) for n in el)
              + f" {fmt(r.get('auto'), False)} {fmt(r.get('mmf@tutorial'), False)}", flush=True)
    print("\nbest points (lambda_chem, lambda_tv, eps, n_iter_tv, n_iter):")
    for r in rows:
        at = {n: tuple(r[n]["at"][k] for k in KEYS)
              for n in names}
        print(f"  {r['kind']} {r['dose']:g} s{r['seed']}: " + "; ".join(f"{n} {v}" for n, v in at.items())
              + "".join(f"; {n} per element {r[n]['at']['lambda_tv_elements']}" for n in el))
    pub = [n for n in ("mmf", "tutorial") if n in names]
    fus = [n for n in names if n.startswith("fusedem")] + el
    if pub and fus:
        print("\nfusedem's best (any variant) - the published best (dB); auto - fusedem's best:")
        for r in rows:
            pb = max(r[n]["psnr"] for n in pub)
            fb = max(fus, key=lambda n: r[n]["psnr"])
            line = (f"  {r['kind']} {r['dose']:g} s{r['seed']}: {r[fb]['psnr'] - pb:+.2f} "
                    f"({fb} {r[fb]['psnr']:.2f} vs {max(pub, key=lambda n: r[n]['psnr'])} {pb:.2f})")
            if "auto" in r:
                line += f"; auto {r['auto']['psnr'] - r[fb]['psnr']:+.2f}"
            print(line)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench_quality_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"grid": grid, "n_iter": N_ITER, "rows": rows}, indent=1, default=float))
    print(f"\nsaved {path.relative_to(Path(__file__).resolve().parents[1])}")


if __name__ == "__main__":
    main()
