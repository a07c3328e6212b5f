"""``brainnet betas``: single-trial betas (GLMsingle-class, LSS or LSA) from BIDS into the study format."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command, notice, split_list

EXAMPLES = """\
  brainnet betas --bids my_bids/ --subject 01 --task faces --out my_study/
  brainnet betas --bids ds004496/ --subject 01 --task imagenet --mask sub-01_brain_T1w.nii.gz --out nod_study/
  brainnet betas --bids my_bids/ --subject all --task faces --confounds acompcor --out my_study/
  brainnet betas --bids my_bids/ --subject all --task faces --scheduler tcp://host:8786 --out my_study/
  brainnet betas --bids my_bids/ --subject 01 --task faces --space MNI152NLin2009cAsym --method lsa --out my_study/
  brainnet betas --bids ds004192/ --subject 01 --task things --trial-types exp --confounds motion12 --out things_study/
  brainnet betas --bids raw/ --subject 02 --task faces --derivatives none --tr 2 --out study/
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "betas": (
        "estimate one beta map per trial (GLMsingle-class by default, or nilearn LSS/LSA) from a BIDS "
        "dataset with fMRIPrep derivatives and add the subjects to a study folder"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import BETA_METHODS, CONFOUND_STRATEGIES

    parser = add_command(subparsers, "betas", COMMANDS["betas"], EXAMPLES)
    parser.add_argument("--bids", type=Path, required=True, help="BIDS dataset root (events are read from it)")
    parser.add_argument("--subject", required=True,
                        help="subject label (01), several (01,02) or 'all'; finished subjects are reused, so a killed run resumes")
    parser.add_argument("--task", required=True, help="task label, e.g. imagenet")
    parser.add_argument("--derivatives", default="fmriprep",
                        help="fMRIPrep folder: a name under <bids>/derivatives or a path (default fmriprep); 'none' uses raw BOLD")
    parser.add_argument("--space", default=None, help="space- entity of the preprocessed BOLD when several exist")
    parser.add_argument("--method", choices=BETA_METHODS, default=BETA_METHODS[0],
                        help="single-trial estimator: glmsingle (default: per-voxel HRF, GLMdenoise, fractional ridge), "
                             "lss (nilearn least squares separate) or lsa (least squares all)")
    strategies = "; ".join(f"{name}: {text}" for name, text in CONFOUND_STRATEGIES.items())
    parser.add_argument("--confounds", choices=tuple(CONFOUND_STRATEGIES), default="motion24",
                        help=f"fMRIPrep confounds, loaded with nilearn's load_confounds (default motion24). {strategies}")
    parser.add_argument("--hrf", default="spm", help="nilearn HRF model (default spm)")
    parser.add_argument("--noise-model", choices=("ar1", "ols"), default="ar1", help="GLM noise model (default ar1)")
    parser.add_argument("--tr", type=float, default=None, help="repetition time in s (default: BOLD sidecar or header)")
    parser.add_argument("--stimulus-column", default=None, help="events column naming the stimulus (default stim_file, file_path, ...)")
    parser.add_argument("--trial-types", default=None, help="comma-separated trial_type values to keep (e.g. exp)")
    parser.add_argument("--mask", type=Path, default=None,
                        help="NIfTI of voxels to model (default: fMRIPrep's desc-brain_mask of the runs; "
                        "with --derivatives none, computed from the data)")
    parser.add_argument("--no-copy-stimuli", action="store_true", help="do not copy images from <bids>/stimuli into the study")
    parser.add_argument("--out", type=Path, required=True, help="study folder to create or add the subjects to")
    parser.add_argument("--overwrite", action="store_true", help="replace subjects of --out made from other inputs or parameters")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel workers of the GLM (default 1)")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address (e.g. tcp://host:8786): one task per subject; workers must see --bids at the same path")
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet.betas import write_betas_study

    derivatives = None if str(args.derivatives).lower() == "none" else args.derivatives
    out = write_betas_study(
        args.bids, args.subject, args.task, out=args.out, derivatives=derivatives, space=args.space,
        method=args.method, confounds=args.confounds, mask=args.mask, tr=args.tr,
        stimulus_column=args.stimulus_column,
        trial_types=split_list(args.trial_types),
        hrf_model=args.hrf, noise_model=args.noise_model, copy_stimuli=not args.no_copy_stimuli,
        overwrite=args.overwrite, n_jobs=args.n_jobs, scheduler=args.scheduler,
    )
    notice(f"wrote single-trial betas of {args.subject if args.subject == 'all' else 'sub-' + str(args.subject).removeprefix('sub-')} into {out}")
    print(out)
    return 0
