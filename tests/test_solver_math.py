"""The maths: gradients, kernels against the NumPy reference, the TV step."""
from __future__ import annotations

import numpy as np
import pytest

from fusedem import kernels, objective, pipeline

RNG = np.random.default_rng(42)
F = np.float32


def _problem(n=3, shape=(24, 20), seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 1.0, (n,) + shape)
    b = rng.uniform(0.0, 1.0, (n,) + shape)
    bh = rng.uniform(0.0, 1.0, shape)
    w = np.array([0.66, 2.08, 0.25][:n])
    return x, b, bh, w


def _fd_check(f, grad, x, n_probe=25, h=1e-6):
    g = grad(x)
    rng = np.random.default_rng(0)
    for _ in range(n_probe):
        idx = tuple(rng.integers(0, s) for s in x.shape)
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fd = (f(xp) - f(xm)) / (2 * h)
        assert fd == pytest.approx(g[idx], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("gamma", [1.0, 1.4, 1.6, 2.0])
def test_grad_psi1_matches_finite_differences(gamma):
    x, _, bh, w = _problem()
    _fd_check(lambda v: objective.psi1(v, bh, w, gamma),
              lambda v: objective.grad_psi1(v, bh, w, gamma), x)


@pytest.mark.parametrize("eps", [0.01, 0.24])
def test_grad_psi2_matches_finite_differences(eps):
    x, b, _, _ = _problem()
    _fd_check(lambda v: objective.psi2(v, b, eps), lambda v: objective.grad_psi2(v, b, eps), x)


def test_gradient_kernel_matches_reference_step_and_costs():
    x, b, bh, w = _problem(shape=(33, 41))
    x[0, :3, :3] = 0.0  # zeros are allowed (x^(gamma-1) = 0 there)
    gamma, lam_h, lam_chem, eps = 1.6, 1 / 3, 0.08, 0.24
    y = np.empty(x.shape, F)
    c = kernels.gradient_step(x.astype(F), b.astype(F), bh.astype(F), w.astype(F),
                              F(gamma), F(lam_h), F(lam_chem), F(eps), y, True)
    step = lam_h * objective.grad_psi1(x, bh, w, gamma) + lam_chem * objective.grad_psi2(x, b, eps)
    np.testing.assert_allclose(y, np.maximum(x - step, 0), rtol=1e-4, atol=1e-5)
    assert c[0] == pytest.approx(objective.psi1(x, bh, w, gamma), rel=1e-4)
    assert c[1] == pytest.approx(objective.psi2(x, b, eps), rel=1e-4)
    assert c[2] == pytest.approx(sum(objective.tv(xi) for xi in x), rel=1e-4)


def _prox(y, lam, n_inner, momentum=True):
    y32 = np.ascontiguousarray(y, F)[None]
    work = [np.zeros_like(y32) for _ in range(4)]
    out = np.empty_like(y32)
    kernels.tv_prox(y32, lam, n_inner, *work, out, momentum=momentum, block=8)
    return out[0].astype(np.float64)


def _noisy_image(shape=(48, 40), seed=5):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    clean = ((xx - 20) ** 2 + (yy - 24) ** 2 < 150).astype(float) + 0.3 * (xx > 30)
    return clean + 0.3 * rng.standard_normal(shape)


def test_tv_step_reaches_optimum_of_constrained_tv_denoising():
    y = _noisy_image()
    lam = 0.2
    ref = _prox(y, lam, 3000)
    f_ref = objective.tv_prox_objective(ref, y, lam)
    assert ref.min() >= 0  # the non-negativity constraint holds
    # perturbations within the feasible set never decrease the objective (optimality)
    rng = np.random.default_rng(1)
    for _ in range(20):
        d = 1e-3 * rng.standard_normal(y.shape)
        assert objective.tv_prox_objective(np.maximum(ref + d, 0), y, lam) >= f_ref - 1e-6
    # FGP's objective decreases towards the optimum as inner iterations grow
    gaps = [objective.tv_prox_objective(_prox(y, lam, k), y, lam) - f_ref for k in (5, 50, 500)]
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-4
    assert gaps[2] < 1e-3 * f_ref


def test_fgp_needs_several_times_fewer_iterations_than_gp():
    y = _noisy_image()
    lam = 0.2
    f_ref = objective.tv_prox_objective(_prox(y, lam, 3000), y, lam)
    tol = 1e-4 * f_ref  # a relative accuracy of 1e-4 in the objective

    def iterations_to_tol(momentum):
        for k in range(1, 2001):
            if objective.tv_prox_objective(_prox(y, lam, k, momentum), y, lam) - f_ref < tol:
                return k
        return 2001

    k_fgp, k_gp = iterations_to_tol(True), iterations_to_tol(False)
    assert k_gp >= 3 * k_fgp, (k_fgp, k_gp)


def test_tv_step_with_zero_weight_is_projection():
    y = np.linspace(-1, 1, 64 * 16).reshape(64, 16)
    np.testing.assert_allclose(_prox(y, 0.0, 3), np.maximum(y, 0), atol=1e-7)


@pytest.mark.parametrize("block", [1, 3, 8, 64])
def test_tv_block_split_does_not_change_result(block):
    y = np.ascontiguousarray(_noisy_image((37, 29))[None].repeat(2, 0), F)
    outs = []
    for blk in (block, 1000):
        work = [np.zeros_like(y) for _ in range(4)]
        out = np.empty_like(y)
        kernels.tv_prox(y, 0.15, 7, *work, out, block=blk)
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)


