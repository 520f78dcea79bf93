"""The "Fuse chemical maps" dock widget in a real (hidden) napari viewer under Xvfb."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

import napari  # noqa: E402  (the testing extra installs it)

import fusedem  # noqa: E402
from fusedem.napari._crop import REGION_LAYER_NAME  # noqa: E402
from fusedem.napari.fusion_widget import FusionWidget  # noqa: E402

SCALE, TRANSLATE = (0.05, 0.05), (1.0, 2.0)  # nm: non-trivial, so placement is tested
ELEMENTS = ("Sc", "Dy", "O")
SHOTS = Path(__file__).parent / "screenshots"


def _data() -> dict[str, np.ndarray]:
    with np.load(files("fusedem") / "data" / "PTO_Trilayer_dataset.npz") as d:
        return {k: np.array(d[k]) for k in d.files}


def add_dysco3(viewer, names=("HAADF", *ELEMENTS), shapes=None) -> dict[str, np.ndarray]:
    """The DyScO3 layers with the readers' metadata contract (own fixture, no sample plugin)."""
    data = _data()
    for name in names:
        arr = data[name] if shapes is None or name not in shapes else data[name][: shapes[name]]
        role = "haadf" if name == "HAADF" else "element"
        meta = {"fusedem": {"role": role, "source": "PTO_Trilayer_dataset.npz"}}
        if role == "element":
            meta["fusedem"].update(element=name, Z=fusedem.atomic_number(name))
        viewer.add_image(arr, name=name, scale=SCALE, translate=TRANSLATE, metadata=meta)
    return data



@pytest.fixture
def widget(viewer, qtbot):
    w = FusionWidget(viewer)
    yield w
    if w.running:
        w.stop()
        qtbot.waitUntil(lambda: not w.running, timeout=10000)


def draw_region(viewer, widget, y0, y1, x0, x1) -> None:
    """A rectangle covering pixel centres y0..y1-1, x0..x1-1 of the HAADF (world coords)."""
    layer = widget.select_region_layer()
    assert layer.name == REGION_LAYER_NAME
    corners = np.array([[y0, x0], [y0, x1 - 1], [y1 - 1, x1 - 1], [y1 - 1, x0]], float)
    world = corners * SCALE + TRANSLATE
    layer.data = [(world - np.array(layer.translate)) / np.array(layer.scale)]


def fused_layers(viewer) -> list:
    return [ly for ly in viewer.layers if ly.name.startswith("fused ")]


def test_panel_preselects_inputs_and_parameters(viewer, widget):
    add_dysco3(viewer)
    assert widget.inputs.haadf.value is viewer.layers["HAADF"]
    assert [(ly.name, s) for ly, s in widget.inputs.selected()] == [(e, e) for e in ELEMENTS]
    assert widget.run_button.enabled
    assert "Ready" in widget.status.value
    assert widget.params_panel.params() == fusedem.FusionParams()
    panel = widget.params_panel
    panel.preset.value = "Co3O4-Mn3O4 tutorial (EELS)"
    assert panel.params() == fusedem.FusionParams.preset("co3o4_mn3o4")
    assert panel.background_threshold.enabled
    panel.reset_button.changed.emit(True)
    assert panel.params() == fusedem.FusionParams()
    for w in panel._value_widgets():
        assert w.tooltip, w.name


def test_unknown_layer_name_needs_a_symbol(viewer, widget):
    data = add_dysco3(viewer, names=("HAADF", "Sc"))
    viewer.add_image(data["Dy"], name="map 2", scale=SCALE, translate=TRANSLATE)
    row = widget.inputs._rows[id(viewer.layers["map 2"])]
    assert row.symbol.enabled and not row.use.value
    row.use.value = True
    assert not widget.run_button.enabled and "symbol" in widget.status.value
    row.symbol.value = "dy"
    assert widget.run_button.enabled
    assert [s for _, s in widget.inputs.selected()] == ["Sc", "Dy"]


