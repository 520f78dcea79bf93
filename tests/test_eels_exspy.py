"""Cross-check of fusedem's EELS edge maps against exspy (GPL-3: test-only, optional).

Same synthetic cube, same windows: fusedem's two-area power-law fit + channel sum
against exspy's ``EELSSpectrum.remove_background(background_type="PowerLaw")``
followed by ``integrate1D`` over the integration window. Skipped when exspy is
not installed (it is never a dependency of fusedem, not even of ``testing``).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fusedem.spectra import extract_edge_maps

sys.path.insert(0, str(Path(__file__).parent))
from test_eels import AXIS, _cube, _expected, _truth  # noqa: E402

exspy = pytest.importorskip("exspy", reason="exspy not installed")

SHAPE = (16, 18)


def _exspy_maps(cube: np.ndarray, edges, *, fast: bool) -> dict[str, np.ndarray]:
    """exspy background removal (power law over fusedem's pre-edge channels) + integration."""
    e = AXIS.energies_kev() * 1e3
    out = {}
    for el, w in edges.items():
        s = exspy.signals.EELSSpectrum(cube.astype(float))
        ax = s.axes_manager.signal_axes[0]
        ax.offset, ax.scale, ax.units = AXIS.offset, AXIS.scale, "eV"
        pre = AXIS.channels(w.pre_edge[0] / 1e3, w.pre_edge[1] / 1e3)
        sig = AXIS.channels(w.integration[0] / 1e3, w.integration[1] / 1e3)
        # HyperSpy ranges are [start, stop) in axis values: the same channels as fusedem's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean = s.remove_background(signal_range=(float(e[pre.start]), float(e[pre.stop])),
                                        background_type="PowerLaw", fast=fast,
                                        show_progressbar=False)
            window = clean.isig[float(e[sig.start]):float(e[sig.stop])]
        assert window.data.shape[-1] == sig.stop - sig.start
        out[el] = np.asarray(window.integrate1D(-1).data)
    return out


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def test_noise_free_cube_agrees_with_exspy_least_squares():
    truth = _truth(SHAPE)
    cube = _cube(truth)
    ours = extract_edge_maps(cube, AXIS, ["C", "Fe"], clip_negative=False)
    theirs = _exspy_maps(cube, ours.edges, fast=False)
    exp = _expected(truth, ours)
    for el in truth:
        # measured: 1e-5 (C K), 2e-5 (Fe L2,3) of the edge counts
        assert np.max(np.abs(theirs[el] - ours.maps[el]) / exp[el]) < 1e-3, el


def test_noise_free_exact_two_area_beats_exspys_fast_estimate():
    """exspy's fast=True uses the continuous two-area formula; fusedem solves it on the channels."""
    truth = _truth(SHAPE)
    cube = _cube(truth)
    ours = extract_edge_maps(cube, AXIS, ["C", "Fe"], clip_negative=False)
    fast = _exspy_maps(cube, ours.edges, fast=True)
    exp = _expected(truth, ours)
    for el in truth:
        err_ours = np.max(np.abs(ours.maps[el] - exp[el]) / exp[el])
        err_fast = np.max(np.abs(fast[el] - exp[el]) / exp[el])
        assert err_ours < 0.01 and err_ours < err_fast, (el, err_ours, err_fast)
        assert abs(fast[el].mean() / ours.maps[el].mean() - 1) < 0.06, el  # measured 4.5 %, 0.4 %


def test_poisson_cube_agrees_with_exspy_within_the_noise():
    truth = _truth(SHAPE)
    cube = _cube(truth, dose=5.0, seed=1)
    ours = extract_edge_maps(cube, AXIS, ["C", "Fe"], clip_negative=False)
    theirs = _exspy_maps(cube, ours.edges, fast=False)
    exp = _expected(truth, ours, dose=5.0)
    for el in truth:
        diff = theirs[el] - ours.maps[el]
        assert abs(diff.mean()) < 0.01 * exp[el].mean(), el  # no bias between the two
        assert np.corrcoef(theirs[el].ravel(), ours.maps[el].ravel())[0, 1] > 0.95, el
        err_ours, err_theirs = _rms(ours.maps[el] - exp[el]), _rms(theirs[el] - exp[el])
        assert err_ours < 1.3 * err_theirs, (el, err_ours, err_theirs)
        assert _rms(diff) < err_ours, el  # the two differ by less than either's noise
