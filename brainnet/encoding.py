"""Per-subject encoding models: network features -> every voxel.

Design choices (kept consistent across fit, noise ceiling and permutations):

- **Unit of analysis = stimulus.** Repeats of a stimulus are averaged first
  (``SubjectData.averaged()``), so a stimulus is never split across training
  and test sets, and the noise ceiling is the reliability of that same
  average.
- **Outer cross-validation** is ``KFold(cv, shuffle=True, random_state=seed)``
  over stimuli. Features are standardised on the training stimuli of each
  fold (as a ``StandardScaler`` in a pipeline).
- **Ridge** chooses one penalty per voxel inside each training fold, by exact
  leave-one-out error (``inner="loo"``, the default, equal to scikit-learn's
  ``RidgeCV(alpha_per_target=True)``) or an inner k-fold (``inner=k``, equal to
  himalaya's ``RidgeCV(cv=k)``). See :mod:`brainnet._ridge`.
- **PLS** uses scikit-learn's ``PLSRegression(scale=False)`` on the
  standardised features, one PLS2 model for all voxels; it has no fast
  permutation path (each permutation refits), so use fewer permutations.
- **Scores** per voxel: ``r`` (the headline: maps, mean, median, p and
  FWE) is Pearson r computed within each test fold and averaged over
  folds; ``r_pooled`` is r of all out-of-fold predictions pooled, kept as
  a secondary column. Pooled predictions carry each training fold's mean,
  anti-correlated with its test fold's mean, so pooled r of pure-noise
  voxels sits well below 0 (about -0.2 with 40 stimuli, 5 folds) and
  cannot be read against 0; per-fold r centres on 0 (null studies in the
  tests: |mean| < 0.02) and ranks voxels as well. ``r2`` is R² of the
  pooled out-of-fold predictions (scikit-learn's ``cross_val_predict``
  convention).
- **Permutations** test the headline statistic (per-fold r) and re-pair brain responses with network features. The folds
  are attached to the *feature rows* (which stimuli's features are in the
  training set), so a permutation is literally: responses re-ordered by the
  inverse permutation, features and folds unchanged, model refitted
  (including the inner choice of penalties). Because the features of every
  fold are unchanged, each fold's SVD is reused for every permutation and
  permutations are batched as extra target columns; the result equals
  refitting scikit-learn on the permuted data (tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, validate_data

from brainnet import _defaults
from brainnet._display import Record
from brainnet._ridge import RidgeBasis, cross_val_predict_blocks
from brainnet.errors import BrainnetError
from brainnet.permutation import max_stat_p_values, p_values, permutation_test
from brainnet.stats import fold_mean_pearson, null_effect, pearson_columns, spearman_brown

if TYPE_CHECKING:
    from brainnet.features import Features

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_PERMUTATIONS",
    "VoxelwiseRidgeCV",
    "EncodingResult",
    "make_folds",
    "cross_validated_encoding",
    "encoding_permutation_test",
    "split_half_noise_ceiling",
    "repeat_noise_ceiling",
    "NoiseCeiling",
    "encode",
    "encode_subject",
    "encode_subjects",
    "SubjectsEncodingResult",
]

#: Penalty grid (features are standardised, so it does not depend on units).
DEFAULT_ALPHAS = np.logspace(-2, 5, 15)
#: Default permutations: p-values down to 1/201 and a run well under a minute on
#: the embedded study on 2 cores; for publication use ``n_permutations=10000``.
DEFAULT_PERMUTATIONS = _defaults.ENCODE_PERMUTATIONS
MODELS = _defaults.ENCODE_MODELS


def _alphas(alphas) -> np.ndarray:
    a = np.atleast_1d(np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise BrainnetError(f"--alphas {np.ravel(a).tolist()}: penalties must be positive numbers; e.g. --alphas 0.1 1 10 100")
    return np.sort(a)


class VoxelwiseRidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression with one penalty per target, chosen by inner cross-validation.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), optional
        Candidate penalties (default :data:`DEFAULT_ALPHAS`).
    inner : "loo" or int
        ``"loo"``: exact leave-one-out error (as scikit-learn's
        ``RidgeCV(alpha_per_target=True)``); an int ``k``: unshuffled inner
        ``KFold(k)`` (as himalaya's ``RidgeCV(cv=k)``).
    standardize : bool
        Standardise the features on the training data (as ``StandardScaler``).

    Attributes
    ----------
    best_alphas_ : ndarray of shape (n_targets,)
    coef_ : ndarray of shape (n_targets, n_features)
        Weights on the original (unstandardised) features; computed on access.
    intercept_ : ndarray of shape (n_targets,)
    """

    def __init__(self, alphas=None, inner="loo", standardize: bool = True):
        self.alphas = alphas
        self.inner = inner
        self.standardize = standardize

    def fit(self, X, y):
        """Fit on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_targets)."""
        X, y = validate_data(self, X, y, dtype="numeric", multi_output=True, y_numeric=True)
        self._ravel = y.ndim == 1
        y2 = y[:, None] if self._ravel else y
        self.basis_ = RidgeBasis(X, _alphas(self.alphas), self.inner, self.standardize)
        self.c_, self.y_mean_, self.best_index_ = self.basis_.fit_targets(y2)
        self.best_alphas_ = self.basis_.alphas[self.best_index_]
        return self

    def predict(self, X):
        """Predictions, shape (n_samples, n_targets) (or (n_samples,) for a 1-d ``y``)."""
        check_is_fitted(self, "basis_")
        X = validate_data(self, X, dtype="numeric", reset=False)
        out = self.basis_.predict(self.basis_.rows(X), self.c_, self.y_mean_, self.best_index_)
        return out[:, 0] if self._ravel else out

    @property
    def coef_(self) -> np.ndarray:
        check_is_fitted(self, "basis_")
        w = self.basis_.coef(self.c_, self.best_index_) / self.basis_.scale[:, None]
        return w[:, 0] if self._ravel else w.T

    @property
    def intercept_(self) -> np.ndarray:
        check_is_fitted(self, "basis_")
        icpt = self.y_mean_ - self.basis_.mean @ (self.coef_.T if not self._ravel else self.coef_)
        return icpt[0] if self._ravel else icpt


