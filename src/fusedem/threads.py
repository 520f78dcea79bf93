"""How many threads the CPU solver should use right now: the cores other processes leave free.

numba's OpenMP/TBB threads that wait for a core another process holds make every
parallel region wait for the slowest of them: on 2 cores with one other busy
process, 2 threads ran a 512² solve up to 2x slower than 1 thread. Before each
outer iteration the CPU stepper therefore asks :func:`step_threads`, which reads
the kernel's instantaneous count of runnable tasks (``/proc/loadavg``, Linux)
and leaves out the cores that others are running on. Results do not depend on
the thread count (the kernels round alike for any split of the work).
"""
from __future__ import annotations

import os

ADAPTIVE = os.environ.get("FUSEDEM_ADAPTIVE_THREADS", "1") != "0"


def machine_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def others_running() -> int | None:
    """Runnable tasks on the machine now, besides the calling thread (None: unknown here)."""
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)


def step_threads(limit: int) -> int:
    """Threads for the next parallel step: at most ``limit``, at least 1, and no more than the
    cores not running other tasks (``limit`` when that cannot be read, or with
    ``FUSEDEM_ADAPTIVE_THREADS=0``)."""
    others = others_running() if ADAPTIVE else None
    if others is None:
        return limit
    return max(1, min(limit, machine_cores() - others))
