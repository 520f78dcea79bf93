"""Test data: what ships in ``tests/data`` and the optional real instrument files.

:data:`PUBLISHED` (the published tutorial algorithm's outputs) is part of the
repository. The vendor files (Velox, Bruker, Gatan) are not: tests that need them
skip with a reason naming the folder when absent; the suite's own synthetic
fixtures cover the same code paths. Looked up in the FUSEDEM_SHARED_DATA
environment variable when it is set (set it to an empty folder to run without),
else in ``shared/data`` beside the repository folder (the team's workspace layout).
"""
from __future__ import annotations

import os
from pathlib import Path

_ENV = os.environ.get("FUSEDEM_SHARED_DATA")  # when set, the only place looked at
SHARED_DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[2] / "shared" / "data"
#: optional real instrument files (the folder looked at, whether or not it exists)
VENDOR = SHARED_DATA / "vendor"
#: shipped with the repository (tests/data/README.md)
PUBLISHED = Path(__file__).resolve().parent / "data"
