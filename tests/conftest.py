"""Shared fixtures. GUI tests need napari and a (virtual) screen: tools/run_tests.sh
runs pytest under Xvfb; a missing napari is an error, never a silent skip."""
from __future__ import annotations

import pytest


@pytest.fixture
def viewer(qtbot):
    """A real napari viewer (not shown), closed after the test."""
    import napari

    v = napari.Viewer(show=False)
    yield v
    v.close()
