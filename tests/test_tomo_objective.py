"""The 3-D objective: NumPy reference by finite differences; the solver's kernels against it."""
import numpy as np
import pytest
import scipy.sparse as sp

from fusedem.tomo import _kernels, objective as ref, phantoms
from fusedem.tomo.inputs import prepare
from fusedem.tomo.params import TomoParams
from fusedem.tomo.problem import build
from fusedem.tomo.projector import Projector
from fusedem.tomo.solver import _Stepper


def _mat(c):
    return sp.csr_matrix((c.data.astype(np.float64), c.indices, c.indptr), shape=c.shape)


def _small_problem(seed=0):
    rng = np.random.default_rng(seed)
    n, ny, nz, nx = 2, 3, 6, 7
    ph = _mat(Projector(np.linspace(-60, 60, 5), nz, nx).csr)
    pc = _mat(Projector([-50.0, 0.0, 40.0], nz, nx).csr)
    x = rng.uniform(0.2, 1.0, (n, ny, nz, nx))
    bh = ref.project(ph, ref.haadf_volume(rng.uniform(0.2, 1, x.shape), np.ones(n), 1.6), nx)
    b = np.stack([rng.poisson(3 * ref.project(pc, rng.uniform(0.2, 1, x.shape[1:]), nx)) for _ in range(n)])
    return x, bh, b.astype(np.float64), np.array([1.5, 0.5]), ph, pc


def test_gradient_matches_finite_differences():
    x, bh, b, w, ph, pc = _small_problem()
    args = (bh, b, w, 1.6, 0.05, 0.7, ph, pc)
    g = ref.smooth_gradient(x, *args)
    rng = np.random.default_rng(3)
    for _ in range(3):
        d = rng.standard_normal(x.shape)
        h = 1e-6
        fd = (ref.smooth_objective(x + h * d, *args) - ref.smooth_objective(x - h * d, *args)) / (2 * h)
        assert fd == pytest.approx(float(np.sum(g * d)), rel=1e-6)


def test_tv3_of_a_step_and_a_ramp():
    v = np.zeros((4, 5, 6))
    v[:, :, 3:] = 2.0  # a step of height 2 across a 4 x 5 face
    assert ref.tv3(v) == pytest.approx(2.0 * 4 * 5)
    r = np.broadcast_to(np.arange(6.0), (4, 5, 6))
    assert ref.tv3(r) == pytest.approx(4 * 5 * 5)  # slope 1, 5 differences per line


def test_fgp_kernel_matches_numpy_reference():
    rng = np.random.default_rng(4)
    nz, nx, n, ny = 5, 6, 2, 7
    v = rng.standard_normal((nz, nx, n, ny)).astype(np.float32)
    x = np.empty_like(v)
    p = np.zeros((3, nz, nx, n, ny), np.float32)
    prev = np.empty((3, nz, nx, ny), np.float32)
    for momentum in (True, False):
        p[...] = 0
        for e in range(n):
            _kernels.tv_prox(v, x, p, prev, e, 0.3, 12, momentum=momentum)
            ve = v[:, :, e, :].astype(np.float64)
            xr, _ = ref.tv3_prox_fgp(ve, 0.3, 12, momentum=momentum)
            assert np.allclose(x[:, :, e, :], xr, atol=1e-4)
            # the prox step lowers 1/2||x - v||² + lam TV below its value at max(v, 0)
            obj = lambda u: 0.5 * np.sum((u - ve) ** 2) + 0.3 * ref.tv3(u)  # noqa: E731
            assert obj(x[:, :, e, :].astype(np.float64)) < obj(np.maximum(ve, 0))
            assert x[:, :, e, :].min() >= 0


def test_tv_total_and_haadf_sum_kernels():
    rng = np.random.default_rng(5)
    x = rng.random((4, 5, 3, 6)).astype(np.float32)
    expect = sum(ref.tv3(x[:, :, e, :].astype(np.float64)) for e in range(3))
    assert _kernels.tv_total(x) == pytest.approx(expect, rel=1e-5)
    w = np.array([2.0, 1.0, 0.5], np.float32)
    out = np.empty((4, 5, 6), np.float32)
    _kernels.haadf_sum(x, w, np.float32(1.6), out)
    assert np.allclose(out, np.tensordot(w, x.transpose(2, 0, 1, 3) ** 1.6, axes=1), rtol=1e-4)


