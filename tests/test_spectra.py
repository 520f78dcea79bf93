"""fusedem.spectra: synthetic spectrum images with known amounts, vendor files, bad input."""
from __future__ import annotations

from math import erf, log, sqrt
from pathlib import Path

import numpy as np
import pytest

from fusedem.spectra import (
    EnergyAxis,
    bin_spatial,
    eds_settings,
    extract_maps,
    fwhm_kev,
    plan_lines,
    sum_spectrum,
)

from shared_data import VENDOR  # noqa: E402

# Reference energies (keV), typed from the X-ray data booklet, independent of
# the database the code uses: (Kα, Kβ).
LINES = {"O": (0.525, None), "Ti": (4.511, 4.932), "Fe": (6.404, 7.058), "Cu": (8.048, 8.905)}
KBETA = 0.13  # Kβ/Kα ratio used by the synthetic spectra
#: Fraction of a Gaussian inside ±1 FWHM: the maps hold the counts in the window.
IN_WINDOW = erf(sqrt(4 * log(2)))  # ≈ 0.9815
AXIS = EnergyAxis(offset=-0.2, scale=0.01, units="keV", size=1100)  # -0.2 … 10.79 keV


def _truth(ny: int = 40, nx: int = 48) -> dict[str, np.ndarray]:
    """Known per-pixel line counts (Kα area) with different spatial patterns."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    disk = ((yy - ny / 2) ** 2 + (xx - nx / 3) ** 2 < (ny / 4) ** 2).astype(float)
    return {
        "O": 300.0 + 200.0 * (xx / nx),
        "Ti": 50.0 + 600.0 * disk,
        "Fe": 40.0 + 400.0 * (yy / ny),
        "Cu": 60.0 + 300.0 * (np.sin(xx / 4.0) > 0),
    }


def _synthetic_cube(truth: dict[str, np.ndarray], noise: bool, seed: int = 0) -> np.ndarray:
    """(ny, nx, n) expected or Poisson-sampled counts: Gaussian lines on a continuum."""
    e = AXIS.energies_kev()
    ny, nx = next(iter(truth.values())).shape
    continuum = 8.0 * np.clip(e, 0, None) * np.exp(-np.clip(e, 0, None) / 2.5) + 0.5
    mass = 1.0 + 0.5 * np.add.outer(np.arange(ny) / ny, np.arange(nx) / nx)
    cube = mass[..., None] * continuum[None, None, :]
    for el, amount in truth.items():
        ka, kb = LINES[el]
        for energy, frac in ((ka, 1.0), (kb, KBETA)):
            if energy is None:
                continue
            sigma = fwhm_kev(energy) / (2 * sqrt(2 * log(2)))
            g = np.exp(-0.5 * ((e - energy) / sigma) ** 2) * AXIS.scale_kev / (sigma * sqrt(2 * np.pi))
            cube = cube + frac * amount[..., None] * g[None, None, :]
    if noise:
        return np.random.default_rng(seed).poisson(cube).astype(np.uint16)
    return cube


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    return _truth()


@pytest.fixture(scope="module")
def noisy(truth) -> np.ndarray:
    return _synthetic_cube(truth, noise=True)


def test_expected_spectra_recover_amounts_within_2_percent(truth):
    """No noise: only the method's bias (window fraction, linear background) is left."""
    cube = _synthetic_cube(truth, noise=False)
    res = extract_maps(cube, AXIS, list(truth), beam_energy_kv=200)
    assert res.elements == ["O", "Ti", "Fe", "Cu"]
    assert {e: lw.line for e, lw in res.lines.items()} == dict.fromkeys(truth, "Ka")
    for el, amount in truth.items():
        assert abs(res.lines[el].energy_kev - LINES[el][0]) < 0.01
        rel = res.maps[el] / (IN_WINDOW * amount) - 1.0
        assert np.abs(rel).max() < 0.02, (el, np.abs(rel).max())


