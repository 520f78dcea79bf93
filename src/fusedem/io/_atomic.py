"""Atomic, checked file writes: a temporary file in the target folder, then a rename.

Every failure is a :class:`WriteError` (an OSError) whose message names the file
or folder and the plain reason ("no space left on device", "read-only file
system"); the temporary file never stays behind.
"""
from __future__ import annotations

import errno
import glob
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class WriteError(OSError):
    """A failed write; ``str()`` is the plain message naming the file or folder."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_error(path: Path, exc: OSError) -> WriteError:
    """An OSError whose message names ``path`` (or its folder) and the plain reason."""
    reason = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}.get(exc.errno or 0, exc.strerror or str(exc))
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        msg = f"cannot write to {path.parent}: {reason}"
    else:
        msg = f"cannot write {path}: {reason}"
    return WriteError(exc.errno, msg)


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files a killed writer of ``path`` left behind (``.<name>.*.tmp``)."""
    path = Path(path)
    try:
        return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return []


def atomic_write(path: Path, overwrite: bool, write: Callable[[], bytes]) -> Path:
    """Write the bytes ``write()`` builds to a temporary file of ``path``'s folder, then
    rename it to ``path``.

    The bytes go to disk in plain Python writes (``write`` builds them in memory),
    so a full disk is an OSError naming the file ("no space left on device"),
    never a crash inside a library; the temporary file is always removed.
    """
    def write_to(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(write())
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write_file(path, overwrite, write_to)


def atomic_write_file(path: Path, overwrite: bool, write_to: Callable[[Path], None]) -> Path:
    """Like :func:`atomic_write` for writers that need a file name (h5py, mrcfile, tifffile
    on volumes too large to build in memory): ``write_to(tmp)`` writes the temporary file of
    ``path``'s folder, which is then renamed to ``path``; it never stays behind."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; refusing to overwrite it "
                              "(choose another name or pass overwrite=True)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        write_to(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write (or replace) a small UTF-8 text file atomically; raises :class:`WriteError`."""
    return atomic_write(Path(path), True, lambda: text.encode("utf-8"))
