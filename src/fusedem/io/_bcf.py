"""Bruker .bcf files, read so that a damaged file cannot take the process down.

Two guards around RosettaSciIO's compiled hypermap parser, which trusts the file:

1. :func:`~fusedem.io._sfs.check_sfs` checks the container's declared sizes and
   chunk tables against the file (well under a millisecond);
2. the spectrum image itself is parsed in a child Python process; a crash there
   (SIGSEGV on data the structural check cannot judge) becomes a
   :class:`ReadError` naming the file. The header and images are read here.

With ``lazy=True`` the child runs when the spectrum image is first computed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._dataset import ReadError
from ._sfs import check_sfs

#: Run by the child: parse the default spectrum image of argv[1] into the .npy argv[2].
_CHILD = (
    "import sys, numpy as np\n"
    "from rsciio.bruker import file_reader\n"
    "sig = file_reader(sys.argv[1], select_type='spectrum_image', lazy=False)\n"
    "np.save(sys.argv[2], np.asarray(sig[0]['data']))\n"
)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def parse_spectrum_image(path: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The (ny, nx, n_energy) spectrum image of ``path``, parsed in a child process.

    Raises :class:`ReadError` naming the file when the parser fails or crashes.
    """
    with tempfile.TemporaryDirectory(prefix="fusedem-bcf-") as tmp:
        out = os.path.join(tmp, "si.npy")
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), out],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode < 0:
            raise ReadError(f"{path}: damaged Bruker file: the spectrum-image parser crashed "
                            f"({_signal_name(proc.returncode)}) on its data")
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise ReadError(f"{path}: cannot read the spectrum image, the file may be truncated "
                            f"or corrupt ({last})")
        data = np.load(out)
    if data.shape != tuple(shape):
        raise ReadError(f"{path}: spectrum image has shape {data.shape}, the header says {tuple(shape)}")
    return data.astype(dtype, copy=False)


def read_bcf(path: Path, lazy: bool) -> list[dict]:
    """RosettaSciIO signal dicts of a .bcf, the spectrum image parsed out of process."""
    import dask
    import dask.array as da
    from rsciio.bruker import file_reader

    check_sfs(path)
    signals = file_reader(str(path), select_type=None, lazy=True)  # header + images only
    for sig in signals:
        data = sig["data"]
        if isinstance(data, da.Array):
            if data.ndim != 3:  # pragma: no cover - rsciio makes images eagerly
                sig["data"] = np.asarray(data)
                continue
            shape, dtype = tuple(data.shape), data.dtype
            if lazy:
                task = dask.delayed(parse_spectrum_image, pure=True)(str(path), shape, dtype)
                sig["data"] = da.from_delayed(task, shape=shape, dtype=dtype)
            else:
                sig["data"] = parse_spectrum_image(str(path), shape, dtype)
    return signals
