"""Mutation fuzzing of fusedem's readers (used by test_fuzz_readers.py and benchmarks/fuzz_readers.py).

A seeded mutant of a good file (truncated, cut after its header, bytes flipped,
a block zeroed, junk appended) is read by ``fusedem.io.load`` eagerly and lazily
(every layer computed) in a worker process with a memory limit and a time limit
per file. Each read ends in one of:

- ``loaded``: the reader returned layers (the damage was in unused bytes, or not detectable);
- ``error``: a ReadError (or OSError) whose message names the file: the wanted failure;
- ``unclear``: any other exception, or a message that does not name the file;
- ``crash``: the worker died of a signal (SIGSEGV, SIGBUS ...) or exited;
- ``timeout``: the worker took longer than the limit (killed).

One worker reads many files in turn and is restarted after a crash or timeout,
so a run of dozens of mutants costs seconds, not one interpreter start per file.
"""
from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MUTATIONS = ("truncate", "header_cut", "flip", "zero_block", "append")
OUTCOMES = ("loaded", "error", "unclear", "crash", "timeout")

_WORKER = r"""
import json, sys
import numpy as np
from fusedem.io import ReadError, load
for line in sys.stdin:
    path = line.strip()
    out = {"path": path, "outcome": "loaded", "message": ""}
    try:
        for lazy in (False, True):
            ds = load(path, lazy=lazy)
            for ly in ds.layers:
                a = np.asarray(ly.data)
                if a.shape != tuple(ly.data.shape):
                    raise AssertionError(f"layer {ly.name!r}: shape {a.shape} != {ly.data.shape}")
    except (ReadError, OSError) as exc:
        out["message"] = str(exc)
        out["outcome"] = "error" if path in str(exc) else "unclear"
    except BaseException as exc:
        out["outcome"], out["message"] = "unclear", f"{type(exc).__name__}: {exc}"
    print(json.dumps(out), flush=True)
"""


def mutate(raw: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One seeded mutant of ``raw`` (``kind`` from :data:`MUTATIONS`)."""
    n = len(raw)
    if kind == "truncate":
        return raw[: int(rng.integers(1, max(2, n)))]
    if kind == "header_cut":
        return raw[: int(rng.integers(1, min(n, 4096)))]
    out = bytearray(raw)
    if kind == "flip":
        for j in rng.integers(0, n, int(rng.integers(1, 9))):
            out[j] ^= 1 << int(rng.integers(0, 8))
    elif kind == "zero_block":
        j = int(rng.integers(0, n))
        end = min(n, j + int(rng.integers(16, 4097)))
        out[j:end] = bytes(end - j)
    elif kind == "append":
        out += rng.integers(0, 256, int(rng.integers(1, 65536)), dtype=np.uint8).tobytes()
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    return bytes(out)


def make_mutants(sources: list[Path], n_per_source: int, seed: int, folder: Path) -> list[tuple[Path, str, Path]]:
    """Write ``n_per_source`` mutants of each source into ``folder``: (mutant, kind, source)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for s_i, src in enumerate(sources):
        raw = src.read_bytes()
        rng = np.random.default_rng([seed, s_i])
        for k in range(n_per_source):
            kind = MUTATIONS[k % len(MUTATIONS)]
            dst = folder / f"{src.stem}.{k:03d}.{kind}{src.suffix}"
            dst.write_bytes(mutate(raw, kind, rng))
            made.append((dst, kind, src))
    return made


@dataclass
class Read:
    """The outcome of reading one mutant."""

    path: Path
    outcome: str
    message: str
    seconds: float


def _limits(memory_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        os.setsid()  # its own process group: a timeout kills the BCF child too
    return apply


def _start(paths: list[Path], memory_bytes: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, preexec_fn=_limits(memory_bytes))
    proc.stdin.write("".join(f"{p}\n" for p in paths))
    proc.stdin.close()
    return proc


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def read_all(paths: list[Path], timeout_s: float = 60.0, memory_bytes: int = 6 << 30,
             first_timeout_s: float = 120.0) -> list[Read]:
    """Read every path in worker processes; a crash or timeout costs only that file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1] / "src"),
                                                                      os.environ.get("PYTHONPATH")]))}
    results: list[Read] = []
    todo = list(paths)
    while todo:
        proc = _start(todo, memory_bytes, env)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        limit = first_timeout_s + timeout_s  # the first file also pays the worker's imports
        t0 = time.perf_counter()
        while todo:
            if not sel.select(timeout=max(0.0, limit - (time.perf_counter() - t0))):
                _kill(proc)
                results.append(Read(todo.pop(0), "timeout", f"no answer in {timeout_s:g} s", timeout_s))
                break
            line = proc.stdout.readline()
            now = time.perf_counter()
            if not line:  # the worker died on todo[0]
                rc = proc.wait()
                why = signal.Signals(-rc).name if rc < 0 else f"exit status {rc}"
                results.append(Read(todo.pop(0), "crash", why, now - t0))
                break
            d = json.loads(line)
            results.append(Read(Path(d["path"]), d["outcome"], d["message"], now - t0))
            todo.pop(0)
            t0, limit = now, timeout_s
        sel.close()
        if proc.poll() is None:
            _kill(proc)
    return results


def table(rows: list[tuple[str, str, Read]]) -> str:
    """A text table: per (format, mutation), how many mutants ended in each outcome."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for fmt, kind, r in rows:
        c = counts.setdefault((fmt, kind), dict.fromkeys(OUTCOMES, 0))
        c[r.outcome] += 1
    head = f"{'format':<8} {'mutation':<11} " + " ".join(f"{o:>8}" for o in OUTCOMES)
    lines = [head, "-" * len(head)]
    total = dict.fromkeys(OUTCOMES, 0)
    for (fmt, kind), c in sorted(counts.items()):
        lines.append(f"{fmt:<8} {kind:<11} " + " ".join(f"{c[o]:>8}" for o in OUTCOMES))
        for o in OUTCOMES:
            total[o] += c[o]
    lines.append("-" * len(head))
    lines.append(f"{'all':<8} {'':<11} " + " ".join(f"{total[o]:>8}" for o in OUTCOMES))
    return "\n".join(lines)
