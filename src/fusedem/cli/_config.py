"""Parameters from presets, TOML files and command-line options; crop parsing.

Precedence (lowest first): ``FusionParams()`` defaults, ``--preset`` (or the
config file's ``preset``), the config file's ``[params]`` table, single
``--lambda-chem``-style options.

Config file layout (every key optional)::

    preset = "dysco3"
    elements = ["Sc", "Dy", "O"]
    crop = "0:128,0:256"
    format = "h5"

    [params]
    lambda_chem = 0.08
    background_threshold = "none"   # "none" for the optional fields
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..params import (MAP_SCALINGS, POISSON_STEPS, POISSON_WEIGHTS, PRESETS, TV_SOLVERS,
                      WEIGHTINGS, FusionParams)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PARAMS_FILE = "fusedem_params.toml"
TOP_KEYS = ("preset", "elements", "crop", "format", "auto", "params", "chosen")
FORMATS = ("h5", "tiff")

Crop = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


class UsageError(Exception):
    """A usage or configuration problem: reported in one line, exit status 2."""


class CropError(ValueError):
    """A crop that does not fit the image."""


# ---------------------------------------------------------------- options
def _field_type(name: str, cls: type = FusionParams) -> type:
    hints = typing.get_type_hints(cls)
    t = hints[name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if typing.get_origin(t) is typing.Literal:
        return str
    return args[0] if args and typing.get_origin(t) is not None else t


class _NoneValue:
    """Marks an explicit 'none' on the command line (None itself means unset)."""

    def __repr__(self) -> str:
        return "none"


NONE = _NoneValue()


def per_element(text: str) -> dict[str, float]:
    """'O=0.6,Sc=0.1' -> {'O': 0.6, 'Sc': 0.1} (the --lambda-tv-elements option)."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        sym, sep, val = item.partition("=")
        try:
            if not sep or not sym.strip():
                raise ValueError
            out[sym.strip()] = float(val)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected ELEMENT=VALUE[,ELEMENT=VALUE...], got {text!r}") from None
    return out


def _none_or(kind: type):
    def conv(text: str):
        if text.strip().lower() in ("none", "auto", ""):
            return NONE
        return kind(text)

    conv.__name__ = kind.__name__
    return conv


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_param_options(parser: argparse.ArgumentParser, cls: type = FusionParams,
                      params_file: str = PARAMS_FILE) -> None:
    """One ``--field-name`` option per field of the parameters dataclass ``cls``
    (:class:`FusionParams`, or :class:`fusedem.tomo.TomoParams`; default: unset)."""
    g = parser.add_argument_group("fusion parameters (override preset and --config)")
    if cls is FusionParams:
        g.add_argument("--preset", choices=sorted(PRESETS), help="start from a tutorial preset")
    g.add_argument("--config", type=Path, metavar="TOML", help="read options from a TOML file")
    g.add_argument("--auto", action="store_true", default=None,
                   help="choose lambda_chem, lambda_tv and n_iter from each input's data "
                   "(held-out validation; the other parameters as given); the choices are "
                   f"written to the result files and to {params_file}")
    defaults = cls()
    optional = {f.name for f in dataclasses.fields(cls) if f.default is None}
    choices = {"weighting": WEIGHTINGS, "tv_solver": TV_SOLVERS, "map_scaling": MAP_SCALINGS,
               "poisson_step": POISSON_STEPS, "poisson_weights": POISSON_WEIGHTS,
               "haadf_gain": ("fixed", "fit")}
    for f in dataclasses.fields(cls):
        kind = _field_type(f.name, cls)
        if f.name == "lambda_tv_elements":
            kind = per_element
        elif kind not in (bool, int, float, str):
            continue  # nested settings: config file only
        conv: Any = _bool if kind is bool else kind
        if f.name in optional:
            conv = _none_or(kind)
        g.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, type=conv, default=None,
            choices=choices.get(f.name),
            metavar=None if f.name in choices else ("EL=VALUE,..." if kind is per_element
                                                    else kind.__name__.upper()),
            help=f"default {getattr(defaults, f.name)!r}" + (" ('none' allowed)" if f.name in optional else ""),
        )


# ---------------------------------------------------------------- TOML
def read_config(path: Path, allowed: Sequence[str] = TOP_KEYS) -> dict[str, Any]:
    """Parse and check a config file (top-level keys ``allowed``); raises UsageError naming
    the file and problem."""
    try:
        with open(path, "rb") as fh:
            cfg = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a valid TOML file ({exc})") from None
    unknown = set(cfg) - set(allowed)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {list(allowed)}")
    if "params" in cfg and not isinstance(cfg["params"], dict):
        raise UsageError(f"{path}: 'params' must be a table ([params])")
    return cfg


