"""GLMsingle-class single-trial betas: per-voxel HRF, GLMdenoise, fractional ridge.

The estimator follows the three ideas of GLMsingle (Prince et al. 2022, eLife
11:e77599, "Improving the accuracy of single-trial fMRI response estimates
using GLMsingle"), written here in numpy on top of nilearn (drift basis) and
fracridge (the ridge solver), run by run and chunk of voxels by chunk:

1. **HRF library, chosen per voxel.** GLMsingle ships 20 HRFs derived from
   the Natural Scenes Dataset (``getcanonicalhrflibrary``); their values are
   stored in a data file that cannot be regenerated from a formula, and we do
   not ship it. :func:`hrf_library` generates a documented stand-in: 20
   SPM double-gamma HRFs stretched in time so that their time-to-peak runs
   evenly from 4 to 8 s (the range the published library spans), each
   normalised to a peak of 1. Each trial's regressor is the HRF convolved with
   the trial's boxcar, scaled so the predicted response peaks at 1, so a beta
   is the peak response in percent signal change. Each voxel takes the HRF
   with the highest leave-one-run-out cross-validated R² (amplitudes fitted
   on the other runs, R² of the held-out run's time series) of the on-off
   model (every trial one regressor) or, when the design repeats stimuli
   across runs, of the condition model (one regressor per repeated
   stimulus, one for the other trials) if that predicts the voxel's
   held-out runs better; with a single run, the on-off model's in-sample R². Voxels whose best
   cross-validated R² is at most ``pool_r2`` take the HRF with the highest
   R² summed over the other voxels, and so does every voxel whose own HRF
   does not beat that one by more than one standard error across held-out
   runs (the one-SE rule): a noisy voxel's argmax is noise and falls on the
   library's ends (measured on the Haxby slice).
2. **GLMdenoise** (Kay et al. 2013). The noise pool is the voxels whose
   cross-validated on-off R² is at most ``pool_r2`` (default 0: no
   task-related variance that generalises across runs). Per run, the noise
   regressors are the top principal components of the pool's time series
   (drift and confounds removed, each voxel scaled to unit length). Their
   number ``n`` (0 .. ``max_pcs``) is chosen by leave-one-run-out
   cross-validated on-off R² over the task voxels (cross-validated R² > 0
   without noise regressors; at most 2,000 of the best). Stop rule (that of
   GLMdenoise): the smallest ``n`` whose median R² improvement over ``n = 0``
   reaches 95 % of the largest improvement; 0 when no ``n`` improves it.
3. **Fractional ridge per voxel** (Rokem & Kay 2020), with the maintained
   ``fracridge`` package, on the single-trial design of each run after the
   drift, confounds and noise regressors are projected out (they are not
   penalised). Fractions 0.05, 0.10, ..., 1 of the OLS solution's length are
   tried. When some stimuli are shown in more than one run, each voxel's
   fraction minimises the squared error of predicting each repeated trial's
   OLS beta (unbiased, noisy) from the mean of that stimulus's regularised
   betas in the other runs. Runs are independent, so this is an unbiased
   estimate of the prediction error up to a constant. The chosen betas are
   then rescaled per voxel by the linear fit (slope and offset) to the OLS
   betas, as GLMsingle does, so shrinkage does not change the units. Without
   repeats the fraction is 1 (OLS) and the provenance says so.

Per-voxel maps: the chosen HRF index (0-based into the library), the
cross-validated on-off R² with the chosen HRF and noise regressors, the ridge
fraction, and the noise-ceiling SNR of the final betas (sqrt of signal
variance over noise variance, both from the repeated stimuli; NaN without
repeats).

Why written by hand: GLMsingle's Python port is not on PyPI as a maintained
wheel, holds every voxel's design and fits in memory at once, and its users
report multi-hour runs and memory errors on NSD/NOD-sized data. Here each
pass streams chunks of ``chunk_size`` voxels, so memory is the masked data
(float32), two float32 arrays of held-out errors (runs x 20 x voxels) and one
chunk's fits (the ridge pass sizes its chunks so that the betas of every
fraction stay under 256 MB); ``benchmarks/bench_betas.py --nod`` measures time
and peak memory on a NOD-sized subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from brainnet.errors import BrainnetError

__all__ = ["HRF_PEAKS", "FRACTIONS", "GLMsingleResult", "hrf_library", "glmsingle"]

#: Time-to-peak (s) of the 20 library HRFs.
HRF_PEAKS: np.ndarray = np.linspace(4.0, 8.0, 20)
#: Ridge fractions tried (fraction of the OLS solution's length).
FRACTIONS: np.ndarray = np.round(np.arange(1, 21) * 0.05, 2)
_HRF_LENGTH = 32.0


def _double_gamma(t: np.ndarray) -> np.ndarray:
    from scipy.stats import gamma

    return gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6.0


@lru_cache(maxsize=1)
def _spm_peak() -> float:
    """Time-to-peak (s) of SPM's double gamma (shapes 6 and 16, ratio 1/6) at unit time scale."""
    t = np.arange(0, 20, 1e-4)
    return float(t[np.argmax(_double_gamma(t))])


