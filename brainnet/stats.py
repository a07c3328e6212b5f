"""Small statistics shared by the analyses: column-wise correlations, FDR, effect sizes.

These are vectorised over columns (voxels, units, permutations), which is
what the analyses need and what scipy's scalar functions are not.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "pearson_columns",
    "zscore_columns",
    "rank_columns",
    "fdr_bh",
    "holm",
    "cohens_d",
    "standard_error",
    "spearman_brown",
    "fold_mean_pearson",
    "null_effect",
    "paper_d_candidates",
]


def zscore_columns(x: np.ndarray, axis: int = 0, ddof: int = 0) -> np.ndarray:
    """Centre and scale along ``axis``; constant columns become 0 (not NaN)."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=axis, keepdims=True)
    scale = np.sqrt((centred**2).sum(axis=axis, keepdims=True) / (x.shape[axis] - ddof))
    return np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)


def pearson_columns(a: np.ndarray, b: np.ndarray, axis: int = 0) -> np.ndarray:
    """Pearson r between matching columns of ``a`` and ``b``.

    Parameters
    ----------
    a, b : ndarray of shape (n_samples, ...)
        Correlated along ``axis``; the other dimensions must broadcast.

    Returns
    -------
    r : ndarray
        NaN where either column is constant.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ac = a - a.mean(axis=axis, keepdims=True)
    bc = b - b.mean(axis=axis, keepdims=True)
    num = (ac * bc).sum(axis=axis)
    den = np.sqrt((ac**2).sum(axis=axis) * (bc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rank_columns(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Average ranks (ties share their mean rank) along ``axis``, as scipy.stats.rankdata."""
    from scipy.stats import rankdata

    return rankdata(x, axis=axis)


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), same shape as ``p``; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    valid = np.isfinite(p)
    flat = p[valid]
    m = flat.size
    if m == 0:
        return q
    order = np.argsort(flat)
    scaled = flat[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    q[valid] = out
    return q


def holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (family-wise), same shape as ``p``; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.isfinite(p)
    flat = p[valid]
    m = flat.size
    if m == 0:
        return out
    order = np.argsort(flat)
    adjusted = np.maximum.accumulate(flat[order] * (m - np.arange(m)))
    res = np.empty(m)
    res[order] = np.minimum(adjusted, 1.0)
    out[valid] = res
    return out


def cohens_d(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """One-sample Cohen's d: mean / SD (ddof=1) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=axis) / x.std(axis=axis, ddof=1)


def standard_error(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Standard error of the mean (ddof=1) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    return x.std(axis=axis, ddof=1) / np.sqrt(x.shape[axis])


def spearman_brown(r: np.ndarray, factor: float = 2.0) -> np.ndarray:
    """Reliability of a measure ``factor`` times longer: ``factor*r / (1 + (factor-1)*r)``.

    With ``factor=2`` this steps a split-half correlation up to the
    reliability of the full data. NaN stays NaN.
    """
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def fold_mean_pearson(y: np.ndarray, pred: np.ndarray, folds) -> np.ndarray:
    """Pearson r within each test fold, averaged over folds.

    Out-of-fold predictions pooled over folds carry each training set's
    mean, which is anti-correlated with its test fold's mean; r of the pooled
    predictions is therefore biased below zero for noise (about -0.2 with 40
    stimuli in 5 folds). r within each fold has no such offset and its mean
    over folds is close to 0 for noise (tested on null studies).

    Parameters
    ----------
    y, pred : ndarray of shape (n_samples, n_columns)
        Observed values and out-of-fold predictions.
    folds : sequence of (train, test) index arrays
        The test sets partition (a subset of) the rows.

    Returns
    -------
    r : ndarray of shape (n_columns,)
        Mean over folds of the within-fold r; a fold where a column is
        constant is left out of that column's mean (NaN if every fold is).
    """
    per_fold = np.stack([pearson_columns(y[test], pred[test]) for _, test in folds])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        return np.nanmean(per_fold, axis=0)


def null_effect(observed, null) -> dict[str, float | None]:
    """An observed statistic measured against its permutation null.

    Parameters
    ----------
    observed : float
    null : ndarray of shape (n_permutations,)

    Returns
    -------
    dict
        ``null_mean`` and ``null_sd`` (ddof=1) of the permutation null, and
        ``effect = (observed - null_mean) / null_sd``: how many null SDs the
        observed value lies above chance. None when there are fewer than 2
        finite permutations or the null is constant.
    """
    null = np.asarray(null, dtype=np.float64).ravel()
    null = null[np.isfinite(null)]
    if null.size < 2:
        return {"null_mean": None, "null_sd": None, "effect": None}
    mean, sd = float(null.mean()), float(null.std(ddof=1))
    obs = float(observed) if observed is not None else float("nan")
    effect = (obs - mean) / sd if sd > 0 and np.isfinite(obs) else None
    return {"null_mean": mean, "null_sd": sd, "effect": effect}


def paper_d_candidates(mean: float, se: float, n: int) -> dict[str, float]:
    """Cohen's d under each common definition, from a reported mean, SE and n.

    Used to work out which d Kragel et al. (2019) reported next to
    "mean r = .2819 +/- .0163 SE, 18 subjects, d = 3.00". With SE = SD/sqrt(n):

    ===========================================  ======
    definition                                   value
    ===========================================  ======
    mean / SD, SD = SE*sqrt(n) (ddof=1)          4.08
    mean / SD, SD = SE*sqrt(n-1) (ddof=0 SD)     4.19
    t / sqrt(n)  (same as the first)             4.08
    Hedges' g (small-sample corrected)           3.89
    2 t / sqrt(n-1)  (two-group formula)         8.39
    ===========================================  ======

    None gives 3.00, so the paper's definition **cannot be determined from
    its text**. 3.00 would need an SD of .094 (5.8 SE; e.g. an SD over
    subject x unit values or over units rather than over subjects) or a
    reference value of .074 instead of 0 (e.g. a chance level); neither is
    stated. brainnet reports the first (``cohens_d``, labelled paper-style)
    and, as the effect size that reads against chance, ``effect_vs_null``.

    Parameters
    ----------
    mean, se : float
        Reported mean and standard error of the mean.
    n : int
        Number of independent units the SE was computed over.

    Returns
    -------
    dict of str to float
        Keyed by the definitions above (``"mean/sd_ddof1"``,
        ``"mean/sd_ddof0"``, ``"t/sqrt(n)"``, ``"hedges_g"``,
        ``"2t/sqrt(n-1)"``).
    """
    sd1 = se * np.sqrt(n)
    t = mean / se
    d = mean / sd1
    return {
        "mean/sd_ddof1": float(d),
        "mean/sd_ddof0": float(mean / (se * np.sqrt(n - 1))),
        "t/sqrt(n)": float(t / np.sqrt(n)),
        "hedges_g": float(d * (1.0 - 3.0 / (4.0 * (n - 1) - 1.0))),
        "2t/sqrt(n-1)": float(2.0 * t / np.sqrt(n - 1)),
    }
