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

:data:`BETA_METHODS` names every estimator; the CLI's ``--method`` choices come from it.
LSS and LSA add a cosine drift basis and the chosen confounds.

:func:`write_betas_study` is the front door from a researcher's data: a BIDS
folder with fMRIPrep derivatives. For each subject (or ``"all"``) it finds
the runs, events, fMRIPrep's brain masks and confounds tables with pybids,
estimates the betas and writes them in brainnet's study format (see
:mod:`brainnet.study`). By default the voxels modelled are those inside
fMRIPrep's own ``*_desc-brain_mask`` of every run, and the confounds are
one of :data:`CONFOUND_STRATEGIES`, loaded by nilearn's fMRIPrep interface
(``nilearn.interfaces.fmriprep.load_confounds``): motion (6, 12 or 24
parameters), white matter + CSF, aCompCor, or scrubbing of high-motion
volumes. Volumes that nilearn removes (scrubbing, fMRIPrep's non-steady-state
volumes) enter the GLM as one spike regressor each, which for least squares
is the same as leaving them out and keeps the run's timing intact for the
trial regressors.

pybids cost (``python benchmarks/bench_bids_index.py``, 2-core shared
machine, 2026-12-02): on the miniature dataset of
:func:`brainnet.datasets.miniature.simulate_fmriprep_dataset` (3 subjects x
2 runs, 68 files) ``import bids`` took 1.75 s and indexing the raw and
fMRIPrep folders 0.88 s, against 6.8 s for one subject's LSA fit (ratio
0.39); with 20 subjects (340 files) indexing took 1.84 s. Usable, so BIDS
queries go through pybids rather than hand-written path matching; both
folders are indexed once per call however many subjects are built.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from brainnet import _defaults
from brainnet.errors import BrainnetError, input_error, notice

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

#: ``--confounds`` choices: a description and the arguments of nilearn's
#: ``load_confounds`` (None: no confounds). fMRIPrep's cosine regressors
#: (nilearn's ``high_pass``) are left out where nilearn allows it, as the GLM
#: has its own cosine drift basis; aCompCor needs them (fMRIPrep computes the
#: components on high-pass filtered data; nilearn refuses it without), and
#: then they replace the GLM's drift basis.
_LOAD_CONFOUNDS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "motion6": {"strategy": ("motion",), "motion": "basic"},
    "motion12": {"strategy": ("motion",), "motion": "derivatives"},
    "motion24": {"strategy": ("motion",), "motion": "full"},
    "wmcsf": {"strategy": ("motion", "wm_csf"), "motion": "full", "wm_csf": "basic"},
    "acompcor": {"strategy": ("high_pass", "motion", "compcor"), "motion": "full", "compcor": "anat_combined", "n_compcor": "all"},
    "scrubbing": {"strategy": ("motion", "wm_csf", "scrub"), "motion": "full", "wm_csf": "full", "scrub": 5, "fd_threshold": 0.5, "std_dvars_threshold": 1.5},
}
CONFOUND_STRATEGIES: dict[str, dict[str, Any]] = {
    name: {"description": _defaults.CONFOUND_STRATEGIES[name], "load_confounds": spec}
    for name, spec in _LOAD_CONFOUNDS.items()
}
_MISSING = {"", "n/a", "nan", "none", "null"}
_SUFFIXES = {"basic": ("",), "derivatives": ("", "_derivative1"), "power2": ("", "_power2"),
             "full": ("", "_derivative1", "_power2", "_derivative1_power2")}
# Entities that tell runs apart (events, BOLD, masks and confounds are matched on them).
_RUN_ENTITIES = ("session", "acquisition", "run", "echo")


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


