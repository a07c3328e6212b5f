"""``brainnet retrain``: a new linear head on a frozen network, trained on a labelled image folder."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command, add_weights_args, notice_if_untrained

EXAMPLES = """\
  brainnet retrain --network emonet --weights emonet.pt --images labelled/ --out head.pt
  brainnet retrain --network hf:models/vit-base --images labelled/ --layer pooled --out vit-head.pt
  brainnet rsa --network head:head.pt --layers head      then use the new network like any other
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "retrain": (
        "freeze a network, train a new final linear layer on a labelled image folder (one subfolder per "
        "class), report held-out accuracy, AUC per class and the confusion matrix"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "retrain", COMMANDS["retrain"], EXAMPLES)
    parser.add_argument("--network", default="emonet", help="backbone network (default emonet)")
    parser.add_argument("--images", type=Path, required=True, help="folder with one subfolder of images per class")
    parser.add_argument("--layer", default=None, help="backbone layer feeding the head (default EmoNet fc7, else the last)")
    parser.add_argument("--pool", choices=("none", "mean", "max", "cls"), default=None,
                        help="how the layer becomes units (default the network's)")
    parser.add_argument("--test-fraction", type=float, default=0.25, help="held-out fraction, stratified (default 0.25)")
    parser.add_argument("--penalty", type=float, default=1.0, help="inverse L2 strength C of the logistic regression (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--out", type=Path, default=Path("head.pt"), help="head file (default head.pt); report in <out>.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing head file")
    add_weights_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.retrain import retrain_head

    notice_if_untrained(args)
    result = retrain_head(
        args.images, args.network, layer=args.layer, weights=args.weights, untrained_seed=args.untrained_seed,
        pool=args.pool, test_size=args.test_fraction, penalty=args.penalty, seed=args.seed, out=args.out,
        overwrite=args.overwrite,
    )
    s = result.summary
    print(f"head on {s['network']} {s['layer']}: {len(result.classes)} classes, {s['n_train']} training / "
          f"{s['n_test']} held-out images")
    print(f"held-out accuracy {result.accuracy:.3f} (chance {result.chance:.3f}, binomial p = {result.p_value:.3g})")
    print("AUC per class: " + ", ".join(f"{c} {a:.3f}" for c, a in result.auc.items()))
    print("confusion (rows true, columns predicted): " + "; ".join(" ".join(map(str, r)) for r in result.confusion))
    print(f"wrote {result.path}; use it with --network head:{result.path}")
    return 0
