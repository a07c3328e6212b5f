"""``brainnet fetch``: verified downloads of EmoNet weights and OpenNeuro datasets."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command
from brainnet.datasets.openneuro import add_fetch_arguments, register_fetchers

EXAMPLES = """\
  brainnet fetch weights                          EmoNet weights (emonet-pytorch, OSF) into the cache
  brainnet fetch weights --which emonet-py        the emonet-py state dict instead
  brainnet fetch weights --dest ~/models          save into another folder
  brainnet extract --stimuli imgs/ --weights "$(brainnet fetch weights)" --out acts.npz
  brainnet fetch ds004496 --subjects 01 --what events,derivatives,stimuli --dest nod
  brainnet fetch ds002837 --subjects 1,2 --what derivatives --dry-run
"""

# what -> (help, runner); other public files (datasets) register here too.
FETCHERS: dict = {}


def _fetch_weights(args) -> int:
    from brainnet.models.weights import fetch_weights

    path = fetch_weights(args.which, args.dest, url=args.url, progress=not args.quiet)
    print(path)
    return 0


FETCHERS["weights"] = ("EmoNet weights (see data_manifests/weights.json)", _fetch_weights)
register_fetchers(FETCHERS)  # one entry per dataset manifest in data_manifests/datasets


def register(subparsers) -> None:
    parser = add_command(subparsers, "fetch", "download EmoNet weights or OpenNeuro dataset files, verified and resumable", EXAMPLES)
    parser.add_argument("what", choices=sorted(FETCHERS), help="what to download: " + "; ".join(f"{k}: {v[0]}" for k, v in FETCHERS.items()))
    parser.add_argument("--which", default="emonet-pytorch", help="weights: emonet-pytorch (default) or emonet-py")
    parser.add_argument("--dest", type=Path, default=None, help="folder to save into (default: the brainnet cache)")
    parser.add_argument("--url", default=None, help="download from this mirror instead of the manifest's address")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_fetch_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    return FETCHERS[args.what][1](args)
