"""Fused tomography solver: recovery against chemical-only reconstruction, bad inputs, streaming."""
import numpy as np
import pytest

from fusedem.phantoms import psnr
from fusedem.tomo import TomoParams, TomoResult, fuse_tilt_series, iterate_tilt_series, phantoms
from fusedem.tomo import solver


@pytest.fixture(scope="module")
def core_shell():
    return phantoms.simulate("core_shell", n=24, dose=4.0, seed=0)


def _series(ts):
    return ts.haadf, ts.haadf_angles, ts.maps, ts.chem_angles


def test_fused_recovers_truth_better_than_chemical_only(core_shell):
    truth, ts = core_shell
    r = fuse_tilt_series(*_series(ts))
    assert isinstance(r, TomoResult) and r.iterations == r.params.n_iter
    for k, v in r.volumes.items():
        assert v.shape == (24, 24, 24) and v.dtype == np.float32 and v.min() >= 0
    fused = np.mean([psnr(r.volumes[k], truth[k]) for k in truth])
    # chemical-only, each element at its best iteration count (an oracle the fused run lacks)
    best = {}
    for method in ("mlem", "sirt"):
        for n_iter in (5, 10, 20, 40):
            rec = phantoms.chemical_only(ts, method, n_iter)
            for k in truth:
                best[k] = max(best.get(k, -np.inf), psnr(rec[k], truth[k]))
    chem_only = np.mean(list(best.values()))
    assert fused > chem_only + 0.75, (fused, best)
    assert set(r.costs) == {"haadf", "chem", "tv"} and all(c.shape == (r.iterations,) for c in r.costs.values())
    assert set(r.scales) == set(truth) and all(s > 0 for s in r.scales.values())
    assert r.elements == {"Au": 79, "Fe": 26, "O": 8, "C": 6}


def test_the_cost_goes_down(core_shell):
    _, ts = core_shell
    r = fuse_tilt_series(*_series(ts), n_iter=15, lambda_tv=0.0)
    total = r.costs["haadf"] + r.params.lambda_chem * r.costs["chem"]
    assert total[-1] < total[0]
    assert np.all(np.diff(total) <= 1e-4 * np.abs(total[:-1]))  # sufficient decrease each step


def test_generator_streams_and_stops_when_closed(core_shell, monkeypatch):
    _, ts = core_shell
    steps = []
    orig = solver._Stepper.step
    monkeypatch.setattr(solver._Stepper, "step", lambda self, *a: (steps.append(1), orig(self, *a)))
    gen = iterate_tilt_series(*_series(ts), n_iter=50, every=2)
    st = next(gen)
    assert st.iteration == 2 and not st.done and set(st.volumes) == set(ts.maps)
    assert st.volumes["Au"].shape == (24, 24, 24) and len(st.costs["haadf"]) == 2
    gen.close()
    assert len(steps) == 2  # nothing ran after the close
    states = list(iterate_tilt_series(*_series(ts), n_iter=4, min_interval=1e6))
    assert [s.iteration for s in states] == [1, 2, 3, 4] and states[-1].done
    assert states[1].volumes is None and states[-1].volumes is not None


def test_params_roundtrip_and_validation():
    p = TomoParams(lambda_chem=2.0, nz=40)
    assert TomoParams.from_dict(p.to_dict()) == p and p.replace(gamma=1.8).gamma == 1.8
    for bad in ({"lambda_tv": -1}, {"eps": 0}, {"n_iter": 0}, {"weighting": "zz"}, {"nz": 0},
                {"gamma": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TomoParams(**bad)
    with pytest.raises(ValueError, match="unknown"):
        TomoParams().replace(lambda_x=1)


def _ok(n_h=5, n_c=3, ny=6, nx=8):
    rng = np.random.default_rng(0)
    return (rng.random((n_h, ny, nx)) + 0.1, np.linspace(-60, 60, n_h),
            {"Fe": rng.poisson(3, (n_c, ny, nx)).astype(float)}, np.linspace(-60, 60, n_c))


@pytest.mark.parametrize("change, message", [
    (lambda a: (a[0], a[1][:-1], a[2], a[3]), "haadf_angles: 4 angles given for a stack of 5"),
    (lambda a: (a[0], a[1], a[2], a[3][:2]), "chem_angles: 2 angles given for a stack of 3"),
    (lambda a: (a[0], np.r_[a[1][:-1], 95.0], a[2], a[3]), "within ±90"),
    (lambda a: (a[0], a[1], {"Fe": a[2]["Fe"][:, :, :6]}, a[3]), "detector size mismatch"),
    (lambda a: (a[0][:1], a[1][:1], a[2], a[3]), "at least 2 tilts"),
    (lambda a: (a[0], a[1], {"Fe": np.where(np.arange(8) == 3, np.nan, a[2]["Fe"])}, a[3]), "NaN"),
    (lambda a: (np.where(np.arange(8) == 1, np.inf, a[0]), a[1], a[2], a[3]), "HAADF: .*infinite"),
    (lambda a: (a[0], a[1], {"Fe": a[2]["Fe"], "O": np.zeros_like(a[2]["Fe"])}, a[3]), "'O' has no counts"),
    (lambda a: (a[0], a[1], {"Xx": a[2]["Fe"]}, a[3]), "Xx"),
    (lambda a: (a[0][0], a[1], a[2], a[3]), "HAADF: expected a tilt series"),
    (lambda a: (a[0], a[1], {}, a[3]), "non-empty"),
])
def test_bad_input_is_named_before_any_work(change, message, monkeypatch):
    called = []
    monkeypatch.setattr(solver, "build", lambda *a: called.append(1))
    with pytest.raises(ValueError, match=message):
        fuse_tilt_series(*change(_ok()))
    with pytest.raises(ValueError, match=message):
        iterate_tilt_series(*change(_ok()))  # raises when called, not at the first next()
    assert not called


def test_result_in_counts_and_custom_depth():
    haadf, th, maps, tc = _ok(ny=6, nx=10)
    r = fuse_tilt_series(haadf, th, maps, tc, n_iter=3, nz=4)
    assert r.volumes["Fe"].shape == (6, 4, 10)
    assert r.params.nz == 4 and np.array_equal(r.chem_angles, tc)


def test_auto_params_choose_from_the_grid_by_held_out_counts():
    truth, ts = phantoms.simulate("layers", n=16, dose=4.0, seed=2, oversample=1)
    r = fuse_tilt_series(*_series(ts), params="auto", n_iter=8)
    a = r.autotune
    assert len(a.scores) == 9 and all(np.isfinite(v) for v in a.scores.values())
    assert (r.params.lambda_chem, r.params.lambda_tv) == min(a.scores, key=a.scores.get)
    assert r.params.n_iter == 8 and len(set(a.scores.values())) > 1
    with pytest.raises(ValueError, match="raw counts"):
        fuse_tilt_series(ts.haadf, ts.haadf_angles, {k: v + 0.5 for k, v in ts.maps.items()},
                         ts.chem_angles, params="auto")
    with pytest.raises(ValueError, match="raw counts"):
        iterate_tilt_series(ts.haadf, ts.haadf_angles, {k: v + 0.5 for k, v in ts.maps.items()},
                            ts.chem_angles, params="auto")
    states = list(iterate_tilt_series(*_series(ts), params="auto", n_iter=8, every=4))
    assert [s.iteration for s in states] == [4, 8]
    assert np.allclose(states[-1].volumes["Hf"], r.volumes["Hf"])  # same choice, same solve
    with pytest.raises(ValueError, match="'auto'"):
        iterate_tilt_series(*_series(ts), params="fast")
