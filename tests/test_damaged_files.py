"""Damaged input files give a clear ReadError naming the file: never a crash (issue 14, items 1, 6, 7, 8)."""
from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from sfs_files import sfs_bytes
from shared_data import VENDOR

import fusedem.io
from fusedem.io import ReadError, load
from fusedem.io import _bcf
from fusedem.io._sfs import check_sfs

TEM_BCF = VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf"
needs_bcf = pytest.mark.skipif(not TEM_BCF.is_file(), reason=f"shared vendor file {TEM_BCF} not present")


# ------------------------------------------------------------ item 1: .bcf container check
def test_sfs_check_passes_a_consistent_container(tmp_path):
    p = tmp_path / "ok.bcf"
    p.write_bytes(sfs_bytes(bytes(range(256)) * 40))
    check_sfs(p)


@pytest.mark.parametrize("cut", [0.99, 0.7, 0.3, 0.05])
def test_sfs_check_names_a_truncated_container(tmp_path, cut):
    raw = sfs_bytes(bytes(range(256)) * 40)
    p = tmp_path / "cut.bcf"
    p.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(ReadError, match=r"cut\.bcf: .*(truncated|bad header|ends inside)"):
        check_sfs(p)


def test_sfs_check_rejects_a_chunk_address_past_the_end(tmp_path):
    raw = bytearray(sfs_bytes(b"x" * 10000))
    struct.pack_into("<I", raw, 0x118 + 2 * 4096 + 32, 999)  # first data chunk -> chunk 999
    p = tmp_path / "bad.bcf"
    p.write_bytes(bytes(raw))
    with pytest.raises(ReadError, match=r"bad\.bcf: damaged Bruker file: .*chunk 999"):
        check_sfs(p)


