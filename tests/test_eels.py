"""EELS edge maps: synthetic cubes with power-law backgrounds and known edge amounts."""
from __future__ import annotations

import numpy as np
import pytest

from fusedem.spectra import EnergyAxis
from fusedem.spectra.eels import edge_onsets, extract_edge_maps, plan_edges

# onsets (eV) typed from the EELS atlas, independent of xraydb
ONSET = {"C": 284.0, "Fe": 708.0}
AXIS = EnergyAxis(offset=200.0, scale=0.5, units="eV", size=1600)  # 200 … 999.5 eV
S = 3.0  # edge tail exponent of the synthetic edges


def _edge_shape(e, onset):
    return np.where(e >= onset, (np.maximum(e, onset) / onset) ** -S, 0.0)


def _truth(shape=(24, 28)):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return {"C": 20.0 + 30.0 * (xx / nx), "Fe": 5.0 + 40.0 * ((yy - ny / 2) ** 2 + (xx - nx / 2) ** 2 < 40)}


def _cube(truth, dose=1.0, seed=None):
    """Counts per channel: A·E^-r background (A, r vary) + amount × edge shape (per channel)."""
    e = AXIS.energies_kev() * 1e3
    ny, nx = next(iter(truth.values())).shape
    r = 3.0 + 0.4 * np.add.outer(np.linspace(0, 1, ny), np.linspace(-1, 1, nx))
    a = 2e3 * (1 + 0.5 * np.linspace(0, 1, ny))[:, None] * np.ones(nx)
    cube = a[..., None] * (e / 200.0)[None, None, :] ** -r[..., None]
    for el, amt in truth.items():
        cube = cube + amt[..., None] * _edge_shape(e, ONSET[el])[None, None, :]
    cube = dose * cube
    return np.random.default_rng(seed).poisson(cube).astype(np.uint32) if seed is not None else cube


def _expected(truth, res, dose=1.0):
    e = AXIS.energies_kev() * 1e3
    out = {}
    for el, amt in truth.items():
        lo, hi = res.edges[el].integration
        sl = AXIS.channels(lo / 1e3, hi / 1e3)
        out[el] = dose * amt * _edge_shape(e[sl], ONSET[el]).sum()
    return out


def test_edge_choice_and_onsets():
    assert abs(edge_onsets("Fe")["L3"] - ONSET["Fe"]) < 3
    plan = plan_edges(["C", "Fe", "O"], AXIS)
    assert plan["C"].edge == "K" and plan["Fe"].edge == "L2,3" and plan["O"].edge == "K"
    assert plan["Fe"].pre_edge[1] <= plan["Fe"].onset_ev
    hi = EnergyAxis(offset=1000.0, scale=1.0, units="eV", size=1000)
    assert plan_edges(["Dy"], hi)["Dy"].edge == "M4,5"


def test_noise_free_edges_recovered():
    truth = _truth()
    res = extract_edge_maps(_cube(truth), AXIS, ["C", "Fe"])
    exp = _expected(truth, res)
    for el in truth:
        rel = np.abs(res.maps[el] - exp[el]) / exp[el]
        assert rel.max() < 0.03, (el, rel.max())
        assert not res.failed[el].any()
        assert np.all((res.exponent[el] > 2) & (res.exponent[el] < 4.5))


def test_poisson_edges_within_noise_and_lazy_same():
    da = pytest.importorskip("dask.array")
    truth = _truth()
    noisy = _cube(truth, dose=5.0, seed=1)
    res = extract_edge_maps(noisy, AXIS, ["C", "Fe"], clip_negative=False)
    exp = _expected(truth, res, dose=5.0)
    for el in truth:
        err = res.maps[el] - exp[el]
        assert abs(err.mean()) < 0.03 * exp[el].mean(), (el, err.mean(), exp[el].mean())
    lazy = extract_edge_maps(da.from_array(noisy, chunks=(8, 8, -1)), AXIS, ["C", "Fe"],
                             clip_negative=False)
    for el in truth:
        np.testing.assert_allclose(lazy.maps[el], res.maps[el])


def test_failed_fits_are_marked_not_nan():
    truth = _truth()
    cube = _cube(truth, dose=1.0, seed=2).astype(float)
    cube[0, :3] = 0.0  # empty spectra
    cube[1, 0, :] = cube[1, 0, ::-1]  # rising background: no power law
    res = extract_edge_maps(cube, AXIS, ["Fe"])
    f = res.failed["Fe"]
    assert f[0, :3].all() and f[1, 0] and f.sum() <= 6
    assert np.all(np.isfinite(res.maps["Fe"]))
    assert res.layer_metadata("Fe")["fusedem"]["n_failed_fits"] == int(f.sum())
    assert "failed on" in res.notes[0]


def test_bad_input_is_named():
    truth = _truth((8, 8))
    cube = _cube(truth)
    with pytest.raises(ValueError, match="no edge of Dy fits the energy range"):
        extract_edge_maps(cube, AXIS, ["Dy"])
    with pytest.raises(ValueError, match="pre-edge window .* outside"):
        extract_edge_maps(cube, AXIS, ["Fe"], windows={"Fe": {"pre_edge": (100.0, 150.0)}})
    with pytest.raises(ValueError, match="does not fit the summed spectrum"):
        extract_edge_maps(np.zeros_like(cube), AXIS, ["Fe"])
