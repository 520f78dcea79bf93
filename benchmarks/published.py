"""The published implementations, for quality benchmarks only (never imported by fusedem).

* :func:`tutorial_fuse` re-states, in plain NumPy, the algorithm of the open
  tutorial "Fused Multi-Modal Electron Microscopy - A Beginner's Guide"
  (msa-em/fused-multi-modal-em, MIT): its notebooks' main loop and the TV
  denoiser of its ``fusion_utils.tvlib.fgp_tv``, quirks included, so that the
  benchmark measures what that tutorial computes. Written here from a reading of
  that code; checked against the tutorial's own outputs on DyScO3
  (``python benchmarks/published.py``).
* :func:`mmf_grid` runs PyPI ``multimodal-fusion==0.6.0`` (``DataFusion.run``)
  in its own virtual environment (``.venv-published``, installed on first use by
  bench_solver's helper) in a subprocess, over a list of parameter points.

What the two TV steps do (and fusedem's FGP, for comparison), per outer iteration:

    tutorial tvlib.fgp_tv   FGP with momentum, x >= 0 inside the loop, ANISOTROPIC
                            projection (|p| <= 1, |q| <= 1), n dual updates; its
                            L operator drops the first and last interior row
                            differences and the last column difference
    multimodal-fusion 0.6   C++ ctvlib.fgp_tv: NO momentum (plain GP), no x >= 0
                            inside the loop (only at the end), isotropic projection,
                            and it returns the primal of the duals BEFORE the last
                            update: n_iter_tv = n gives n - 1 effective dual steps
                            (n = 1 is no TV at all)
    fusedem (fgp)           FGP with momentum, x >= 0 inside, isotropic, n updates
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    a = a - a.min()
    return a / a.max()


def _tutorial_L(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The tutorial's L(p, q) on an (ny, nx) image; p (ny-1, nx), q (ny, nx-1).

    Like the tutorial it zeroes p's first and last rows in place (they stay out of
    every later use) and ignores q's first column.
    """
    p[0, :] = 0.0
    p[-1, :] = 0.0
    ny, nx = q.shape[0], p.shape[1]
    pp = np.zeros((ny, nx))
    pp[:-1] = p
    qq = np.zeros((ny, nx))
    qq[:, :-1] = q
    qq[:, 0] = 0.0
    out = pp + qq
    out[:-1] -= pp[1:]
    out[:, :-1] -= qq[:, 1:]
    return out


