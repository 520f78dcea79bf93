"""EDS settings from RosettaSciIO metadata (beam energy, resolution, elements)."""
from __future__ import annotations

from typing import Any, Mapping

from ..elements import element_symbol_or_none


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    return d


def eds_settings(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """{'beam_energy_kv', 'resolution_ev', 'elements'} from a RosettaSciIO metadata dict.

    Looks under Acquisition_instrument.TEM/SEM (beam_energy in kV,
    Detector.EDS.energy_resolution_MnKa in eV) and Sample.elements; missing
    values are None / [].
    """
    out: dict[str, Any] = {"beam_energy_kv": None, "resolution_ev": None, "elements": []}
    for mic in ("TEM", "SEM"):
        inst = _get(metadata, "Acquisition_instrument", mic)
        if inst is None:
            continue
        if out["beam_energy_kv"] is None and _get(inst, "beam_energy") is not None:
            out["beam_energy_kv"] = float(_get(inst, "beam_energy"))
        res = _get(inst, "Detector", "EDS", "energy_resolution_MnKa")
        if out["resolution_ev"] is None and res is not None:
            out["resolution_ev"] = float(res)
    els = _get(metadata, "Sample", "elements") or []
    syms = [element_symbol_or_none(str(e)) for e in els]
    out["elements"] = [s for s in dict.fromkeys(syms) if s is not None]
    return out
