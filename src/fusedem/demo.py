"""Headless demo: fuse the bundled DyScO3 X-EDS sample and write maps + a comparison PNG.

``fusedem demo -o OUTDIR`` (what ``make demo`` runs) writes

- ``OUTDIR/dysco3_fused.h5``: the fused maps with provenance (``fusedem.io.save_result``),
- ``OUTDIR/dysco3_raw_vs_fused.png``: one row per element plus the HAADF and
  an RGB overlay, measured on the left, fused on the right,
- ``OUTDIR/fusedem_params.toml``: the parameters used ('dysco3' tutorial preset).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .elements import element_colour

SAMPLE = Path(__file__).parent / "data" / "PTO_Trilayer_dataset.npz"
ELEMENTS = ("Sc", "Dy", "O")
#: Row colours (RGB) of the elements, also used for the overlay: the napari layers' colours.
COLOURS = {s: element_colour(s) for s in ELEMENTS}


def _stretch(a: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    """Percentile stretch to [0, 1] (display only)."""
    p0, p1 = np.percentile(a, [lo, hi])
    return np.clip((a - p0) / (p1 - p0 if p1 > p0 else 1.0), 0, 1)


def _overlay(maps: dict[str, np.ndarray]) -> np.ndarray:
    """'Lighten' blend of the element colours (background percentiles clipped to black)."""
    layers = [_stretch(m, 25, 99.5)[..., None] * np.array(COLOURS[s]) for s, m in maps.items()]
    return np.clip(np.max(layers, axis=0), 0, 1)


def comparison_figure(haadf: np.ndarray, raw: dict[str, np.ndarray], result, path: Path) -> Path:
    """Save the measured-vs-fused PNG (matplotlib Agg); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    rows = [("HAADF", "gray", haadf, result.haadf_model, "HAADF (measured)", "HAADF model  A x^γ")]
    for s in raw:
        cmap = LinearSegmentedColormap.from_list(s, [(0, 0, 0), COLOURS.get(s, (1, 1, 1))])
        rows.append((s, cmap, raw[s], result.maps[s], f"{s} map (measured X-EDS)", f"{s} map (fused)"))
    fig, axes = plt.subplots(len(rows) + 1, 2, figsize=(6.4, 3.25 * (len(rows) + 1)),
                             facecolor="black", layout="constrained")
    for (name, cmap, left, right, t_left, t_right), ax_row in zip(rows, axes):
        for ax, img, title in zip(ax_row, (left, right), (t_left, t_right)):
            ax.imshow(_stretch(img), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, color="white", fontsize=10)
    axes[-1][0].imshow(_overlay(raw), interpolation="nearest")
    axes[-1][0].set_title("overlay " + "/".join(raw) + " (measured)", color="white", fontsize=10)
    axes[-1][1].imshow(_overlay({s: result.maps[s] for s in raw}), interpolation="nearest")
    axes[-1][1].set_title("overlay " + "/".join(raw) + " (fused)", color="white", fontsize=10)
    for ax in np.ravel(axes):
        ax.set_axis_off()
    p = result.params
    fig.suptitle(
        f"DyScO3, atomic-resolution STEM X-EDS: fused multi-modal EM\nλ_chem={p.lambda_chem:g}  λ_TV={p.lambda_tv:g}  "
        f"γ={p.gamma:g}  ε={p.eps:g}  {result.iterations} iterations, {result.elapsed:.2f} s",
        color="white", fontsize=10,
    )
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)
    return path


def run_demo(outdir: Path = Path("demo_output"), *, n_iter: int | None = None, quiet: bool = False) -> int:
    """Fuse the bundled sample with the 'dysco3' preset; returns an exit status.

    Re-running replaces the demo's own three files (the run is deterministic).
    """
    from . import fuse, io
    from .solver import load_kernels
    from .cli._config import PARAMS_FILE, params_toml, write_text_atomic
    from .params import FusionParams

    outdir = Path(outdir)
    h5, png = outdir / "dysco3_fused.h5", outdir / "dysco3_raw_vs_fused.png"
    if outdir.exists() and not outdir.is_dir():
        print(f"fusedem demo: {outdir} exists and is not a folder", file=sys.stderr)
        return 2
    params = FusionParams.preset("dysco3", **({"n_iter": n_iter} if n_iter else {}))
    t0 = time.perf_counter()
    ds = io.load(SAMPLE)
    haadf = np.asarray(ds.haadf.data)
    raw = {s: np.asarray(ds.element_maps[s].data) for s in ELEMENTS}
    compile_s = load_kernels()  # compile (first run) or load the cached numba kernels
    result = fuse(haadf, raw, params)
    outdir.mkdir(parents=True, exist_ok=True)
    io.save_result(h5, result, inputs={"HAADF": haadf, **raw}, sources=(SAMPLE.name,), overwrite=True)
    write_text_atomic(outdir / PARAMS_FILE, params_toml(
        params, elements=ELEMENTS, fmt="h5", comment=[f"fusedem demo on the bundled {SAMPLE.name}"]))
    h_norm = (haadf - haadf.min()) / np.ptp(haadf)
    comparison_figure(h_norm, raw, result, png)
    total = time.perf_counter() - t0
    if not quiet:
        ny, nx = haadf.shape
        print(f"fused {', '.join(ELEMENTS)} ({ny} x {nx} px, {result.iterations} iterations) "
              f"in {result.elapsed:.2f} s (total with IO and figure {total:.2f} s; "
              f"numba kernels compiled or loaded from cache in {compile_s:.2f} s)")
        print(f"wrote {h5}\n      {png}\n      {outdir / PARAMS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_demo())
