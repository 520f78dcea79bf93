"""Preparing a run (inputs, parameters, output folder) and reporting its outcome."""
from __future__ import annotations

import argparse
import glob
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..params import FusionParams
from ._config import (
    FORMATS, PARAMS_FILE, UsageError, params_toml, parse_crop, read_config,
    resolve_params, write_text_atomic,
)
from ._task import Outcome, Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class Run:
    """A prepared run: settings shared by all jobs, inputs with their output stems."""

    settings: Settings
    params: FusionParams
    inputs: list[tuple[str, str]]  #: (source, output stem)
    missing: list[Outcome]  #: inputs that matched no file
    quiet: bool
    report: Path | None = None  #: JSON summary file (--report)
    toml: dict = field(default_factory=dict)  #: what params_toml needs to rewrite the TOML
    verbose: bool = False  #: print the readers' warnings (else only their number)
    notes_seen: set = field(default_factory=set)  #: (input, note) printed or counted
    params_text: str = ""  #: OUTDIR/fusedem_params.toml, written with the first result
    outcomes: list[Outcome] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)


def _own_output(path: str, outdir: Path | None) -> bool:
    p = Path(path)
    return (outdir is not None and p.parent.resolve() == outdir.resolve()
            and p.stem.endswith("_fused") and p.suffix in (".h5", ".tif"))


def expand_patterns(patterns: list[str], outdir: Path | None = None) -> tuple[list[str], list[Outcome]]:
    """Files named or matched by glob patterns (in order, without duplicates).

    Glob matches that are this run's own outputs (``OUTDIR/*_fused.h5|tif``) are left out.
    """
    found: list[str] = []
    missing: list[Outcome] = []
    for pat in patterns:
        if any(c in pat for c in "*?["):
            hits = sorted(glob.glob(pat, recursive=True))
            if not hits:
                missing.append(Outcome(pat, "failed", f"{pat}: no file matches this pattern"))
            found += [h for h in hits if not _own_output(h, outdir)]
        elif Path(pat).exists():
            found.append(pat)
        else:
            missing.append(Outcome(pat, "failed", f"{pat}: no such file or folder"))
    return list(dict.fromkeys(found)), missing


def unique_stems(sources: list[str]) -> list[str]:
    """Output stems: the file stem, prefixed by parent folders where stems collide."""
    stems = [Path(s).stem for s in sources]
    depth = 1
    while len(set(stems)) < len(stems) and depth < 8:
        counts = Counter(stems)
        stems = [
            "_".join(Path(s).resolve().parts[-depth - 1:-1] + (Path(s).stem,)) if counts[st] > 1 else st
            for s, st in zip(sources, stems)
        ]
        depth += 1
    if len(set(stems)) < len(stems):
        dup = [s for s, c in Counter(stems).items() if c > 1]
        raise UsageError(f"inputs would overwrite each other's outputs ({', '.join(dup)})")
    return stems


def prepare(args: argparse.Namespace, *, numba_threads: int | None = None) -> Run:
    """Resolve parameters and inputs, create the output folder, write the parameters TOML."""
    cfg = read_config(args.config) if args.config else {}
    src = str(args.config) if args.config else ""
    params = resolve_params(args, cfg, src)
    elements = args.elements if args.elements is not None else cfg.get("elements")
    if isinstance(elements, str):
        elements = elements.split(",")
    if elements is not None:
        if not isinstance(elements, list) or not all(isinstance(e, str) for e in elements):
            raise UsageError(f"{src or '--elements'}: elements must be a list of element symbols")
        elements = _symbols(elements)
    crop_text = args.crop if args.crop is not None else cfg.get("crop")
    crop = parse_crop(crop_text) if crop_text is not None else None
    fmt = args.format or cfg.get("format", "h5")
    fmt = "tiff" if fmt in ("tif", "tiff") else fmt
    if fmt not in FORMATS:
        raise UsageError(f"{src or '--format'}: format must be one of {FORMATS}, got {fmt!r}")

    sources, missing = expand_patterns(args.inputs, Path(args.output))
    if not sources and not missing:
        raise UsageError("no inputs given")
    stems = unique_stems(sources)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: exists and is not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{outdir}: cannot create the output folder ({exc.strerror})") from None
    argv = getattr(args, "argv", None) or []
    command = [f"command: fusedem {' '.join(map(str, argv))}"] if argv else []
    auto = bool(args.auto if args.auto is not None else cfg.get("auto", False))
    text = params_toml(params, elements=elements, crop=crop, fmt=fmt, comment=command, auto=auto)
    _check_previous(outdir / PARAMS_FILE, text, args.overwrite)
    settings = Settings(
        params=params.to_dict(), outdir=str(outdir), fmt=fmt,
        elements=tuple(elements) if elements else None, crop=crop,
        overwrite=args.overwrite, numba_threads=numba_threads, store_inputs=args.store_inputs,
        auto=auto, extraction=extraction_options(args), run_id=uuid.uuid4().hex,
        haadf=getattr(args, "haadf", None),
        kfactors=tuple(getattr(args, "kfactors", None).items()) if getattr(args, "kfactors", None) else None,
        min_counts=float(getattr(args, "min_counts", 1.0)),
        device=device_option(args),
    )
    run = Run(settings, params, list(zip(sources, stems)), missing, args.quiet, args.report,
              params_text=text, verbose=bool(getattr(args, "verbose", False)))
    run.toml = dict(elements=elements, crop=crop, fmt=fmt, comment=command, auto=auto)
    return run