def _two_pass(x, b, bh, w, scalars, lam, n_inner, momentum, warm, p0, q0):
    """Reference for the fused kernel: gradient_step, then tv_prox (separate sweeps)."""
    y = np.empty_like(x)
    costs = kernels.gradient_step(x, b, bh, w, *scalars, y, True)
    p, q = p0.copy(), q0.copy()
    out = np.empty_like(x)
    kernels.tv_prox(y, lam, n_inner, p, q, np.empty_like(x), np.empty_like(x), out,
                    momentum=momentum, warm=warm, block=8)
    return costs, out, p, q


@pytest.mark.parametrize("shape", [(3, 37, 29), (1, 64, 16), (4, 9, 70)])
@pytest.mark.parametrize("n_inner", [1, 3, 10])
@pytest.mark.parametrize("momentum,warm", [(True, True), (True, False), (False, True)])
def test_fused_iteration_equals_gradient_step_then_tv_prox(shape, n_inner, momentum, warm):
    rng = np.random.default_rng(sum(shape) + n_inner)
    x = rng.uniform(0, 1, shape).astype(F)
    x[x < 0.2] = 0.0
    b = rng.uniform(0, 1, shape).astype(F)
    bh = rng.uniform(0, 1, shape[1:]).astype(F)
    w = rng.uniform(0.5, 1.5, shape[0]).astype(F)
    p0 = rng.uniform(-0.5, 0.5, shape).astype(F)
    q0 = rng.uniform(-0.5, 0.5, shape).astype(F)
    p0[:, -1] = 0.0  # the duals' unused row and column
    q0[..., -1] = 0.0
    scalars = (F(1.6), F(0.4), F(0.3), F(0.05))
    lam = 0.1
    c_ref, x_ref, p_ref, q_ref = _two_pass(x, b, bh, w, scalars, lam, n_inner, momentum, warm, p0, q0)
    alphas = pipeline.fgp_alphas(n_inner, momentum)
    results = []
    for bands in (1, 2, 3, 7):  # 7: bands of 2 to 10 rows, narrower than their margins
        xx, pp, qq = x.copy(), p0.copy(), q0.copy()  # updated in place
        c = pipeline.fused_iteration(xx, b, bh, w, *scalars, pp, qq, lam, alphas, warm, True, True,
                                     bands)
        np.testing.assert_allclose(xx, x_ref, atol=1e-5)
        np.testing.assert_allclose(pp, p_ref, atol=1e-5)
        np.testing.assert_allclose(qq, q_ref, atol=1e-5)
        np.testing.assert_allclose(c, c_ref, rtol=1e-5)
        results.append((xx, pp, qq))
    # the split into bands (threads) changes no bit of the maps or duals
    for other in results[1:]:
        for a, a1 in zip(other, results[0]):
            np.testing.assert_array_equal(a, a1)
    # keep=False: same maps, the duals are left alone
    xx, pp, qq = x.copy(), p0.copy(), q0.copy()
    pipeline.fused_iteration(xx, b, bh, w, *scalars, pp, qq, lam, alphas, warm, False, True, 2)
    np.testing.assert_array_equal(xx, results[0][0])
    assert np.array_equal(pp, p0) and np.array_equal(qq, q0)
    # update=False: the costs only, nothing is written
    xx = x.copy()
    c = pipeline.fused_iteration(xx, b, bh, w, *scalars, pp, qq, lam, alphas, warm, True, False, 3)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5)
    assert np.array_equal(xx, x) and np.array_equal(pp, p0) and np.array_equal(qq, q0)


