"""Chemical element symbols and atomic numbers (H through U)."""
from __future__ import annotations

import re

_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni "
    "Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe "
    "Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg "
    "Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U"
).split()

#: Element symbol -> atomic number Z, for H (1) through U (92).
ATOMIC_NUMBERS: dict[str, int] = {s: z for z, s in enumerate(_SYMBOLS, start=1)}

_SUFFIX = re.compile(r"^([A-Za-z]{1,2})(?:[\s_\-].*)?$")


def normalize_symbol(name: str) -> str:
    """Canonical symbol for ``name`` ('dy' -> 'Dy', 'Co-EELS' -> 'Co', 'O_K' -> 'O').

    Raises ValueError when ``name`` is not an element symbol from H to U.
    """
    sym = element_symbol_or_none(name)
    if sym is None:
        raise ValueError(
            f"unknown element {name!r}: expected a chemical symbol from H to U "
            "(e.g. 'Sc', 'Dy', 'O'), optionally with a suffix such as 'Co-EELS'"
        )
    return sym


def element_symbol_or_none(name: str) -> str | None:
    """Like :func:`normalize_symbol` but returns None for names that are not elements."""
    if not isinstance(name, str):
        return None
    m = _SUFFIX.match(name.strip())
    if not m:
        return None
    sym = m.group(1).capitalize()
    return sym if sym in ATOMIC_NUMBERS else None


def atomic_number(name: str) -> int:
    """Atomic number Z of an element symbol (case-insensitive, suffixes allowed)."""
    return ATOMIC_NUMBERS[normalize_symbol(name)]


#: Display colour (RGB, 0-1) of commonly mapped elements: one element, one colour in every
#: layer, panel and figure (as vendor software keeps a fixed table). Elements measured
#: together in common samples get distinct hues (Sc/Dy/O, Co/Mn/O, Fe/Co/O, Cu/Ca/C/O,
#: Cu/Pd/Ti/O, Si/Al/Mg/Ca/Fe/K/Na/O).
ELEMENT_COLOURS: dict[str, tuple[float, float, float]] = {
    "O": (0.25, 0.65, 1.0), "N": (0.55, 0.55, 1.0), "C": (1.0, 0.85, 0.2),
    "Sc": (0.25, 1.0, 0.25), "Dy": (1.0, 0.3, 0.85), "Co": (1.0, 0.25, 0.25),
    "Mn": (0.35, 1.0, 0.35), "Fe": (1.0, 0.6, 0.1), "Cu": (1.0, 0.4, 0.2),
    "Ca": (0.3, 1.0, 0.8), "Ti": (0.25, 0.95, 0.95), "Pd": (0.75, 0.45, 1.0),
    "Si": (1.0, 0.95, 0.35), "Al": (0.6, 0.8, 1.0), "Mg": (0.55, 1.0, 0.4),
    "Na": (1.0, 0.55, 0.7), "K": (0.85, 0.6, 1.0), "Ni": (0.3, 0.9, 0.6),
    "Zn": (0.6, 0.6, 1.0), "Sr": (1.0, 0.75, 0.3), "Ba": (0.45, 1.0, 0.7),
    "La": (0.95, 0.45, 0.45), "Pt": (0.9, 0.9, 0.6), "Au": (1.0, 0.8, 0.15),
    "Ag": (0.8, 0.85, 0.95), "Ga": (0.5, 1.0, 0.5), "As": (1.0, 0.5, 0.85),
    "In": (0.4, 0.8, 1.0), "P": (1.0, 0.6, 0.3), "S": (1.0, 1.0, 0.3), "Cl": (0.4, 1.0, 0.4),
    "Hf": (0.7, 0.7, 1.0), "Zr": (0.45, 0.95, 0.9), "Nb": (0.6, 0.95, 0.8),
    "Ta": (0.55, 0.65, 1.0), "W": (0.4, 0.6, 0.95), "Cr": (0.6, 1.0, 0.3),
    "V": (0.9, 0.5, 0.9), "Ce": (1.0, 0.7, 0.5), "Gd": (0.7, 1.0, 0.9), "Ge": (0.6, 0.9, 0.6),
}


def element_colour(name: str) -> tuple[float, float, float]:
    """The fixed display colour (RGB in 0-1) of an element ('Co-EELS' -> Co's colour).

    Elements outside :data:`ELEMENT_COLOURS` get a saturated hue derived from Z (golden-
    angle steps), so their colour, too, is the same in every file. ValueError for a name
    that is not an element.
    """
    import colorsys

    sym = normalize_symbol(name)
    if sym in ELEMENT_COLOURS:
        return ELEMENT_COLOURS[sym]
    hue = (ATOMIC_NUMBERS[sym] * 0.6180339887) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.7, 1.0)
    return (round(r, 3), round(g, 3), round(b, 3))