def test_run_with_crop_streams_and_matches_api(viewer, widget, qtbot):
    data = add_dysco3(viewer)
    y0, y1, x0, x1 = 40, 168, 60, 220
    draw_region(viewer, widget, y0, y1, x0, x1)
    assert "rows 40:168, cols 60:220" in widget.region_label.value
    widget.params_panel.n_iter.value = 1200  # long enough for several 0.1 s frames
    params = widget.params_panel.params()
    seen: list[int] = []
    widget.progress.changed.connect(lambda v: seen.append(v))
    assert widget.run()
    assert not widget.params_panel.lambda_tv.enabled and not widget.run_button.enabled
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)
    intermediate = [k for k in seen if 0 < k < params.n_iter]
    assert len(intermediate) > 1, seen
    assert "Done" in widget.progress_label.value
    assert f"({widget.result.device})" in widget.progress_label.value  # where it ran
    assert widget.result.device == "cpu" or widget.result.device.startswith("cuda: ")
    crop = {k: v[y0:y1, x0:x1] for k, v in data.items()}
    ref = fusedem.fuse(crop["HAADF"], {e: crop[e] for e in ELEMENTS}, params)
    res = widget.result
    assert res.iterations == params.n_iter and list(res.maps) == list(ELEMENTS)
    for e in ELEMENTS:
        layer = viewer.layers[f"fused {e}"]
        np.testing.assert_allclose(layer.data, ref.maps[e], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.maps[e], ref.maps[e], rtol=1e-5, atol=1e-6)
        # placed exactly over the crop of the HAADF
        np.testing.assert_allclose(layer.scale, SCALE)
        np.testing.assert_allclose(layer.translate, np.array(TRANSLATE) + np.array(SCALE) * (y0, x0))
        np.testing.assert_allclose(layer.data_to_world((0, 0)),
                                   viewer.layers["HAADF"].data_to_world((y0, x0)))
        meta = layer.metadata["fusedem"]
        assert meta["role"] == "fused" and meta["element"] == e and meta["Z"] == fusedem.atomic_number(e)
        assert meta["params"] == params.to_dict()
        assert len(meta["costs"]["haadf"]) == params.n_iter
    for k in ("haadf", "chem", "tv"):
        np.testing.assert_allclose(res.costs[k], ref.costs[k], rtol=1e-4)
    assert widget.save_button.enabled and widget.reset_contrast_button.enabled
    assert widget.params_panel.lambda_tv.enabled


def test_opening_the_panel_loads_the_solver_and_run_waits_for_it(viewer, qtbot, monkeypatch):
    """A fresh process: the panel starts loading (compiling) the kernels when it opens, says
    so, and a Run pressed meanwhile starts streaming once they are ready."""
    import threading

    from fusedem.napari import _run_controller as rc

    gate = threading.Event()
    real = rc.load_kernels
    monkeypatch.setattr(rc, "load_kernels", lambda: (gate.wait(30), real())[1])  # slow compile
    for attr, value in (("_thread", None), ("seconds", None), ("error", None)):
        monkeypatch.setattr(rc.KernelLoader, attr, value)
    add_dysco3(viewer)
    widget = FusionWidget(viewer)
    assert "Loading the solver" in widget.progress_label.value
    widget.params_panel.n_iter.value = 3
    assert widget.run_button.enabled and widget.run()
    assert "waiting for the solver to load" in widget.progress_label.value
    qtbot.wait(300)
    assert widget.running and widget.progress.value == 0
    gate.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)
    assert "Done" in widget.progress_label.value and widget.result.iterations == 3
    assert rc.KernelLoader.ready() and rc.KernelLoader.seconds is not None
    later = FusionWidget(viewer)  # another panel in this process: nothing to wait for
    assert "Solver ready" in later.progress_label.value
    assert later.run()
    assert "waiting" not in later.progress_label.value
    qtbot.waitUntil(lambda: not later.running, timeout=60000)


def test_stop_mid_run_keeps_last_state(viewer, widget, qtbot):
    add_dysco3(viewer)
    widget.params_panel.n_iter.value = 10000
    assert widget.run()
    qtbot.waitUntil(lambda: widget.progress.value >= 3 and bool(fused_layers(viewer)), timeout=30000)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=5000)
    res = widget.result
    assert res is not None and 0 < res.iterations < 10000
    assert "Stopped at iteration" in widget.progress_label.value
    np.testing.assert_array_equal(viewer.layers["fused Dy"].data, res.maps["Dy"])
    assert len(res.costs["haadf"]) == res.iterations
    assert widget.run_button.enabled


