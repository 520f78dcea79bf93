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