def fmriprep_confounds(bold, strategy: str = "motion24", confounds_file=None) -> pd.DataFrame | None:
    """Confounds of one fMRIPrep run, loaded by nilearn's ``load_confounds``.

    Parameters
    ----------
    bold : str or Path
        The run's ``*_desc-preproc_bold.nii.gz``; its confounds table
        ``*_desc-confounds_timeseries.tsv`` (and, for aCompCor, the JSON
        sidecar) must sit beside it, as fMRIPrep writes them.
    strategy : str
        A key of :data:`CONFOUND_STRATEGIES`.
    confounds_file : str or Path, optional
        The confounds table, when already known (default: found beside ``bold``).

    Returns
    -------
    DataFrame of shape (n_volumes, n_confounds), or None for ``"none"``.
        Demeaned by nilearn; each volume nilearn censors (scrubbing,
        non-steady-state volumes) is one spike column ``censored_<volume>``.
    """
    if strategy not in CONFOUND_STRATEGIES:
        raise BrainnetError(f"--confounds {strategy}: unknown strategy; use one of {', '.join(CONFOUND_STRATEGIES)}")
    spec = CONFOUND_STRATEGIES[strategy]["load_confounds"]
    if spec is None:
        return None
    bold = Path(bold)
    tsv = Path(confounds_file) if confounds_file is not None else _confounds_beside(bold)
    if tsv is None or not tsv.is_file():
        raise input_error(tsv or bold, "no fMRIPrep confounds table (*_desc-confounds_timeseries.tsv) beside this run",
                          "give the fMRIPrep outputs as fMRIPrep wrote them, or pass --confounds none")
    table = pd.read_csv(tsv, sep="\t", nrows=0)
    missing = _missing_confounds(spec, list(table.columns), tsv)
    if missing:
        usable = [name for name, other in CONFOUND_STRATEGIES.items()
                  if other["load_confounds"] is None or not _missing_confounds(other["load_confounds"], list(table.columns), tsv)]
        raise input_error(tsv, f"missing confound columns {', '.join(missing)} wanted by --confounds {strategy}",
                          f"choose a strategy this table supports ({', '.join(usable)}) or re-run fMRIPrep")
    from nilearn.interfaces.fmriprep import load_confounds

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame, sample_mask = load_confounds(str(bold), **spec)
    except ValueError as err:
        reason = str(err).split(". ")[0].replace("\n", " ")
        raise input_error(tsv, f"nilearn could not load --confounds {strategy} ({reason})",
                          "check the fMRIPrep outputs of this run or choose another --confounds") from None
    frame = frame.reset_index(drop=True)
    if sample_mask is not None:
        n = len(frame)
        for volume in sorted(set(range(n)) - {int(v) for v in sample_mask}):
            frame[f"censored_{volume:04d}"] = (np.arange(n) == volume).astype(float)
    return frame


def _confounds_beside(bold: Path) -> Path | None:
    """fMRIPrep's confounds table of a preprocessed run: the run's entities + ``_desc-confounds_timeseries.tsv``."""
    stem = bold.name.split("_space-")[0].split("_desc-")[0].split("_res-")[0]
    for suffix in ("timeseries", "regressors"):
        candidate = bold.parent / f"{stem}_desc-confounds_{suffix}.tsv"
        if candidate.is_file():
            return candidate
    return None


def _missing_confounds(spec: dict[str, Any], columns: list[str], tsv: Path) -> list[str]:
    """Columns (or column families) a nilearn strategy needs that the table lacks."""
    need: list[str] = []
    for component in spec["strategy"]:
        if component == "motion":
            need += [f"{base}{sfx}" for base in _MOTION for sfx in _SUFFIXES[spec["motion"]]]
        elif component == "wm_csf":
            need += [f"{base}{sfx}" for base in ("csf", "white_matter") for sfx in _SUFFIXES[spec["wm_csf"]]]
        elif component == "high_pass":
            need += [] if any(c.startswith("cosine") for c in columns) else ["cosine*"]
        elif component == "scrub":
            need += ["framewise_displacement", "std_dvars"]
        elif component == "compcor":
            sidecar = tsv.with_suffix(".json")
            meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
            wanted = [name for name, m in meta.items() if name.startswith("a_comp_cor_")
                      and isinstance(m, dict) and m.get("Mask") == "combined"]
            if not wanted:
                need.append(f"a_comp_cor_* (listed with Mask 'combined' in {sidecar.name})")
                continue
            need += wanted
    return [c for c in need if c not in columns]


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
        if r == 1:
            first = (where, img.shape[:3], img.affine)
        else:
            _check_grid(where, img.shape[:3], img.affine, first)
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
            # The contrast's standard error (unused: only effect sizes are kept) can be NaN for spike-regressed volumes.
            warnings.filterwarnings("ignore", message="invalid value encountered in sqrt", category=RuntimeWarning)
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


