"""SpectrumWidget in a real napari viewer (run under Xvfb)."""
from __future__ import annotations

import sys
import time
from math import log, sqrt
from pathlib import Path

import numpy as np
import pytest

import napari  # noqa: E402  (the testing extra installs it)

from fusedem.napari.spectrum_widget import SpectrumWidget, parse_elements  # noqa: E402
from fusedem.spectra import fwhm_kev  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from shared_data import VENDOR  # noqa: E402

pytestmark = pytest.mark.gui

SHOTS = Path(__file__).parent / "screenshots"
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
    assert w.busy and not w.extract_button.enabled and not w.progress.native.isHidden()
    assert "Extracting Ti, Fe from 'EDS'" in w.job_status.value
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)  # the result comes from the worker
    assert w.extract_button.enabled and w.progress.native.isHidden()
    assert "Extracted Ti, Fe from 'EDS' (counts)" in w.job_status.value
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
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    assert "2×2 binned" in w.job_status.value
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
    qtbot.waitUntil(lambda: not w.summing, timeout=10000)
    qtbot.wait(100)
    viewer.window.screenshot(str(SHOTS / "spectrum_widget_overlap.png"), canvas_only=False)
    w.elements_edit.value = "H"
    assert not w.plan and "no X-ray line" in w.status.value
    assert w.extract() is False and "Nothing to extract" in w.job_status.value
    assert not w.busy and w.extract_button.enabled


def test_layer_without_calibration_or_eels(viewer):
    data, _ = _si_layer_data(4, 4)
    bad = _metadata(energy_axis={"offset": 0.0, "scale": 0.0, "units": "keV", "axis": 0})
    viewer.add_image(data, name="uncalibrated", metadata=bad)
    w = SpectrumWidget(viewer)
    assert "not calibrated" in w.status.value and w.extract() is False
    viewer.add_image(data, name="eels", metadata=_metadata(signal_type="EELS"))
    w.layer_combo.value = viewer.layers["eels"]
    assert "Type element symbols" in w.status.value and not w.plan
    w.elements_edit.value = "H"  # EELS: edges; H K (14 eV) leaves no room for a pre-edge window
    assert "no edge of H fits" in w.status.value


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
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy and not w.summing, timeout=30000)
    layers = w.extracted
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


def _slow_blocks(cube: np.ndarray, delay: float, fail: bool = False):
    """A dask array over ``cube`` whose every chunk takes ``delay`` s to 'read' (a big file
    on a slow disk), or fails like a truncated file."""
    import dask.array as da

    def read(block: np.ndarray) -> np.ndarray:
        time.sleep(delay)
        if fail:
            raise OSError("truncated file: chunk unreadable")
        return block

    return da.from_array(cube, chunks=(100, 32, 32)).map_blocks(read, dtype=cube.dtype)


def test_lazy_cube_is_summed_and_extracted_in_a_worker(viewer, qtbot):
    """The sum spectrum and the maps of a slow lazy cube come from workers while a QTimer
    in the main thread keeps ticking; the maps equal those of the in-memory cube."""
    from qtpy.QtCore import QTimer

    from fusedem.spectra import EnergyAxis, extract_maps, plan_lines

    cube, _ = _si_layer_data(64, 64)
    lazy = _slow_blocks(cube, delay=0.25)
    # hidden, as the reader adds spectrum images: napari never slices it in the main thread
    layer = viewer.add_image(lazy, name="EDS", metadata=_metadata(), visible=False)
    plan_lines(["Ti"], EnergyAxis.from_dict(_metadata()["fusedem"]["energy_axis"]))  # load the line DB
    w = SpectrumWidget(viewer)  # starts summing the spectrum in a worker
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    assert w.summing and "summing the spectrum" in w.plot.ax.texts[0].get_text()
    w.elements_edit.value = "Ti Fe"
    assert list(w.plan) == ["Ti", "Fe"]  # the plan does not wait for the spectrum
    assert w.extract() and w.busy
    qtbot.waitUntil(lambda: not w.busy and not w.summing, timeout=30000)
    took = time.perf_counter() - t0
    timer.stop()
    print(f"lazy cube: {took:.2f} s, {len(ticks)} ticks, longest gap {np.diff([t0, *ticks]).max():.3f} s")
    assert took > 1.0  # long enough that a blocked event loop would show
    gaps = np.diff([t0, *ticks])
    assert len(ticks) > 0.5 * took / 0.02 and gaps.max() < 0.4, (len(ticks), gaps.max(), took)
    assert len(w.plot.ax.lines) >= 1  # the spectrum arrived and was drawn
    ref = extract_maps(cube, EnergyAxis.from_dict(_metadata()["fusedem"]["energy_axis"]),
                       ["Ti", "Fe"], axis=0, beam_energy_kv=200.0)
    for el in ("Ti", "Fe"):
        np.testing.assert_allclose(viewer.layers[el].data, ref.maps[el], rtol=1e-6)
    assert layer.visible is False and "(reading the file)" not in w.job_status.value


