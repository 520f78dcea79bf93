"""Where the team's shared real datasets live (vendor files, published outputs).

Tests that need them skip with a reason when none is found; the suite's own
synthetic fixtures cover the same code paths. Looked up in order: the
FUSEDEM_SHARED_DATA environment variable, ``<repo>/../shared/data`` (the
workspace layout) and ``/work/shared/data``.
"""
from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    os.environ.get("FUSEDEM_SHARED_DATA"),
    Path(__file__).resolve().parents[2] / "shared" / "data",
    "/work/shared/data",
]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), Path("/nonexistent"))
VENDOR = SHARED_DATA / "vendor"
PUBLISHED = SHARED_DATA / "tutorial" / "published_algorithm_outputs"
