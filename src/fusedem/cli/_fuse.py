"""``fusedem fuse``: fuse datasets one after the other in this process."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._config import UsageError
from ._progress import progress
from ._run import prepare, record, report_notes, summarise
from ._task import Outcome, expand, run_job


def run_fuse(args: argparse.Namespace) -> int:
    """Fuse every input in turn; exit status 0, 1 (some failed) or 2 (usage)."""
    run = prepare(args)
    for out in run.missing:
        record(run, out)
    jobs = []
    expanded = [expand(source, run.settings, stem) for source, stem in run.inputs]
    bad_crop = [ex.message for ex in expanded if ex.usage]
    if bad_crop:  # an option that does not fit the data: nothing is fused
        raise UsageError("\n".join(bad_crop))
    for ex in expanded:
        if ex.status == "failed":
            record(run, ex)
        else:
            report_notes(run, ex)
        jobs += ex.jobs
    stop = ""
    with progress(total=len(jobs), desc="fusing", unit="dataset", quiet=run.quiet) as bar:
        for job in jobs:
            if stop:  # the output folder is full or read-only: later outputs cannot be saved
                record(run, Outcome(job.label, "failed", f"{job.label}: not started ({stop})"), bar)
                continue
            bar.set_postfix_str(Path(job.source).name, refresh=True)
            out = run_job(job, run.settings)
            record(run, out, bar)
            bar.update(1)
            if out.fatal:
                stop = out.message.split(": ", 1)[-1]
    return summarise(run)
