"""fusedem.tomo.align: known shifts and tilt-axis offsets are recovered, chemical tilts land
in the HAADF's frame with a different angle set, bad input is refused early, and the CLI
(--align) and the panel's Align button use it."""
from __future__ import annotations

import numpy as np
import pytest
from tomo_series import tilt_series

from fusedem.elements import atomic_number
from fusedem.tomo import align_tilt_series, phantoms
from fusedem.tomo.align import align_pair, shift_image
from fusedem.tomo.projector import Projector

TH = np.linspace(-70, 70, 43)


def _design(angles):
    t = np.deg2rad(angles)
    return np.stack([np.cos(t), np.sin(t), np.ones_like(t)], axis=1)


def per_tilt_rms(resid, angles, coef=None, y_mean=None):
    """RMS residual displacement (px) less what no alignment can measure: a·cos θ + b·sin θ
    in x and a common y (a translation of the volume); the constant c of the x fit (the axis
    error) is kept in. With ``coef``/``y_mean`` another series' frame is used."""
    A = _design(angles)
    if coef is None:
        coef = np.linalg.lstsq(A, resid[:, 1], rcond=None)[0]
        y_mean = resid[:, 0].mean()
    ex = resid[:, 1] - A[:, :2] @ coef[:2]
    return float(np.sqrt(np.mean(ex ** 2 + (resid[:, 0] - y_mean) ** 2))), coef, y_mean


@pytest.fixture(scope="module")
def clean():
    """core_shell 32³: noise-free HAADF (43 tilts, peak 1) and chemical projections (9 tilts
    at angles between the HAADF's)."""
    truth = phantoms.make("core_shell", 32, seed=0)
    zg = {k: atomic_number(k) ** 1.6 for k in truth}
    h = Projector(TH, 32, 32).project(sum(truth[k] * np.float32(zg[k] / 79 ** 1.6) for k in truth))
    tc = np.linspace(-64, 64, 9)
    Pc = Projector(tc, 32, 32)
    return h / h.max(), {k: Pc.project(v) for k, v in truth.items()}, tc


def moved(stack, shifts):
    return np.stack([np.maximum(shift_image(p, d), 0) for p, d in zip(stack, shifts)])


def noisy_haadf(h, counts=300.0, seed=1):
    r = np.random.default_rng(seed)
    return (r.poisson(h * counts) + 0.01 * counts * r.standard_normal(h.shape)).astype(np.float32)


def test_known_shifts_are_recovered_below_half_a_pixel(clean):
    h0, _, _ = clean
    rng = np.random.default_rng(0)
    d = rng.normal(0, 3, (TH.size, 2))
    d -= d.mean(axis=0)
    h = noisy_haadf(moved(h0, d))
    al = align_tilt_series(h, TH)
    before, _, _ = per_tilt_rms(d, TH)
    after, coef, _ = per_tilt_rms(d + al.shifts, TH)
    assert before > 2.0  # the test series is really misaligned
    assert after < 0.5 and abs(coef[2]) < 0.3
    assert al.shifts.shape == (43, 2) and al.reference == 21 and al.peaks.min() > 0.5
    out = al.apply(h)
    assert out.shape == h.shape and out.dtype == np.float32
    d_json = al.to_dict()
    assert len(d_json["shifts_yx_px"]) == 43 and d_json["reference_tilt"] == 21


@pytest.mark.parametrize("offset", [3.5, -2.0])
def test_the_tilt_axis_offset_is_recovered(clean, offset):
    h0, _, _ = clean
    d = np.zeros((TH.size, 2))
    d[:, 1] = offset  # the axis sits `offset` columns right of the centre in every tilt
    h = noisy_haadf(moved(h0, d))
    al = align_tilt_series(h, TH)
    assert al.axis_offset == pytest.approx(offset, abs=0.3)
    assert np.sqrt(np.mean((d + al.shifts) ** 2)) < 0.3  # the correction undoes it
    assert align_tilt_series(h, TH, fit_axis=False).axis_offset == 0.0


def test_chemical_tilts_join_the_haadf_frame_with_other_angles(clean):
    h0, m0, tc = clean
    assert not np.isin(tc, TH).all()  # the chemical tilts are not all HAADF tilts
    rng = np.random.default_rng(5)
    dh, dc = rng.normal(0, 3, (TH.size, 2)), rng.normal(0, 3, (tc.size, 2))
    dh[:, 1] += 2.5
    dc[:, 1] += 2.5
    h = noisy_haadf(moved(h0, dh))
    maps = {k: np.random.default_rng(2).poisson(4 * moved(v, dc)).astype(np.float32)
            for k, v in m0.items()}
    h_al, m_al, rep = align_pair(h, TH, maps, tc)
    assert h_al.shape == h.shape and set(m_al) == set(maps)
    assert all(m.min() >= 0 for m in m_al.values())
    h_rms, coef, y_mean = per_tilt_rms(dh + rep.haadf.shifts, TH)
    before, _, _ = per_tilt_rms(dc, tc, coef, y_mean)
    c_rms, _, _ = per_tilt_rms(dc + rep.chem_shifts, tc, coef, y_mean)
    assert h_rms < 0.5 and before > 2.0 and c_rms < 0.5
    assert rep.angle_gap.max() <= 2.0 and np.all(rep.peaks > 0.5)
    assert set(rep.to_dict()) >= {"haadf", "chem_shifts_yx_px", "nearest_haadf_tilt", "chem_weights"}
    # one element alone as the chemical image also works
    _, _, rep_au = align_pair(h, TH, maps, tc, element="au")
    assert per_tilt_rms(dc + rep_au.chem_shifts, tc, coef, y_mean)[0] < 1.0


