"""The "Fuse tilt series" panel under Xvfb: tilt series open as stacks with their angles,
a run streams 3-D volume layers, Stop keeps the last volumes, the writer saves them, and a
3-D screenshot of the bundled sample for a human to look at (tests/screenshots/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tomo_series import tilt_series, write_npz

pytest.importorskip("napari")

from fusedem.napari._tomo_layers import tilt_layer_data  # noqa: E402
from fusedem.napari.tomo_widget import TomoWidget  # noqa: E402
from fusedem.tomo.io import TiltSeries, load_tomo_result  # noqa: E402

SHOTS = Path(__file__).parent / "screenshots"


def add_series(viewer, n=16):
    haadf, ha, maps, ca = tilt_series(n)
    for data, kw, kind in tilt_layer_data(TiltSeries(haadf, ha, maps, ca, pixel_size=0.5, source="test")):
        viewer.add_image(data, **kw)
    return haadf, ha, maps, ca


@pytest.fixture
def widget(viewer, qtbot):
    w = TomoWidget(viewer)
    viewer.window.add_dock_widget(w, name="Fuse tilt series")
    return w


def test_reader_opens_stacks_with_angles_in_metadata(viewer, tmp_path):
    write_npz(tmp_path / "s.npz", 16)
    layers = viewer.open(str(tmp_path / "s.npz"), plugin="fusedem")
    names = [ly.name for ly in layers]
    assert names == ["HAADF tilts", "Au tilts", "Fe tilts"]
    md = viewer.layers["HAADF tilts"].metadata["fusedem"]
    assert md["role"] == "haadf_tilts" and len(md["angles"]) == 15 and md["angles"][0] == -70
    fe = viewer.layers["Fe tilts"].metadata["fusedem"]
    assert fe["role"] == "element_tilts" and fe["element"] == "Fe" and len(fe["angles"]) == 5
    assert viewer.layers["Au tilts"].data.shape == (5, 16, 16)
    assert viewer.dims.nsteps[0] == 15  # the slider walks the tilts


def test_panel_shows_inputs_angles_and_region(viewer, widget):
    add_series(viewer)
    assert widget.haadf.value is viewer.layers["HAADF tilts"]
    assert [ly.name for ly in widget.elements.value] == ["Au tilts", "Fe tilts"]
    assert "15 tilts, -70° … 70° (step 10°)" in widget.angles.value
    assert "5 tilts, -60° … 60° (step 30°)" in widget.angles.value
    assert (widget.y0.value, widget.y1.value, widget.crop_width.value) == (0, 16, 16)
    assert widget.run_button.enabled


def test_run_streams_volumes_in_3d_and_saves(viewer, widget, qtbot, tmp_path):
    add_series(viewer)
    widget.y0.value, widget.y1.value, widget.crop_width.value = 4, 12, 12
    widget.n_iter.value = 4
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)
    for el in ("Au", "Fe"):
        layer = viewer.layers[f"fused {el}"]
        assert layer.data.shape == (8, 12, 12)
        assert layer.rendering == "attenuated_mip" and layer.blending == "additive"
        md = layer.metadata["fusedem"]
        assert md["role"] == "volume" and md["region"] == {"slices": [4, 12], "columns": [2, 14]}
        assert layer.scale[0] == 0.5 and layer.translate[0] == pytest.approx(4 * 0.5)
    assert not viewer.layers["HAADF tilts"].visible
    assert widget.result.iterations == 4 and len(widget.plot._costs["haadf"]) == 4
    np.testing.assert_allclose(widget.result.volumes["Au"], viewer.layers["fused Au"].data)
    vols = [viewer.layers["fused Au"], viewer.layers["fused Fe"]]
    viewer.layers.selection.clear()
    viewer.layers.selection.update(vols)
    written = viewer.layers.save(str(tmp_path / "vol.h5"), selected=True, plugin="fusedem")
    back = load_tomo_result(written[0])
    np.testing.assert_allclose(back.volumes["Fe"], viewer.layers["fused Fe"].data)
    assert back.metadata["voxel_size"] == 0.5 and len(back.haadf_angles) == 15
    reopened = viewer.open(written[0], plugin="fusedem")
    assert [ly.name for ly in reopened] == ["fused Au [1]", "fused Fe [1]"]
    np.testing.assert_allclose(reopened[0].data, viewer.layers["fused Au"].data)
    assert reopened[0].metadata["fusedem"]["role"] == "volume" and reopened[0].rendering == "attenuated_mip"
    assert reopened[1].translate[0] == pytest.approx(4 * 0.5)
    viewer.layers.selection.clear()
    viewer.layers.selection.update(vols)
    mrcs = viewer.layers.save(str(tmp_path / "vol.mrc"), selected=True, plugin="fusedem")
    assert sorted(Path(p).name for p in mrcs) == ["vol_Au.mrc", "vol_Fe.mrc"]
    assert viewer.layers.save(str(tmp_path / "vol.h5"), selected=True, plugin="fusedem") == []


def test_stop_keeps_the_last_volumes(viewer, widget, qtbot):
    add_series(viewer)
    widget.n_iter.value = 5000
    assert widget.run()
    qtbot.waitUntil(lambda: widget._state is not None and widget._state.iteration > 3, timeout=60000)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=20000)
    assert 3 < widget.result.iterations < 5000
    assert "Stopped at iteration" in widget.progress_label.value


def test_bad_region_and_mismatched_layers_start_nothing(viewer, widget):
    add_series(viewer)
    widget.y0.value, widget.y1.value = 10, 5
    assert not widget.run() and "Slices 10:5 lie outside" in widget.status.value
    widget.y0.value, widget.y1.value = 0, 16
    viewer.layers["Fe tilts"].metadata["fusedem"]["angles"] = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert not widget.run() and "different angles" in widget.status.value
    assert "fused Au" not in viewer.layers


def test_sample_in_3d_screenshot(viewer, qtbot):
    """Open Sample, a few iterations, then the 3-D view; the PNG is for a human to look at."""
    SHOTS.mkdir(exist_ok=True)
    viewer.window.resize(1400, 950)
    viewer.open_sample("fusedem", "tomo_core_shell")
    assert viewer.layers["HAADF tilts"].data.shape[1:] == (64, 64)
    _, widget = viewer.window.add_plugin_dock_widget("fusedem", "Fuse tilt series")
    assert isinstance(widget, TomoWidget)
    widget.n_iter.value = 10
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=180000)
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    viewer.camera.angles = (-20, 30, 120)  # oblique: the particles on their C film
    path = SHOTS / "tomo_sample_3d.png"
    viewer.window.screenshot(str(path), canvas_only=False, flash=False)
    assert path.stat().st_size > 10000
    for el in widget.result.volumes:
        layer = viewer.layers[f"fused {el}"]
        assert layer.data.shape == (64, 64, 64) and layer.rendering == "attenuated_mip"
        assert layer.contrast_limits[1] == pytest.approx(float(layer.data.max()))
