"""The fusion panel's Auto button and the bundled samples' presets, in a real viewer (Xvfb)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import napari  # noqa: F401  (the testing extra installs it; GUI tests fail, never skip)

import fusedem
from fusedem.napari.fusion_widget import FusionWidget

sys.path.insert(0, str(Path(__file__).parent))
from phantoms import grain_phantom, measure  # noqa: E402

SHOTS = Path(__file__).parent / "screenshots"


def _add_counts_phantom(viewer, shape=(64, 64)):
    truth, z = grain_phantom(shape, seed=2)
    haadf, maps = measure(truth, z, dose=4.0, seed=5)
    viewer.add_image(haadf, name="HAADF", metadata={"fusedem": {"role": "haadf"}})
    for el, m in maps.items():
        viewer.add_image(m, name=el, metadata={"fusedem": {
            "role": "element", "element": el, "Z": fusedem.atomic_number(el)}})
    return haadf, maps


def _open_sample(viewer, name):
    viewer.open_sample("fusedem", name)
    _, widget = viewer.window.add_plugin_dock_widget("fusedem", "Fuse chemical maps")
    return widget


def test_opening_a_sample_sets_its_published_parameters(viewer, qtbot):
    widget = _open_sample(viewer, "co3o4_mn3o4")
    assert widget.params_panel.params() == fusedem.FusionParams.preset("co3o4_mn3o4")
    assert "published" in widget.status.value
    # the user's later edits are kept (the preset is applied once per sample HAADF)
    widget.params_panel.lambda_tv.value = 0.05
    widget._revalidate()
    assert widget.params_panel.params().lambda_tv == 0.05


def test_run_straight_after_open_sample_reproduces_the_preset_fusion(viewer, qtbot):
    widget = _open_sample(viewer, "co3o4_mn3o4")
    layer = widget.select_region_layer()
    layer.data = [np.array([[100, 100], [100, 227], [227, 227], [227, 100]], float)]
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)
    crop = (slice(100, 228), slice(100, 228))
    ref = fusedem.fuse(viewer.layers["HAADF"].data[crop],
                       {e: viewer.layers[e].data[crop] for e in ("Co", "Mn", "O")},
                       fusedem.FusionParams.preset("co3o4_mn3o4"))
    for e in ("Co", "Mn", "O"):
        np.testing.assert_allclose(viewer.layers[f"fused {e}"].data, ref.maps[e],
                                   rtol=1e-5, atol=1e-6)


def test_own_data_points_to_auto(viewer, qtbot):
    widget = FusionWidget(viewer)
    _add_counts_phantom(viewer)
    assert "press Auto" in widget.status.value
    assert widget.auto_button.enabled


def test_auto_streams_the_search_fills_the_parameters_and_runs(viewer, qtbot, tmp_path):
    SHOTS.mkdir(exist_ok=True)
    viewer.window.resize(1280, 800)
    widget = FusionWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Fuse chemical maps")
    haadf, maps = _add_counts_phantom(viewer)
    before = widget.params_panel.params()
    assert widget.auto.start()
    assert widget.running and not widget.run_button.enabled and widget.stop_button.enabled
    qtbot.waitUntil(lambda: len(widget.auto_plot.candidates) >= 3, timeout=60000)
    qtbot.waitUntil(lambda: widget.auto.result is not None, timeout=120000)
    chosen = widget.auto.result.params
    qtbot.waitUntil(lambda: widget.result is not None and not widget.running, timeout=60000)
    bar = widget.scroll.verticalScrollBar()
    bar.setValue(bar.maximum())  # the Run row, status and the search's plot
    qtbot.wait(100)
    viewer.window.screenshot(str(SHOTS / "auto_done.png"), canvas_only=False, flash=False)
    assert widget.params_panel.params() == chosen != before
    assert len(widget.auto_plot.candidates) == len(widget.auto.result.candidates)
    assert widget.result.params == chosen and widget.result.autotune is widget.auto.result
    assert "chosen by Auto" in widget.status.value
    assert "auto (thinning)" in widget.auto_plot.label.value
    # the panel's choice is the library's choice on the same data
    lib = fusedem.autotune(haadf, maps, before)
    assert lib.params == chosen
    assert (SHOTS / "auto_done.png").stat().st_size > 10000
    # File > Save Selected Layers keeps how the parameters were chosen
    from fusedem.io import load_result
    from fusedem.napari._writer import write_fused

    layers = [ly for ly in viewer.layers if ly.name.startswith("fused ")]
    out = write_fused(str(tmp_path / "auto.h5"), [ly.as_layer_data_tuple() for ly in layers])
    assert load_result(out[0]).metadata["autotune"]["method"] == "thinning"


def test_stop_cancels_the_search_and_keeps_the_parameters(viewer, qtbot):
    widget = FusionWidget(viewer)
    _add_counts_phantom(viewer, shape=(96, 96))
    before = widget.params_panel.params()
    assert widget.auto.start()
    qtbot.waitUntil(lambda: len(widget.auto_plot.candidates) >= 1, timeout=60000)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=20000)
    assert widget.auto.result is None and widget.result is None
    assert widget.params_panel.params() == before
    assert "Auto stopped" in widget.progress_label.value
    assert widget.run_button.enabled and widget.auto_button.enabled


def test_auto_on_too_small_a_region_says_why(viewer, qtbot):
    widget = FusionWidget(viewer)
    _add_counts_phantom(viewer)
    layer = widget.select_region_layer()
    layer.data = [np.array([[0, 0], [0, 11], [11, 11], [11, 0]], float)]
    assert not widget.auto.start()
    assert "at least 16 x 16" in widget.status.value
    assert not widget.running


def _add_spectrum_image_with_extracted_maps(viewer, shape=(48, 48)):
    """An EDS cube of raw counts (energy first, as fusedem's reader gives it), a HAADF,
    and element layers extracted from the cube as the spectrum panel puts them."""
    from fusedem.napari._element_layers import put_element_layer
    from fusedem.spectra import EnergyAxis, extract_maps, line_energies

    truth, z = grain_phantom(shape, seed=3)
    e = np.arange(600) * 0.02  # keV
    mean = 0.3 * np.ones((600,) + shape)
    for el, t in truth.items():
        centre = min(line_energies(el).values(), key=lambda v: abs(v - {"Dy": 6.5}.get(el, 5)))
        mean += 3.0 * np.exp(-0.5 * ((e - centre) / 0.06) ** 2)[:, None, None] * t[None]
    cube = np.random.default_rng(4).poisson(mean).astype(np.uint16)
    ea = {"offset": 0.0, "scale": 0.02, "units": "keV", "size": 600, "axis": 0}
    haadf = np.sum([t ** 1.6 * zz for t, zz in zip(truth.values(), z)], axis=0)
    viewer.add_image(haadf + np.random.default_rng(5).normal(0, 0.01, shape), name="HAADF",
                     metadata={"fusedem": {"role": "haadf"}})
    si = viewer.add_image(cube, name="EDS", metadata={"fusedem": {
        "role": "spectrum_image", "energy_axis": ea, "signal_type": "EDS_TEM",
        "beam_energy_keV": 200.0}})
    res = extract_maps(cube, EnergyAxis.from_dict(ea), list(truth), axis=0)
    for i, el in enumerate(res.maps):
        put_element_layer(viewer, si, res, el, i, 0)
    return si, cube, ea, list(truth)


def test_auto_on_maps_extracted_in_the_viewer_thins_their_spectrum_image(viewer, qtbot):
    """Maps extracted from an open EDS spectrum image are validated by thinning the
    cube's counts inside the region (as `fusedem fuse --auto` does for such files): the
    same choice as autotune with spectrum_splits of that part of the cube. A cube that is
    not raw counts falls back to masking the maps."""
    from fusedem.spectra import spectrum_splits

    widget = FusionWidget(viewer)
    si, cube, ea, elements = _add_spectrum_image_with_extracted_maps(viewer)
    layer = widget.select_region_layer()
    layer.data = [np.array([[8, 4], [8, 39], [43, 39], [43, 4]], float)]
    assert widget.auto.start()
    qtbot.waitUntil(lambda: widget.auto.result is not None, timeout=120000)
    got = widget.auto.result
    assert got.method == "thinning (spectrum image)"
    assert "thinning (spectrum image)" in widget.auto_plot.label.value
    crop = (slice(8, 44), slice(4, 40))
    ref = fusedem.autotune(viewer.layers["HAADF"].data[crop],
                           {el: viewer.layers[el].data[crop] for el in elements},
                           splits=spectrum_splits(cube[:, crop[0], crop[1]], ea, elements, seed=0))
    assert got.params == ref.params and got.score == ref.score
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)

    si.data = cube.astype(np.float32) + 0.25  # not counts: thinning does not apply
    assert widget.auto.start()
    qtbot.waitUntil(lambda: widget.auto.result is not None, timeout=120000)
    assert widget.auto.result.method == "masking"
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)