def test_a_crash_of_the_bcf_parser_becomes_a_read_error(tmp_path, monkeypatch):
    monkeypatch.setattr(_bcf, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(ReadError, match=r"x\.bcf: damaged Bruker file: .*crashed \(SIGSEGV\)"):
        _bcf.parse_spectrum_image(str(tmp_path / "x.bcf"), (2, 2, 2), np.uint8)


@needs_bcf
@pytest.mark.parametrize("cut", [181991, 250917])
def test_truncated_shared_bcf_is_a_read_error_not_a_segfault(tmp_path, cut):
    """The two cuts that killed the process with SIGSEGV in RosettaSciIO's parser (issue 14)."""
    p = tmp_path / "cut.bcf"
    p.write_bytes(TEM_BCF.read_bytes()[:cut])
    code = ("import sys, fusedem.io\n"
            "try:\n    fusedem.io.load(sys.argv[1])\n"
            "except fusedem.io.ReadError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{p}: damaged Bruker file: the file is truncated" in proc.stdout


@needs_bcf
def test_bcf_with_flipped_spectrum_bytes_is_a_read_error(tmp_path):
    """Bytes flipped in the (uncompressed) spectrum data crash the parser in most cases."""
    raw = bytearray(TEM_BCF.read_bytes())
    rng = np.random.default_rng(3)
    for j in rng.integers(168248, len(raw), 40):
        raw[j] ^= 0xFF
    p = tmp_path / "flipped.bcf"
    p.write_bytes(bytes(raw))
    for lazy in (False, True):
        try:
            ds = load(p, lazy=lazy)
            for ly in ds.layers:
                np.asarray(ly.data)
        except ReadError as exc:
            assert str(exc).startswith(str(p))


@needs_bcf
def test_guarded_bcf_read_matches_rosettasciio(tmp_path):
    from rsciio.bruker import file_reader

    ref = next(s["data"] for s in file_reader(str(TEM_BCF), select_type=None) if s["data"].ndim == 3)
    for lazy in (False, True):
        si = load(TEM_BCF, lazy=lazy, extract=False).spectrum_images[0].data
        np.testing.assert_array_equal(np.moveaxis(np.asarray(si), 0, -1), ref)


# ------------------------------------------------------------ item 6: the lazy path names the file
def test_lazy_extraction_errors_name_the_file(tmp_path):
    """A zlib.error (or StopIteration, IndexError) from computing a lazy spectrum image."""
    import dask
    import dask.array as da

    from fusedem.io import Dataset, DatasetLayer
    from fusedem.io._extracted import add_extracted_maps

    def boom():
        raise zlib.error("Error -3 while decompressing data")

    cube = da.from_delayed(dask.delayed(boom)(), shape=(2048, 8, 8), dtype=np.uint16)
    si = DatasetLayer("EDX", cube, "spectrum_image", metadata={"signal_type": "EDS_TEM", "elements": ["Cu"],
                                                              "beam_energy_keV": 200.0},
                      energy_axis={"offset": 0.0, "scale": 0.01, "units": "keV", "size": 2048, "axis": 0})
    ds = Dataset(source=str(tmp_path / "a.bcf"), layers=[si])
    with pytest.raises(ReadError, match=r"a\.bcf: cannot read the spectrum image 'EDX'.*Error -3 while decompressing"):
        add_extracted_maps(ds)


def test_info_reports_every_file_even_after_a_failure(tmp_path, monkeypatch, capsys):
    """An unexpected exception type (StopIteration from a damaged lazy read) names its file."""
    from fusedem.cli import main

    good = Path(fusedem.__file__).parent / "data" / "PTO_Trilayer_dataset.npz"
    bad = tmp_path / "a.bcf"
    real = fusedem.io.load

    def load_(path, *a, **k):
        if str(path) == str(bad):
            raise StopIteration
        return real(path, *a, **k)

    monkeypatch.setattr(fusedem.io, "load", load_)
    assert main(["info", "--no-stats", str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert f"error: {bad}: StopIteration" in err
    assert str(good) in out and "ready to fuse" in out


def test_info_cli_names_the_bad_file_and_reports_the_good_one(tmp_path):
    good = Path(fusedem.__file__).parent / "data" / "PTO_Trilayer_dataset.npz"
    bad = tmp_path / "b.npz"
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 4096] = bytes(4096)
    bad.write_bytes(bytes(raw))
    proc = subprocess.run([sys.executable, "-m", "fusedem.cli", "info", "--no-stats", str(bad), str(good)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"error: {bad}: " in proc.stderr and "Traceback" not in proc.stderr
    assert str(good) in proc.stdout and "ready to fuse" in proc.stdout


# ------------------------------------------------------------ item 7: checksummed results
def test_damage_to_a_saved_result_is_detected(tmp_path):
    rng = np.random.default_rng(0)
    res = fusedem.fuse(rng.random((24, 24)), {"Dy": rng.random((24, 24))}, n_iter=3)
    p = tmp_path / "r.h5"
    fusedem.io.save_result(p, res, inputs=["HAADF", "Dy"])
    raw = bytearray(p.read_bytes())
    at = raw.find(np.asarray(res.costs["chem"], np.float64).tobytes())
    assert at > 0  # uncompressed: without a checksum a flip here would load silently
    raw[at + 3] ^= 0x10
    p.write_bytes(bytes(raw))
    with pytest.raises(ReadError, match=r"r\.h5: cannot read result"):
        fusedem.io.load_result(p)
    with pytest.raises(ReadError, match=r"r\.h5: "):
        load(p)


# ------------------------------------------------------------ item 8: a zeroed block in an .npz
def test_npz_with_a_zeroed_block_reads_as_damaged(tmp_path):
    good = Path(fusedem.__file__).parent / "data" / "PTO_Trilayer_dataset.npz"
    raw = bytearray(good.read_bytes())
    for at in (40, len(raw) // 2):  # over the first array's header, then inside an array's data
        bad = bytearray(raw)
        bad[at:at + 512] = bytes(512)
        p = tmp_path / "z.npz"
        p.write_bytes(bytes(bad))
        with pytest.raises(ReadError, match=r"z\.npz: file is (damaged|truncated or corrupt)") as err:
            load(p)
        assert "object" not in str(err.value)
