"""Deep mutation fuzzing of fusedem's readers: hundreds of damaged files, each read in a worker.

Sources: the files shipped in ``src/fusedem/data``, results and TIFFs written here
(HDF5 and ImageJ TIFF), and the shared vendor files (.bcf, .emd, .dm3, .dm4)
when present. Every mutant is read eagerly and lazily with every layer
computed; see ``tests/fuzzing.py`` for the outcomes. Prints a table per format and
mutation, lists every unclear error, crash and timeout, and exits 1 if there was any.

    python benchmarks/fuzz_readers.py                 # 40 mutants per source
    python benchmarks/fuzz_readers.py -n 120 --seed 7 --only bcf
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from fuzzing import make_mutants, read_all, table  # noqa: E402
from shared_data import VENDOR  # noqa: E402


def written_sources(folder: Path) -> list[Path]:
    """A fusedem result (.h5 and .tif) and a HAADF TIFF, written here."""
    import tifffile

    import fusedem
    import fusedem.io

    rng = np.random.default_rng(0)
    h, m = rng.random((48, 40)), {"Dy": rng.poisson(3.0, (48, 40)).astype(np.float32), "O": rng.random((48, 40))}
    res = fusedem.fuse(h, m, n_iter=3)
    out = [folder / "result.h5", folder / "result.tif"]
    for p in out:
        fusedem.io.save_result(p, res, inputs={"HAADF": h, **m} if p.suffix == ".h5" else None)
    tif = folder / "HAADF.tif"
    tifffile.imwrite(tif, h.astype(np.float32))
    return out + [tif]


def sources(folder: Path, only: str | None) -> list[Path]:
    found = sorted((ROOT / "src" / "fusedem" / "data").glob("*.npz")) + sorted(
        (ROOT / "src" / "fusedem" / "data").glob("*.h5"))
    found += written_sources(folder)
    if VENDOR.is_dir():
        found += sorted(p for p in VENDOR.iterdir() if p.suffix.lower() in (".bcf", ".emd", ".dm3", ".dm4"))
    else:
        print(f"note: shared vendor files not found ({VENDOR}); fuzzing the project's own files only",
              file=sys.stderr)
    return [p for p in found if only is None or p.suffix.lower().lstrip(".") == only.lower().lstrip(".")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="mutants per source file (default 40)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--only", metavar="SUFFIX", help="only sources with this suffix, e.g. bcf")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per file (default 60)")
    ap.add_argument("--memory-gib", type=float, default=6.0, help="address-space limit per worker")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fusedem-fuzz-") as tmp:
        tmp = Path(tmp)
        srcs = sources(tmp / "src", args.only) if (tmp / "src").mkdir() is None else []
        mutants = make_mutants(srcs, args.n, args.seed, tmp / "mutants")
        t0 = time.perf_counter()
        reads = read_all([m for m, _, _ in mutants], timeout_s=args.timeout,
                         memory_bytes=int(args.memory_gib * 2**30))
        wall = time.perf_counter() - t0
        by_path = {r.path: r for r in reads}
        rows = [(src.suffix.lstrip("."), kind, by_path[m]) for m, kind, src in mutants]
        print(f"{len(mutants)} mutants of {len(srcs)} files (seed {args.seed}), read in {wall:.0f} s; "
              f"slowest read {max(r.seconds for r in reads):.1f} s\n")
        print(table(rows))
        bad = [(kind, src, r) for (m, kind, src), (_, _, r) in zip(mutants, rows)
               if r.outcome in ("unclear", "crash", "timeout")]
        for kind, src, r in bad:
            print(f"{r.outcome.upper()} {src.name} {kind} {r.path.name}: {r.message}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
