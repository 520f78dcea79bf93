"""Sample data: the two tutorial datasets shipped in ``fusedem/data``, and a synthetic
tilt series made at open time (tomography)."""
from __future__ import annotations

from importlib.resources import as_file, files
from typing import Any

from ..io import load
from .layers import dataset_to_layer_data


def _sample(filename: str, label: str, preset: str) -> list[tuple[Any, dict, str]]:
    """The sample's layers; each carries the name of its published parameter preset, which
    the fusion panel applies when the sample's HAADF is chosen."""
    with as_file(files("fusedem") / "data" / filename) as path:
        ds = load(path)
    for ly in ds.layers:
        ly.metadata["source"] = f"fusedem sample data: {label} ({filename})"
        ly.metadata["preset"] = preset
    return dataset_to_layer_data(ds)


def dysco3() -> list[tuple[Any, dict, str]]:
    """DyScO3, atomic-resolution X-EDS: HAADF + Sc, Dy, O maps (256 x 256, no pixel size)."""
    return _sample("PTO_Trilayer_dataset.npz", "DyScO3 (X-EDS, atomic resolution)", "dysco3")


def co3o4_mn3o4() -> list[tuple[Any, dict, str]]:
    """Co3O4-Mn3O4 core-shell nanoparticles, EELS: HAADF + Co, Mn, O maps (400 x 400)."""
    return _sample("Co3O4_Mn3O4.h5", "Co3O4-Mn3O4 nanoparticles (EELS)", "co3o4_mn3o4")


def tomo_core_shell() -> list[tuple[Any, dict, str]]:
    """Synthetic tilt series of Au-core / Fe-O-shell particles on a C film (64³ voxels),
    simulated at open time by :func:`fusedem.tomo.phantoms.simulate`: 43 HAADF tilts and
    11 chemical tilts over ±70°, Poisson counts; uncalibrated pixels."""
    from ..tomo import phantoms
    from ..tomo.io import TiltSeries
    from ._tomo_layers import tilt_layer_data

    _, sim = phantoms.simulate("core_shell", n=64, dose=4.0, oversample=1, seed=0)
    series = TiltSeries(sim.haadf, sim.haadf_angles, dict(sim.maps), sim.chem_angles,
                        source="fusedem sample data: synthetic core-shell tilt series "
                        "(fusedem.tomo.phantoms, 64³)")
    return tilt_layer_data(series)
