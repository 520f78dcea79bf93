"""SpectrumWidget in a real napari viewer (run under Xvfb)."""
from __future__ import annotations

from math import log, sqrt
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari extra not installed")

from fusedem.napari.spectrum_widget import SpectrumWidget, parse_elements  # noqa: E402
from fusedem.spectra import fwhm_kev  # noqa: E402

pytestmark = pytest.mark.gui

SHOTS = Path(__file__).parent / "screenshots"
VENDOR = Path("/work/shared/data/vendor")
KA = {"Ti": 4.511, "Fe": 6.404}
E = -0.1 + 0.01 * np.arange(1000)  # keV


def _si_layer_data(ny: int = 24, nx: int = 32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n_energy, ny, nx) Poisson counts, energy axis first as the fusedem reader makes it."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    truth = {"Ti": 400.0 * (xx < nx // 2) + 20.0, "Fe": 300.0 * (yy >= ny // 2) + 20.0}
    cube = np.broadcast_to((2.0 * np.exp(-np.clip(E, 0, None) / 3.0) + 0.2)[:, None, None],
                           (E.size, ny, nx)).copy()
    for el, amount in truth.items():
        s = fwhm_kev(KA[el]) / (2 * sqrt(2 * log(2)))
        g = np.exp(-0.5 * ((E - KA[el]) / s) ** 2) * 0.01 / (s * sqrt(2 * np.pi))
        cube += g[:, None, None] * amount[None]
    return np.random.default_rng(1).poisson(cube).astype(np.uint16), truth


def _metadata(**extra) -> dict:
    md = {"role": "spectrum_image", "source": "synthetic",
          "energy_axis": {"offset": -100.0, "scale": 10.0, "units": "eV", "size": 1000, "axis": 0},
          "signal_type": "EDS_TEM", "beam_energy_keV": 200.0}
    md.update(extra)
    return {"fusedem": md}


@pytest.fixture
def viewer():
    v = napari.Viewer(show=False)
    yield v
    v.close()


@pytest.fixture
def si(viewer):
    data, truth = _si_layer_data()
    layer = viewer.add_image(data, name="EDS", metadata=_metadata(), scale=(10.0, 2.0, 2.0),
                             translate=(-100.0, 10.0, 20.0), units=("eV", "nm", "nm"))
    return layer, truth


def test_parse_elements():
    assert parse_elements(" Cu, O;pd  Ti ") == ["Cu", "O", "pd", "Ti"]
    assert parse_elements("") == []


def test_extract_from_synthetic_layer(viewer, si, qtbot):
    layer, truth = si
    viewer.add_image(np.zeros((24, 32)), name="HAADF")  # not a spectrum image
    w = SpectrumWidget(viewer)
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    assert w.layer_combo.choices == (layer,) and w.layer_combo.value is layer
    assert w.beam.value == 200.0  # from the layer metadata
    w.elements_edit.value = "ti, fe"
    assert list(w.plan) == ["Ti", "Fe"] and w.plan["Fe"].line == "Ka"
    assert "Ti Kα" in w.status.value and "Fe Kα" in w.status.value
    w.extract_button.native.click()
    ti, fe = viewer.layers["Ti"], viewer.layers["Fe"]
    for ly, el, z in ((ti, "Ti", 22), (fe, "Fe", 26)):
        md = ly.metadata["fusedem"]
        assert md["role"] == "element" and md["element"] == el and md["Z"] == z
        assert md["source"] == "synthetic" and md["line"] == f"{el}_Ka"
        assert md["windows"]["integration_kev"][0] < KA[el] < md["windows"]["integration_kev"][1]
        assert ly.blending == "additive" and ly.data.shape == (24, 32)
        np.testing.assert_allclose(ly.scale, (2.0, 2.0))
        np.testing.assert_allclose(ly.translate, (10.0, 20.0))
        assert ly.units == layer.units[1:]
        # recovered counts: ≥98 % of each line inside ±1 FWHM, Poisson noise ~ sqrt
        assert abs(ly.data.mean() / (0.98 * truth[el].mean()) - 1) < 0.05
        assert np.corrcoef(ly.data.ravel(), truth[el].ravel())[0, 1] > 0.9
    assert ti.colormap.name != fe.colormap.name

    # re-extract with 2x2 binning: the same layers are updated, not duplicated
    w.binning.value = 2
    w.extract()
    assert [ly.name for ly in viewer.layers].count("Ti") == 1 and len(viewer.layers) == 4
    assert viewer.layers["Ti"].data.shape == (12, 16)
    np.testing.assert_allclose(viewer.layers["Ti"].scale, (4.0, 4.0))
    np.testing.assert_allclose(viewer.layers["Ti"].translate, (11.0, 21.0))  # pixel centres


