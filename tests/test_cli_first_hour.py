"""Issue 11, items 10, 12, 13: the console script on what a new user feeds it."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_batch import synthetic  # noqa: E402
from test_cli import fusedem_cli, no_traceback  # noqa: E402

from fusedem.cli._config import PARAMS_FILE  # noqa: E402


def test_top_level_help_lists_every_exit_status():
    r = fusedem_cli("--help")
    assert r.returncode == 0
    assert "0 ok, 1 some inputs failed, 2 usage/configuration error, 130 interrupted" in r.stdout


def test_a_text_file_named_h5_or_npz_is_not_called_corrupt(tmp_path):
    for name in ("notes.h5", "notes.npz"):
        (tmp_path / name).write_text("exported by hand\n")
        r = fusedem_cli("info", tmp_path / name)
        assert r.returncode == 1 and "truncated" not in r.stderr, r.stderr
        kind = "HDF5" if name.endswith(".h5") else ".npz"
        assert f"not an {kind} file" in r.stderr
        no_traceback(r)


def test_failed_fuse_writes_no_parameters_file_and_a_good_one_does(tmp_path):
    (tmp_path / "bad.h5").write_text("not data\n")
    out = tmp_path / "out"
    r = fusedem_cli("fuse", tmp_path / "bad.h5", "-o", out, "-q")
    assert r.returncode == 1 and not (out / PARAMS_FILE).exists()
    assert "nothing written" in r.stderr
    np.savez(tmp_path / "good.npz", **synthetic(seed=1))
    r = fusedem_cli("fuse", tmp_path / "good.npz", tmp_path / "bad.h5", "-o", out, "-q",
                    "--n-iter", "2")
    assert r.returncode == 1 and (out / PARAMS_FILE).exists() and (out / "good_fused.h5").exists()


def test_info_says_exactly_what_is_missing(tmp_path):
    maps = synthetic(seed=2)
    np.savez(tmp_path / "maps_only.npz", **{k: v for k, v in maps.items() if k != "HAADF"})
    np.savez(tmp_path / "haadf_bf.npz", HAADF=maps["HAADF"], BF=maps["HAADF"], Dy=maps["Dy"])
    r = fusedem_cli("info", tmp_path / "maps_only.npz", tmp_path / "haadf_bf.npz")
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split("\n\n")
    assert "not ready to fuse: no HAADF/ADF image" in first and "elemental maps" not in first
    assert "ready to fuse" in second and "not ready" not in second


def test_batch_progress_counts_inputs(tmp_path):
    for i in range(3):
        np.savez(tmp_path / f"in{i}.npz", **synthetic(shape=(32, 32), seed=i))
    (tmp_path / "in3.h5").write_text("text\n")
    r = fusedem_cli("batch", *sorted(tmp_path.glob("in*")), "-o", tmp_path / "out",
                    "--workers", "1", "--n-iter", "2")
    assert r.returncode == 1, r.stderr
    bars = [seg for seg in r.stderr.replace("\r", "\n").splitlines() if "dataset" in seg]
    assert bars and "4/4" in bars[-1], bars
    assert not any("/1 " in b or "0/0" in b for b in bars), bars


# ---- 10. spectrum images from the command line -------------------------------------------
def _si_dataset(listed=()):
    """A HAADF and an EDS spectrum image (Fe Ka) only: no maps stored, none listed."""
    from fusedem.io import Dataset, DatasetLayer

    rng = np.random.default_rng(3)
    e = 5.0 + 0.01 * np.arange(300)  # 5-8 keV
    amount = rng.uniform(0, 50, (12, 10))
    line = np.exp(-0.5 * ((e - 6.404) / 0.06) ** 2)  # Fe Ka
    si = rng.poisson(amount[None] * line[:, None, None] + 2.0)
    layers = [
        DatasetLayer(name="HAADF", data=amount + rng.random((12, 10)), role="haadf",
                     scale=(2.0, 2.0), units=("nm", "nm")),
        DatasetLayer(name="EDS", data=si, role="spectrum_image", scale=(0.01, 2.0, 2.0),
                     units=("keV", "nm", "nm"), energy_axis={
                         "offset": 5.0, "scale": 0.01, "units": "keV", "size": 300, "axis": 0},
                     metadata={"signal_type": "EDS_TEM", "elements": list(listed),
                               "beam_energy_keV": 200.0}),
    ]
    return Dataset(source="si_only.emd", layers=layers), amount


def test_requested_elements_are_extracted_from_the_spectrum_image():
    from fusedem.cli._task import DataError, select

    ds, amount = _si_dataset()
    with pytest.raises(DataError, match="--elements Cu,O, or run 'fusedem extract'"):
        select(ds, None, "si_only.emd")
    haadf, maps = select(ds, ("Fe",), "si_only.emd", {"resolution_ev": 140.0})
    assert haadf.name == "HAADF" and list(maps) == ["Fe"]
    assert maps["Fe"].metadata["line"] == "Fe_Ka" and maps["Fe"].data.shape == (12, 10)
    assert np.corrcoef(np.asarray(maps["Fe"].data).ravel(), amount.ravel())[0, 1] > 0.9
    with pytest.raises(ValueError, match="cannot extract element maps"):
        select(ds, ("Fe", "O"), "si_only.emd")  # O Ka lies outside the 5-8 keV axis


def test_extract_command_writes_a_bundle_that_fuses(tmp_path, monkeypatch):
    from fusedem import io
    from fusedem.cli import main

    ds, _ = _si_dataset()
    src = tmp_path / "si_only.emd"
    src.write_bytes(b"stand-in")  # io.load is replaced below: no Velox writer exists
    monkeypatch.setattr(io, "load", lambda *a, **k: ds)
    assert main(["extract", str(src), "-o", str(tmp_path / "maps"), "--elements", "Fe",
                 "--fwhm-ev", "140", "-q"]) == 0
    monkeypatch.undo()
    bundle = tmp_path / "maps" / "si_only_maps.h5"
    back = io.load(bundle)
    assert back.haadf is not None and list(back.element_maps) == ["Fe"]
    assert back.haadf.scale == pytest.approx((2.0, 2.0)) and back.haadf.units == ("nm", "nm")
    r = fusedem_cli("fuse", bundle, "-o", tmp_path / "out", "--n-iter", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "si_only_maps_fused.h5").exists()
    again = main(["extract", str(src), "-o", str(tmp_path / "maps"), "--elements", "Fe", "-q"])
    assert again == 1  # exists: kept unless --overwrite



def _vendor(name):
    from shared_data import VENDOR

    p = VENDOR / name
    if not p.exists():
        pytest.skip(f"vendor file not present: {p}")
    return p


def test_extract_and_fuse_a_real_bruker_file_from_the_console_script(tmp_path):
    bcf = _vendor("bruker_TEM_HAADF_EDS_64x64.bcf")
    r = fusedem_cli("extract", bcf, "-o", tmp_path, "--elements", "Cu,Ti", "--lines", "Cu=Ka")
    assert r.returncode == 0, r.stderr
    assert "HAADF, Cu, Ti" in r.stdout
    r = fusedem_cli("fuse", bcf, "-o", tmp_path / "out", "--elements", "Cu,Ti", "--n-iter", "2",
                    "--beam-kv", "200", "-q")
    assert r.returncode == 0, r.stderr
    r = fusedem_cli("extract", _vendor("gatan_STEM_image_68x68.dm3"), "-o", tmp_path / "x")
    assert r.returncode == 1 and "no spectrum image" in r.stderr


# ---- 12. reader warnings: once with -v, counted by default, silent with -q ----------------
def _warning_reader(monkeypatch):
    """io.load that warns like RosettaSciIO does: a log record and a warnings.warn."""
    import logging
    import warnings

    from fusedem import io

    real = io.load

    def load(path, *args, **kwargs):
        logging.getLogger("rsciio.bruker").warning("overview image has no calibration")
        warnings.warn("the 'sparse' library was not found", UserWarning)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io, "load", load)


@pytest.mark.parametrize("flag", ["", "-v", "-q"])
def test_reader_warnings_follow_quiet_and_verbose_in_fuse(tmp_path, monkeypatch, capfd, flag):
    from fusedem.cli import main

    _warning_reader(monkeypatch)
    np.savez(tmp_path / "a.npz", **synthetic(seed=1))
    args = ["fuse", str(tmp_path / "a.npz"), "-o", str(tmp_path / "out"), "--n-iter", "2"]
    assert main(args + ([flag] if flag else [])) == 0
    out, err = capfd.readouterr()
    assert "overview image" not in out and "sparse" not in out  # never on stdout
    if flag == "-v":
        assert err.count("overview image has no calibration") == 1
        assert err.count("the 'sparse' library was not found") == 1
    elif flag == "-q":
        assert "overview" not in err and "sparse" not in err and "warning" not in err
    else:
        assert "overview" not in err and "2 warning(s) from the readers not shown (-v" in err


def test_reader_warnings_in_batch_reach_the_client_once(tmp_path, monkeypatch, capfd):
    """Through Dask (an in-process cluster, so the patched reader is the workers' too)."""
    from dask.distributed import LocalCluster

    from fusedem.cli import main

    _warning_reader(monkeypatch)
    for i in range(2):
        np.savez(tmp_path / f"in{i}.npz", **synthetic(shape=(32, 32), seed=i))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        assert main(["batch", str(tmp_path / "in0.npz"), str(tmp_path / "in1.npz"), "-o",
                     str(tmp_path / "out"), "--n-iter", "2", "-v",
                     "--scheduler", cluster.scheduler_address]) == 0
    out, err = capfd.readouterr()
    assert "overview" not in out
    for i in range(2):
        assert err.count(f"in{i}.npz: overview image has no calibration") == 1, err


# ---- 9. no image named HAADF: --haadf NAME ------------------------------------------------
def test_haadf_option_picks_the_structural_image_of_an_sem_file(tmp_path):
    maps = synthetic(shape=(30, 30), seed=4)
    np.savez(tmp_path / "sem.npz", BSE=maps["HAADF"], SE=maps["HAADF"][::-1],
             Sc=maps["Sc"], Dy=maps["Dy"])
    r = fusedem_cli("info", tmp_path / "sem.npz")
    assert "images:   BSE (30 x 30), SE (30 x 30)" in r.stdout
    assert "no HAADF/ADF image (choose one of BSE, SE with --haadf)" in r.stdout
    r = fusedem_cli("fuse", tmp_path / "sem.npz", "-o", tmp_path / "out", "-q", "--n-iter", "2")
    assert r.returncode == 1 and "--haadf NAME (images: 'BSE' (30 x 30), 'SE'" in r.stderr
    assert "rough proxy" in r.stderr
    r = fusedem_cli("fuse", tmp_path / "sem.npz", "-o", tmp_path / "out", "-q", "--n-iter", "2",
                    "--haadf", "bse")
    assert r.returncode == 0, r.stderr
    r = fusedem_cli("fuse", tmp_path / "sem.npz", "-o", tmp_path / "o2", "-q", "--haadf", "ADF")
    assert r.returncode == 1 and "no image named 'ADF' for --haadf" in r.stderr


def test_haadf_option_on_a_real_bruker_sem_file(tmp_path):
    bcf = _vendor("bruker_SEM_EDS_30x30_16elements.bcf")
    r = fusedem_cli("fuse", bcf, "-o", tmp_path, "-q", "--n-iter", "2", "--haadf", "AsB",
                    "--elements", "Fe,Si,Ca")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "bruker_SEM_EDS_30x30_16elements_fused.h5").exists()
