"""Seeded mutants of shipped and test-written files: a clear error or a load, never a crash (issue 14).

The deep version is ``benchmarks/fuzz_readers.py``; the harness is ``tests/fuzzing.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fuzzing import make_mutants, read_all, table
from sfs_files import sfs_bytes
from shared_data import VENDOR

import fusedem
import fusedem.io

DATA = Path(fusedem.__file__).parent / "data"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> list[Path]:
    """A fusedem result (.h5, .tif), a HAADF TIFF and an SFS container, written by the test."""
    import tifffile

    d = tmp_path_factory.mktemp("fuzz_src")
    rng = np.random.default_rng(0)
    h, m = rng.random((40, 32)), {"Dy": rng.poisson(3.0, (40, 32)).astype(np.float32)}
    res = fusedem.fuse(h, m, n_iter=2)
    fusedem.io.save_result(d / "result.h5", res, inputs={"HAADF": h, **m})
    fusedem.io.save_result(d / "result.tif", res)
    tifffile.imwrite(d / "HAADF.tif", h.astype(np.float32))
    (d / "container.bcf").write_bytes(sfs_bytes(rng.integers(0, 256, 9000, dtype=np.uint8).tobytes()))
    return [d / "result.h5", d / "result.tif", d / "HAADF.tif", d / "container.bcf"]


def _check(mutants, tmp_path) -> None:
    reads = read_all([m for m, _, _ in mutants], timeout_s=60)
    rows = [(src.suffix.lstrip("."), kind, r) for (m, kind, src), r in zip(mutants, reads)]
    bad = [f"{r.outcome} {r.path.name}: {r.message}" for _, _, r in rows
           if r.outcome in ("unclear", "crash", "timeout")]
    assert not bad, table(rows) + "\n" + "\n".join(bad)
    assert [r.path for r in reads] == [m for m, _, _ in mutants]
    assert any(r.outcome == "error" for _, _, r in rows)  # the mutants do damage


def test_mutants_of_project_files_never_crash(written, tmp_path):
    sources = [DATA / "PTO_Trilayer_dataset.npz", DATA / "Co3O4_Mn3O4.h5", *written]
    _check(make_mutants(sources, 5, seed=14, folder=tmp_path / "m"), tmp_path)


@pytest.mark.skipif(not (VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf").is_file(),
                    reason=f"shared vendor files not found in {VENDOR}")
def test_mutants_of_a_real_bcf_never_crash(tmp_path):
    """Random mutants, and ones that kill a process reading them with RosettaSciIO directly:
    the two truncations of issue 14 and bytes flipped in the spectrum data (seeds checked
    to give SIGSEGV/SIGBUS there on every try)."""
    src = VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf"
    raw = src.read_bytes()
    known = []
    for cut in (181991, 250917):
        known.append((tmp_path / f"cut{cut}.bcf", "truncate", src))
        known[-1][0].write_bytes(raw[:cut])
    for seed in (1, 4, 5, 6):
        rng = np.random.default_rng([14, seed])
        b = bytearray(raw)
        for j in rng.integers(len(raw) // 2, len(raw), 8):
            b[j] ^= 1 << int(rng.integers(0, 8))
        known.append((tmp_path / f"flip{seed}.bcf", "flip", src))
        known[-1][0].write_bytes(bytes(b))
    reads = read_all([m for m, _, _ in known], timeout_s=60)
    assert [r.outcome for r in reads] == ["error"] * len(known), [(r.path.name, r.outcome, r.message) for r in reads]
    _check(make_mutants([src], 10, seed=14, folder=tmp_path / "m"), tmp_path)


def test_the_harness_sees_a_crash(tmp_path, monkeypatch):
    """A worker killed by a signal is reported as a crash of that file; the others still run."""
    import fuzzing

    good = tmp_path / "ok.npz"
    np.savez(good, HAADF=np.ones((8, 8)), Dy=np.arange(64.0).reshape(8, 8))
    boom = tmp_path / "boom.npz"
    boom.write_bytes(b"x")
    monkeypatch.setattr(fuzzing, "_WORKER", fuzzing._WORKER.replace(
        "    try:\n", "    if path.endswith('boom.npz'):\n        import os, signal; os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    try:\n", 1))
    reads = read_all([good, boom, good], timeout_s=60)
    assert [r.outcome for r in reads] == ["loaded", "crash", "loaded"]
    assert reads[1].message == "SIGSEGV"