@pytest.mark.parametrize("case", ["no_haadf", "mismatch", "outside", "no_elements"])
def test_bad_inputs_show_a_message_and_start_nothing(viewer, widget, case):
    if case == "no_haadf":
        add_dysco3(viewer, names=ELEMENTS)
        expected = "No HAADF"
    elif case == "mismatch":
        add_dysco3(viewer, shapes={"Dy": 200})
        expected = "Shape mismatch: 'Dy' is 200 x 256 px"
    elif case == "outside":
        add_dysco3(viewer)
        draw_region(viewer, widget, 300, 400, 300, 400)
        expected = "outside the HAADF image"
    else:
        add_dysco3(viewer)
        for row in widget.inputs._rows.values():
            row.use.value = False
        expected = "No elemental map selected"
    assert not widget.run_button.enabled
    assert expected in widget.status.value
    assert widget.run() is False
    assert expected in widget.status.value
    assert not widget.running and not fused_layers(viewer)


def test_viewer_stays_responsive_during_a_run(viewer, widget, qtbot):
    import time

    from qtpy.QtCore import QTimer

    add_dysco3(viewer)
    widget.params_panel.n_iter.value = 10000
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    assert widget.run()
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=30000)  # past numba loading
    timer.start()
    qtbot.wait(2000)
    timer.stop()
    assert widget.running
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=5000)
    gaps = np.diff(ticks)
    # 100 ticks expected; a blocked event loop gives a handful with long gaps
    assert len(ticks) > 40 and gaps.max() < 0.5, (len(ticks), gaps.max())


def test_run_again_replaces_or_keeps_previous_layers(viewer, widget, qtbot):
    add_dysco3(viewer)
    widget.params_panel.n_iter.value = 5
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    first = viewer.layers["fused Dy"]
    first.colormap = "gray"  # the user's choice survives the next run
    first.contrast_limits = (0.1, 0.5)
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    assert len(fused_layers(viewer)) == 3 and viewer.layers["fused Dy"] is first
    assert first.colormap.name == "gray" and tuple(first.contrast_limits) == (0.1, 0.5)
    widget.reset_contrast_button.changed.emit(True)
    assert tuple(first.contrast_limits) == pytest.approx(
        tuple(np.percentile(first.data, [0.5, 99.5])))
    widget.keep_previous.value = True
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    names = sorted(ly.name for ly in fused_layers(viewer))
    assert "fused Dy (run 2)" in names and "fused Dy" in names and len(names) == 6
    # fused layers are never offered as inputs
    assert all(not ly.name.startswith("fused") for ly, _ in widget.inputs.selected())


def test_removing_an_input_layer_mid_run_stops_cleanly(viewer, widget, qtbot):
    add_dysco3(viewer)
    widget.params_panel.n_iter.value = 10000
    assert widget.run()
    qtbot.waitUntil(lambda: bool(fused_layers(viewer)), timeout=30000)
    viewer.layers.remove("O")
    qtbot.waitUntil(lambda: not widget.running, timeout=5000)
    assert "input layer 'O' was removed" in widget.status.value
    assert widget.result is not None


def test_closing_the_viewer_mid_run_ends_the_worker(qtbot):
    v = napari.Viewer(show=False)
    w = FusionWidget(v)
    v.window.add_dock_widget(w, name="Fuse chemical maps")
    for name, arr in _data().items():  # 1024 x 1024 and many TV steps: slow iterations, so
        v.add_image(np.tile(arr, (4, 4)), name=name)  # the thread outlives a close that
    w.params_panel.n_iter.value = 10000                 # does not wait for it
    w.params_panel.n_iter_tv.value = 60
    assert w.run()
    worker = w._worker
    qtbot.waitUntil(lambda: w.progress.value > 0, timeout=30000)
    stop = w._stop
    with qtbot.waitSignal(worker.finished, timeout=5000):
        v.close()
        # close() waited for the worker thread: nothing is left to emit into deleted objects
        assert stop.ended.is_set()
    assert not w.running