def _check_grid(where, shape, affine, first) -> None:
    """Every run of a subject on the grid of its first run (the betas are stacked voxel by voxel)."""
    name, first_shape, first_affine = first
    if tuple(shape) != tuple(first_shape) or not np.allclose(affine, first_affine, atol=1e-3):
        raise input_error(
            where, f"grid (shape {tuple(shape)}) differs from that of {Path(str(name)).name} (shape {tuple(first_shape)}) or its affine",
            "give runs on one grid (fMRIPrep writes every run of one --space on one grid: choose it with --space)",
        )


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
@dataclass
class _Run:
    """One run's files, found by pybids."""

    bold: Path
    events: Path
    confounds: Path | None
    mask: Path | None
    session: str | None


@dataclass
class _SubjectPlan:
    """Everything needed to estimate and write one subject, checked before any fit."""

    label: str
    runs: list[_Run]
    tr: float
    confounds: list
    mask: Any
    options: dict[str, Any]
    provenance: dict[str, Any]
    betas_path: Path
    events_path: Path
    trials: list[pd.DataFrame] = field(default_factory=list)
    parcellations: list[Path] = field(default_factory=list)

    @property
    def sidecar(self) -> Path:
        return self.betas_path.with_name(self.betas_path.name.replace(".nii.gz", ".json"))


def _layouts(bids: Path, deriv: Path | None):
    """pybids layouts of the raw folder and of the fMRIPrep folder (metadata not indexed: sidecars are read directly)."""
    from bids import BIDSLayout, BIDSLayoutIndexer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pybids warns about layout details that do not matter here
        raw = BIDSLayout(bids, validate=False, indexer=BIDSLayoutIndexer(validate=False, index_metadata=False))
        prep = None
        if deriv is not None:
            prep = BIDSLayout(deriv, validate=False, is_derivative=True, config=["bids", "derivatives"],
                              indexer=BIDSLayoutIndexer(validate=False, index_metadata=False))
    return raw, prep


def _key(entities: dict) -> tuple:
    return tuple(str(int(v)) if k == "run" and v is not None else v for k in _RUN_ENTITIES for v in [entities.get(k)])


def _query(entities: dict, *names: str) -> dict:
    """A pybids query matching ``entities`` exactly on ``names`` (absent entities must be absent)."""
    from bids.layout import Query

    return {n: entities[n] if entities.get(n) is not None else Query.NONE for n in names}


def _subject_labels(raw, bids: Path, subject, task: str) -> list[str]:
    have = sorted(raw.get_subjects(task=task, suffix="events"))
    if isinstance(subject, str) and subject.strip().lower() == "all":
        if not have:
            tasks = ", ".join(sorted(raw.get_tasks())) or "none"
            raise input_error(bids, f"no events files for task {task!r}", f"check --bids and --task (tasks: {tasks})")
        return have
    labels = [s.strip() for s in subject.split(",")] if isinstance(subject, str) else [str(s) for s in subject]
    labels = [s.removeprefix("sub-") for s in labels if s]
    for label in labels:
        if label in have:
            continue
        if label not in raw.get_subjects():
            known = f"subjects: {', '.join(sorted(raw.get_subjects())) or 'none'}"
        else:
            known = f"tasks of sub-{label}: {', '.join(sorted(raw.get_tasks(subject=label))) or 'none'}"
        raise input_error(bids / f"sub-{label}", f"no events files for task {task!r}", f"check --bids, --subject and --task ({known})")
    return labels


