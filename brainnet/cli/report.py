"""``brainnet report``: one self-contained HTML page of saved results."""

from __future__ import annotations

import warnings
from pathlib import Path

from brainnet.cli._common import add_command, notice

EXAMPLES = """  brainnet report                                   writes brainnet_results/report.html
  brainnet report --results my_results --out paper/report.html
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "report": (
        "write one self-contained HTML report (methods paragraph, tables, figures with captions, "
        "provenance) of saved results; figures already in <results>/figures are reused when up to date"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "report", COMMANDS["report"], EXAMPLES)
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("brainnet_results"),
        help="results folder: the --out of brainnet encode/decode/rsa/power (default brainnet_results)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="HTML file to write (default <results>/report.html)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.plotting import FigureSkipped
    from brainnet.report import write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FigureSkipped)
        path = write_report(args.results, out=args.out)
    for warning in caught:
        if issubclass(warning.category, FigureSkipped):
            notice(str(warning.message))
    print(f"wrote {path} (open it in any browser; it needs no server)")
    return 0
