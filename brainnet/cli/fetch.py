"""``brainnet fetch``: verified downloads of EmoNet weights and OpenNeuro datasets."""

from __future__ import annotations

import sys
from pathlib import Path

from brainnet.cli._common import add_command
from brainnet.datasets.manifests import available_datasets

EXAMPLES = """\
  brainnet fetch weights                          EmoNet weights (emonet-pytorch, OSF) into the cache
  brainnet fetch weights --which emonet-py        the emonet-py state dict instead
  brainnet fetch weights --dest ~/models          save into another folder
  brainnet extract --stimuli imgs/ --weights "$(brainnet fetch weights)" --out acts.npz
  brainnet fetch ds004496 --subjects 01 --what events,derivatives,stimuli --dest nod
  brainnet fetch ds002837 --subjects 1,2 --what derivatives --dry-run
"""


def add_fetch_arguments(parser) -> None:
    """Add the dataset options of ``brainnet fetch <dataset>`` to an argparse parser.

    Adds ``--subjects``, ``--what`` (stored as ``args.parts``), ``--dry-run``
    and ``--strict``. :func:`run_fetch` also reads ``--dest`` (data folder),
    ``--url`` (mirror) and ``--quiet``, which ``brainnet fetch`` already has.
    """
    parser.add_argument("--subjects", default=None, help="datasets: comma-separated subject labels as in the dataset (NNDb: 1,2; NOD: 01,02); default all")
    parser.add_argument("--what", dest="parts", default=None, help="datasets: comma-separated parts among metadata,events,bold,derivatives,stimuli (default: what the dataset's brainnet workflows need)")
    parser.add_argument("--dry-run", action="store_true", help="datasets: print how many files and bytes would be fetched; download nothing")
    parser.add_argument("--strict", action="store_true", help="datasets: exit with an error if any file could not be fetched")


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "fetch": "download EmoNet weights or OpenNeuro dataset files, verified and resumable",
}


def register_fetchers(fetchers: dict) -> None:
    """Add one ``brainnet fetch <accession>`` entry per shipped manifest to ``fetchers``.

    ``fetchers`` maps a name to ``(help, runner(args) -> int)``, as in
    :mod:`brainnet.cli.fetch`.
    """
    for accession in available_datasets():
        fetchers.setdefault(accession, (f"OpenNeuro {accession} (data_manifests/datasets)", lambda args, a=accession: run_fetch(a, args)))


def run_fetch(name: str, args) -> int:
    """Run ``brainnet fetch <dataset>`` from parsed ``args``; 0 when complete, 1 when files are missing.

    Reads ``args.subjects``, ``args.parts``, ``args.dry_run``, ``args.strict``
    (from :func:`add_fetch_arguments`) and ``args.dest`` (default
    ``./<accession>``), ``args.url`` (mirror), ``args.quiet``; absent ones
    take their defaults.
    """
    from brainnet.datasets.openneuro import fetch_dataset, plan_fetch

    subjects = getattr(args, "subjects", None)
    parts = getattr(args, "parts", None)
    if getattr(args, "dry_run", False):
        manifest, files = plan_fetch(name, subjects=subjects, what=parts)
        total = sum(f.size for f in files)
        print(f"{manifest.accession} {manifest.version}: {len(files)} files, {total / 1e9:.2f} GB")
        return 0
    dest = getattr(args, "dest", None) or Path(Path(name).name.split(".")[0])
    report = fetch_dataset(
        name,
        dest,
        subjects=subjects,
        what=parts,
        mirror=getattr(args, "url", None),
        progress=not getattr(args, "quiet", False) and sys.stderr.isatty(),
        strict=getattr(args, "strict", False),
    )
    print(report.summary())
    return 0 if report.complete else 1


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
    parser = add_command(subparsers, "fetch", COMMANDS["fetch"], EXAMPLES)
    parser.add_argument("what", choices=sorted(FETCHERS), help="what to download: " + "; ".join(f"{k}: {v[0]}" for k, v in FETCHERS.items()))
    parser.add_argument("--which", default="emonet-pytorch", help="weights: emonet-pytorch (default) or emonet-py")
    parser.add_argument("--dest", type=Path, default=None, help="folder to save into (default: the brainnet cache)")
    parser.add_argument("--url", default=None, help="download from this mirror instead of the manifest's address")
    add_fetch_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    return FETCHERS[args.what][1](args)