def _find_runs(raw, prep, bids: Path, deriv: Path | None, label: str, task: str, space: str | None) -> list[_Run]:
    """Events, BOLD, brain mask and confounds of each run, matched on session, acquisition, run and echo."""
    images = [".nii", ".nii.gz"]
    events = {_key(f.get_entities()): Path(f.path) for f in raw.get(subject=label, task=task, suffix="events", extension=".tsv")}
    if prep is not None:
        bolds = prep.get(subject=label, task=task, desc="preproc", suffix="bold", extension=images)
        spaces = sorted({f.get_entities().get("space") or "none" for f in bolds})
        if space is not None:
            bolds = [f for f in bolds if f.get_entities().get("space") == space]
        elif len(spaces) > 1:
            raise input_error(deriv, f"preprocessed BOLD in several spaces ({', '.join(spaces)})", "choose one with --space")
    else:
        bolds = [f for f in raw.get(subject=label, task=task, suffix="bold", extension=images) if "desc" not in f.get_entities()]
    if not bolds:
        where = deriv if deriv is not None else bids
        raise input_error(where / f"sub-{label}", f"no BOLD runs for task {task!r}" + (f" in space {space}" if space else ""), "check --derivatives, --space and --task")
    runs = []
    for f in sorted(bolds, key=lambda f: f.path):
        ents = f.get_entities()
        bold = Path(f.path)
        if _key(ents) not in events:
            raise input_error(bold, "has no matching events file (same session and run)", f"add sub-{label}_..._events.tsv for it")
        mask = confounds = None
        if prep is not None:
            who = {"subject": label, "task": task, **_query(ents, *_RUN_ENTITIES)}
            masks = prep.get(**who, **_query(ents, "space", "res"), desc="brain", suffix="mask", extension=images, return_type="filename")
            mask = Path(masks[0]) if masks else None
            tables = prep.get(**who, desc="confounds", suffix=["timeseries", "regressors"], extension=".tsv", return_type="filename")
            confounds = Path(tables[0]) if tables else None
        runs.append(_Run(bold, events[_key(ents)], confounds, mask, ents.get("session")))
    return runs


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


def _fmriprep_mask(runs: list[_Run], first_bold) -> nib.Nifti1Image:
    """Voxels inside fMRIPrep's brain mask of every run (a voxel modelled in one run is modelled in all)."""
    inside = None
    for run in runs:
        if run.mask is None:
            expected = run.bold.name.replace("_desc-preproc_bold", "_desc-brain_mask")
            raise input_error(run.bold, f"no fMRIPrep brain mask of this run and space ({expected} not found beside it)",
                              "pass --mask with the voxels to model (a NIfTI on the BOLD grid)")
        img = _check_mask(run.mask, first_bold, runs[0].bold)
        inside = (np.asarray(img.dataobj) > 0) if inside is None else inside & (np.asarray(img.dataobj) > 0)
    if not inside.any():
        raise input_error(runs[0].mask, "the fMRIPrep brain masks of the runs have no voxel in common",
                          "pass --mask with the voxels to model (a NIfTI on the BOLD grid)")
    return nib.Nifti1Image(inside.astype(np.uint8), first_bold.affine)


def _input_record(path: Path) -> dict[str, Any]:
    from brainnet.study import _cached_sha256

    return {"path": str(path.resolve()), "sha256": _cached_sha256(path), "size": path.stat().st_size}


