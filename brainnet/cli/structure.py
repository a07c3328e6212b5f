"""``brainnet network-structure``: a network's confusions, discriminable categories, dimensionality, read-outs."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command, add_weights_args, notice_if_untrained

EXAMPLES = """\
  brainnet network-structure --images labelled/ --weights emonet.pt --ratings oasis.tsv --out structure
  brainnet network-structure --network head:head.pt --images labelled/
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "network-structure": (
        "a network's own structure on a labelled image folder: cross-validated confusion matrix, number of "
        "discriminable categories, PCA dimensionality, and linear valence/arousal read-outs of user ratings"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "network-structure", COMMANDS["network-structure"], EXAMPLES)
    parser.add_argument("--network", default="emonet", help="network (default emonet)")
    parser.add_argument("--images", type=Path, required=True, help="folder with one subfolder of images per category")
    parser.add_argument("--layer", default=None, help="layer (default the network's last, EmoNet fc8)")
    parser.add_argument("--ratings", type=Path, default=None,
                        help="TSV of stimulus_id and rating columns (e.g. valence, arousal) of these images")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="folder for confusion.tsv, readouts.tsv, summary.json")
    parser.add_argument("--overwrite", action="store_true", help="replace results made with other parameters")
    add_weights_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.structure import network_structure

    notice_if_untrained(args)
    res = network_structure(args.images, args.network, layer=args.layer, weights=args.weights,
                            untrained_seed=args.untrained_seed, ratings=args.ratings, n_folds=args.folds,
                            seed=args.seed, out=args.out, overwrite=args.overwrite)
    s = res.summary
    d = res.dimensionality
    print(f"{s['network']} {s['layer']}: {len(res.classes)} categories, {s['n_images']} images; cross-validated "
          f"accuracy {res.accuracy:.3f} (chance {s['chance']:.3f}); {res.n_discriminable} discriminable categories")
    print(f"PCA: {d['n_components_90']} components for 90 %, {d['n_components_95']} for 95 % of the variance; "
          f"participation ratio {d['participation_ratio']:.2f} of {d['n_units']} units")
    if res.readouts is not None:
        for row in res.readouts.itertuples():
            pub = "" if row.published_r != row.published_r else f", published read-out r = {row.published_r:.3f}"
            print(f"  {row.rating}: cross-validated r = {row.cv_r:.3f} (R2 {row.cv_r2:.3f}){pub}")
    if args.out is not None:
        print(f"results: {args.out}")
    return 0
