"""Tilt-series readers and fused-volume writers (fusedem.tomo.io): round trips of every
supported format, written by the tests, and clear errors on bad input."""
from __future__ import annotations

import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from fusedem.io import ReadError
from fusedem.tomo.io import (
    TiltSeries, load_tilt_series, load_tomo_result, read_angles, save_tomo_result, save_volumes,
)

HA = np.linspace(-60, 60, 9)
CA = np.array([-60.0, -30.0, 0.0, 30.0, 60.0])


def _stacks(ny=6, nx=8, seed=0):
    rng = np.random.default_rng(seed)
    haadf = rng.random((HA.size, ny, nx)).astype(np.float32)
    maps = {"Au": rng.poisson(3.0, (CA.size, ny, nx)).astype(np.float32) + 1,
            "Fe": rng.poisson(2.0, (CA.size, ny, nx)).astype(np.float32) + 1}
    return haadf, maps


def _same(series: TiltSeries, haadf, maps):
    np.testing.assert_array_equal(series.haadf, haadf)
    assert list(series.maps) == list(maps)
    for k in maps:
        np.testing.assert_array_equal(series.maps[k], maps[k])
    np.testing.assert_allclose(series.haadf_angles, HA)
    np.testing.assert_allclose(series.chem_angles, CA)


def test_npz_and_h5_bundles_round_trip(tmp_path):
    haadf, maps = _stacks()
    np.savez(tmp_path / "s.npz", HAADF=haadf, **maps, haadf_angles=HA, chem_angles=CA,
             pixel_size=0.5, units="nm")
    s = load_tilt_series(tmp_path / "s.npz")
    _same(s, haadf, maps)
    assert s.pixel_size == 0.5 and s.detector_shape == (6, 8)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["HAADF"], f["haadf_angles"], f["chem_angles"] = haadf, HA, CA
        for k, v in maps.items():
            f[k] = v
        f.attrs["pixel_size"], f.attrs["units"] = 2.0, "Å"
    s = load_tilt_series(tmp_path / "s.h5")
    _same(s, haadf, maps)
    assert s.pixel_size == pytest.approx(0.2)  # Å -> nm


def test_matlab_v5_and_v73_stacks_are_turned_tilt_first(tmp_path):
    import scipy.io

    haadf, maps = _stacks()
    matlab = {k: np.moveaxis(v, 0, -1) for k, v in {"HAADF": haadf, **maps}.items()}  # (ny, nx, n)
    scipy.io.savemat(tmp_path / "v5.mat", {**matlab, "haadfTiltAngles": HA, "chemTiltAngles": CA})
    _same(load_tilt_series(tmp_path / "v5.mat"), haadf, maps)
    # MATLAB -v7.3: HDF5 after a 512-byte header, arrays stored column-major (axes reversed)
    with h5py.File(tmp_path / "v73.mat", "w", userblock_size=512) as f:
        for k, v in {**matlab, "haadfTiltAngles": HA[:, None], "chemTiltAngles": CA[:, None]}.items():
            f[k] = np.ascontiguousarray(v.T)
    with open(tmp_path / "v73.mat", "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, written by a test")
    _same(load_tilt_series(tmp_path / "v73.mat"), haadf, maps)


def _write_mrc(path, data, voxel_a=None):
    import mrcfile

    with mrcfile.new(path) as m:
        m.set_data(data)
        if voxel_a:
            m.voxel_size = voxel_a


def test_mrc_folder_with_rawtlt_angle_files(tmp_path):
    pytest.importorskip("mrcfile")
    haadf, maps = _stacks()
    _write_mrc(tmp_path / "HAADF.mrc", haadf, voxel_a=5.0)
    (tmp_path / "HAADF.rawtlt").write_text("\n".join(f"{a:.2f}" for a in HA) + "\n")
    for k, v in maps.items():
        _write_mrc(tmp_path / f"{k}.mrc", v)
        (tmp_path / f"{k}.tlt").write_text("\n".join(map(str, CA)))
    for path in (tmp_path, tmp_path / "HAADF.mrc"):  # the folder, or one of its stacks
        s = load_tilt_series(path)
        _same(s, haadf, maps)
        assert s.pixel_size == pytest.approx(0.5)
    # no angle files: a clear error, then the user's list is used for both series
    for f in tmp_path.glob("*.*tlt"):
        f.unlink()
    with pytest.raises(ReadError, match="no tilt angles"):
        load_tilt_series(tmp_path)
    with pytest.raises(ReadError, match="Au has 5 tilts but chem_angles has 3 angles"):
        load_tilt_series(tmp_path, haadf_angles=HA, chem_angles=[-1, 0, 1])
    s = load_tilt_series(tmp_path, haadf_angles=HA, chem_angles=CA)
    _same(s, haadf, maps)


