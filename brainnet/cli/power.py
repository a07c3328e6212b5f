"""``brainnet power``: detection rate of the group unit decoding versus sample size (fig. S7)."""

from __future__ import annotations

import argparse

from brainnet.cli._common import (
    add_command,
    add_compute_args,
    add_output_args,
    add_study_args,
    add_weights_args,
    notice_if_embedded_study,
    notice_if_untrained,
    split_list,
)

EXAMPLES = """\
  brainnet power                                   4, 8, 12, 18 subjects, 10 subsamples each
  brainnet power --sizes 3,6,9,12,15,18 --repeats 50 --n-jobs 2
  brainnet power --stimuli 28,56,112 --sizes 6,12,18 --layer fc7
  brainnet power --study my_study --weights emonet.pt --permutations 999 --out results
"""


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give comma-separated integers, e.g. 4,8,12,18"
        )
    return sizes


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "power": (
        "power analysis: subsample subjects (and stimuli) and report how often the group "
        "decoding of network units is detected"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "power", COMMANDS["power"], EXAMPLES)
    parser.add_argument("--layer", default="fc8", help="network layer (default fc8)")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[4, 8, 12, 18],
        help="numbers of subjects to subsample, comma-separated (default 4,8,12,18; "
        "sizes above the study's subject count are an error)",
    )
    parser.add_argument(
        "--stimuli",
        type=_sizes,
        default=None,
        help="numbers of stimuli to subsample, comma-separated (default: all stimuli)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="subsamples per size (default 10; 100 for a smooth curve)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=99,
        help="stimulus permutations per subsample (default 99)",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="test level (default 0.05)")
    parser.add_argument("--components", type=int, default=5, help="PLS components (default 5)")
    parser.add_argument(
        "--pca", type=int, default=100, help="voxel principal components used (default 100)"
    )
    parser.add_argument(
        "--subjects", default=None, help="comma-separated subjects to draw from (default: all)"
    )
    add_study_args(parser)
    add_weights_args(parser)
    add_compute_args(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.power import power_analysis

    subjects = split_list(args.subjects)
    result = power_analysis(
        args.study,
        layer=args.layer,
        subject_sizes=args.sizes,
        n_stimuli_sizes=args.stimuli,
        n_repeats=args.repeats,
        alpha=args.alpha,
        mask=args.mask,
        subjects=subjects,
        weights=args.weights,
        untrained_seed=args.untrained_seed,
        features_file=args.features,
        n_components=args.components,
        n_pca=args.pca,
        n_permutations=args.permutations,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    print(
        f"power of group decoding ({s['layer']}, alpha {s['alpha']}, "
        f"{s['n_permutations']} permutations per subsample):"
    )
    for row in result.table.itertuples():
        print(
            f"  {row.n_subjects:>3} subjects x {row.n_stimuli} stimuli: "
            f"{row.detection_rate:.0%} detected [{row.ci_low:.0%}, {row.ci_high:.0%}] "
            f"of {row.n_repeats}, mean r = {row.mean_r:.3f}"
        )
    needed = s["min_subjects_80"]
    print(f"80 % power reached with {needed} subjects" if needed else "80 % power not reached")
    print(f"results: {result.path}")
    notice_if_embedded_study(args)
    notice_if_untrained(args)  # after the run, so that a bad-input error stays the only stderr line
    return 0