def test_bad_and_overlapping_elements_are_reported(viewer, si, qtbot):
    w = SpectrumWidget(viewer)
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    w.elements_edit.value = "Ti Xx"
    assert list(w.plan) == ["Ti"] and "unknown element 'Xx'" in w.status.value
    w.elements_edit.value = "Ti U"  # U Mα 3.17 keV is in range, U Kα/Lα are not: fine
    assert w.plan["U"].line == "Ma"
    w.elements_edit.value = "Ti Ba Fe"
    assert w.plan["Ti"].overlaps == ("Ba",) and "overlaps" in w.status.value
    SHOTS.mkdir(exist_ok=True)
    viewer.window._qt_window.resize(1280, 860)
    qtbot.wait(100)
    viewer.window.screenshot(str(SHOTS / "spectrum_widget_overlap.png"), canvas_only=False)
    w.elements_edit.value = "H"
    assert not w.plan and "no X-ray line" in w.status.value
    assert w.extract() == [] and "Nothing to extract" in w.status.value


def test_layer_without_calibration_or_eels(viewer):
    data, _ = _si_layer_data(4, 4)
    bad = _metadata(energy_axis={"offset": 0.0, "scale": 0.0, "units": "keV", "axis": 0})
    viewer.add_image(data, name="uncalibrated", metadata=bad)
    w = SpectrumWidget(viewer)
    assert "not calibrated" in w.status.value and w.extract() == []
    viewer.add_image(data, name="eels", metadata=_metadata(signal_type="EELS"))
    w.layer_combo.value = viewer.layers["eels"]
    assert "EDS only" in w.status.value


def test_no_spectrum_layer_and_layers_appearing(viewer):
    w = SpectrumWidget(viewer)
    assert w.layer_combo.value is None and "Open an EDS spectrum image" in w.status.value
    data, _ = _si_layer_data(4, 4)
    layer = viewer.add_image(data, name="EDS", metadata=_metadata(elements=["Ti", "Fe"]))
    assert w.layer_combo.value is layer and w.elements == ["Ti", "Fe"]  # listed in the file


@pytest.mark.skipif(not VENDOR.is_dir(), reason=f"vendor data folder {VENDOR} absent")
def test_bruker_file_end_to_end_with_screenshot(viewer, qtbot):
    SHOTS.mkdir(exist_ok=True)
    viewer.open(str(VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf"), plugin="fusedem")
    si = next(ly for ly in viewer.layers if ly.metadata.get("fusedem", {}).get("role") == "spectrum_image")
    w = SpectrumWidget(viewer)
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    w.layer_combo.value = si
    assert sorted(w.elements) == ["Cu", "O", "Pd", "Ti"]  # listed in the file
    assert {lw.label for lw in w.plan.values()} == {"Cu_Ka", "O_Ka", "Pd_La", "Ti_Ka"}
    layers = w.extract()
    assert [ly.name for ly in layers] == w.elements
    for ly in layers:
        assert ly.data.shape == (64, 64) and (ly.data >= 0).all()
        np.testing.assert_allclose(ly.scale, si.scale[1:])
    assert len({ly.colormap.name for ly in layers}) == 4
    totals = {ly.name: float(ly.data.sum()) for ly in layers}
    assert min(totals["O"], totals["Ti"]) > 10 * max(totals["Cu"], totals["Pd"])
    viewer.window._qt_window.resize(1280, 860)
    viewer.reset_view()
    qtbot.wait(100)
    path = SHOTS / "spectrum_widget_bruker_TEM.png"
    viewer.window.screenshot(str(path), canvas_only=False)
    assert path.stat().st_size > 10_000
