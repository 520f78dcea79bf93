"""Extreme values and loose types never give silent inf/NaN or a refusal (issue 14, items 7, 8)."""
from __future__ import annotations

import numpy as np
import pytest

import fusedem
from fusedem.solver import prepare_inputs


def _pair(seed=0, shape=(32, 40)):
    rng = np.random.default_rng(seed)
    return rng.random(shape), {"Dy": rng.poisson(3.0, shape).astype(float), "O": rng.random(shape)}


@pytest.mark.parametrize("case", ["spike_1e39", "scaled_1e300", "scaled_1e-40", "span_1e308"])
def test_values_float32_cannot_hold_normalise_exactly(case):
    h, maps = _pair()
    ref_bh, ref_b, *_ = prepare_inputs(h, maps)
    if case == "spike_1e39":
        h = h.copy()
        h[3, 4] = 1e39
        bh, *_ = prepare_inputs(h, maps)
        assert bh[3, 4] == 1.0 and np.all(np.isfinite(bh))
        expected = (h - h.min()) / (h.max() - h.min())
        np.testing.assert_allclose(bh, expected.astype(np.float32), rtol=1e-6, atol=1e-30)
        return
    scale = {"scaled_1e300": 1e300, "scaled_1e-40": 1e-40}.get(case)
    if scale is not None:
        h, maps = h * scale, {k: v * scale for k, v in maps.items()}
    else:  # values from -1e308 to 1e308: the span itself overflows float64
        h = ((h - h.min()) / (h.max() - h.min()) - 0.5) * 1.5e308 * 2
        assert not np.isfinite(h.max() - h.min())
        ref_bh = ((h / 2 - h.min() / 2) / (h.max() / 2 - h.min() / 2)).astype(np.float32)
    bh, b, *_ = prepare_inputs(h, maps)
    np.testing.assert_allclose(bh, ref_bh, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, ref_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1e300, 1e-40])
def test_fuse_of_extreme_inputs_has_finite_costs_and_the_same_maps(scale):
    h, maps = _pair(1)
    ref = fusedem.fuse(h, maps, n_iter=4)
    res = fusedem.fuse(h * scale, {k: v * scale for k, v in maps.items()}, n_iter=4)
    for name, c in res.costs.items():
        assert np.all(np.isfinite(c)), name
        np.testing.assert_allclose(c, ref.costs[name], rtol=1e-4)
    for k in maps:
        np.testing.assert_allclose(res.maps[k], ref.maps[k], rtol=1e-4, atol=1e-6)


def test_a_diverging_run_raises_instead_of_returning_inf():
    h, maps = _pair(2)
    with pytest.raises(ValueError, match="diverged: the cost terms are not finite"):
        fusedem.fuse(h, maps, n_iter=5, lambda_chem=1e35)
    gen = fusedem.iterate(h, maps, n_iter=5, lambda_chem=1e35)
    with pytest.raises(ValueError, match="diverged"):
        list(gen)


@pytest.mark.parametrize("value", [np.int64(5), np.int32(5), np.uint8(5)])
def test_integral_types_are_accepted_for_iteration_counts(value):
    p = fusedem.FusionParams(n_iter=value, n_iter_tv=value)
    assert p.n_iter == 5 and type(p.n_iter) is int and type(p.n_iter_tv) is int
    assert p == fusedem.FusionParams(n_iter=5, n_iter_tv=5)
    assert fusedem.FusionParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("value", [5.0, True, np.float64(5.0), "5", 0, np.int64(-1)])
def test_non_integers_are_still_refused(value):
    with pytest.raises(ValueError, match="n_iter must be an integer >= 1"):
        fusedem.FusionParams(n_iter=value)
