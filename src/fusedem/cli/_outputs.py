"""Guards around one output file: whose it is, what input it was made from, who makes it now.

- :func:`written_by_fusedem`: whether an existing file carries fusedem's
  provenance marker, read from its first bytes (so a fusedem result cut short is
  still recognised, and a user's file never mistaken for one);
- :func:`input_digest`: a fingerprint of an input's content, stored in each
  result so that resume never reuses a result of other data under the same name;
- :func:`claim`: an exclusive, non-blocking lock per output, so two runs into
  one folder never make the same output twice.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..io._atomic import write_error

_MARKER = "fusedem_result"
_MARKERS = (_MARKER.encode(), _MARKER.encode("utf-16-le"), _MARKER.encode("utf-16-be"))
_HEAD = 1 << 20
_WHOLE = 256 << 20  #: inputs up to this size are hashed whole
_SAMPLES, _SAMPLE = 16, 4 << 20  #: larger ones: this many evenly spaced samples of this size


def written_by_fusedem(path: str | os.PathLike) -> bool:
    """True when the file at ``path`` carries fusedem's result marker in its first MiB."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError:
        return False
    return any(m in head for m in _MARKERS)


def _hash_file(h, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}\0{size}\0".encode())
    with open(path, "rb") as fh:
        if size <= _WHOLE:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            return
        step = (size - _SAMPLE) // (_SAMPLES - 1)
        for i in range(_SAMPLES):
            fh.seek(i * step)
            h.update(fh.read(_SAMPLE))


def input_digest(source: str | os.PathLike) -> str:
    """A BLAKE2b fingerprint of an input file's (or folder's TIFFs') content and size.

    Files up to 256 MiB are hashed whole, larger ones by size and 16 samples of 4 MiB.
    """
    p = Path(source)
    h = hashlib.blake2b(digest_size=16)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    for f in files:
        _hash_file(h, f)
    return f"blake2b:{h.hexdigest()}"


@contextlib.contextmanager
def claim(output: str | os.PathLike) -> Iterator[bool]:
    """Lock ``output`` for this process; yields False when another process holds it.

    The lock is ``.<name>.lock`` beside the output (``flock``), removed on release.
    Raises :class:`~fusedem.io._atomic.WriteError` naming the folder when it cannot
    take the lock file (read-only, full).
    """
    out = Path(output)
    lock = out.with_name(f".{out.name}.lock")
    while True:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise write_error(out, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                yield False
                return
            raise
        try:  # the holder before us may have removed the file: lock the current one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
