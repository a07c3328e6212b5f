"""``brainnet rsa`` and ``brainnet network-decoding``: the network as one more subject."""

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
  brainnet rsa                                   fc8 vs the 18 subjects of the embedded study
  brainnet rsa --layers conv1,conv2,conv3,conv4,conv5,fc6,fc7,fc8 --out results
  brainnet rsa --rdm crossnobis --noise shrinkage --compare whitened-pearson
  brainnet rsa --study my_study --weights emonet.pt --permutations 10000 --bootstrap 1000
  brainnet rsa --networks emonet,emonet-untrained,hf:models/vit --layers all    networks side by side
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "rsa": "RSA: compare each network layer's RDM with the subjects' RDMs, as a 19th subject",
    "network-decoding": (
        "category decoding and confusions of the network, placed among the subjects' (same "
        "classifier, same stimulus folds)"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import COMPARISONS, RDM_METRICS

    parser = add_command(subparsers, "rsa", COMMANDS["rsa"], EXAMPLES)
    add_study_args(parser)
    add_weights_args(parser)
    add_network_arg(parser, several=True)
    parser.add_argument(
        "--layers",
        default="fc8",
        help="comma-separated network layers, or all (default fc8; conv1,...,fc8)",
    )
    parser.add_argument(
        "--subjects", default=None, help="comma-separated subject labels (default: all)"
    )
    parser.add_argument(
        "--rdm",
        default="correlation",
        choices=RDM_METRICS,
        help="dissimilarity (default correlation)",
    )
    parser.add_argument(
        "--noise",
        default="identity",
        choices=("identity", "diagonal", "shrinkage"),
        help="noise precision for --rdm crossnobis (default identity = cross-validated Euclidean)",
    )
    parser.add_argument(
        "--compare",
        default="spearman",
        choices=COMPARISONS,
        help="RDM comparison (default spearman)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=10000,
        help="condition-label permutations of the network RDM (default 10000, as the paper)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap draws over subjects and over stimuli for the CIs (default 1000)",
    )
    add_compute_args(parser)
    add_scheduler_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)
    _register_decoding(subparsers)


DECODING_EXAMPLES = """\
  brainnet network-decoding                      fc8 vs the 18 subjects of the embedded study
  brainnet network-decoding --layer fc7 --model logistic --folds 4 --out results
"""


def _register_decoding(subparsers) -> None:
    parser = add_command(subparsers, "network-decoding", COMMANDS["network-decoding"], DECODING_EXAMPLES)
    add_study_args(parser)
    add_weights_args(parser)
    parser.add_argument("--layer", default="fc8", help="network layer (default fc8)")
    parser.add_argument(
        "--subjects", default=None, help="comma-separated subject labels (default: all)"
    )
    parser.add_argument(
        "--model",
        default="plsda",
        choices=("plsda", "logistic"),
        help="classifier (default plsda)",
    )
    parser.add_argument(
        "--folds", type=int, default=5, help="stimulus folds, stratified by category (default 5)"
    )
    parser.add_argument(
        "--components", type=int, default=None, help="PLS-DA components (default n_classes - 1)"
    )
    parser.add_argument(
        "--permutations", type=int, default=100,
        help="category shuffles of the network's accuracy test, classifier refitted (default 100)",
    )
    add_compute_args(parser)
    add_output_args(parser)
    parser.set_defaults(func=run_decoding)


def run_decoding(args) -> int:
    from brainnet.network_subject import network_category_decoding

    check_at_least(args, 0, "permutations")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    result = network_category_decoding(
        args.study,
        layer=args.layer,
        mask=args.mask,
        subjects=split_list(args.subjects),
        model=args.model,
        n_folds=args.folds,
        n_components=args.components,
        n_permutations=args.permutations,
        weights=args.weights,
        untrained_seed=args.untrained_seed,
        features_file=args.features,
        seed=args.seed,
        out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    lo, hi = s["human_accuracy_range"]
    tested = (f"permutation p = {s['p_value']:.3g}, {s['n_permutations']} category shuffles"
              if s.get("p_value") is not None else "no permutation test")
    print(
        f"category decoding ({s['classifier']}, {s['n_folds']} folds), {s['n_subjects']} subjects x "
        f"{s['n_stimuli']} stimuli, {s['n_classes']} categories (chance {s['chance']:.3f})"
    )
    print(
        f"  network {s['layer']}: accuracy {s['network_accuracy']:.3f} ({tested}; binomial p vs chance "
        f"{s['network_accuracy_p']:.3g}, a parametric extra), rank {s['network_rank']} of {s['network_rank_of']}; humans mean "
        f"{s['human_accuracy_mean']:.3f} (range {lo:.3f}-{hi:.3f})"
    )
    print(
        f"  confusions: network vs humans r = {s['confusion_r_network_to_humans']:.3f}, vs their "
        f"mean {s['confusion_r_network_to_mean']:.3f} (humans leave-one-out "
        f"{s['confusion_r_human_loo_mean']:.3f}; rank {s['confusion_rank'] or 'n/a'} of {s['network_rank_of']})"
    )
    print(f"results: {args.out / 'group' / ('network-decoding-' + s['layer'])}")
    return 0


def run(args) -> int:
    from brainnet.rsa import network_as_subject

    check_at_least(args, 0, "permutations", "bootstrap")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    subjects = split_list(args.subjects)
    if args.networks:
        return several_networks(args, "rsa", args.layers, subjects, rdm=args.rdm, compare=args.compare,
                                noise=args.noise)
    result = network_as_subject(
        args.study,
        layers=args.layers,
        mask=args.mask,
        subjects=subjects,
        rdm=args.rdm,
        compare=args.compare,
        noise=args.noise,
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        weights=args.weights,
        untrained_seed=args.untrained_seed,
        features_file=args.features,
        network=args.network,
        seed=args.seed,
        n_jobs=args.n_jobs,
        out=args.out,
        overwrite=args.overwrite,
    )
    n = len(result.subjects)
    print(
        f"RSA ({args.rdm} RDMs, {result.parameters['compare']}), {n} subjects x "
        f"{len(result.stimulus_ids)} stimuli; noise ceiling "
        f"{result.noise_ceiling_lower:.3f}-{result.noise_ceiling_upper:.3f}"
    )
    for res in result.layers.values():
        print(
            f"  {res.layer:6s} network-human r = {res.network_human_r:.3f} "
            f"[{res.ci_subjects[0]:.3f}, {res.ci_subjects[1]:.3f}], p = {res.p_value:.4g} "
            f"(FWE {res.p_fwe:.4g}); vs the subjects' mean RDM r = {res.network_to_mean:.3f}, "
            f"rank {res.network_rank} of {n + 1} among the subjects' leave-one-out values"
        )
    print(f"results: {args.out / 'group'}")
    return 0

