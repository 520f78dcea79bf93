"""End-to-end tests of the ``fusedem`` console script (fuse, info, demo, config, crop)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusedem
import fusedem.io
from fusedem.cli._config import params_from_file

DATA = Path(fusedem.__file__).parent / "data"
DYSCO3 = DATA / "PTO_Trilayer_dataset.npz"
COMN = DATA / "Co3O4_Mn3O4.h5"
SCRIPT = Path(sys.executable).parent / "fusedem"


def fusedem_cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real console script (or ``python -m fusedem.cli`` without one)."""
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "fusedem.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def test_help_and_version():
    proc = fusedem_cli("--help")
    assert proc.returncode == 0
    for cmd in ("fuse", "batch", "info", "demo"):
        assert cmd in proc.stdout
    assert fusedem_cli("--version").stdout.strip() == f"fusedem {fusedem.__version__}"
    bad = fusedem_cli("frobnicate")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    no_traceback(bad)


def test_demo_writes_maps_png_and_params(tmp_path):
    out = tmp_path / "demo"
    proc = fusedem_cli("demo", "-o", out, "--n-iter", 4)
    assert proc.returncode == 0, proc.stderr
    assert " s " in proc.stdout or " s (" in proc.stdout  # the elapsed time is printed
    res = fusedem.io.load_result(out / "dysco3_fused.h5")
    assert set(res.maps) == {"Sc", "Dy", "O"} and res.params["n_iter"] == 4
    assert res.params["lambda_chem"] == 0.08  # dysco3 preset
    png = out / "dysco3_raw_vs_fused.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > img.shape[1] > 300  # one row per element + HAADF
    assert img[..., :3].std() > 0.05  # not blank
    assert params_from_file(out / "fusedem_params.toml") == fusedem.FusionParams.preset("dysco3", n_iter=4)
    again = fusedem_cli("demo", "-o", out, "-q")  # `make demo` twice works
    assert again.returncode == 0 and again.stdout == "", again.stderr
    assert fusedem.io.load_result(out / "dysco3_fused.h5").params["n_iter"] == 30


def test_fuse_tutorial_h5_and_npz(tmp_path):
    out = tmp_path / "out"
    proc = fusedem_cli("fuse", COMN, DYSCO3, "-o", out, "--n-iter", 3, "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # quiet
    comn = fusedem.io.load_result(out / "Co3O4_Mn3O4_fused.h5")
    assert set(comn.maps) == {"Co", "Mn", "O"} and comn.maps["Co"].shape == (400, 400)
    dy = fusedem.io.load_result(out / "PTO_Trilayer_dataset_fused.h5")
    assert set(dy.maps) == {"Sc", "Dy", "O"} and dy.params["n_iter"] == 3
    # the same maps as the library call
    raw = np.load(DYSCO3)
    ref = fusedem.fuse(raw["HAADF"], {s: raw[s] for s in ("Sc", "Dy", "O")}, n_iter=3)
    np.testing.assert_allclose(dy.maps["Dy"], ref.maps["Dy"], atol=1e-6)


def test_fuse_tiff_with_preset_elements_and_crop(tmp_path):
    import tifffile

    out = tmp_path / "tif"
    proc = fusedem_cli("fuse", COMN, "-o", out, "--preset", "co3o4_mn3o4", "--n-iter", 3,
                       "--elements", "mn,Co", "--crop", "100:300,50:", "--format", "tiff")
    assert proc.returncode == 0, proc.stderr
    tif = out / "Co3O4_Mn3O4_fused.tif"
    with tifffile.TiffFile(tif) as tf:
        stack = tf.asarray()
        info = json.loads(tf.imagej_metadata["Info"])
    assert stack.shape == (3, 200, 350)  # Mn, Co, HAADF model
    assert json.loads(info["params"])["background_threshold"] == 0.2
    used = (out / "fusedem_params.toml").read_text()
    assert 'elements = ["Mn", "Co"]' in used and 'crop = "100:300,50:"' in used
    # rerun with the same settings: skipped as complete
    again = fusedem_cli("fuse", COMN, "-o", out, "--config", out / "fusedem_params.toml")
    assert again.returncode == 0 and "1 skipped" in again.stdout, again.stderr


def test_crop_outside_image_is_a_usage_error(tmp_path):
    proc = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "o", "--crop", "0:300,0:100")
    assert proc.returncode == 2
    assert str(DYSCO3) in proc.stderr and "outside the image of 256 x 256" in proc.stderr
    no_traceback(proc)
    assert not list((tmp_path / "o").glob("*_fused.*"))
    bad = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "o", "--crop", "10:5")
    assert bad.returncode == 2 and "y0:y1,x0:x1" in bad.stderr


@pytest.mark.parametrize("args, expect", [
    (["--gamma", "7"], "gamma must lie in"),
    (["--weighting", "zz"], "invalid choice"),
    (["--preset", "nope"], "invalid choice"),
    (["--elements", "Xx"], "Xx"),
    (["--n-iter", "2.5"], "invalid int value"),
    (["--tv-step", "2"], "tv_step must lie in"),
    (["--lambda-tv-elements", "O:0.5"], "expected ELEMENT=VALUE"),
])
def test_bad_options_exit_2(tmp_path, args, expect):
    proc = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "o", *args)
    assert proc.returncode == 2, proc.stderr
    assert expect in proc.stderr
    no_traceback(proc)


