"""The writer saves denoised spectrum images, EELS edge maps and composition layers, and
the reader gives them back with the same metadata (run under Xvfb)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import napari  # noqa: F401  (the testing extra installs it)

sys.path.insert(0, str(Path(__file__).parent))
from test_eels import AXIS as EELS_AXIS, _cube, _truth  # noqa: E402

pytestmark = pytest.mark.gui

WINDOWS = {"Fe": {"pre_edge": (600.0, 695.0), "integration": (708.0, 800.0)}}


@pytest.fixture
def notifications():
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def grab(event):
        seen.append(str(getattr(event, "message", event)))

    notification_manager.notification_ready.connect(grab)
    yield seen
    notification_manager.notification_ready.disconnect(grab)


def _spectrum_step_layers(viewer):
    """An EELS cube, its edge maps (Fe windows edited), at.% layers and a PCA cube, made
    with the panel's own helpers (the metadata the panel writes)."""
    from fusedem.napari._composition_step import CompositionStep
    from fusedem.napari._element_layers import put_element_layer
    from fusedem.napari._pca_step import denoised_layer
    from fusedem.spectra import denoise_pca, extract_edge_maps

    raw = np.moveaxis(_cube(_truth((12, 14)), dose=5.0, seed=2), -1, 0)
    md = {"role": "spectrum_image", "source": "synthetic.hspy", "signal_type": "EELS",
          "energy_axis": {"offset": EELS_AXIS.offset, "scale": EELS_AXIS.scale, "units": "eV",
                          "size": EELS_AXIS.size, "axis": 0}}
    si = viewer.add_image(raw, name="EELS SI", metadata={"fusedem": md},
                          scale=(0.5, 2.0, 2.0), translate=(200.0, 4.0, 6.0),
                          units=("eV", "nm", "nm"))
    res = extract_edge_maps(raw, EELS_AXIS, ["C", "Fe"], axis=0, windows=WINDOWS)
    for i, el in enumerate(res.elements):
        put_element_layer(viewer, si, res, el, i, 0)
    step = CompositionStep(viewer, lambda: si)
    step.kfactors.value = "C=1.0, Fe=2.5"
    assert step.run(), step.status.value
    denoised_layer(viewer, si, denoise_pca(raw, 3, axis=0))
    return si


def test_writer_round_trip_of_edge_maps_composition_and_denoised_cube(viewer, tmp_path,
                                                                      notifications):
    import fusedem.io
    from fusedem.napari.spectrum_widget import is_spectrum_layer

    _spectrum_step_layers(viewer)
    out = tmp_path / "steps.h5"
    assert viewer.layers.save(str(out), plugin="fusedem") == [str(out)]
    assert any("saved 5 layers" in m and "1 other selected layers not saved" in m
               for m in notifications), notifications
    ds = fusedem.io.load(out)
    by_name = {ly.name: ly for ly in ds.layers}
    assert set(by_name) == {"C", "Fe", "at.% C", "at.% Fe", "EELS SI PCA"}
    fe = by_name["Fe"]
    assert fe.role == "element" and fe.metadata["modality"] == "EELS"
    assert fe.metadata["windows"]["pre_edge_ev"] == [600.0, 695.0]
    assert fe.metadata["windows"]["edited"] is True and fe.metadata["edge"] == "Fe_L2,3"
    assert "n_failed_fits" in fe.metadata and fe.metadata["background"].startswith("power law")
    at = by_name["at.% Fe"]
    assert at.role == "composition" and at.metadata["kfactors"] == {"C": 1.0, "Fe": 2.5}
    pca = by_name["EELS SI PCA"]
    assert pca.role == "denoised_spectrum_image" and pca.metadata["pca"]["n_components"] == 3
    assert pca.energy_axis["axis"] == 0 and pca.data.shape == viewer.layers["EELS SI"].data.shape
    # reopened in napari: same data, placement and metadata; the cube is extractable again
    v2 = napari.Viewer(show=False)
    try:
        v2.open(str(out), plugin="fusedem")
        for name in by_name:
            a, b = viewer.layers[name], v2.layers[name]
            np.testing.assert_allclose(b.data, np.asarray(a.data, np.float32), rtol=1e-6)
            np.testing.assert_allclose(b.scale, a.scale)
            np.testing.assert_allclose(b.translate, a.translate)
            ma, mb = a.metadata["fusedem"], b.metadata["fusedem"]
            for key in set(ma) - {"Z"}:
                assert mb[key] == (list(ma[key]) if isinstance(ma[key], tuple) else ma[key]) \
                    or np.allclose(mb[key], ma[key]), (name, key)
        assert is_spectrum_layer(v2.layers["EELS SI PCA"])
        assert v2.layers["at.% Fe"].colormap.name == "viridis"
    finally:
        v2.close()


def test_writer_refuses_tiff_and_overwrite_for_spectrum_layers(viewer, tmp_path, notifications):
    _spectrum_step_layers(viewer)
    tif = tmp_path / "steps.tif"
    assert viewer.layers.save(str(tif), plugin="fusedem") == []
    assert not tif.exists() and any("use an .h5" in m for m in notifications)
    out = tmp_path / "steps.h5"
    assert viewer.layers.save(str(out), plugin="fusedem") == [str(out)]
    stamp = out.stat().st_mtime_ns
    assert viewer.layers.save(str(out), plugin="fusedem") == []
    assert out.stat().st_mtime_ns == stamp and any("refusing to overwrite" in m for m in notifications)
    for ly in list(viewer.layers):  # only a raw cube selected: nothing to save, said so
        if ly.name != "EELS SI":
            viewer.layers.remove(ly)
    assert viewer.layers.save(str(tmp_path / "raw.h5"), plugin="fusedem") == []
    assert any("at.%' composition layers" in m for m in notifications)
