"""How well fusedem.tomo.align recovers known shifts and the tilt-axis offset, and what it
buys in the reconstruction.

A phantom (n³) is projected without noise (43 HAADF tilts over ±70°, 11 chemical tilts over
±70°: different angle sets), every projection is moved by a random shift (σ px in y and x,
zero mean; the chemical tilts draw their own) plus a common axis offset along x, then the
noise is added: HAADF Poisson with
``counts`` at the brightest pixel + 1 % Gaussian read noise, chemical Poisson(dose · P x).
``align_pair`` aligns. Reported:

* RMS shift error (px) of the HAADF and chemical tilts: the residual displacement after
  correction, less what cannot be measured (a·cos θ + b·sin θ in x, a translation of the
  volume, and the mean in y), fitted per series;
* the axis error (px): the constant part of the HAADF residual along x;
* fused reconstruction PSNR (mean over elements, default TomoParams) of the misaligned,
  aligned and truly aligned (shift-free, same noise) series, each after registering the
  volume to the truth by a 3-D cross-correlation (integer + parabolic) translation.

    NUMBA_CACHE_DIR=/tmp/numba PYTHONPATH=src \
        python benchmarks/bench_tomo_align.py [n] [sigma] [offset] [max_tilt]
"""
from __future__ import annotations

import sys
import time

import numpy as np
from scipy import ndimage

from fusedem.elements import atomic_number
from fusedem.tomo import fuse_tilt_series, phantoms
from fusedem.tomo.align import align_pair, align_tilt_series, shift_image
from fusedem.tomo.metrics import psnr
from fusedem.tomo.projector import Projector

LEVELS = ((2000.0, 8.0), (200.0, 2.0), (50.0, 0.5), (20.0, 0.1))  #: (HAADF counts at peak, chemical dose)


def clean_series(kind: str, n: int, th: np.ndarray, tc: np.ndarray, f: int = 2):
    """Truth (n³) and noise-free projections on a detector f times finer (phantom built at
    f·n), HAADF scaled to a peak of 1; :func:`bin_` brings them to n."""
    truth = phantoms.make(kind, n, seed=0)
    fine = phantoms.make(kind, f * n, seed=0)
    zg = {k: atomic_number(k) ** 1.6 for k in fine}
    h = Projector(th, f * n, f * n).project(sum(fine[k] * np.float32(zg[k] / max(zg.values()))
                                                for k in fine)) / f
    Pc = Projector(tc, f * n, f * n)
    return truth, h / bin_(h, f).max(), {k: Pc.project(v) / f for k, v in fine.items()}


