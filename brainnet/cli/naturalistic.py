"""``brainnet naturalistic``: movie frame features -> HRF -> voxelwise encoding with blocked CV."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command, add_output_args

EXAMPLES = """\
  brainnet fetch ds002837 --subjects 1 --what metadata,derivatives --dest nndb
  brainnet naturalistic --nndb nndb --subject 1 --task 500daysofsummer \\
      --frame-features 500_days_of_summer_fc7_features.mat --frame-rate FPS --mask occipital --out nndb_sub-1
      (FPS = frames per second of the feature file: check where you got it)
  brainnet naturalistic --bold run.nii.gz --tr 2 --frame-features frames.npy --frame-rate 25 --gap-s 40
  brainnet naturalistic --nndb nndb --subject 1 --task 500daysofsummer --frame-features f.npy \\
      --frame-rate 5 --scheduler tcp://10.0.0.5:8786 --chunk-size 20000
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "naturalistic": (
        "naturalistic (movie) encoding: frame features convolved with an HRF predict every "
        "voxel, blocked cross-validation with gaps (random k-fold over volumes leaks)"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "naturalistic", COMMANDS["naturalistic"], EXAMPLES)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--bold", type=Path, help="4-D BOLD NIfTI")
    src.add_argument("--nndb", type=Path, help="NNDb (ds002837) folder; with --subject and --task uses its AFNI blur+censor derivative")
    parser.add_argument("--subject", default=None, help="NNDb subject: 1 or sub-1 (not zero-padded)")
    parser.add_argument("--task", default=None, help="NNDb film, e.g. 500daysofsummer")
    parser.add_argument("--frame-features", type=Path, required=True, help="frame features (.mat incl. v7.3, .npy, .npz, .tsv), one row per frame")
    parser.add_argument("--variable", default=None, help="array name inside --frame-features when it holds several")
    parser.add_argument("--frame-rate", type=float, required=True, help="frames per second of --frame-features")
    parser.add_argument("--tr", type=float, default=None, help="repetition time in s (default 1.0 with --nndb; required with --bold)")
    parser.add_argument("--offset-s", type=float, default=0.0, help="time of the first frame after the first volume (default 0)")
    parser.add_argument("--mask", default=None, help="region (occipital, v1, ..., whole-brain) or NIfTI path; default every voxel that is ever non-zero")
    parser.add_argument("--n-splits", type=int, default=5, help="contiguous test blocks (default 5)")
    parser.add_argument("--gap-s", type=float, default=30.0, help="seconds dropped from training on each side of a test block (default 30, about the HRF length)")
    parser.add_argument("--alphas", type=float, nargs="+", default=None, help="ridge penalties to choose from per voxel (default 13 values from 0.1 to 1e5)")
    parser.add_argument("--hrf", default="glover", choices=("glover", "spm"), help="canonical HRF (default glover)")
    parser.add_argument("--chunk-size", type=int, default=5000, help="voxels per chunk; bounds memory (default 5000)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786) to run chunks on a cluster")
    parser.add_argument("--n-jobs", type=int, default=1, help="chunks run in parallel threads without --scheduler (results do not depend on it)")
    add_output_args(parser, default="brainnet_naturalistic")
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.errors import BrainnetError
    from brainnet.naturalistic import encode_naturalistic, load_frame_features, nndb_bold_path

    _check_options(args)
    if args.nndb is not None:
        if args.subject is None or args.task is None:
            raise BrainnetError("--nndb: needs --subject and --task; add e.g. --subject 1 --task 500daysofsummer")
        bold = nndb_bold_path(args.nndb, args.subject, args.task)
        tr = 1.0 if args.tr is None else args.tr
    else:
        bold = args.bold
        if args.tr is None:
            raise BrainnetError("--tr: required with --bold; give the repetition time in seconds, e.g. --tr 2")
        tr = args.tr
    frames = load_frame_features(args.frame_features, variable=args.variable)
    result = encode_naturalistic(
        bold,
        frames,
        frame_rate=args.frame_rate,
        tr=tr,
        n_splits=args.n_splits,
        gap_s=args.gap_s,
        alphas=args.alphas,
        mask=args.mask,
        chunk_size=args.chunk_size,
        scheduler=args.scheduler,
        n_jobs=args.n_jobs,
        hrf_model=args.hrf,
        offset_s=args.offset_s,
        out=args.out,
        overwrite=args.overwrite,
        inputs={"bold": bold, "frame_features": args.frame_features, "mask": args.mask},
    )
    out = args.out
    mean_r = result.summary()["mean_r"]
    shown = "n/a" if mean_r is None else f"{mean_r:.3f}"
    print(f"{out}: mean r {shown} over {result.r.size} voxels; {result.n_censored} censored volumes excluded")
    return 0


def _check_options(args) -> None:
    """Refuse impossible numbers before any file is read, naming the option."""
    from brainnet.errors import BrainnetError

    checks = [
        ("--frame-rate", args.frame_rate, args.frame_rate > 0, "give the frames per second of --frame-features, e.g. --frame-rate 25"),
        ("--tr", args.tr, args.tr is None or args.tr > 0, "give the repetition time in seconds, e.g. --tr 2"),
        ("--n-splits", args.n_splits, args.n_splits >= 2, "use at least 2 test blocks, e.g. --n-splits 5"),
        ("--gap-s", args.gap_s, args.gap_s >= 0, "give 0 or more seconds, e.g. --gap-s 30"),
        ("--chunk-size", args.chunk_size, args.chunk_size >= 1, "give a positive number of voxels, e.g. --chunk-size 5000"),
    ]
    for option, value, ok, fix in checks:
        if not ok:  # NaN fails every comparison, so it is refused too
            raise BrainnetError(f"{option} {value:g}: out of range; {fix}")
