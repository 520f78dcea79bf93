"""What the .bcf guards cost on good files: the container check and the out-of-process parse.

    python benchmarks/bench_bcf_guard.py [FILE.bcf ...]    (default: the shared vendor .bcf files)

Prints the median of 7 runs of: the SFS container check alone; RosettaSciIO's
reader in this process (no guard); fusedem's guarded eager read (check + header
here + spectrum image in a child process); and the difference.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from shared_data import VENDOR  # noqa: E402


def median_ms(fn, n: int = 7) -> float:
    fn()  # warm: imports, file cache
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv: list[str]) -> int:
    from rsciio.bruker import file_reader

    from fusedem.io import load
    from fusedem.io._sfs import check_sfs

    files = [Path(a) for a in argv] or sorted(VENDOR.glob("*.bcf"))
    if not files:
        print(f"no .bcf files given and none in {VENDOR}", file=sys.stderr)
        return 2
    print(f"{'file':<40} {'size':>8} {'check':>9} {'rsciio':>9} {'guarded':>9} {'cost':>9}")
    for f in files:
        check = median_ms(lambda: check_sfs(f))
        plain = median_ms(lambda: file_reader(str(f), select_type=None))
        guarded = median_ms(lambda: load(f, lazy=False, extract=False))
        print(f"{f.name:<40} {f.stat().st_size / 1e3:>6.0f}kB {check:>7.2f}ms {plain:>7.1f}ms "
              f"{guarded:>7.1f}ms {guarded - plain:>+7.1f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