def test_poisson_spectra_recover_amounts_within_noise(truth, noisy):
    """Poisson noise: means within 1.5 %, per-pixel errors at the Poisson level."""
    res = extract_maps(noisy, AXIS, list(truth), beam_energy_kv=200, clip_negative=False)
    expected_cube = _synthetic_cube(truth, noise=False)
    for el, amount in truth.items():
        m, want = res.maps[el], IN_WINDOW * amount
        assert m.shape == amount.shape and m.dtype == np.float64
        assert abs(m.mean() / want.mean() - 1.0) < 0.015, el
        # variance of (window sum - background): at least the window's counts
        sl = AXIS.channels(*res.lines[el].integration)
        var = expected_cube[:, :, sl].sum(-1)
        z = (m - want) / np.sqrt(var)
        assert 0.8 < z.std() < 1.6, (el, z.std())  # noise, not bias
        assert np.corrcoef(m.ravel(), amount.ravel())[0, 1] > 0.9, el


def test_counts_units_and_metadata(truth, noisy):
    res = extract_maps(noisy, AXIS, ["Fe", "fe", "Cu-K"], beam_energy_kv=200)
    assert res.elements == ["Fe", "Cu"]  # canonical symbols, duplicates dropped
    assert all((m >= 0).all() for m in res.maps.values()) and res.clipped
    md = res.layer_metadata("Fe", source="x.bcf")["fusedem"]
    assert md["role"] == "element" and md["Z"] == 26 and md["line"] == "Fe_Ka"
    w = md["windows"]
    lo, hi = w["integration_kev"]
    assert lo < 6.404 < hi and hi - lo == pytest.approx(2 * w["fwhm_kev"])
    left, right = w["background_kev"]
    assert left[1] < lo and right[0] > hi
    assert res.stack().shape == (2, 40, 48)


def test_energy_axis_in_ev_and_energy_axis_first(truth, noisy):
    ref = extract_maps(noisy, AXIS, ["Ti", "O"])
    ev = EnergyAxis(offset=-200.0, scale=10.0, units="eV")
    by_ev = extract_maps(noisy, ev, ["Ti", "O"])
    first = extract_maps(np.moveaxis(noisy, -1, 0), {"offset": -0.2, "scale": 0.01,
                                                     "units": "keV", "axis": 0}, ["Ti", "O"])
    for el in ("Ti", "O"):
        np.testing.assert_allclose(by_ev.maps[el], ref.maps[el])
        np.testing.assert_allclose(first.maps[el], ref.maps[el])


def test_dask_input_gives_same_maps_lazily(truth, noisy):
    import dask.array as da
    lazy = da.from_array(noisy, chunks=(20, 24, 256))
    a = extract_maps(noisy, AXIS, list(truth), binning=2)
    b = extract_maps(lazy, AXIS, list(truth), binning=2)
    for el in truth:
        assert isinstance(b.maps[el], np.ndarray)
        np.testing.assert_allclose(b.maps[el], a.maps[el])
    np.testing.assert_allclose(sum_spectrum(lazy), sum_spectrum(noisy))
    binned = bin_spatial(lazy, 4)
    assert binned.shape == (10, 12, 1100) and not isinstance(binned, np.ndarray)
    np.testing.assert_array_equal(np.asarray(binned), bin_spatial(noisy, 4))


def test_binning_sums_counts(noisy):
    b = bin_spatial(noisy[:39, :47], 2)  # odd edges are dropped
    assert b.shape == (19, 23, 1100) and b.dtype == np.int64
    assert b.sum() == noisy[:38, :46].astype(np.int64).sum()
    one = extract_maps(noisy, AXIS, ["Ti"], clip_negative=False).maps["Ti"]
    two = extract_maps(noisy, AXIS, ["Ti"], clip_negative=False, binning=2).maps["Ti"]
    np.testing.assert_allclose(two, one.reshape(20, 2, 24, 2).sum(axis=(1, 3)))
    s = sum_spectrum(noisy)
    assert s.shape == (1100,) and s.sum() == noisy.astype(np.int64).sum()


