"""Seconds from "fusion panel opened" to its first live frame (issue 11, item 17).

Each measurement runs in a fresh Python process, as a new napari session does, with
the DyScO3 sample open and Run pressed the moment the panel exists (the worst case: the
kernels are still loading). ``--fresh`` gives it an empty numba cache (a first run on a
computer: the kernels are compiled); otherwise the cache in ``NUMBA_CACHE_DIR`` (filled
by the first of the runs) is warm. Needs a screen (use xvfb-run)::

    xvfb-run -a python benchmarks/first_frame.py --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, time
import napari
from qtpy.QtWidgets import QApplication
viewer = napari.Viewer(show=False)
viewer.open_sample("fusedem", "dysco3")
from fusedem.napari.fusion_widget import FusionWidget
from fusedem.napari._run_controller import KernelLoader
t0 = time.perf_counter()
panel = FusionWidget(viewer)              # the panel opens: kernels start loading
opened = time.perf_counter() - t0
delay = float(os.environ["DELAY"])        # the user looks at the panel, then presses Run
while time.perf_counter() - t0 < delay:
    QApplication.processEvents()
    time.sleep(0.01)
pressed = time.perf_counter() - t0
assert panel.run()
while panel.progress.value == 0:          # the first frame sets the progress bar
    QApplication.processEvents()
    time.sleep(0.002)
first = time.perf_counter() - t0
print(json.dumps({"panel_s": opened, "first_frame_s": first, "run_s": pressed,
                  "load_s": KernelLoader.seconds}))
panel.stop()
viewer.close()
"""


def measure(cache: str, delay: float) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "DELAY": str(delay)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="warm-cache runs (default 3)")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="seconds between the panel opening and Run (default 0: at once)")
    args = ap.parse_args()

    def show(kind: str, r: dict) -> None:
        print(f"{kind}: panel opened -> first live frame {r['first_frame_s']:.2f} s; Run pressed "
              f"at {r['run_s']:.2f} s -> first frame after {r['first_frame_s'] - r['run_s']:.2f} s "
              f"(kernels ready {r['load_s']:.2f} s after opening)")

    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        show("fresh cache", measure(cache, args.delay))  # empty: compiles and fills it
        for _ in range(args.repeat):
            show("warm cache ", measure(cache, args.delay))


if __name__ == "__main__":
    main()
