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