def hrf_library(dt: float = 0.1, length: float = _HRF_LENGTH) -> np.ndarray:
    """The 20 library HRFs sampled every ``dt`` seconds from stimulus onset.

    HRF ``k`` is SPM's double gamma stretched in time so that it peaks at
    ``HRF_PEAKS[k]`` seconds; each is scaled to a maximum of 1.

    Parameters
    ----------
    dt : float
        Sampling step in seconds.
    length : float
        Duration in seconds.

    Returns
    -------
    ndarray of shape (20, round(length / dt))
    """
    t = np.arange(int(round(length / dt))) * dt
    scale = HRF_PEAKS / _spm_peak()
    h = _double_gamma(t[None, :] / scale[:, None])
    return h / h.max(axis=1, keepdims=True)


def _regressors(trials: pd.DataFrame, n_volumes: int, tr: float, kernels: np.ndarray, dt: float,
                normalise: bool = True) -> np.ndarray:
    """Per-trial regressors for each kernel, shape (n_kernels, n_volumes, n_trials).

    The boxcar of each trial (onset, duration; durations under ``dt`` count as
    one step) is convolved with each kernel on a grid of step ``dt`` and read at
    the acquisition times ``tr * arange(n_volumes)``. With ``normalise`` each
    regressor is divided by the peak of its kernel's response to a boxcar of
    the trial's duration, so a unit beta is a response peaking at 1.
    """
    from scipy.signal import fftconvolve

    n_fine = int(np.ceil(n_volumes * tr / dt)) + 1
    onsets = np.rint(trials["onset"].to_numpy(float) / dt).astype(int)
    steps = np.maximum(np.rint(trials["duration"].to_numpy(float) / dt).astype(int), 1)
    box = np.zeros((n_fine, len(trials)))
    for j, (a, n) in enumerate(zip(onsets, steps, strict=True)):
        box[max(a, 0): max(a + n, 0), j] = 1.0
    conv = fftconvolve(box[None, :, :], kernels[:, :, None], axes=1)[:, :n_fine]
    times = np.arange(n_volumes) * tr / dt
    lo = np.floor(times).astype(int)
    frac = times - lo
    hi = np.minimum(lo + 1, n_fine - 1)
    x = conv[:, lo] * (1 - frac)[None, :, None] + conv[:, hi] * frac[None, :, None]
    if normalise:
        peak = {n: fftconvolve(kernels, np.ones((1, n)), axes=1).max(axis=1) for n in np.unique(steps)}
        x = x / np.stack([peak[n] for n in steps], axis=1)[:, None, :]
    return x


