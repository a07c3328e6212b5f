"""``brainnet figures``: regenerate every figure from saved results."""

from __future__ import annotations

import warnings
from pathlib import Path

from brainnet.cli._common import add_command, notice

EXAMPLES = """  brainnet figures                                  figures of ./brainnet_results
  brainnet figures --results my_results --format svg
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "figures": "regenerate every figure from saved results (PNG + PDF/SVG) into <results>/figures/",
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "figures", COMMANDS["figures"], EXAMPLES)
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("brainnet_results"),
        help="results folder: the --out of brainnet encode/decode/rsa/power (default brainnet_results)",
    )
    parser.add_argument(
        "--format",
        choices=("pdf", "svg"),
        default="pdf",
        help="vector format written next to each PNG (default pdf)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.plotting import FigureSkipped, make_figures

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FigureSkipped)
        paths = make_figures(args.results, formats=("png", args.format))
    for warning in caught:
        if issubclass(warning.category, FigureSkipped):
            notice(str(warning.message))
    n_figures = len({p.with_suffix("") for p in paths})
    print(f"wrote {n_figures} figures ({len(paths)} files) to {args.results / 'figures'}")
    return 0
