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


def _write_hspy(path, cube, elements):
    from rsciio.hspy import file_writer

    ny, nx, ne = cube.shape
    sig = {"data": cube, "axes": [
        {"name": "y", "size": ny, "scale": 2.0, "offset": 0.0, "units": "nm", "navigate": True},
        {"name": "x", "size": nx, "scale": 2.0, "offset": 0.0, "units": "nm", "navigate": True},
        {"name": "Energy loss", "size": ne, "scale": AXIS.scale, "offset": AXIS.offset,
         "units": "eV", "navigate": False}],
        "metadata": {"General": {"title": "EELS SI"}, "Signal": {"signal_type": "EELS"},
                     "Sample": {"elements": list(elements)}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
        "learning_results": {}, "models": {}, "package_info": {"name": "test", "version": "0"}}
    file_writer(str(path), sig, show_progressbar=False)


def test_hspy_eels_file_opens_with_edge_maps(tmp_path):
    pytest.importorskip("rsciio.hspy")
    import fusedem.io

    truth = _truth((12, 14))
    cube = _cube(truth, dose=5.0, seed=3)
    _write_hspy(tmp_path / "si.hspy", cube, ["C", "Fe"])
    ds = fusedem.io.load(tmp_path / "si.hspy")
    si = ds.spectrum_images[0]
    assert si.metadata["signal_type"] == "EELS" and si.energy_axis["units"] == "eV"
    assert si.data.shape == (cube.shape[-1],) + cube.shape[:2]
    maps = ds.element_maps
    assert set(maps) == {"C", "Fe"}
    direct = extract_edge_maps(cube, AXIS, ["C", "Fe"])
    for el in maps:
        np.testing.assert_allclose(maps[el].data, direct.maps[el])
        assert maps[el].metadata["modality"] == "EELS" and maps[el].metadata["edge"].startswith(el)
    assert maps["C"].scale == (2.0, 2.0)


@pytest.mark.parametrize("name", ["gatan_EELS_SI_2x2.dm4", "velox_EELS_EDS_16x20.emd"])
def test_vendor_eels_spectrum_images(name):
    """Real files (test fixtures without clear edges): finite maps or a clear error."""
    from shared_data import VENDOR

    path = VENDOR / name
    if not path.exists():
        pytest.skip(f"vendor file {path} is absent")
    import fusedem.io

    ds = fusedem.io.load(path)
    sis = [ly for ly in ds.spectrum_images if ly.metadata.get("signal_type") == "EELS"]
    assert sis, "no EELS spectrum image read"
    n_ok = 0
    for si in sis:
        for el in ("N", "O", "Fe", "Cu"):
            try:
                res = extract_edge_maps(si.data, si.energy_axis, [el])
            except ValueError as exc:
                assert el in str(exc)
                continue
            assert res.maps[el].shape == si.data.shape[1:] and np.all(np.isfinite(res.maps[el]))
            n_ok += 1
    assert n_ok or name.startswith("velox")  # the Velox fixture's EELS is flat: no fit at all


def test_zspy_without_zarr_is_a_clear_error(tmp_path):
    import fusedem.io

    store = tmp_path / "si.zspy"
    store.mkdir()
    try:
        import zarr  # noqa: F401
    except ImportError:
        with pytest.raises(fusedem.io.ReadError, match="zarr"):
            fusedem.io.load(store)
    else:
        with pytest.raises(fusedem.io.ReadError, match="si.zspy"):
            fusedem.io.load(store)  # an empty store: unreadable, named
