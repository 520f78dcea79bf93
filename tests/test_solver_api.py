"""Public API: fuse / iterate behaviour, quality on phantoms and tutorials, bad input."""
from __future__ import annotations

import dataclasses
import sys
from importlib import resources
from pathlib import Path

import h5py
import numpy as np
import pytest

import fusedem
from fusedem import FusionParams, fuse, iterate
from fusedem.solver import channel_weights, prepare_inputs
from fusedem.stepper import MAX_FUSED_INNER, Stepper

sys.path.insert(0, str(Path(__file__).parent))
from phantoms import grain_phantom, measure, psnr  # noqa: E402

from shared_data import PUBLISHED  # noqa: E402


def _tutorial(name):
    data = resources.files("fusedem") / "data"
    if name == "dysco3":
        with resources.as_file(data / "PTO_Trilayer_dataset.npz") as p:
            d = np.load(p)
            return d["HAADF"], {k: d[k] for k in ("Sc", "Dy", "O")}
    with resources.as_file(data / "Co3O4_Mn3O4.h5") as p, h5py.File(p, "r") as f:
        return f["HAADF"][()], {k: f[k][()] for k in ("Co", "Mn", "O")}


@pytest.fixture(scope="module")
def small():
    truth, z = grain_phantom((64, 64))
    haadf, maps = measure(truth, z, dose=6.0)
    return truth, haadf, maps


# --- quality --------------------------------------------------------------------------

# Asserted PSNR gain of the fused over the raw map, in dB (measured: Dy 27.6, Sc 12.7,
# O 4.4). Oxygen (Z=8) barely shows in the HAADF, so fusion helps it least.
PSNR_MARGIN_DB = {"Dy": 10.0, "Sc": 6.0, "O": 1.5}


def test_fused_maps_beat_raw_maps_on_phantom():
    truth, z = grain_phantom((96, 96))
    haadf, maps = measure(truth, z, dose=8.0)
    res = fuse(haadf, maps, lambda_chem=0.1, lambda_tv=0.05, eps=0.1, n_iter=60, n_iter_tv=10)
    gains = {el: psnr(res.maps[el], truth[el]) - psnr(maps[el], truth[el]) for el in truth}
    assert all(gains[el] >= PSNR_MARGIN_DB[el] for el in truth), gains


@pytest.mark.parametrize(
    "name, file, min_r",
    [("dysco3", "DyScO3_tutorial_params.npz", 0.9), ("co3o4_mn3o4", "Co3O4_Mn3O4_tutorial_params.npz", 0.9)],
)
def test_tutorial_parameters_mean_the_same_as_published(name, file, min_r):
    haadf, maps = _tutorial(name)
    res = fuse(haadf, maps, FusionParams.preset(name))
    pub = np.load(PUBLISHED / file)
    rs = {el: np.corrcoef(res.maps[el].ravel(), pub[el].ravel())[0, 1] for el in maps}
    print(name, {k: round(v, 4) for k, v in rs.items()})
    assert min(rs.values()) >= min_r, rs
    r_model = np.corrcoef(res.haadf_model.ravel(), pub["haadf_model"].ravel())[0, 1]
    assert r_model >= 0.95


def test_defaults_are_the_tutorial_meaning():
    """FusionParams() is the DyScO3 tutorial with the published cold TV start; maps are
    scaled by a gain only (the same as the preset's min-max for maps whose minimum is 0)."""
    assert FusionParams().replace(map_scaling="minmax") == FusionParams.preset("dysco3")
    assert FusionParams().warm_start_tv is False and FusionParams().map_scaling == "max"
    haadf, maps = _tutorial("dysco3")
    a, b = fuse(haadf, maps, n_iter=5), fuse(haadf, maps, FusionParams.preset("dysco3", n_iter=5))
    for el in maps:
        np.testing.assert_array_equal(a.maps[el], b.maps[el])