def _nuisance(n_volumes: int, tr: float, drift_order: int | None, confounds) -> np.ndarray:
    """Orthonormal basis (n_volumes, q) of nilearn's polynomial drift (with constant) + confounds.

    ``drift_order`` None: GLMdenoise's rule, round(run duration in minutes / 2).
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(n_volumes) * tr
    order = _drift_order(n_volumes, tr) if drift_order is None else drift_order
    drift = make_first_level_design_matrix(frame_times, events=None, drift_model="polynomial", drift_order=order).to_numpy()
    cols = [drift]
    if confounds is not None:
        c = np.asarray(confounds, dtype=float).reshape(n_volumes, -1)
        cols.append(c - c.mean(axis=0))
    u, s, _ = np.linalg.svd(np.hstack(cols), full_matrices=False)
    return u[:, s > s[0] * 1e-10]


def _drift_order(n_volumes: int, tr: float) -> int:
    return int(round(n_volumes * tr / 60 / 2))


def _residualise(basis: np.ndarray, a: np.ndarray) -> np.ndarray:
    return a - basis @ (basis.T @ a)


@dataclass
class GLMsingleResult:
    """Output of :func:`glmsingle`.

    Attributes
    ----------
    betas : ndarray of shape (n_trials, n_voxels), float32
        Single-trial betas in percent signal change (peak of the response),
        trials in run then onset order.
    hrf_index : ndarray of shape (n_voxels,), int
        Chosen library HRF (0-based; ``HRF_PEAKS[i]`` is its time-to-peak).
    r2 : ndarray of shape (n_voxels,)
        Cross-validated R² of the on-off model (chosen HRF and noise regressors).
    fraction : ndarray of shape (n_voxels,)
        Chosen ridge fraction (1 = OLS).
    ncsnr : ndarray of shape (n_voxels,)
        Noise-ceiling SNR of the betas (NaN without repeated stimuli).
    info : dict
        What was chosen and why (noise pool size, number of noise regressors
        and the R² curve behind it, whether fractions were cross-validated).
    """

    betas: np.ndarray
    hrf_index: np.ndarray
    r2: np.ndarray
    fraction: np.ndarray
    ncsnr: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _cv_sse(xy: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Held-out residual sums of squares of a one-regressor model, per run, from sufficient statistics.

    ``xy`` (n_runs, ..., n_voxels), ``xx`` broadcastable to it, ``yy`` (n_runs, n_voxels).
    The amplitude is fitted on the other runs and the held-out run's residual
    sum of squares is ``yy - 2 b xy + b^2 xx``. With one run: in-sample.
    """
    tiny = 1e-12
    if xy.shape[0] == 1:
        b = xy / np.maximum(xx, tiny)
    else:
        b = (xy.sum(0) - xy) / np.maximum(xx.sum(0) - xx, tiny)
    yyb = yy[:, None, :] if xy.ndim == 3 else yy
    return yyb - 2 * b * xy + b**2 * xx