def _hspy(path, data, axes, title, extra_md=None):
    from rsciio.hspy import file_writer

    md = {"General": {"title": title}, "Signal": {"signal_type": ""}, **(extra_md or {})}
    file_writer(str(path), {"data": data, "axes": axes, "metadata": md, "original_metadata": {},
                            "tmp_parameters": {}, "attributes": {"_lazy": False},
                            "learning_results": {}, "models": {},
                            "package_info": {"name": "test", "version": "0"}},
                show_progressbar=False)


def _image_axes(ny, nx, scale=0.4):
    return [{"name": "y", "size": ny, "scale": scale, "offset": 0.0, "units": "nm", "navigate": False},
            {"name": "x", "size": nx, "scale": scale, "offset": 0.0, "units": "nm", "navigate": False}]


def test_hspy_etspy_stacks_angles_from_the_tilt_axis_or_metadata(tmp_path):
    pytest.importorskip("rsciio.hspy")
    haadf, maps = _stacks()
    tilt = {"name": "Tilt", "size": HA.size, "scale": 15.0, "offset": -60.0, "units": "degrees",
            "navigate": True}
    _hspy(tmp_path / "haadf.hspy", haadf, [tilt, *_image_axes(6, 8)], "HAADF")
    for k, v in maps.items():  # ETSpy keeps the tilts in metadata.Tomography.tilts
        proj = {"name": "Projection", "size": CA.size, "scale": 1.0, "offset": 0.0, "units": "",
                "navigate": True}
        _hspy(tmp_path / f"{k}.hspy", v, [proj, *_image_axes(6, 8)], k,
              {"Tomography": {"tilts": CA.tolist(), "tiltaxis": 0.0}})
    s = load_tilt_series(tmp_path)
    assert s.haadf.shape == haadf.shape and set(s.maps) == set(maps)
    _same(TiltSeries(s.haadf, s.haadf_angles, {k: s.maps[k] for k in maps}, s.chem_angles),
          haadf, maps)
    assert s.pixel_size == pytest.approx(0.4)


def test_folder_of_per_tilt_files_with_stage_tilts_and_extracted_maps(tmp_path):
    pytest.importorskip("rsciio.hspy")
    from spectrum_phantoms import AXIS, phase_truth, poisson_cube

    truth = phase_truth((16, 18), rare=False)
    eds_axis = {"name": "Energy", "size": AXIS.size, "scale": AXIS.scale, "offset": AXIS.offset,
                "units": "keV", "navigate": False}
    nav = [{"name": "y", "size": 16, "scale": 0.4, "offset": 0.0, "units": "nm", "navigate": True},
           {"name": "x", "size": 18, "scale": 0.4, "offset": 0.0, "units": "nm", "navigate": True}]
    rng = np.random.default_rng(1)
    for i, a in enumerate([40.0, -40.0, 0.0, 20.0]):  # file order is not angle order
        stage = {"Acquisition_instrument": {"TEM": {"Stage": {"tilt_alpha": a}, "beam_energy": 200.0}}}
        _hspy(tmp_path / f"t{i:02d}_haadf.hspy", rng.random((16, 18)).astype(np.float32) + a,
              _image_axes(16, 18), "HAADF", stage)
    for i, a in enumerate([-40.0, 40.0]):
        stage = {"Acquisition_instrument": {"TEM": {"Stage": {"tilt_alpha": a}, "beam_energy": 200.0}},
                 "Sample": {"elements": ["Cu", "Fe"]}, "Signal": {"signal_type": "EDS_TEM"}}
        _hspy(tmp_path / f"t{i:02d}_eds.hspy", poisson_cube(truth, 200.0, seed=i), [*nav, eds_axis],
              "EDS", stage)
    s = load_tilt_series(tmp_path)
    np.testing.assert_allclose(s.haadf_angles, [-40, 0, 20, 40])
    np.testing.assert_allclose(s.chem_angles, [-40, 40])
    assert s.haadf.shape == (4, 16, 18) and set(s.maps) == {"Cu", "Fe"}
    assert s.maps["Cu"].shape == (2, 16, 18) and s.pixel_size == pytest.approx(0.4)
    # sorted by angle: the HAADF of tilt -40 is the file whose values were offset by -40
    assert s.haadf[0].max() < -38 and s.haadf[-1].min() > 39
    # the user's list (one angle per file, name order) replaces the stage tilts
    files = sorted(p.name for p in tmp_path.glob("*.hspy"))
    user = np.arange(len(files), dtype=float) * 10 - 20
    s = load_tilt_series(tmp_path, angles=user)
    assert sorted(s.haadf_angles) == sorted(user[[files.index(f) for f in files if "haadf" in f]])
    with pytest.raises(ReadError, match="6 per-tilt files but 3 angles"):
        load_tilt_series(tmp_path, angles=[1, 2, 3])