def test_prox_psi2_is_the_proximal_point():
    """objective.prox_psi2 minimises 1/2 (x - v)^2 + lam Psi2(x) over x >= 0, pixel-wise."""
    rng = np.random.default_rng(5)
    v = rng.uniform(-1.0, 2.0, 400)
    b = rng.uniform(0.0, 1.0, 400)
    b[:40] = 0.0
    for lam, eps in ((0.3, 0.01), (0.08, 0.24), (1e-4, 0.1)):
        x = objective.prox_psi2(v, b, eps, lam)
        grid = np.linspace(0, 3, 30001)[:, None]  # brute force over x >= 0
        f = 0.5 * (grid - v) ** 2 + lam * (grid - b * np.log(grid + eps))
        np.testing.assert_allclose(x, grid[np.argmin(f, axis=0), 0], atol=2e-4)


@pytest.mark.parametrize("lam_chem, eps", [(0.08, 0.24), (0.3, 0.01), (0.0, 0.1)])
def test_prox_kernel_matches_reference(lam_chem, eps):
    x, b, bh, w = _problem(shape=(33, 41))
    x[0, :3, :3] = 0.0
    b[1, :5, :5] = 0.0
    gamma, lam_h = 1.6, 1 / 3
    y = np.empty(x.shape, F)
    kernels.gradient_step(x.astype(F), b.astype(F), bh.astype(F), w.astype(F),
                          F(gamma), F(lam_h), F(lam_chem), F(eps), y, True, True)
    v = x - lam_h * objective.grad_psi1(x, bh, w, gamma)
    np.testing.assert_allclose(y, objective.prox_psi2(v, b, eps, lam_chem), rtol=1e-4, atol=1e-5)
    # the one-pass kernel computes the same step (no TV: lam_tv = 0)
    xx = x.astype(F)
    duals = np.zeros_like(xx)
    pipeline.fused_iteration(xx, b.astype(F), bh.astype(F), w.astype(F), F(gamma), F(lam_h),
                             F(lam_chem), F(eps), duals, duals, 0.0, pipeline.fgp_alphas(3),
                             False, False, True, 2, True)
    np.testing.assert_allclose(xx, y, rtol=1e-6, atol=1e-7)


def test_prox_step_stays_bounded_where_the_gradient_step_blows_up():
    """x = 0, b = 1, eps = 0.01, lam_chem = 0.3: the explicit step jumps to ~30."""
    x = np.zeros((1, 16, 16), F)
    b = np.ones_like(x)
    bh = np.zeros((16, 16), F)
    w = np.ones(1, F)
    out = {}
    for prox in (False, True):
        y = np.empty_like(x)
        kernels.gradient_step(x, b, bh, w, F(1.6), F(1.0), F(0.3), F(0.01), y, True, prox)
        out[prox] = float(y.max())
    assert out[False] > 25 and 0 < out[True] < 1


def test_fused_iteration_without_tv_is_the_gradient_step():
    x, b, bh, w = (a.astype(F) for a in _problem(shape=(33, 41)))
    scalars = (F(1.6), F(1 / 3), F(0.08), F(0.24))
    y = np.empty_like(x)
    c_ref = kernels.gradient_step(x, b, bh, w, *scalars, y, True)
    duals = np.full_like(x, 7.0)
    c = pipeline.fused_iteration(x, b, bh, w, *scalars, duals, duals, 0.0, pipeline.fgp_alphas(3),
                                 True, True, True, 2)
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)  # FMA contraction may differ
    np.testing.assert_allclose(c, c_ref, rtol=1e-6)
    assert np.all(duals == 7.0)  # no TV step: the duals are left alone


def test_fgp_momentum_factors():
    al = pipeline.fgp_alphas(4)
    t = [1.0]
    for _ in range(4):
        t.append(0.5 * (1 + np.sqrt(1 + 4 * t[-1] ** 2)))
    np.testing.assert_allclose(al, [(t[k] - 1) / t[k + 1] for k in range(4)])
    assert al[0] == 0.0 and np.all(np.diff(al) > 0)
    assert np.all(pipeline.fgp_alphas(4, momentum=False) == 0.0)