def _tutorial_Lt(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adjoint of :func:`_tutorial_L` (up to the zeroed entries): backward
    differences of x's first ny-1 rows / nx-1 columns, wrapping at index 0."""
    xr = x[:-1, :]
    xc = x[:, :-1]
    return xr - np.roll(xr, 1, axis=0), xc - np.roll(xc, 1, axis=1)


def tutorial_tv(y: np.ndarray, lam: float, n_iter: int) -> np.ndarray:
    """The tutorial's TV denoiser of a 2-D image y (its tvlib.fgp_tv)."""
    ny, nx = y.shape
    p, q = np.zeros((ny - 1, nx)), np.zeros((ny, nx - 1))
    p_old, q_old = p.copy(), q.copy()
    t = 1.0
    c = 1.0 / (8.0 * lam)
    for _ in range(n_iter):
        x = np.clip(y - lam * _tutorial_L(p, q), 0, None)
        dp, dq = _tutorial_Lt(x)
        p = np.clip(p + c * dp, -1, 1)  # anisotropic projection
        q = np.clip(q + c * dq, -1, 1)
        t_next = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        a = (t - 1) / t_next
        p, p_old = p + a * (p - p_old), p
        q, q_old = q + a * (q - q_old), q
        t = t_next
    return np.clip(y - lam * _tutorial_L(p, q), 0, None)


def tutorial_fuse(haadf: np.ndarray, maps: Mapping[str, np.ndarray], z: Sequence[float],
                  lambda_chem: float, lambda_tv: float, eps: float, n_iter: int = 30,
                  n_iter_tv: int = 3, gamma: float = 1.6,
                  background_threshold: float | None = None) -> dict[str, np.ndarray]:
    """The tutorial's main loop; returns element -> (ny, nx) float64 in normalised units.

    Channel weights are the tutorial's method 1, Z_i / mean(Z), stored as float16
    as the tutorial's measurement matrix does; lambda_HAADF = 1 / n.
    """
    bh = _normalise(haadf)
    b = np.stack([_normalise(m) for m in maps.values()])
    zz = np.asarray(z, np.float64)
    w = np.float16(zz / zz.mean()).astype(np.float64)[:, None, None]
    lam_h = 1.0 / len(zz)
    x = b.copy()
    if background_threshold is not None:  # the initial iterate only; b stays as measured
        x[x < background_threshold] = 0.0
    for _ in range(n_iter):
        res = np.sum(w * x**gamma, axis=0) - bh
        x = x - (gamma * x ** (gamma - 1) * lam_h * w * res + lambda_chem * (1 - b / (x + eps)))
        x[x < 0] = 0
        if lambda_tv > 0:
            x = np.stack([tutorial_tv(xi, lambda_tv, n_iter_tv) for xi in x])
    return dict(zip(maps, x))


_MMF_SCRIPT = textwrap.dedent(
    """
    import io, json, sys, contextlib
    import numpy as np
    from multimodal_fusion import DataFusion
    d = np.load(sys.argv[1])
    points = json.loads(open(sys.argv[2]).read())
    elements = [str(e) for e in d["elements"]]
    df = DataFusion(elements, gamma=float(d["gamma"]))
    df.load_chemical_maps({e: d["map_" + e].astype(np.float64).copy() for e in elements}, method=1)
    df.load_haadf(d["haadf"].astype(np.float64).copy())
    out = []
    for pt in points:
        with contextlib.redirect_stderr(io.StringIO()):
            df.run(nIter=pt["n_iter"], lambdaEDS=pt["lambda_chem"], lambdaTV=pt["lambda_tv"],
                   ng=pt["n_iter_tv"], bkg=pt["eps"], plot_images=False, plot_convergence=False)
        r = df.get_results()
        out.append(np.stack([np.asarray(r[e], np.float32) for e in elements]))
    np.save(sys.argv[3], np.stack(out))
    """
)


def mmf_python() -> Path | None:
    """The Python of .venv-published (installed on first use), or None."""
    from bench_solver import published_python

    return published_python()


def mmf_grid(haadf: np.ndarray, maps: Mapping[str, np.ndarray], points: Sequence[dict],
             gamma: float = 1.6, py: Path | None = None) -> np.ndarray:
    """multimodal-fusion 0.6.0 at each parameter point (keys lambda_chem, lambda_tv,
    eps, n_iter, n_iter_tv); returns (n_points, n_elements, ny, nx) float32."""
    py = py or mmf_python()
    if py is None:
        raise RuntimeError("multimodal-fusion 0.6.0 is not available")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "in.npz"
        pts = Path(tmp) / "points.json"
        out = Path(tmp) / "out.npy"
        np.savez(data, haadf=haadf, elements=np.array(list(maps)), gamma=gamma,
                 **{"map_" + k: v for k, v in maps.items()})
        pts.write_text(json.dumps(list(points)))
        subprocess.run([str(py), "-c", _MMF_SCRIPT, str(data), str(pts), str(out)],
                       check=True, capture_output=True, text=True)
        return np.load(out)


def _check_against_tutorial_outputs() -> None:
    """Print how closely :func:`tutorial_fuse` reproduces the tutorial's own outputs."""
    root = Path(__file__).resolve().parents[1]
    pub = root.parent / "shared/data/tutorial/published_algorithm_outputs"
    import h5py

    d = np.load(root / "src/fusedem/data/PTO_Trilayer_dataset.npz")
    cases = [("DyScO3", d["HAADF"], {k: d[k] for k in ("Sc", "Dy", "O")}, (21, 66, 8),
              dict(lambda_chem=0.08, lambda_tv=0.15, eps=0.24, n_iter_tv=3),
              "DyScO3_tutorial_params.npz")]
    with h5py.File(root / "src/fusedem/data/Co3O4_Mn3O4.h5", "r") as f:
        cases.append(("Co3O4-Mn3O4", f["HAADF"][()], {k: f[k][()] for k in ("Co", "Mn", "O")},
                      (27, 25, 8), dict(lambda_chem=0.006, lambda_tv=0.022, eps=0.01, n_iter_tv=6,
                                        background_threshold=0.2),
                      "Co3O4_Mn3O4_tutorial_params.npz"))
    for name, h, m, z, kw, file in cases:
        if not (pub / file).exists():
            print(f"{name}: published outputs not found at {pub}")
            continue
        ref = np.load(pub / file)
        out = tutorial_fuse(h, m, z, **kw)
        for k in m:
            r = np.corrcoef(out[k].ravel(), ref[k].ravel())[0, 1]
            print(f"{name} {k}: r = {r:.6f}, max |diff| = {np.abs(out[k] - ref[k]).max():.2e}")


if __name__ == "__main__":
    _check_against_tutorial_outputs()
