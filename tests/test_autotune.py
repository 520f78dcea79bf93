"""Automatic parameters: held-out splits, the search, fuse(params="auto"), CLI --auto."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import fusedem
from fusedem import FusionParams, autotune, fuse, validation
from fusedem.tuning import autotune_steps

sys.path.insert(0, str(Path(__file__).parent))
from phantoms import grain_phantom, measure, psnr  # noqa: E402  (small, fast fixtures)


def _mean_psnr(res, truth) -> float:
    return float(np.mean([psnr(res.maps[e], truth[e]) for e in truth]))


@pytest.fixture(scope="module")
def phantom():
    truth, z = grain_phantom((64, 64), seed=2)
    haadf, maps = measure(truth, z, dose=4.0, seed=5)
    return truth, haadf, maps


# --- splits -----------------------------------------------------------------------------

def test_thinning_splits_are_a_partition_of_the_counts(phantom):
    _, _, maps = phantom
    (s,) = validation.thinning_splits(maps, p=0.7, n_splits=1, seed=3)
    for k, b in maps.items():
        b1 = s.fit[k] * 0.7
        np.testing.assert_allclose(b1 + s.held[k], b)
        assert np.all(s.held[k] >= 0) and np.all(b1 >= 0)
        np.testing.assert_allclose(b1, np.round(b1), atol=1e-9)  # whole counts
    assert s.ratio == pytest.approx(0.3)
    # the thinned fraction is Binomial(b, p): about p of all counts
    total = sum(m.sum() for m in maps.values())
    kept = sum(s.fit[k].sum() * 0.7 for k in maps)
    assert abs(kept / total - 0.7) < 0.03


def test_thinning_refuses_maps_that_are_not_counts(phantom):
    _, _, maps = phantom
    normalised = {k: v / v.max() for k, v in maps.items()}
    assert validation.are_counts(maps) and not validation.are_counts(normalised)
    with pytest.raises(ValueError, match="raw counts"):
        validation.thinning_splits(normalised)


def test_masking_split_hides_the_masked_pixels(phantom):
    _, _, maps = phantom
    s = validation.masking_split(maps)
    m = s.mask
    assert 0.05 < m.mean() < 0.08  # one pixel in 16
    for k, b in maps.items():
        assert np.array_equal(s.fit[k][~m], b[~m])
        # a masked value is the mean of its neighbours, none of which is masked
        y, x = np.argwhere(m)[len(np.argwhere(m)) // 2]
        nb = [b[y - 1, x], b[y + 1, x], b[y, x - 1], b[y, x + 1]]
        assert s.fit[k][y, x] == pytest.approx(np.mean(nb))
        assert not m[y - 1, x] and not m[y, x + 1]


def test_tile_residuals_split_the_score(phantom):
    """The tile residuals of a fit add up to its held-out score, for thinning and masking,
    and the tiles cover the image (each tile holds some of the score)."""
    from fusedem.solver import prepare_inputs

    truth, haadf, maps = phantom
    for split in (validation.thinning_splits(maps, n_splits=1)[0], validation.masking_split(maps)):
        ranges = prepare_inputs(haadf, split.fit)[4]
        fitted = {k: v / v.max() for k, v in split.fit.items()}
        tiles = validation.tile_residuals(split, fitted, ranges)
        assert tiles.shape == (validation.N_TILES ** 2,)
        assert tiles.sum() == pytest.approx(validation.score(split, fitted, ranges), rel=1e-9)
        assert (tiles > 0).all()


@pytest.mark.parametrize("seed", [1, 2])
def test_autotune_says_when_the_data_cannot_choose(seed):
    """At 0.05 counts/px the held-out score cannot tell most candidates apart: the result
    says so (note, warning, n_indistinct); at 8 counts/px it can, and says nothing."""
    from fusedem import phantoms as P

    ph = P.make("lattice", (64, 64), seed)
    low = P.measure(ph, 0.05, seed=seed + 1000)
    with pytest.warns(UserWarning, match="cannot tell .* candidates apart"):
        res = autotune(low.haadf, low.maps)
    assert res.n_indistinct >= len(res.candidates) / 2
    assert any("too noisy for a reliable choice" in n for n in res.notes)
    assert "Note: the held-out score cannot tell" in res.summary()
    assert res.to_dict()["n_indistinct"] == res.n_indistinct
    ok = P.measure(ph, 8.0, seed=seed + 1000)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        res = autotune(ok.haadf, ok.maps)
    assert res.n_indistinct <= 2
    assert not any("too noisy" in n for n in res.notes)


def test_frame_split_even_and_odd(phantom):
    _, _, maps = phantom
    rng = np.random.default_rng(0)
    frames = {k: rng.poisson(np.broadcast_to(v / 4, (4,) + v.shape)).astype(float)
              for k, v in maps.items()}
    (s,) = validation.frame_splits(frames)
    k = next(iter(maps))
    np.testing.assert_allclose(s.fit[k], frames[k][0::2].sum(0) * 2)
    np.testing.assert_allclose(s.held[k], frames[k][1::2].sum(0))
    assert s.ratio == 0.5


# --- the search ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lattice", "particles"])
def test_autotune_lands_near_the_best_of_a_grid(kind):
    """Within 1 dB (mean PSNR over elements) of the best of a 7 x 7 grid x 3 iteration
    counts, on the project's phantoms (64², 8 counts/px at the brightest element)."""
    from fusedem import phantoms as P

    ph = P.make(kind, (64, 64), seed=3)
    acq = P.measure(ph, 8.0, seed=1003)
    haadf, maps, truth = acq.haadf, acq.maps, ph.truth
    res = autotune(haadf, maps)
    assert res.method == "thinning"
    auto = _mean_psnr(fuse(haadf, maps, res.params), truth)
    base = FusionParams()
    best = max(
        _mean_psnr(fuse(haadf, maps, base.replace(lambda_chem=float(lc), lambda_tv=float(lt),
                                                  n_iter=n)), truth)
        for lc in np.geomspace(0.0005, 0.5, 7) for lt in np.geomspace(0.001, 1.0, 7)
        for n in (10, 20, 30)
    )
    default = _mean_psnr(fuse(haadf, maps), truth)
    print(f"auto {auto:.2f} dB, grid best {best:.2f} dB, default {default:.2f} dB; {res.summary()}")
    assert auto >= best - 1.0
    assert auto > default + 2.0  # the point of choosing from the data


