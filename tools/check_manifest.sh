#!/usr/bin/env bash
# Check the napari manifest and the packaging:
#  1. npe2 validates the manifest and imports every python_name (--imports);
#  2. a wheel built from the tree contains fusedem/napari.yaml and the data files;
#  3. installed from that wheel (not editable), npe2 lists fusedem's readers,
#     writer, sample data and widgets.
# Usage: tools/check_manifest.sh   (exit status 0 when all checks pass; SKIP_VALIDATE=1 skips step 1)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NPE2=${NPE2:-$(dirname "$PY")/npe2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "${SKIP_VALIDATE:-0}" != 1 ]; then
  echo "== npe2 validate fusedem --imports"
  "$NPE2" validate fusedem --imports
fi

echo "== build wheel"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" . >/dev/null
WHEEL=$(ls "$WORK"/dist/fusedem-*.whl)
echo "$WHEEL"
"$PY" - "$WHEEL" <<'PYEOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["fusedem/napari.yaml", "fusedem/data/PTO_Trilayer_dataset.npz", "fusedem/data/Co3O4_Mn3O4.h5",
        "fusedem/data/LICENSE-tutorial-data.txt", "fusedem/napari/_reader.py", "fusedem/io/__init__.py"]
missing = [n for n in need if n not in names]
eps = [n for n in names if n.endswith("entry_points.txt")]
ep = zipfile.ZipFile(sys.argv[1]).read(eps[0]).decode() if eps else ""
if missing or "fusedem = fusedem:napari.yaml" not in ep:
    sys.exit(f"wheel incomplete: missing {missing}, napari.manifest entry point present: {'napari.yaml' in ep}")
print("wheel contains the manifest, the napari glue and the data files")
PYEOF

echo "== npe2 on a normal (non-editable) install of the wheel"
"$PY" -m pip install -q --no-deps --no-compile --target "$WORK/site" "$WHEEL"
PYTHONPATH="$WORK/site" "$PY" - "$WORK/site" <<'PYEOF'
import sys
import fusedem
assert fusedem.__file__.startswith(sys.argv[1]), f"imported {fusedem.__file__}, not the wheel's copy"
from npe2 import PluginManager
pm = PluginManager()
pm.discover()
mf = pm.get_manifest("fusedem")
c = mf.contributions
assert len(c.readers) == 3 and len(c.writers) == 2, (c.readers, c.writers)
assert {s.key for s in c.sample_data} == {"dysco3", "co3o4_mn3o4", "tomo_core_shell"}
assert len(c.widgets) >= 1
from fusedem.napari._sample_data import dysco3
assert [t[1]["name"] for t in dysco3()] == ["HAADF", "Sc", "Dy", "O"]
print(f"installed wheel: {len(c.readers)} readers, {len(c.writers)} writers, "
      f"{len(c.sample_data)} samples, {len(c.widgets)} widgets; sample data loads")
PYEOF
echo "manifest and packaging OK"