@pytest.mark.parametrize(
    ("element", "beam_kv", "top_kev", "line"),
    [
        ("Pb", 200, 20.0, "La"),  # Kα 75 keV outside the axis
        ("Pb", 15, 20.0, "Ma"),  # La 10.55 keV above E0/2
        ("Au", 20, 20.0, "La"),  # La 9.71 keV below E0/2 = 10
        ("Pd", 200, 40.0, "Ka"),  # Kα 21.2 keV inside a 40 keV axis
        ("Pd", 200, 20.0, "La"),
        ("C", None, 20.0, "Ka"),
    ],
)
def test_line_choice_convention(element, beam_kv, top_kev, line):
    axis = EnergyAxis(0.0, 0.01, "keV", size=int(top_kev / 0.01) + 1)
    assert plan_lines([element], axis, beam_energy_kv=beam_kv)[element].line == line


def test_overlapping_lines_are_marked():
    axis = EnergyAxis(0.0, 0.01, "keV", size=2001)
    plan = plan_lines(["Ti", "Ba", "Fe", "S", "Pb"], axis, beam_energy_kv=15)
    assert plan["Ti"].overlaps == ("Ba",) and plan["Ba"].overlaps == ("Ti",)
    assert plan["S"].overlaps == ("Pb",) and plan["Pb"].line == "Ma"
    assert plan["Fe"].overlaps == ()
    # Al Kα's right background window would sit on Si Kα: the pair shares its outer windows
    near = plan_lines(["Al", "Si", "Fe"], axis)
    assert near["Al"].shared_background == ("Si",) and near["Fe"].shared_background == ()
    assert near["Al"].background == near["Si"].background
    assert near["Al"].background[1][0] > near["Si"].integration[1]


def test_background_window_avoids_noise_peak():
    axis = EnergyAxis(-0.2, 0.01, "keV", size=1000)
    c = plan_lines(["C"], axis)["C"]  # C Kα 0.277 keV: left window would be < 0.19 keV
    assert c.background[0] is None and c.background[1][0] > c.integration[1]


def test_resolution_scales_windows():
    axis = EnergyAxis(0.0, 0.01, "keV", size=2001)
    assert fwhm_kev(5.8987) == pytest.approx(0.130)
    assert fwhm_kev(5.8987, 150.0) == pytest.approx(0.150)
    assert fwhm_kev(0.525) < fwhm_kev(8.04)  # grows with energy
    narrow = plan_lines(["Cu"], axis, resolution_ev=120)["Cu"]
    wide = plan_lines(["Cu"], axis, resolution_ev=160)["Cu"]
    assert np.diff(narrow.integration)[0] < np.diff(wide.integration)[0]


# ---------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors(noisy):
    with pytest.raises(ValueError, match="3-D"):
        extract_maps(noisy[:, :, 0], AXIS, ["Ti"])
    with pytest.raises(ValueError, match="3-D"):
        sum_spectrum(noisy[0, 0])
    with pytest.raises(ValueError, match="no X-ray line in the energy range"):
        extract_maps(noisy[:, :, :200], EnergyAxis(-0.2, 0.01, "keV"), ["Pb"])  # Pb Mα 2.34
    with pytest.raises(ValueError, match="no X-ray line"):
        extract_maps(noisy, AXIS, ["H"])
    with pytest.raises(ValueError, match="unknown element"):
        extract_maps(noisy, AXIS, ["Xx"])
    for bad in ({"offset": 0, "scale": 0, "units": "keV"},
                {"offset": 0, "scale": None, "units": "keV"},
                {"offset": 0, "scale": 1.0, "units": "<undefined>"},
                {"offset": 0, "scale": 1.0}):
        with pytest.raises(ValueError, match="calibrat|units"):
            extract_maps(noisy, bad, ["Ti"])
    with pytest.raises(ValueError, match="channels"):
        extract_maps(noisy, EnergyAxis(-0.2, 0.01, "keV", size=2048), ["Ti"])
    with pytest.raises(ValueError, match="binning"):
        extract_maps(noisy, AXIS, ["Ti"], binning=0)


# ---------------------------------------------------------------- vendor files
needs_vendor = pytest.mark.skipif(not VENDOR.is_dir(), reason=f"vendor data folder {VENDOR} absent")


def _spectrum_image(signals: list[dict]) -> dict:
    return next(d for d in signals if np.ndim(d["data"]) == 3)