def test_autotune_result_reports_its_search(phantom):
    _, haadf, maps = phantom
    res = autotune(haadf, maps, method="masking", budget=12)
    assert res.method == "masking"
    assert res.n_solves <= 12 and res.elapsed > 0
    assert len(res.candidates) == res.n_solves  # masking: one solve per candidate
    assert res.score == min(c.score for c in res.candidates)
    assert res.params.lambda_chem in {c.lambda_chem for c in res.candidates}
    d = res.to_dict()
    assert d["method"] == "masking" and d["neighbourhood"][0]["score"] == res.score
    assert d["base"] == FusionParams().to_dict()
    assert all(np.isfinite(c.score) for c in res.candidates)


def test_autotune_tries_tv_strengths_and_a_lambda_tv_per_element():
    """The search tries every TV strength at the best λ's and, last, a λ_TV per element
    made from probes that scale all elements alike; the choice is a scored candidate
    and fuses as chosen."""
    from fusedem import phantoms as P
    from fusedem.tuning import TV_STRENGTHS

    ph = P.make("particles", (64, 64), seed=3)
    acq = P.measure(ph, 8.0, seed=1003)
    res = autotune(acq.haadf, acq.maps)
    tried = {(c.n_iter_tv, c.tv_step) for c in res.candidates}
    assert set(TV_STRENGTHS) <= tried
    best = min(res.candidates, key=lambda c: c.score)
    assert res.params.lambda_tv_elements == (dict(best.lambda_tv_elements) or None)
    assert (res.params.n_iter_tv, res.params.tv_step) == (best.n_iter_tv, best.tv_step)
    per = [c for c in res.candidates if c.lambda_tv_elements]
    assert len(per) <= 1  # one combination, scored on every split like any candidate
    for c in per:
        assert set(dict(c.lambda_tv_elements)) <= set(acq.maps)
        assert all(v != c.lambda_tv for v in dict(c.lambda_tv_elements).values())
        assert c.to_dict()["lambda_tv_elements"] == dict(c.lambda_tv_elements)
    fused = fuse(acq.haadf, acq.maps, res.params)
    assert fused.params == res.params


