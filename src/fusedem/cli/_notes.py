"""Warnings of the readers (RosettaSciIO, h5py, numpy …) as notes of an input's outcome.

Inside a job they are collected instead of printed (RosettaSciIO both logs and warns,
so some were printed twice, and Dask workers printed them on their own streams); the
command prints each once, on stderr, with ``-v``, and a count otherwise; ``-q`` hides them.
"""
from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: loggers whose records become notes (and are not printed by logging's last resort)
LOGGERS = ("rsciio", "hyperspy")


class _ListHandler(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(record.getMessage())


@contextmanager
def collected(notes: list[str]) -> Iterator[list[str]]:
    """Append the warnings and reader log records (WARNING and above) of the block to
    ``notes`` instead of printing them."""
    handler = _ListHandler(notes)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield notes
            finally:
                notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        for lg, propagate in zip(loggers, saved):
            lg.removeHandler(handler)
            lg.propagate = propagate


def with_notes(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a job function returning an Outcome: its warnings become ``outcome.notes``
    (each once, in order)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        notes: list[str] = []
        with collected(notes):
            out = fn(*args, **kwargs)
        out.notes = list(dict.fromkeys(notes))
        return out
    return wrapper