def test_a_newer_extraction_supersedes_a_running_one(viewer, si, qtbot):
    w = SpectrumWidget(viewer)
    w.elements_edit.value = "Ti Fe"
    assert w.extract()  # binning 1 ...
    w.binning.value = 2
    assert w.extract()  # ... superseded before its result could arrive
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    qtbot.wait(200)  # let the first worker's late signals arrive too
    assert [ly.name for ly in viewer.layers].count("Ti") == 1
    assert viewer.layers["Ti"].data.shape == (12, 16) and "2×2 binned" in w.job_status.value


def test_read_errors_are_shown_in_the_panel(viewer, qtbot):
    cube, _ = _si_layer_data(64, 64)
    viewer.add_image(_slow_blocks(cube, 0.0, fail=True), name="EDS", metadata=_metadata(),
                     visible=False)
    w = SpectrumWidget(viewer)
    qtbot.waitUntil(lambda: not w.summing, timeout=10000)
    assert "Could not read the spectrum image: OSError: truncated file" in w.job_status.value
    assert "could not read the spectrum" in w.plot.ax.texts[0].get_text()
    w.elements_edit.value = "Ti"
    assert "Ti Kα" in w.status.value  # the line plan still works
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    assert "Extraction failed: OSError: truncated file" in w.job_status.value
    assert w.extract_button.enabled and "Ti" not in viewer.layers


def test_pca_step_denoises_then_extracts_with_screenshot(viewer, si, qtbot):
    layer, truth = si
    w = SpectrumWidget(viewer)
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    w.elements_edit.value = "Ti Fe"
    w.pca.k.value = 0  # suggested by held-out counts
    assert w.pca.run()
    qtbot.waitUntil(lambda: w.pca.result is not None, timeout=60000)
    res = w.pca.result
    assert res.rank is not None and 1 <= res.n_components <= 6
    den = viewer.layers["EDS PCA"]
    md = den.metadata["fusedem"]
    assert md["role"] == "denoised_spectrum_image" and md["pca"]["n_components"] == res.n_components
    assert md["spectrum_layer"] == "EDS" and md["energy_axis"]["axis"] == 0
    assert den.data.shape == layer.data.shape and w.layer_combo.value is den
    assert f"k = {res.n_components} (suggested" in w.pca.status.value
    assert len(w.pca.plot.ax.lines) >= 2  # scree curve and the k marker
    qtbot.waitUntil(lambda: not w.summing, timeout=10000)
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    ti = viewer.layers["Ti"]
    assert ti.metadata["fusedem"]["spectrum_layer"] == "EDS PCA"
    assert np.corrcoef(ti.data.ravel(), truth["Ti"].ravel())[0, 1] > 0.95
    SHOTS.mkdir(exist_ok=True)
    viewer.window.screenshot(str(SHOTS / "spectrum_widget_pca.png"), canvas_only=False)
    # too many components for the cube: a clear message in the panel, no new layer
    small = viewer.add_image(layer.data[:, :3, :4], name="tiny", metadata=_metadata())
    w.layer_combo.value = small
    w.pca.k.value = 20
    w.pca.run()
    qtbot.waitUntil(lambda: w.pca.button.enabled, timeout=30000)
    assert "PCA failed" in w.pca.status.value and "at most 12 components" in w.pca.status.value
    assert "tiny PCA" not in viewer.layers


def test_composition_action_adds_at_percent_layers(viewer, si, qtbot):
    layer, truth = si
    w = SpectrumWidget(viewer)
    w.elements_edit.value = "Ti Fe"
    w.composition.kfactors.value = "Ti=1.0, Fe=1.0"
    assert not w.composition.run() and "Extract maps first" in w.composition.status.value
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    w.composition.kfactors.value = "Ti=1.0, Fe=1.0, Cu=2"
    assert not w.composition.run() and "['Cu']" in w.composition.status.value
    w.composition.kfactors.value = "Ti=1.0, Fe=1.0"
    assert w.composition.run()
    ti, fe = viewer.layers["at.% Ti"], viewer.layers["at.% Fe"]
    md = ti.metadata["fusedem"]
    assert md["role"] == "composition" and md["units"] == "at.%" and md["kfactors"]["Ti"] == 1.0
    total = ti.data + fe.data
    np.testing.assert_allclose(total[total > 0], 100.0, rtol=1e-5)
    # the Ti-rich left half (truth 420 vs 20 Ti; 20 vs 20/320 Fe) is mostly Ti in at.%
    ny, nx = ti.data.shape
    assert ti.data[: ny // 2, : nx // 2].mean() > fe.data[: ny // 2, : nx // 2].mean()
    assert "at.%" in w.composition.status.value and "masked" in w.composition.status.value
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    for ly in viewer.layers:
        ly.visible = ly.name == "at.% Ti"
    SHOTS.mkdir(exist_ok=True)
    viewer.window.screenshot(str(SHOTS / "spectrum_widget_composition.png"), canvas_only=False)


def test_eels_edges_extracted_in_the_panel_with_screenshot(viewer, qtbot):
    from test_eels import AXIS as EELS_AXIS, _cube, _truth

    truth = _truth((16, 20))
    cube = np.moveaxis(_cube(truth, dose=5.0, seed=4), -1, 0)  # energy first, as read
    md = {"role": "spectrum_image", "source": "synthetic", "signal_type": "EELS",
          "elements": ["C", "Fe"],
          "energy_axis": {"offset": EELS_AXIS.offset, "scale": EELS_AXIS.scale, "units": "eV",
                          "size": EELS_AXIS.size, "axis": 0}}
    layer = viewer.add_image(cube, name="EELS SI", metadata={"fusedem": md},
                             scale=(0.5, 2.0, 2.0), units=("eV", "nm", "nm"))
    w = SpectrumWidget(viewer)
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    assert w.layer_combo.value is layer and w.elements_edit.value == "C Fe"
    assert "C K 284 eV" in w.status.value and "Fe L2,3 70" in w.status.value
    qtbot.waitUntil(lambda: not w.summing, timeout=20000)
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy, timeout=20000)
    fe = viewer.layers["Fe"]
    fmd = fe.metadata["fusedem"]
    assert fmd["role"] == "element" and fmd["modality"] == "EELS" and fmd["edge"] == "Fe_L2,3"
    assert fmd["windows"]["pre_edge_ev"][1] < fmd["windows"]["onset_ev"]
    assert np.corrcoef(fe.data.ravel(), truth["Fe"].ravel())[0, 1] > 0.9
    assert np.all(np.isfinite(viewer.layers["C"].data))
    SHOTS.mkdir(exist_ok=True)
    viewer.window.screenshot(str(SHOTS / "spectrum_widget_eels.png"), canvas_only=False)


def _span_x(patch) -> tuple[float, float]:
    """x extent (data units) of an axvspan patch (Rectangle or Polygon by matplotlib version)."""
    xy = np.asarray(patch.get_xy() if not hasattr(patch, "get_width") else
                    [(patch.get_x(), 0), (patch.get_x() + patch.get_width(), 0)])
    return float(xy[:, 0].min()), float(xy[:, 0].max())


def test_eels_windows_edited_in_the_panel_recompute_the_maps_with_screenshot(viewer, qtbot):
    from test_eels import AXIS as EELS_AXIS, _cube, _truth

    from fusedem.spectra import extract_edge_maps

    truth = _truth((16, 20))
    raw = _cube(truth, dose=5.0, seed=4)
    md = {"role": "spectrum_image", "source": "synthetic", "signal_type": "EELS",
          "elements": ["C", "Fe"],
          "energy_axis": {"offset": EELS_AXIS.offset, "scale": EELS_AXIS.scale, "units": "eV",
                          "size": EELS_AXIS.size, "axis": 0}}
    viewer.add_image(np.moveaxis(raw, -1, 0), name="EELS SI", metadata={"fusedem": md},
                     scale=(0.5, 2.0, 2.0), units=("eV", "nm", "nm"))
    w = SpectrumWidget(viewer)
    viewer.window.add_dock_widget(w, name="Extract elemental maps")
    ed = w.edge_windows
    assert not ed.native.isHidden() and w.beam.native.isHidden()  # EELS: no X-ray settings
    assert list(ed.edge.choices) == ["C", "Fe"]
    qtbot.waitUntil(lambda: not w.summing, timeout=20000)
    assert w.extract()
    qtbot.waitUntil(lambda: not w.busy, timeout=20000)
    fe = viewer.layers["Fe"]
    default = fe.metadata["fusedem"]["windows"]
    assert default["edited"] is False
    default_map = fe.data.copy()
    ed.edge.value = "Fe"  # the boxes show Fe's default windows
    assert (ed.pre_lo.value, ed.sig_hi.value) == (default["pre_edge_ev"][0], default["integration_ev"][1])
    # edit: a wider pre-edge and a longer signal window
    ed.set_window("Fe", (600.0, 695.0), (708.0, 800.0))
    spans = [_span_x(p) for p in w.plot.ax.patches]
    assert any(abs(a - 708.0) < 1e-6 and abs(b - 800.0) < 1e-6 for a, b in spans), spans
    assert any(abs(a - 600.0) < 1e-6 and abs(b - 695.0) < 1e-6 for a, b in spans), spans
    qtbot.waitUntil(lambda: viewer.layers["Fe"].metadata["fusedem"]["windows"]["edited"],
                    timeout=20000)
    qtbot.waitUntil(lambda: not w.busy, timeout=20000)
    fmd = viewer.layers["Fe"].metadata["fusedem"]
    assert fmd["windows"]["pre_edge_ev"] == [600.0, 695.0]
    assert fmd["windows"]["integration_ev"] == [708.0, 800.0]
    assert viewer.layers["C"].metadata["fusedem"]["windows"]["edited"] is False
    ref = extract_edge_maps(raw, EELS_AXIS, ["Fe"], windows={
        "Fe": {"pre_edge": (600.0, 695.0), "integration": (708.0, 800.0)}})
    np.testing.assert_allclose(viewer.layers["Fe"].data, ref.maps["Fe"], rtol=1e-6)
    assert viewer.layers["Fe"] is fe and not np.allclose(fe.data, default_map, rtol=0.01)
    SHOTS.mkdir(exist_ok=True)
    viewer.window._qt_window.resize(1280, 1000)
    qtbot.wait(50)
    w.scroll.ensureWidgetVisible(ed.native, 0, 0)
    viewer.window.screenshot(str(SHOTS / "spectrum_widget_eels_windows.png"), canvas_only=False)
    # a pre-edge window running into the signal window: named in red, maps left as they were
    before = viewer.layers["Fe"].data.copy()
    ed.set_window("Fe", (600.0, 720.0), (708.0, 800.0))
    assert "pre-edge window must end before the integration window" in w.status.value
    assert "Fe" in list(ed.edge.choices) and not w.plan.get("Fe")
    qtbot.wait(2 * 400 + 200)
    assert not w.busy and np.array_equal(viewer.layers["Fe"].data, before)
    # an element without an edge in 200-1000 eV: named, the others still listed
    w.elements_edit.value = "C Fe Dy"
    assert "no edge of Dy fits the energy range 200-1000 eV" in w.status.value
    assert set(w.plan) == {"C"} and "Fe" in list(ed.edge.choices)  # Fe: still the bad edit
    w.elements_edit.value = "C Fe"
    # back to the defaults: the map is recomputed with them
    ed.edge.value = "Fe"
    ed.reset.changed.emit(True)
    assert "Fe L2,3" in w.status.value and ed.pre_lo.value == default["pre_edge_ev"][0]
    qtbot.waitUntil(lambda: not viewer.layers["Fe"].metadata["fusedem"]["windows"]["edited"],
                    timeout=20000)
    qtbot.waitUntil(lambda: not w.busy, timeout=20000)
    np.testing.assert_allclose(viewer.layers["Fe"].data, default_map)


def test_edge_window_editor_keeps_edits_until_the_energy_range_changes(qtbot):
    from fusedem.napari._eels_panel import EdgeWindowEditor
    from fusedem.spectra import EnergyAxis, plan_edges

    calls = []
    ed = EdgeWindowEditor(lambda: calls.append(1))
    axis = EnergyAxis(offset=123.456, scale=0.37, units="eV", size=2400)  # 123.456-1011.086 eV
    ed.set_axis(axis)
    ed.show_plan(plan_edges(["O"], axis), ["O"])
    assert list(ed.edge.choices) == ["O"] and ed.pre_lo.min == pytest.approx(123.456, abs=0.01)
    ed.set_window("O", (470.0, 520.0), (532.0, 600.0))
    assert calls == [1] and ed.overrides["O"]["integration"] == (532.0, 600.0)
    ed.set_axis(axis)  # the same cube again: the edit stays
    assert "O" in ed.overrides
    ed.set_window("O", (50.0, 520.0), (532.0, 5000.0))  # typed outside: clamped to the range
    lo, hi = ed.overrides["O"]["pre_edge"][0], ed.overrides["O"]["integration"][1]
    assert lo == pytest.approx(123.456, abs=0.01) and hi == pytest.approx(1011.086, abs=0.01)
    ed.set_axis(EnergyAxis(offset=100.0, scale=0.5, units="eV", size=2000))  # another cube
    assert ed.overrides == {}
