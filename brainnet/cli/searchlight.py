"""``brainnet searchlight``: whole-brain searchlight RSA (or encoding) of a network layer, with permutation maps."""

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
    split_list,
)

EXAMPLES = """\
  brainnet searchlight                             fc8, whole brain, 6 mm spheres, embedded study
  brainnet searchlight --layer conv1 --radius 8 --mask occipital --permutations 5000
  brainnet searchlight --statistic encoding --mask occipital    each sphere's mean response, cross-validated ridge
  brainnet searchlight --study my_study --weights emonet.pt --n-jobs 2 --out results
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "searchlight": (
        "searchlight: each sphere's RDM vs a layer's RDM (RSA) or the layer encoded into the sphere's mean "
        "response; group map with voxelwise, max-statistic FWE and cluster-mass FWE permutation p-values"
    ),
}


def register(subparsers) -> None:
    from brainnet.searchlight import SEARCHLIGHT_COMPARISONS, SEARCHLIGHT_STATISTICS

    parser = add_command(subparsers, "searchlight", COMMANDS["searchlight"], EXAMPLES)
    add_study_args(parser, default_mask="whole-brain")
    add_weights_args(parser)
    parser.add_argument("--layer", default="fc8", help="network layer (default fc8)")
    parser.add_argument("--radius", type=float, default=6.0, help="sphere radius in mm (default 6)")
    parser.add_argument("--subjects", default=None, help="comma-separated subject labels (default: all)")
    parser.add_argument("--statistic", default="rsa", choices=SEARCHLIGHT_STATISTICS,
                        help="rsa: each sphere's RDM vs the layer's (default); encoding: the layer cross-validated "
                             "(ridge) into each sphere's mean response")
    parser.add_argument("--compare", default="spearman", choices=SEARCHLIGHT_COMPARISONS,
                        help="RDM comparison (rsa; default spearman)")
    parser.add_argument("--cv", type=int, default=5, help="folds over stimuli (encoding; default 5)")
    parser.add_argument("--permutations", type=int, default=1000,
                        help="condition-label permutations shared by all spheres (default 1000)")
    parser.add_argument("--cluster-p", type=float, default=0.001,
                        help="cluster-forming threshold as a normal tail probability (default 0.001)")
    add_compute_args(parser)
    add_scheduler_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.searchlight import searchlight_group

    check_at_least(args, 0, "permutations")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    result = searchlight_group(
        args.study,
        layer=args.layer,
        mask=args.mask,
        radius=args.radius,
        subjects=split_list(args.subjects),
        statistic=args.statistic,
        compare=args.compare,
        cv=args.cv,
        n_permutations=args.permutations,
        cluster_p=args.cluster_p,
        weights=args.weights,
        untrained_seed=args.untrained_seed,
        features_file=args.features,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    encoding = s.get("statistic") == "encoding"
    scoring = (f"encoding (ridge, {s['cv']}-fold CV, per-fold r of each sphere's mean response"
               if encoding else f"RSA ({s['compare']}")
    print(
        f"searchlight {scoring}, {s['radius_mm']:g} mm, {s['mean_sphere_voxels']:.0f} voxels per "
        f"sphere), {s['n_subjects']} subjects x {s['n_conditions']} stimuli, {s['n_centres']} centres"
    )
    print(
        f"  {s['layer']}: peak {'encoding ' if encoding else ''}r = {s['peak_r']:.3f} (FWE p = {s['peak_p_fwe']:.3g}); "
        f"{s['n_centres_p_fwe_05']} centres FWE < 0.05; {s['n_clusters_p_fwe_05']} of {s['n_clusters']} "
        "clusters cluster-mass FWE < 0.05"
    )
    print(f"results: {result.path}")
    return 0