def _from_toml(params: Mapping[str, Any], cls: type = FusionParams) -> dict[str, Any]:
    optional = {f.name for f in dataclasses.fields(cls) if f.default is None}
    out = {}
    for k, v in params.items():
        if k in optional and isinstance(v, str) and v.lower() in ("none", "auto"):
            v = None
        out[k] = v
    return out


def resolve_params(args: argparse.Namespace, cfg: Mapping[str, Any], source: str = "",
                   cls: type = FusionParams) -> Any:
    """Combine preset, config ``[params]`` and options into a ``cls`` (FusionParams or
    TomoParams); raises UsageError."""
    where = f"{source}: " if source else ""
    preset = getattr(args, "preset", None) or cfg.get("preset")
    try:
        p = cls.preset(preset) if preset else cls()
        if cfg.get("params"):
            p = p.replace(**_from_toml(cfg["params"], cls))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}{exc}") from None
    cli = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
    cli = {k: (None if v is NONE else v) for k, v in cli.items() if v is not None}
    try:
        return p.replace(**cli) if cli else p
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} to TOML")


def params_toml(params: FusionParams, *, elements: Sequence[str] | None = None,
                crop: Crop | None = None, fmt: str | None = None,
                comment: Sequence[str] = (), auto: bool = False,
                chosen: Mapping[str, Mapping[str, Any]] | None = None,
                extra: Mapping[str, Any] | None = None,
                repeat: str = "fusedem fuse|batch INPUT... -o OUTDIR --config THIS_FILE") -> str:
    """The TOML text of a run's parameters (readable back by ``--config``).

    With ``auto``, ``[params]`` holds the fixed parameters and ``[chosen."<input>"]``
    what the automatic choice picked for each input (informational). ``extra``: more
    top-level keys (``fusedem tomo``'s slices, slab ...); ``repeat``: the command to rerun.
    """
    from .. import __version__

    lines = [f"# fusedem {__version__} parameters, written {_dt.datetime.now().isoformat(timespec='seconds')}"]
    lines += [f"# {c}" for c in comment]
    lines.append(f"# repeat with: {repeat}")
    if elements:
        lines.append(f"elements = {_toml_value(list(elements))}")
    if crop is not None:
        lines.append(f'crop = "{format_crop(crop)}"')
    if fmt:
        lines.append(f"format = {_toml_value(fmt)}")
    lines += [f"{k} = {_toml_value(v)}" for k, v in (extra or {}).items() if v is not None]
    if auto:
        lines.append("auto = true  # lambda_chem, lambda_tv, n_iter chosen per input from its data")
    lines += ["", "[params]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in params.to_dict().items()]
    for label, vals in (chosen or {}).items():
        lines += ["", f"[chosen.{_toml_value(label)}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in vals.items()]
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file through a temporary file and rename (OSError names the path)."""
    from ..io._atomic import write_text_atomic as write

    write(path, text)


def params_from_file(path: Path) -> FusionParams:
    """The FusionParams stored in a TOML file written by :func:`params_toml`."""
    cfg = read_config(path)
    try:
        return FusionParams.from_dict(_from_toml(cfg.get("params", {})))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- crop
def parse_crop(text: str | None) -> Crop | None:
    """``"y0:y1,x0:x1"`` (pixels, half-open; empty ends allowed) -> (y0, y1, x0, x1).

    Missing ends are stored as -1 and filled in by :func:`apply_crop_bounds`.
    """
    if text is None or text == "":
        return None
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or any(p.count(":") != 1 for p in parts):
        raise UsageError(f"--crop {text!r}: expected y0:y1,x0:x1 (pixels), e.g. 0:128,64:192")
    vals: list[int] = []
    for p in parts:
        for s, fill in zip(p.split(":"), (0, -1)):
            try:
                v = int(s) if s else fill
            except ValueError:
                raise UsageError(f"--crop {text!r}: {s!r} is not an integer") from None
            if s and v < 0:
                raise UsageError(f"--crop {text!r}: negative bounds are not allowed")
            vals.append(v)
    return (vals[0], vals[1], vals[2], vals[3])


def crop_bounds(crop: Crop, shape: tuple[int, ...]) -> Crop:
    """Check a crop against an image shape (..., ny, nx); raises CropError when outside."""
    ny, nx = shape[-2], shape[-1]
    y0, y1, x0, x1 = crop
    y1 = ny if y1 == -1 else y1
    x1 = nx if x1 == -1 else x1
    if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
        raise CropError(
            f"crop {format_crop(crop)} lies outside the image of {ny} x {nx} pixels "
            f"(valid: 0 <= y0 < y1 <= {ny}, 0 <= x0 < x1 <= {nx})"
        )
    return (y0, y1, x0, x1)


def format_crop(crop: Crop) -> str:
    y0, y1, x0, x1 = crop
    return f"{y0}:{'' if y1 == -1 else y1},{x0}:{'' if x1 == -1 else x1}"
