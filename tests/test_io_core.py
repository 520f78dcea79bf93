"""fusedem.io without napari: bundles, instrument files, bad input, saving results."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from fusedem import FusionParams, FusionResult
from fusedem.io import DatasetLayer, ReadError, classify_name, load, load_result, save_result, sniff

DATA = Path(__file__).resolve().parents[1] / "src" / "fusedem" / "data"
from shared_data import VENDOR  # noqa: E402
needs_vendor = pytest.mark.skipif(not VENDOR.is_dir(), reason=f"vendor test files not present ({VENDOR})")


def _maps(shape=(12, 10), seed=0):
    rng = np.random.default_rng(seed)
    return {"HAADF": rng.random(shape) * 1e4, "Dy": rng.random(shape), "O": rng.random(shape)}


def _result(shape=(12, 10)) -> FusionResult:
    rng = np.random.default_rng(1)
    return FusionResult(
        maps={"Dy": rng.random(shape, dtype=np.float32), "O": rng.random(shape, dtype=np.float32)},
        haadf_model=rng.random(shape, dtype=np.float32),
        costs={k: np.linspace(1, 0.1, 5) for k in ("haadf", "chem", "tv")},
        params=FusionParams(lambda_chem=0.05), elements={"Dy": 66, "O": 8},
        weights={"Dy": 1.78, "O": 0.22}, elapsed=0.5, iterations=5,
        input_ranges={"HAADF": (0.0, 1e4), "Dy": (0.0, 1.0), "O": (0.0, 1.0)})


# --- naming ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("HAADF", ("haadf", None)), ("adf", ("haadf", None)), ("DF", ("haadf", None)), ("DF-S", ("haadf", None)),
    ("Dy", ("element", "Dy")), ("co-EELS", ("element", "Co")), ("O_K", ("element", "O")),
    ("BF", ("image", None)), ("arr_0", None), ("data", None), ("notes", None)])
def test_classify_name(name, expected):
    assert classify_name(name) == expected


# --- bundles --------------------------------------------------------------------------------
def test_npz_bundle_with_calibration(tmp_path):
    maps = _maps()
    p = tmp_path / "scan.npz"
    np.savez(p, **maps, scale=np.array([5.0, 5.0]), units=np.array("Å"))
    assert sniff(p) == "maps"
    ds = load(p)
    assert [ly.name for ly in ds.layers] == ["HAADF", "Dy", "O"]
    assert ds.haadf.role == "haadf" and list(ds.element_maps) == ["Dy", "O"]
    np.testing.assert_array_equal(ds.element_maps["Dy"].data, maps["Dy"])
    assert ds.haadf.scale == pytest.approx((0.5, 0.5)) and ds.haadf.units == ("nm", "nm")


def test_h5_bundle_case_insensitive_and_attrs(tmp_path):
    p = tmp_path / "scan.h5"
    with h5py.File(p, "w") as f:
        for k, v in _maps().items():
            f[k.lower() if k == "HAADF" else k] = v.astype(np.float32)
        f.attrs["pixel_size"] = 0.2
        f.attrs["units"] = "µm"
    ds = load(p)
    assert ds.haadf is not None and ds.haadf.metadata["original_name"] == "haadf"
    assert set(ds.element_maps) == {"Dy", "O"}
    assert ds.element_maps["O"].scale == pytest.approx((200.0, 200.0))


def test_tiff_folder_list_and_single(tmp_path):
    maps = _maps()
    for k, v in maps.items():
        tifffile.imwrite(tmp_path / f"{k}.tif", v.astype(np.float32))
    tifffile.imwrite(tmp_path / "overview.tif", np.zeros((3, 3), np.uint8))  # ignored
    assert sniff(tmp_path) == "maps"
    ds = load(tmp_path)
    assert sorted(ly.name for ly in ds.layers) == ["Dy", "HAADF", "O"]
    np.testing.assert_allclose(ds.element_maps["Dy"].data, maps["Dy"], rtol=1e-6)
    files = [tmp_path / "HAADF.tif", tmp_path / "O.tif"]
    assert sniff(files) == "maps"
    assert [ly.name for ly in load(files).layers] == ["HAADF", "O"]
    single = load(tmp_path / "Dy.tif")
    assert [(ly.name, ly.role) for ly in single.layers] == [("Dy", "element")]
    assert sniff(tmp_path / "overview.tif") is None


def test_foreign_bundles_not_claimed(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3), data=np.ones((4, 4)))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((4, 4))
    (tmp_path / "empty").mkdir()
    for p in ("other.npz", "other.h5", "empty", "missing.npz", "notes.txt"):
        assert sniff(tmp_path / p) is None, p
    assert sniff([]) is None


@pytest.mark.parametrize("name, elements, shape", [
    ("PTO_Trilayer_dataset.npz", ["Sc", "Dy", "O"], (256, 256)),
    ("Co3O4_Mn3O4.h5", ["Co", "Mn", "O"], (400, 400))])
def test_tutorial_data(name, elements, shape):
    ds = load(DATA / name)
    assert ds.haadf is not None and ds.haadf.data.shape == shape
    assert list(ds.element_maps) == elements
    assert all(ly.units == ("pixel", "pixel") for ly in ds.layers)


# --- instrument files -----------------------------------------------------------------------
@needs_vendor
def test_velox_maps_and_spectrum_image():
    ds = load(VENDOR / "velox_SI_16x16_maps_C_Ca_O_Cu.emd")
    assert list(ds.element_maps) == ["C", "Ca", "O", "Cu"] and ds.haadf.name == "HAADF"
    for ly in [ds.haadf, *ds.element_maps.values()]:
        assert ly.scale == pytest.approx((3.5992, 3.5992), rel=1e-4) and ly.units == ("nm", "nm")
        assert ly.translate == (0.0, 0.0)  # one scan, one origin
    (si,) = ds.spectrum_images
    assert si.data.shape == (4096, 16, 16) and si.units == ("keV", "nm", "nm")
    assert si.energy_axis == {"name": "X-ray energy", "offset": -0.25, "scale": 0.01, "units": "keV",
                              "size": 4096, "axis": 0}
    assert si.metadata["signal_type"] == "EDS_TEM"


@needs_vendor
def test_velox_eels_and_eds_maps_disambiguated():
    ds = load(VENDOR / "velox_EELS_EDS_16x20.emd")
    names = [ly.name for ly in ds.layers if ly.role == "element"]
    assert names == ["Fe-EELS", "Co-EELS", "O-EELS", "Co", "O", "Fe"]
    assert ds.haadf.name == "DF-S"
    eels = next(ly for ly in ds.layers if ly.name == "Fe-EELS")
    assert eels.units == ("nm", "nm") and eels.metadata["modality"] == "EELS"
    assert len({ly.name for ly in ds.spectrum_images}) == len(ds.spectrum_images) == 4


@needs_vendor
def test_bruker_and_gatan():
    ds = load(VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf")
    assert ds.haadf.scale == pytest.approx((0.771, 0.771), rel=1e-3)
    (si,) = ds.spectrum_images
    assert si.data.shape == (2048, 64, 64)
    assert si.metadata["elements"] == ["Cu", "O", "Pd", "Ti"] and si.metadata["beam_energy_keV"] == 200
    lazy = load(VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf", lazy=True)
    assert hasattr(lazy.spectrum_images[0].data, "compute")
    dm4 = load(VENDOR / "gatan_EELS_SI_2x2.dm4").spectrum_images[0]
    assert dm4.data.shape == (2048, 2, 2) and dm4.energy_axis["units"] == "eV"
    dm3 = load(VENDOR / "gatan_STEM_image_68x68.dm3").layers[0]
    assert dm3.role == "image" and dm3.scale == pytest.approx((0.2485, 0.2485), rel=1e-3)


# --- bad input ------------------------------------------------------------------------------
def _write_npz(p, **arrays):
    np.savez(p, **arrays)
    return p


def test_truncated_and_corrupt_files(tmp_path):
    good = _write_npz(tmp_path / "good.npz", **_maps((64, 64)))
    raw = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    corrupt = bytearray(raw)
    corrupt[200:3000] = os.urandom(2800)
    (tmp_path / "corrupt.npz").write_bytes(bytes(corrupt))
    with h5py.File(tmp_path / "good.h5", "w") as f:
        for k, v in _maps((64, 64)).items():
            f[k] = v
    h5raw = (tmp_path / "good.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(h5raw[: len(h5raw) // 3])
    (tmp_path / "garbage.emd").write_bytes(os.urandom(5000))
    (tmp_path / "garbage.bcf").write_bytes(b"not a bruker file" * 100)
    for name in ("trunc.npz", "corrupt.npz", "trunc.h5", "garbage.emd", "garbage.bcf"):
        p = tmp_path / name
        assert sniff(p) is not None, name  # claimed, so that the read reports the damage
        with pytest.raises(ReadError, match=str(p).replace(".", r"\.")):
            load(p)


@pytest.mark.parametrize("arrays, message", [
    ({"HAADF": np.ones((8, 8))}, "no elemental maps"),
    ({"HAADF": np.ones((8, 8)), "Dy": np.ones((8, 9))}, "different shapes"),
    ({"HAADF": np.ones((8, 8)), "Dy": np.array(["a", "b"])}, "not numeric"),
    ({"HAADF": np.ones((8, 8)), "Dy": np.array([{"a": 1}, None], dtype=object)}, "non-numeric"),
    ({"HAADF": np.ones((8, 8)), "Dy": np.ones((2, 8, 8))}, r"different shapes \(HAADF 8x8, Dy 2x8x8\)")])
def test_bad_bundles(tmp_path, arrays, message):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    assert sniff(p) == "maps"
    with pytest.raises(ReadError, match=message) as info:
        load(p)
    assert str(p) in str(info.value) and isinstance(info.value, ValueError)


def test_missing_path(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        load(tmp_path / "nope.npz")


# --- saving results -------------------------------------------------------------------------
def test_save_result_h5_round_trip(tmp_path):
    res = _result()
    out = tmp_path / "res.h5"
    written = save_result(out, res, inputs=["HAADF", "Dy", "O"], sources=["scan.npz"],
                          scale=(0.5, 0.5), units="nm")
    assert written == [out]
    back = load_result(out)
    for k, v in res.maps.items():
        np.testing.assert_array_equal(back.maps[k], v)
    np.testing.assert_array_equal(back.haadf_model, res.haadf_model)
    np.testing.assert_allclose(back.costs["tv"], res.costs["tv"])
    assert FusionParams.from_dict(back.params) == res.params
    md = back.metadata
    assert md["input_names"] == ["HAADF", "Dy", "O"] and md["sources"] == ["scan.npz"]
    assert md["elements"] == {"Dy": 66, "O": 8} and md["iterations"] == 5
    assert md["units"] == ["nm", "nm"] and md["scale"] == [0.5, 0.5] and md["fusedem_version"]
    ds = load(out)  # a result opens as layers too
    assert [(ly.name, ly.role) for ly in ds.layers] == [
        ("Dy (fused)", "fused"), ("O (fused)", "fused"), ("HAADF model", "haadf_model")]


def test_save_result_tiff_round_trip(tmp_path):
    res = _result()
    out = tmp_path / "res.tif"
    save_result(out, res, scale=(0.25, 0.25), units="nm")
    with tifffile.TiffFile(out) as tf:
        assert tf.is_imagej and tf.imagej_metadata["Labels"] == ["Dy", "O", "HAADF_model"]
        stack = tf.asarray()
    assert stack.shape == (3, 12, 10) and stack.dtype == np.float32
    ds = load(out)
    assert [ly.name for ly in ds.layers] == ["Dy (fused)", "O (fused)", "HAADF_model"]
    assert ds.layers[0].scale == pytest.approx((0.25, 0.25)) and ds.layers[0].units == ("nm", "nm")
    np.testing.assert_array_equal(ds.layers[1].data, res.maps["O"])


def test_save_refuses_overwrite_and_is_atomic(tmp_path, monkeypatch):
    res = _result()
    out = tmp_path / "res.h5"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_result(out, res)
    assert out.read_bytes() == b"precious"
    save_result(out, res, overwrite=True)
    assert load_result(out).maps.keys() == res.maps.keys()
    # the result is an ordinary file (mkstemp's 0600 would hide it from colleagues)
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask
    # a failure in the middle of writing leaves neither a result nor a temporary file
    import fusedem.io._results as results

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(results.np, "asarray", boom)
    with pytest.raises(OSError, match="disk full"):
        results.save_maps(tmp_path / "half.h5", {"Dy": np.ones((4, 4), np.float32)},
                          haadf_model=np.ones((4, 4)))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["res.h5"]


def test_load_result_rejects_plain_bundle(tmp_path):
    p = tmp_path / "maps.h5"
    with h5py.File(p, "w") as f:
        f["Dy"] = np.ones((4, 4))
    with pytest.raises(ReadError, match="not a fusedem result"):
        load_result(p)


def test_io_imports_no_gui():
    import subprocess
    import sys

    code = ("import sys, fusedem.io, fusedem.napari; "
            "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'magicgui') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def _eds_dataset(elements):
    from fusedem.io import Dataset, DatasetLayer

    rng = np.random.default_rng(3)
    e = 5.0 + 0.01 * np.arange(300)  # 5-8 keV
    amount = rng.uniform(0, 50, (12, 10))
    line = np.exp(-0.5 * ((e - 6.404) / 0.06) ** 2)  # Fe Ka
    si = rng.poisson(amount[None] * line[:, None, None] + 2.0)
    layer = DatasetLayer(name="EDS", data=si, role="spectrum_image", scale=(0.01, 2.0, 2.0),
                         units=("keV", "nm", "nm"),
                         energy_axis={"offset": 5.0, "scale": 0.01, "units": "keV", "size": 300, "axis": 0},
                         metadata={"signal_type": "EDS_TEM", "elements": elements, "beam_energy_keV": 200.0})
    return Dataset(source="synthetic.emd", layers=[layer]), amount


def test_element_maps_are_extracted_from_an_eds_spectrum_image():
    from fusedem.io import extract_element_layers
    from fusedem.io._extracted import add_extracted_maps

    ds, amount = _eds_dataset(["Fe", "O"])  # O Ka (0.52 keV) lies outside 5-8 keV
    problems = add_extracted_maps(ds)
    assert [ly.name for ly in ds.layers] == ["EDS", "Fe"]
    assert len(problems) == 1 and "synthetic.emd" in problems[0] and "O" in problems[0]
    fe = ds.element_maps["Fe"]
    assert fe.scale == (2.0, 2.0) and fe.units == ("nm", "nm") and fe.metadata["line"] == "Fe_Ka"
    assert np.corrcoef(fe.data.ravel(), amount.ravel())[0, 1] > 0.9
    with pytest.raises(ReadError, match="synthetic.emd: cannot extract element maps"):
        extract_element_layers(ds, ["O"])


@needs_vendor
def test_load_extracts_listed_elements_unless_asked_not_to():
    p = VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf"
    assert list(load(p).element_maps) == ["Cu", "O", "Pd", "Ti"]
    assert load(p, extract=False).element_maps == {}


def test_bundle_with_3d_frame_series(tmp_path):
    rng = np.random.default_rng(2)
    p = tmp_path / "series.npz"
    np.savez(p, HAADF=rng.random((4, 10, 12)), Fe=rng.random((4, 10, 12)), scale=0.5, units="nm")
    ds = load(p)
    fe = ds.element_maps["Fe"]
    assert fe.data.shape == (4, 10, 12)
    assert fe.scale == (1.0, 0.5, 0.5) and fe.units == ("frame", "nm", "nm")
    np.savez(p, HAADF=rng.random((4, 10, 12)), Fe=rng.random((3, 10, 12)))
    with pytest.raises(ReadError, match=r"different shapes \(HAADF 4x10x12, Fe 3x10x12\)"):
        load(p)
    np.savez(p, HAADF=rng.random((2, 4, 10, 12)), Fe=rng.random((2, 4, 10, 12)))
    with pytest.raises(ReadError, match="expected a 2-D map or a 3-D series of frames"):
        load(p)


def test_result_keeps_the_element_order(tmp_path):
    res = _result()
    res = FusionResult(**{**res.__dict__, "maps": {"O": res.maps["O"], "Dy": res.maps["Dy"]}})
    out = tmp_path / "ordered.h5"
    save_result(out, res, inputs={"HAADF": np.ones((12, 10)), "O": np.ones((12, 10)), "Dy": np.ones((12, 10))})
    back = load_result(out)
    assert list(back.maps) == ["O", "Dy"] and list(back.inputs) == ["HAADF", "O", "Dy"]


def test_images_of_a_multi_image_sem_file_are_placed_or_left_out_with_a_note():
    """A Bruker SEM file as read: a 50 x 50 EDS scan at 11.81 nm, its 50 x 50 image at
    12.73 nm, and an 825 x 1100 overview image that was given the map's pixel size."""
    from fusedem.io._instrument import _place_images

    si = DatasetLayer(name="EDS", data=np.zeros((8, 50, 50)), role="spectrum_image",
                      scale=(0.01, 11.81, 11.81), units=("keV", "nm", "nm"))
    image = DatasetLayer(name="BSE", data=np.zeros((50, 50)), role="image",
                         scale=(12.73, 12.73), units=("nm", "nm"), translate=(3.0, 4.0))
    overview = DatasetLayer(name="Overview", data=np.zeros((825, 1100)), role="image",
                            scale=(11.81, 11.81), units=("nm", "nm"))
    other = DatasetLayer(name="Wide", data=np.zeros((100, 120)), role="image",
                         scale=(250.0, 250.0), units=("nm", "nm"))
    layers = [image, overview, other, si]
    notes = _place_images(layers, copied_calibration=True)  # as for a .bcf file
    assert [ly.name for ly in layers] == ["BSE", "Wide", "EDS"]
    assert image.scale == (11.81, 11.81) and image.translate == (0.0, 0.0)
    assert image.metadata["original_scale"] == [12.73, 12.73] and image.metadata["structural"]
    assert "structural" not in other.metadata and other.scale == (250.0, 250.0)
    assert len(notes) == 2 and "12.73" in notes[0] and "11.81" in notes[0]
    assert "'Overview' (825 x 1100 px) was left out" in notes[1]
    kept = [image, overview, si]  # other readers give images their own calibration
    assert len(_place_images(kept)) == 0 and len(kept) == 3
