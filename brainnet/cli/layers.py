"""``brainnet layers``: a network's layers with their output shapes and unit counts."""

from __future__ import annotations

from brainnet.cli._common import add_command, add_network_arg, add_weights_args

EXAMPLES = """\
  brainnet layers                                   EmoNet's conv1 ... fc8
  brainnet layers --network hf:models/vit-base      a Hugging Face ViT from a local folder
  brainnet layers --network head:head.pt --pool mean
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "layers": (
        "list a network's layers with their output shape and number of units (one blank image, "
        "the network's own preprocessing)"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "layers", COMMANDS["layers"], EXAMPLES)
    add_network_arg(parser)
    add_weights_args(parser)
    parser.add_argument("--pool", choices=("none", "mean", "max", "cls"), default=None,
                        help="count units after this reduction (default the network's)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.models.registry import get_network, network_layers

    net = get_network(args.network, weights=args.weights, seed=args.untrained_seed)
    table = network_layers(net, pool=args.pool)
    pool = args.pool or net.pool
    print(f"network {net.name} ({net.model_name}), weights {net.weights}; units with --pool {pool}")
    width = max([len("layer"), *(len(n) for n in table["layer"])])
    print(f"{'layer':{width}s}  {'output':>14s}  {'units':>8s}")
    for row in table.itertuples():
        print(f"{row.layer:{width}s}  {row.shape:>14s}  {row.n_units:>8d}")
    return 0
