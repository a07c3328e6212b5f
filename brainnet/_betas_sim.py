"""Simulated BOLD runs with planted single-trial amplitudes, and the scores of bench_betas.

:func:`simulate_runs` writes no files: it returns 4-D BOLD images, events and
the planted truth, for measuring single-trial estimators against each other
(tests/test_glmsingle.py, benchmarks/bench_betas.py). The model, per voxel::

    bold = baseline * (1 + signal / 100) + drift + motion-like confounds
           + low-rank physiological noise + AR(1) noise

* ``signal``: each trial's amplitude (percent signal change) times that
  trial's boxcar convolved with the voxel's own HRF, drawn from
  :func:`brainnet.glmsingle.hrf_library` (responsive voxels only; the rest of
  the voxels carry noise only);
* amplitudes: stimulus ``s`` of category ``c`` in voxel ``v`` gives
  ``a = 1 + category[c, v] + stimulus[s, v]`` (+ trial-to-trial jitter), so
  repeats of a stimulus agree and categories are decodable;
* drift: a random slow cosine mixture; confounds: 6 random-walk "motion"
  traces, which leak into every voxel with random loadings (and are given to
  the estimators as confounds);
* physiological noise: 5 shared time courses (AR(1)) with random loadings,
  the structure GLMdenoise is built to remove; thermal noise: AR(1), rho 0.3.

Two designs: ``"event"`` (1-s stimuli every 4-6 s, jittered; each stimulus
shown ``n_repeats`` times, in different runs) and ``"block"`` (one block per
category per run, like Haxby et al. 2001).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_runs(design: str = "event", *, shape=(10, 10, 10), n_runs: int = 8, tr: float = 2.0,
                  n_categories: int = 8, n_stimuli: int = 64, n_repeats: int = 4,
                  responsive: float = 0.5, noise: float = 1.0, seed: int = 0) -> dict:
    """Simulated runs with a planted truth (see the module docstring).

    Parameters
    ----------
    design : {"event", "block"}
        Rapid event-related or block design.
    shape : tuple of int
        Voxel grid of the images (all voxels are modelled).
    n_runs : int
        Runs.
    tr : float
        Repetition time (s).
    n_categories, n_stimuli, n_repeats : int
        Event design: stimuli (cycling through categories) and how often each
        is shown (each presentation in a different run; ``n_repeats <= n_runs``).
        Block design: one block per category per run (``n_stimuli`` ignored).
    responsive : float
        Fraction of voxels that respond.
    noise : float
        Standard deviation (percent of baseline) of the thermal noise.
    seed : int
        Seed of everything.

    Returns
    -------
    dict
        ``bold`` (list of 4-D Nifti1Image), ``events`` (list of DataFrame:
        onset, duration, stimulus_id, category), ``confounds`` (list of
        DataFrame, 6 columns), ``amplitudes`` (n_trials, n_voxels) in run then
        onset order, ``hrf_index`` (n_voxels,), ``responsive`` (n_voxels,)
        bool, ``tr``.
    """
    import nibabel as nib

    from brainnet.glmsingle import _regressors, hrf_library

    rng = np.random.default_rng(seed)
    n_vox = int(np.prod(shape))
    hrf_index = rng.integers(0, 20, n_vox)
    resp = rng.random(n_vox) < responsive
    baseline = rng.uniform(500, 1500, n_vox)
    cat_pat = rng.normal(0, 0.6, (n_categories, n_vox))
    events = _block_events(n_runs, n_categories, rng) if design == "block" else \
        _event_events(n_runs, n_categories, n_stimuli, n_repeats, rng)
    if design not in ("event", "block"):
        raise ValueError(f"design {design!r}: use 'event' or 'block'")
    stim_pat = {}
    kernels = hrf_library(0.1)
    bolds, confs, amps = [], [], []
    for ev in events:
        n_vol = int(np.ceil((ev["onset"].max() + ev["duration"].max() + 20) / tr))
        amp = np.empty((len(ev), n_vox))
        for j, (sid, cat) in enumerate(zip(ev["stimulus_id"], ev["category"], strict=True)):
            if sid not in stim_pat:
                stim_pat[sid] = rng.normal(0, 0.5 if design == "event" else 0.2, n_vox)
            amp[j] = 1 + cat_pat[int(cat)] + stim_pat[sid] + rng.normal(0, 0.1, n_vox)
        amps.append(amp)
        x = _regressors(ev, n_vol, tr, kernels, 0.1)  # (20, n_vol, n_trials)
        signal = np.zeros((n_vol, n_vox))
        for k in range(20):
            cols = np.flatnonzero((hrf_index == k) & resp)
            signal[:, cols] = x[k] @ amp[:, cols]
        t = np.arange(n_vol) * tr
        drift = sum(np.cos(np.pi * f * t / t[-1])[:, None] * rng.normal(0, 1.0, n_vox) for f in (1, 2, 3))
        motion = np.cumsum(rng.normal(0, 0.05, (n_vol, 6)), axis=0)
        physio = _ar1(rng, (n_vol, 5), 0.5) @ rng.normal(0, 0.6, (5, n_vox))
        thermal = _ar1(rng, (n_vol, n_vox), 0.3) * noise
        y = baseline * (1 + (signal + drift + motion @ rng.normal(0, 1.0, (6, n_vox)) + physio + thermal) / 100)
        bolds.append(nib.Nifti1Image(y.T.reshape(*shape, n_vol).astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0])))
        confs.append(pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]))
    return {"bold": bolds, "events": events, "confounds": confs, "amplitudes": np.vstack(amps),
            "hrf_index": hrf_index, "responsive": resp, "tr": tr}


def _ar1(rng, size, rho):
    e = rng.normal(0, 1, size)
    out = np.empty(size)
    out[0] = e[0]
    for i in range(1, size[0]):
        out[i] = rho * out[i - 1] + np.sqrt(1 - rho**2) * e[i]
    return out


def _event_events(n_runs, n_categories, n_stimuli, n_repeats, rng) -> list[pd.DataFrame]:
    if n_repeats > n_runs:
        raise ValueError("n_repeats must be at most n_runs (one presentation per run)")
    per_run = [[] for _ in range(n_runs)]
    for s in range(n_stimuli):
        for r in rng.choice(n_runs, n_repeats, replace=False):
            per_run[r].append(s)
    out = []
    for stims in per_run:
        stims = rng.permutation(stims)
        onsets = 6 + np.cumsum(np.r_[0, rng.uniform(4, 6, len(stims) - 1)])
        out.append(pd.DataFrame({"onset": onsets, "duration": 1.0, "stimulus_id": [f"stim{s:03d}" for s in stims],
                                 "category": [s % n_categories for s in stims]}))
    return out


def _block_events(n_runs, n_categories, rng) -> list[pd.DataFrame]:
    out = []
    for _ in range(n_runs):
        order = rng.permutation(n_categories)
        onsets = 12 + np.arange(n_categories) * 36.0  # 24 s blocks, 12 s rest
        out.append(pd.DataFrame({"onset": onsets, "duration": 24.0, "stimulus_id": [f"cat{c}" for c in order],
                                 "category": order}))
    return out


# ---------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------
def truth_correlation(est: np.ndarray, truth: np.ndarray, voxels: np.ndarray) -> float:
    """Median over ``voxels`` of the correlation across trials of estimated and planted amplitudes."""
    e, t = est[:, voxels], truth[:, voxels]
    e = (e - e.mean(0)) / np.maximum(e.std(0), 1e-12)
    t = (t - t.mean(0)) / np.maximum(t.std(0), 1e-12)
    return float(np.median((e * t).mean(0)))


def split_half(est: np.ndarray, stimulus_ids, runs, voxels: np.ndarray | None = None) -> float:
    """Median voxel-wise split-half reliability of repeated stimuli.

    Each stimulus's presentations are ordered by run and split into the first
    and second half (odd counts: the middle one is dropped); per voxel, the
    correlation across stimuli of the two half-means.
    """
    ids = np.asarray(stimulus_ids)
    runs = np.asarray(runs)
    a, b = [], []
    for s in dict.fromkeys(ids):
        idx = np.flatnonzero(ids == s)
        idx = idx[np.argsort(runs[idx], kind="stable")]
        h = idx.size // 2
        if h == 0:
            continue
        a.append(est[idx[:h]].mean(0))
        b.append(est[idx[-h:]].mean(0))
    a, b = np.array(a), np.array(b)
    if voxels is not None:
        a, b = a[:, voxels], b[:, voxels]
    a = (a - a.mean(0)) / np.maximum(a.std(0), 1e-12)
    b = (b - b.mean(0)) / np.maximum(b.std(0), 1e-12)
    return float(np.median((a * b).mean(0)))


def decode_runs(patterns: np.ndarray, labels, runs) -> float:
    """Leave-one-run-out category decoding accuracy.

    Each run's patterns are z-scored per voxel across that run's trials
    (removes run offsets and scale differences between methods' units), then
    a linear SVM (sklearn ``LinearSVC``, C=1) on standardised features.
    """
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    x = np.asarray(patterns, dtype=float).copy()
    runs = np.asarray(runs)
    for r in np.unique(runs):
        m = runs == r
        x[m] = (x[m] - x[m].mean(0)) / np.maximum(x[m].std(0), 1e-12)
    clf = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=20000, random_state=0))
    return float(cross_val_score(clf, x, np.asarray(labels), groups=runs, cv=LeaveOneGroupOut()).mean())


def block_averages(bold_imgs, events, tr: float, mask=None, lag: float = 5.0) -> np.ndarray:
    """Per-run detrended, z-scored BOLD averaged over each block's volumes, shifted by ``lag`` s.

    Returns (n_blocks, n_voxels), blocks in run then onset order.
    """
    from nilearn.signal import clean

    out = []
    for img, ev in zip(bold_imgs, events, strict=True):
        data = np.asarray(img.dataobj, dtype=np.float64)
        y = data[mask > 0].T if mask is not None else data.reshape(-1, data.shape[3]).T
        y = clean(y, detrend=True, standardize="zscore_sample", t_r=tr)
        t = np.arange(len(y)) * tr
        for on, dur in zip(ev["onset"], ev["duration"], strict=True):
            sel = (t >= on + lag) & (t < on + dur + lag)
            out.append(y[sel].mean(0))
    return np.array(out)


# ---------------------------------------------------------------------------
# Haxby et al. (2001), one slice: blocks from attributes.txt
# ---------------------------------------------------------------------------
HAXBY_TR = 2.5


def haxby_folder():
    """``$BRAINNET_REALDATA/haxby2001-slice``, else ``../shared/realdata/haxby2001-slice`` beside the repository."""
    import os
    from pathlib import Path

    root = os.environ.get("BRAINNET_REALDATA") or Path(__file__).resolve().parents[2] / "shared" / "realdata"
    return Path(root) / "haxby2001-slice"
HAXBY_LABELS = ("rest", "face", "house", "shoe", "cat", "scissors", "scrambledpix", "bottle", "chair")


def haxby_runs(folder) -> dict:
    """The Haxby slice as 12 BOLD runs, block events and the mask.

    A block is a maximal stretch of consecutive volumes with the same non-rest
    label within a run; its onset is the time of its first volume, its
    duration the number of volumes times the TR (2.5 s).

    Returns
    -------
    dict
        ``bold`` (list of 12 Nifti1Image), ``events`` (list of DataFrame:
        onset, duration, stimulus_id = category name, category), ``mask``
        (3-D bool array), ``tr``.
    """
    from pathlib import Path

    import nibabel as nib

    folder = Path(folder)
    attrs = np.loadtxt(folder / "attributes.txt", dtype=int)
    img = nib.load(str(folder / "bold.nii.gz"))
    data = np.asarray(img.dataobj, dtype=np.float32)
    mask = np.asarray(nib.load(str(folder / "mask.nii.gz")).dataobj) > 0
    bolds, events = [], []
    for run in np.unique(attrs[:, 1]):
        vols = np.flatnonzero(attrs[:, 1] == run)
        labels = attrs[vols, 0]
        starts = [i for i in range(len(labels)) if labels[i] != 0 and (i == 0 or labels[i - 1] != labels[i])]
        rows = []
        for i in starts:
            n = 1
            while i + n < len(labels) and labels[i + n] == labels[i]:
                n += 1
            rows.append({"onset": i * HAXBY_TR, "duration": n * HAXBY_TR, "stimulus_id": HAXBY_LABELS[labels[i]],
                         "category": int(labels[i])})
        bolds.append(nib.Nifti1Image(data[..., vols], img.affine))
        events.append(pd.DataFrame(rows))
    return {"bold": bolds, "events": events, "mask": mask, "tr": HAXBY_TR}
