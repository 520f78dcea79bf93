"""Many solves at once on the GPU: parameter sets over one image, or frames of a series.

A batch of K problems costs far less than K solves: the kernels see K times
more pixels per launch (``benchmarks/bench_gpu.py`` reports the speed-up).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import validation
from ..params import FusionParams
from ..solver import channel_weights, map_gains, prepare_inputs
from .stepper import CudaStepper


def _stepper(prepared: Sequence[tuple], params: Sequence[FusionParams],
             slots: Sequence[int]) -> tuple[CudaStepper, list[str]]:
    """A CudaStepper over data slots ``prepared`` (prepare_inputs results of one element list)."""
    symbols, z = prepared[0][2], prepared[0][3]
    for pr in prepared[1:]:
        if pr[2] != symbols or pr[0].shape != prepared[0][0].shape:
            raise ValueError("a batch needs the same elements and image size in every slot")
    p0 = params[0]
    bh = np.stack([pr[0] for pr in prepared])
    b = np.stack([pr[1] for pr in prepared])
    w = channel_weights(z, p0.weighting, p0.gamma).astype(np.float32)
    lam_h = p0.lambda_haadf if p0.lambda_haadf is not None else 1.0 / len(symbols)
    if any(p.lambda_haadf != p0.lambda_haadf or p.weighting != p0.weighting
           or p.background_threshold != p0.background_threshold or p.n_iter != p0.n_iter
           for p in params):
        raise ValueError("a batch must share lambda_haadf, weighting, background_threshold "
                         "and n_iter")
    x0 = None
    if p0.background_threshold is not None:  # as fusedem.solver: the initial iterate only
        xb = b[np.asarray(slots)]
        x0 = np.where(xb < p0.background_threshold, np.float32(0), xb)
    lam_tv = np.array([p.lambda_tv_of(symbols) for p in params], np.float32)
    lam_chem = np.array([p.lambda_chem_of(map_gains(prepared[s][4], symbols))
                         for p, s in zip(params, slots)], np.float32)
    return CudaStepper(bh, b, w, lam_h, params, bidx=slots, x0=x0, history=p0.n_iter,
                       lam_tv=lam_tv, lam_chem=lam_chem), symbols


def fuse_parameter_sets(haadf, maps: Mapping[str, object],
                        params: Sequence[FusionParams]) -> list[dict[str, np.ndarray]]:
    """Fuse one image with K parameter sets in one GPU batch.

    haadf: (ny, nx); maps: element -> (ny, nx); params: K FusionParams that
    differ only in lambda_chem, lambda_tv, lambda_tv_elements and tv_step. Returns K dicts element -> (ny, nx)
    float32 fused maps in normalised units, as :func:`fusedem.fuse` gives them.
    """
    params = list(params)
    if not params:
        raise ValueError("params is empty: give at least one parameter set")
    prepared = [prepare_inputs(haadf, maps, params[0].map_scaling)]
    st, symbols = _stepper(prepared, params, [0] * len(params))
    for _ in range(params[0].n_iter):
        st.step()
    x = st.maps()
    return [{s: x[k, i] for i, s in enumerate(symbols)} for k in range(len(params))]


def fuse_frames(haadf_frames, map_frames: Mapping[str, object],
                params: FusionParams) -> list[dict[str, np.ndarray]]:
    """Fuse the frames of a series in one GPU batch, each as :func:`fusedem.fuse` would alone.

    haadf_frames: (n_frames, ny, nx); map_frames: element -> (n_frames, ny, nx).
    Each frame is normalised on its own. Returns per frame a dict element ->
    (ny, nx) float32 fused map in normalised units.
    """
    hf = np.asarray(haadf_frames)
    if hf.ndim != 3:
        raise ValueError(f"haadf_frames: expected (n_frames, ny, nx), got shape {hf.shape}")
    stacks = {k: np.asarray(v) for k, v in map_frames.items()}
    for k, v in stacks.items():
        if v.shape != hf.shape:
            raise ValueError(f"map {k!r}: shape {v.shape} differs from the HAADF frames' {hf.shape}")
    prepared = [prepare_inputs(hf[f], {k: v[f] for k, v in stacks.items()}, params.map_scaling)
                for f in range(hf.shape[0])]
    st, symbols = _stepper(prepared, [params] * len(prepared), list(range(len(prepared))))
    for _ in range(params.n_iter):
        st.step()
    x = st.maps()
    return [{s: x[f, i] for i, s in enumerate(symbols)} for f in range(len(prepared))]


def score_curves(prepared: Sequence[tuple], splits: Sequence[validation.Split],
                 params: Sequence[FusionParams], slots: Sequence[int],
                 every: int) -> list[list[validation.Checkpoint]]:
    """Held-out score curves of K candidate solves, computed in one batch.

    prepared[s], splits[s]: the prepared fit data and the split of data slot s;
    params[k] is solved on slot slots[k]. Returns, per problem, the list of
    :class:`fusedem.validation.Checkpoint` every ``every`` iterations and at the end
    (score inf where a solve diverged), as :class:`fusedem.tuning` scores one candidate.
    """
    st, symbols = _stepper(prepared, params, slots)
    n_iter = params[0].n_iter
    curves: list[list[validation.Checkpoint]] = [[] for _ in params]
    for it in range(1, n_iter + 1):
        st.step()
        if it % every and it != n_iter:
            continue
        x = st.maps()
        for k, s in enumerate(slots):
            fitted = {sym: x[k, i] for i, sym in enumerate(symbols)}
            curves[k].append(validation.checkpoint(splits[s], fitted, prepared[s][4], it))
    return curves
