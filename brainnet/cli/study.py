"""``brainnet study info``: what a study folder holds (subjects, trials, voxels in a mask);
``brainnet study from-released``: a study from a dataset's released single-trial betas."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command

EXAMPLES = """\
  brainnet study info                                   the embedded demo study
  brainnet study info --study nod_study/ --mask v1
  brainnet study info --study sim/ --mask roi.nii.gz
  brainnet fetch ds004496 --subjects 01 --what metadata,events,betas,stimuli --dest nod
  brainnet study from-released --source nod --out nod_study     (NOD's ciftify betas: no GLM)
  brainnet study info --study nod_study/ --mask occipital-aparc
"""


# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "study": "inspect a study folder",
}


def register(subparsers) -> None:
    parser = add_command(subparsers, "study", COMMANDS["study"], EXAMPLES)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = add_command(actions, "info", "print subjects, trials per subject and voxels in the mask", EXAMPLES)
    info.add_argument("--study", type=Path, default=None, help="study folder (default: the embedded demo study)")
    info.add_argument("--mask", default="occipital", help="region name or NIfTI path (default occipital)")
    info.add_argument("--task", default=None, help="task label when the study holds several")
    info.set_defaults(func=run)
    released = add_command(actions, "from-released", "make a study from a dataset's released single-trial betas (NOD)", EXAMPLES)
    released.add_argument("--source", type=Path, required=True, help="the fetched dataset folder (brainnet fetch ... --what metadata,events,betas,stimuli)")
    released.add_argument("--out", type=Path, required=True, help="the new study folder")
    released.add_argument("--dataset", default="ds004496", help="accession (default ds004496, NOD)")
    released.add_argument("--task", default="imagenet", help="task whose betas are read (default imagenet)")
    released.add_argument("--subjects", default=None, help="comma-separated labels (default: all with betas)")
    released.set_defaults(func=run_released)


def run(args) -> int:
    from brainnet.study import load_study

    study = load_study(args.study, task=args.task)
    n_cat = len(set(study.categories.values())) if study.categories else 0
    print(f"study: {study.root}")
    print(f"task: {study.task}")
    print(f"stimuli: {len(study.stimulus_ids)}" + (f" in {n_cat} categories" if n_cat else ""))
    print(f"subjects: {len(study.subjects)}")
    from brainnet.study import voxel_counts

    subjects = study.load_subjects(mask=args.mask, shared=None)
    own = not isinstance(voxel_counts(subjects), int)
    if own:
        print(f"mask {args.mask}: each subject's own voxels or vertices (counts below)")
    else:
        print(f"mask {args.mask}: {subjects[0].n_voxels} voxels shared by all subjects ({subjects[0].n_dropped} dropped)")
    print("subject\ttrials\tstimuli\truns" + ("\tvoxels" if own else ""))
    for sub in subjects:
        runs = "n/a" if sub.runs is None else str(len(set(sub.runs.tolist())))
        print(f"{sub.subject}\t{sub.patterns.shape[0]}\t{len(set(sub.stimulus_ids.tolist()))}\t{runs}"
              + (f"\t{sub.n_voxels}" if own else ""))
    return 0


def run_released(args) -> int:
    from brainnet.released import study_from_released_betas

    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()] if args.subjects else None
    out = study_from_released_betas(args.source, args.out, dataset=args.dataset, task=args.task, subjects=subjects)
    print(f"study: {out}")
    return 0
