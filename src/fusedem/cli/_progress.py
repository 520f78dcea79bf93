"""tqdm progress bars that disappear with ``-q`` (or when tqdm is missing)."""
from __future__ import annotations

import sys
from typing import Any


class _Silent:
    """The subset of tqdm's interface the CLI uses, doing nothing."""

    total = 0

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, n: int = 1) -> None:
        pass

    def refresh(self) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    @staticmethod
    def write(s: str, file: Any = None) -> None:
        print(s, file=file or sys.stdout)


def progress(*, total: int, desc: str, unit: str, quiet: bool):
    """A tqdm bar on stderr, or a silent stand-in."""
    if quiet:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the cli extra
        return _Silent()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