def _plan_subject(raw, prep, bids, deriv, label, task, out, *, space, method, confounds, mask, tr, stimulus_column,
                  trial_types, hrf_model, noise_model, n_jobs) -> _SubjectPlan:
    """Find and check one subject's inputs (headers, events, confounds, mask) without fitting anything."""
    from brainnet.results import make_provenance

    runs = _find_runs(raw, prep, bids, deriv, label, task, space)
    headers = []
    for run in runs:
        img = _load_bold(run.bold, run.bold)
        _check_bold(img, run.bold)
        if headers:
            _check_grid(run.bold, img.shape[:3], img.affine, (runs[0].bold, headers[0].shape[:3], headers[0].affine))
        headers.append(img)
    t_r = tr or _repetition_time(runs[0].bold, bids, task)
    trials = []
    for run, img in zip(runs, headers, strict=True):
        table = read_events(run.events, stimulus_column, trial_types)
        _check_onsets(table, img.shape[3], t_r, run.events)
        trials.append(table)
    conf = []
    for run, img in zip(runs, headers, strict=True):
        table = fmriprep_confounds(run.bold, confounds, run.confounds) if prep is not None else None
        if table is not None and len(table) != img.shape[3]:
            raise input_error(run.confounds, f"{len(table)} rows but {run.bold.name} has {img.shape[3]} volumes",
                              "use the confounds table fMRIPrep wrote for this run (one row per volume)")
        conf.append(table)
    if mask is None and prep is not None:
        model_mask, mask_label = _fmriprep_mask(runs, headers[0]), "fmriprep desc-brain_mask (intersection over runs)"
        mask_inputs = [run.mask for run in runs]
    elif mask is None or mask is False:
        model_mask, mask_label, mask_inputs = mask, ("computed by nilearn" if mask is None else "every voxel"), []
    else:
        model_mask = _check_mask(mask, headers[0], runs[0].bold)
        if isinstance(mask, str | Path):
            mask_label = str(mask)
        else:  # an in-memory image: its voxels identify it
            import hashlib

            mask_label = "image sha256:" + hashlib.sha256(np.ascontiguousarray(np.asarray(model_mask.dataobj) > 0).tobytes()).hexdigest()
        mask_inputs = [Path(mask)] if isinstance(mask, str | Path) else []
    space_label = (runs[0].bold.name.split("_space-")[1].split("_")[0]) if "_space-" in runs[0].bold.name else "orig"
    func = Path(out) / f"sub-{label}" / "func"
    params = {"method": method, "confounds": confounds, "hrf_model": hrf_model, "noise_model": noise_model, "tr": t_r,
              "space": space_label, "mask": mask_label, "stimulus_column": stimulus_column,
              "trial_types": list(trial_types) if trial_types else None}
    inputs = [_input_record(p) for run in runs for p in (run.bold, run.events, run.confounds) if p is not None]
    inputs += [_input_record(p) for p in mask_inputs]
    # With fMRIPrep's cosine regressors among the confounds (aCompCor), a second cosine basis would duplicate them.
    spec = CONFOUND_STRATEGIES[confounds]["load_confounds"]
    drift_model = None if prep is not None and spec and "high_pass" in spec["strategy"] else "cosine"
    params["drift_model"] = drift_model
    options = {"method": method, "tr": t_r, "hrf_model": hrf_model, "noise_model": noise_model, "drift_model": drift_model,
               "stimulus_column": stimulus_column, "trial_types": trial_types, "n_jobs": n_jobs}
    parcellations = _parcellations(prep, label, space_label)
    inputs += [_input_record(p) for p in parcellations]
    return _SubjectPlan(
        parcellations=parcellations,
        label=label, runs=runs, tr=t_r, confounds=conf, mask=model_mask, options=options,
        provenance=make_provenance(parameters=params, inputs=inputs),
        betas_path=func / f"sub-{label}_task-{task}_space-{space_label}_desc-singletrial_betas.nii.gz",
        events_path=func / f"sub-{label}_task-{task}_desc-singletrial_events.tsv", trials=trials,
    )


def _parcellations(prep, label: str, space: str) -> list[Path]:
    """fMRIPrep's FreeSurfer parcellation of the subject in the space of its betas (for ``--mask occipital-aparc``).

    fMRIPrep writes the T1w-space ``desc-aparcaseg_dseg`` without a space entity.
    """
    if prep is None:
        return []
    found = prep.get(subject=label, desc="aparcaseg", suffix="dseg", extension=[".nii", ".nii.gz"])
    same = [Path(f.path) for f in found if (f.get_entities().get("space") or "T1w") == space]
    return same[:1]


def _status(plan: _SubjectPlan) -> str:
    """``"done"`` (same inputs and parameters), ``"other"`` (made otherwise), ``"partial"`` or ``"absent"``."""
    from brainnet.results import fingerprint, read_json

    if plan.sidecar.is_file():
        return "done" if read_json(plan.sidecar).get("fingerprint") == fingerprint(plan.provenance) else "other"
    return "partial" if plan.betas_path.exists() or plan.events_path.exists() else "absent"


