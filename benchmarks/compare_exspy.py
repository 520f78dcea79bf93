"""fusedem's EELS edge maps against exspy's on the synthetic cubes of tests/test_eels.py.

exspy/HyperSpy are GPL-3 and never a dependency of fusedem: install them somewhere
throwaway and point ``--site`` there, e.g.

    pip install --target /tmp/exspy-site exspy
    PYTHONPATH=src python benchmarks/compare_exspy.py --site /tmp/exspy-site

The site is appended to sys.path (after fusedem's environment, whose numpy wins).
Prints, per dose, exspy mode and element: exspy's time, the largest and mean
difference between the two maps (in units of the known edge counts), and each
map's RMS error against the truth (relative to the mean edge counts).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_eels import AXIS, _cube, _expected, _truth  # noqa: E402

from fusedem.spectra import extract_edge_maps  # noqa: E402


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", help="folder holding exspy (appended to sys.path)")
    ap.add_argument("--shape", type=int, nargs=2, default=(24, 28))
    args = ap.parse_args()
    if args.site:
        sys.path.append(args.site)
    warnings.simplefilter("ignore")
    import exspy

    e = AXIS.energies_kev() * 1e3
    truth = _truth(tuple(args.shape))
    print(f"exspy {exspy.__version__}; cube {args.shape[0]}x{args.shape[1]}x{AXIS.size}")
    print("| dose | exspy fast | edge | exspy s | fusedem s | max abs diff / edge | mean diff / mean "
          "| RMS err fusedem | RMS err exspy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dose, seed in ((1.0, None), (5.0, 1)):
        cube = _cube(truth, dose=dose, seed=seed).astype(float)
        t0 = time.perf_counter()
        ours = extract_edge_maps(cube, AXIS, list(truth), clip_negative=False)
        t_ours = time.perf_counter() - t0
        exp = _expected(truth, ours, dose)
        for fast in (False, True):
            for el, w in ours.edges.items():
                s = exspy.signals.EELSSpectrum(cube)
                ax = s.axes_manager.signal_axes[0]
                ax.offset, ax.scale, ax.units = AXIS.offset, AXIS.scale, "eV"
                pre = AXIS.channels(w.pre_edge[0] / 1e3, w.pre_edge[1] / 1e3)
                sig = AXIS.channels(w.integration[0] / 1e3, w.integration[1] / 1e3)
                t0 = time.perf_counter()
                clean = s.remove_background(signal_range=(float(e[pre.start]), float(e[pre.stop])),
                                            background_type="PowerLaw", fast=fast,
                                            show_progressbar=False)
                m = clean.isig[float(e[sig.start]):float(e[sig.stop])].integrate1D(-1).data
                t = time.perf_counter() - t0
                d = m - ours.maps[el]
                print(f"| {dose:g} | {fast} | {w.label} | {t:.2f} | {t_ours:.3f} | "
                      f"{np.max(np.abs(d) / exp[el]):.1e} | {d.mean() / exp[el].mean():+.2%} | "
                      f"{_rms(ours.maps[el] - exp[el]) / exp[el].mean():.2%} | "
                      f"{_rms(m - exp[el]) / exp[el].mean():.2%} |")


if __name__ == "__main__":
    main()