def _cv_r2(xy: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Leave-one-run-out R² (see :func:`_cv_sse`), shape ``xy.shape[1:]``."""
    sse = _cv_sse(xy, xx, yy)
    yyb = yy[:, None, :] if xy.ndim == 3 else yy
    return 1 - sse.sum(0) / np.maximum(yyb.sum(0), 1e-12)


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _psc(y: np.ndarray) -> np.ndarray:
    """Percent signal change of a run (n_volumes, n_voxels) about each voxel's mean."""
    mean = y.mean(axis=0, dtype=np.float64)
    scale = np.where(np.abs(mean) > 1e-6, 100.0 / np.where(mean == 0, 1, mean), 1.0)
    return y.astype(np.float64) * scale


def glmsingle(
    data: Sequence[np.ndarray],
    trials: Sequence[pd.DataFrame],
    *,
    tr: float,
    confounds: Sequence | None = None,
    drift_order: int | None = None,
    max_pcs: int = 10,
    pool_r2: float = 0.0,
    fractions: Sequence[float] | None = None,
    chunk_size: int = 5000,
    dt: float = 0.1,
) -> GLMsingleResult:
    """GLMsingle-class single-trial betas of masked runs (see the module docstring).

    Parameters
    ----------
    data : sequence of ndarray, each (n_volumes_run, n_voxels)
        One masked BOLD run each (raw intensities; converted to percent
        signal change about each voxel's run mean).
    trials : sequence of DataFrame
        Per run: ``onset``, ``duration`` (s) and ``stimulus_id``.
    tr : float
        Repetition time in seconds.
    confounds : sequence of (array of shape (n_volumes_run, n_confounds) or None), optional
        Per-run confound regressors (not penalised).
    drift_order : int, optional
        Order of the polynomial drift basis (nilearn's); default GLMdenoise's
        round(run minutes / 2). A cosine basis with a 0.01 Hz cut-off removes
        the slow block-to-block variation that carries the category signal
        of block designs (Haxby slice: decoding 0.45 vs 0.60 without noise
        regressors, measured).
    max_pcs : int
        Largest number of GLMdenoise noise regressors tried.
    pool_r2 : float
        Noise-pool threshold on the cross-validated on-off R².
    fractions : sequence of float, optional
        Ridge fractions tried (default :data:`FRACTIONS`); must include 1.
    chunk_size : int
        Voxels fitted at once (bounds memory).
    dt : float
        Step (s) of the fine grid the regressors are convolved on.

    Returns
    -------
    GLMsingleResult
    """
    from fracridge import fracridge

    n_runs = len(data)
    if n_runs == 0 or len(trials) != n_runs:
        raise BrainnetError(f"glmsingle: {n_runs} runs of data but {len(trials)} trial tables; give one per run")
    n_vox = data[0].shape[1]
    if any(d.shape[1] != n_vox for d in data):
        raise BrainnetError("glmsingle: runs have different numbers of voxels; give every run on the same grid and mask")
    fracs = np.asarray(FRACTIONS if fractions is None else fractions, dtype=float)
    if not np.isclose(fracs.max(), 1.0):
        raise BrainnetError("glmsingle: fractions must include 1 (the OLS solution); add it")
    conf = list(confounds) if confounds is not None else [None] * n_runs
    kernels = hrf_library(dt)
    n_k = len(kernels)

    # Per run: nuisance basis, residualised per-trial regressors for every HRF, on-off regressors.
    bases, design, onoff = [], [], []
    for y, t, c in zip(data, trials, conf, strict=True):
        q = _nuisance(len(y), tr, drift_order, c)
        x = _regressors(t, len(y), tr, kernels, dt)
        x = x - np.einsum("ti,kin->ktn", q, np.einsum("ti,ktn->kin", q, x))
        bases.append(q)
        design.append(x)
        onoff.append(x.sum(axis=2))  # (n_k, n_volumes)

    # Repeated stimuli (shown in more than one run) are the conditions of the HRF choice and of the ridge CV.
    ids = pd.concat([t["stimulus_id"].astype(str) for t in trials], ignore_index=True).to_numpy()
    run_of = np.concatenate([np.full(len(t), r) for r, t in enumerate(trials)])
    conditions = _conditions(ids, run_of)

    # Pass 1: per HRF, cross-validated R² of the on-off model (noise pool, task voxels) and,
    # with repeats, of the condition model (the HRF choice).
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in trials])])
    cond_design = None
    if conditions is not None and n_runs > 1:
        cond_design = [np.einsum("ktn,nc->ktc", design[r], conditions[offsets[r]:offsets[r + 1]]) for r in range(n_runs)]
    # Held-out SSE per run, HRF and voxel, as a fraction of the voxel's total sum of squares.
    sse_onoff = np.empty((n_runs, n_k, n_vox), dtype=np.float32)
    sse_cond = np.empty((n_runs, n_k, n_vox), dtype=np.float32) if cond_design is not None else None
    xx = np.stack([(o**2).sum(1) for o in onoff])[:, :, None]
    for sl in _chunks(n_vox, chunk_size):
        xy = np.empty((n_runs, n_k, sl.stop - sl.start))
        yy = np.empty((n_runs, sl.stop - sl.start))
        yrs = []
        for r, y in enumerate(data):
            yr = _residualise(bases[r], _psc(y[:, sl]))
            xy[r] = onoff[r] @ yr
            yy[r] = (yr**2).sum(0)
            if cond_design is not None:
                yrs.append(yr)
        total = np.maximum(yy.sum(0), 1e-12)
        sse_onoff[:, :, sl] = _cv_sse(xy, xx, yy) / total
        if cond_design is not None:
            sse_cond[:, :, sl] = _condition_cv_sse(cond_design, yrs, yy) / total
    r2_k = 1 - sse_onoff.sum(0, dtype=np.float64)
    sse = sse_onoff
    if cond_design is not None:
        # Per voxel, the model (condition or on-off) that predicts held-out runs better chooses the HRF.
        use_cond = (1 - sse_cond.sum(0, dtype=np.float64)).max(0) > r2_k.max(0)
        sse = np.where(use_cond[None, None, :], sse_cond, sse_onoff)
        del sse_cond
    r2_choice = 1 - sse.sum(0, dtype=np.float64)
    hrf_index = np.argmax(r2_choice, axis=0)
    cols = np.arange(n_vox)
    # A voxel keeps its own HRF only if it predicts held-out runs better than the HRF best over all
    # voxels by more than one standard error of that gain across runs (the one-SE rule): the argmax
    # of a noisy voxel is noise and lands on the library's ends (measured on the Haxby slice).
    weak = r2_choice[hrf_index, cols] <= pool_r2
    global_hrf = int(np.argmax(r2_choice[:, ~weak].sum(axis=1))) if (~weak).any() else int(np.argmax(r2_choice.sum(axis=1)))
    if n_runs > 1:
        gain = sse[:, global_hrf, :].astype(np.float64) - sse[:, hrf_index, cols]  # (n_runs, n_vox)
        own = gain.sum(0) > gain.std(0, ddof=1) * np.sqrt(n_runs)
    else:
        own = np.ones(n_vox, bool)
    del sse
    hrf_index[weak | ~own] = global_hrf
    r2_0 = r2_k[hrf_index, np.arange(n_vox)]

    pool = np.flatnonzero(r2_0 <= pool_r2)
    if max_pcs > 0 and pool.size == 0:
        raise BrainnetError(f"glmsingle: the noise pool has no voxels (every modelled voxel's cross-validated R² > {pool_r2:g}); "
                            "widen --mask beyond the task-responsive voxels (in Python: or pass max_pcs=0)")
    pcs = []
    n_pcs_avail = 0
    if max_pcs > 0:
        for r, y in enumerate(data):
            gram = np.zeros((len(y), len(y)))
            for sl in _chunks(pool.size, chunk_size):
                z = _residualise(bases[r], _psc(y[:, pool[sl]]))
                z /= np.maximum(np.linalg.norm(z, axis=0), 1e-12)
                gram += z @ z.T
            w, v = np.linalg.eigh(gram)
            keep = min(max_pcs, int((w > w[-1] * 1e-10).sum()))
            pcs.append(v[:, ::-1][:, :keep])
        n_pcs_avail = min(p.shape[1] for p in pcs)

    # Choose the number of noise regressors on task voxels.
    task = np.flatnonzero(r2_0 > 0)
    task = task[np.argsort(r2_0[task])[::-1][:2000]]
    curve = [float(np.median(r2_0[task]))] if task.size else [0.0]
    n_pcs = 0
    if n_pcs_avail > 0 and task.size and n_runs > 1:
        xy = np.empty((n_pcs_avail + 1, n_runs, task.size))
        xx = np.empty((n_pcs_avail + 1, n_runs, task.size))
        yy = np.empty((n_pcs_avail + 1, n_runs, task.size))
        for r, y in enumerate(data):
            yr = _residualise(bases[r], _psc(y[:, task]))
            xr = onoff[r][hrf_index[task]].T  # (n_volumes, n_task)
            py, px = pcs[r][:, :n_pcs_avail].T @ yr, pcs[r][:, :n_pcs_avail].T @ xr
            # Projecting out the first n (orthonormal) PCs removes their products one by one.
            xy[:, r] = np.concatenate([[(xr * yr).sum(0)], (xr * yr).sum(0) - np.cumsum(px * py, axis=0)])
            xx[:, r] = np.concatenate([[(xr**2).sum(0)], (xr**2).sum(0) - np.cumsum(px**2, axis=0)])
            yy[:, r] = np.concatenate([[(yr**2).sum(0)], (yr**2).sum(0) - np.cumsum(py**2, axis=0)])
        curve = [float(np.median(_cv_r2(xy[n], xx[n], yy[n]))) for n in range(n_pcs_avail + 1)]
        gain = np.array(curve) - curve[0]
        if gain.max() > 0:
            n_pcs = int(np.flatnonzero(gain >= 0.95 * gain.max())[0])
    noise = [p[:, :n_pcs] for p in pcs] if n_pcs else [np.zeros((len(y), 0)) for y in data]

    # Repeated stimuli across runs decide the ridge fraction.
    n_trials = ids.size
    avg = _repeat_operator(ids, run_of)
    cv_fraction = avg is not None and len(fracs) > 1
    use = fracs if cv_fraction else np.array([1.0])

    betas = np.empty((n_trials, n_vox), dtype=np.float32)
    fraction = np.ones(n_vox)
    r2 = np.empty(n_vox)
    # The betas of every fraction for a chunk take n_trials x fractions x voxels floats: cap them at 256 MB.
    ridge_chunk = min(chunk_size, max(64, 2**28 // (4 * n_trials * len(use))))
    # Voxels in HRF order: a chunk then holds one or two HRFs, so fracridge (which decomposes the
    # design on every call) runs about twice per run and chunk rather than once per HRF present.
    order = np.argsort(hrf_index, kind="stable")
    for sl in _chunks(n_vox, ridge_chunk):
        nv = sl.stop - sl.start
        vox = order[sl]
        idx = hrf_index[vox]
        est = np.zeros((n_trials, len(use), nv), dtype=np.float32)
        xy_c, xx_c, yy_c = np.empty((n_runs, nv)), np.empty((n_runs, nv)), np.empty((n_runs, nv))
        for r, y in enumerate(data):
            basis = noise[r]
            yr = _residualise(bases[r], _psc(y[:, vox]))
            if basis.shape[1]:
                yr = _residualise(basis, yr)
            xo = onoff[r][idx].T
            if basis.shape[1]:
                xo = _residualise(basis, xo)
            xy_c[r], xx_c[r], yy_c[r] = (xo * yr).sum(0), (xo**2).sum(0), (yr**2).sum(0)
            rows = slice(offsets[r], offsets[r + 1])
            for k in np.unique(idx):
                cols = np.flatnonzero(idx == k)
                x = design[r][k]
                if basis.shape[1]:
                    x = _residualise(basis, x)
                coef, _ = fracridge(x, yr[:, cols], use, jit=False)
                est[rows, :, cols] = coef
        r2[vox] = _cv_r2(xy_c, xx_c, yy_c)
        if cv_fraction:
            ols = est[:, -1, :].astype(np.float64)
            err = np.stack([((ols - avg @ est[:, f, :]) ** 2)[avg.getnnz(axis=1) > 0].sum(0) for f in range(len(use))])
            best = np.argmin(err, axis=0)
            chosen = est[:, best, np.arange(nv)].astype(np.float64)
            fraction[vox] = use[best]
            chosen = _rescale(chosen, ols)
        else:
            chosen = est[:, 0, :]
        betas[:, vox] = chosen
    ncsnr = _ncsnr(betas, ids)
    info = {
        "hrf_library": f"{n_k} SPM double-gamma HRFs stretched to times-to-peak {HRF_PEAKS[0]:g}..{HRF_PEAKS[-1]:g} s",
        "noise_pool_voxels": int(pool.size),
        "task_voxels": int(task.size),
        "n_noise_regressors": int(n_pcs),
        "noise_regressor_curve": [round(v, 6) for v in curve],
        "fraction_cross_validated": bool(cv_fraction),
        "fractions": use.tolist(),
        "cv": "leave-one-run-out" if n_runs > 1 else "in-sample (one run)",
        "units": "percent signal change (peak response)",
    }
    return GLMsingleResult(betas, hrf_index.astype(np.int16), r2, fraction, ncsnr, info)


def _conditions(ids: np.ndarray, run_of: np.ndarray) -> np.ndarray | None:
    """Trial -> condition indicator (n_trials, n_conditions): one column per stimulus shown in
    more than one run, one column for all other trials; None without such stimuli."""
    names, inverse = np.unique(ids, return_inverse=True)
    runs_per = np.array([np.unique(run_of[inverse == c]).size for c in range(len(names))])
    repeated = runs_per[inverse] > 1
    if not repeated.any():
        return None
    codes = np.unique(inverse[repeated])
    col = np.full(ids.size, len(codes))
    col[repeated] = np.searchsorted(codes, inverse[repeated])
    out = np.zeros((ids.size, len(codes) + int((~repeated).any())))
    out[np.arange(ids.size), col] = 1.0
    return out


def _condition_cv_sse(design: list, ys: list, yy: np.ndarray) -> np.ndarray:
    """Held-out residual sums of squares of the condition model, shape (n_runs, n_hrfs, n_voxels).

    ``design[r]`` (n_hrfs, n_volumes, n_conditions) residualised condition
    regressors of run ``r``; ``ys[r]`` (n_volumes, n_voxels) residualised
    data; ``yy`` (n_runs, n_voxels) their sums of squares. Condition betas are
    fitted on the other runs (a ridge of 1e-6 x mean diagonal keeps conditions
    absent from them at 0) and predict the held-out run.
    """
    n_runs, n_k = len(design), design[0].shape[0]
    out = np.empty((n_runs, n_k, ys[0].shape[1]))
    for k in range(n_k):
        xtx = np.stack([d[k].T @ d[k] for d in design])  # (n_runs, C, C)
        xty = np.stack([d[k].T @ y for d, y in zip(design, ys, strict=True)])  # (n_runs, C, V)
        sxx, sxy = xtx.sum(0), xty.sum(0)
        for r in range(n_runs):
            a = sxx - xtx[r]
            a = a + np.eye(len(a)) * 1e-6 * max(np.trace(a) / len(a), 1e-12)
            b = np.linalg.solve(a, sxy - xty[r])
            out[r, k] = yy[r] - 2 * (b * xty[r]).sum(0) + (b * (xtx[r] @ b)).sum(0)
    return out


def _repeat_operator(ids: np.ndarray, run_of: np.ndarray):
    """Sparse (n_trials, n_trials): row i averages trial i's stimulus over the other runs; None without repeats."""
    from scipy import sparse

    rows, cols, vals = [], [], []
    for i in range(ids.size):
        others = np.flatnonzero((ids == ids[i]) & (run_of != run_of[i]))
        if others.size:
            rows.extend([i] * others.size)
            cols.extend(others.tolist())
            vals.extend([1.0 / others.size] * others.size)
    if not rows:
        return None
    return sparse.csr_matrix((vals, (rows, cols)), shape=(ids.size, ids.size))


def _rescale(chosen: np.ndarray, ols: np.ndarray) -> np.ndarray:
    """Per voxel, the linear fit (offset + slope) of the OLS betas on the chosen betas."""
    cm, om = chosen.mean(0), ols.mean(0)
    c = chosen - cm
    slope = (c * (ols - om)).sum(0) / np.maximum((c**2).sum(0), 1e-12)
    return om + slope * c


def _ncsnr(betas: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Noise-ceiling SNR per voxel from stimuli shown at least twice; NaN without repeats."""
    codes, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    rep = counts[inverse] >= 2
    if not rep.any():
        return np.full(betas.shape[1], np.nan)
    b = betas[rep].astype(np.float64)
    g = inverse[rep]
    sums = np.zeros((len(codes), b.shape[1]))
    np.add.at(sums, g, b)
    n = counts[:, None].astype(float)
    means = np.where(n > 0, sums / np.maximum(n, 1), 0)
    resid = b - means[g]
    dof = (counts[counts >= 2] - 1).sum()
    noise_var = (resid**2).sum(0) / dof
    total_var = b.var(0, ddof=1)
    signal_var = np.maximum(total_var - noise_var, 0)
    return np.sqrt(signal_var) / np.sqrt(np.maximum(noise_var, 1e-12))
