"""Subjects in their own space, and bringing them to a template for pooled analyses.

Public datasets release betas in each subject's own space (fMRIPrep's
``space-T1w``). Per-subject analyses (encoding, RSA, network decoding) run
there with the subject's own regions (``--mask occipital-aparc``); only pooled
decoding needs one voxel set. :func:`study_to_template` writes a copy of a
study whose betas are resampled to a template grid with each subject's own
fMRIPrep transform (``*_from-T1w_to-<template>_mode-image_xfm``), applied by
nitransforms (the maintained implementation of ITK/ANTs transforms in Python),
so nothing here resamples by hand.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["study_to_template"]

#: Interpolation of the betas: name -> spline order of nitransforms' ``apply``.
INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 3}


def study_to_template(
    study: Any,
    transforms: str | Mapping[str, str | Path],
    reference: str | Path,
    out: str | Path,
    *,
    space: str = "MNI152NLin2009cAsym",
    interpolation: str = "linear",
) -> Path:
    """Write a copy of ``study`` with every subject's betas resampled to a template.

    Parameters
    ----------
    study : Study or path
        A study whose subjects are in their own space (e.g. ``space-T1w``).
    transforms : str or dict of str -> path
        Each subject's transform from its space to the template, as fMRIPrep
        writes it (``sub-01_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5``,
        or an ITK affine ``.txt``/``.tfm``/``.mat``): a dict by subject label, or
        one path with ``{subject}`` in it.
    reference : str or Path
        An image on the template grid (its first three dimensions and affine
        define the output grid), e.g. the MNI152 brain mask at the betas'
        resolution.
    out : str or Path
        The new study folder (must not exist yet).
    space : str
        The template's BIDS ``space-`` label written into the betas' names.
    interpolation : {"nearest", "linear", "cubic"}
        How betas are interpolated.

    Returns
    -------
    Path
        ``out``, a study with the same subjects, trials and stimuli, whose
        ``brainnet_transforms.json`` records each transform's sha256.
    """
    from brainnet.results import atomic_write_json, atomic_write_nifti, sha256_file
    from brainnet.study import Study, load_study

    study = study if isinstance(study, Study) else load_study(study)
    if interpolation not in INTERPOLATIONS:
        raise BrainnetError(f"interpolation={interpolation!r}: unknown; use one of {', '.join(INTERPOLATIONS)}")
    out = Path(out)
    if out.exists():
        raise input_error(out, "already exists", "give a new folder for the study in template space")
    files = {label: _transform_file(transforms, label) for label in study.subjects}
    ref = _reference(reference)
    loaded = {label: _load_transform(path) for label, path in files.items()}  # every file checked before writing
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    _copy_tables(study.root, staging)
    for label in study.subjects:
        betas, events = study.subject_files(label)
        img = _resample(nib.load(str(betas)), loaded[label], ref, INTERPOLATIONS[interpolation])
        func = staging / f"sub-{label}" / "func"
        atomic_write_nifti(func / f"sub-{label}_task-{study.task}_space-{space}_desc-singletrial_betas.nii.gz", img)
        shutil.copy2(events, func / events.name)
    atomic_write_json(staging / "brainnet_transforms.json", {
        "space": space,
        "interpolation": interpolation,
        "reference": {"path": str(Path(reference).resolve()), "sha256": sha256_file(reference)},
        "transforms": {label: {"path": str(path.resolve()), "sha256": sha256_file(path)} for label, path in files.items()},
        "source_study": study.provenance(),
        "software": {"nitransforms": _version("nitransforms")},
    })
    os.replace(staging, out)
    return out


def _transform_file(transforms, label: str) -> Path:
    if isinstance(transforms, Mapping):
        if label not in transforms and f"sub-{label}" not in transforms:
            raise BrainnetError(f"transforms: no transform for sub-{label}; give one per subject of the study")
        path = Path(transforms.get(label, transforms.get(f"sub-{label}")))
    else:
        path = Path(str(transforms).replace("{subject}", label))
    if not path.is_file():
        raise input_error(path, f"transform of sub-{label} not found",
                          "give fMRIPrep's sub-<label>_from-T1w_to-<template>_mode-image_xfm.h5 of each subject")
    return path


def _load_transform(path: Path):
    from nitransforms import linear, manip

    try:
        if path.suffix == ".h5":  # fMRIPrep's composite (affine + warp) transform
            return manip.load(str(path), fmt="itk")
        return linear.load(str(path), fmt="itk")
    except Exception as err:  # nitransforms raises many types for unreadable files
        raise input_error(path, f"not a readable ITK transform ({type(err).__name__})",
                          "give the transform file fMRIPrep wrote (…_mode-image_xfm.h5 or an ITK .txt/.mat)") from None


def _reference(reference) -> nib.Nifti1Image:
    path = Path(reference)
    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for non-images
        raise input_error(path, f"not a readable NIfTI ({type(err).__name__})", "give an image on the template grid") from None
    return nib.Nifti1Image(np.zeros(img.shape[:3], np.uint8), img.affine)


def _resample(img: nib.Nifti1Image, transform, reference: nib.Nifti1Image, order: int) -> nib.Nifti1Image:
    from nitransforms.resampling import apply

    data = np.asarray(img.dataobj, dtype=np.float32)
    # nitransforms resamples 3-D images; betas are resampled one trial volume at a time.
    volumes = [np.asarray(apply(transform, nib.Nifti1Image(data[..., t], img.affine), reference=reference,
                                order=order, cval=np.nan).dataobj, dtype=np.float32)
               for t in range(data.shape[3])]
    return nib.Nifti1Image(np.stack(volumes, axis=-1), reference.affine)


def _copy_tables(root: Path, staging: Path) -> None:
    staging.mkdir(parents=True)
    for name in ("dataset_description.json", "participants.tsv", "stimuli.tsv"):
        if (root / name).is_file():
            shutil.copy2(root / name, staging / name)
    if (root / "stimuli").is_dir():
        # Hard links where the file system allows: a template copy of a study needs no second set of images.
        shutil.copytree(root / "stimuli", staging / "stimuli", copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
