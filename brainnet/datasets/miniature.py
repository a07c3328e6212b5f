"""A miniature BIDS dataset with fMRIPrep derivatives and a planted, known truth.

:func:`simulate_fmriprep_dataset` writes what a researcher's folder looks like
after fMRIPrep, small enough for tests and notebooks (a few subjects, a few
runs, a grid of a few hundred voxels)::

    <root>/dataset_description.json, participants.tsv, task-<task>_bold.json
    <root>/stimuli/<image>.png
    <root>/sub-<s>/func/sub-<s>_task-<task>_run-<r>_{events.tsv,bold.nii.gz,bold.json}
    <root>/derivatives/fmriprep/dataset_description.json        (GeneratedBy fMRIPrep)
    <root>/derivatives/fmriprep/sub-<s>/func/sub-<s>_task-<task>_run-<r>_
        space-<space>_desc-preproc_bold.{nii.gz,json}
        space-<space>_desc-brain_mask.nii.gz
        desc-confounds_timeseries.{tsv,json}

The confounds table has the columns fMRIPrep writes (24 motion parameters,
``framewise_displacement``, ``dvars``/``std_dvars``, ``global_signal``,
``csf``, ``white_matter`` with their expansions, ``a_comp_cor_*``,
``c_comp_cor_*``, ``w_comp_cor_*``, ``t_comp_cor_*``, ``cosine*``,
``motion_outlier*``; derivatives ``n/a`` in the first row) and its JSON
sidecar carries the CompCor metadata (``Method``, ``Mask``,
``VarianceExplained``, ``CumulativeVarianceExplained``, ``SingularValue``,
``Retained``) that nilearn's ``load_confounds`` reads to pick aCompCor
components.

The preprocessed BOLD is ``100 + signal + nuisance + noise`` inside the brain
mask (and dim noise outside it). The signal: ``n_planted`` voxels respond to
each image with ``zscore(fc8 of the image) @ W`` (untrained EmoNet, seed 0;
``W`` shared by all subjects, so subjects share a representational geometry),
convolved with SPM's HRF. The nuisance is what the confound strategies model:
motion traces and aCompCor / WM / CSF signals with voxel-specific loadings,
slow drift, and a few high-motion volumes (framewise displacement > 0.5 mm)
with a spike artefact in every voxel.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainnet.errors import input_error

__all__ = ["MiniatureDataset", "simulate_fmriprep_dataset", "simulate_released_betas"]

_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_PHYSIO = ("global_signal", "csf", "white_matter")
_N_ACOMPCOR = 5  # combined-mask components, as fMRIPrep lists them first


@dataclass
class MiniatureDataset:
    """What :func:`simulate_fmriprep_dataset` wrote and planted.

    Attributes
    ----------
    root : Path
        The BIDS root; fMRIPrep outputs are in ``root / "derivatives" / "fmriprep"``.
    task : str
    subjects : list of str
        Labels without ``sub-``.
    space : str
        The ``space-`` entity of the preprocessed BOLD.
    planted : ndarray of shape (n_planted,), int
        Flat (C-order) indices of the voxels that carry the signal.
    brain_mask : ndarray of shape grid, bool
        fMRIPrep's brain mask (the same for every run).
    stimuli : list of str
        The events' ``stim_file`` values (paths under ``root / "stimuli"``).
    high_motion : dict of (subject, run) -> list of int
        Volumes with framewise displacement > 0.5 mm.
    """

    root: Path
    task: str
    subjects: list[str]
    space: str
    planted: np.ndarray
    brain_mask: np.ndarray
    stimuli: list[str]
    high_motion: dict


def simulate_fmriprep_dataset(
    root: str | Path,
    *,
    n_subjects: int = 3,
    n_runs: int = 2,
    n_stimuli: int = 32,
    shape: tuple[int, int, int] = (6, 6, 6),
    n_planted: int = 6,
    tr: float = 1.0,
    task: str = "images",
    space: str = "MNI152NLin2009cAsym",
    amplitude: float = 20.0,
    noise: float = 1.0,
    events_from: list | None = None,
    seed: int = 0,
) -> MiniatureDataset:
    """Write a miniature BIDS + fMRIPrep dataset (see the module docstring).

    Parameters
    ----------
    root : str or Path
        New folder (refused if it exists and is not empty).
    n_subjects, n_runs : int
        Every subject has ``n_runs`` runs; each run shows every stimulus once,
        in its own random order.
    n_stimuli : int
        Images (procedural, :func:`brainnet.simulate.simulated_images`).
    shape : tuple of 3 int
        Grid of 4 mm voxels.
    n_planted : int
        Voxels (inside the brain mask) that respond to the images.
    tr : float
        Repetition time in seconds.
    task, space : str
        BIDS ``task-`` and fMRIPrep ``space-`` labels.
    amplitude, noise : float
        Scale of the planted response (per unit of z-scored drive, multiplying
        nilearn's SPM regressor of a trial, whose peak is ~0.2 for a 1 s
        image) and SD of the white noise.
    events_from : list of str or Path, optional
        BIDS events files (e.g. real NOD runs) whose first ``n_stimuli``
        onsets and durations time the runs, one per run, reused cyclically.
        Default: a 1 s image every 6 s with 0-1 s jitter, 6 s after the start.
    seed : int
        Everything random derives from it.

    Returns
    -------
    MiniatureDataset
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    from brainnet.extract import extract_activations
    from brainnet.simulate import simulated_images

    root = Path(root).expanduser()
    if root.exists() and any(root.iterdir()):
        raise input_error(root, "exists and is not empty", "give a new folder for the miniature dataset")
    rng = np.random.default_rng([seed, 15])
    deriv = root / "derivatives" / "fmriprep"
    deriv.mkdir(parents=True)
    _write_json(root / "dataset_description.json", {"Name": "brainnet miniature fMRIPrep dataset", "BIDSVersion": "1.9.0", "DatasetType": "raw"})
    _write_json(deriv / "dataset_description.json", {
        "Name": "fMRIPrep - simulated outputs", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0", "Description": "simulated by brainnet"}],
    })
    subjects = [f"{s + 1:02d}" for s in range(n_subjects)]
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects]}).to_csv(root / "participants.tsv", sep="\t", index=False)
    _write_json(root / f"task-{task}_bold.json", {"RepetitionTime": tr, "TaskName": task})

    _, files, _ = simulated_images(root / "stimuli", n_stimuli, seed=seed)
    fc8 = extract_activations(root / "stimuli", layers=("fc8",), seed=0).align([Path(f).stem for f in files]).layer("fc8")
    drive = (fc8 - fc8.mean(0)) / (fc8.std(0) + 1e-12) @ rng.standard_normal((fc8.shape[1], n_planted))
    drive = (drive - drive.mean(0)) / drive.std(0)  # (n_stimuli, n_planted)

    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -2.0 * np.asarray(shape)
    centre = (np.asarray(shape) - 1) / 2.0
    ijk = np.indices(shape).reshape(3, -1).T
    brain = (np.linalg.norm((ijk - centre) / (np.asarray(shape) / 2.0), axis=1) <= 1.0).reshape(shape)
    inside = np.flatnonzero(brain.ravel())
    planted = np.sort(rng.choice(inside, size=n_planted, replace=False))
    n_vox = int(np.prod(shape))

    timings = [_read_timing(p, n_stimuli) for p in events_from] if events_from else None
    high_motion: dict = {}
    for subject in subjects:
        func, dfunc = root / f"sub-{subject}" / "func", deriv / f"sub-{subject}" / "func"
        func.mkdir(parents=True)
        dfunc.mkdir(parents=True)
        for run in range(1, n_runs + 1):
            order = rng.permutation(n_stimuli)
            if timings:
                onsets, durations = timings[(run - 1) % len(timings)]
            else:
                onsets = 6.0 + 6.0 * np.arange(n_stimuli) + rng.uniform(0, 1, n_stimuli)
                durations = np.ones(n_stimuli)
            n_vols = int(np.ceil((onsets.max() + 24.0) / tr))
            stem = f"sub-{subject}_task-{task}_run-{run:02d}"
            events = pd.DataFrame({"onset": np.round(onsets, 4), "duration": durations, "trial_type": "image",
                                   "stim_file": [files[i] for i in order]})
            events.to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)

            trials = pd.DataFrame({"onset": onsets, "duration": durations, "trial_type": [f"t{i:03d}" for i in range(n_stimuli)]})
            design = make_first_level_design_matrix(np.arange(n_vols) * tr, trials, hrf_model="spm", drift_model=None)
            x = design[[f"t{i:03d}" for i in range(n_stimuli)]].to_numpy()
            betas = np.zeros((n_stimuli, n_vox))
            betas[:, planted] = amplitude * drive[order]
            conf, nuisance, spikes = _confounds(rng, n_vols, tr, n_vox, with_spikes=(run == 1))
            high_motion[(subject, run)] = spikes
            data = x @ betas + nuisance + noise * rng.standard_normal((n_vols, n_vox))
            data[:, brain.ravel()] += 100.0
            data[:, ~brain.ravel()] = 5.0 + 0.5 * rng.standard_normal((n_vols, int((~brain).sum())))
            img = nib.Nifti1Image(data.T.reshape(*shape, n_vols).astype(np.float32), affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = tr
            img.to_filename(func / f"{stem}_bold.nii.gz")
            _write_json(func / f"{stem}_bold.json", {"RepetitionTime": tr, "TaskName": task})
            prep = f"{stem}_space-{space}"
            img.to_filename(dfunc / f"{prep}_desc-preproc_bold.nii.gz")
            _write_json(dfunc / f"{prep}_desc-preproc_bold.json", {"RepetitionTime": tr, "SkullStripped": False, "TaskName": task})
            nib.Nifti1Image(brain.astype(np.uint8), affine).to_filename(dfunc / f"{prep}_desc-brain_mask.nii.gz")
            table, meta = conf
            table.to_csv(dfunc / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
            _write_json(dfunc / f"{stem}_desc-confounds_timeseries.json", meta)
        # fMRIPrep's FreeSurfer parcellation (T1w space: no space entity): the planted voxels are
        # lateral occipital cortex (1011), the rest of the brain superior frontal (1028).
        anat = deriv / f"sub-{subject}" / "anat"
        anat.mkdir(parents=True)
        labels = np.where(brain.ravel(), 1028, 0)
        labels[planted] = 1011
        entity = "" if space == "T1w" else f"_space-{space}"
        nib.Nifti1Image(labels.reshape(shape).astype(np.int16), affine).to_filename(
            anat / f"sub-{subject}{entity}_desc-aparcaseg_dseg.nii.gz")
    return MiniatureDataset(root, task, subjects, space, planted, brain, list(files), high_motion)


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def _read_timing(path, n: int) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_csv(path, sep="\t")
    if len(table) < n:
        raise input_error(path, f"has {len(table)} events, fewer than n_stimuli={n}", "lower n_stimuli or give longer runs")
    onsets = table["onset"].to_numpy(float)[:n]
    return onsets - onsets.min() + 6.0, table["duration"].to_numpy(float)[:n]


def _smooth(rng, n: int, k: int, width: float = 3.0) -> np.ndarray:
    """``k`` slow, unit-variance signals of length ``n`` (Gaussian-smoothed white noise)."""
    from scipy.ndimage import gaussian_filter1d

    x = gaussian_filter1d(rng.standard_normal((n, k)), width, axis=0)
    return (x - x.mean(0)) / x.std(0)


def _expand(frame: pd.DataFrame, names) -> pd.DataFrame:
    """fMRIPrep's ``_derivative1``, ``_power2`` and ``_derivative1_power2`` columns (first derivative n/a)."""
    out = {}
    for name in names:
        x = frame[name]
        d = x.diff()
        out.update({name: x, f"{name}_derivative1": d, f"{name}_power2": x**2, f"{name}_derivative1_power2": d**2})
    return pd.DataFrame(out)


def _confounds(rng, n: int, tr: float, n_vox: int, with_spikes: bool):
    """One run's fMRIPrep confounds table + JSON sidecar, the nuisance they explain, and the spike volumes."""
    # Random walks: translations in mm, rotations in radians (0.02 mm and 0.0003 rad per volume: FD ~0.1 mm).
    steps = rng.normal(0, 1, (n, 6)) * [0.02, 0.02, 0.02, 0.0003, 0.0003, 0.0003]
    motion = pd.DataFrame(np.cumsum(steps, axis=0), columns=list(_MOTION))
    spikes: list[int] = []
    if with_spikes:
        # Two isolated jerks: the head moves ~1 mm for one volume and comes back.
        spikes = sorted(rng.choice(np.arange(5, n - 6, 4), size=2, replace=False).tolist())
        for v in spikes:
            motion.loc[v, "trans_x"] += 1.0
    d = motion.diff().abs()
    fd = d[["trans_x", "trans_y", "trans_z"]].sum(axis=1) + 50.0 * d[["rot_x", "rot_y", "rot_z"]].sum(axis=1)
    fd.iloc[0] = np.nan
    acomp = _smooth(rng, n, _N_ACOMPCOR)
    physio = pd.DataFrame(_smooth(rng, n, 3, width=5.0) * [2.0, 1.0, 1.0] + [600.0, 800.0, 500.0], columns=list(_PHYSIO))
    nuisance = (
        acomp @ rng.normal(0, 1.0, (_N_ACOMPCOR, n_vox))
        + ((motion.to_numpy() - motion.to_numpy().mean(0)) * [1, 1, 1, 50, 50, 50]) @ rng.normal(0, 5.0, (6, n_vox))
        + np.linspace(-1, 1, n)[:, None] * rng.normal(0, 1.0, n_vox)
    )
    # A jerk corrupts the volume it happens in and the next: both are flagged, as FD of both is large.
    flagged = [v for s in spikes for v in (s, s + 1)]
    nuisance[flagged] += 15.0
    dvars = pd.Series(np.r_[np.nan, np.abs(np.diff(physio["global_signal"]))]) + 10.0
    std_dvars = dvars / dvars.median()
    std_dvars[flagged] = 3.0
    table = pd.concat([_expand(physio, _PHYSIO)], axis=1)
    table["csf_wm"] = (physio["csf"] + physio["white_matter"]) / 2
    table["tcompcor"] = _smooth(rng, n, 1)[:, 0]
    table["std_dvars"] = std_dvars
    table["dvars"] = dvars
    table["framewise_displacement"] = fd
    table["rmsd"] = fd / 2
    comp = {
        **{f"t_comp_cor_{i:02d}": x for i, x in enumerate(_smooth(rng, n, 2).T)},
        **{f"c_comp_cor_{i:02d}": x for i, x in enumerate(_smooth(rng, n, 2).T)},
        **{f"w_comp_cor_{i:02d}": x for i, x in enumerate(_smooth(rng, n, 2).T)},
        **{f"a_comp_cor_{i:02d}": x for i, x in enumerate(acomp.T)},
    }
    for name, x in comp.items():
        table[name] = x
    frame_times = np.arange(n) * tr
    n_cos = max(1, int(np.floor(2 * n * tr / 128.0)))  # fMRIPrep's 128 s cutoff
    for k in range(n_cos):
        table[f"cosine{k:02d}"] = np.sqrt(2.0 / n) * np.cos(np.pi * (k + 1) * (frame_times / tr + 0.5) / n)
    table = pd.concat([table, _expand(motion, _MOTION)], axis=1)
    for i, v in enumerate(flagged):
        table[f"motion_outlier{i:02d}"] = (np.arange(n) == v).astype(float)
    meta = {}
    for prefix, method, mask in (("t", "tCompCor", None), ("c", "aCompCor", "CSF"), ("w", "aCompCor", "WM"), ("a", "aCompCor", "combined")):
        names = [c for c in comp if c.startswith(f"{prefix}_comp_cor_")]
        var = np.linspace(0.3, 0.1, len(names))
        for i, name in enumerate(names):
            entry = {"Method": method, "Retained": True, "SingularValue": float(20.0 - 2 * i),
                     "VarianceExplained": float(var[i]), "CumulativeVarianceExplained": float(var[: i + 1].sum())}
            if mask:
                entry["Mask"] = mask
            meta[name] = entry
    meta["dropped_0"] = {"Method": "aCompCor", "Mask": "combined", "Retained": False, "SingularValue": 1.0,
                         "VarianceExplained": 0.01, "CumulativeVarianceExplained": 0.99}
    return (table, meta), nuisance, flagged


# -- a miniature of NOD's released surface betas ---------------------------------------

_N_MEDIAL = 3  # mesh vertices of each hemisphere outside the brain model (a "medial wall")


def simulate_released_betas(root: str | Path, *, n_subjects: int = 3, n_stimuli: int = 40, n_repeats: int = 2,
                            n_other: int = 60, resolution_mm: float = 8.0, snr: float = 1.0, seed: int = 5) -> Path:
    """A miniature NOD-shaped dataset of released single-trial betas on the surface.

    A simulated MNI study (:func:`brainnet.simulate.simulate_study`, planted
    truth in ``<root>/sourcedata/volume``) is re-expressed as NOD's ciftify
    outputs: each subject's grayordinates are its occipital voxels plus
    ``n_other`` other brain voxels, in the scan order of the volume, the first
    half on a left and the rest on a right "cortex" mesh (plus a few mesh
    vertices outside the brain model); per run a ``*_beta.dscalar.nii`` and a
    ``*_label.txt`` (one image per line), the subject's
    ``sub-XX.aparc.32k_fs_LR.dlabel.nii`` (occipital voxels are
    ``L_/R_lateraloccipital``, the others ``superiorfrontal``), small synthetic
    midthickness and inflated meshes, raw ``events.tsv`` with ``stim_file``
    and the images under ``stimuli/imagenet/<synset>/``. Encoding on the
    surface region ``occipital-aparc`` therefore equals encoding on the MNI
    study with the ``occipital`` mask, value for value.

    Returns
    -------
    Path
        ``root``.
    """
    import nibabel as nib

    from brainnet.masks import load_mask
    from brainnet.simulate import simulate_study
    from brainnet.study import load_study

    root = Path(root)
    volume = simulate_study(root / "sourcedata" / "volume", n_subjects=n_subjects, n_stimuli=n_stimuli,
                            n_repeats=n_repeats, snr=snr, seed=seed, resolution_mm=resolution_mm)
    study = load_study(volume)
    files = dict(zip(study.stimulus_ids, study.stimulus_files, strict=True))
    synset = {sid: f"n{1000 + i % 4:08d}" for i, sid in enumerate(study.stimulus_ids)}  # four "categories"
    for sid, rel in files.items():
        target = root / "stimuli" / "imagenet" / synset[sid] / f"{sid}{Path(rel).suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(volume / "stimuli" / rel, target)
    _write_json(root / "dataset_description.json", {"Name": "miniature NOD (released betas)", "BIDSVersion": "1.7.0"})
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in study.subjects]}).to_csv(root / "participants.tsv", sep="\t", index=False)
    for label in study.subjects:
        betas, events = study.subject_files(label)
        img = nib.load(str(betas))
        data = np.asarray(img.dataobj, dtype=np.float32)
        occipital = np.asarray(load_mask("occipital", target_img=img).dataobj) > 0
        varies = data.std(axis=3) > 0
        others = np.flatnonzero((~occipital & varies).ravel())[:: max(1, int((~occipital & varies).sum()) // n_other)][:n_other]
        chosen = np.zeros(occipital.size, dtype=bool)
        chosen[np.flatnonzero(occipital.ravel())] = True
        chosen[others] = True
        flat = np.flatnonzero(chosen)  # scan order
        half = flat.size // 2
        hemis = {"CIFTI_STRUCTURE_CORTEX_LEFT": flat[:half], "CIFTI_STRUCTURE_CORTEX_RIGHT": flat[half:]}
        axis = None
        for name, voxels in hemis.items():
            n_vertices = voxels.size + _N_MEDIAL
            model = nib.cifti2.BrainModelAxis.from_mask(np.r_[np.zeros(_N_MEDIAL, bool), np.ones(voxels.size, bool)], name=name)
            assert model.nvertices[name] == n_vertices
            axis = model if axis is None else axis + model
        table = pd.read_csv(events, sep="\t", dtype=str)
        values = data.reshape(-1, data.shape[3])[flat].T  # (n_trials, n_grayordinates)
        sub = root / "derivatives" / "ciftify" / f"sub-{label}"
        runs = table["run"].astype(int).to_numpy() if "run" in table.columns else np.ones(len(table), int)
        for run in np.unique(runs):
            rows = np.flatnonzero(runs == run)
            stem = f"ses-imagenet01_task-imagenet_run-{run}"
            folder = sub / "results" / stem
            folder.mkdir(parents=True)
            names = [f"{synset[s]}/{s}{Path(files[s]).suffix}" for s in table["stimulus_id"].iloc[rows]]
            scalar = nib.cifti2.ScalarAxis([f"trial{i}" for i in range(rows.size)])
            nib.Cifti2Image(values[rows], header=nib.cifti2.Cifti2Header.from_axes((scalar, axis))).to_filename(
                str(folder / f"{stem}_beta.dscalar.nii"))
            (folder / f"{stem}_label.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
            func = root / f"sub-{label}" / "ses-imagenet01" / "func"
            func.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"onset": 4.0 * np.arange(rows.size), "duration": 1.0, "trial_type": "n/a",
                          "stim_file": [f"imagenet/{n}" for n in names]}).to_csv(
                func / f"sub-{label}_ses-imagenet01_task-imagenet_run-{run:02d}_events.tsv", sep="\t", index=False)
        surf = sub / "standard_fsLR_surface"
        surf.mkdir(parents=True)
        in_occipital = occipital.ravel()[flat]
        keys = np.where(in_occipital, 1, 2).astype(np.float32)
        label_table = {0: ("???", (0, 0, 0, 0)), 1: ("L_lateraloccipital", (0.1, 0.1, 0.8, 1)),
                       2: ("L_superiorfrontal", (0.8, 0.1, 0.1, 1))}
        label_axis = nib.cifti2.LabelAxis(["aparc"], [label_table])
        nib.Cifti2Image(keys[None], header=nib.cifti2.Cifti2Header.from_axes((label_axis, axis))).to_filename(
            str(surf / f"sub-{label}.aparc.32k_fs_LR.dlabel.nii"))
        for (_name, voxels), hemi in zip(hemis.items(), ("L", "R"), strict=True):
            for surface, scale in (("midthickness", 1.0), ("inflated", 1.3)):
                _write_mesh(surf / f"sub-{label}.{hemi}.{surface}.32k_fs_LR.surf.gii", voxels.size + _N_MEDIAL,
                            scale, -1.0 if hemi == "L" else 1.0)
    return root


def _write_mesh(path: Path, n_vertices: int, scale: float, side: float) -> None:
    """A small synthetic mesh: ``n_vertices`` on a curved sheet, triangulated row by row."""
    import nibabel as nib

    width = int(np.ceil(np.sqrt(n_vertices)))
    v = np.arange(n_vertices)
    x, y = v % width, v // width
    coords = np.column_stack([side * (30 + 3 * np.sin(x / width * np.pi)) * scale, (x - width / 2) * 4.0 * scale,
                              (y - width / 2) * 4.0 * scale]).astype(np.float32)
    faces = []
    for r in range(int(y.max())):
        for c in range(width - 1):
            a, b, d, e = r * width + c, r * width + c + 1, (r + 1) * width + c, (r + 1) * width + c + 1
            if e < n_vertices:
                faces += [(a, b, d), (b, e, d)]
    gii = nib.gifti.GiftiImage()
    gii.add_gifti_data_array(nib.gifti.GiftiDataArray(coords, intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32"))
    gii.add_gifti_data_array(nib.gifti.GiftiDataArray(np.asarray(faces, np.int32), intent="NIFTI_INTENT_TRIANGLE",
                                                      datatype="NIFTI_TYPE_INT32"))
    nib.save(gii, str(path))