def test_save_writes_hdf5_and_tiff(viewer, widget, qtbot, tmp_path):
    import fusedem.io as io
    add_dysco3(viewer)
    with pytest.raises(ValueError, match="run the fusion first"):
        widget.save(tmp_path / "none.h5")
    widget.params_panel.n_iter.value = 4
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    (h5,) = widget.save(tmp_path / "fused.h5")
    back = io.load_result(h5)
    np.testing.assert_allclose(back.maps["Dy"], widget.result.maps["Dy"])
    assert len(back.costs["tv"]) == 4
    paths = widget.save(tmp_path / "fused.tif")
    assert all(Path(p).exists() for p in paths)
    with pytest.raises(FileExistsError):
        widget.save(tmp_path / "fused.h5")


def test_screenshots_mid_run_and_at_the_end(viewer, qtbot):
    """Whole-window screenshots for a human to look at (tests/screenshots/, git-ignored)."""
    SHOTS.mkdir(exist_ok=True)
    viewer.window.resize(1400, 950)
    widget = FusionWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Fuse chemical maps")
    add_dysco3(viewer)
    draw_region(viewer, widget, 40, 200, 30, 230)
    viewer.layers.selection.active = viewer.layers["HAADF"]
    viewer.reset_view()
    widget.params_panel.n_iter.value = 10000
    assert widget.run()
    assert widget.scroll.verticalScrollBar().value() == 0  # starting a run does not scroll
    qtbot.waitUntil(lambda: widget.progress.value > 1500, timeout=60000)
    viewer.window.screenshot(str(SHOTS / "fusion_mid_run.png"), canvas_only=False, flash=False)
    assert widget.running
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=10000)
    widget.params_panel.n_iter.value = 30
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    viewer.window.screenshot(str(SHOTS / "fusion_end.png"), canvas_only=False, flash=False)
    assert (SHOTS / "fusion_end.png").stat().st_size > 10000


def test_dysco3_sample_through_the_plugin_manifest(viewer, qtbot):
    """The manifest's sample data and dock widget work together (metadata contract)."""
    try:
        viewer.open_sample("fusedem", "dysco3")
    except Exception as exc:  # the sample-data contribution belongs to the IO work
        pytest.skip(f"fusedem sample data not available: {exc}")
    _, widget = viewer.window.add_plugin_dock_widget("fusedem", "Fuse chemical maps")
    assert isinstance(widget, FusionWidget)
    assert widget.inputs.haadf.value is viewer.layers["HAADF"]
    assert [s for _, s in widget.inputs.selected()] == list(ELEMENTS)
    layer = widget.select_region_layer()
    layer.data = [np.array([[10, 20], [10, 120], [90, 120], [90, 20]], float)]
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    data = _data()
    ref = fusedem.fuse(data["HAADF"][10:91, 20:121],
                       {e: data[e][10:91, 20:121] for e in ELEMENTS}, fusedem.FusionParams())
    for e in ELEMENTS:
        np.testing.assert_allclose(viewer.layers[f"fused {e}"].data, ref.maps[e],
                                   rtol=1e-5, atol=1e-6)
        assert "sample data" in viewer.layers[f"fused {e}"].metadata["fusedem"]["source"]


def test_auto_lambda_haadf_shows_one_over_the_ticked_element_count(viewer, widget):
    add_dysco3(viewer)
    panel = widget.params_panel
    assert panel.haadf_auto.value and not panel.lambda_haadf.enabled
    assert panel.lambda_haadf.value == pytest.approx(1 / 3, abs=1e-3)
    assert panel.params().lambda_haadf is None  # auto: the solver's 1/n, not the shown value
    widget.inputs._rows[id(viewer.layers["O"])].use.value = False
    assert panel.lambda_haadf.value == pytest.approx(0.5)
    panel.haadf_auto.value = False  # manual: starts from the auto value, then editable
    assert panel.lambda_haadf.enabled and panel.params().lambda_haadf == pytest.approx(0.5)
    panel.lambda_haadf.value = 0.8
    assert panel.params().lambda_haadf == pytest.approx(0.8)
    widget.inputs._rows[id(viewer.layers["O"])].use.value = True
    assert panel.lambda_haadf.value == pytest.approx(0.8)  # a manual value is kept
    panel.haadf_auto.value = True
    assert panel.lambda_haadf.value == pytest.approx(1 / 3, abs=1e-3)
    # the defaults differ from the DyScO3 preset only in map scaling (max vs minmax)
    assert panel.params() == fusedem.FusionParams() and panel.preset.value == "custom"