def _estimate(plan: _SubjectPlan) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict]:
    """One subject's betas ``(x, y, z, n_trials)`` float32, their affine, the trials table and the
    estimator's per-voxel maps (GLMsingle-class; empty for LSS/LSA). Runs on Dask workers too."""
    o = plan.options
    betas, trials, maps = single_trial_betas(
        [r.bold for r in plan.runs], [r.events for r in plan.runs], method=o["method"], tr=o["tr"],
        confounds=plan.confounds, mask=plan.mask, hrf_model=o["hrf_model"], stimulus_column=o["stimulus_column"],
        trial_types=o["trial_types"], noise_model=o["noise_model"], drift_model=o["drift_model"], n_jobs=o["n_jobs"],
        return_maps=True,
    )
    trials.insert(2, "session", [plan.runs[r - 1].session or "n/a" for r in trials["run"]])
    return np.asarray(betas.dataobj, dtype=np.float32), betas.affine, trials, maps


def _write_subject(plan: _SubjectPlan, data: np.ndarray, affine: np.ndarray, trials: pd.DataFrame, maps: dict) -> None:
    """Betas, maps, then events, then the provenance sidecar: the sidecar marks the subject complete."""
    from brainnet.results import (
        atomic_write_json,
        atomic_write_nifti,
        atomic_write_tsv,
        fingerprint,
    )

    atomic_write_nifti(plan.betas_path, nib.Nifti1Image(data, affine))
    maps = dict(maps)
    info = maps.pop("info", None)
    map_files = {}
    for name, img in maps.items():
        path = plan.betas_path.with_name(plan.betas_path.name.replace("_desc-singletrial_betas", f"_desc-{name.replace('_', '')}_map"))
        atomic_write_nifti(path, img)
        map_files[name] = path.name
    for parcellation in plan.parcellations:  # the subject's own regions travel with its betas
        anat = plan.betas_path.parent.parent / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        atomic_write_nifti(anat / f"sub-{plan.label}_desc-aparcaseg_dseg.nii.gz", nib.load(str(parcellation)))
    atomic_write_tsv(plan.events_path, trials)
    extra = {"glmsingle": info, "maps": map_files} if info is not None else {}
    provenance = {**plan.provenance, **extra}
    atomic_write_json(plan.sidecar, {**provenance, "fingerprint": fingerprint(plan.provenance)})


