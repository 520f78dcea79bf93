"""Cubes larger than memory: PCA and EELS edge maps in blocks, equal to the in-memory results.

The cubes here are small; "larger than memory" is simulated by arrays that record
every read (no read may span more than one chunk) and by a tiny block size.
"""
from __future__ import annotations

import numpy as np
import pytest

import fusedem.spectra.blocks as blocks
from fusedem.spectra import choose_rank, denoise_pca, extract_edge_maps
from fusedem.spectra.blocks import row_ranges

from spectrum_phantoms import phase_truth, poisson_cube

da = pytest.importorskip("dask.array")


class RecordingArray:
    """A read-only array that records the number of entries each read returns."""

    def __init__(self, a: np.ndarray) -> None:
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim
        self.reads: list[int] = []

    def __getitem__(self, key):
        out = self.a[key]
        self.reads.append(int(np.size(out)))
        return out


@pytest.fixture(scope="module")
def raw():
    return poisson_cube(phase_truth(shape=(32, 32), seed=0), 40.0, seed=3)  # (32, 32, 550)


def _assert_same(a, b, rtol=1e-7):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def test_pca_on_small_dask_chunks_equals_in_memory(raw):
    mem = denoise_pca(raw, 4, randomised=True)
    rec = RecordingArray(raw)
    lazy = da.from_array(rec, chunks=(4, 8, 100))  # chunks in energy too
    res = denoise_pca(lazy, 4)
    assert type(res.cube).__module__.startswith("dask")  # lazy result
    assert res.settings["blocked"] and res.n_components == 4
    _assert_same(res.explained_variance_ratio, mem.explained_variance_ratio)
    _assert_same(res.cube.compute(), mem.cube)
    assert max(rec.reads) <= 4 * 8 * 100  # never more than one chunk read at a time
    # against the exact SVD at the signal rank (3 here; past it the components are noise,
    # which a randomised SVD picks differently: 4 % apart at k = 4, same residual)
    full = denoise_pca(raw, 3, randomised=False).cube
    three = denoise_pca(lazy, 3).cube.compute()
    assert np.linalg.norm(three - full) < 1e-4 * np.linalg.norm(full)  # measured 5e-6


def test_pca_on_a_memmap_in_blocks_equals_in_memory(raw, tmp_path, monkeypatch):
    path = tmp_path / "si.npy"
    np.save(path, np.moveaxis(raw, -1, 0))  # (E, y, x) as fusedem's readers give it
    mm = np.load(path, mmap_mode="r")
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 5 * 32 * 550 * 8)  # 5 scan rows per block
    assert len(row_ranges(np.moveaxis(mm, 0, -1))) == 7
    res = denoise_pca(mm, 3, axis=0)
    mem = denoise_pca(np.moveaxis(raw, -1, 0), 3, axis=0, randomised=True)
    assert res.settings["blocked"] and res.cube.shape == mm.shape
    _assert_same(res.cube, mem.cube)


def test_held_out_rank_in_blocks_does_not_depend_on_the_blocking(raw):
    one = choose_rank(da.from_array(raw, chunks=(32, 32, -1)), max_components=10)
    small = choose_rank(da.from_array(raw, chunks=(3, 32, -1)), max_components=10)
    _assert_same(small.scores, one.scores, rtol=1e-9)
    mem = choose_rank(raw, max_components=10)  # other thinning draws: the same k ± 1
    assert abs(small.n_components - mem.n_components) <= 1
    assert 2 <= small.n_components <= 8  # a plausible rank for these phases
    res = denoise_pca(da.from_array(raw, chunks=(8, 8, -1)), None, max_components=10)
    assert res.rank is not None and res.n_components == small.n_components


def test_blocked_pca_refuses_bad_input(raw):
    lazy = da.from_array(raw[:3, :4], chunks=(1, 4, -1))
    with pytest.raises(ValueError, match="at most 12 components"):
        denoise_pca(lazy, 20)
    bad = raw.astype(float)
    bad[20, 3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN .*scan rows"):
        denoise_pca(da.from_array(bad, chunks=(4, 32, -1)), 3)
    with pytest.raises(ValueError, match="raw counts"):
        denoise_pca(da.from_array(raw * 0.5, chunks=(8, 32, -1)), None)


def test_eels_edge_maps_on_small_dask_chunks_and_memmap_equal_in_memory(tmp_path):
    from test_eels import AXIS as EELS_AXIS, _cube, _truth

    cube = _cube(_truth((24, 28)), dose=5.0, seed=1)
    mem = extract_edge_maps(cube, EELS_AXIS, ["C", "Fe"], clip_negative=False)
    rec = RecordingArray(cube)
    lazy = extract_edge_maps(da.from_array(rec, chunks=(5, 6, 64)), EELS_AXIS, ["C", "Fe"],
                             clip_negative=False)
    assert max(rec.reads) <= 5 * 6 * 64
    np.save(tmp_path / "eels.npy", cube)
    mm = extract_edge_maps(np.load(tmp_path / "eels.npy", mmap_mode="r"), EELS_AXIS,
                           ["C", "Fe"], clip_negative=False)
    for el in ("C", "Fe"):
        _assert_same(lazy.maps[el], mem.maps[el], rtol=1e-10)
        _assert_same(mm.maps[el], mem.maps[el], rtol=1e-10)
        assert np.array_equal(lazy.failed[el], mem.failed[el])


def test_eels_file_read_lazily_by_rosettasciio(tmp_path):
    pytest.importorskip("rsciio.hspy")
    import fusedem.io
    from test_eels import AXIS as EELS_AXIS, _cube, _truth, _write_hspy

    cube = _cube(_truth((12, 14)), dose=5.0, seed=3)
    _write_hspy(tmp_path / "si.hspy", cube, ["C", "Fe"])
    si = fusedem.io.load(tmp_path / "si.hspy", lazy=True, extract=False).spectrum_images[0]
    assert type(si.data).__module__.startswith("dask")
    res = extract_edge_maps(si.data, si.energy_axis, ["C", "Fe"])
    mem = extract_edge_maps(cube, EELS_AXIS, ["C", "Fe"])
    for el in ("C", "Fe"):
        _assert_same(res.maps[el], mem.maps[el], rtol=1e-10)