def test_map_scaling_max_keeps_counts_a_gain_only():
    """'max' divides by the maximum; 'minmax' subtracts the minimum too."""
    rng = np.random.default_rng(0)
    haadf = rng.random((32, 32))
    counts = {"Fe": rng.poisson(20.0, (32, 32)).astype(float) + 5}  # minimum > 0
    _, b, _, _, rng_max = prepare_inputs(haadf, counts, "max")
    np.testing.assert_allclose(b[0], counts["Fe"] / counts["Fe"].max(), rtol=1e-6)
    assert rng_max["Fe"] == (0.0, counts["Fe"].max())
    _, b, _, _, rng_mm = prepare_inputs(haadf, counts, "minmax")
    assert b[0].min() == 0 and rng_mm["Fe"][0] == counts["Fe"].min()
    signed = {"Fe": counts["Fe"] - 30}  # background-subtracted: negative values shift up
    _, b, _, _, rng_s = prepare_inputs(haadf, signed, "max")
    assert b[0].min() == 0 and rng_s["Fe"][0] == signed["Fe"].min()
    with pytest.raises(ValueError, match="map_scaling"):
        FusionParams(map_scaling="log")


def _column_contrast(m: np.ndarray) -> float:
    """Std of a map after removing its smooth background (atomic-column contrast)."""
    from scipy.ndimage import gaussian_filter

    m = m.astype(np.float64)
    return float(np.std(m - gaussian_filter(m, 8)))


def test_defaults_keep_the_sc_columns_of_dysco3():
    """Run with nothing changed: fused Sc shows its atomic columns and Psi1 falls."""
    haadf, maps = _tutorial("dysco3")
    res = fuse(haadf, maps)
    sc = res.maps["Sc"]
    assert sc.max() - sc.min() > 0.3, (sc.min(), sc.max())
    # column contrast at least half that of the (noisy) input Sc map, not washed out
    assert _column_contrast(sc) > 0.5 * _column_contrast(maps["Sc"]) > 0.02
    assert res.costs["haadf"][-1] < res.costs["haadf"][0]


def test_tutorial_values_typed_by_hand_reproduce_published():
    """The tutorial's values, typed in without a preset, give the published maps (r >= 0.95)."""
    haadf, maps = _tutorial("dysco3")  # the published outputs ship in tests/data
    res = fuse(haadf, maps, lambda_chem=0.08, lambda_tv=0.15, eps=0.24, n_iter_tv=3,
               weighting="z", gamma=1.6)
    pub = np.load(PUBLISHED / "DyScO3_tutorial_params.npz")
    rs = {el: np.corrcoef(res.maps[el].ravel(), pub[el].ravel())[0, 1] for el in maps}
    assert min(rs.values()) >= 0.95, rs


def test_fused_haadf_model_fits_the_haadf(small):
    _, haadf, maps = small
    res = fuse(haadf, maps, n_iter=40)
    p, c = res.params, res.costs
    total = c["haadf"] / 3 + p.lambda_chem * c["chem"] + p.lambda_tv * c["tv"]
    assert total[-1] < total[0]  # the objective went down
    r = np.corrcoef(res.haadf_model.ravel(), haadf.ravel())[0, 1]
    assert r > 0.95


# --- result and generator semantics --------------------------------------------------

def test_result_fields(small):
    _, haadf, maps = small
    p = FusionParams(n_iter=7)
    res = fuse(haadf, maps, p)
    assert list(res.maps) == ["Dy", "Sc", "O"]  # order kept
    assert all(m.dtype == np.float32 and m.shape == haadf.shape for m in res.maps.values())
    assert res.haadf_model.shape == haadf.shape and res.haadf_model.dtype == np.float32
    assert set(res.costs) == {"haadf", "chem", "tv"}
    assert all(len(c) == 7 and np.all(np.isfinite(c)) for c in res.costs.values())
    assert res.elements == {"Dy": 66, "Sc": 21, "O": 8}
    assert res.params == p and res.iterations == 7 and res.elapsed > 0
    assert all(m.min() >= 0 for m in res.maps.values())
    w = res.weights
    assert w["Dy"] == pytest.approx(66 / np.mean([66, 21, 8]))


def test_costs_recorded_each_iteration_match_the_state(small):
    _, haadf, maps = small
    states = list(iterate(haadf, maps, n_iter=5, every=1))
    assert [s.iteration for s in states] == [1, 2, 3, 4, 5]
    for s in states:
        assert len(s.costs["tv"]) == s.iteration
        ref = fuse(haadf, maps, n_iter=s.iteration)
        np.testing.assert_allclose(s.costs["tv"], ref.costs["tv"], rtol=1e-6)
        np.testing.assert_allclose(s.maps["Dy"], ref.maps["Dy"], rtol=1e-6)