def _read_bcf(name: str) -> dict:
    from rsciio.bruker import file_reader

    return _spectrum_image(file_reader(str(VENDOR / name), select_type=None))


def _sum_spectrum_area(si: dict, res) -> dict[str, float]:
    """Rough line area from the sum spectrum alone: (peak − local minimum) × FWHM."""
    e, s = res.energy_axis.energies_kev(), sum_spectrum(si["data"])
    out = {}
    for el, lw in res.lines.items():
        near = np.abs(e - lw.energy_kev) <= lw.fwhm_kev / 2
        wide = np.abs(e - lw.energy_kev) <= 3 * lw.fwhm_kev
        out[el] = (s[near].max() - s[wide].min()) * lw.fwhm_kev
    return out


@needs_vendor
@pytest.mark.parametrize("name", ["bruker_TEM_HAADF_EDS_64x64.bcf",
                                  "bruker_SEM_EDS_30x30_16elements.bcf"])
def test_bruker_maps(name):
    from scipy.stats import spearmanr

    si = _read_bcf(name)
    st = eds_settings(si["metadata"])
    res = extract_maps(si["data"], si["axes"][2], st["elements"], beam_energy_kv=st["beam_energy_kv"])
    ny, nx, _ = si["data"].shape
    assert res.elements == st["elements"] and len(res.elements) in (4, 16)
    for m in res.maps.values():
        assert m.shape == (ny, nx) and np.isfinite(m).all() and (m >= 0).all()
    # same lines as the vendor software chose (stored in the file)
    assert sorted(lw.label for lw in res.lines.values()) == sorted(si["metadata"]["Sample"]["xray_lines"])
    # the strongest lines of the sum spectrum give the largest maps
    area = _sum_spectrum_area(si, res)
    totals = {el: m.sum() for el, m in res.maps.items()}
    top_area = max(area, key=area.get)
    assert top_area in sorted(totals, key=totals.get)[-2:]
    rho = spearmanr([area[e] for e in res.elements], [totals[e] for e in res.elements])[0]
    assert rho >= 0.75, rho


@needs_vendor
def test_velox_maps_agree_with_stored_maps():
    import sparse  # noqa: F401  (Velox spectrum images need it; in the io extra)
    from rsciio.emd import file_reader
    from scipy.ndimage import uniform_filter

    signals = file_reader(str(VENDOR / "velox_SI_16x16_maps_C_Ca_O_Cu.emd"))
    si = _spectrum_image(signals)
    stored = {d["metadata"]["General"]["title"]: d["data"] for d in signals
              if np.ndim(d["data"]) == 2 and d["metadata"]["General"]["title"] != "HAADF"}
    assert set(stored) == {"C", "Ca", "O", "Cu"}
    res = extract_maps(si["data"], si["axes"][2], list(stored))
    for el, m in res.maps.items():
        assert m.shape == (16, 16) and (m >= 0).all()
    # Velox stores its maps smoothed with a 3x3 box filter (values k/9): compare
    # like with like. C is left out: the stored C map is dominated by a scan-start
    # artefact in rows 0-1 at 0.12-0.22 keV (below C Kα), not by C Kα counts.
    for el in ("Ca", "O", "Cu"):
        smooth = uniform_filter(res.maps[el], 3, mode="constant")
        r = np.corrcoef(smooth.ravel(), stored[el].ravel())[0, 1]
        assert r > 0.8, (el, r)
    assert res.lines["Ca"].line == "Ka" and res.lines["Cu"].line == "Ka"


