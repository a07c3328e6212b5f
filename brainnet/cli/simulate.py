"""``brainnet simulate``: write a simulated study with a known, recoverable truth."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command, add_weights_args, notice

EXAMPLES = """\
  brainnet simulate --out sim/                                  18 subjects, 112 images, seed 0, 4 mm
  brainnet simulate --out small/ --subjects 4 --stimuli 32 --seed 1
  brainnet simulate --out null/ --null                          no signal: for checking false positives
  brainnet simulate --out hard/ --snr 0.05 --repeats 2 --layer fc7
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "simulate": (
        "write a simulated study (images, single-trial betas in MNI occipital cortex, "
        "truth.json) whose voxels respond to network features through a known linear map"
    ),
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "simulate", COMMANDS["simulate"], EXAMPLES)
    parser.add_argument("--out", type=Path, required=True, help="new study folder")
    parser.add_argument("--subjects", type=int, default=18, help="number of subjects (default 18)")
    parser.add_argument("--stimuli", type=int, default=112, help="number of generated images (default 112)")
    parser.add_argument("--seed", type=int, default=0, help="seed of images, maps and noise (default 0)")
    parser.add_argument("--resolution", type=float, default=4.0, help="voxel size in mm of the MNI grid (default 4)")
    parser.add_argument("--snr", type=float, default=0.25, help="signal variance / noise variance in signal voxels (default 0.25)")
    parser.add_argument("--repeats", type=int, default=1, help="presentations of each image (default 1)")
    parser.add_argument("--runs", type=int, default=2, help="runs the trials are split into (default 2)")
    parser.add_argument("--layer", default="fc8", help="network layer driving the voxels (default fc8)")
    parser.add_argument("--signal-voxels", type=int, default=None, help="occipital voxels carrying signal (default half)")
    parser.add_argument("--null", action="store_true", help="no signal: voxels independent of the features")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    add_weights_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.simulate import simulate_study
    from brainnet.study import load_study

    out = simulate_study(
        args.out, n_subjects=args.subjects, n_stimuli=args.stimuli, seed=args.seed,
        resolution_mm=args.resolution, layer=args.layer, snr=args.snr, n_repeats=args.repeats,
        n_runs=args.runs, n_signal_voxels=args.signal_voxels, null=args.null, weights=args.weights,
        untrained_seed=args.untrained_seed, overwrite=args.overwrite,
    )
    study = load_study(out)
    notice(f"wrote {out}: {len(study.subjects)} subjects, {len(study.stimulus_ids)} stimuli, task {study.task}; truth in truth.json")
    print(out)
    return 0