def test_iterate_yields_owned_copies_and_every(small):
    _, haadf, maps = small
    states = list(iterate(haadf, maps, n_iter=10, every=3))
    assert [s.iteration for s in states] == [3, 6, 9, 10]
    assert states[-1].done
    a, b = states[0].maps["Sc"], states[1].maps["Sc"]
    assert not np.shares_memory(a, b)
    assert not np.array_equal(a, b)  # the first state was not overwritten later


def test_min_interval_withholds_maps_but_not_the_last(small):
    _, haadf, maps = small
    states = list(iterate(haadf, maps, n_iter=20, every=1, min_interval=3600))
    with_maps = [s.iteration for s in states if s.maps is not None]
    assert with_maps == [1, 20]
    assert all(len(s.costs["haadf"]) == s.iteration for s in states)


def test_closing_the_generator_stops_the_work(small):
    _, haadf, maps = small
    gen = iterate(haadf, maps, n_iter=1000)
    first = next(gen)
    gen.close()
    assert first.iteration == 1
    with pytest.raises(StopIteration):
        next(gen)


def test_inputs_are_not_modified_and_any_real_dtype(small):
    _, haadf, maps = small
    h16 = (haadf / haadf.max() * 60000).astype(np.uint16)
    m8 = {k: v.astype(np.uint8) for k, v in maps.items()}
    copies = {k: v.copy() for k, v in m8.items()}
    h_copy = h16.copy()
    res = fuse(h16, m8, n_iter=3, background_threshold=0.3)
    assert np.array_equal(h16, h_copy)
    assert all(np.array_equal(m8[k], copies[k]) for k in m8)
    assert res.maps["Dy"].dtype == np.float32
    res_f = fuse(haadf.astype(np.float32), {k: v.astype(np.float64) for k, v in maps.items()}, n_iter=3)
    assert res_f.maps["Sc"].shape == haadf.shape


def test_overrides_and_presets():
    p = FusionParams.preset("co3o4_mn3o4", n_iter=5)
    assert (p.lambda_chem, p.lambda_tv, p.eps, p.n_iter_tv, p.background_threshold) == (
        0.006, 0.022, 0.01, 6, 0.2)
    assert p.n_iter == 5
    assert FusionParams.preset("DyScO3") == FusionParams.preset("dysco3")
    assert FusionParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown preset"):
        FusionParams.preset("nope")
    with pytest.raises(ValueError, match="unknown fusion parameter"):
        FusionParams().replace(lambda_foo=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_iter = 3


@pytest.mark.parametrize("solver", ["fgp", "gp"])
@pytest.mark.parametrize("weighting", ["none", "z", "z_gamma", "z_sum", "z_gamma_sum"])
def test_all_options_run(small, solver, weighting):
    _, haadf, maps = small
    res = fuse(haadf, maps, n_iter=3, tv_solver=solver, weighting=weighting, lambda_haadf=0.5)
    assert all(np.isfinite(m).all() for m in res.maps.values())


def test_warm_start_option_runs(small):
    _, haadf, maps = small
    cold = fuse(haadf, maps, n_iter=10, warm_start_tv=False)
    warm = fuse(haadf, maps, n_iter=10, warm_start_tv=True)
    # warm start keeps the dual variables, so its TV steps are stronger
    assert warm.costs["tv"][-1] < cold.costs["tv"][-1]


@pytest.mark.parametrize("warm", [True, False])
@pytest.mark.parametrize("solver", ["fgp", "gp"])
def test_one_pass_and_two_pass_iterations_agree(small, warm, solver):
    """The solver's one-pass kernel and the two-pass kernels give the same iterates."""
    _, haadf, maps = small
    p = FusionParams(n_iter_tv=5, warm_start_tv=warm, tv_solver=solver)
    bh, b, _, z, _ = prepare_inputs(haadf, maps)
    w = channel_weights(z, p.weighting, p.gamma).astype(np.float32)
    one, two = Stepper(bh, b, w, 1 / 3, p), Stepper(bh, b, w, 1 / 3, p, fused=False)
    assert one.fused and not two.fused
    for _ in range(15):
        np.testing.assert_allclose(one.step(), two.step(), rtol=1e-4)
        np.testing.assert_allclose(one.x, two.x, atol=2e-5)
    np.testing.assert_allclose(one.costs(), two.costs(), rtol=1e-5)


def test_many_tv_inner_iterations_use_the_two_pass_kernels(small):
    _, haadf, maps = small
    n_in = MAX_FUSED_INNER + 1
    bh, b, _, z, _ = prepare_inputs(haadf, maps)
    assert not Stepper(bh, b, np.ones(3, np.float32), 1 / 3, FusionParams(n_iter_tv=n_in)).fused
    res = fuse(haadf, maps, n_iter=5, n_iter_tv=n_in)
    ref = fuse(haadf, maps, n_iter=5, n_iter_tv=MAX_FUSED_INNER)
    for el in maps:  # 20 or 21 inner iterations: nearly the same TV step
        np.testing.assert_allclose(res.maps[el], ref.maps[el], atol=0.02)


# --- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(lambda_chem=-1), "lambda_chem must be >= 0"),
        (dict(lambda_tv=float("nan")), "lambda_tv must be a finite number"),
        (dict(n_iter=0), "n_iter must be an integer >= 1"),
        (dict(n_iter_tv=2.5), "n_iter_tv must be an integer"),
        (dict(gamma=5), "gamma must lie in"),
        (dict(eps=0), "eps must be > 0"),
        (dict(weighting="zz"), "weighting must be one of"),
        (dict(tv_solver="cg"), "tv_solver must be one of"),
        (dict(lambda_haadf=-0.1), "lambda_haadf must be > 0"),
        (dict(background_threshold=1.5), "background_threshold"),
        (dict(tv_step=0), "tv_step must lie in"),
        (dict(tv_step=1.5), "tv_step must lie in"),
        (dict(lambda_tv_elements={"O": -0.1}), r"lambda_tv_elements\['O'\] must be a number >= 0"),
        (dict(lambda_tv_elements=[0.1, 0.2]), "lambda_tv_elements must map element symbols"),
        (dict(poisson_weights="poisson"), "poisson_weights must be one of"),
    ],
)
def test_invalid_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        FusionParams(**kw)


