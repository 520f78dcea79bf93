"""How close slab-by-slab fusion (``fusedem tomo --slab/--margin``) comes to one solve of the
whole volume, on a synthetic 32^3 core-shell tilt series (tests/tomo_series.py's projection).

Prints, per (slab, margin) and element, the max and RMS difference to the one-slab volume,
relative to its maximum; also with the slab rescaling switched off (each slab in its own
normalised units). Run: PYTHONPATH=src python benchmarks/study_tomo_slabs.py [N]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tomo_series import write_npz  # noqa: E402

import fusedem.cli._tomo_slabs as slabs  # noqa: E402
from fusedem.cli import main  # noqa: E402
from fusedem.tomo.io import load_tomo_result  # noqa: E402


def _run(folder: Path, name: str, *opts: str) -> dict[str, np.ndarray]:
    assert main(["tomo", str(folder / "s.npz"), "-o", str(folder / name), "--n-iter", "15", "-q",
                 *opts]) == 0
    return load_tomo_result(folder / name / "s_tomo.h5").volumes


def main_study(n: int = 32) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_npz(folder / "s.npz", n)
        one = _run(folder, "one", "--slab", str(n))
        print(f"{n}^3, 15 iterations; difference to one slab, relative to its max: max / RMS")
        print(f"{'slab':>5} {'margin':>6} {'rescaled':>8}  " + "  ".join(f"{el:>15}" for el in one))
        cases = [(n // 4, 0, True), (n // 4, 2, True), (n // 4, 4, True), (n // 4, 8, True),
                 (n // 2, 4, True), (n // 4, 4, False)]
        for slab, margin, rescaled in cases:
            keep = slabs.common_units
            if not rescaled:
                slabs.common_units = lambda res, ref: res.volumes
            try:
                v = _run(folder, f"s{slab}m{margin}{rescaled}", "--slab", str(slab),
                         "--margin", str(margin))
            finally:
                slabs.common_units = keep
            cells = []
            for el in one:
                d = one[el] - v[el]
                top = float(one[el].max())
                cells.append(f"{np.abs(d).max() / top:7.4f} / {np.sqrt(np.mean(d * d)) / top:.4f}")
            print(f"{slab:>5} {margin:>6} {str(rescaled):>8}  " + "  ".join(cells))


if __name__ == "__main__":
    main_study(int(sys.argv[1]) if len(sys.argv) > 1 else 32)
