"""EDS mode of the spectrum panel: X-ray line plans per typed element and their summary.

The maths is :func:`fusedem.spectra.plan_lines`; this module plans per typed
element (collecting one message per element that fails) and words the result.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..spectra import EnergyAxis, LineWindows, plan_lines
from ._spectrum_plot import line_label


def plan(tokens: Iterable[str], axis: EnergyAxis,
         settings: Mapping[str, Any]) -> tuple[dict[str, LineWindows], list[str]]:
    """Lines of the typed elements that fit (planned together, for overlaps), and problems."""
    good, problems = [], []
    for token in tokens:
        try:
            plan_lines([token], axis, **settings)
            good.append(token)
        except ValueError as exc:
            problems.append(str(exc))
    return (plan_lines(good, axis, **settings) if good else {}), problems


def summary(lines: Mapping[str, LineWindows], problems: list[str]) -> tuple[str, str]:
    """(text, level) for the status line; level is 'error', 'warn' or 'ok'."""
    if problems:
        return "; ".join(problems), "error"
    if not lines:
        return "Type element symbols, e.g. 'Cu O Ti'.", "warn"
    text = ", ".join(f"{line_label(lw)} {lw.energy_kev:.3f} keV" for lw in lines.values())
    overlaps = [f"{line_label(lw)} overlaps {', '.join(lw.overlaps)}"
                for lw in lines.values() if lw.overlaps]
    if overlaps:
        return f"{text}. ⚠ {'; '.join(overlaps)}: maps include both lines.", "warn"
    return text, "ok"