def _inputs(shape=(16, 16)):
    rng = np.random.default_rng(0)
    return rng.random(shape), {"Sc": rng.random(shape), "O": rng.random(shape)}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda h, m: (h, {**m, "O": np.eye(16, 17)}), r"shape mismatch: map 'O' has shape \(16, 17\)"),
        (lambda h, m: (h[:10], m), "shape mismatch"),
        (lambda h, m: (h, {**m, "Sc": np.where(m["Sc"] > 0.5, np.nan, 1.0)}), "map 'Sc': contains .* NaN or infinite"),
        (lambda h, m: (np.full_like(h, np.inf), m), "HAADF: contains 256 NaN or infinite"),
        (lambda h, m: (h, {**m, "O": np.zeros_like(h)}), "map 'O': the image is all zero"),
        (lambda h, m: (np.full_like(h, 3.0), m), r"HAADF: the image is constant \(3\)"),
        (lambda h, m: (h.ravel(), m), "HAADF: expected a 2-D image"),
        (lambda h, m: (h, {"Sc": m["Sc"].ravel()}), "map 'Sc': expected a 2-D image"),
        (lambda h, m: (h, {}), "maps is empty"),
        (lambda h, m: (h, {"Xx": m["Sc"]}), "unknown element 'Xx'"),
        (lambda h, m: (h, {"Sc": m["Sc"], "sc": m["O"]}), "element Sc is given twice"),
        (lambda h, m: (h[:4, :4], {"Sc": m["Sc"][:4, :4]}), "too small"),
        (lambda h, m: (h, {"Sc": np.array([["a"] * 16] * 16)}), "expected a numeric array"),
        (lambda h, m: (h, [m["Sc"]]), "maps must be a mapping"),
    ],
)
def test_bad_input_gives_clear_value_error(mutate, match):
    haadf, maps = mutate(*_inputs())
    with pytest.raises(ValueError, match=match):
        fuse(haadf, maps, n_iter=2)
    with pytest.raises(ValueError, match=match):
        iterate(haadf, maps)  # validated eagerly, before the first next()


def test_element_table():
    assert fusedem.atomic_number("U") == 92 and fusedem.atomic_number("h") == 1
    assert fusedem.normalize_symbol("Co-EELS") == "Co"
    assert len(fusedem.ATOMIC_NUMBERS) == 92
    with pytest.raises(ValueError, match="unknown element 'Np'"):
        fusedem.atomic_number("Np")


