"""``brainnet study info``: what a study folder holds (subjects, trials, voxels in a mask)."""

from __future__ import annotations

from pathlib import Path

from brainnet.cli._common import add_command

EXAMPLES = """\
  brainnet study info                                   the embedded demo study
  brainnet study info --study nod_study/ --mask v1
  brainnet study info --study sim/ --mask roi.nii.gz
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


def run(args) -> int:
    from brainnet.study import load_study

    study = load_study(args.study, task=args.task)
    n_cat = len(set(study.categories.values())) if study.categories else 0
    print(f"study: {study.root}")
    print(f"task: {study.task}")
    print(f"stimuli: {len(study.stimulus_ids)}" + (f" in {n_cat} categories" if n_cat else ""))
    print(f"subjects: {len(study.subjects)}")
    subjects = study.load_subjects(mask=args.mask)
    print(f"mask {args.mask}: {subjects[0].n_voxels} voxels shared by all subjects ({subjects[0].n_dropped} dropped)")
    print("subject\ttrials\tstimuli\truns")
    for sub in subjects:
        runs = "n/a" if sub.runs is None else str(len(set(sub.runs.tolist())))
        print(f"{sub.subject}\t{sub.patterns.shape[0]}\t{len(set(sub.stimulus_ids.tolist()))}\t{runs}")
    return 0