def test_docked_panel_starts_at_its_top_and_fits_its_width(viewer, qtbot):
    from qtpy.QtCore import QRect

    SHOTS.mkdir(exist_ok=True)
    viewer.window.resize(1400, 950)
    widget = FusionWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Fuse chemical maps")
    add_dysco3(viewer)
    qtbot.wait(50)
    viewer.window.screenshot(str(SHOTS / "fusion_docked.png"), canvas_only=False, flash=False)
    scroll = widget.scroll
    assert dock.isAncestorOf(scroll) and scroll.isAncestorOf(widget.inputs.native)
    assert scroll.verticalScrollBar().value() == 0 and scroll.verticalScrollBar().maximum() > 0
    heading = widget.body[0].native  # the "Inputs" heading, shown whole
    assert "Inputs" in widget.body[0].value
    top_left = heading.mapTo(scroll.viewport(), heading.rect().topLeft())
    assert heading.height() > 0 and top_left.y() >= 0
    assert scroll.viewport().rect().contains(QRect(top_left, heading.size()))
    assert widget.body.native.width() <= scroll.viewport().width()  # nothing cut on the right


def _series(data: dict, n: int) -> dict:
    """(n, ny, nx) frame series: frame k is the DyScO3 scan shifted by 9 k pixels."""
    return {k: np.stack([np.roll(v, 9 * f, axis=1) for f in range(n)]) for k, v in data.items()}


@pytest.mark.parametrize("case", ["all_series", "mixed"])
def test_frame_series_fuse_the_frame_shown_by_the_slider(viewer, widget, qtbot, case):
    data = _data()
    series = _series(data, 4)
    for name in ("HAADF", *ELEMENTS):
        role = "haadf" if name == "HAADF" else "element"
        meta = {"fusedem": {"role": role, "source": "series.h5",
                            **({"element": name} if role == "element" else {})}}
        if name == "HAADF" or case == "all_series":
            viewer.add_image(series[name], name=name, scale=(1.0, *SCALE),
                             translate=(0.0, *TRANSLATE), metadata=meta)
        else:  # mixed: 2-D maps with a HAADF series whose last two dims agree
            viewer.add_image(data[name], name=name, scale=SCALE, translate=TRANSLATE,
                             metadata=meta)
    assert [s for _, s in widget.inputs.selected()] == list(ELEMENTS)
    viewer.dims.set_current_step(0, 2)
    assert "frame 2 (0–3)" in widget.status.value and widget.run_button.enabled
    y0, y1, x0, x1 = 30, 94, 40, 120
    draw_region(viewer, widget, y0, y1, x0, x1)
    widget.params_panel.n_iter.value = 3
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    assert "Done" in widget.progress_label.value and "of frame 2 (0–3)" in widget.progress_label.value
    maps = series if case == "all_series" else data
    ref = fusedem.fuse(series["HAADF"][2, y0:y1, x0:x1],
                       {e: (maps[e][2] if case == "all_series" else maps[e])[y0:y1, x0:x1]
                        for e in ELEMENTS}, widget.params_panel.params())
    for e in ELEMENTS:
        layer = viewer.layers[f"fused {e}"]
        assert layer.ndim == 2 and layer.metadata["fusedem"]["frame"] == 2
        np.testing.assert_allclose(layer.data, ref.maps[e], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.scale, SCALE)
        np.testing.assert_allclose(layer.data_to_world((0, 0)),
                                   np.asarray(viewer.layers["HAADF"].data_to_world((2, y0, x0)))[1:])
    # a series shorter than the frame shown: a clear message, Run disabled
    viewer.add_image(series["HAADF"][:2], name="short", scale=(1.0, *SCALE),
                     translate=(0.0, *TRANSLATE))
    widget.inputs.haadf.value = viewer.layers["short"]
    assert not widget.run_button.enabled and "has frames 0–1" in widget.status.value
