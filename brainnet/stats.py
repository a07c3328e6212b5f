"""Small statistics shared by the analyses: column-wise correlations, FDR, effect sizes.

These are vectorised over columns (voxels, units, permutations), which is
what the analyses need and what scipy's scalar functions are not.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "pearson_columns",
    "zscore_columns",
    "rank_columns",
    "fdr_bh",
    "cohens_d",
    "standard_error",
    "spearman_brown",
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
