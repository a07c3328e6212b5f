"""``brainnet partition``: variance partitioning of a subject's voxels among layers and low-level controls."""

from __future__ import annotations

from brainnet.cli._common import (
    add_command,
    add_compute_args,
    add_output_args,
    add_scheduler_arg,
    add_study_args,
    add_weights_args,
    check_at_least,
    notice_if_embedded_study,
    notice_if_untrained,
)

EXAMPLES = """\
  brainnet partition --layers conv1,fc8                 unique and shared variance of two layers
  brainnet partition --layers fc8 --controls pixels,gabor   EmoNet beyond low-level vision
  brainnet partition --subject 02 --mask inferotemporal --permutations 5000 --out results
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "partition": (
        "variance partitioning: banded ridge per voxel, unique and shared cross-validated R² of each "
        "feature space, permutation tests of the unique parts (max-statistic FWE)"
    ),
}


def register(subparsers) -> None:
    from brainnet.lowlevel import CONTROLS

    parser = add_command(subparsers, "partition", COMMANDS["partition"], EXAMPLES)
    add_study_args(parser)
    add_weights_args(parser)
    parser.add_argument("--subject", default=None, help="subject label (default: the first)")
    parser.add_argument("--layers", default="conv1,fc8", help="comma-separated layers (default conv1,fc8)")
    parser.add_argument("--controls", default=None,
                        help=f"comma-separated low-level control features: {', '.join(CONTROLS)}")
    parser.add_argument("--cv", type=int, default=5, help="outer folds over stimuli (default 5)")
    parser.add_argument("--n-iter", type=int, default=20,
                        help="random-search candidates of the per-space penalties (default 20)")
    parser.add_argument("--permutations", type=int, default=1000,
                        help="row permutations of each space for its unique part (default 1000)")
    add_compute_args(parser)
    add_scheduler_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.partition import partition_subject

    check_at_least(args, 0, "permutations")
    check_at_least(args, 1, "n_iter")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    result = partition_subject(
        args.study,
        subject=args.subject,
        layers=args.layers,
        controls=args.controls,
        mask=args.mask,
        cv=args.cv,
        n_iter=args.n_iter,
        n_permutations=args.permutations,
        weights=args.weights,
        untrained_seed=args.untrained_seed,
        features_file=args.features,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    print(
        f"variance partition of sub-{s['subject']} ({s['n_voxels']} voxels, {s['n_stimuli']} stimuli, "
        f"{s['cv']}-fold CV): mean R² union {s['mean_union']:.4f}, shared {s['mean_shared']:.4f}"
    )
    for name in result.spaces:
        n_sig = s.get(f"n_voxels_unique_{name}_p_fwe_05")
        tested = f"; {n_sig} voxels FWE < 0.05" if n_sig is not None else ""
        print(f"  unique {name}: mean R² {s[f'mean_unique_{name}']:.4f}{tested}")
    print(f"results: {result.path}")
    return 0