def test_core_import_does_not_pull_napari_or_qt():
    import subprocess

    code = ("import sys, fusedem, fusedem.io, fusedem.spectra; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt5', 'magicgui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_background_threshold_zeroes_the_initial_iterate_only(small):
    """As in the published tutorial: x0 = b with values below the threshold set to 0,
    while the Poisson term keeps the measured b (DESIGN.md 1)."""
    from fusedem import objective

    _, haadf, maps = small
    p = FusionParams(n_iter=1, lambda_tv=0.0, background_threshold=0.3, warm_start_tv=False)
    res = fuse(haadf, maps, p)
    bh, b, _, z, _ = prepare_inputs(haadf, maps)
    b = b.astype(np.float64)
    x0 = np.where(b < 0.3, 0.0, b)
    w = channel_weights(z, "z", 1.6)
    step = objective.grad_psi1(x0, bh, w, 1.6) / 3 + p.lambda_chem * objective.grad_psi2(x0, b, p.eps)
    ref = np.maximum(x0 - step, 0)
    for i, el in enumerate(res.maps):
        np.testing.assert_allclose(res.maps[el], ref[i], rtol=1e-4, atol=1e-5)


def test_poisson_prox_step_option(small):
    truth, haadf, maps = small
    with pytest.raises(ValueError, match="poisson_step"):
        FusionParams(poisson_step="implicit")
    kw = dict(lambda_chem=0.3, eps=0.01, lambda_tv=0.05, n_iter=30, warm_start_tv=False)
    grad, prox = fuse(haadf, maps, **kw), fuse(haadf, maps, poisson_step="prox", **kw)
    assert prox.params.poisson_step == "prox"
    assert not np.allclose(grad.maps["Sc"], prox.maps["Sc"])
    # both kernels (one-pass and two-pass) give the same prox iteration
    bh, b, _, z, _ = prepare_inputs(haadf, maps)
    w = channel_weights(z, "z", 1.6).astype(np.float32)
    p = FusionParams(poisson_step="prox", **kw)
    one, two = Stepper(bh, b, w, 1 / 3, p), Stepper(bh, b, w, 1 / 3, p, fused=False)
    for _ in range(3):
        one.step()
        two.step()
    np.testing.assert_allclose(one.x, two.x, atol=1e-5)
    # at a large lambda_chem and small eps the explicit step oscillates; the prox step
    # keeps the Poisson cost lower at the end (no overshoot past the data)
    assert prox.costs["chem"][-1] < grad.costs["chem"][-1]


def test_tv_step_and_lambda_tv_per_element(small):
    """tv_step < 1 and a per-element lambda_tv change the maps; both kernels agree; an
    element-wise value equal to lambda_tv changes nothing; an unknown element is named."""
    truth, haadf, maps = small
    kw = dict(lambda_chem=0.05, lambda_tv=0.05, n_iter=20, n_iter_tv=2)
    ref = fuse(haadf, maps, **kw)
    same = fuse(haadf, maps, lambda_tv_elements={"O": 0.05}, **kw)
    for el in maps:
        np.testing.assert_array_equal(ref.maps[el], same.maps[el])
    short = fuse(haadf, maps, tv_step=0.5, **kw)
    assert short.params.tv_step == 0.5
    # a shorter dual step smooths less: more total variation left in the maps
    assert short.costs["tv"][-1] > ref.costs["tv"][-1]
    # a small lambda_tv for O alone: O keeps several times its variation, the others
    # change by a few per cent (through the HAADF term only)
    per = fuse(haadf, maps, lambda_tv_elements={"O": 0.005}, **kw)
    assert per.params.lambda_tv_elements == {"O": 0.005}
    tv = {el: float(np.abs(np.diff(per.maps[el], axis=1)).sum()) for el in maps}
    tv_ref = {el: float(np.abs(np.diff(ref.maps[el], axis=1)).sum()) for el in maps}
    assert tv["O"] > 3 * tv_ref["O"]
    for el in ("Dy", "Sc"):
        assert abs(tv[el] / tv_ref[el] - 1) < 0.05
    with pytest.raises(ValueError, match=r"names element\(s\) \['Au'\] that are not among"):
        fuse(haadf, maps, lambda_tv_elements={"Au": 0.1}, **kw)
    # one-pass and two-pass kernels agree with both options
    bh, b, symbols, z, _ = prepare_inputs(haadf, maps)
    w = channel_weights(z, "z", 1.6).astype(np.float32)
    p = FusionParams(tv_step=0.4, lambda_tv_elements={"O": 0.3}, **kw)
    lam = np.array(p.lambda_tv_of(symbols))
    one = Stepper(bh, b, w, 1 / len(symbols), p, lam_tv=lam)
    two = Stepper(bh, b, w, 1 / len(symbols), p, fused=False, lam_tv=lam)
    for _ in range(3):
        one.step()
        two.step()
    np.testing.assert_allclose(one.x, two.x, atol=1e-5)


def test_poisson_weights_counts_weigh_each_element_by_its_gain(small):
    """poisson_weights='counts': element i's Poisson weight is lambda_chem · g_i / mean(g),
    g_i its map's gain. The solve equals the NumPy statement with those weights; maps with
    equal gains give the 'equal' result; the weights follow the counts, not the units."""
    from fusedem import objective

    truth, haadf, maps = small
    kw = dict(lambda_chem=0.05, lambda_tv=0.05, n_iter=8, n_iter_tv=2, eps=0.1)
    counts = {el: m * s for (el, m), s in zip(maps.items(), (40.0, 10.0, 4.0))}
    res = fuse(haadf, counts, poisson_weights="counts", **kw)
    bh, b, symbols, z, ranges = prepare_inputs(haadf, counts)
    g = np.array([ranges[s][1] - ranges[s][0] for s in symbols])
    lam = 0.05 * g / g.mean()
    assert lam.max() / lam.min() > 5  # the test inputs do weigh the elements differently
    assert FusionParams(poisson_weights="counts", lambda_chem=0.05).lambda_chem_of(g) == \
        pytest.approx(lam)
    w = channel_weights(z, "z", 1.6)
    x = b.astype(np.float64)
    for _ in range(8):
        x, _, _ = objective.outer_iteration(x, b, bh, w, 1.6, 1 / 3, lam, 0.1, 0.05, 2)
    for i, el in enumerate(symbols):
        np.testing.assert_allclose(res.maps[el], x[i], atol=2e-5)
    # unlike 'equal', which ignores the gains
    eq = fuse(haadf, counts, **kw)
    assert max(np.abs(eq.maps[el] - res.maps[el]).max() for el in symbols) > 1e-3
    # equal gains: the same as 'equal'
    same = {el: m / m.max() * 7.0 for el, m in maps.items()}
    a = fuse(haadf, same, poisson_weights="counts", **kw)
    c = fuse(haadf, same, **kw)
    for el in symbols:
        np.testing.assert_allclose(a.maps[el], c.maps[el], atol=1e-6)
    assert res.params.poisson_weights == "counts"


def test_tv_weight_exponent_scales_lambda_tv_by_the_haadf_weights(small):
    """tv_weight_exponent a: element i's λ_TV is λ_TV · (mean w / w_i)^a (w the HAADF
    channel weights), i.e. the same solve as those values given per element; an element
    given in lambda_tv_elements keeps its own; no weights (weighting 'none'), no change."""
    truth, haadf, maps = small
    kw = dict(lambda_chem=0.05, lambda_tv=0.04, n_iter=6, n_iter_tv=2, eps=0.1)
    symbols = list(fusedem.solver.prepare_inputs(haadf, maps)[2])
    z = np.array([fusedem.atomic_number(s) for s in symbols], float)
    w = channel_weights(z, "z", 1.6)
    want = {s: 0.04 * (w.mean() / wi) ** 1.5 for s, wi in zip(symbols, w)}
    p = FusionParams(tv_weight_exponent=1.5, **kw)
    assert p.lambda_tv_of(symbols) == pytest.approx([want[s] for s in symbols])
    assert max(want.values()) / min(want.values()) > 2  # the elements do differ
    a = fuse(haadf, maps, p)
    b = fuse(haadf, maps, lambda_tv_elements=want, **kw)
    for s in symbols:
        np.testing.assert_array_equal(a.maps[s], b.maps[s])
    own = FusionParams(tv_weight_exponent=1.5, lambda_tv_elements={symbols[0]: 0.3}, **kw)
    assert own.lambda_tv_of(symbols) == pytest.approx([0.3] + [want[s] for s in symbols[1:]])
    flat = FusionParams(tv_weight_exponent=2.0, weighting="none", **kw)
    assert flat.lambda_tv_of(symbols) == [0.04] * len(symbols)
    assert FusionParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="tv_weight_exponent must lie in"):
        FusionParams(tv_weight_exponent=-1)
