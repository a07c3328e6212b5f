"""``brainnet encode``: per-subject encoding of every voxel from one network layer."""

from __future__ import annotations

from brainnet.cli._common import (
    add_command,
    add_compute_args,
    add_network_arg,
    add_output_args,
    add_scheduler_arg,
    add_study_args,
    add_weights_args,
    check_at_least,
    notice_if_embedded_study,
    notice_if_untrained,
    several_networks,
    split_list,
)

EXAMPLES = """\
  brainnet encode --subject 01                        fc8 ridge, 5-fold CV, embedded study
  brainnet encode --subject 01 --layer fc7 --permutations 10000 --n-jobs 2
  brainnet encode --subject 03 --model pls --components 5 --study my_study --weights emonet.pt
  brainnet encode --subject 01 --features acts.npz --layer fc7 --mask v1 --out results
  brainnet encode --subject all --out results          every subject, then a group table; rerun resumes
  brainnet encode --subject 01,02,05 --scheduler tcp://host:8786   one Dask task per subject
  brainnet encode --networks emonet,emonet-untrained,hf:models/vit --layers all --out results
"""


def _inner(value: str):
    if value == "loo":
        return value
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 2:
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r}: use loo or an integer >= 2")
    return k


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "encode": (
        "per-subject encoding: predict every voxel from a network layer, cross-validated over"
        " stimuli"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import ENCODE_PERMUTATIONS as DEFAULT_PERMUTATIONS

    parser = add_command(subparsers, "encode", COMMANDS["encode"], EXAMPLES)
    parser.add_argument(
        "--subject",
        default=None,
        help="subject label, e.g. 01 or sub-01 (default 01; with --networks all); several: all or 01,02,05 "
        "(each in <out>/sub-<label>/, a group table in <out>/group/, finished subjects are not redone)",
    )
    parser.add_argument("--layer", "--layers", dest="layer", default="fc8",
                        help="network layer (default fc8; conv1..conv5, fc6, fc7, fc8); with --networks also "
                        "several or all")
    parser.add_argument("--model", default="ridge", choices=("ridge", "pls"), help="encoding model (default ridge)")
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds over stimuli (default 5)")
    parser.add_argument(
        "--permutations",
        type=int,
        default=DEFAULT_PERMUTATIONS,
        help=f"permutations of the stimulus -> feature assignment (default {DEFAULT_PERMUTATIONS}; "
        "10000 for publication)",
    )
    parser.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=None,
        help="ridge penalties to choose from per voxel (default 15 values from 1e-2 to 1e5)",
    )
    parser.add_argument(
        "--inner",
        type=_inner,
        default="loo",
        help="how each voxel's penalty is chosen in the training folds: loo (exact "
        "leave-one-out, default) or an inner k-fold, e.g. 5",
    )
    parser.add_argument("--components", type=int, default=5, help="PLS components (default 5)")
    add_study_args(parser)
    add_weights_args(parser)
    add_network_arg(parser, several=True)
    add_compute_args(parser)
    add_scheduler_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    check_at_least(args, 0, "permutations")
    check_at_least(args, 1, "components")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    if args.networks:
        subjects = split_list(args.subject)
        return several_networks(args, "encode", args.layer, None if subjects == ["all"] else subjects,
                                model=args.model, cv=args.cv, alphas=args.alphas, inner=args.inner,
                                n_components=args.components)
    subjects = split_list(args.subject) or ["01"]
    if subjects != ["all"] and len(subjects) == 1:
        return _one_subject(args, subjects[0])
    return _several_subjects(args, "all" if subjects == ["all"] else subjects)


def _options(args) -> dict:
    return dict(
        layer=args.layer,
        model=args.model,
        cv=args.cv,
        n_permutations=args.permutations,
        alphas=args.alphas,
        inner=args.inner,
        n_components=args.components,
        mask=args.mask,
        features=args.features,
        weights=args.weights,
        untrained_seed=args.untrained_seed,
        network=args.network,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )


def _one_subject(args, subject: str) -> int:
    from brainnet.encoding import encode_subject

    result = encode_subject(args.study, subject, **_options(args))
    s = result.summary
    ceiling = "unavailable" if s["noise_ceiling"] is None else f"{s['noise_ceiling']:.3f}"
    print(
        f"sub-{s['subject']} {s['layer']} {s['model']}: mean r = {s['mean_r']:.3f} "
        f"(p = {s['p_value']:.4g}, {s['n_permutations']} permutations), "
        f"{s['n_voxels_p_fwe_05']}/{s['n_voxels']} voxels p_FWE < 0.05"
    )
    if s.get("effect_vs_null") is not None:
        print(f"r is per-fold r averaged over folds; permutation null of mean r: {s['null_mean_r']:.3f} "
              f"+/- {s['null_sd_r']:.3f} SD, effect = {s['effect_vs_null']:.2f} null SDs; "
              f"pooled-prediction r = {s['mean_r_pooled']:.3f}")
    print(f"noise ceiling (mean r): {ceiling}; {s['n_stimuli']} stimuli, {s['cv']}-fold CV")
    print(f"results: {result.path}")
    return 0


def _several_subjects(args, subjects) -> int:
    from brainnet.encoding import encode_subjects
    from brainnet.runs import result_folder

    # --scheduler is already in effect (the CLI enters use_scheduler); subjects become Dask tasks.
    result = encode_subjects(args.study, subjects, **_options(args))
    for row in result.table.itertuples():
        reused = "" if row.subject in result.computed else "  (complete already, not recomputed)"
        print(
            f"sub-{row.subject} {args.layer} {args.model}: mean r = {row.mean_r:.3f} (p = {row.p_value:.4g}), "
            f"{row.n_voxels_p_fwe_05}/{row.n_voxels} voxels p_FWE < 0.05{reused}"
        )
    s = result.summary
    print(
        f"{s['n_subjects']} subjects: mean r = {s['mean_r']:.3f} (SD {s['sd_mean_r']:.3f}); "
        f"{s['n_subjects_p_05']} with p < 0.05"
    )
    folder = result_folder(args.out, "sub-<label>", "encode", args.layer, args.mask)
    print(f"results: {folder}; group table: {result.path / 'subjects.tsv'}")
    return 0
