#!/usr/bin/env bash
# Run the whole test suite under a virtual screen (Xvfb), so the napari tests run for real.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.venv/numba-cache}"
if [ -n "${DISPLAY:-}" ]; then
  exec $PY -m pytest -ra "$@"
fi
if ! command -v xvfb-run >/dev/null 2>&1; then
  echo "error: xvfb-run not found; run 'make sysdeps' as root or install Debian's xvfb" >&2
  exit 1
fi
exec xvfb-run -a -s "-screen 0 1280x1024x24" $PY -m pytest -ra "$@"
