"""``brainnet decode``: group decoding of a layer's units from all subjects (Fig. 4)."""

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
  brainnet decode                                       fc8, embedded study, quick defaults
  brainnet decode --networks emonet,emonet-untrained,hf:models/vit --layers all --out results
  brainnet decode --permutations 10000 --bootstrap 1000 --n-jobs 2    the paper's inference
  brainnet decode --layer fc7 --subjects 01,02,03,04 --components 5 --study my_study
  brainnet decode --features acts.npz --mask v1 --out results --weights emonet.pt
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "decode": (
        "group decoding: predict a layer's units from voxel patterns with PLS, leave-one-"
        "subject-out"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import DECODE_BOOTSTRAP as DEFAULT_BOOTSTRAP
    from brainnet._defaults import DECODE_CLUSTER_DRAWS as DEFAULT_CLUSTER_DRAWS
    from brainnet._defaults import DECODE_COMPONENTS as DEFAULT_COMPONENTS
    from brainnet._defaults import DECODE_PERMUTATIONS as DEFAULT_PERMUTATIONS

    parser = add_command(subparsers, "decode", COMMANDS["decode"], EXAMPLES)
    parser.add_argument("--layer", "--layers", dest="layer", default="fc8",
                        help="network layer whose units are decoded (default fc8); with --networks also several or all")
    parser.add_argument(
        "--subjects", type=split_list, default=None, help="comma-separated subject labels (default: all)"
    )
    parser.add_argument(
        "--components", type=int, default=DEFAULT_COMPONENTS, help=f"PLS components (default {DEFAULT_COMPONENTS}, as in the paper)"
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="scale voxels and units to unit variance (default: centre only, like MATLAB plsregress)",
    )
    parser.add_argument(
        "--algorithm",
        choices=("nipals", "simpls"),
        default="nipals",
        help="PLS algorithm: nipals (scikit-learn's, default) or simpls (MATLAB plsregress, the paper's)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=DEFAULT_PERMUTATIONS,
        help=f"permutations of the stimulus -> unit rows (default {DEFAULT_PERMUTATIONS}; paper 10000)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        help=f"subject bootstrap samples of the PLS weights (default {DEFAULT_BOOTSTRAP}; paper 1000; 0 skips the maps)",
    )
    parser.add_argument(
        "--cluster-draws",
        type=int,
        default=DEFAULT_CLUSTER_DRAWS,
        help=f"bootstrap samples and permutations of the discriminable-cluster count (default {DEFAULT_CLUSTER_DRAWS}; paper 5000)",
    )
    add_study_args(parser)
    add_weights_args(parser)
    add_network_arg(parser, several=True)
    add_compute_args(parser)
    add_scheduler_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.decoding import decode_units

    check_at_least(args, 0, "permutations", "bootstrap", "cluster_draws")
    check_at_least(args, 1, "components")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    if args.networks:
        return several_networks(args, "decode", args.layer, args.subjects, n_components=args.components)
    result = decode_units(
        args.study,
        layer=args.layer,
        subjects=args.subjects,
        n_components=args.components,
        scale=args.scale,
        algorithm=args.algorithm,
        mask=args.mask,
        features=args.features,
        weights=args.weights,
        network=args.network,
        untrained_seed=args.untrained_seed,
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        n_cluster_draws=args.cluster_draws,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    ceiling = "n/a" if s["noise_ceiling"] is None else f"{100 * s['noise_ceiling']:.1f} % of the noise ceiling"
    p = "n/a" if s["p_value"] is None else f"{s['p_value']:.4g}"
    print(
        f"{s['layer']} decoded from {s['n_voxels']} voxels of {s['n_subjects']} subjects: "
        f"mean r = {s['mean_r']:.3f}, p = {p} ({s['n_permutations']} permutations), {ceiling}"
    )
    if s.get("effect_vs_null") is not None:
        print(f"permutation null of mean r: {s['null_mean_r']:.3f} +/- {s['null_sd_r']:.3f} SD; "
              f"effect = {s['effect_vs_null']:.2f} null SDs")
    print(f"paper-style (subjects treated as independent, against 0): +/- {s['se_r']:.3f} SE, "
          f"d = {s['cohens_d']:.2f}")
    print(f"{s['n_units_p_fwe_05']}/{s['n_units']} units p_FWE < 0.05")
    if s.get("sensitivity") is not None:
        print(
            f"confusions: sensitivity {100 * s['sensitivity']:.1f} %, specificity {100 * s['specificity']:.1f} %, "
            f"PPV {100 * s['ppv']:.1f} %, {s['n_clusters']} discriminable clusters"
        )
    print(f"results: {result.path}")
    return 0