def test_solver_costs_and_gradient_match_reference():
    truth, ts = phantoms.simulate("core_shell", n=16, dose=5.0, oversample=1,
                                  haadf_angles=np.linspace(-60, 60, 9), chem_angles=[-45.0, 0, 45])
    p = TomoParams(lambda_chem=3.0, lambda_tv=0.0, n_init=3, haadf_gain="fixed")
    pb = build(prepare(ts.haadf, ts.haadf_angles, ts.maps, ts.chem_angles), p)
    st = _Stepper(pb, p)
    st.x += 0.05  # away from 0, where x^(gamma-1) is not differentiable
    nz, nx, n, ny = pb.shape
    x64 = st.x.transpose(2, 3, 0, 1).astype(np.float64)
    bh = pb.bh.reshape(-1, nx, ny).transpose(0, 2, 1).astype(np.float64)
    bc = pb.bc.reshape(-1, nx, n, ny).transpose(2, 0, 3, 1).astype(np.float64)
    ph, pc = _mat(pb.ph.csr), _mat(pb.pc.csr)
    w = pb.w.astype(np.float64)
    psi1, psi2 = st.evaluate()
    assert psi1 == pytest.approx(ref.psi1(x64, bh, w, 1.6, ph) / pb.haadf_norm, rel=1e-4)
    per = [ref.psi2(x64[e:e + 1], bc[e:e + 1], p.eps, pc) for e in range(n)]
    assert psi2 == pytest.approx(float(np.dot(pb.chem_weights, per)), rel=1e-4)
    x_before = st.x.copy()
    st.step()  # lambda_tv = 0: x = max(v, 0) and v = x - tau grad f
    g = (x_before - st.v) / st.tau[None, None, :, None]
    g_ref = (ref.grad_psi1(x64, bh, w, 1.6, ph) / pb.haadf_norm
             + p.lambda_chem * pb.chem_weights[:, None, None, None] * ref.grad_psi2(x64, bc, p.eps, pc))
    g_ref = g_ref.transpose(2, 3, 0, 1)
    assert np.allclose(g, g_ref, atol=2e-3 * np.abs(g_ref).max())


def test_fitted_haadf_gain_cost_and_gradient():
    """haadf_gain='fit': Psi1 is minimal over the model's gain, and the solver's step
    follows the gradient of that reduced cost (finite differences on the NumPy statement)."""
    _, ts = phantoms.simulate("core_shell", n=16, dose=5.0, oversample=1,
                              haadf_angles=np.linspace(-60, 60, 9), chem_angles=[-45.0, 0, 45])
    p = TomoParams(lambda_chem=0.0, lambda_tv=0.0, n_init=3, haadf_gain="fit")
    pb = build(prepare(ts.haadf, ts.haadf_angles, ts.maps, ts.chem_angles), p)
    st = _Stepper(pb, p)
    st.x *= 1.7  # far from the gain fitted at x0, so the fitted gain matters
    st.x += 0.05
    nz, nx, n, ny = pb.shape
    x64 = st.x.transpose(2, 3, 0, 1).astype(np.float64)
    bh = pb.bh.reshape(-1, nx, ny).transpose(0, 2, 1).astype(np.float64)
    ph, w = _mat(pb.ph.csr), pb.w.astype(np.float64)
    psi1, _ = st.evaluate()
    assert psi1 == pytest.approx(ref.psi1_fitted_gain(x64, bh, w, 1.6, ph) / pb.haadf_norm, rel=1e-4)
    assert psi1 < 0.5 * ref.psi1(x64, bh, w, 1.6, ph) / pb.haadf_norm  # the fixed gain fits far worse
    x_before = st.x.copy()
    st.step()
    g = ((x_before - st.v) / st.tau[None, None, :, None]).transpose(2, 3, 0, 1).astype(np.float64)
    rng = np.random.default_rng(7)
    for _ in range(3):
        d = rng.standard_normal(x64.shape)
        h = 1e-5
        fd = (ref.psi1_fitted_gain(x64 + h * d, bh, w, 1.6, ph)
              - ref.psi1_fitted_gain(x64 - h * d, bh, w, 1.6, ph)) / (2 * h * pb.haadf_norm)
        assert float(np.sum(g * d)) == pytest.approx(fd, rel=2e-3)


def test_fsc_resolution_follows_blur():
    from scipy import ndimage

    from fusedem.tomo.metrics import fsc_resolution

    t = np.random.default_rng(0).random((24, 24, 24))
    assert fsc_resolution(t, t) == 2.0  # identical: Nyquist
    r1 = fsc_resolution(ndimage.gaussian_filter(t, 1.0), t)
    r2 = fsc_resolution(ndimage.gaussian_filter(t, 2.0), t)
    assert 2.0 < r1 < r2