def test_missing_element_and_bad_input_exit_1(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    proc = fusedem_cli("fuse", DYSCO3, junk, tmp_path / "absent.npz", "-o", tmp_path / "o",
                       "--n-iter", 2, "-q")
    assert proc.returncode == 1
    assert str(junk) in proc.stderr and "absent.npz: no such file" in proc.stderr
    assert "1 done" in proc.stderr and "2 failed" in proc.stderr
    no_traceback(proc)
    el = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "p", "--elements", "Sc,Ti", "-q")
    assert el.returncode == 1 and "Ti not found; it has Sc, Dy, O" in el.stderr


def test_toml_config_round_trip(tmp_path):
    cfg = tmp_path / "my.toml"
    cfg.write_text('preset = "co3o4_mn3o4"\nelements = ["Co", "O"]\n\n[params]\n'
                   'lambda_tv = 0.03\nn_iter = 3\nbackground_threshold = "none"\n')
    out1 = tmp_path / "run1"
    proc = fusedem_cli("fuse", COMN, "-o", out1, "--config", cfg, "--eps", "0.02", "-q")
    assert proc.returncode == 0, proc.stderr
    expected = fusedem.FusionParams.preset("co3o4_mn3o4", lambda_tv=0.03, n_iter=3,
                                           background_threshold=None, eps=0.02)
    written = out1 / "fusedem_params.toml"
    assert params_from_file(written) == expected
    saved = fusedem.io.load_result(out1 / "Co3O4_Mn3O4_fused.h5")
    assert fusedem.FusionParams.from_dict(saved.params) == expected
    # repeating the run from the written file gives the same maps
    out2 = tmp_path / "run2"
    proc = fusedem_cli("fuse", COMN, "-o", out2, "--config", written, "-q")
    assert proc.returncode == 0, proc.stderr
    again = fusedem.io.load_result(out2 / "Co3O4_Mn3O4_fused.h5")
    assert set(again.maps) == {"Co", "O"}
    np.testing.assert_array_equal(again.maps["Co"], saved.maps["Co"])
    assert params_from_file(out2 / "fusedem_params.toml") == expected
    # other settings into a folder that holds results: refused
    other = fusedem_cli("fuse", COMN, "-o", out1, "--n-iter", 4, "-q")
    assert other.returncode == 2 and "other settings" in other.stderr


def test_bad_config_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[params\nlambda_tv = ")
    proc = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "o", "--config", bad)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "TOML" in proc.stderr
    unk = tmp_path / "unk.toml"
    unk.write_text("[params]\nlambda_foo = 1.0\n")
    proc = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "o", "--config", unk)
    assert proc.returncode == 2 and "lambda_foo" in proc.stderr
    no_traceback(proc)


def test_info_text_and_json(tmp_path):
    proc = fusedem_cli("info", DYSCO3, COMN)
    assert proc.returncode == 0, proc.stderr
    assert "elements: Sc, Dy, O" in proc.stdout and "elements: Co, Mn, O" in proc.stdout
    assert "256 x 256" in proc.stdout and "ready to fuse" in proc.stdout
    js = json.loads(fusedem_cli("info", "--json", DYSCO3).stdout)
    assert js["haadf"] == "HAADF" and js["elements"] == ["Sc", "Dy", "O"]
    assert js["layers"][0]["shape"] == [256, 256]
    junk = tmp_path / "x.npz"
    junk.write_bytes(b"garbage")
    bad = fusedem_cli("info", junk)
    assert bad.returncode == 1 and str(junk) in bad.stderr
    no_traceback(bad)


def test_inputs_embedded_or_referenced(tmp_path):
    proc = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "a", "--n-iter", 2, "-q")
    assert proc.returncode == 0, proc.stderr
    full = fusedem.io.load_result(tmp_path / "a" / "PTO_Trilayer_dataset_fused.h5")
    np.testing.assert_array_equal(full.inputs["Dy"], np.load(DYSCO3)["Dy"])
    proc = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "b", "--n-iter", 2, "-q", "--no-inputs")
    assert proc.returncode == 0, proc.stderr
    slim = fusedem.io.load_result(tmp_path / "b" / "PTO_Trilayer_dataset_fused.h5")
    assert slim.inputs == {} and slim.metadata["input_names"] == ["HAADF", "Sc", "Dy", "O"]
    assert slim.metadata["sources"] == [str(DYSCO3)]


def test_tv_step_and_lambda_tv_per_element_options(tmp_path):
    out = tmp_path / "o"
    proc = fusedem_cli("fuse", DYSCO3, "-o", out, "--n-iter", 2, "--tv-step", 0.5,
                       "--lambda-tv-elements", "O=0.3,Sc=0.05", "-q")
    assert proc.returncode == 0, proc.stderr
    p = params_from_file(out / "fusedem_params.toml")
    assert p.tv_step == 0.5 and p.lambda_tv_elements == {"O": 0.3, "Sc": 0.05}
    bad = fusedem_cli("fuse", DYSCO3, "-o", tmp_path / "b", "--n-iter", 2,
                      "--lambda-tv-elements", "Au=0.3", "-q")
    assert bad.returncode != 0 and "Au" in bad.stderr and "not among the maps" in bad.stderr
    no_traceback(bad)