def bin_(stack: np.ndarray, f: int = 2) -> np.ndarray:
    n, ny, nx = stack.shape
    return stack.reshape(n, ny // f, f, nx // f, f).mean(axis=(2, 4))


def moved(stack, shifts, f: int = 2):
    """Fine projections moved by ``shifts`` (coarse pixels), binned to the coarse detector."""
    return bin_(np.stack([np.maximum(shift_image(p, f * np.asarray(d)), 0)
                          for p, d in zip(stack, shifts)]), f)


def _design(th):
    t = np.deg2rad(th)
    return np.stack([np.cos(t), np.sin(t), np.ones_like(t)], axis=1)


def moved_back(stack, shifts):
    """The oracle: a coarse (noisy) stack moved by the true shifts' inverse, as apply() would."""
    return np.stack([shift_image(p, -np.asarray(d)) for p, d in zip(stack, shifts)])


def errors(rh, th, rc, tc) -> tuple[float, float, float, float]:
    """HAADF RMS per-tilt error in y and x, axis error, chemical RMS error (y and x together), px.

    rh, rc: residual displacements (n, 2) after correction. What cannot be measured is the
    HAADF's a·cos θ + b·sin θ in x and its mean y (a translation of the volume); the axis
    error is the constant c of that fit. The chemical tilts are judged against the HAADF's
    frame (its a, b, c and mean y at the chemical angles)."""
    coef = np.linalg.lstsq(_design(th), rh[:, 1], rcond=None)[0]
    ex, ey = rh[:, 1] - _design(th) @ coef, rh[:, 0] - rh[:, 0].mean()
    cx = rc[:, 1] - _design(tc) @ coef
    cy = rc[:, 0] - rh[:, 0].mean()
    return (float(np.sqrt(np.mean(ey**2))), float(np.sqrt(np.mean(ex**2))), float(coef[2]),
            float(np.sqrt(np.mean(cx**2 + cy**2))))


def register(vols: dict, truth: dict) -> dict:
    """Volumes translated onto the truth (3-D cross-correlation of the element sums)."""
    a, b = sum(truth.values()), sum(vols.values())
    cc = np.fft.ifftn(np.fft.fftn(a - a.mean()) * np.conj(np.fft.fftn(b - b.mean()))).real
    p = np.array(np.unravel_index(int(np.argmax(cc)), cc.shape))
    sub = []
    for ax, i in enumerate(p):
        lo, hi = p.copy(), p.copy()
        lo[ax], hi[ax] = (i - 1) % cc.shape[ax], (i + 1) % cc.shape[ax]
        c0, cm, cp = cc[tuple(p)], cc[tuple(lo)], cc[tuple(hi)]
        den = cm - 2 * c0 + cp
        sub.append(0.5 * (cm - cp) / den if den < 0 else 0.0)
    d = (p + np.array(sub) + np.array(cc.shape) / 2) % np.array(cc.shape) - np.array(cc.shape) / 2
    return {k: ndimage.shift(v, d, order=1, mode="constant") for k, v in vols.items()}


def fused_psnr(h, th, maps, tc, truth) -> float:
    r = fuse_tilt_series(h, th, maps, tc)
    vols = register(r.volumes, truth)
    return float(np.mean([psnr(vols[k], truth[k]) for k in truth]))


def main(n: int = 32, sigma: float = 3.0, offset: float = 3.0, max_tilt: float = 70.0,
         kinds=phantoms.KINDS) -> None:
    th, tc = np.linspace(-max_tilt, max_tilt, 43), np.linspace(-max_tilt, max_tilt, 11)
    print(f"n = {n}, shifts σ = {sigma} px (y and x), axis offset {offset} px; 43 HAADF tilts, "
          f"11 chemical tilts (±{max_tilt:g}°); seed 0")
    print(f"{'phantom':>10} {'HAADF cts':>9} {'dose':>5} {'HAADF y/x rms':>13} {'(refine com)':>12} "
          f"{'axis err':>8} "
          f"{'chem rms':>8} {'PSNR mis':>8} {'PSNR al':>8} {'PSNR orac':>9} {'PSNR true':>9} {'align s':>7}")
    for kind in kinds:
        truth, h0, m0 = clean_series(kind, n, th, tc)
        rng = np.random.default_rng(0)
        dh = rng.normal(0, sigma, (th.size, 2))
        dc = rng.normal(0, sigma, (tc.size, 2))
        dh -= dh.mean(axis=0)
        dc -= dc.mean(axis=0)
        dh[:, 1] += offset
        dc[:, 1] += offset
        hm, mm = moved(h0, dh), {k: moved(v, dc) for k, v in m0.items()}
        for counts, dose in LEVELS:
            def noisy_h(h):
                r = np.random.default_rng(1)
                return (r.poisson(h * counts) + 0.01 * counts * r.standard_normal(h.shape)).astype(np.float32)

            def noisy_m(m):
                r = np.random.default_rng(2)
                return {k: r.poisson(dose * v).astype(np.float32) for k, v in m.items()}
            h_mis, m_mis = noisy_h(hm), noisy_m(mm)
            t0 = time.perf_counter()
            h_al, m_al, rep = align_pair(h_mis, th, m_mis, tc)
            secs = time.perf_counter() - t0
            h_y, h_x, axis_err, c_rms = errors(dh + rep.haadf.shifts, th, dc + rep.chem_shifts, tc)
            com_ref = errors(dh + align_tilt_series(h_mis, th, refine="com").shifts, th,
                             dc + rep.chem_shifts, tc)[:2]
            p_mis = fused_psnr(h_mis, th, m_mis, tc, truth)
            p_al = fused_psnr(h_al, th, m_al, tc, truth)
            p_true = fused_psnr(noisy_h(bin_(h0)), th, noisy_m({k: bin_(v) for k, v in m0.items()}),
                                tc, truth)
            p_oracle = fused_psnr(np.maximum(moved_back(h_mis, dh), 0), th,
                                  {k: np.maximum(moved_back(v, dc), 0) for k, v in m_mis.items()},
                                  tc, truth)
            print(f"{kind:>10} {counts:>9g} {dose:>5g} {h_y:>6.2f}/{h_x:<6.2f} "
                  f"{com_ref[0]:>5.2f}/{com_ref[1]:<6.2f} {axis_err:>+8.3f} {c_rms:>8.3f} "
                  f"{p_mis:>8.2f} {p_al:>8.2f} {p_oracle:>9.2f} {p_true:>9.2f} {secs:>7.2f}", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]) if a else 32, float(a[1]) if len(a) > 1 else 3.0, float(a[2]) if len(a) > 2 else 3.0,
         float(a[3]) if len(a) > 3 else 70.0)