def make_folds(n_stimuli: int, cv: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Outer folds over stimuli: ``KFold(cv, shuffle=True, random_state=seed)``.

    Raises :class:`BrainnetError` when there are too few stimuli (every
    training set needs at least 3 stimuli and every test set one).
    """
    if not isinstance(cv, int | np.integer) or cv < 2:
        raise BrainnetError(f"--cv {cv}: needs at least 2 folds; e.g. --cv 5")
    if n_stimuli < cv or n_stimuli - int(np.ceil(n_stimuli / cv)) < 3:
        raise BrainnetError(
            f"--cv {cv}: {n_stimuli} stimuli are too few for {cv}-fold cross-validation "
            f"(each training set needs >= 3 stimuli); use a smaller --cv or more stimuli"
        )
    splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(np.arange(n_stimuli))]


def _check_inner(inner, n_train: int) -> None:
    """An inner k-fold needs at least 2 stimuli per inner fold of the smallest training set."""
    if inner != "loo" and n_train < 2 * int(inner):
        from brainnet._checks import ParameterError

        raise ParameterError("inner", inner, f"a training fold has only {n_train} stimuli",
                             "pass {} (exact leave-one-out) or a smaller inner k", examples=("loo",))


def _ridge_bases(x, folds, alphas, inner):
    with _blas_limit():
        return _ridge_bases_unlimited(x, folds, alphas, inner)


def _ridge_bases_unlimited(x, folds, alphas, inner):
    bases = []
    for train, test in folds:
        _check_inner(inner, len(train))
        basis = RidgeBasis(x[train], alphas, inner)
        bases.append((basis, train, test, basis.rows(x[test])))
    return bases


def _pls_predict(x, y, folds, n_components):
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.preprocessing import StandardScaler

    pred = np.empty(y.shape, dtype=np.float64)
    for train, test in folds:
        k = min(n_components, len(train) - 1, x.shape[1])
        scaler = StandardScaler().fit(x[train])
        pls = PLSRegression(n_components=k, scale=False).fit(scaler.transform(x[train]), y[train])
        pred[test] = pls.predict(scaler.transform(x[test]))
    return pred


def _r2_columns(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    y = y.astype(np.float64, copy=False)
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.nan)


class _Encoder:
    """Cross-validated encoding of fixed features; refits for any response matrix."""

    def __init__(self, x, folds, *, model="ridge", alphas=None, inner="loo", n_components=5):
        if model not in MODELS:
            raise BrainnetError(f"--model {model}: unknown model; use ridge or pls")
        self.model, self.folds, self.n_components = model, folds, n_components
        self.x = np.asarray(x)
        self.alphas = _alphas(alphas)
        self.bases = _ridge_bases(self.x, folds, self.alphas, inner) if model == "ridge" else None

    def predict(self, y: np.ndarray, n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
        """Out-of-fold predictions (n_stimuli, n_columns) and chosen alphas (n_folds, n_columns)."""
        if self.model == "ridge":
            pred, best = cross_val_predict_blocks(self.bases, y, n_jobs=n_jobs)
            return pred, self.alphas[best]
        return _pls_predict(self.x, y, self.folds, self.n_components), None

    def permuted_r(self, y: np.ndarray, perms: np.ndarray) -> np.ndarray:
        """Per-voxel per-fold r (averaged over folds) for each permutation, shape (n_perms, n_voxels).

        Row ``perm`` pairs response row ``i`` with feature row ``perm[i]``: the
        responses are re-ordered by the inverse permutation (features and folds
        fixed) and all permutations are fitted at once as extra columns.
        """
        n, v = y.shape
        ys = np.concatenate([y[np.argsort(p)] for p in perms], axis=1)
        pred, _ = self.predict(ys)
        return fold_mean_pearson(ys, pred, self.folds).reshape(len(perms), v)


def cross_validated_encoding(
    features: np.ndarray,
    responses: np.ndarray,
    *,
    model: str = "ridge",
    cv: int = 5,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> dict[str, np.ndarray]:
    """Out-of-fold predictions and per-voxel scores.

    Parameters
    ----------
    features : ndarray of shape (n_stimuli, n_units)
    responses : ndarray of shape (n_stimuli, n_voxels)
        Rows aligned with ``features`` (repeats already averaged).

    Returns
    -------
    dict with ``r`` (per-fold r averaged over folds), ``r_pooled`` (r of
    the pooled out-of-fold predictions) and ``r2`` (n_voxels,), ``predictions`` (n_stimuli, n_voxels),
    ``alphas`` (n_folds, n_voxels) for ridge (else None) and ``folds``.
    ``n_jobs`` threads share the voxels (results do not depend on it).
    """
    x, y = _check_arrays(features, responses)
    folds = make_folds(x.shape[0], cv, seed)
    enc = _Encoder(x, folds, model=model, alphas=alphas, inner=inner, n_components=n_components)
    pred, chosen = enc.predict(y, n_jobs=n_jobs)
    return {
        "r": fold_mean_pearson(y, pred, folds),
        "r_pooled": pearson_columns(y, pred),
        "r2": _r2_columns(y, pred),
        "predictions": pred,
        "alphas": chosen,
        "folds": folds,
    }


def _check_arrays(features, responses) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(features), np.asarray(responses)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise BrainnetError(
            f"features {x.shape} and responses {y.shape} must be 2-d with one row per stimulus each"
        )
    dtype = np.float32 if (x.dtype == np.float32 and y.dtype == np.float32) else np.float64
    return x.astype(dtype, copy=False), y.astype(dtype, copy=False)


@contextlib.contextmanager
def _quiet_nan():
    """Silence numpy's warnings for all-NaN rows (constant permuted voxels)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _blas_limit():
    """One BLAS thread while permutations run; parallelism comes from ``n_jobs``.

    The products here have a small inner dimension (stimuli, rank), where BLAS
    threads gain little, and on a busy machine their spin-waiting made runs up
    to 6x slower in our measurements; threads over permutation batches
    (``n_jobs``) scale instead.
    """
    from brainnet._threads import single_blas_thread

    return single_blas_thread()


def _batch_size(n_voxels: int) -> int:
    # Permutations are fitted as extra columns; keep a batch around 32k columns.
    return int(max(1, min(64, 32768 // max(n_voxels, 1))))


def _permutation_null(enc, y, model, n_permutations, seed, n_jobs, checkpoint, progress):
    """The engine's test of the per-voxel r, refitting ``enc`` on permuted stimuli in batches."""
    return permutation_test(
        lambda perms: enc.permuted_r(y, perms),
        y.shape[0],
        n_permutations=n_permutations,
        seed=seed,
        batch_size=_batch_size(y.shape[1]) if model == "ridge" else 1,
        n_jobs=n_jobs,
        checkpoint=checkpoint,
        progress=progress,
    )


def encoding_permutation_test(
    features: np.ndarray,
    responses: np.ndarray,
    *,
    model: str = "ridge",
    cv: int = 5,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    progress: bool = False,
):
    """Permutation test of the per-voxel out-of-fold r (see the module docstring).

    Returns
    -------
    brainnet.permutation.PermutationResult
        ``observed`` and ``null`` of shape (n_voxels,) and (n_permutations, n_voxels).
    """
    x, y = _check_arrays(features, responses)
    folds = make_folds(x.shape[0], cv, seed)
    enc = _Encoder(x, folds, model=model, alphas=alphas, inner=inner, n_components=n_components)
    with _blas_limit():
        return _permutation_null(enc, y, model, n_permutations, seed, n_jobs, checkpoint, progress)


def _repeat_groups(stimulus_ids: Sequence[str]) -> list[np.ndarray]:
    ids = np.asarray([str(s) for s in stimulus_ids])
    return [np.flatnonzero(ids == sid) for sid in dict.fromkeys(ids.tolist())]


def split_half_noise_ceiling(
    patterns: np.ndarray, stimulus_ids: Sequence[str]
) -> np.ndarray | None:
    """Per-voxel noise ceiling of r by split halves, or None (a cross-check of :func:`repeat_noise_ceiling`).

    Repeats of each stimulus (in trial order) are split alternately into two
    halves and averaged; the correlation ``rho`` of the halves across stimuli
    is stepped up to the reliability of the average of all repeats with the
    **actual** split sizes: with ``a`` and ``b`` repeats in the halves and
    noise-to-signal variance ratio ``lam``, ``rho = 1 / sqrt((1 + lam/a)
    (1 + lam/b))``, solved for ``lam``, and the reliability of ``R``
    repeats is ``1 / (1 + lam/R)``. With equal halves this is Spearman-Brown
    with factor 2; with 3 repeats (halves of 2 and 1) factor 2 would
    understate the ceiling (0.606 instead of 0.638 in the issue's example).
    ``a``, ``b`` and ``R`` are harmonic means over stimuli (``R`` over every
    stimulus, as the encoding target averages them all). Only stimuli shown
    at least twice enter ``rho``; None when there are fewer than 3.

    Parameters
    ----------
    patterns : ndarray of shape (n_trials, n_voxels)
    stimulus_ids : sequence of str, length n_trials

    Returns
    -------
    ceiling : ndarray of shape (n_voxels,) or None
        ``sqrt`` of the reliability, clipped to [0, 1].
    """
    groups = _repeat_groups(stimulus_ids)
    repeated = [rows for rows in groups if rows.size >= 2]
    if len(repeated) < 3:
        return None
    half_a = np.array([patterns[rows[0::2]].mean(axis=0) for rows in repeated])
    half_b = np.array([patterns[rows[1::2]].mean(axis=0) for rows in repeated])
    rho = pearson_columns(half_a, half_b)
    a = _harmonic([len(rows[0::2]) for rows in repeated])
    b = _harmonic([len(rows[1::2]) for rows in repeated])
    r_all = _harmonic([rows.size for rows in groups])
    with np.errstate(divide="ignore", invalid="ignore"):
        # lam^2/(ab) + lam (1/a + 1/b) + 1 - 1/rho^2 = 0, positive root (rho > 0)
        c = 1.0 - 1.0 / rho**2
        lam = (-(1 / a + 1 / b) + np.sqrt((1 / a + 1 / b) ** 2 - 4 * c / (a * b))) / (2 / (a * b))
        reliability = np.where(rho > 0, 1.0 / (1.0 + lam / r_all), spearman_brown(rho, r_all / np.sqrt(a * b)))
    return np.sqrt(np.clip(reliability, 0.0, 1.0))


def _harmonic(counts) -> float:
    return float(len(counts) / np.sum(1.0 / np.asarray(counts, dtype=np.float64)))


@dataclass
class NoiseCeiling:
    """Noise ceiling of the repeat-averaged responses (:func:`repeat_noise_ceiling`).

    Attributes
    ----------
    ceiling : ndarray of shape (n_voxels,)
        Highest expected r of a perfect model: ``sqrt(clip(reliability, 0, 1))``.
    reliability : ndarray of shape (n_voxels,)
        Unclipped estimate of ``var(signal) / var(average)`` (may be < 0 for
        voxels without signal; its mean over voxels is unbiased, which the
        mean of clipped square roots is not).
    ncsnr : ndarray of shape (n_voxels,)
        Noise-ceiling SNR, ``sd(signal) / sd(noise of one trial)`` (NSD).
    p_signal : ndarray of shape (n_voxels,)
        One-way ANOVA F-test (stimuli as groups) that the voxel has
        stimulus-related signal; parametric, used only to select voxels.
    reliable : ndarray of bool, shape (n_voxels,)
        ``p_signal`` FDR (Benjamini-Hochberg) q < .05.
    n_repeats : float
        Harmonic mean of the repeats per stimulus of the averaged responses.
    """

    ceiling: np.ndarray
    reliability: np.ndarray
    ncsnr: np.ndarray
    p_signal: np.ndarray
    reliable: np.ndarray
    n_repeats: float

    #: One-line description for summaries.
    method = ("NSD-style noise-ceiling SNR: signal and noise variances from the repeats "
              "(any number per stimulus), ceiling = sqrt(signal / (signal + noise / repeats))")

    def summary(self) -> dict[str, Any]:
        """Region summaries over all voxels and over voxels with reliable signal."""
        rel = self.reliability[np.isfinite(self.reliability)]
        chosen = self.ceiling[self.reliable]
        return {
            # sqrt of the mean reliability: near 0 for a region without signal (the mean
            # of per-voxel clipped square roots is not: about +0.2 there).
            "noise_ceiling": float(np.sqrt(max(rel.mean(), 0.0))) if rel.size else None,
            "mean_reliability": float(rel.mean()) if rel.size else None,
            "noise_ceiling_reliable": float(chosen.mean()) if chosen.size else None,
            "n_voxels_reliable": int(self.reliable.sum()),
            "median_ncsnr": float(np.nanmedian(self.ncsnr)) if np.isfinite(self.ncsnr).any() else None,
            "n_repeats_harmonic": self.n_repeats,
        }


def repeat_noise_ceiling(patterns: np.ndarray, stimulus_ids: Sequence[str]) -> NoiseCeiling | None:
    """Per-voxel noise ceiling for any number of repeats per stimulus, or None.

    Variance components (the NSD noise-ceiling SNR of Allen et al. 2022,
    generalised to unequal repeats): the noise variance of one trial,
    ``s2_noise``, is the pooled within-stimulus variance over stimuli shown
    at least twice (unbiased); the variance across stimuli of the averaged
    responses has expectation ``s2_signal + s2_noise * mean(1/r_i)`` (``r_i``
    repeats of stimulus ``i``, every stimulus of the average); so
    ``reliability = 1 - s2_noise * mean(1/r_i) / var(averages)`` and the
    ceiling of r is its square root. Tests compare it with the truth at 2, 3
    and 4 repeats and with :func:`split_half_noise_ceiling`.

    Parameters
    ----------
    patterns : ndarray of shape (n_trials, n_voxels)
    stimulus_ids : sequence of str, length n_trials

    Returns
    -------
    NoiseCeiling or None
        None when fewer than 3 stimuli are repeated.
    """
    from scipy.stats import f as f_dist

    from brainnet.stats import fdr_bh

    x = np.asarray(patterns, dtype=np.float64)
    groups = _repeat_groups(stimulus_ids)
    repeated = [rows for rows in groups if rows.size >= 2]
    if len(repeated) < 3:
        return None
    counts = np.array([rows.size for rows in groups], dtype=np.float64)
    means = np.array([x[rows].mean(axis=0) for rows in groups])
    ss_within = sum(((x[rows] - x[rows].mean(axis=0)) ** 2).sum(axis=0) for rows in repeated)
    df_within = sum(rows.size - 1 for rows in repeated)
    s2_noise = ss_within / df_within
    var_means = means.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        reliability = np.where(var_means > 0, 1.0 - s2_noise * np.mean(1.0 / counts) / var_means, np.nan)
        s2_signal = var_means - s2_noise * np.mean(1.0 / counts)
        ncsnr = np.sqrt(np.clip(s2_signal, 0.0, None) / s2_noise)
        # One-way ANOVA over the repeated stimuli.
        rep_means = means[[i for i, rows in enumerate(groups) if rows.size >= 2]]
        n_rep = counts[counts >= 2][:, None]
        grand = (rep_means * n_rep).sum(axis=0) / n_rep.sum()
        ms_between = (n_rep * (rep_means - grand) ** 2).sum(axis=0) / (len(repeated) - 1)
        f_stat = ms_between / s2_noise
    p_signal = np.where(np.isfinite(f_stat), f_dist.sf(f_stat, len(repeated) - 1, df_within), np.nan)
    return NoiseCeiling(
        ceiling=np.sqrt(np.clip(reliability, 0.0, 1.0)),
        reliability=reliability,
        ncsnr=ncsnr,
        p_signal=p_signal,
        reliable=fdr_bh(p_signal) < 0.05,
        n_repeats=_harmonic(counts),
    )


@dataclass(repr=False)
class EncodingResult(Record):
    """What :func:`encode` / :func:`encode_subject` found.

    Attributes
    ----------
    summary : dict
        The content of ``summary.json`` (without provenance).
    voxel_scores : pandas.DataFrame
        One row per voxel: voxel, i, j, k, r (per-fold, the headline),
        r_pooled, r2, p, p_fwe [, noise_ceiling, reliable].
    null : ndarray of shape (n_permutations, n_voxels)
        Permutation null of the per-voxel (per-fold) r.
    r_map : nibabel image or None
        Map of r (through the subject's masker).
    provenance : dict
    """

    summary: dict[str, Any]
    voxel_scores: Any
    null: np.ndarray
    r_map: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def table(self) -> Any:
        """Per-voxel scores (``voxel_scores``)."""
        return self.voxel_scores

    def plot(self) -> list[Any]:
        """Histogram of every voxel's r (main), then the glass brain of r when a map was made."""
        from brainnet.plotting import plot_brain_map, plot_score_histogram

        figures = [plot_score_histogram(np.asarray(self.voxel_scores["r"], dtype=float),
                                        xlabel="encoding accuracy per voxel (Pearson r)",
                                        title="encoding: r of every voxel")]
        if self.r_map is not None:
            figures.append(plot_brain_map(self.r_map, kind="glass", value_label="Pearson r",
                                          title="encoding accuracy"))
        return figures

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write summary.json, voxel_scores.tsv, r_map.nii.gz and null_mean_r.tsv into ``out``.

        The record itself (``record.json``, ``record.npz``) is written too, for :meth:`read`.
        """
        import pandas as pd

        from brainnet.results import ResultDir

        rd = ResultDir(out, self.provenance, overwrite=overwrite)
        rd.write_tsv("voxel_scores.tsv", self.voxel_scores)
        rd.write_tsv("null_mean_r.tsv", pd.DataFrame({"mean_r": np.nanmean(self.null, axis=1)}))
        if self.r_map is not None:
            rd.write_nifti("r_map.nii.gz", self.r_map)
        self.path = rd.path
        super().write(rd.path)
        rd.finish(self.summary)
        self.path = rd.path
        return rd.path


def encode(
    features: np.ndarray,
    responses: np.ndarray,
    *,
    model: str = "ridge",
    cv: int = 5,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    noise_ceiling: NoiseCeiling | np.ndarray | None = None,
    voxel_ijk: np.ndarray | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> EncodingResult:
    """Array-level encoding analysis: scores, permutation p-values and a summary.

    Parameters
    ----------
    features : ndarray of shape (n_stimuli, n_units)
    responses : ndarray of shape (n_stimuli, n_voxels)
    noise_ceiling : NoiseCeiling or ndarray of shape (n_voxels,), optional
        From :func:`repeat_noise_ceiling` (then the summary also covers the
        voxels with reliable signal) or per-voxel ceilings of r.
    voxel_ijk : ndarray of shape (n_voxels, 3), optional
        Voxel coordinates for the table.

    Returns
    -------
    EncodingResult
    """
    import pandas as pd

    from brainnet._checks import check_options

    check_options(n_permutations=n_permutations, seed=seed)
    x, y = _check_arrays(features, responses)
    folds = make_folds(x.shape[0], cv, seed)
    enc = _Encoder(x, folds, model=model, alphas=alphas, inner=inner, n_components=n_components)
    with _blas_limit():
        pred, chosen = enc.predict(y, n_jobs=n_jobs)
        res = _permutation_null(enc, y, model, n_permutations, seed, n_jobs, checkpoint, progress)
    r = fold_mean_pearson(y, pred, folds)
    r_pooled = pearson_columns(y, pred)
    valid = np.isfinite(r)
    if n_permutations:
        p = np.where(valid, res.p_value, np.nan)
        p_fwe = np.where(valid, max_stat_p_values(np.where(valid, r, -np.inf), res.null), np.nan)
    else:
        p = p_fwe = np.full(r.shape, np.nan)
    mean_r = float(np.nanmean(r)) if valid.any() else float("nan")
    with _quiet_nan():
        null_mean = np.nanmean(res.null, axis=1) if res.null.size else np.empty(0)
    p_mean = float(p_values(np.array(mean_r), null_mean)) if n_permutations else float("nan")
    ijk = np.full((y.shape[1], 3), -1) if voxel_ijk is None else np.asarray(voxel_ijk)
    table = pd.DataFrame(
        {
            "voxel": np.arange(y.shape[1]),
            "i": ijk[:, 0],
            "j": ijk[:, 1],
            "k": ijk[:, 2],
            "r": r,
            "r_pooled": r_pooled,
            "r2": _r2_columns(y, pred),
            "p": p,
            "p_fwe": p_fwe,
        }
    )
    ceiling = _ceiling_summary(noise_ceiling, r)
    if noise_ceiling is not None:
        table["noise_ceiling"] = ceiling.pop("_per_voxel")
        if isinstance(noise_ceiling, NoiseCeiling):
            table["reliable"] = noise_ceiling.reliable
    passing = r[p_fwe < 0.05]
    effect = null_effect(mean_r, null_mean) if n_permutations else null_effect(None, [])
    summary = {
        "analysis": "encoding",
        "model": model,
        "n_stimuli": int(x.shape[0]),
        "n_units": int(x.shape[1]),
        "n_voxels": int(y.shape[1]),
        "cv": int(cv),
        "r_definition": "Pearson r within each test fold, averaged over folds",
        "mean_r": mean_r,
        "median_r": float(np.nanmedian(r)) if valid.any() else float("nan"),
        "mean_r_pooled": float(np.nanmean(r_pooled)) if np.isfinite(r_pooled).any() else float("nan"),
        "median_r_pooled": float(np.nanmedian(r_pooled)) if np.isfinite(r_pooled).any() else float("nan"),
        "mean_r2": float(np.nanmean(table["r2"])) if valid.any() else float("nan"),
        "p_value": p_mean,
        "test": "permutation: mean over voxels of per-fold r; stimuli re-paired with features, model refitted",
        "n_permutations": int(n_permutations),
        "null_mean_r": effect["null_mean"],
        "null_sd_r": effect["null_sd"],
        "effect_vs_null": effect["effect"],
        "n_voxels_p_fwe_05": int(passing.size),
        "mean_r_p_fwe_05": float(passing.mean()) if passing.size else None,
        "median_r_p_fwe_05": float(np.median(passing)) if passing.size else None,
        **ceiling,
    }
    if chosen is not None:
        summary["median_alpha"] = float(np.median(chosen))
    return EncodingResult(summary=summary, voxel_scores=table, null=res.null)


def _ceiling_summary(noise_ceiling, r: np.ndarray) -> dict[str, Any]:
    """Noise-ceiling entries of the encoding summary, over all voxels and over reliable voxels."""
    if noise_ceiling is None:
        return {"noise_ceiling": None, "noise_ceiling_method": "unavailable (no repeated stimuli)",
                "mean_r_over_noise_ceiling": None}
    if isinstance(noise_ceiling, NoiseCeiling):
        out = {**noise_ceiling.summary(), "noise_ceiling_method": NoiseCeiling.method}
        per_voxel, reliable = noise_ceiling.ceiling, noise_ceiling.reliable
    else:
        per_voxel = np.asarray(noise_ceiling, dtype=np.float64)
        finite = per_voxel[np.isfinite(per_voxel)]
        out = {"noise_ceiling": float(np.sqrt(np.mean(finite**2))) if finite.size else None,
               "noise_ceiling_method": "given per voxel"}
        reliable = None
    nc = out["noise_ceiling"]
    mean_r = float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")
    out["mean_r_over_noise_ceiling"] = mean_r / nc if nc else None
    if reliable is not None:
        chosen = r[reliable]
        out["mean_r_reliable"] = float(np.nanmean(chosen)) if np.isfinite(chosen).any() else None
        nc_rel = out["noise_ceiling_reliable"]
        out["mean_r_over_noise_ceiling_reliable"] = (
            out["mean_r_reliable"] / nc_rel if nc_rel and out["mean_r_reliable"] is not None else None)
    out["_per_voxel"] = per_voxel
    return out


def _subject_label(study, subject: str) -> str:
    """Kept for callers of the old private name: :func:`brainnet.runs.subject_label`."""
    from brainnet.runs import subject_label

    return subject_label(study, subject)


def encode_subject(
    study=None,
    subject: str = "01",
    *,
    layer: str = "fc8",
    model: str = "ridge",
    cv: int = 5,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    mask: str | Path = "occipital",
    features: str | Path | Features | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    network=None,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> EncodingResult:
    """Encode one subject's voxels from one network layer (``brainnet encode``).

    Parameters
    ----------
    study : Study, path or None
        A :class:`brainnet.study.Study`, a study folder, or None for the
        embedded demo study.
    subject : str
        Subject label (``"01"`` or ``"sub-01"``).
    layer : str
        Network layer whose units are the features.
    model : {"ridge", "pls"}
    cv : int
        Outer folds over stimuli.
    n_permutations : int
        Permutations of the stimulus -> feature assignment.
    alphas : array-like, optional
        Ridge penalty grid (default ``logspace(-2, 5, 15)``).
    inner : "loo" or int
        Inner selection of the per-voxel penalty.
    n_components : int
        PLS components.
    mask, features, weights, untrained_seed
        Region, precomputed features (a file, or Features in memory such as
        :func:`brainnet.extract_activations` returns), EmoNet weights (or the seed of
        untrained weights).
    network : str or Network, optional
        Another network with its own preprocessing (``"hf:/models/vit"``,
        ``"emonet-untrained"``, ...); default EmoNet.
    seed : int
        Seed of the folds and permutations.
    out : path, optional
        Results go to ``<out>/sub-<label>/encode-<layer>[-<region>]/`` (see
        :func:`brainnet.runs.result_folder`); nothing is written when None.

    Returns
    -------
    EncodingResult
    """
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations, n_components=n_components)
    from brainnet import runs

    study = runs.resolve_study(study)
    label = runs.subject_label(study, subject)
    settings = _Settings(layer, model, cv, n_permutations, _checked_alphas(model, alphas), inner, n_components,
                         mask, seed)
    feats = study.features(layers=(layer,), weights=weights, seed=untrained_seed, features_file=features,
                           network=network)
    runner = runs.Runner(settings, study, feats, out, overwrite, runs.Execution(n_jobs, progress))
    return runner.run_subject(label)


@dataclass(frozen=True)
class _Settings:
    """The encoding spec for :class:`brainnet.runs.Runner`: what determines one subject's result."""

    layer: str
    model: str
    cv: int
    n_permutations: int
    alphas: np.ndarray
    inner: Any
    n_components: int
    mask: Any
    seed: int

    analysis = "encode"
    scatter = ("x", "y")

    def parameters(self, label: str) -> dict[str, Any]:
        return {
            "subject": label,
            "layer": self.layer,
            "model": self.model,
            "cv": self.cv,
            "n_permutations": self.n_permutations,
            "alphas": self.alphas.tolist(),
            "inner": self.inner,
            "n_components": self.n_components if self.model == "pls" else None,
            "unit": "repeat-averaged stimulus",
        }

    def check(self, n_stimuli: int) -> None:
        """Refuse a bad ``cv`` / ``inner`` for ``n_stimuli`` (before any result folder exists)."""
        folds = make_folds(n_stimuli, self.cv, self.seed)
        if self.model == "ridge":
            _check_inner(self.inner, min(len(train) for train, _ in folds))

    def prepare(self, study, label: str, feats) -> tuple[dict[str, Any], dict[str, Any], int, Any]:
        """Load one subject and align the features to its stimuli."""
        data = study.load_subject(label, mask=self.mask)
        y, ids = data.averaged()
        x = feats.layer(self.layer)[feats.rows_for(ids)]
        self.check(len(ids))
        ceiling = repeat_noise_ceiling(data.patterns, data.stimulus_ids)
        inputs = {"x": x, "y": y, "ceiling": ceiling, "ijk": data.voxel_ijk}
        extras = {"masker": data.masker, "weights": dict(feats.provenance).get("weights")}
        return inputs, extras, int(y.shape[1]), data.space

    def compute(self, inputs: dict[str, Any], n_jobs: int, checkpoint, progress: bool) -> EncodingResult:
        return encode(
            inputs["x"],
            inputs["y"],
            model=self.model,
            cv=self.cv,
            alphas=self.alphas,
            inner=self.inner,
            n_components=self.n_components,
            n_permutations=self.n_permutations,
            noise_ceiling=inputs["ceiling"],
            voxel_ijk=inputs["ijk"],
            seed=self.seed,
            n_jobs=n_jobs,
            checkpoint=checkpoint,
            progress=progress,
        )

    def finish(self, job, result: EncodingResult) -> EncodingResult:
        """Label the array-level result with its subject, map and provenance."""
        result.summary = {
            "analysis": "encoding",
            "subject": job.label,
            "layer": self.layer,
            "n_subjects": 1,
            "weights": job.extras["weights"],
            **{k: v for k, v in result.summary.items() if k != "analysis"},
        }
        result.provenance = job.provenance
        r_values = np.nan_to_num(np.asarray(result.voxel_scores["r"], dtype=np.float32))
        result.r_map = job.extras["masker"].inverse_transform(r_values)
        return result

    def group(self, labels, summaries, computed, folders):
        return _group_result(labels, summaries, computed, folders, self.layer)


def _checked_alphas(model: str, alphas) -> np.ndarray:
    if model not in MODELS:
        raise BrainnetError(f"--model {model}: unknown model; use ridge or pls")
    return _alphas(alphas)


# -- several subjects -----------------------------------------------------------

#: Per-subject columns of the group table ``subjects.tsv``.
GROUP_COLUMNS = ("subject", "mean_r", "median_r", "p_value", "n_voxels_p_fwe_05", "n_voxels", "noise_ceiling",
                 "mean_r_pooled", "effect_vs_null", "mean_r_p_fwe_05")


@dataclass(repr=False)
class SubjectsEncodingResult(Record):
    """What :func:`encode_subjects` found.

    Attributes
    ----------
    summary : dict
        The content of the group ``summary.json`` (without provenance).
    table : pandas.DataFrame
        One row per subject: subject, mean_r, median_r, p_value,
        n_voxels_p_fwe_05, n_voxels, noise_ceiling, mean_r_pooled,
        effect_vs_null, mean_r_p_fwe_05, folder.
    folders : dict of str to Path
        Each subject's result folder (``<out>/sub-<label>/encode-<layer>``).
    computed : list of str
        Subjects computed by this call (the others were complete already).
    path : Path or None
        The group folder ``<out>/group/encode-<layer>``.
    """

    summary: dict[str, Any]
    table: Any
    folders: dict[str, Path]
    computed: list[str]
    path: Path | None = None

    def plot(self) -> list[Any]:
        """Mean encoding r of each subject."""
        from brainnet.plotting import plot_subject_accuracy

        return [plot_subject_accuracy(np.asarray(self.table["mean_r"], dtype=float),
                                      [str(s) for s in self.table["subject"]],
                                      ylabel="mean encoding accuracy (Pearson r)",
                                      title="encoding accuracy per subject")]


def encode_subjects(
    study=None,
    subjects: str | Sequence[str] = "all",
    out: str | Path | None = "brainnet_results",
    *,
    layer: str = "fc8",
    model: str = "ridge",
    cv: int = 5,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    mask: str | Path = "occipital",
    features: str | Path | Features | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    network=None,
    seed: int = 0,
    n_jobs: int = 1,
    scheduler: Any = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SubjectsEncodingResult:
    """Encode several subjects, each as :func:`encode_subject` would, then a group table.

    Each subject's results go to ``<out>/sub-<label>/encode-<layer>/`` with
    its own provenance, exactly as ``encode_subject(..., out=out)`` writes
    them; a subject whose folder is already complete with the same
    provenance is not recomputed, so an interrupted run loses at most the
    subject in progress (which resumes from its permutation checkpoints when
    run here). ``<out>/group/encode-<layer>/`` gets ``subjects.tsv`` (one
    row per subject) and ``summary.json``, written last.

    Parameters
    ----------
    study : Study, path or None
        As for :func:`encode_subject` (None: the embedded demo study).
    subjects : "all", a label, or a sequence of labels
    out : path or None
        Results folder; None computes every subject and writes nothing.
    scheduler : str or dask.distributed.Client, optional
        Run each subject as one Dask task (default: the scheduler of
        :func:`brainnet.permutation.use_scheduler`, else this process). Tasks
        receive the subject's arrays and return its result, which this
        process writes, so workers need no access to the study or to
        ``out``; results are identical to a single-process run. A subject
        interrupted on the cluster restarts from its first permutation.
    n_jobs : int
        Threads per subject for the permutations (results do not depend on it).
    overwrite : bool
        Replace folders made with other parameters instead of refusing.
    layer, model, cv, n_permutations, alphas, inner, n_components, mask, features, weights, untrained_seed, seed
        As for :func:`encode_subject`.

    Returns
    -------
    SubjectsEncodingResult
    """
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations, n_components=n_components)
    from brainnet import runs

    study = runs.resolve_study(study)
    labels = runs.subject_labels(study, subjects)
    settings = _Settings(layer, model, cv, n_permutations, _checked_alphas(model, alphas), inner, n_components,
                         mask, seed)
    settings.check(len(study.stimulus_ids))  # a bad --cv is refused before any folder exists
    feats = study.features(layers=(layer,), weights=weights, seed=untrained_seed, features_file=features,
                           network=network)
    feats.layer(layer)  # a layer missing from --features is refused before any folder exists
    runner = runs.Runner(settings, study, feats, out, overwrite, runs.Execution(n_jobs, progress, scheduler))
    return runner.run_subjects(labels)


def _group_result(labels, summaries, computed, folders, layer) -> tuple[SubjectsEncodingResult, Any]:
    """The group record and its ``subjects.tsv`` table (the runner writes them)."""
    import pandas as pd

    rows = [{"subject": label, **{c: summaries[label].get(c) for c in GROUP_COLUMNS[1:]}} for label in labels]
    table = pd.DataFrame(rows, columns=list(GROUP_COLUMNS))
    if folders:
        table["folder"] = [str(folders[label]) for label in labels]
    mean_r = table["mean_r"].astype(float).to_numpy()
    summary = {
        "analysis": "encoding",
        "layer": layer,
        "n_subjects": len(labels),
        "subjects": list(labels),
        "mean_r": float(np.nanmean(mean_r)) if np.isfinite(mean_r).any() else float("nan"),
        "sd_mean_r": float(np.nanstd(mean_r, ddof=1)) if np.isfinite(mean_r).sum() > 1 else float("nan"),
        "n_subjects_p_05": int(np.sum(table["p_value"].astype(float).to_numpy() < 0.05)),
        "per_subject": table[list(GROUP_COLUMNS)].to_dict(orient="records"),
    }
    record = SubjectsEncodingResult(summary=summary, table=table, folders=folders, computed=list(computed))
    return record, table
