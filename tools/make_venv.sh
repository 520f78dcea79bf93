#!/usr/bin/env bash
# Create (or reuse) .venv and install fusedem with everything the demo and tests need.
# Usage: tools/make_venv.sh PYTHON
set -eu
cd "$(dirname "$0")/.."
PYTHON="${1:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian ships venv/ensurepip separately; install it when we may.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt-get install -y -q "python${ver}-venv" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null && apt-get install -y -q "python${ver}-venv" >/dev/null; }
      "$PYTHON" -m venv .venv
    else
      echo "error: '$PYTHON -m venv' failed; install the python3-venv package" >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[testing]"
# An older .venv also has PyQt5, which qtpy would still pick (napari warns that its PyQt5
# support is deprecated): remove it once PyQt6 is there.
if .venv/bin/python -c "import PyQt6" 2>/dev/null; then
  .venv/bin/python -m pip uninstall -q -y PyQt5 PyQt5-Qt5 PyQt5-sip 2>/dev/null || true
fi
