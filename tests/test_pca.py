"""fusedem.spectra.denoise_pca / choose_rank on synthetic low-rank spectrum images."""
from __future__ import annotations

import numpy as np
import pytest

from fusedem.spectra import choose_rank, denoise_pca, extract_maps
from fusedem.spectra.pca import truncated_svd

from spectrum_phantoms import AXIS, expected_cube, phase_truth, poisson_cube

ELEMENTS = ["O", "Ti", "Fe", "Cu"]


def _rel_err(maps, ref) -> float:
    return float(np.mean([np.sqrt(np.mean((maps[e] - ref[e]) ** 2) / np.mean(ref[e] ** 2))
                          for e in ref]))


@pytest.fixture(scope="module")
def case():
    truth = phase_truth(shape=(32, 32), seed=0)
    dose = 40.0
    return truth, expected_cube(truth, dose), poisson_cube(truth, dose, seed=3)


def test_noise_free_low_rank_cube_is_reconstructed(case):
    truth, mu, _ = case
    den, evr = denoise_pca(mu, 8)
    assert den.shape == mu.shape
    assert np.max(np.abs(den - mu)) < 1e-6 * mu.max()
    assert evr.shape[0] >= 8 and np.all(np.diff(evr) <= 1e-12) and evr.sum() <= 1 + 1e-9


def test_pca_lowers_map_error_of_noisy_cube(case):
    _, mu, raw = case
    ref = extract_maps(mu, AXIS, ELEMENTS, clip_negative=False).maps
    e_raw = _rel_err(extract_maps(raw, AXIS, ELEMENTS, clip_negative=False).maps, ref)
    res = denoise_pca(raw)  # held-out rank
    e_pca = _rel_err(extract_maps(res.cube, AXIS, ELEMENTS, clip_negative=False).maps, ref)
    assert res.rank is not None and 2 <= res.n_components <= 8
    assert e_pca < 0.75 * e_raw, (e_pca, e_raw)


def test_held_out_rank_is_near_the_best_rank(case):
    _, mu, raw = case
    ref = extract_maps(mu, AXIS, ELEMENTS, clip_negative=False).maps
    errs = [_rel_err(extract_maps(denoise_pca(raw, k).cube, AXIS, ELEMENTS,
                                  clip_negative=False).maps, ref) for k in range(1, 11)]
    rc = choose_rank(raw, max_components=10)
    assert rc.scores.shape == (10,)
    # within 10 % of the best reachable error (the oracle needs the truth)
    assert errs[rc.n_components - 1] <= 1.10 * min(errs), (rc.n_components, errs)


def test_scores_rise_past_the_rank_and_dont_fall_below_noise(case):
    _, _, raw = case
    rc = choose_rank(raw, max_components=15)
    k = rc.n_components
    assert rc.scores[-1] > rc.scores[k - 1]      # overfitting noise components costs
    assert rc.scores[0] > rc.scores[k - 1]       # one component (the mean) is not enough


def test_axis_order_is_kept(case):
    _, _, raw = case
    a = denoise_pca(raw, 4).cube
    b = denoise_pca(np.moveaxis(raw, -1, 0), 4, axis=0).cube
    assert b.shape == (raw.shape[-1],) + raw.shape[:2]
    np.testing.assert_allclose(np.moveaxis(b, 0, -1), a, rtol=1e-6, atol=1e-9)


def test_randomised_svd_matches_full():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((600, 5)) @ rng.standard_normal((5, 300)) * 10
    m += rng.standard_normal(m.shape)
    _, s_full, _ = truncated_svd(m, 5, rng, randomised=False)
    u, s, vt = truncated_svd(m, 5, rng, randomised=True)
    np.testing.assert_allclose(s, s_full, rtol=1e-6)
    assert u.shape == (600, 5) and vt.shape == (5, 300)


def test_zero_pixels_and_channels_stay_finite(case):
    _, _, raw = case
    r = raw.copy()
    r[:4] = 0       # empty scan rows
    r[..., :20] = 0  # empty channels
    den, _ = denoise_pca(r)
    assert np.all(np.isfinite(den)) and np.all(den[:4] == 0) and np.all(den[..., :20] == 0)


def test_bad_input_is_refused_with_a_clear_message(case):
    _, mu, raw = case
    with pytest.raises(ValueError, match="at most 16 components"):
        denoise_pca(raw[:4, :4], 20)
    with pytest.raises(ValueError, match="positive integer"):
        denoise_pca(raw, 0)
    with pytest.raises(ValueError, match="raw counts"):
        denoise_pca(mu)  # expected values are not counts: no held-out choice
    with pytest.raises(ValueError, match="negative"):
        denoise_pca(raw.astype(float) - 5.0, 3)
    with pytest.raises(ValueError, match="3-D"):
        denoise_pca(raw[0], 3)
    bad = raw.astype(float)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        denoise_pca(bad, 3)
