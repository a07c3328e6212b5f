"""Options shared by several commands, so every command spells them the same way."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_command(subparsers, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` ends with ``examples``."""
    return subparsers.add_parser(
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_weights_args(parser: argparse.ArgumentParser) -> None:
    """``--weights PATH`` and ``--untrained-seed N``."""
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="EmoNet weights file (emonet-pytorch or emonet-py state dict); "
        "without it, deterministic untrained weights are used",
    )
    parser.add_argument(
        "--untrained-seed",
        type=int,
        default=0,
        help="seed of the untrained weights used when --weights is not given (default 0)",
    )


def add_study_args(parser: argparse.ArgumentParser) -> None:
    """``--study DIR`` (default: the embedded study) and ``--mask``."""
    parser.add_argument(
        "--study",
        type=Path,
        default=None,
        help="study folder (default: the embedded demo study, created offline on first use)",
    )
    parser.add_argument(
        "--mask",
        default="occipital",
        help="region: occipital (default), v1, v2, v3, v4, inferotemporal, whole-brain, or a NIfTI path",
    )
    parser.add_argument(
        "--features",
        type=Path,
        default=None,
        help="precomputed features (.npz with one array per layer + stimulus_ids, or .tsv) "
        "instead of extracting them from the stimuli",
    )


def add_output_args(parser: argparse.ArgumentParser, default: str = "brainnet_results") -> None:
    """``--out DIR`` and ``--overwrite``."""
    parser.add_argument("--out", type=Path, default=Path(default), help=f"output folder (default {default})")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results in --out that were made with other parameters",
    )


def add_compute_args(parser: argparse.ArgumentParser) -> None:
    """``--seed`` and ``--n-jobs``."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="parallel workers (results do not depend on it)"
    )


def add_scheduler_arg(parser: argparse.ArgumentParser) -> None:
    """``--scheduler ADDRESS``: run permutations and bootstraps on a Dask cluster."""
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (e.g. tcp://host:8786) to run permutation and bootstrap "
        "batches on; results are identical to a single-process run",
    )


def notice(message: str) -> None:
    """Print a one-line notice for the user on stderr."""
    print(f"brainnet: {message}", file=sys.stderr)


def notice_if_untrained(args: argparse.Namespace) -> None:
    """The one-line notice of every network command run without a weights file."""
    if args.weights is None and getattr(args, "features", None) is None:
        notice(
            f"using untrained EmoNet weights (untrained-seed{args.untrained_seed}); pass --weights PATH "
            "for the trained model (see 'brainnet fetch weights')"
        )


def notice_if_embedded_study(args: argparse.Namespace) -> None:
    """The one-line notice of every study command run without ``--study``."""
    if getattr(args, "study", None) is None:
        notice(
            "no --study given: using the embedded SIMULATED demo study (planted signal, not real "
            "fMRI); pass --study DIR for your data"
        )


def check_at_least(args: argparse.Namespace, minimum: int, *options: str) -> None:
    """Refuse count options (``--permutations`` …) below ``minimum`` with a one-line error."""
    from brainnet.errors import BrainnetError

    for option in options:
        value = getattr(args, option)
        if value < minimum:
            flag = f"--{option.replace('_', '-')}"
            raise BrainnetError(f"{flag} {value}: must be {minimum} or more; pass {flag} {minimum} or a larger number")


def split_list(value: str | None) -> list[str] | None:
    """``"01, 02"`` -> ``["01", "02"]``; None or empty -> None."""
    items = [item.strip() for item in value.split(",") if item.strip()] if value else []
    return items or None