def test_polynomial_pow_and_log_are_float32_accurate():
    import numba

    from fusedem import _rowmath

    v = np.geomspace(1e-12, 1e3, 20001).astype(F)  # results stay normal float32
    out = np.empty_like(v)
    for a in (0.4, 0.6, 1.0, 1.6, 2.0, 3.0):  # exponents of the model: gamma - 1 and gamma
        _rowmath.pow_row(v, F(a), out)
        # float32 rounding of a log2(v), up to |40|, limits the accuracy (measured 1e-6 to 7e-6)
        np.testing.assert_allclose(out, v.astype(np.float64) ** a, rtol=1e-5)
    special = np.array([0.0, 1.0, 2.0], F)
    out3 = np.empty_like(special)
    _rowmath.pow_row(special, F(1.6), out3)
    np.testing.assert_allclose(out3, [0.0, 1.0, 2.0**1.6], rtol=2e-6)
    _rowmath.pow_row(special, F(0.0), out3)
    assert np.all(out3 == 1.0)

    @numba.njit
    def logs(a, o):
        for j in range(a.shape[0]):
            o[j] = _rowmath.logf(a[j])

    logs(v, out)
    np.testing.assert_allclose(out, np.log(v.astype(np.float64)), rtol=2e-6, atol=2e-7)


def test_forward_model_kernel_matches_reference():
    x, _, _, w = _problem(shape=(17, 23))
    x[1, 0, :5] = 0.0
    out = np.empty(x.shape[1:], F)
    kernels.forward_model(x.astype(F), w.astype(F), F(1.6), out)
    np.testing.assert_allclose(out, objective.haadf_model(x, w, 1.6), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("n_inner,momentum", [(1, True), (3, True), (6, False), (25, True)])
@pytest.mark.parametrize("tv_step", [1.0, 0.4])
def test_kernels_match_the_stated_outer_iteration_with_per_element_weights(n_inner, momentum,
                                                                            tv_step):
    """Both kernels (one pass, two passes) against objective.outer_iteration, with one TV
    weight per element (one of them 0: no TV step), one Poisson weight per element
    (poisson_weights='counts') and a shortened dual step."""
    rng = np.random.default_rng(n_inner + int(10 * tv_step))
    shape = (4, 33, 27)
    x = rng.uniform(0, 1, shape)
    x[x < 0.15] = 0.0
    b = rng.uniform(0, 1, shape)
    bh = rng.uniform(0, 1, shape[1:])
    w = rng.uniform(0.5, 1.5, shape[0])
    lam_tv = np.array([0.02, 0.3, 0.0, 0.08])
    gamma, lam_h, eps = 1.6, 0.25, 0.1
    lam_chem = np.array([0.05, 0.01, 0.2, 0.08])
    ref, p_ref, q_ref = objective.outer_iteration(x, b, bh, w, gamma, lam_h, lam_chem, eps, lam_tv,
                                                  n_inner, momentum, tv_step)
    args = [a.astype(F) for a in (x, b, bh, w)]
    scalars = (F(gamma), F(lam_h), lam_chem.astype(F), F(eps))
    alphas = pipeline.fgp_alphas(n_inner, momentum)
    for bands in (1, 3):
        xx, pp, qq = args[0].copy(), np.zeros(shape, F), np.zeros(shape, F)
        pipeline.fused_iteration(xx, *args[1:], *scalars, pp, qq, lam_tv, alphas, False, True,
                                 True, bands, False, tv_step)
        np.testing.assert_allclose(xx, ref, atol=2e-5)
        np.testing.assert_allclose(pp, p_ref, atol=2e-5)
        np.testing.assert_allclose(qq, q_ref, atol=2e-5)
    y = np.empty_like(args[0])
    kernels.gradient_step(*args, *scalars, y, True)
    work = [np.zeros(shape, F) for _ in range(4)]
    out = np.empty_like(y)
    kernels.tv_prox(y, lam_tv, n_inner, *work, out, momentum=momentum, block=8, tv_step=tv_step)
    np.testing.assert_allclose(out, ref, atol=2e-5)
    # each element's TV step is its own: element 2 (weight 0) is the clipped gradient step
    np.testing.assert_allclose(out[2], y[2], atol=0)


def test_per_element_weights_equal_separate_solves():
    """One call with weights (n,) = n calls with one weight each."""
    rng = np.random.default_rng(8)
    y = rng.uniform(0, 1, (3, 20, 18)).astype(F)
    lam = np.array([0.05, 0.2, 0.6], F)
    work = [np.zeros_like(y) for _ in range(4)]
    out = np.empty_like(y)
    kernels.tv_prox(y, lam, 5, *work, out, block=4)
    for e in range(3):
        w1 = [np.zeros_like(y[e:e + 1]) for _ in range(4)]
        o1 = np.empty_like(y[e:e + 1])
        kernels.tv_prox(y[e:e + 1].copy(), float(lam[e]), 5, *w1, o1, block=4)
        np.testing.assert_array_equal(out[e], o1[0])
    with pytest.raises(ValueError, match="one value per element"):
        kernels.tv_prox(y, lam[:2], 5, *work, out)
