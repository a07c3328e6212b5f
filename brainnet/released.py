"""A study from the single-trial betas a dataset releases (no GLM needed).

NOD (OpenNeuro ds004496) releases, for every ImageNet run, the GLM betas of
its 100 trials on the fsLR 32k surface (ciftify)::

    derivatives/ciftify/sub-XX/results/ses-<ses>_task-imagenet_run-<N>/
        ses-<ses>_task-imagenet_run-<N>_beta.dscalar.nii   (one map per trial)
        ses-<ses>_task-imagenet_run-<N>_label.txt          (one line per map)
    derivatives/ciftify/sub-XX/standard_fsLR_surface/
        sub-XX.aparc.32k_fs_LR.dlabel.nii                  (the subject's own Desikan-Killiany parcellation)
        sub-XX.{L,R}.{midthickness,inflated}.32k_fs_LR.surf.gii
    stimuli/imagenet/<synset>/<image>.JPEG

:func:`study_from_released_betas` turns that into a surface study (see
:mod:`brainnet.surfaces`): per subject one ``dscalar`` with every trial, an
events table naming the image of each trial, the subject's aparc ``dlabel``
(regions ``occipital-aparc`` etc. are its vertex sets) and meshes; the
images each subject saw are linked into ``stimuli/``. Fetch the files with
``brainnet fetch ds004496 --what metadata,betas,stimuli``.

The ``label.txt`` format, and the assumption made about it: the NOD data
descriptor says only that the file holds "the auxiliary information about
labels or conditions" of the run. The authors' analysis code reads the beta
maps of a run in file order (100 per run) and writes its own label files one
name per line. brainnet therefore reads ``label.txt`` as **one line per beta
map, in map order, each line naming the image of that trial** (a path such as
``n03131574/n03131574_8247.JPEG``, or a bare file name); the stimulus id is
the image file name without extension. It checks what it can: the number of
lines equals the number of maps, every line names an image that exists under
``stimuli/<task>/`` (or is listed in the run's raw ``events.tsv``
``stim_file`` column), and the run's events name the same set of images when
they are present. A file that breaks these is refused with a one-line error.

No fsLR atlas is shipped with brainnet: each NOD subject's own aparc
parcellation on the same mesh comes with the data (its sha256 is recorded in
the study's provenance), and nothing may be downloaded at run time.
THINGS-fMRI and BOLD5000 publish their single-trial betas outside OpenNeuro
(see the manifests' ``betas`` entry); their readers are not written yet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["study_from_released_betas", "RELEASED_BETAS"]

#: Datasets whose released betas brainnet can read.
RELEASED_BETAS = ("ds004496",)

_RUN = re.compile(r"^ses-(?P<ses>[A-Za-z0-9]+)_task-(?P<task>[A-Za-z0-9]+)_run-(?P<run>\d+)$")
_IMAGE_EXT = (".jpeg", ".jpg", ".png", ".bmp")


def _runs(subject_dir: Path, task: str) -> list[tuple[str, int, Path]]:
    results = subject_dir / "results"
    found = []
    for folder in sorted(results.iterdir()) if results.is_dir() else []:
        m = _RUN.match(folder.name)
        if m and m["task"] == task:
            found.append((m["ses"], int(m["run"]), folder))
    return sorted(found, key=lambda r: (r[0], r[1]))


def _labels(path: Path, n_maps: int) -> list[str]:
    if not path.is_file():
        raise input_error(path, "label file not found", "fetch the run's *_label.txt with its beta file (brainnet fetch ds004496 --what betas)")
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if len(lines) != n_maps:
        raise input_error(path, f"{len(lines)} labels but its beta file has {n_maps} maps",
                          "fetch both files of the run again (one label line per beta map)")
    return lines


def _stem(label: str) -> str:
    name = label.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if name.lower().endswith(_IMAGE_EXT) else name


def _raw_events(source: Path, label: str, ses: str, task: str, run: int):
    import pandas as pd

    func = source / f"sub-{label}" / f"ses-{ses}" / "func"
    for name in (f"sub-{label}_ses-{ses}_task-{task}_run-{run:02d}_events.tsv", f"sub-{label}_ses-{ses}_task-{task}_run-{run}_events.tsv"):
        if (func / name).is_file():
            return func / name, pd.read_csv(func / name, sep="\t", dtype=str, keep_default_na=False)
    return None, None


def _image_path(source: Path, task: str, label_line: str, events_files: dict[str, str]) -> Path | None:
    """The image a label line names, relative to ``<source>/stimuli`` (None when it is not there)."""
    stem = _stem(label_line)
    candidates = [f"{task}/{label_line}", label_line]
    if stem in events_files:
        candidates.insert(0, events_files[stem])
    for rel in candidates:
        if (source / "stimuli" / rel).is_file():
            return Path(rel)
    return None


def study_from_released_betas(source: str | Path, out: str | Path, *, dataset: str = "ds004496",
                              task: str = "imagenet", subjects=None, overwrite: bool = False) -> Path:
    """Make a surface study from a dataset's released single-trial betas.

    Parameters
    ----------
    source : str or Path
        The dataset folder as fetched (``brainnet fetch ds004496 --what
        metadata,events,betas,stimuli --dest <source>``).
    out : str or Path
        The new study folder (written atomically: complete or absent).
    dataset : str
        Accession; one of :data:`RELEASED_BETAS`.
    task : str
        The task whose betas are read.
    subjects : sequence of str, optional
        Labels (default: every subject with betas of ``task``).
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    Path
        The study folder: ``sub-XX/func/sub-XX_task-<task>_space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii``
        with one map per trial (runs in session, run order), its events table
        (``stimulus_id``, ``run``, ``session``, ``label``), ``sub-XX/anat`` with
        the aparc ``dlabel`` and the meshes, ``stimuli.tsv`` and ``stimuli/``.
    """
    import nibabel as nib
    import pandas as pd

    from brainnet.results import atomic_write_json, atomic_write_tsv, sha256_file
    from brainnet.surfaces import read_surface_betas

    if dataset not in RELEASED_BETAS:
        raise BrainnetError(f"--dataset {dataset}: brainnet reads the released betas of {', '.join(RELEASED_BETAS)} only; "
                            "for other datasets estimate single-trial betas with brainnet betas")
    source, out = Path(source).expanduser(), Path(out).expanduser()
    ciftify = source / "derivatives" / "ciftify"
    if not ciftify.is_dir():
        raise input_error(ciftify, "released betas not found",
                          f"fetch them first: brainnet fetch {dataset} --what metadata,events,betas,stimuli --dest {source}")
    if out.exists() and not overwrite:
        raise input_error(out, "already exists", "choose a new --out folder or pass overwrite=True")
    available = sorted(p.name.removeprefix("sub-") for p in ciftify.glob("sub-*") if _runs(p, task))
    if subjects is not None:
        wanted = [str(s).removeprefix("sub-") for s in ([subjects] if isinstance(subjects, str) else subjects)]
        missing = [s for s in wanted if s not in available]
        if missing:
            raise input_error(ciftify, f"no {task} betas for sub-{missing[0]} (have: {', '.join(available) or 'none'})",
                              f"fetch them: brainnet fetch {dataset} --subjects {missing[0]} --what betas")
        available = wanted
    if not available:
        raise input_error(ciftify, f"no sub-*/results/ses-*_task-{task}_run-*/ folders",
                          f"fetch the betas: brainnet fetch {dataset} --what betas")

    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        stimuli: dict[str, Path] = {}
        sources: dict[str, str] = {}
        tables = {}
        for label in available:
            sub = ciftify / f"sub-{label}"
            blocks, rows, axis = [], [], None
            for run_index, (ses, run, folder) in enumerate(_runs(sub, task), start=1):
                stem = folder.name
                beta = folder / f"{stem}_beta.dscalar.nii"
                data, run_axis = read_surface_betas(beta)
                if axis is None:
                    axis = run_axis
                elif run_axis != axis:
                    raise input_error(beta, "grayordinates differ from the subject's first run",
                                      "fetch the run again (every run of a subject is on one mesh)")
                lines = _labels(folder / f"{stem}_label.txt", data.shape[0])
                events_path, events = _raw_events(source, label, ses, task, run)
                events_files = {}
                if events is not None and "stim_file" in events.columns:
                    events_files = {_stem(f): f for f in events["stim_file"] if f.strip().lower() not in ("", "n/a")}
                    if set(map(_stem, lines)) - set(events_files):
                        odd = sorted(set(map(_stem, lines)) - set(events_files))[0]
                        raise input_error(folder / f"{stem}_label.txt", f"label {odd!r} is not an image of {events_path.name}",
                                          "check that label.txt and events.tsv are of the same run (one line per beta map)")
                for line in lines:
                    sid = _stem(line)
                    image = _image_path(source, task, line, events_files)
                    if image is None:
                        raise input_error(source / "stimuli" / task / line, "image of a trial not found",
                                          f"fetch the stimuli: brainnet fetch {dataset} --what stimuli")
                    stimuli.setdefault(sid, image)
                    rows.append({"stimulus_id": sid, "run": run_index, "session": ses, "source_run": run, "label": line})
                blocks.append(data)
                sources[beta.relative_to(source).as_posix()] = sha256_file(beta)
                sources[(folder / f"{stem}_label.txt").relative_to(source).as_posix()] = sha256_file(folder / f"{stem}_label.txt")
            betas = np.concatenate(blocks).astype(np.float32)
            func, anat = staging / f"sub-{label}" / "func", staging / f"sub-{label}" / "anat"
            func.mkdir(parents=True)
            anat.mkdir(parents=True)
            scalar = nib.cifti2.ScalarAxis([r["stimulus_id"] for r in rows])
            img = nib.Cifti2Image(betas, header=nib.cifti2.Cifti2Header.from_axes((scalar, axis)))
            img.to_filename(str(func / f"sub-{label}_task-{task}_space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii"))
            tables[label] = pd.DataFrame(rows)
            atomic_write_tsv(func / f"sub-{label}_task-{task}_desc-singletrial_events.tsv", tables[label])
            surf = sub / "standard_fsLR_surface"
            dlabel = surf / f"sub-{label}.aparc.32k_fs_LR.dlabel.nii"
            if not dlabel.is_file():
                raise input_error(dlabel, "the subject's fsLR parcellation not found",
                                  f"fetch it with the betas: brainnet fetch {dataset} --subjects {label} --what betas")
            shutil.copy2(dlabel, anat / f"sub-{label}_space-fsLR_den-32k_desc-aparc_dseg.dlabel.nii")
            sources[dlabel.relative_to(source).as_posix()] = sha256_file(dlabel)
            for hemi in ("L", "R"):
                for surface in ("midthickness", "inflated"):
                    mesh = surf / f"sub-{label}.{hemi}.{surface}.32k_fs_LR.surf.gii"
                    if mesh.is_file():
                        shutil.copy2(mesh, anat / f"sub-{label}_hemi-{hemi}_space-fsLR_den-32k_{surface}.surf.gii")
                        sources[mesh.relative_to(source).as_posix()] = sha256_file(mesh)
        ids = sorted(stimuli)
        (staging / "stimuli").mkdir()
        for sid in ids:
            target = staging / "stimuli" / stimuli[sid]
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source / "stimuli" / stimuli[sid], target)
        categories = [stimuli[s].parent.name if stimuli[s].parent.name not in ("", task) else "n/a" for s in ids]
        atomic_write_tsv(staging / "stimuli.tsv", pd.DataFrame({"stimulus_id": ids, "file": [stimuli[s].as_posix() for s in ids],
                                                                "category": categories}))
        atomic_write_tsv(staging / "participants.tsv", pd.DataFrame({"participant_id": [f"sub-{s}" for s in available]}))
        atomic_write_json(staging / "dataset_description.json", {
            "Name": f"{dataset} released single-trial betas ({task})",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "brainnet.study_from_released_betas", "Version": _version()}],
            "SourceDatasets": [{"URL": f"https://openneuro.org/datasets/{dataset}", "Path": str(source.resolve())}],
            "brainnet": {"label_txt": "one line per beta map, in map order, naming the trial's image (see brainnet.released)",
                         "source_sha256": sources},
        })
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _version() -> str:
    from brainnet.results import brainnet_version

    return brainnet_version()


def describe(study: str | Path) -> dict[str, Any]:
    """The ``brainnet`` record of a study made by :func:`study_from_released_betas` (source files and checksums)."""
    return json.loads((Path(study) / "dataset_description.json").read_text(encoding="utf-8")).get("brainnet", {})
