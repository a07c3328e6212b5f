"""The ``brainnet`` command line: argument parsing only.

Each command lives in a module of this package that defines
``register(subparsers)``; the module adds its parser(s) and sets
``func=<callable(args) -> int>``. Every command calls one public API
function; no science lives here.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from brainnet.errors import BrainnetError, BrainnetNotice

EPILOG = """examples:
  brainnet encode --subject 01          per-subject encoding on the embedded study
  brainnet decode                       group decoding of EmoNet units (the paper's Fig. 4)
  brainnet extract --stimuli imgs/ --layers fc7,fc8 --out acts.npz
  brainnet COMMAND --help               options and examples of one command
"""


ALL = "*"


def build_parser(command: str | None = ALL) -> argparse.ArgumentParser:
    """The ``brainnet`` parser.

    Parameters
    ----------
    command : str or None
        The command whose options are registered; the others are listed by name
        and help only, from their module's ``COMMANDS`` table, so that
        ``brainnet --help`` does not import the science behind every command.
        ``"*"`` (default) registers every command in full; None none.
    """
    from brainnet import __version__

    parser = argparse.ArgumentParser(
        prog="brainnet",
        description="Compare deep-network units (EmoNet and any PyTorch model) with fMRI.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"brainnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        commands = getattr(module, "COMMANDS", None)
        if commands is None or command == ALL or command in commands:
            module.register(subparsers)
        else:
            for name, text in commands.items():
                subparsers.add_parser(name, help=text, description=text)
    for sub in subparsers.choices.values():  # one --quiet for every command
        if "--quiet" not in sub._option_string_actions:
            sub.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainnet`` console script; returns the exit status."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # surface a closed pipe here, not at interpreter exit
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours, and no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    # Top-level options are flags only, so the first word is the command.
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from brainnet.cli._common import option_message

    try:
        return _call(args)
    except BrainnetError as err:
        print(f"brainnet {args.command}: error: {option_message(err, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"brainnet {args.command}: interrupted; finished work is saved, "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130


def _show_notice(message, category, filename, lineno, file=None, line=None):
    # Library notices become the CLI's one-line "brainnet: ..." messages; other warnings as usual.
    if issubclass(category, BrainnetNotice):
        print(f"brainnet: {message}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


_SHOW_WARNING = warnings.showwarning


def _call(args: argparse.Namespace) -> int:
    from brainnet.cli._common import check_common
    from brainnet.results import removed_on_refusal

    outputs = check_common(args)
    scheduler = getattr(args, "scheduler", None)
    with contextlib.ExitStack() as stack:
        for path in outputs:  # a refusal, however late, leaves --out as it was
            stack.enter_context(removed_on_refusal(path))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("always", BrainnetNotice)
        warnings.showwarning = _show_notice
        if not getattr(args, "quiet", False) and sys.stderr.isatty():
            from brainnet._progress import show_progress

            stack.enter_context(show_progress())  # every long step draws its bar
        if scheduler is not None:
            from brainnet.permutation import use_scheduler

            stack.enter_context(use_scheduler(scheduler))  # an unreachable address is a one-line error
        return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