def test_angle_files_and_lists(tmp_path):
    (tmp_path / "a.rawtlt").write_text("-60\n -30.5\n0 # zero tilt\n\n30.5\n")
    np.testing.assert_allclose(read_angles(tmp_path / "a.rawtlt"), [-60, -30.5, 0, 30.5])
    (tmp_path / "b.txt").write_text("-10, 0, 10")
    np.testing.assert_allclose(read_angles(tmp_path / "b.txt"), [-10, 0, 10])
    (tmp_path / "c.txt").write_text("ten, 20")
    with pytest.raises(ReadError, match="not a list of angles"):
        read_angles(tmp_path / "c.txt")


@pytest.mark.parametrize("case, message", [
    ("count", "HAADF has 9 tilts but haadf_angles has 8 angles"),
    ("range", r"outside \(-90, 90\]"),
    ("size", "detector sizes differ: HAADF 6 x 8, Au 6 x 7"),
    ("one", "only one tilt"),
    ("nan", "Fe has NaN or infinite values"),
    ("empty", "element Au has no counts"),
    ("missing", "no tilt angles"),
])
def test_bad_tilt_series_give_clear_errors(tmp_path, case, message):
    haadf, maps = _stacks()
    kw = dict(HAADF=haadf, **maps, haadf_angles=HA, chem_angles=CA)
    if case == "count":
        kw["haadf_angles"] = HA[:-1]
    elif case == "range":
        kw["haadf_angles"] = HA * 2
    elif case == "size":
        kw["Au"] = maps["Au"][..., :7]
    elif case == "one":
        kw.update(HAADF=haadf[:1], haadf_angles=HA[:1])
    elif case == "nan":
        kw["Fe"] = maps["Fe"].copy()
        kw["Fe"][2, 1, 1] = np.nan
    elif case == "empty":
        kw["Au"] = np.zeros_like(maps["Au"])
    elif case == "missing":
        kw.pop("haadf_angles"), kw.pop("chem_angles")
    np.savez(tmp_path / "bad.npz", **kw)
    with pytest.raises(ValueError, match=message) as info:
        load_tilt_series(tmp_path / "bad.npz")
    assert "bad.npz" in str(info.value)


def test_region_keeps_the_tilt_axis_centred():
    haadf, maps = _stacks(ny=6, nx=8)
    s = TiltSeries(haadf, HA, maps, CA)
    r = s.region(slices=(1, 4), columns=(2, 6))
    assert r.haadf.shape == (9, 3, 4) and r.maps["Au"].shape == (5, 3, 4)
    np.testing.assert_array_equal(r.maps["Fe"], maps["Fe"][:, 1:4, 2:6])
    with pytest.raises(ValueError, match="not centred on the tilt axis"):
        s.region(columns=(0, 4))
    with pytest.raises(ValueError, match="slices 3:9 lie outside the 6 rows"):
        s.region(slices=(3, 9))


