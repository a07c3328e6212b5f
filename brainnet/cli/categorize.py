"""``brainnet categorize``: decode stimulus categories from voxel patterns (experiment II)."""

from __future__ import annotations

from brainnet.cli._common import (
    add_command,
    add_compute_args,
    add_output_args,
    add_scheduler_arg,
    check_at_least,
    notice_if_embedded_study,
    split_list,
)

EXAMPLES = """\
  brainnet categorize                                  PLS-DA, 8 participant-independent folds
  brainnet categorize --model logistic --permutations 20
  brainnet categorize --study my_study --mask v1 --permutations 1000 --n-jobs 2
  brainnet categorize --subjects 01,02,03,04 --folds 4 --out results
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "categorize": (
        "category decoding: classify each trial's stimulus category from its voxel pattern, "
        "with folds that hold out whole subjects"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import CATEGORIZE_MODELS as MODELS
    from brainnet._defaults import CATEGORIZE_PERMUTATIONS as DEFAULT_PERMUTATIONS

    parser = add_command(subparsers, "categorize", COMMANDS["categorize"], EXAMPLES)
    parser.add_argument(
        # validated by the API (one-line error naming the choices), not by argparse's choices
        "--model", default="plsda", metavar="{" + ",".join(MODELS) + "}", help="classifier (default plsda)"
    )
    parser.add_argument(
        "--folds", type=int, default=8, help="participant-independent folds (default 8)"
    )
    parser.add_argument(
        "--components",
        type=int,
        default=None,
        help="PLS-DA components (default: number of categories - 1)",
    )
    parser.add_argument(
        "--C",
        type=float,
        default=1.0,
        help="inverse regularisation of --model logistic (default 1)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=DEFAULT_PERMUTATIONS,
        help=f"permutations of the stimulus categories (default {DEFAULT_PERMUTATIONS}; "
        "the paper used 1000; logistic refits per permutation, so use fewer)",
    )
    parser.add_argument("--subjects", default=None, help="comma-separated subjects (default: all)")
    parser.add_argument(
        "--study",
        default=None,
        help="study folder whose stimuli.tsv has a category column (default: the embedded study)",
    )
    parser.add_argument(
        "--mask", default="occipital", help="region (default occipital) or a NIfTI mask path"
    )
    add_compute_args(parser)
    add_scheduler_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.categories import categorize_study

    check_at_least(args, 0, "permutations")
    notice_if_embedded_study(args)
    subjects = split_list(args.subjects)
    result = categorize_study(
        args.study,
        mask=args.mask,
        subjects=subjects,
        model=args.model,
        n_folds=args.folds,
        n_components=args.components,
        C=args.C,
        n_permutations=args.permutations,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    p = "n/a" if s["p_value"] is None else f"{s['p_value']:.4g}"
    print(
        f"{s['model']} category decoding ({s['n_classes']} categories, {s['mask']}, "
        f"{s['n_folds']} participant-independent folds): accuracy {s['accuracy']:.1%} "
        f"(chance {s['chance']:.1%}), p = {p} ({s['n_permutations']} permutations)"
    )
    print(
        f"balanced accuracy {s['balanced_accuracy']:.1%}; per subject "
        f"{result.per_subject['accuracy'].min():.1%}-{result.per_subject['accuracy'].max():.1%}; "
        f"{s['n_subjects']} subjects, {s['n_trials']} trials, {s['n_voxels']} voxels"
    )
    print(f"results: {result.path}")
    return 0
