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


def add_network_arg(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--network NAME`` (and, with ``several``, ``--networks A,B,C``)."""
    parser.add_argument(
        "--network",
        default=None,
        help="network with its own preprocessing: emonet (default), emonet-untrained, hf:FOLDER_OR_ID, "
        "head:HEAD.pt, torchvision:NAME, timm:NAME or a registered name; 'brainnet layers' lists its layers",
    )
    if several:
        parser.add_argument(
            "--networks",
            default=None,
            help="compare several networks side by side, e.g. emonet,emonet-untrained,hf:models/vit "
            "(every network x --layers, corrected across all of them)",
        )


def add_study_args(parser: argparse.ArgumentParser, default_mask: str = "occipital") -> None:
    """``--study DIR`` (default: the embedded study) and ``--mask`` (default ``default_mask``)."""
    parser.add_argument(
        "--study",
        type=Path,
        default=None,
        help="study folder (default: the embedded demo study, created offline on first use)",
    )
    parser.add_argument(
        "--mask",
        default=default_mask,
        help=f"region (default {default_mask}): an MNI atlas region for MNI data (occipital, v1, v2, v3, v4, "
        "inferotemporal, whole-brain); a region of each subject's own FreeSurfer parcellation for data in its own space "
        "(occipital-aparc, v1-aparc, inferotemporal-aparc, ventral-visual-aparc; needs "
        "sub-<label>/anat/sub-<label>_desc-aparcaseg_dseg.nii.gz in the study); a NIfTI path; or a path "
        "per subject with {subject} in it (masks/sub-{subject}_occipital.nii.gz)",
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
    network = getattr(args, "network", None)
    several = getattr(args, "networks", None)
    if several:
        uses_emonet = "emonet" in [n.strip() for n in several.split(",")]
    else:
        uses_emonet = network in (None, "emonet")
    if args.weights is None and getattr(args, "features", None) is None and uses_emonet:
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
    from brainnet._checks import check_count

    for option in options:
        check_count(getattr(args, option), _PARAMETERS.get(option, option), minimum)


# Python parameter -> argparse dest, where the option is not the parameter's own name.
_OPTIONS = {
    "n_permutations": "permutations",
    "n_bootstrap": "bootstrap",
    "n_cluster_draws": "cluster_draws",
    "n_flips": "flips",
    "n_components": "components",
    "n_pca": "pca",
    "n_folds": "folds",
    "n_repeats": "repeats",
    "subject_sizes": "sizes",
    "n_stimuli_sizes": "stimuli",
    "features_file": "features",
}
_PARAMETERS = {dest: parameter for parameter, dest in _OPTIONS.items()}


def option_message(err: Exception, args: argparse.Namespace) -> str:
    """The message of ``err``, with a Python parameter re-spelled as this command's option.

    A :class:`~brainnet._checks.ParameterError` about ``n_permutations``
    reads ``--permutations 5: ...`` on the command line; other errors are
    unchanged.
    """
    from brainnet._checks import ParameterError

    if not isinstance(err, ParameterError):
        return str(err)
    dest = _OPTIONS.get(err.parameter, err.parameter)
    if not hasattr(args, dest):
        return str(err)
    flag = "--" + dest.replace("_", "-")
    return err.render(lambda _parameter, value: f"{flag} {value}")


# Commands whose --out is a file rather than a results folder.
_FILE_OUTPUTS = {"extract", "report"}


def check_common(args: argparse.Namespace) -> list[Path]:
    """Check the options most commands share, before anything is read or written.

    ``--seed``, ``--untrained-seed`` and ``--n-jobs`` are checked once here
    for every command; ``--out`` must be a folder (or, for ``extract`` and
    ``report``, a file in a folder) that can be written. Returns the output
    paths whose new files are removed if the command is refused later.
    """
    from brainnet._checks import check_n_jobs, check_out, check_seed

    for dest in ("seed", "untrained_seed"):
        if hasattr(args, dest):
            check_seed(getattr(args, dest), dest)
    if hasattr(args, "n_jobs"):
        check_n_jobs(args.n_jobs)
    out = getattr(args, "out", None)
    if out is None:
        return []
    if args.command in _FILE_OUTPUTS:
        out = Path(out)
        if out.is_dir():
            from brainnet.errors import BrainnetError

            example = out / ("activations.npz" if args.command == "extract" else "report.html")
            raise BrainnetError(f"--out {out}: is a folder; give a file name, e.g. --out {example}")
        check_out(out.parent if str(out.parent) else Path("."))
        return [out, out.with_name(out.name + ".json")]
    return [check_out(out)]


def split_list(value: str | None) -> list[str] | None:
    """``"01, 02"`` -> ``["01", "02"]``; None or empty -> None."""
    items = [item.strip() for item in value.split(",") if item.strip()] if value else []
    return items or None


def several_networks(args, analysis: str, layers, subjects, **options) -> int:
    """``--networks``: every network x layer side by side (shared by rsa and encode)."""
    from brainnet.compare import compare_networks

    if args.network is not None or args.features is not None:
        from brainnet.errors import BrainnetError

        raise BrainnetError("--networks: give the networks there only (drop --network and --features)")
    result = compare_networks(
        args.study, split_list(args.networks), analysis=analysis, layers=layers, mask=args.mask,
        subjects=subjects, weights=args.weights, untrained_seed=args.untrained_seed,
        n_permutations=args.permutations, n_bootstrap=getattr(args, "bootstrap", 200),
        seed=args.seed, n_jobs=args.n_jobs, out=args.out, overwrite=args.overwrite, **options,
    )
    s = result.summary
    print(f"{s['n_networks']} networks, {s['n_tests']} network x layer scores ({s['score']}), {s['n_subjects']} "
          f"subjects x {s['n_stimuli']} stimuli; noise ceiling {s['noise_ceiling']['lower']:.3f}-"
          f"{s['noise_ceiling']['upper']:.3f}; p_FWE over all of them")
    for row in result.table.head(10).itertuples():
        print(f"  {row.rank:3d}. {row.network} {row.layer}: {row.score:.3f} [{row.ci_subjects_low:.3f}, "
              f"{row.ci_subjects_high:.3f}], p_FWE = {row.p_fwe:.4g}")
    for row in result.pairwise.itertuples():
        print(f"  {row.network_a} {row.layer_a} - {row.network_b} {row.layer_b}: {row.difference:+.3f}, "
              f"p_FWE = {row.p_fwe:.4g}")
    print(f"results: {result.path if result.path else '(not written)'}")
    return 0
