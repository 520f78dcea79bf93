"""The ``fusedem`` command line: ``fuse``, ``batch``, ``extract``, ``info``, ``tomo`` and ``demo``.

Exit status: 0 success, 1 some inputs failed (each named in the summary),
2 usage or configuration error, 130 interrupted. Set ``FUSEDEM_DEBUG=1`` for
tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._config import FORMATS, PARAMS_FILE, UsageError, add_param_options

EPILOG = f"""\
exit status: 0 ok, 1 some inputs failed, 2 usage/configuration error, 130 interrupted.
Every run with a result writes the parameters it used to OUTDIR/{PARAMS_FILE};
pass it back with --config to repeat the run exactly."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit status 2, one line, like argparse but no wall of usage
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _io_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files (.h5/.npz/.tif/.emd/.bcf/.dm4...), folders of TIFFs or glob patterns")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    p.add_argument("--elements", type=lambda s: [e for e in s.split(",") if e],
                   metavar="SYM,SYM", help="elements to fuse, in this order (default: all "
                   "maps); extracted from the EDS spectrum image when the file has no such maps")
    p.add_argument("--haadf", metavar="NAME", help="the structural image to fuse with, by name "
                   "(e.g. an SEM file's BSE/SE image; 'fusedem info' lists them; the Z^gamma "
                   "model is for HAADF/ADF, a BSE image is a rougher proxy)")
    p.add_argument("--crop", metavar="y0:y1,x0:x1", help="fuse only this region (pixels, half-open)")
    p.add_argument("--format", choices=FORMATS + ("tif",), help="output format (default h5)")
    p.add_argument("--no-inputs", dest="store_inputs", action="store_false",
                   help="do not copy the raw input maps into HDF5 results (the source path is kept)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute and replace existing outputs (default: keep complete ones)")
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="also write the summary (each input: status, reason, outputs) as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info; errors only")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the file readers' warnings (once each; default: their number)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to solve: auto (an NVIDIA GPU when usable, else the CPU; default), "
                   "cpu or cuda (pip install 'fusedem[cuda]')")
    _extract_options(p)
    _quant_options(p)
    add_param_options(p)


def _lines(text: str) -> dict[str, str]:
    pairs = [t.split("=", 1) for t in text.split(",") if t]
    if not all(len(p) == 2 and p[0] and p[1] for p in pairs):
        raise argparse.ArgumentTypeError(f"expected EL=LINE,... (e.g. Cu=La), got {text!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def _extract_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("maps from an EDS spectrum image (fusedem.spectra)")
    g.add_argument("--beam-kv", type=float, metavar="KV",
                   help="beam energy; lines are chosen below half of it (default: from the file)")
    g.add_argument("--fwhm-ev", type=float, metavar="EV",
                   help="detector FWHM at Mn Ka; windows are +-1 FWHM (default: file, else 130)")
    g.add_argument("--lines", type=_lines, metavar="EL=LINE,...",
                   help="force a line family per element, e.g. Pd=La,Cu=Ka")


def _kfactors(text: str) -> dict[str, float]:
    from ..spectra.quant import parse_kfactors

    try:
        return parse_kfactors(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _quant_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("composition (Cliff–Lorimer)")
    g.add_argument("--kfactors", type=_kfactors, metavar="El=k,...",
                   help="weight-fraction k-factors, one per fused element (e.g. Cu=1.0,O=2.1): "
                   "also write atomic-fraction maps of the fused maps (in the inputs' units)")
    g.add_argument("--min-counts", type=float, default=1.0, metavar="N",
                   help="with --kfactors: pixels whose summed signal is below N are masked "
                   "(set to 0 and counted; default 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``fusedem`` command."""
    from .. import __version__

    parser = _Parser(prog="fusedem", description="Fused multi-modal electron microscopy: "
                     "clean EDS/EELS elemental maps by fusing them with the HAADF image.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fusedem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    p = sub.add_parser("fuse", help="fuse datasets one after the other in this process",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _io_options(p)

    p = sub.add_parser("batch", help="fuse many datasets in parallel with Dask",
                       epilog=EPILOG + "\nA 3-D stack file (frame axis first) is a series of datasets.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _io_options(p)
    g = p.add_argument_group("Dask")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="use an existing dask.distributed scheduler (inputs and OUTDIR must be on a shared disk)")
    g.add_argument("--connect-timeout", type=float, default=20.0, metavar="S",
                   help="seconds to wait for --scheduler (default 20)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local cluster (default: one per GPU when solving on GPUs, "
                        "else one per free core)")
    g.add_argument("--numba-threads", type=int, metavar="N",
                   help="numba threads per worker (default: free cores / workers on a local cluster, "
                        "free = not busy with other processes)")
    g.add_argument("--dashboard", metavar="ADDR", help="serve the Dask dashboard, e.g. :8787")

    p = sub.add_parser("extract", help="extract elemental maps from EDS spectrum images; "
                       "write them with the HAADF as an .h5 bundle per file",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files with an EDS spectrum image")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    p.add_argument("--elements", type=lambda s: [e for e in s.split(",") if e], metavar="SYM,SYM",
                   help="elements to extract (default: those the file lists)")
    p.add_argument("--overwrite", action="store_true", help="replace existing bundles")
    p.add_argument("-q", "--quiet", action="store_true", help="errors only")
    _extract_options(p)

    p = sub.add_parser("info", help="show what the readers find in files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-stats", action="store_true", help="skip value ranges (faster on big files)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the reader's warnings")

    from ._tomo import add_tomo_parser

    add_tomo_parser(sub, EPILOG)

    p = sub.add_parser("demo", help="fuse the bundled DyScO3 sample; write maps and a PNG (replaces earlier demo files)")
    p.add_argument("-o", "--output", default="demo_output", metavar="OUTDIR")
    p.add_argument("--n-iter", type=int, default=None, metavar="N", help="outer iterations (default: preset)")
    p.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        if args.command == "fuse":
            from ._fuse import run_fuse

            return run_fuse(args)
        if args.command == "batch":
            from ._batch import run_batch

            return run_batch(args)
        if args.command == "extract":
            from ._extract import run_extract

            return run_extract(args)
        if args.command == "tomo":
            from ._tomo import run_tomo

            return run_tomo(args)
        if args.command == "info":
            from ._info import run_info

            return run_info(args)
        from ..demo import run_demo

        return run_demo(Path(args.output), n_iter=args.n_iter, quiet=args.quiet)
    except UsageError as exc:
        print(f"fusedem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fusedem: interrupted (finished outputs are kept; run again to resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("FUSEDEM_DEBUG"):
            raise
        print(f"fusedem: unexpected error: {type(exc).__name__}: {exc} "
              "(set FUSEDEM_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