@needs_vendor
def test_cross_check_with_exspy():
    exspy = pytest.importorskip("exspy", reason="exspy not installed: optional cross-check skipped")
    import hyperspy.api as hs  # noqa: F401  (exspy registers its signals with hyperspy)

    si = _read_bcf("bruker_SEM_EDS_30x30_16elements.bcf")
    ax = si["axes"]
    s = exspy.signals.EDSSEMSpectrum(si["data"].astype(float), axes=ax)
    s.set_microscope_parameters(beam_energy=20.0, energy_resolution_MnKa=130.0)
    els = ["O", "Si", "Fe", "Ca", "Ti", "Al"]
    s.set_elements(els)
    s.add_lines()
    res = extract_maps(si["data"], ax[2], els, beam_energy_kv=20.0, clip_negative=False)
    assert sorted(s.metadata.Sample.xray_lines) == sorted(lw.label for lw in res.lines.values())
    bw = s.estimate_background_windows(line_width=[2, 2], windows_width=1)
    theirs = {img.metadata.Sample.elements[0]: np.asarray(img.data, float)
              for img in s.get_lines_intensity(background_windows=bw)}
    assert set(theirs) == set(els)
    for el, a in theirs.items():
        b, lw = res.maps[el], res.lines[el]
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        if not lw.shared_background:  # same windows, same arithmetic
            assert r > 0.999 and abs(b.sum() / a.sum() - 1) < 0.02, (el, r, b.sum(), a.sum())
        else:  # Al/Si share windows; exspy takes their flat mean, we interpolate
            assert r > 0.95, (el, r)


class _CountingArray:
    """Array-like that records which energy channels dask reads from it."""

    def __init__(self, a: np.ndarray) -> None:
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim
        self.reads: list[tuple[int, int]] = []

    def __getitem__(self, key):
        out = self.a[key]
        if out.size:  # dask also reads empty slices to infer the dtype
            e = key[-1]
            self.reads.append((e.start or 0, self.shape[-1] if e.stop is None else e.stop))
        return out


def test_dask_reads_only_window_channels_once_per_element(noisy):
    import dask.array as da
    src = _CountingArray(noisy)
    lazy = da.from_array(src, chunks=(40, 48, 50), asarray=True)
    res = extract_maps(lazy, AXIS, ["Ti", "Fe"])
    windows = [AXIS.channels(*w) for lw in res.lines.values()
               for w in (lw.integration, *[b for b in lw.background if b])]
    needed = {c // 50 for sl in windows for c in range(sl.start, sl.stop)}
    read = [lo // 50 for lo, _ in src.reads]
    assert set(read) == needed  # only chunks holding window channels
    assert len(read) <= len(needed) + 2  # at most a shared chunk read by both elements


def test_extracted_maps_metadata_repeats_the_extraction_on_thinned_counts(noisy):
    """A map's recorded windows give the same maps again (LineWindows.from_dict), and
    extracted_map_splits thins the cube inside a region of the binned maps: fitted plus
    held-out maps add up to the region's maps (extraction is linear). Maps that are not
    X-ray line maps, or a cube that is not counts, give None (masking is used instead)."""
    from fusedem.spectra import LineWindows, extract_with_windows, extracted_map_splits

    res = extract_maps(noisy, AXIS, ["Ti", "Fe", "Cu"], binning=2, clip_negative=False)
    windows = {el: LineWindows.from_dict(res.lines[el].to_dict()) for el in res.maps}
    assert windows == res.lines
    again = extract_with_windows(noisy, AXIS, windows, binning=2, clip_negative=False)
    for el in res.maps:
        np.testing.assert_array_equal(again.maps[el], res.maps[el])
    mds = {el: res.layer_metadata(el)["fusedem"] for el in res.maps}
    si_md = {"energy_axis": {**AXIS.to_dict(), "axis": -1}}
    region = (slice(3, 15), slice(2, 20))  # binned pixels: cube rows 6:30, columns 4:40
    splits = extracted_map_splits(noisy, si_md, mds, region, seed=1)
    assert len(splits) == 2
    for s in splits:
        for el in res.maps:
            assert s.fit[el].shape == (12, 18)
            np.testing.assert_allclose(0.8 * s.fit[el] + s.held[el], res.maps[el][region],
                                       rtol=1e-9, atol=1e-6)
        assert not np.allclose(s.held["Ti"], 0.2 * res.maps["Ti"][region])  # thinned
    assert extracted_map_splits(noisy + 0.5, si_md, mds, region) is None  # not counts
    eels_md = {"Fe": {"role": "element", "edge": "Fe_L3", "windows": {"pre_edge_ev": [600, 690]}}}
    assert extracted_map_splits(noisy, si_md, eels_md) is None
    with pytest.raises(ValueError, match="windows of an X-ray line"):
        LineWindows.from_dict({"line": "Fe_Ka"})
