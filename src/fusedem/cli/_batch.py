"""``fusedem batch``: fuse many datasets in parallel on a dask.distributed cluster.

Workers receive file paths and the (small) shared settings, open the inputs
themselves and write each result atomically; the client only collects short
:class:`~fusedem.cli._task.Outcome` records, as they complete. Inputs and the
output folder must therefore be reachable from every worker (shared disk).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

from ..solver import load_kernels
from ._config import UsageError
from ._progress import progress
from ._run import Run, prepare, record, report_notes, summarise
from ._task import Outcome, expand, run_job


def machine_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def gpu_workers(args: argparse.Namespace) -> int:
    """One worker per GPU when the run solves on GPUs (--device auto with a GPU, or cuda), else 0."""
    from ._run import device_option

    if device_option(args) != "cuda":
        return 0
    from numba import cuda

    return len(cuda.gpus)


def free_cores() -> int:
    """Cores this process may use minus those other processes keep busy (1-minute load), >= 1.

    Two batches started side by side on one machine then share the cores instead
    of each spinning as many threads as there are cores.
    """
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        busy = 0.0
    return max(1, machine_cores() - int(busy + 0.5))


@contextlib.contextmanager
def open_client(scheduler: str | None, workers: int | None, dashboard: str | None,
                quiet: bool, timeout: float = 20.0) -> Iterator[object]:
    """A Client on an existing scheduler, or on a LocalCluster of worker processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("batch needs dask.distributed: pip install 'fusedem[cli]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    n = workers or machine_cores()
    # Fill numba's on-disk cache first: workers then load the kernels in ~0.3 s. Each
    # compiling them itself held its GIL for ~15 s, long enough to miss the
    # scheduler's heartbeats (logged tracebacks).
    if not quiet:
        print("loading the solver (the first run on a computer compiles it, ~20 s)",
              file=sys.stderr)
    load_kernels()
    # Worker processes inherit an ignored SIGINT, so Ctrl-C reaches only this
    # process, which then closes the cluster cleanly (no worker tracebacks).
    with _sigint_ignored():
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True,
            dashboard_address=dashboard,
            # no dashboard asked for: the scheduler's own HTTP endpoint on a free local
            # port, not on 8787 (two batches at once would fight over it)
            scheduler_kwargs=None if dashboard else {"dashboard_address": "127.0.0.1:0"},
            # Every failure reaches the summary as a failed input with its reason (task
            # errors and lost workers alike); the workers' own logs added only noise, e.g.
            # a heartbeat traceback when a heartbeat raced the cluster's shutdown (seen
            # once in CI).
            silence_logs=logging.CRITICAL,
        )
    with cluster, Client(cluster) as client:
        if not quiet:
            where = f", dashboard {client.dashboard_link}" if dashboard else ""
            print(f"local Dask cluster: {n} worker processes{where}", file=sys.stderr)
        yield client


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_batch(args: argparse.Namespace) -> int:
    """Fuse all inputs on the cluster; exit status 0, 1 (some failed) or 2 (usage)."""
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    threads, workers = args.numba_threads, args.workers
    if not args.scheduler:
        free = free_cores()
        workers = workers or gpu_workers(args) or free
        if threads is None:
            threads = max(1, free // workers)
    run = prepare(args, numba_threads=threads)
    for out in run.missing:
        record(run, out)
    if not run.inputs:
        return summarise(run)
    with open_client(args.scheduler, workers, args.dashboard, run.quiet,
                     args.connect_timeout) as client:
        _submit_all(client, run)
    return summarise(run)


def _submit_all(client, run: Run) -> None:
    """Expand inputs into jobs on the workers, fuse them, record outcomes as they finish."""
    from dask.distributed import as_completed

    settings = run.settings
    labels: dict[str, str] = {}
    opening = []
    for source, stem in run.inputs:
        fut = client.submit(expand, source, settings, stem, pure=False)
        labels[fut.key] = source
        opening.append(fut)
    pending = as_completed(opening)
    # one step per input; a stack file adds a step per further frame once opened
    with progress(total=len(opening), desc="fusing", unit="dataset", quiet=run.quiet) as bar:
        for fut in pending:
            out = _result(fut, labels[fut.key])
            if out.status == "expanded":  # one job per dataset (frame) of this input
                report_notes(run, out, bar)
                bar.total += len(out.jobs) - 1
                bar.refresh()
                for job in out.jobs:
                    jf = client.submit(run_job, job, settings, pure=False)
                    labels[jf.key] = job.label
                    pending.add(jf)
            else:  # a finished job, or an input that could not be opened
                record(run, out, bar)
                bar.update(1)
            fut.release()


def _result(fut, label: str) -> Outcome:
    """The outcome of a future; a crashed or lost worker becomes a failure of that input."""
    try:
        return fut.result()
    except Exception as exc:  # KilledWorker, CommClosedError, unpicklable data...
        return Outcome(label, "failed", f"{label}: worker failed ({type(exc).__name__}: {exc})")

