"""``brainnet extract``: a network's layer activations for a stimulus set, saved as .npz."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from brainnet.cli._common import (
    add_command,
    add_network_arg,
    add_weights_args,
    notice_if_untrained,
    split_list,
)
from brainnet.errors import input_error

EXAMPLES = """\
  brainnet extract --demo --out demo_acts.npz                 12 generated images, no data needed
  brainnet extract --stimuli imgs/ --layers fc7,fc8 --out acts.npz
  brainnet extract --stimuli stimuli.tsv --layers conv5 --pool mean --out conv5.npz
  brainnet extract --stimuli sub-01/func/sub-01_task-x_events.tsv --column stim_file --out acts.npz
  brainnet extract --stimuli imgs/ --weights emonet.pt --mean-image img_mean.txt --out acts.npz
  brainnet extract --stimuli imgs/ --network hf:models/vit-base --layers all --out vit.npz
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "extract": (
        "layer activations of EmoNet or another network (n_stimuli x n_units per layer) for a "
        "folder of images, a stimuli TSV or a BIDS events file"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "extract", COMMANDS["extract"], EXAMPLES)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--stimuli", type=Path, help="folder of images, TSV (stimulus_id, file[, category]) or *_events.tsv")
    src.add_argument("--demo", action="store_true", help="use 12 generated demo images (offline, deterministic)")
    parser.add_argument("--column", default=None, help="stimulus column of an events file (default: stim_file, file_path, ImgName, identifier or stimulus)")
    parser.add_argument("--stimuli-root", type=Path, default=None, help="folder the TSV's file names are relative to")
    parser.add_argument("--layers", default=None, help="comma-separated layers, or all (EmoNet: conv1..conv5, fc6, fc7, fc8; "
                        "default the network's last layer, EmoNet fc8 before softmax); 'brainnet layers' lists them")
    parser.add_argument("--pool", choices=("none", "mean", "max", "cls"), default=None,
                        help="how a layer becomes units: none (flattened C*H*W), mean/max over positions or tokens, "
                        "cls (first token); default the network's (EmoNet none, ViT cls)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    add_weights_args(parser)
    add_network_arg(parser)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    parser.add_argument("--mean-image", type=Path, default=None, help="MATLAB mean image (.npy 227x227x3 or emonet-py img_mean.txt); default ImageNet channel means")
    parser.add_argument("--out", type=Path, default=Path("activations.npz"), help="output .npz (default activations.npz); provenance goes to <out>.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an --out file made from other stimuli, weights or options")
    parser.add_argument("--no-cache", action="store_true", help="recompute instead of using the activation cache")
    parser.set_defaults(func=run)


def _check_out(out: Path, provenance: dict, overwrite: bool) -> None:
    sidecar = out.with_name(out.name + ".json")
    if not out.exists() or overwrite:
        return
    try:
        old = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if old != provenance:
        raise input_error(out, "exists and was made from other stimuli, weights or options", "pass --overwrite or choose another --out")


def run(args) -> int:
    from brainnet._checks import check_count
    from brainnet.extract import extract_activations, last_cache_stats
    from brainnet.features import save_features
    from brainnet.stimuli import demo_stimuli, load_stimuli

    if args.out.suffix != ".npz":
        raise input_error(args.out, "activations are written as .npz", "give an --out path ending in .npz")
    check_count(args.batch_size, "batch_size", 1)
    layers = split_list(args.layers)
    if layers == ["all"]:
        layers = "all"
    if args.demo:
        stimuli = demo_stimuli()
    else:
        stimuli = load_stimuli(args.stimuli, column=args.column, root=args.stimuli_root)
    notice_if_untrained(args)
    features = extract_activations(
        stimuli, network=args.network, layers=layers, weights=args.weights, seed=args.untrained_seed,
        batch_size=args.batch_size, pool=args.pool, device=args.device,
        cache=not args.no_cache, progress=not args.quiet and sys.stderr.isatty(),
        mean_image=args.mean_image,
    )
    provenance = json.loads(json.dumps(dict(features.provenance)))
    _check_out(args.out, provenance, args.overwrite)
    save_features(features, args.out)
    stats = last_cache_stats()
    shapes = ", ".join(f"{name} ({arr.shape[1]} units)" for name, arr in features.layers.items())
    print(
        f"wrote {args.out}: {features.n_stimuli} stimuli x {shapes}; network {features.provenance['network']['name']}, "
        f"weights {features.provenance['weights']}; "
        f"{stats.misses} computed, {stats.hits} from cache"
    )
    return 0
