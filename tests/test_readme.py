"""The README's Python snippet runs as printed, in a fresh interpreter (so ``fusedem.io``
and ``fusedem.spectra`` must work after a bare ``import fusedem``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import fusedem

README = Path(__file__).resolve().parents[1] / "README.md"
#: where the fusedem under test was imported from: the subprocess imports the same one
SRC = str(Path(fusedem.__file__).resolve().parents[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [SRC, *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_readme_python_snippet_runs_as_printed(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no ```python block"
    proc = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "(256, 256)" in proc.stdout and "Ka" in proc.stdout


def test_subpackages_after_a_bare_import_without_napari():
    code = ("import sys, fusedem; assert 'fusedem.io' not in sys.modules; "
            "fusedem.io.load; fusedem.spectra.extract_maps; fusedem.cli.main; "
            "assert 'io' in dir(fusedem); "
            "bad = [m for m in ('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_all_extra_installs_the_qt_binding_napari_recommends():
    """napari deprecates PyQt5 (a warning on every start): ``fusedem[all]`` brings PyQt6."""
    import tomllib

    meta = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))
    extra = " ".join(meta["project"]["optional-dependencies"]["all"]).lower()
    assert "napari[pyqt6]" in extra and "pyqt5" not in extra
