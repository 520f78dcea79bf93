"""``fusedem tomo`` end to end on a tiny synthetic tilt series: outputs, exit codes, slabs,
config round trip, and that no file is overwritten without --overwrite."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from tomo_series import write_npz

from fusedem.cli import main
from fusedem.tomo.io import load_tomo_result

FAST = ["--n-iter", "3", "-q"]


@pytest.fixture
def series(tmp_path):
    path = tmp_path / "np16.npz"
    write_npz(path, 16)
    return path


def test_end_to_end_outputs_rerun_and_overwrite(series, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["tomo", str(series), "-o", str(out), "--format", "h5,mrc,tiff", "--slab", "8",
            "--margin", "2", *FAST]
    assert main(argv) == 0
    res = load_tomo_result(out / "np16_tomo.h5")
    assert set(res.volumes) == {"Au", "Fe"} and res.volumes["Au"].shape == (16, 16, 16)
    assert res.params["n_iter"] == 3 and len(res.costs["haadf"]) == 3
    assert res.metadata["voxel_size"] == 0.5 and res.metadata["slabs"] == [[0, 8, 0, 10], [8, 16, 6, 16]]
    assert res.metadata["input_digest"].startswith("blake2b:")
    assert all(np.isfinite(v).all() and v.max() > 0 for v in res.volumes.values())
    for name in ("np16_tomo_Au.mrc", "np16_tomo_Fe.tif", "fusedem_tomo_params.toml"):
        assert (out / name).is_file()
    # the same run again: already complete, nothing recomputed
    stamp = (out / "np16_tomo.h5").stat().st_mtime_ns
    assert main(argv[:-1]) == 0
    assert "skipped" in capsys.readouterr().out
    assert (out / "np16_tomo.h5").stat().st_mtime_ns == stamp
    # other settings into the same folder: refused (exit 1), then replaced with --overwrite
    other = [a if a != "3" else "2" for a in argv]
    assert main(other) == 1
    assert "use --overwrite" in capsys.readouterr().err
    assert load_tomo_result(out / "np16_tomo.h5").params["n_iter"] == 3
    assert main(other + ["--overwrite"]) == 0
    assert load_tomo_result(out / "np16_tomo.h5").params["n_iter"] == 2


def test_config_file_written_by_a_run_repeats_it(series, tmp_path):
    out = tmp_path / "a"
    assert main(["tomo", str(series), "-o", str(out), "--slices", "4:12", "--crop", "2:14",
                 "--lambda-tv", "0.01", *FAST]) == 0
    first = load_tomo_result(out / "np16_tomo.h5")
    assert first.volumes["Au"].shape == (8, 12, 12)
    assert main(["tomo", str(series), "-o", str(tmp_path / "b"), "--config",
                 str(out / "fusedem_tomo_params.toml"), "-q"]) == 0
    again = load_tomo_result(tmp_path / "b" / "np16_tomo.h5")
    assert again.params == first.params and again.metadata["region"] == first.metadata["region"]
    np.testing.assert_allclose(again.volumes["Fe"], first.volumes["Fe"], rtol=1e-5, atol=1e-6)


def test_slabs_with_margins_come_close_to_one_slab(series, tmp_path):
    """Slabs of 4 slices with 6 margin slices against one solve (measured here: max 1.4 %,
    RMS 0.3 % of the maximum); without margins the seams are several times larger."""
    def run(name, *opts):
        assert main(["tomo", str(series), "-o", str(tmp_path / name), *opts, *FAST]) == 0
        return load_tomo_result(tmp_path / name / "np16_tomo.h5").volumes

    one = run("one", "--slab", "16")
    with_margin = run("m6", "--slab", "4", "--margin", "6")
    without = run("m0", "--slab", "4", "--margin", "0")

    def rms(a, b):
        return float(np.sqrt(np.mean((a - b) ** 2)) / a.max())

    for el in one:
        assert np.abs(one[el] - with_margin[el]).max() < 0.03 * one[el].max(), el
        assert rms(one[el], with_margin[el]) < 0.005, el
    assert rms(one["Fe"], without["Fe"]) > 3 * rms(one["Fe"], with_margin["Fe"])


def test_a_users_file_is_never_replaced(series, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "np16_tomo.h5").write_bytes(b"my own notes")
    assert main(["tomo", str(series), "-o", str(out), *FAST]) == 1
    assert "not written by fusedem" in capsys.readouterr().err
    assert (out / "np16_tomo.h5").read_bytes() == b"my own notes"
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("extra, message", [
    (["--slices", "9:4"], "expected 0 <= a < b"),
    (["--slices", "0:40"], "slices 0:40 lie outside the 16 rows"),
    (["--crop", "0:8"], "not centred on the tilt axis"),
    (["--format", "h5,png"], "unknown png"),
    (["--lambda-chem", "-1"], "lambda_chem"),
])
def test_usage_errors_exit_2_before_any_work(series, tmp_path, capsys, extra, message):
    assert main(["tomo", str(series), "-o", str(tmp_path / "o"), *extra, *FAST]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "np16_tomo.h5").exists()


def test_bad_data_exits_1_naming_the_problem(tmp_path, capsys):
    from tomo_series import tilt_series

    haadf, ha, maps, ca = tilt_series(8)
    np.savez(tmp_path / "bad.npz", HAADF=haadf, haadf_angles=ha[:-2], chem_angles=ca, **maps)
    assert main(["tomo", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "o"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "bad.npz" in err and "15 tilts but haadf_angles has 13 angles" in err
    assert main(["tomo", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "o")]) == 2
    cfg = tmp_path / "c.toml"
    cfg.write_text("slab = 4\nwhatever = 1\n")
    assert main(["tomo", str(tmp_path / "bad.npz"), "--config", str(cfg)]) == 2
    assert "unknown key(s) ['whatever']" in capsys.readouterr().err


def test_angles_file_for_an_mrc_folder(tmp_path):
    mrcfile = pytest.importorskip("mrcfile")
    from tomo_series import tilt_series

    haadf, ha, maps, ca = tilt_series(8, haadf_angles=np.linspace(-60, 60, 5), chem_angles=np.linspace(-60, 60, 5))
    folder = tmp_path / "stacks"
    folder.mkdir()
    for name, data in {"HAADF": haadf, **maps}.items():
        with mrcfile.new(folder / f"{name}.mrc") as m:
            m.set_data(data)
    (tmp_path / "tilts.rawtlt").write_text("\n".join(map(str, ha)))
    assert main(["tomo", str(folder), "-o", str(tmp_path / "o"), *FAST]) == 1  # no angles
    assert main(["tomo", str(folder), "-o", str(tmp_path / "o"), "--angles",
                 str(tmp_path / "tilts.rawtlt"), *FAST]) == 0
    res = load_tomo_result(tmp_path / "o" / "stacks_tomo.h5")
    np.testing.assert_allclose(res.chem_angles, ha)
    with h5py.File(tmp_path / "o" / "stacks_tomo.h5") as f:
        assert f["volumes"]["Au"].chunks[0] == 1  # one chunk per slice: slab writes stay cheap


def test_auto_chooses_on_the_middle_slab_or_says_it_cannot(series, tmp_path, capsys):
    from fusedem.cli._tomo import auto_available

    code = main(["tomo", str(series), "-o", str(tmp_path / "a"), "--auto", "--slab", "8", "-q"])
    if not auto_available():
        assert code == 2 and "no automatic parameter choice" in capsys.readouterr().err
        return
    assert code == 0
    res = load_tomo_result(tmp_path / "a" / "np16_tomo.h5")
    assert res.metadata.get("autotune") and "[chosen]" in (tmp_path / "a" / "fusedem_tomo_params.toml").read_text()


def test_device_option_runs_on_the_cpu_or_says_why_cuda_cannot(series, tmp_path, capsys):
    from fusedem.cuda import resolve_device

    out = tmp_path / "cpu"
    assert main(["tomo", str(series), "-o", str(out), "--device", "cpu", "--n-iter", "2"]) == 0
    assert "on cpu" in capsys.readouterr().out
    assert load_tomo_result(out / "np16_tomo.h5").metadata["device"] == "cpu"
    if resolve_device("auto") == "cuda":
        pytest.skip("a GPU is present: --device cuda runs")
    assert main(["tomo", str(series), "-o", str(tmp_path / "gpu"), "--device", "cuda", *FAST]) == 2
    assert "--device: device='cuda' was asked for, but" in capsys.readouterr().err
    assert not (tmp_path / "gpu").exists()
