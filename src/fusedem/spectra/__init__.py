"""From EDS/EELS spectrum images to elemental maps (no napari/Qt imports).

>>> from fusedem.spectra import EnergyAxis, extract_maps
>>> res = extract_maps(si, EnergyAxis(offset=-0.475, scale=0.01, units="keV"),
...                    ["Cu", "O", "Pd", "Ti"], beam_energy_kv=200)
>>> res.maps["Cu"].shape, res.lines["Pd"].label        # ((64, 64), 'Pd_La')
"""
from .axis import EnergyAxis
from .eels import EdgeMaps, EdgeWindows, edge_onsets, extract_edge_maps, plan_edges
from .extract import (ExtractedMaps, as_spectrum_cube, bin_spatial, extract_maps, extract_with_windows,
                      sum_spectrum)
from .lines import (
    DEFAULT_RESOLUTION_EV,
    LineWindows,
    choose_line,
    fwhm_kev,
    line_energies,
    plan_lines,
)
from .meta import eds_settings
from .quant import Composition, cliff_lorimer, parse_kfactors
from .pca import PCADenoised, RankChoice, choose_rank, denoise_pca
from .thinning import extracted_map_splits, spectrum_splits, thin_counts, window_splits

__all__ = [
    "DEFAULT_RESOLUTION_EV",
    "EdgeMaps",
    "EdgeWindows",
    "Composition",
    "EnergyAxis",
    "ExtractedMaps",
    "LineWindows",
    "PCADenoised",
    "RankChoice",
    "as_spectrum_cube",
    "bin_spatial",
    "choose_line",
    "choose_rank",
    "cliff_lorimer",
    "denoise_pca",
    "eds_settings",
    "edge_onsets",
    "extract_edge_maps",
    "extract_maps",
    "extract_with_windows",
    "extracted_map_splits",
    "fwhm_kev",
    "line_energies",
    "parse_kfactors",
    "plan_edges",
    "plan_lines",
    "spectrum_splits",
    "sum_spectrum",
    "thin_counts",
    "window_splits",
]