def write_betas_study(
    bids_dir: str | Path,
    subject: str | Sequence[str],
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
    scheduler: Any = None,
) -> Path:
    """Estimate single-trial betas from a BIDS + fMRIPrep folder and add the subjects to a study folder.

    Every subject's inputs are found (pybids) and checked before anything is
    fitted or written. A subject is written as betas, events, then its
    provenance sidecar; a subject whose sidecar records the same inputs and
    parameters is reused, so a killed run is resumed by running it again
    (the subject in progress is estimated again).

    Parameters
    ----------
    bids_dir : str or Path
        BIDS dataset root (events are read from the raw tree).
    subject : str or sequence of str
        A label (with or without ``sub-``), several (``"01,02"`` or a list),
        or ``"all"``: every subject with events for ``task``.
    task : str
        Task label.
    out : str or Path
        Study folder to create or add the subjects to.
    derivatives : str or Path or None
        fMRIPrep output: a name under ``<bids>/derivatives/`` or a path;
        None uses the raw BOLD runs (no confounds, no fMRIPrep mask).
    space : str, optional
        ``space-`` entity of the preprocessed BOLD when several exist.
    method : {"glmsingle", "lss", "lsa"}
        See :func:`single_trial_betas`. ``glmsingle`` also writes its
        per-voxel maps beside the betas (``desc-hrfindex``, ``desc-r2``,
        ``desc-fraction``, ``desc-ncsnr``; ``_map.nii.gz``), lists them in the
        provenance and records what it chose there (``glmsingle``).
    confounds : str
        A key of :data:`CONFOUND_STRATEGIES` (see :func:`fmriprep_confounds`).
    mask : niimg-like, path or False, optional
        Voxels to model. Default: with ``derivatives``, the voxels inside
        fMRIPrep's ``*_desc-brain_mask`` of every run; without, nilearn's
        mask computed from the data. False models every voxel.
    tr : float, optional
        Repetition time; default from the BOLD sidecar or header.
    stimulus_column, trial_types
        See :func:`read_events`.
    hrf_model, noise_model : str
        Passed to ``FirstLevelModel``.
    copy_stimuli : bool
        Copy the images found in ``<bids>/stimuli/`` into ``<out>/stimuli/``.
    overwrite : bool
        Replace subjects that ``out`` holds with other inputs or parameters
        (default: refuse them before anything is computed).
    n_jobs : int
        Parallel workers of each GLM.
    scheduler : str or dask.distributed.Client, optional
        Estimate each subject as one Dask task (workers read the BIDS
        folder, so they must see it at the same path); this process writes
        each subject as its task finishes. Default: one subject at a time here.

    Returns
    -------
    Path
        ``out``.
    """
    bids = Path(bids_dir).expanduser()
    if not bids.is_dir():
        raise input_error(bids, "BIDS folder not found", "give --bids the dataset root")
    deriv = None
    if derivatives is not None:
        deriv = Path(derivatives) if Path(derivatives).is_dir() else bids / "derivatives" / str(derivatives)
        if not deriv.is_dir():
            raise input_error(deriv, "derivatives folder not found", "give --derivatives a folder or a name under <bids>/derivatives")
    if confounds not in CONFOUND_STRATEGIES:
        raise BrainnetError(f"--confounds {confounds}: unknown strategy; use one of {', '.join(CONFOUND_STRATEGIES)}")
    if method not in BETA_METHODS:
        raise BrainnetError(f"--method {method}: unknown; use one of {', '.join(BETA_METHODS)}")
    out = Path(out).expanduser()
    raw, prep = _layouts(bids, deriv)
    labels = _subject_labels(raw, bids, subject, task)
    plans = [
        _plan_subject(raw, prep, bids, deriv, label, task, out, space=space, method=method, confounds=confounds,
                      mask=mask, tr=tr, stimulus_column=stimulus_column, trial_types=trial_types,
                      hrf_model=hrf_model, noise_model=noise_model, n_jobs=n_jobs)
        for label in labels
    ]
    status = {plan.label: _status(plan) for plan in plans}
    other = [label for label, s in status.items() if s == "other"]
    if other and not overwrite:
        func = plans[labels.index(other[0])].betas_path.parent
        raise input_error(func, f"already holds task-{task} betas of sub-{other[0]} made from other inputs or parameters",
                          "choose another --out or pass --overwrite")
    pending = [plan for plan in plans if status[plan.label] != "done"]
    for plan in plans:
        if status[plan.label] == "done":
            notice(f"sub-{plan.label}: betas already in {out} with the same inputs and parameters; reused")
            _update_tables(out, plan.label, pd.read_csv(plan.events_path, sep="\t", dtype=str, keep_default_na=False), bids, copy_stimuli)
        elif status[plan.label] == "partial":
            notice(f"sub-{plan.label}: an earlier run did not finish this subject; estimating it again")
    for plan, result in _estimated(pending, scheduler):
        _write_subject(plan, *result)
        _update_tables(out, plan.label, result[2], bids, copy_stimuli)
    return out


def _estimated(plans: list[_SubjectPlan], scheduler):
    """``(plan, (betas, affine, trials, maps))`` of each subject in order, here or one Dask task per subject."""
    if scheduler is None or not plans:
        for plan in plans:
            yield plan, _estimate(plan)
        return

    from brainnet._execution import dask_client

    with dask_client(scheduler) as client:
        futures = [client.submit(_estimate, plan, pure=False) for plan in plans]
        # Written in the subjects' order, as in one process: participants.tsv and stimuli.tsv
        # then do not depend on which task finished first.
        for plan, future in zip(plans, futures, strict=True):
            yield plan, future.result()


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
            notice(f"{missing} of {len(new)} stimulus images not found under {source}; put them in {out / 'stimuli'} "
                    "or pass --features to analyses")