def test_autotune_is_cancelled_by_closing_the_generator(phantom):
    _, haadf, maps = phantom
    gen = autotune_steps(haadf, maps)
    first = next(gen)
    second = next(gen)
    assert second.n_solves > first.n_solves and second.result is None
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_fuse_auto_carries_the_choice_into_results_and_files(phantom, tmp_path):
    _, haadf, maps = phantom
    res = fuse(haadf, maps, "auto", eps=0.1)
    assert res.autotune is not None and res.params == res.autotune.params
    assert res.params.eps == 0.1 and res.autotune.base.eps == 0.1
    from fusedem.io import load_result, save_result

    save_result(tmp_path / "r.h5", res)
    meta = load_result(tmp_path / "r.h5").metadata
    assert meta["autotune"]["method"] == "thinning"
    assert meta["autotune"]["params"]["lambda_chem"] == res.params.lambda_chem
    assert len(meta["autotune"]["neighbourhood"]) >= 3
    with pytest.raises(ValueError, match="'auto'"):
        fuse(haadf, maps, "automatic")


# --- bad input ----------------------------------------------------------------------------

def test_autotune_bad_inputs_are_named(phantom):
    _, haadf, maps = phantom
    zero = dict(maps, Sc=np.zeros_like(maps["Sc"]))
    with pytest.raises(ValueError, match="Sc.*all zero"):
        autotune(haadf, zero)
    with pytest.raises(ValueError, match="HAADF.*constant"):
        autotune(np.full_like(haadf, 65535.0), maps)
    small = {k: v[:12, :12] for k, v in maps.items()}
    with pytest.raises(ValueError, match="at least 16 x 16 pixels"):
        autotune(haadf[:12, :12], small)
    with pytest.raises(ValueError, match="raw counts"):
        autotune(haadf, {k: v / 3.0 for k, v in maps.items()}, method="thinning")
    with pytest.raises(ValueError, match="frames"):
        autotune(haadf, maps, method="frames")


# --- command line -------------------------------------------------------------------------

def test_cli_auto_writes_the_choice(phantom, tmp_path):
    _, haadf, maps = phantom
    np.savez(tmp_path / "ph.npz", HAADF=haadf, **maps)
    out = tmp_path / "out"
    from test_cli import fusedem_cli

    args = ["fuse", tmp_path / "ph.npz", "-o", out, "--auto"]
    run = fusedem_cli(*args, "-q")
    assert run.returncode == 0, run.stderr
    toml = (out / "fusedem_params.toml").read_text()
    assert "auto = true" in toml and "[chosen." in toml and 'method = "thinning"' in toml
    from fusedem.io import load_result

    meta = load_result(out / "ph_fused.h5").metadata
    assert meta["autotune"]["method"] == "thinning"
    info = fusedem_cli("info", out / "ph_fused.h5")
    assert "parameters chosen automatically (thinning)" in info.stdout, info.stdout + info.stderr
    # the same command again resumes (same input, same fixed parameters)
    again = fusedem_cli(*args)
    assert again.returncode == 0 and "1 skipped" in again.stdout, again.stdout + again.stderr


def test_cli_auto_reports_an_unreliable_choice(tmp_path):
    """--auto on maps too noisy to choose from: the note is printed (without -v) and
    recorded in the [chosen] table; on good data there is no note."""
    from fusedem import phantoms as P
    from test_cli import fusedem_cli

    ph = P.make("lattice", (64, 64), 1)
    for dose, name in ((0.05, "low"), (8.0, "good")):
        m = P.measure(ph, dose, seed=1001)
        np.savez(tmp_path / f"{name}.npz", HAADF=m.haadf, **m.maps)
        run = fusedem_cli("fuse", tmp_path / f"{name}.npz", "-o", tmp_path / name, "--auto")
        assert run.returncode == 0, run.stderr
        toml = (tmp_path / name / "fusedem_params.toml").read_text()
        if name == "low":
            assert "autotune: the held-out score cannot tell" in run.stderr, run.stderr
            assert "too noisy for a reliable choice" in toml and "n_indistinct = " in toml
        else:
            assert "cannot tell" not in run.stderr and "notes" not in toml, run.stderr


# --- spectrum images ----------------------------------------------------------------------

def test_spectrum_image_splits_thin_the_counts_before_extraction():
    from fusedem.spectra import EnergyAxis, extract_maps, spectrum_splits

    truth, z = grain_phantom((48, 48), seed=1)
    ea = EnergyAxis(offset=0.0, scale=0.02, units="keV")
    e = np.arange(600) * 0.02
    peaks = {"Dy": 6.5, "Sc": 4.09, "O": 0.525}  # near each element's main line
    rng = np.random.default_rng(0)
    mean = 0.3 * np.ones((48, 48, 600))  # flat background, counts per channel
    for el, t in truth.items():
        line = {k: v for k, v in fusedem.spectra.line_energies(el).items()}
        centre = min(line.values(), key=lambda v: abs(v - peaks[el]))
        mean += 3.0 * t[..., None] * np.exp(-0.5 * ((e - centre) / 0.06) ** 2)
    cube = rng.poisson(mean).astype(np.float64)
    full = extract_maps(cube, ea, list(truth))
    splits = spectrum_splits(cube, ea, list(truth), p=0.8, n_splits=2, seed=1)
    assert len(splits) == 2 and splits[0].ratio == pytest.approx(0.2)
    for el in truth:  # held-out maps are unclipped and carry (1 - p) of the signal
        held = splits[0].held[el]
        assert held.min() < 0 or el == "O"
        assert held.sum() == pytest.approx(0.2 * extract_maps(cube, ea, list(truth),
                                           clip_negative=False).maps[el].sum(), rel=0.1)
        assert splits[0].fit[el].min() >= 0  # fitted maps are made as the fused ones
    res = autotune(np.sum([t**1.6 for t in truth.values()], axis=0), full.maps,
                   splits=splits, budget=12)
    assert res.method == "given splits" and np.isfinite(res.score)
    with pytest.raises(ValueError, match="raw counts"):
        spectrum_splits(cube + 0.5, ea, list(truth))


def test_batch_auto_chooses_per_input(phantom, tmp_path):
    from test_cli import fusedem_cli

    _, haadf, maps = phantom
    np.savez(tmp_path / "a.npz", HAADF=haadf, **maps)
    np.savez(tmp_path / "b.npz", HAADF=haadf, **{k: v * 4 for k, v in maps.items()})
    out = tmp_path / "out"
    run = fusedem_cli("batch", tmp_path / "a.npz", tmp_path / "b.npz", "-o", out, "--auto",
                      "--workers", 1, "-q")
    assert run.returncode == 0, run.stderr
    toml = (out / "fusedem_params.toml").read_text()
    assert toml.count("[chosen.") == 2 and "auto = true" in toml


def test_cli_auto_thins_the_spectrum_image_of_extracted_maps(tmp_path):
    """A Bruker file with only a spectrum image: --elements extracts, --auto thins the cube."""
    from shared_data import VENDOR
    from test_cli import fusedem_cli

    bcf = VENDOR / "bruker_TEM_HAADF_EDS_64x64.bcf"
    if not bcf.exists():
        pytest.skip(f"shared vendor file not present: {bcf}")
    out = tmp_path / "out"
    run = fusedem_cli("fuse", bcf, "--elements", "Cu,O,Pd,Ti", "-o", out, "--auto", "-q")
    assert run.returncode == 0, run.stderr
    from fusedem.io import load_result

    meta = load_result(out / "bruker_TEM_HAADF_EDS_64x64_fused.h5").metadata
    assert meta["autotune"]["method"] == "thinning (spectrum image)"
    assert 'method = "thinning (spectrum image)"' in (out / "fusedem_params.toml").read_text()


def test_the_search_tries_lambda_tv_weighted_by_the_haadf_and_keeps_it_when_it_scores_lower():
    """The first stage scores the ridge line at the base's tv_weight_exponent and its three
    lowest λ_chem at TV_WEIGHT_EXPONENT on the first split; the FINALISTS best go on. On
    nanoparticles at 2 counts/px (where a light element wants far more TV than Au) the
    weighted point wins on the held-out score and is the better map against the truth."""
    import warnings

    from fusedem import phantoms as P
    from fusedem.tuning import TV_WEIGHT_EXPONENT

    ph = P.make("particles", (64, 64), 4)
    m = P.measure(ph, 2.0, seed=1004)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = autotune(m.haadf, m.maps)
    exps = {c.tv_weight_exponent for c in res.candidates}
    assert res.params.tv_weight_exponent == TV_WEIGHT_EXPONENT and exps == {0.0, TV_WEIGHT_EXPONENT}
    assert res.score == min(c.score for c in res.candidates)
    assert res.to_dict()["params"]["tv_weight_exponent"] == TV_WEIGHT_EXPONENT
    assert "HAADF weight" in res.summary()

    def psnr(p):
        r = fusedem.fuse(m.haadf, m.maps, p)
        return np.mean([P.psnr(r.maps[k], ph.truth[k]) for k in ph.truth])

    assert psnr(res.params) > psnr(res.params.replace(tv_weight_exponent=0.0)) + 1.0
    # a base that already has the exponent searches one line only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = autotune(m.haadf, m.maps, fusedem.FusionParams(tv_weight_exponent=TV_WEIGHT_EXPONENT))
    assert {c.tv_weight_exponent for c in again.candidates} == {TV_WEIGHT_EXPONENT}