def _result(ny=5, nz=8, nx=8):
    rng = np.random.default_rng(3)
    return SimpleNamespace(
        volumes={"Au": rng.random((ny, nz, nx), np.float32), "Fe": rng.random((ny, nz, nx), np.float32)},
        costs={"haadf": np.array([3.0, 2.0]), "chem": np.array([1.0, 0.5]), "tv": np.array([0.1, 0.2])},
        params={"lambda_chem": 0.05, "n_iter": 2}, haadf_angles=HA, chem_angles=CA,
        elements={"Au": 79, "Fe": 26}, elapsed=1.5, iterations=2, autotune=None)


def test_result_hdf5_round_trip_and_no_overwrite(tmp_path):
    res = _result()
    out = tmp_path / "r.h5"
    save_tomo_result(out, res, sources=["in.npz"], voxel_size=0.5, extra={"region": {"slices": [0, 5]}})
    back = load_tomo_result(out)
    for k, v in res.volumes.items():
        np.testing.assert_array_equal(back.volumes[k], v)
    np.testing.assert_allclose(back.haadf_angles, HA)
    np.testing.assert_allclose(back.costs["chem"], [1.0, 0.5])
    assert back.params == res.params and back.metadata["elements"] == {"Au": 79, "Fe": 26}
    assert back.metadata["voxel_size"] == 0.5 and back.metadata["sources"] == ["in.npz"]
    assert back.metadata["region"] == {"slices": [0, 5]} and back.metadata["created"]
    assert back.metadata["fusedem_version"]
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_tomo_result(out, res)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ReadError, match="not a fusedem tomography result"):
        np.savez(tmp_path / "x.npz", a=1)
        with h5py.File(tmp_path / "plain.h5", "w") as f:
            f["a"] = 1
        load_tomo_result(tmp_path / "plain.h5")


def test_mrc_and_tiff_volumes_for_fiji_and_chimerax(tmp_path):
    import mrcfile
    import tifffile

    res = _result()
    paths = save_volumes(tmp_path, "run", res.volumes, "mrc", voxel_size=0.5, info={"n_iter": 2})
    assert [p.name for p in paths] == ["run_Au.mrc", "run_Fe.mrc"]
    with mrcfile.open(paths[0]) as m:
        np.testing.assert_array_equal(m.data, res.volumes["Au"])
        assert float(m.voxel_size.x) == pytest.approx(5.0)  # Å
        assert any("fusedem_result_tomo" in label for label in m.get_labels())
    paths = save_volumes(tmp_path, "run", res.volumes, "tiff", voxel_size=0.5)
    with tifffile.TiffFile(paths[1]) as tf:
        np.testing.assert_array_equal(tf.asarray(), res.volumes["Fe"])
        assert len(tf.pages) == 5 and tf.imagej_metadata["spacing"] == pytest.approx(0.5)
        assert json.loads(tf.imagej_metadata["Info"])["fusedem_result_tomo"] == 1
    # one existing target: nothing written, the user's file untouched
    (tmp_path / "new_Fe.tif").write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="new_Fe.tif already exists"):
        save_volumes(tmp_path, "new", res.volumes, "tiff")
    assert not (tmp_path / "new_Au.tif").exists()
    assert (tmp_path / "new_Fe.tif").read_bytes() == b"user data"


def test_real_velox_files_one_per_tilt(tmp_path):
    """Real instrument files (shared vendor data, where present): stage tilt from Velox's
    Stage.AlphaTilt (radians), or the user's angles; maps and HAADF stacked per tilt."""
    import shutil

    from shared_data import VENDOR

    src = VENDOR / "velox_SI_16x16_maps_C_Ca_O_Cu.emd"
    if not src.is_file():
        pytest.skip(f"vendor test files not present ({VENDOR})")
    for i in range(3):
        shutil.copy(src, tmp_path / f"tilt{i}.emd")
    s = load_tilt_series(tmp_path)
    assert s.haadf.shape == (3, 16, 16) and set(s.maps) == {"C", "Ca", "O", "Cu"}
    np.testing.assert_allclose(s.haadf_angles, np.degrees(8.9243432770017006e-05))
    s = load_tilt_series(tmp_path, angles=[-30, 0, 30], elements=["Cu", "O"])
    np.testing.assert_allclose(s.chem_angles, [-30, 0, 30])
    assert list(s.maps) == ["Cu", "O"] and s.maps["Cu"].shape == (3, 16, 16)