def test_bad_input_is_refused_naming_the_problem():
    haadf, ha, maps, ca = tilt_series(16)
    with pytest.raises(ValueError, match="14 angles given for a stack of 15"):
        align_tilt_series(haadf, ha[:-1])
    with pytest.raises(ValueError, match="at least 2 tilts"):
        align_tilt_series(haadf[:1], ha[:1])
    bad = haadf.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite value\(s\), in projection\(s\) \[3\]"):
        align_tilt_series(bad, ha)
    with pytest.raises(ValueError, match="NaN or infinite angles"):
        align_tilt_series(haadf, np.r_[ha[:-1], np.nan])
    with pytest.raises(ValueError, match="constant"):
        align_tilt_series(np.ones((5, 8, 8)), np.linspace(-40, 40, 5))
    with pytest.raises(ValueError, match="chem_angles: 4 angles given for a stack of 5"):
        align_pair(haadf, ha, maps, ca[:4])
    with pytest.raises(ValueError, match="detector size mismatch"):
        align_pair(haadf, ha, {"Au": maps["Au"][:, :8]}, ca)
    with pytest.raises(ValueError, match="not among the maps"):
        align_pair(haadf, ha, maps, ca, element="Cu")
    with pytest.raises(ValueError, match="refine must be"):
        align_tilt_series(haadf, ha, refine="sharpness")
    with pytest.raises(ValueError, match="at least 4 projections with signal"):
        align_tilt_series(haadf[6:9], ha[6:9])
    assert align_tilt_series(haadf[6:9], ha[6:9], fit_axis=False).shifts.shape == (3, 2)
    al = align_tilt_series(haadf, ha)
    with pytest.raises(ValueError, match="5 projections, but the alignment has 15"):
        al.apply(haadf[:5])


def test_cli_align_runs_end_to_end_and_records_the_report(tmp_path, capsys):
    from fusedem.cli import main
    from fusedem.tomo.io import load_tomo_result

    haadf, ha, maps, ca = tilt_series(16)
    roll = 2  # the axis 2 columns right of the centre, exactly (whole pixels)
    np.savez(tmp_path / "s.npz", HAADF=np.roll(haadf, roll, axis=2), haadf_angles=ha,
             chem_angles=ca, pixel_size=0.5, units="nm",
             **{k: np.roll(v, roll, axis=2) for k, v in maps.items()})
    out = tmp_path / "out"
    assert main(["tomo", str(tmp_path / "s.npz"), "-o", str(out), "--align", "--n-iter", "2"]) == 0
    assert "aligned: tilt axis offset" in capsys.readouterr().out
    res = load_tomo_result(out / "s_tomo.h5")
    rep = res.metadata["alignment"]
    assert rep["haadf"]["axis_offset_px"] == pytest.approx(roll, abs=0.3)
    assert len(rep["haadf"]["shifts_yx_px"]) == 15 and len(rep["chem_shifts_yx_px"]) == 5
    assert res.metadata["settings"]["align"] is True
    assert "align = true" in (out / "fusedem_tomo_params.toml").read_text()
    assert all(np.isfinite(v).all() and v.max() > 0 for v in res.volumes.values())


def test_panel_align_adds_aligned_layers_and_keeps_the_users(viewer, qtbot):
    pytest.importorskip("napari")
    from fusedem.napari._tomo_layers import tilt_layer_data
    from fusedem.napari.tomo_widget import TomoWidget
    from fusedem.tomo.io import TiltSeries

    haadf, ha, maps, ca = tilt_series(16)
    haadf, maps = np.roll(haadf, 2, axis=2), {k: np.roll(v, 2, axis=2) for k, v in maps.items()}
    for data, kw, _ in tilt_layer_data(TiltSeries(haadf, ha, maps, ca, pixel_size=0.5, source="t")):
        viewer.add_image(data, **kw)
    w = TomoWidget(viewer)
    viewer.window.add_dock_widget(w, name="Fuse tilt series")
    w.elements.value = []
    assert not w.align() and "Tick at least one element" in w.status.value
    w.elements.value = [viewer.layers["Au tilts"], viewer.layers["Fe tilts"]]
    assert w.align()
    assert not w.align_button.enabled  # busy until the worker is done
    qtbot.waitUntil(lambda: w._aligning is None, timeout=30000)
    names = [ly.name for ly in viewer.layers]
    assert names[-3:] == ["HAADF tilts aligned", "Au tilts aligned", "Fe tilts aligned"]
    np.testing.assert_array_equal(viewer.layers["HAADF tilts"].data, haadf)  # untouched
    assert w.haadf.value is viewer.layers["HAADF tilts aligned"]
    assert [ly.name for ly in w.elements.value] == ["Au tilts aligned", "Fe tilts aligned"]
    md = viewer.layers["HAADF tilts aligned"].metadata["fusedem"]
    assert md["role"] == "haadf_tilts" and md["alignment"]["axis_offset_px"] == pytest.approx(2, abs=0.3)
    assert viewer.layers["Au tilts aligned"].metadata["fusedem"]["element"] == "Au"
    assert "Aligned: axis offset" in w.status.value and w.run_button.enabled and w.align_button.enabled
    assert viewer.layers["Au tilts aligned"].scale[1] == 0.5