def device_option(args: argparse.Namespace) -> str:
    """--device resolved to 'cpu' or 'cuda' (UsageError with the reason when cuda can't run)."""
    from ..cuda import resolve_device

    try:
        return resolve_device(getattr(args, "device", "auto"))
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def extraction_options(args: argparse.Namespace) -> dict:
    """The ``--beam-kv/--fwhm-ev/--lines`` options as keywords of
    :func:`fusedem.io.extract_element_layers` (only those given)."""
    opts = {"beam_energy_kv": args.beam_kv, "resolution_ev": args.fwhm_ev, "lines": args.lines}
    for key, value in opts.items():
        if key != "lines" and value is not None and value <= 0:
            raise UsageError(f"--{'beam-kv' if key == 'beam_energy_kv' else 'fwhm-ev'} must be "
                             f"> 0, got {value}")
    return {k: v for k, v in opts.items() if v is not None}


def _symbols(names: list[str]) -> list[str]:
    from ..elements import normalize_symbol

    out = []
    for n in names:
        try:
            out.append(normalize_symbol(n.strip()))
        except (ValueError, KeyError) as exc:
            raise UsageError(f"--elements: {exc}") from None
    return out


def _body(text: str) -> list[str]:
    """The settings lines of a parameters TOML (without comments and per-input choices)."""
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    cut = next((i for i, ln in enumerate(lines) if ln.startswith("[chosen.")), len(lines))
    return lines[:cut]


def _check_previous(path: Path, text: str, overwrite: bool) -> None:
    """Refuse to mix results of different settings in one folder (unless --overwrite)."""
    if overwrite or not path.exists():
        return
    if not any(path.parent.glob("*_fused.*")):  # no results yet: nothing to protect
        return
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return
    if _body(old) != _body(text):
        raise UsageError(
            f"{path.parent}: holds results made with other settings (see {path}); "
            "choose another output folder or pass --overwrite"
        )


def record(run: Run, out: Outcome, bar=None) -> None:
    """Keep an outcome; report failures as they happen. The first result (new or already
    complete) writes the parameters TOML: a run without any result leaves none."""
    run.outcomes.append(out)
    report_notes(run, out, bar)
    if not run.quiet:
        for note in (out.chosen or {}).get("notes", []):  # --auto's caveats: always shown
            _err(f"note: {out.label}: autotune: {note}", bar)
    if out.status in ("done", "skipped") and run.params_text:
        write_text_atomic(Path(run.settings.outdir) / PARAMS_FILE, run.params_text)
        run.params_text = ""
    if out.status == "failed":
        _err(f"FAILED {out.message}", bar)


def report_notes(run: Run, out: Outcome, bar=None) -> None:
    """Print (with -v) or count the readers' warnings of ``out``, each once per input."""
    source = out.jobs[0].source if out.jobs else out.label.split("[frame ")[0]
    for note in out.notes:  # a file read twice (opened, then fused) warns twice: once here
        if (source, note) not in run.notes_seen:
            run.notes_seen.add((source, note))
            if run.verbose and not run.quiet:
                _err(f"warning: {source}: {note}", bar)


def _err(line: str, bar=None) -> None:
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def summarise(run: Run) -> int:
    """Print the summary; the exit status (0 all fine, 1 some failed)."""
    counts = Counter(o.status for o in run.outcomes)
    wall = time.perf_counter() - run.t0
    outdir = run.settings.outdir
    written = f"outputs and {PARAMS_FILE}" if counts["done"] + counts["skipped"] else "nothing written"
    busy = f", {counts['busy']} left to another run (busy)" if counts["busy"] else ""
    line = (f"{counts['done']} done, {counts['skipped']} skipped (already complete){busy}, "
            f"{counts['failed']} failed in {wall:.1f} s; {written} in {outdir}")
    failed = [o for o in run.outcomes if o.status == "failed"]
    if failed:
        print("failed:", file=sys.stderr)
        for o in failed:
            print(f"  {o.message}", file=sys.stderr)
    if not run.quiet or failed:
        print(line, file=sys.stderr if failed else sys.stdout)
    chosen = {o.label: o.chosen for o in run.outcomes if o.chosen}
    if chosen:  # the automatic choices, per input, next to the fixed parameters
        text = params_toml(run.params, chosen=chosen, **run.toml)
        write_text_atomic(Path(outdir) / PARAMS_FILE, text)
    if run.notes_seen and not run.verbose and not run.quiet:
        print(f"{len(run.notes_seen)} warning(s) from the readers not shown (-v shows them)",
              file=sys.stderr)
    if run.report is not None:
        rows = [{"input": o.label, "status": o.status, "message": o.message, "outputs": o.outputs,
                 "seconds": round(o.seconds, 3)} for o in run.outcomes]
        try:
            write_text_atomic(run.report, json.dumps(
                {"counts": dict(counts), "wall_seconds": round(wall, 3), "outdir": outdir, "results": rows},
                indent=1) + "\n")
        except OSError as exc:
            print(f"fusedem: error: --report: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK
