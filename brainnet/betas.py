"""From BIDS BOLD runs and events to single-trial betas in the study format.

:func:`single_trial_betas` estimates one beta map per trial with nilearn's
``FirstLevelModel``, fitted per run:

* ``"lsa"`` (least squares - all): one regressor per trial in one model.
* ``"lss"`` (least squares - separate; Mumford et al. 2012): one model per
  trial, with that trial as one regressor and every other trial of the run
  as a second one. More robust when trials are close in time, and slower
  (one fit per trial).
* ``"glmsingle"`` (GLMsingle-class; Prince et al. 2022): per-voxel HRF from
  a library, GLMdenoise noise regressors and per-voxel fractional ridge, all
  chosen by cross-validation across runs (:mod:`brainnet.glmsingle`). The
  default: it keeps the category information of real block designs and
  doubles the split-half reliability of canonical LSS on simulated rapid
  event-related designs (``benchmarks/bench_betas.py``).

:data:`BETA_METHODS` names every estimator; the CLI's ``--method`` choices
come from it. LSS and LSA add a cosine drift basis and the chosen confounds. Confounds come
from fMRIPrep's ``*_desc-confounds_timeseries.tsv`` through
:func:`fmriprep_confounds`, which selects a documented subset (``motion6``,
``motion12`` = + derivatives, ``motion24`` = + squares of both, Friston 24)
and fills the ``n/a`` of first rows (derivatives) with 0. nilearn's
``load_confounds`` needs the full fMRIPrep file layout next to the BOLD
file; selecting columns here keeps brainnet usable on copied or trimmed
derivative folders.

:func:`write_betas_study` finds a subject's runs in a BIDS dataset (raw or
fMRIPrep derivatives), estimates the betas and writes them in brainnet's
study format (see :mod:`brainnet.study`).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainnet.errors import BrainnetError, input_error

__all__ = [
    "BETA_METHODS",
    "CONFOUND_STRATEGIES",
    "STIMULUS_COLUMNS",
    "fmriprep_confounds",
    "read_events",
    "single_trial_betas",
    "write_betas_study",
]

# The same search order as brainnet.stimuli for events files, with our own column first.
STIMULUS_COLUMNS = ("stimulus_id", "stim_file", "file_path", "ImgName", "identifier", "stimulus")
_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
CONFOUND_STRATEGIES = ("none", "motion6", "motion12", "motion24")
_MISSING = {"", "n/a", "nan", "none", "null"}
_ENTITY = re.compile(r"_(ses|run)-([A-Za-z0-9]+)")


def _notice(message: str) -> None:
    from brainnet.cli._common import notice

    notice(message)


def read_events(events, stimulus_column: str | None = None, trial_types: Sequence[str] | None = None) -> pd.DataFrame:
    """Trials of a BIDS events table: ``onset``, ``duration``, ``stimulus_id`` (+ ``trial_type``).

    Parameters
    ----------
    events : str, Path or DataFrame
        A ``*_events.tsv`` (e.g. NOD ``stim_file``, THINGS ``file_path``).
    stimulus_column : str, optional
        Column naming the stimulus; default the first of :data:`STIMULUS_COLUMNS`.
        Its values are the stimulus ids (as :func:`brainnet.stimuli.load_stimuli` reads them).
    trial_types : sequence of str, optional
        Keep only rows whose ``trial_type`` is one of these (e.g. THINGS ``exp``).

    Returns
    -------
    DataFrame
        One row per trial with a stimulus (``n/a`` rows dropped), sorted by onset.
    """
    where = events if not isinstance(events, pd.DataFrame) else "events"
    if isinstance(events, pd.DataFrame):
        frame = events.astype(str)
    else:
        path = Path(events)
        if not path.is_file():
            raise input_error(path, "events file not found", "check the BIDS folder and --task")
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for col in ("onset", "duration"):
        if col not in frame.columns:
            raise input_error(where, f"missing column {col!r} (columns: {', '.join(frame.columns)})", "add the BIDS columns onset and duration (in seconds)")
    column = stimulus_column or next((c for c in STIMULUS_COLUMNS if c in frame.columns), None)
    if column is None or column not in frame.columns:
        looked = stimulus_column or ", ".join(STIMULUS_COLUMNS)
        raise input_error(where, f"no stimulus column (looked for {looked}; columns: {', '.join(frame.columns)})", "name it with --stimulus-column")
    keep = ~frame[column].str.strip().str.lower().isin(_MISSING)
    if trial_types is not None:
        if "trial_type" not in frame.columns:
            raise input_error(where, "has no trial_type column to filter on", "drop --trial-types")
        keep &= frame["trial_type"].isin(list(trial_types))
    trials = frame[keep]
    try:
        out = pd.DataFrame({
            "onset": trials["onset"].astype(float).to_numpy(),
            "duration": trials["duration"].astype(float).to_numpy(),
            "stimulus_id": trials[column].str.strip().to_numpy(),
        })
    except ValueError:
        raise input_error(where, "onset/duration hold non-numbers", "fix the events table") from None
    if "trial_type" in trials.columns:
        out["trial_type"] = trials["trial_type"].to_numpy()
    if out.empty:
        raise input_error(where, f"no trials with a stimulus in column {column!r}", "check --stimulus-column and --trial-types")
    return out.sort_values("onset", kind="stable").reset_index(drop=True)


def fmriprep_confounds(path, strategy: str = "motion24") -> pd.DataFrame | None:
    """Selected columns of an fMRIPrep confounds table, ``n/a`` filled with 0.

    Parameters
    ----------
    path : str or Path
        ``*_desc-confounds_timeseries.tsv`` (or the older ``_regressors.tsv``).
    strategy : {"none", "motion6", "motion12", "motion24"}
        ``motion6``: translations and rotations; ``motion12``: + their
        temporal derivatives; ``motion24``: + squares of both (Friston 24).
        Derivatives and squares missing from the table are computed.

    Returns
    -------
    DataFrame of shape (n_volumes, n_confounds), or None for ``"none"``.
    """
    if strategy not in CONFOUND_STRATEGIES:
        raise BrainnetError(f"--confounds {strategy}: unknown strategy; use one of {', '.join(CONFOUND_STRATEGIES)}")
    if strategy == "none":
        return None
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "confounds table not found", "run fMRIPrep or pass --confounds none")
    table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    missing = [c for c in _MOTION if c not in table.columns]
    if missing:
        raise input_error(path, f"missing motion columns {missing}", "give an fMRIPrep confounds table or pass --confounds none")
    cols = {}
    for base in _MOTION:
        x = table[base].astype(float).fillna(0.0)
        cols[base] = x
        if strategy in ("motion12", "motion24"):
            d = table[f"{base}_derivative1"] if f"{base}_derivative1" in table else x.diff()
            cols[f"{base}_derivative1"] = d.astype(float).fillna(0.0)
        if strategy == "motion24":
            cols[f"{base}_power2"] = x**2
            cols[f"{base}_derivative1_power2"] = cols[f"{base}_derivative1"] ** 2
    return pd.DataFrame(cols)


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _model(tr, hrf_model, drift_model, high_pass, noise_model, mask, smoothing_fwhm, n_jobs):
    from nilearn.glm.first_level import FirstLevelModel

    return FirstLevelModel(
        t_r=tr, hrf_model=hrf_model, drift_model=drift_model, high_pass=high_pass,
        noise_model=noise_model, mask_img=mask, smoothing_fwhm=smoothing_fwhm,
        minimize_memory=True, n_jobs=n_jobs,
    )


def single_trial_betas(
    bold_imgs,
    events,
    *,
    method: str = "glmsingle",
    tr: float,
    confounds=None,
    mask=None,
    hrf_model: str = "spm",
    stimulus_column: str | None = None,
    trial_types: Sequence[str] | None = None,
    drift_model: str = "cosine",
    high_pass: float = 0.01,
    noise_model: str = "ar1",
    smoothing_fwhm: float | None = None,
    n_jobs: int = 1,
    return_maps: bool = False,
) -> tuple[nib.Nifti1Image, pd.DataFrame] | tuple[nib.Nifti1Image, pd.DataFrame, dict]:
    """One beta map per trial, by the estimator named in :data:`BETA_METHODS`.

    Parameters
    ----------
    bold_imgs : niimg-like or list of niimg-like
        One 4-D BOLD image per run.
    events : str, Path, DataFrame or list of them
        One BIDS events table per run (see :func:`read_events`).
    method : {"glmsingle", "lss", "lsa"}
        A key of :data:`BETA_METHODS`: GLMsingle-class (default), least
        squares separate (one nilearn model per trial) or all (one per run).
    tr : float
        Repetition time in seconds.
    confounds : DataFrame, array or list of them, optional
        Per-run confound regressors, shape ``(n_volumes, n_confounds)``.
    mask : niimg-like or False, optional
        Voxels to model; None lets nilearn compute a brain mask from the
        data, False models every voxel.
    hrf_model, drift_model, high_pass, noise_model, smoothing_fwhm, n_jobs
        Passed to ``FirstLevelModel`` (LSS, LSA). ``glmsingle`` ignores them:
        it chooses its own HRFs and uses a polynomial drift (see
        :func:`brainnet.glmsingle.glmsingle`).
    stimulus_column, trial_types
        Passed to :func:`read_events`.
    return_maps : bool
        Also return the estimator's per-voxel maps.

    Returns
    -------
    betas : Nifti1Image
        4-D, one volume per trial, in run then onset order.
    trials : DataFrame
        One row per volume: ``stimulus_id``, ``run`` (1, 2, ... in the order
        given), ``onset``, ``duration``.
    maps : dict, only with ``return_maps``
        ``glmsingle``: ``{"hrf_index", "r2", "fraction", "ncsnr"}`` as 3-D
        Nifti1Images on the BOLD grid (0 outside the modelled voxels) and
        ``"info"``, a dict of what was chosen; empty for LSS and LSA.
    """
    if method not in BETA_METHODS:
        raise BrainnetError(f"--method {method}: unknown; use one of {', '.join(BETA_METHODS)}")
    if not tr or tr <= 0:
        raise BrainnetError(f"tr={tr}: the repetition time must be positive seconds; give --tr or a BOLD sidecar with RepetitionTime")
    runs = _as_list(bold_imgs)
    tables = _as_list(events)
    conf = _as_list(confounds) if confounds is not None else [None] * len(runs)
    if len(tables) != len(runs) or len(conf) != len(runs):
        raise BrainnetError(f"single_trial_betas: {len(runs)} BOLD runs but {len(tables)} events tables and {len(conf)} confounds; give one per run")
    volumes, rows, joint = [], [], []
    for r, (img, table, cf) in enumerate(zip(runs, tables, conf, strict=True), start=1):
        where = img if isinstance(img, str | Path) else (getattr(img, "get_filename", lambda: None)() or f"BOLD run {r}")
        img = _load_bold(img, where)
        _check_bold(img, where)
        # Read once here; nilearn fits the in-memory copy instead of decompressing the file again.
        data = np.asarray(img.dataobj)
        _check_finite(data, where)
        img = nib.Nifti1Image(data, img.affine, img.header)
        if r == 1 and mask is not None and mask is not False:
            mask = _check_mask(mask, img, where)
        trials = read_events(table, stimulus_column, trial_types)
        _check_onsets(trials, img.shape[3], tr, table if isinstance(table, str | Path) else f"events of run {r}")
        if cf is not None and len(cf) != img.shape[3]:
            raise BrainnetError(f"run {r}: confounds have {len(cf)} rows but the BOLD run has {img.shape[3]} volumes; give one row per volume")
        rows.append(trials.assign(run=r)[["stimulus_id", "run", "onset", "duration"]])
        if BETA_METHODS[method].joint:  # fitted on all runs at once, below
            mask = _joint_mask(mask, img)
            if img.shape[:3] != mask.shape:
                raise input_error(where, f"grid {img.shape[:3]} differs from that of run 1 {mask.shape}",
                                  "give every run on one grid (e.g. fMRIPrep outputs of one --space)")
            joint.append((data[mask].astype(np.float32, copy=False), trials, cf))
            continue
        fit = BETA_METHODS[method].fit
        with warnings.catch_warnings():
            # nilearn warns that it uses the given mask rather than computing one: intended.
            warnings.filterwarnings("ignore", message=".*Generation of a mask has been requested.*")
            warnings.filterwarnings("ignore", message=".*Computed an empty mask.*")  # refused below
            try:
                maps = fit(img, trials, cf, _model(tr, hrf_model, drift_model, high_pass, noise_model, mask, smoothing_fwhm, n_jobs))
            except ValueError as err:
                if "mask" not in str(err).lower():
                    raise
                raise input_error(where, "the brain mask nilearn computed from this run is empty", "pass --mask with the voxels to model (a NIfTI on the BOLD grid)") from None
        volumes.extend(maps)
    trial_table = pd.concat(rows, ignore_index=True)
    if BETA_METHODS[method].joint:
        betas, maps = BETA_METHODS[method].fit(joint, mask, img.affine, tr)
        return (betas, trial_table, maps) if return_maps else (betas, trial_table)
    from nilearn.image import concat_imgs

    betas = concat_imgs(volumes)
    return (betas, trial_table, {}) if return_maps else (betas, trial_table)


def _joint_mask(mask, img) -> np.ndarray:
    """The voxels a joint estimator models: the mask, every voxel (False), or nilearn's EPI mask of run 1 (None)."""
    if isinstance(mask, np.ndarray):
        return mask
    if mask is False:
        return np.ones(img.shape[:3], dtype=bool)
    if mask is None:
        from nilearn.masking import compute_epi_mask

        mask = compute_epi_mask(img)
    return np.asarray(mask.dataobj) > 0


def _glmsingle(runs: list, mask: np.ndarray, affine, tr: float):
    from brainnet.glmsingle import glmsingle

    if not mask.any():
        raise BrainnetError("the brain mask nilearn computed from the first run is empty; pass --mask with the voxels to model (a NIfTI on the BOLD grid)")
    confounds = [None if cf is None else np.asarray(cf, dtype=float) for _, _, cf in runs]
    res = glmsingle([d.T for d, _, _ in runs], [t for _, t, _ in runs], tr=tr, confounds=confounds)
    vol = np.zeros((*mask.shape, res.betas.shape[0]), dtype=np.float32)
    vol[mask] = res.betas.T
    maps = {}
    for name in ("hrf_index", "r2", "fraction", "ncsnr"):
        m = np.zeros(mask.shape, dtype=np.int16 if name == "hrf_index" else np.float32)
        m[mask] = getattr(res, name)
        maps[name] = nib.Nifti1Image(m, affine)
    maps["info"] = res.info
    return nib.Nifti1Image(vol, affine), maps


def _load_bold(img, where):
    if not isinstance(img, str | Path):
        return img
    try:
        return nib.load(str(img))
    except Exception as err:  # nibabel raises many types for non-images
        raise input_error(where, f"not a readable NIfTI ({type(err).__name__})", "check the BOLD file (re-run fMRIPrep or re-download it)") from None


def _check_bold(img, where) -> None:
    if img.ndim != 4:
        raise input_error(where, f"BOLD run must be 4-D (x, y, z, time), got shape {img.shape}", "pass the 4-D run, not a single volume")


def _check_finite(data: np.ndarray, where) -> None:
    """Every value finite: one NaN spreads through the whole GLM fit of its voxel."""
    bad = [t for t in range(data.shape[3]) if not np.isfinite(data[..., t]).all()]
    if bad:
        raise input_error(
            where, f"{len(bad)} of {data.shape[3]} volumes hold NaN or Inf values (first: volume {bad[0]})",
            "re-run the preprocessing, or replace those values before estimating betas",
        )


def _check_mask(mask, img, where):
    """The model mask: 3-D, on the BOLD grid, not empty."""
    name = mask if isinstance(mask, str | Path) else "--mask"
    if isinstance(mask, str | Path):
        if not Path(mask).is_file():
            raise input_error(name, "mask file not found", "check the --mask path")
        try:
            mask = nib.load(str(mask))
        except Exception as err:  # nibabel raises many types for non-images
            raise input_error(name, f"not a readable NIfTI ({type(err).__name__})", "give a 3-D mask NIfTI") from None
    if len(mask.shape) != 3:
        raise input_error(name, f"mask must be 3-D, got shape {mask.shape}", "give a single 3-D mask volume")
    if mask.shape != img.shape[:3] or not np.allclose(mask.affine, img.affine, atol=1e-3):
        raise input_error(
            name, f"mask grid (shape {mask.shape}) differs from the BOLD grid of {Path(str(where)).name} (shape {img.shape[:3]}) or its affine",
            "resample the mask to the BOLD, e.g. nilearn.image.resample_to_img(mask, bold, interpolation='nearest')",
        )
    if not np.any(np.asarray(mask.dataobj) > 0):
        raise input_error(name, "mask is empty (no voxel > 0)", "give a mask with the voxels to model")
    return mask


def _check_onsets(trials: pd.DataFrame, n_volumes: int, tr: float, where) -> None:
    end = n_volumes * tr
    late = trials["onset"].to_numpy() >= end
    if late.any():
        raise input_error(
            where,
            f"{int(late.sum())} trial(s) start after the run ends ({n_volumes} volumes x TR {tr:g} s = {end:g} s; "
            f"latest onset {trials['onset'].max():g} s)",
            "check --tr and that the events file belongs to this BOLD run",
        )


def _trial_names(n: int) -> list[str]:
    return [f"trial{i:05d}" for i in range(n)]


def _lsa(img, trials: pd.DataFrame, confounds, model) -> list:
    names = _trial_names(len(trials))
    events = pd.DataFrame({"onset": trials["onset"], "duration": trials["duration"], "trial_type": names})
    model.fit(img, events=events, confounds=confounds)
    return [model.compute_contrast(name, output_type="effect_size") for name in names]


def _lss(img, trials: pd.DataFrame, confounds, model) -> list:
    from sklearn.base import clone

    maps = []
    for i in range(len(trials)):
        kind = np.where(np.arange(len(trials)) == i, "target", "other")
        events = pd.DataFrame({"onset": trials["onset"], "duration": trials["duration"], "trial_type": kind})
        if len(trials) == 1:
            events = events.iloc[:1]
        fitted = clone(model).fit(img, events=events, confounds=confounds)
        maps.append(fitted.compute_contrast("target", output_type="effect_size"))
    return maps


@dataclass(frozen=True)
class _Estimator:
    """``fit``: per run ``(img, trials, confounds, model) -> [volume per trial]``; with ``joint``,
    once ``(runs, mask, affine, tr) -> (betas, maps)`` on every run's masked data."""

    fit: Callable
    joint: bool = False


#: Single-trial estimators by name; the CLI's ``--method`` choices (first = default).
BETA_METHODS: dict[str, _Estimator] = {
    "glmsingle": _Estimator(_glmsingle, joint=True),
    "lss": _Estimator(_lss),
    "lsa": _Estimator(_lsa),
}


# ---------------------------------------------------------------------------
# BIDS -> study
# ---------------------------------------------------------------------------
def _entities(name: str) -> tuple[str | None, str | None]:
    found = dict(_ENTITY.findall(name))
    return found.get("ses"), found.get("run")


def _find(folder: Path, label: str, pattern: str) -> list[Path]:
    sub = folder / f"sub-{label}"
    return sorted(sub.glob(f"**/func/{pattern}")) if sub.is_dir() else []


def _space(path: Path) -> str | None:
    m = re.search(r"_space-([A-Za-z0-9]+)", path.name)
    return m.group(1) if m else None


def _repetition_time(bold: Path, bids: Path, task: str) -> float:
    sidecar = Path(str(bold).replace(".nii.gz", ".json").replace(".nii", ".json"))
    for candidate in (sidecar, bids / f"task-{task}_bold.json"):
        if candidate.is_file():
            value = json.loads(candidate.read_text(encoding="utf-8")).get("RepetitionTime")
            if value:
                return float(value)
    zooms = nib.load(str(bold)).header.get_zooms()
    if len(zooms) > 3 and zooms[3] > 0:
        return float(zooms[3])
    raise input_error(bold, "no RepetitionTime in its sidecar or header", "pass --tr")


def _runs(bids: Path, label: str, task: str, derivatives: Path | None, space: str | None):
    """(bold, events, confounds-or-None) per run, matched on session and run."""
    events = {_entities(p.name): p for p in _find(bids, label, f"sub-{label}_*task-{task}_*events.tsv")}
    if not events:
        if not (bids / f"sub-{label}").is_dir():
            found = sorted(p.name.removeprefix("sub-") for p in bids.glob("sub-*") if p.is_dir())
            known = f"subjects: {', '.join(found) or 'none'}"
        else:
            names = _find(bids, label, f"sub-{label}_*events.tsv")
            tasks = sorted({m.group(1) for p in names if (m := re.search(r"_task-([A-Za-z0-9]+)", p.name))})
            known = f"tasks of sub-{label}: {', '.join(tasks) or 'none'}"
        raise input_error(bids / f"sub-{label}", f"no events files for task {task!r}", f"check --bids, --subject and --task ({known})")
    if derivatives is not None:
        bolds = _find(derivatives, label, f"sub-{label}_*task-{task}_*desc-preproc_bold.nii*")
        spaces = sorted({_space(p) or "none" for p in bolds})
        if space is not None:
            bolds = [p for p in bolds if _space(p) == space]
        elif len(spaces) > 1:
            raise input_error(derivatives, f"preprocessed BOLD in several spaces ({', '.join(spaces)})", "choose one with --space")
    else:
        bolds = [p for p in _find(bids, label, f"sub-{label}_*task-{task}_*bold.nii*") if "desc-" not in p.name]
    if not bolds:
        where = derivatives if derivatives is not None else bids
        raise input_error(where / f"sub-{label}", f"no BOLD runs for task {task!r}" + (f" in space {space}" if space else ""), "check --derivatives, --space and --task")
    out = []
    for bold in bolds:
        key = _entities(bold.name)
        if key not in events:
            raise input_error(bold, "has no matching events file (same session and run)", f"add sub-{label}_..._events.tsv for it")
        conf = None
        if derivatives is not None:
            stem = bold.name.split("_space-")[0].split("_desc-")[0]
            cands = sorted(bold.parent.glob(f"{stem}_desc-confounds_*.tsv"))
            conf = cands[0] if cands else None
        out.append((bold, events[key], conf, key))
    return out


def write_betas_study(
    bids_dir: str | Path,
    subject: str,
    task: str,
    *,
    out: str | Path,
    derivatives: str | Path | None = "fmriprep",
    space: str | None = None,
    method: str = "glmsingle",
    confounds: str = "motion24",
    mask=None,
    tr: float | None = None,
    stimulus_column: str | None = None,
    trial_types: Sequence[str] | None = None,
    hrf_model: str = "spm",
    noise_model: str = "ar1",
    copy_stimuli: bool = True,
    overwrite: bool = False,
    n_jobs: int = 1,
) -> Path:
    """Estimate one subject's single-trial betas from BIDS and add them to a study folder.

    Parameters
    ----------
    bids_dir : str or Path
        BIDS dataset root (events are read from the raw tree).
    subject : str
        Label with or without ``sub-``.
    task : str
        Task label.
    out : str or Path
        Study folder to create or add the subject to.
    derivatives : str or Path or None
        fMRIPrep output: a name under ``<bids>/derivatives/`` or a path;
        None uses the raw BOLD runs (no confounds).
    space : str, optional
        ``space-`` entity of the preprocessed BOLD when several exist.
    method : {"glmsingle", "lss", "lsa"}
        See :func:`single_trial_betas`. ``glmsingle`` also writes its
        per-voxel maps beside the betas (``desc-hrfindex``, ``desc-r2``,
        ``desc-fraction``, ``desc-ncsnr``; ``_map.nii.gz``), lists them in the
        provenance and records what it chose there (``glmsingle``).
    confounds : {"none", "motion6", "motion12", "motion24"}
        See :func:`fmriprep_confounds`.
    mask : niimg-like, optional
        Voxels to model (default: nilearn's mask computed from the data).
    tr : float, optional
        Repetition time; default from the BOLD sidecar or header.
    stimulus_column, trial_types
        See :func:`read_events`.
    hrf_model, noise_model : str
        Passed to ``FirstLevelModel``.
    copy_stimuli : bool
        Copy the images found in ``<bids>/stimuli/`` into ``<out>/stimuli/``.
    overwrite : bool
        Replace this subject's betas if they already exist in ``out``.

    Returns
    -------
    Path
        ``out``.
    """
    from brainnet.results import (
        atomic_write_json,
        atomic_write_nifti,
        atomic_write_tsv,
        file_record,
        make_provenance,
    )

    bids = Path(bids_dir).expanduser()
    if not bids.is_dir():
        raise input_error(bids, "BIDS folder not found", "give --bids the dataset root")
    label = str(subject).removeprefix("sub-")
    deriv = None
    if derivatives is not None:
        deriv = Path(derivatives) if Path(derivatives).is_dir() else bids / "derivatives" / str(derivatives)
        if not deriv.is_dir():
            raise input_error(deriv, "derivatives folder not found", "give --derivatives a folder or a name under <bids>/derivatives")
    out = Path(out).expanduser()
    func = out / f"sub-{label}" / "func"
    if func.exists() and any(func.glob(f"sub-{label}_task-{task}_*")) and not overwrite:
        raise input_error(func, f"already holds task-{task} betas of sub-{label}", "choose another --out or pass --overwrite")
    runs = _runs(bids, label, task, deriv, space)
    for bold, _, _, _ in runs:  # before the TR is looked up in its header (values are checked when fitted)
        _check_bold(_load_bold(bold, bold), bold)
    t_r = tr or _repetition_time(runs[0][0], bids, task)
    conf = [fmriprep_confounds(c, confounds) if c is not None else None for _, _, c, _ in runs]
    for (bold, _, path, _), table in zip(runs, conf, strict=True):
        n_volumes = nib.load(str(bold)).shape[3]
        if table is not None and len(table) != n_volumes:
            raise input_error(path, f"{len(table)} rows but {bold.name} has {n_volumes} volumes", "use the confounds table fMRIPrep wrote for this run (one row per volume)")
    if deriv is not None and confounds != "none" and any(c is None for _, _, c, _ in runs):
        _notice(f"sub-{label}: no fMRIPrep confounds table beside some runs; those runs are fitted without confounds")
    betas, trials, maps = single_trial_betas(
        [b for b, _, _, _ in runs], [e for _, e, _, _ in runs], method=method, tr=t_r, confounds=conf,
        mask=mask, hrf_model=hrf_model, stimulus_column=stimulus_column, trial_types=trial_types,
        noise_model=noise_model, n_jobs=n_jobs, return_maps=True,
    )
    sessions = [runs[r - 1][3][0] or "n/a" for r in trials["run"]]
    trials.insert(2, "session", sessions)
    space_label = _space(runs[0][0]) or "orig"
    betas_path = func / f"sub-{label}_task-{task}_space-{space_label}_desc-singletrial_betas.nii.gz"
    atomic_write_nifti(betas_path, nib.Nifti1Image(np.asarray(betas.dataobj, dtype=np.float32), betas.affine))
    atomic_write_tsv(func / f"sub-{label}_task-{task}_desc-singletrial_events.tsv", trials)
    info = maps.pop("info", None)
    map_files = {}
    for name, img in maps.items():
        path = func / f"sub-{label}_task-{task}_space-{space_label}_desc-{name.replace('_', '')}_map.nii.gz"
        atomic_write_nifti(path, img)
        map_files[name] = path.name
    params = {"method": method, "confounds": confounds, "hrf_model": hrf_model, "noise_model": noise_model, "tr": t_r, "space": space_label,
              "stimulus_column": stimulus_column, "trial_types": list(trial_types) if trial_types else None}
    inputs = [file_record(p) for b, e, c, _ in runs for p in (b, e, c) if p is not None]
    extra = {"glmsingle": info, "maps": map_files} if info is not None else {}
    atomic_write_json(betas_path.with_name(betas_path.name.replace(".nii.gz", ".json")),
                      make_provenance(parameters=params, inputs=inputs, **extra))
    _update_tables(out, label, trials, bids, copy_stimuli)
    return out


def _update_tables(out: Path, label: str, trials: pd.DataFrame, bids: Path, copy_stimuli: bool) -> None:
    from brainnet.results import atomic_write_json, atomic_write_tsv, brainnet_version

    participants = out / "participants.tsv"
    ids = pd.read_csv(participants, sep="\t", dtype=str)["participant_id"].tolist() if participants.is_file() else []
    if f"sub-{label}" not in ids:
        ids.append(f"sub-{label}")
    atomic_write_tsv(participants, pd.DataFrame({"participant_id": ids}))
    stimuli = out / "stimuli.tsv"
    table = pd.read_csv(stimuli, sep="\t", dtype=str, keep_default_na=False) if stimuli.is_file() else pd.DataFrame(columns=["stimulus_id", "file"])
    new = [s for s in dict.fromkeys(trials["stimulus_id"]) if s not in set(table["stimulus_id"])]
    table = pd.concat([table, pd.DataFrame({"stimulus_id": new, "file": new})], ignore_index=True)
    atomic_write_tsv(stimuli, table)
    if not (out / "dataset_description.json").is_file():
        atomic_write_json(out / "dataset_description.json", {
            "Name": f"brainnet single-trial betas from {bids.name}", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "brainnet", "Version": brainnet_version(), "Description": "brainnet.betas.write_betas_study"}],
            "SourceDatasets": [{"URL": str(bids.resolve())}],
        })
    if copy_stimuli:
        source = bids / "stimuli"
        copied = missing = 0
        for name in new:
            src, dst = source / name, out / "stimuli" / name
            if ".." in Path(name).parts or Path(name).is_absolute() or not src.is_file():
                missing += 1
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copied += 1
        if missing:
            _notice(f"{missing} of {len(new)} stimulus images not found under {source}; put them in {out / 'stimuli'} "
                    "or pass --features to analyses")

