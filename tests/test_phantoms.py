"""Ground-truth phantoms and quality metrics (fusedem.phantoms)."""
from __future__ import annotations

import numpy as np
import pytest

from fusedem import phantoms as P


@pytest.mark.parametrize("kind", P.KINDS)
def test_phantom_is_deterministic_for_a_seed(kind):
    a, b, c = P.make(kind, (64, 64), 3), P.make(kind, (64, 64), 3), P.make(kind, (64, 64), 4)
    assert list(a.truth) == list(b.truth) and len(a.truth) >= 3
    assert all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth)
    assert any(not np.array_equal(a.truth[k], c.truth[k]) for k in a.truth)
    ma, mb = P.measure(a, 4.0, seed=7), P.measure(b, 4.0, seed=7)
    assert np.array_equal(ma.haadf, mb.haadf)
    assert all(np.array_equal(ma.maps[k], mb.maps[k]) for k in ma.maps)


@pytest.mark.parametrize("kind", P.KINDS)
def test_truth_and_elements(kind):
    ph = P.make(kind, (64, 80))
    zs = sorted(ph.z.values())
    assert ph.shape == (64, 80) and zs[0] == 8 and zs[-1] >= 60
    for t in ph.truth.values():
        assert t.shape == (64, 80) and t.min() >= 0 and t.max() <= 1 and t.std() > 0


@pytest.mark.parametrize("kind", P.KINDS)
@pytest.mark.parametrize("dose", [0.5, 32.0])
def test_dose_is_counts_per_pixel_at_the_brightest_maximum(kind, dose):
    ph = P.make(kind, (96, 96))
    lam = P.expected_counts(ph, dose)
    assert max(v.max() for v in lam.values()) == pytest.approx(dose)
    m = P.measure(ph, dose, seed=2)
    for k, counts in m.maps.items():
        assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0  # raw counts
        # total counts agree with the expected total within 5 Poisson standard deviations
        assert abs(counts.sum() - lam[k].sum()) < 5 * np.sqrt(lam[k].sum()) + 1


def test_haadf_follows_the_forward_model():
    ph = P.make("particles", (96, 96))
    m = P.measure(ph, 8.0, haadf_counts=1e7, read_noise=0.0)
    r = np.corrcoef(m.haadf.ravel(), P.haadf_signal(ph).ravel())[0, 1]
    assert r > 0.9999
    noisy = P.measure(ph, 8.0, haadf_counts=200.0, read_noise=0.02)
    assert np.corrcoef(noisy.haadf.ravel(), P.haadf_signal(ph).ravel())[0, 1] < r


def test_metrics_of_the_truth_and_of_affine_copies():
    ph = P.make("lattice", (64, 64))
    t = ph.truth["Dy"]
    assert P.psnr(t, t) > 200 and P.ssim(t, t) == pytest.approx(1.0)  # inf up to rounding
    assert P.psnr(3.0 * t + 2.0, t) > 100  # compared up to an affine scale
    assert P.ssim(3.0 * t + 2.0, t) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("kind", P.KINDS)
def test_metrics_order_noisier_below_less_noisy(kind):
    ph = P.make(kind, (96, 96))
    low, high = P.measure(ph, 1.0, seed=5), P.measure(ph, 32.0, seed=5)
    gains = []
    for k in ph.truth:
        lo, hi = P.psnr(low.maps[k], ph.truth[k]), P.psnr(high.maps[k], ph.truth[k])
        assert lo < hi
        assert P.ssim(low.maps[k], ph.truth[k]) < P.ssim(high.maps[k], ph.truth[k])
        gains.append(hi - lo)
    assert np.mean(gains) > 3  # 32x the dose; weak-contrast maps gain less (fit floor)
    t = ph.truth[next(iter(ph.truth))]
    assert P.psnr(t, t) > P.psnr(t + 0.01 * np.random.default_rng(0).standard_normal(t.shape), t) > \
        P.psnr(t + 0.1 * np.random.default_rng(0).standard_normal(t.shape), t)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        P.make("grains")
    with pytest.raises(ValueError, match="dose"):
        P.measure(P.make("lattice", (32, 32)), 0.0)
