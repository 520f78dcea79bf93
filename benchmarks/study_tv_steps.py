"""Study: what the cold-start TV step does to quality (the numbers in docs/quality.md).

    nice python benchmarks/study_tv_steps.py            # all parts, a few minutes
    nice python benchmarks/study_tv_steps.py --part equivalence

Parts (phantom seed 0, noise seed 1, 96²; the seeds the solver was studied on):
  equivalence  multimodal-fusion 0.6.0 with n inner TV iterations against fusedem
               gp / fgp with n - 1 (max |difference| of the maps, PSNR)
  example      issue 10's example point (lattice, dose 32, lambda_chem 0.3,
               lambda_TV 0.5, eps 0.1, 5 inner iterations, cold)
  inner        best PSNR over lambda_chem x (lambda_TV / lambda_chem) x eps for
               n_iter_tv 1, 2, 3, 6, warm start, and n_iter 15 / 60
  per-element  one coordinate sweep of a per-element lambda_TV around the best
               common one (a NumPy statement of fusedem's fgp loop; fusedem has
               one lambda_TV for all elements)
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import fusedem  # noqa: E402
from fusedem import objective  # noqa: E402
from fusedem import phantoms as P  # noqa: E402

import published  # noqa: E402

LC = [0.001, 0.003, 0.01, 0.03, 0.1]
RATIO = [2 ** (k / 2) for k in range(-4, 7)]  # lambda_TV / lambda_chem, 0.25 .. 8
CASES = [("lattice", 2.0), ("lattice", 32.0), ("particles", 0.5), ("particles", 8.0)]


def case(kind: str, dose: float):
    ph = P.make(kind, (96, 96), 0)
    return ph, P.measure(ph, dose, seed=1)


def mean_psnr(maps, ph) -> float:
    return float(np.mean([P.psnr(maps[k], ph.truth[k]) for k in ph.truth]))


def ridge_best(ph, m, **kw) -> tuple[float, tuple]:
    best, at = -np.inf, None
    for a, r, e in itertools.product(LC, RATIO, (0.01, 0.1)):
        s = mean_psnr(fusedem.fuse(m.haadf, m.maps, lambda_chem=a, lambda_tv=a * r, eps=e,
                                   **{"warm_start_tv": False, **kw}).maps, ph)
        if s > best:
            best, at = s, (a, round(r, 2), e)
    return best, at


def part_equivalence() -> None:
    ph, m = case("lattice", 2.0)
    for n in (2, 3, 6):
        for pt in (dict(lambda_chem=0.01, lambda_tv=0.02, eps=0.01),
                   dict(lambda_chem=0.3, lambda_tv=0.5, eps=0.1)):
            pub = published.mmf_grid(m.haadf, m.maps, [dict(n_iter=30, n_iter_tv=n, **pt)])[0]
            for solver in ("gp", "fgp"):
                r = fusedem.fuse(m.haadf, m.maps, warm_start_tv=False, tv_solver=solver,
                                 n_iter_tv=n - 1, **pt)
                diff = np.abs(pub - np.stack(list(r.maps.values()))).max()
                print(f"mmf n_iter_tv {n} vs fusedem {solver} {n - 1}, lambda_chem {pt['lambda_chem']}:"
                      f" max |diff| {diff:.1e}, PSNR {mean_psnr(dict(zip(ph.truth, pub)), ph):.2f}"
                      f" vs {mean_psnr(r.maps, ph):.2f}", flush=True)


def part_example() -> None:
    ph, m = case("lattice", 32.0)
    pt = dict(lambda_chem=0.3, lambda_tv=0.5, eps=0.1, n_iter=30)
    pub = published.mmf_grid(m.haadf, m.maps, [dict(n_iter_tv=5, **pt)])[0]
    print(f"multimodal-fusion (5): {mean_psnr(dict(zip(ph.truth, pub)), ph):.2f} dB")
    for solver, n in (("fgp", 5), ("gp", 5), ("gp", 4)):
        r = fusedem.fuse(m.haadf, m.maps, warm_start_tv=False, tv_solver=solver, n_iter_tv=n, **pt)
        print(f"fusedem {solver} ({n}): {mean_psnr(r.maps, ph):.2f} dB", flush=True)


def part_inner() -> None:
    variants = [dict(n_iter_tv=n) for n in (1, 2, 3, 6)] + [
        dict(n_iter_tv=3, warm_start_tv=True), dict(n_iter_tv=10, warm_start_tv=True),
        dict(n_iter_tv=1, n_iter=15), dict(n_iter_tv=1, n_iter=60),
        dict(n_iter_tv=6, n_iter=15), dict(n_iter_tv=6, n_iter=60)]
    for kind, dose in CASES:
        ph, m = case(kind, dose)
        for kw in variants:
            b, at = ridge_best(ph, m, **kw)
            print(f"{kind} {dose:g} {kw}: best {b:.2f} at (lambda_chem, ratio, eps) {at}", flush=True)


def _tv_fgp(y: np.ndarray, lam: float, n: int) -> np.ndarray:
    """fusedem's cold FGP TV step, restated in NumPy (isotropic, x >= 0 inside)."""
    def grad(x):
        p, q = np.zeros_like(x), np.zeros_like(x)
        p[:-1] = x[:-1] - x[1:]
        q[:, :-1] = x[:, :-1] - x[:, 1:]
        return p, q

    def lop(p, q):
        out = p + q
        out[1:] -= p[:-1]
        out[:, 1:] -= q[:, :-1]
        return out

    p, q = np.zeros_like(y), np.zeros_like(y)
    r, s, t = p, q, 1.0
    for _ in range(n):
        dp, dq = grad(np.maximum(y - lam * lop(r, s), 0))
        pn, qn = r + dp / (8 * lam), s + dq / (8 * lam)
        nrm = np.maximum(1, np.hypot(pn, qn))
        pn, qn = pn / nrm, qn / nrm
        tn = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        r, s = pn + (t - 1) / tn * (pn - p), qn + (t - 1) / tn * (qn - q)
        p, q, t = pn, qn, tn
    return np.maximum(y - lam * lop(p, q), 0)


