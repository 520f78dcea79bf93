"""Issue 11, items 1-6: what a microscopist met in the panels on real data, in a real
(hidden) napari viewer under Xvfb, each with a screenshot in tests/screenshots/ to look at."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import napari  # noqa: E402  (the testing extra installs it)

import fusedem
from fusedem.elements import element_colour
from fusedem.napari._crop import crop_for
from fusedem.napari.fusion_widget import FusionWidget
from fusedem.napari.spectrum_widget import SpectrumWidget

sys.path.insert(0, str(Path(__file__).parent))
from test_fusion_widget import ELEMENTS, _data, add_dysco3, fused_layers  # noqa: E402
from test_napari_io import notifications  # noqa: E402,F401  (fixture)
from test_spectrum_widget import _metadata, _si_layer_data  # noqa: E402

SHOTS = Path(__file__).parent / "screenshots"
PIXEL_NM = 3.599  # the Velox file's pixel size: 3 * s / s == 3.0000000000000004


def _shot(viewer, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / name
    viewer.window.screenshot(str(path), canvas_only=False, flash=False)
    assert path.stat().st_size > 10000
    return path


@pytest.fixture
def docked(viewer, qtbot):
    """The fusion panel docked in a 1280 x 800 window (a laptop screen)."""
    viewer.window.resize(1280, 800)
    widget = FusionWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Fuse chemical maps")
    yield widget
    if widget.running:
        widget.stop()
        qtbot.waitUntil(lambda: not widget.running, timeout=10000)


def _run(widget, qtbot, n_iter: int = 30) -> None:
    widget.params_panel.n_iter.value = n_iter
    assert widget.run(), widget.status.value
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)


# ---- 1. contrast --------------------------------------------------------------------
def test_run_ends_with_contrast_limits_that_fit_the_result(viewer, docked, qtbot):
    add_dysco3(viewer)
    _run(docked, qtbot)
    for e in ELEMENTS:
        layer = viewer.layers[f"fused {e}"]
        lo, hi = np.percentile(layer.data, [0.5, 99.5])
        assert tuple(layer.contrast_limits) == pytest.approx((lo, hi), rel=1e-5)
    # the user's limits on one layer survive the next run; the others are fitted again
    viewer.layers["fused Dy"].contrast_limits = (0.0, 0.9)
    _run(docked, qtbot, n_iter=60)
    assert tuple(viewer.layers["fused Dy"].contrast_limits) == (0.0, 0.9)
    sc = viewer.layers["fused Sc"]
    assert tuple(sc.contrast_limits) == pytest.approx(
        tuple(np.percentile(sc.data, [0.5, 99.5])), rel=1e-5)
    for name in ("HAADF", *ELEMENTS):
        viewer.layers[name].visible = False  # the fused maps alone, as fitted
    viewer.layers["fused Dy"].contrast_limits = tuple(np.percentile(
        viewer.layers["fused Dy"].data, [0.5, 99.5]))
    viewer.reset_view()
    _shot(viewer, "item1_contrast_after_run.png")


# ---- 2. colours ---------------------------------------------------------------------
def test_one_element_one_colour_in_inputs_fused_layers_extraction_and_demo(viewer, docked,
                                                                           qtbot, tmp_path):
    from fusedem.demo import COLOURS

    # input layers from the plugin's reader, in two files with different element orders
    data = _data()
    np.savez(tmp_path / "a.npz", **{k: data[k] for k in ("HAADF", *ELEMENTS)})
    np.savez(tmp_path / "b.npz", **{k: data[k][:64, :64] for k in ("HAADF", *ELEMENTS[::-1])})
    viewer.open(str(tmp_path / "b.npz"), plugin="fusedem")
    b_colours = {e: tuple(viewer.layers[e].colormap.colors[-1][:3]) for e in ELEMENTS}
    viewer.layers.clear()
    viewer.open(str(tmp_path / "a.npz"), plugin="fusedem")
    _run(docked, qtbot, n_iter=30)
    for e in ELEMENTS:
        want = pytest.approx(element_colour(e))
        assert tuple(viewer.layers[e].colormap.colors[-1][:3]) == want
        assert tuple(viewer.layers[f"fused {e}"].colormap.colors[-1][:3]) == want
        assert b_colours[e] == want and COLOURS[e] == element_colour(e)
    assert len({element_colour(e) for e in ELEMENTS}) == 3
    # the extraction panel paints Fe and Ti maps in their colours too
    data, _ = _si_layer_data()
    viewer.add_image(data, name="EDS", metadata=_metadata(), scale=(10.0, 2.0, 2.0),
                     units=("eV", "nm", "nm"))
    spectrum = SpectrumWidget(viewer)
    spectrum.layer_combo.value = viewer.layers["EDS"]
    spectrum.set_elements(["Ti", "Fe"])
    assert spectrum.extract()
    qtbot.waitUntil(lambda: not spectrum.busy and len(spectrum.extracted) == 2, timeout=30000)
    for layer in spectrum.extracted:
        assert tuple(layer.colormap.colors[-1][:3]) == pytest.approx(element_colour(layer.name))
    viewer.layers.remove("EDS")
    for layer in spectrum.extracted:
        viewer.layers.remove(layer)
    for name in ("HAADF", *ELEMENTS):  # fused maps over the scan; inputs: see thumbnails
        viewer.layers[name].visible = False
    viewer.reset_view()
    _shot(viewer, "item2_colours.png")


# ---- 3. layout ----------------------------------------------------------------------
def _visible_in(widget, container) -> bool:
    """True when ``widget`` is shown whole inside ``container`` (not cut, not scrolled off)."""
    from qtpy.QtCore import QRect

    top_left = widget.mapTo(container, widget.rect().topLeft())
    return (widget.isVisibleTo(container) and widget.height() > 0
            and container.rect().contains(QRect(top_left, widget.size())))


def test_both_docks_at_1280x800_keep_run_and_its_reason_in_view(viewer, qtbot):
    viewer.window.resize(1280, 800)
    viewer.window._qt_window.show()
    viewer.open_sample("fusedem", "dysco3")
    fdock, fusion = viewer.window.add_plugin_dock_widget("fusedem", "Fuse chemical maps")
    sdock, spectrum = viewer.window.add_plugin_dock_widget("fusedem", "Extract elemental maps")
    fusion.inputs.haadf.value = None  # a long reason for a disabled Run
    assert not fusion.run_button.enabled and "No HAADF" in fusion.status.value
    footer = fusion.footer.native  # the longer text is laid out on the next event loop turn
    qtbot.waitUntil(lambda: footer.height() >= footer.minimumSizeHint().height(), timeout=5000)
    for w in (fusion.run_button, fusion.stop_button, fusion.status, fusion.progress_label):
        assert _visible_in(w.native, fdock), w
    for w in (spectrum.extract_button, spectrum.status):
        assert _visible_in(w.native, sdock), w
    # the scrolled parts keep room to work in, in both docks
    assert fusion.scroll.height() >= 150 and spectrum.scroll.height() >= 130
    # the reason sits right under Run
    gap = (fusion.status.native.mapTo(fdock, fusion.status.native.rect().topLeft()).y()
           - fusion.run_button.native.mapTo(fdock, fusion.run_button.native.rect().bottomLeft()).y())
    assert 0 <= gap < 30
    _shot(viewer, "item3_two_docks_1280x800.png")
    fusion.inputs.haadf.value = viewer.layers["HAADF"]
    assert fusion.run_button.enabled


# ---- 4. validation before Run ----------------------------------------------------------
def test_constant_haadf_is_refused_before_run_and_shown_grey(viewer, docked, qtbot, tmp_path,
                                                               notifications):
    rng = np.random.default_rng(0)
    path = tmp_path / "saturated.npz"  # a saturated Velox HAADF: 65535 everywhere
    np.savez(path, HAADF=np.full((16, 16), 65535, np.uint16),
             **{e: rng.poisson(3, (16, 16)).astype(np.float32) for e in ("Cu", "O", "C")})
    viewer.open(str(path), plugin="fusedem")
    haadf = viewer.layers["HAADF"]
    assert docked.inputs.haadf.value is haadf
    assert not docked.run_button.enabled
    status = docked.status.value
    assert "HAADF 'HAADF'" in status and "constant (65535)" in status
    assert "saturated" in status and "Ready" not in status
    # not a black canvas: a constant image is shown mid-grey, and the reader says why
    lo, hi = haadf.contrast_limits
    assert lo < 65535 < hi
    assert any("constant" in m and "HAADF" in m for m in notifications), notifications
    for e in ("Cu", "O", "C"):
        viewer.layers[e].visible = False
    viewer.layers.selection.active = haadf
    _shot(viewer, "item4_constant_haadf.png")
    assert docked.run() is False and not docked.running and not fused_layers(viewer)
    # a map with NaN is named as well, also before Run
    viewer.layers["HAADF"].data = rng.random((16, 16))
    viewer.layers["O"].data = np.where(np.eye(16, dtype=bool), np.nan, 1.0)
    assert not docked.run_button.enabled and "map O 'O'" in docked.status.value
    assert "NaN" in docked.status.value


# ---- 5. panel text follows the layers ---------------------------------------------------
def test_panel_text_follows_the_current_layers(viewer, docked, qtbot, tmp_path):
    add_dysco3(viewer)
    viewer.add_image(np.zeros((16, 16)), name="small")
    _run(docked, qtbot, n_iter=3)
    assert "Done" in docked.progress_label.value and docked.progress.value == 3
    assert "whole image (256 x 256 px)" in docked.region_label.value
    viewer.layers.clear()
    assert docked.region_label.value == ""
    assert docked.progress_label.value == "" and docked.progress.value == 0
    assert "Nothing to fuse yet: open a HAADF image" in docked.status.value
    assert not docked.save_button.enabled
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "scan50.npz", HAADF=rng.random((50, 50)), Cu=rng.random((50, 50)))
    viewer.open(str(tmp_path / "scan50.npz"), plugin="fusedem")
    assert "whole image (50 x 50 px)" in docked.region_label.value
    assert "Ready: Cu" in docked.status.value
    _shot(viewer, "item5_after_switching_files.png")
    # inputs closed but fused layers kept: the panel says so instead of a stale 'Done'
    _run(docked, qtbot, n_iter=3)
    viewer.layers.remove("HAADF")
    assert "inputs of the last run were closed" in docked.progress_label.value
    assert docked.save_button.enabled and docked.progress.value == 0


def test_extract_panel_forgets_the_last_extraction_when_the_file_changes(viewer, qtbot):
    data, _ = _si_layer_data()
    viewer.add_image(data, name="EDS", metadata=_metadata(), scale=(10.0, 2.0, 2.0))
    panel = SpectrumWidget(viewer)
    panel.layer_combo.value = viewer.layers["EDS"]
    panel.set_elements(["Ti", "Fe"])
    assert panel.extract()
    qtbot.waitUntil(lambda: not panel.busy and "Extracted" in panel.job_status.value,
                    timeout=30000)
    viewer.layers.clear()
    assert "Extracted" not in panel.job_status.value
    viewer.add_image(data, name="EDS 2", metadata=_metadata(), scale=(10.0, 2.0, 2.0))
    panel.layer_combo.value = viewer.layers["EDS 2"]
    assert "Extracted" not in panel.job_status.value


# ---- 6. region on calibrated data ------------------------------------------------------
def test_region_on_a_calibrated_file_uses_its_units_and_rounds_robustly(viewer, docked, qtbot,
                                                                       tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "calibrated.npz"  # 16 x 16 scan, 3.599 nm pixels, as the Velox file
    np.savez(path, HAADF=rng.random((16, 16)), Cu=rng.random((16, 16)),
             O=rng.random((16, 16)), scale=np.array([PIXEL_NM * 10, PIXEL_NM * 10]),
             units=np.array("Å"))
    viewer.open(str(path), plugin="fusedem")
    haadf = viewer.layers["HAADF"]
    assert [str(u) for u in haadf.units] == ["nanometer", "nanometer"]
    region = docked.select_region_layer()
    assert tuple(region.units) == tuple(haadf.units)
    np.testing.assert_allclose(region.scale, haadf.scale)
    assert region.current_edge_width <= 0.1  # pixels: a thin line on a 16 x 16 scan
    assert viewer.layers.extent.units is not None  # else napari: "Inconsistent units ..."
    # a rectangle through the pixel centres of rows 2..13, cols 3..14 (world: nm)
    corners = np.array([[2, 3], [2, 14], [13, 14], [13, 3]], float) * PIXEL_NM
    region.add_rectangles([corners / np.asarray(region.scale)])  # as drawn with the mouse
    assert region.edge_width[-1] <= 0.1
    crop = crop_for(haadf, region)
    assert (crop.y0, crop.y1, crop.x0, crop.x1) == (2, 14, 3, 15)
    assert "rows 2:14, cols 3:15 (12 x 12 px)" in docked.region_label.value
    viewer.layers.selection.active = haadf
    viewer.reset_view()
    _shot(viewer, "item6_region_on_calibrated_scan.png")
    _run(docked, qtbot, n_iter=3)
    np.testing.assert_allclose(viewer.layers["fused Cu"].data_to_world((0, 0)),
                               haadf.data_to_world((2, 3)))


@pytest.mark.parametrize("scale", [0.1, 0.3, 0.7, 1.1, 3.599, 0.2485, 12.73, 11.81])
def test_region_edges_on_pixel_centres_never_shift_by_a_pixel(viewer, scale):
    image = viewer.add_image(np.zeros((64, 64)), scale=(scale, scale), translate=(0.3, -1.7))
    shapes = viewer.add_shapes(ndim=2, scale=(scale, scale), translate=(0.3, -1.7))
    for lo in range(0, 40, 3):
        hi = lo + 17
        corners = np.array([[lo, lo], [lo, hi], [hi, hi], [hi, lo]], float)
        world = corners * scale + np.array([0.3, -1.7])  # as a user's click lands in nm
        shapes.data = [(world - np.array([0.3, -1.7])) / scale]
        crop = crop_for(image, shapes)
        assert (crop.y0, crop.y1, crop.x0, crop.x1) == (lo, hi + 1, lo, hi + 1), (scale, lo)


def test_fusedem_api_colours_are_stable():
    assert element_colour("Co-EELS") == element_colour("Co")
    assert element_colour("Yb") == element_colour("yb")  # not in the table: from Z
    with pytest.raises(ValueError, match="unknown element"):
        element_colour("Xx")
    assert fusedem.atomic_number("Sc") == 21


# ---- 7. error notifications: the reason first ------------------------------------------
def test_reader_errors_put_the_reason_before_the_long_path(viewer, tmp_path, notifications):
    deep = tmp_path / "a" / "very" / "long" / "folder" / "of" / "a" / "microscope" / "session"
    deep.mkdir(parents=True)
    (deep / "notes.h5").write_text("exported by hand\n")
    np.savez(deep / "shapes.npz", HAADF=np.ones((8, 8)), Dy=np.ones((8, 9)))
    for name, reason in (("notes.h5", "not an HDF5 file"), ("shapes.npz", "different shapes")):
        before = len(notifications)
        assert viewer.open(str(deep / name), plugin="fusedem") == []
        (msg,) = [m for m in notifications[before:] if name in m]
        assert reason in msg[:60] and msg.index(reason) < msg.index(str(deep)), msg


# ---- 9. no image named HAADF (SEM files) -------------------------------------------------
def test_without_a_haadf_the_panel_names_the_images_of_the_maps_shape(viewer, docked, tmp_path):
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "sem.npz", BSE=rng.random((50, 50)), Cu=rng.random((50, 50)),
             O=rng.random((50, 50)))
    viewer.open(str(tmp_path / "sem.npz"), plugin="fusedem")
    viewer.add_image(rng.random((82, 110)), name="overview",
                     metadata={"fusedem": {"role": "image"}})
    assert docked.inputs.haadf.value is None and not docked.run_button.enabled
    status = docked.status.value
    assert "'BSE' has the maps' shape" in status and "overview" not in status
    assert "rough proxy" in status and "Open Sample" not in status
    docked.inputs.haadf.value = viewer.layers["BSE"]
    assert docked.run_button.enabled and "Ready: Cu, O." in docked.status.value
    assert "rough proxy" in docked.status.value  # said where the user picks it


# ---- 10. a file with EELS and EDS maps of the same elements ------------------------------
def test_empty_and_second_maps_of_an_element_start_unticked(viewer, docked, qtbot):
    """A Velox file can hold EELS edge maps and EDS maps of the same elements, some of them
    empty: Run must work straight away, fusing each element once, from a map with data;
    the rows say why they are not ticked, and the user can still choose."""
    rng = np.random.default_rng(6)
    viewer.add_image(rng.random((24, 20)) + 1, name="DF-S", metadata={"fusedem": {"role": "haadf"}})

    def add(name, el, data, modality):
        viewer.add_image(data, name=name, metadata={"fusedem": {
            "role": "element", "element": el, "modality": modality}})

    for el in ("Fe", "Co", "O"):
        add(f"{el}-EELS", el, rng.poisson(5.0, (24, 20)).astype(float), "EELS")
    add("Co", "Co", rng.poisson(3.0, (24, 20)).astype(float), "EDS")  # a second Co map
    add("Fe", "Fe", np.zeros((24, 20)), "EDS")  # an empty channel
    rows = {r.layer.name: r for r in docked.inputs._rows.values()}
    assert [ly.name for ly, _ in docked.inputs.selected()] == ["Fe-EELS", "Co-EELS", "O-EELS"]
    assert "'Co-EELS' is the Co map ticked first" in rows["Co"].use.tooltip
    assert "constant (0)" in rows["Fe"].use.tooltip
    assert docked.run_button.enabled and "Ready: Fe, Co, O." in docked.status.value
    _run(docked, qtbot, n_iter=5)
    assert sorted(ly.name for ly in fused_layers(viewer)) == ["fused Co", "fused Fe", "fused O"]
    # the user's choice stands: ticking the second Co map says what to do
    rows["Co"].use.value = True
    assert not docked.run_button.enabled and "ticked twice" in docked.status.value
    rows["Co-EELS"].use.value = False
    assert docked.run_button.enabled
    # a layer added later does not untick what the user chose
    add("O2", "O", rng.poisson(4.0, (24, 20)).astype(float), "EDS")
    rows = {r.layer.name: r for r in docked.inputs._rows.values()}
    assert rows["Co"].use.value and not rows["O2"].use.value and rows["O-EELS"].use.value


def test_the_first_run_shows_the_fused_maps_alone_not_washed_out_by_the_haadf(qtbot):
    """Open → Run with nothing changed: the fused colour maps (additive) used to sit on the
    full-brightness HAADF, and 12 % of the DyScO3 canvas (a third on the Bruker file) was
    pure white. The first run hides the HAADF and the input maps; a layer the user shows
    again stays shown in later runs."""
    v = napari.Viewer(show=True)  # on Xvfb; a hidden window's canvas reads back black
    try:
        v.window.resize(1280, 800)
        widget = FusionWidget(v)
        v.window.add_dock_widget(widget, name="Fuse chemical maps")
        add_dysco3(v)
        _run(widget, qtbot)
        assert not v.layers["HAADF"].visible
        assert not any(v.layers[e].visible for e in ELEMENTS)
        assert all(v.layers[f"fused {e}"].visible for e in ELEMENTS)
        v.reset_view()
        qtbot.wait(200)
        rgb = v.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        _shot(v, "first_run_fused_alone.png")
        inside = rgb.sum(axis=-1) > 30  # the image, not the black margins
        white = (rgb.min(axis=-1) > 245) & inside
        assert inside.mean() > 0.3, "the fused maps are not shown"
        assert white.sum() / inside.sum() < 0.02, white.sum() / inside.sum()
        v.layers["HAADF"].visible = True
        _run(widget, qtbot, n_iter=10)
        assert v.layers["HAADF"].visible
    finally:
        v.close()


@pytest.mark.parametrize("what", ["tilt series", "spectrum image", "one image"])
def test_without_maps_run_says_which_panel_or_file_the_user_needs(viewer, docked, what):
    """A new user opened the tilt-series sample, an EELS spectrum image (Gatan dm4) or one
    STEM image (dm3) and met 'No HAADF image: open the HAADF ... (File > Open Sample)'."""
    rng = np.random.default_rng(0)
    md = lambda role: {"fusedem": {"role": role}}  # noqa: E731
    if what == "tilt series":
        viewer.add_image(rng.random((7, 32, 32)), name="HAADF tilts", metadata=md("haadf_tilts"))
        viewer.add_image(rng.random((7, 32, 32)), name="Fe tilts",
                         metadata={"fusedem": {"role": "element_tilts", "element": "Fe"}})
        want = "'HAADF tilts' is a tilt series: fuse it in the tilt-series panel"
    elif what == "spectrum image":
        viewer.add_image(rng.random((16, 16, 64)), name="EELS SI", metadata=md("spectrum_image"))
        want = "extract them from the spectrum image 'EELS SI' (Plugins > fusedem > Extract"
    else:
        viewer.add_image(rng.random((68, 68)), name="test_STEM_image", metadata=md("image"))
        want = "No elemental maps open: open the EDS/EELS maps of this scan"
    assert want in docked.status.value
    assert not docked.run_button.enabled and not docked.auto_button.enabled
    assert not docked.inputs.selected()  # no tilt series or cube offered as a 2-D map


def test_values_without_a_control_are_named_in_the_status(viewer, docked):
    """Auto may choose a λ TV per element or a TV step, which no control shows: the status
    line names them, so the panel never hides what the next Run will use."""
    add_dysco3(viewer)
    assert "Also in force" not in docked.status.value
    docked.params_panel.set_params(fusedem.FusionParams(
        lambda_tv_elements={"Sc": 0.075, "O": 0.3}, tv_step=0.5))
    docked.params_panel.lambda_chem.value = 0.05  # any edit revalidates, as in use
    text = docked.status.value
    assert "Also in force (no control): TV step 0.5, λ TV Sc 0.075, λ TV O 0.3" in text, text
    docked.params_panel.set_params(fusedem.FusionParams())
    docked.params_panel.lambda_chem.value = 0.05
    assert "Also in force" not in docked.status.value