def fuse_per_element(m, z, lambda_chem, lambda_tvs, eps, n_iter_tv, n_iter=30, gamma=1.6):
    """fusedem's cold fgp loop in NumPy, with one lambda_TV per element."""
    norm = [(a - a.min()) / (a.max() - a.min()) for a in [m.haadf, *m.maps.values()]]
    bh, b = norm[0], np.stack(norm[1:])
    w = np.asarray(z, float) / np.mean(z)
    x = b.copy()
    for _ in range(n_iter):
        g = objective.grad_psi1(x, bh, w, gamma) / len(z) + lambda_chem * objective.grad_psi2(x, b, eps)
        x = np.maximum(x - g, 0)
        x = np.stack([_tv_fgp(xi, lt, n_iter_tv) for xi, lt in zip(x, lambda_tvs)])
    return dict(zip(m.maps, x))


def part_per_element() -> None:
    for (kind, dose), (lc, lt, eps, ntv) in zip(
            [("lattice", 2.0), ("particles", 8.0)], [(0.01, 0.02, 0.01, 3), (0.01, 0.01, 0.01, 6)]):
        ph, m = case(kind, dose)
        z = [ph.z[k] for k in ph.truth]
        cur = [lt] * len(z)
        best = mean_psnr(fuse_per_element(m, z, lc, cur, eps, ntv), ph)
        print(f"{kind} {dose:g}: common lambda_TV {lt}: {best:.2f} dB", flush=True)
        for e in range(len(z)):
            for f in (0.25, 0.5, 2, 4):
                c = list(cur)
                c[e] *= f
                s = mean_psnr(fuse_per_element(m, z, lc, c, eps, ntv), ph)
                if s > best:
                    best, cur = s, c
        print(f"  per element {dict(zip(ph.truth, cur))}: {best:.2f} dB", flush=True)


PARTS = {"equivalence": part_equivalence, "example": part_example, "inner": part_inner,
         "per-element": part_per_element}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=sorted(PARTS), nargs="+", default=list(PARTS))
    for name in ap.parse_args().part:
        print(f"--- {name}")
        PARTS[name]()


if __name__ == "__main__":
    main()
