"""Partial least squares regression in sample space, batched for permutation tests.

:class:`KernelPLS` gives the predictions of scikit-learn's
``PLSRegression`` (NIPALS PLS2, "regression" deflation, power-method
singular vectors with the same start, updates and stopping rule) but runs the
whole algorithm on the ``(n_samples, n_samples)`` linear kernel ``X X^T``
instead of on ``X``. Why hand-written: scikit-learn works in feature space,
so every fit costs ``O(n_samples n_features)`` per power iteration; the
paper's decoding (1,792 x 7,214 -> 20, leave-one-subject-out, 10,000
permutations) would take days. In sample space a fold's kernel is computed
once and then shared by every permuted response matrix, and
:class:`CrossValidatedPLS` evaluates a whole batch of permutations with
matrix-matrix products.

How the NIPALS steps map to the kernel (``K_k = X_k X_k^T``, ``P_k`` the
projector removing the scores found so far, ``X_k = P_k X``): the x-weights
are ``w = X_k^T a`` with ``a = Y_k c / (c^T Y_k^T Y_k c) / (|w| + eps)``, the
x-scores ``t = K_k Y_k c``, and the regression coefficients
``B = X^T A (T^T K A)^+ T^T Y`` (``A`` the sample-space weights, ``T`` the
scores). Every quantity scikit-learn's power method looks at (norms, the
change of ``w`` between iterations) is a product of these sample-space
vectors, so the iteration takes the same path and stops at the same step.

Notes
-----
The paper used MATLAB's ``plsregress`` (SIMPLS, X and Y centred, not
scaled). ``KernelPLS(scale=False)`` (the default) centres only, like
``plsregress``. NIPALS and SIMPLS agree exactly for one target and for the
first component; with several targets later components differ slightly
(SIMPLS deflates the cross-covariance, NIPALS deflates X), so results match
the paper's algorithm closely but not to the last digit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from brainnet.errors import BrainnetError

__all__ = ["KernelPLS", "CrossValidatedPLS", "simpls", "ALGORITHMS"]

#: PLS algorithms of ``decode --algorithm``: NIPALS (scikit-learn's, the default) or SIMPLS (MATLAB's
#: ``plsregress``, the paper's; de Jong 1993).
ALGORITHMS = ("nipals", "simpls")

_EPS = np.finfo(np.float64).eps


class _ConstantResidual(Exception):
    """The Y residual has no non-zero column left (scikit-learn stops early)."""


class _Gram:
    """Products with the centred linear kernel ``K = Xc Xc^T``.

    Either the kernel is held explicitly (``n_samples < n_features``) or its
    products are formed as ``Xc (Xc^T V)`` (cheaper when features are few).
    """

    def __init__(self, xc: np.ndarray | None = None, kernel: np.ndarray | None = None):
        self.xc = xc
        self.kernel = kernel

    @classmethod
    def from_data(cls, xc: np.ndarray) -> _Gram:
        if xc.shape[0] < xc.shape[1]:
            return cls(xc=xc, kernel=xc @ xc.T)
        return cls(xc=xc)

    def matmul(self, v: np.ndarray) -> np.ndarray:
        """``K @ v`` for ``v`` of shape (n_samples, r)."""
        if self.kernel is not None:
            return self.kernel @ v
        return self.xc @ (self.xc.T @ v)


def _stacked(v: np.ndarray) -> np.ndarray:
    """(B, n, r) -> (n, B * r), so one BLAS call serves the whole batch."""
    b, n, r = v.shape
    return np.ascontiguousarray(v.transpose(1, 0, 2)).reshape(n, b * r)


def _unstacked(m: np.ndarray, b: int) -> np.ndarray:
    """(m, B * r) -> (B, m, r)."""
    return np.ascontiguousarray(m.reshape(m.shape[0], b, -1).transpose(1, 0, 2))


def _left_mul(mat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``mat @ v[b]`` for every batch element (numpy's broadcast matmul skips BLAS)."""
    return _unstacked(mat @ _stacked(v), v.shape[0])


def _batched_kmul(gram: _Gram, v: np.ndarray) -> np.ndarray:
    """``K @ v[b]`` for every batch element; ``v`` of shape (B, n, r)."""
    return _unstacked(gram.matmul(_stacked(v)), v.shape[0])


class _Degenerate(Exception):
    """A Y column may have become numerically zero: use the explicit path."""


class _DenseY:
    """Centred responses ``Y_0`` (B, n, q) and ``K Y_0`` held as arrays."""

    def __init__(self, y0: np.ndarray, ky0: np.ndarray):
        self.y0, self.ky0 = y0, ky0

    def col_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Column max |Y_0| and squared norms, each (B, q)."""
        return np.abs(self.y0).max(axis=1), (self.y0**2).sum(axis=1)

    def zero_columns(self, dead: np.ndarray) -> _DenseY:
        return _DenseY(np.where(dead[:, None, :], 0.0, self.y0), np.where(dead[:, None, :], 0.0, self.ky0))

    def m0(self) -> np.ndarray:
        return self.y0.transpose(0, 2, 1) @ self.ky0

    def mul(self, c: np.ndarray) -> np.ndarray:
        return (self.y0 @ c[:, :, None])[:, :, 0]

    def kmul(self, c: np.ndarray) -> np.ndarray:
        return (self.ky0 @ c[:, :, None])[:, :, 0]

    def tmul(self, v: np.ndarray) -> np.ndarray:
        return v @ self.y0

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        return self.y0, self.ky0


class _TiledY:
    """Responses that repeat one row per stimulus: ``Y_0 = (S F - 1 mean) / std``.

    ``S`` (n, n_stimuli) maps rows to stimuli. With ``K S`` and ``S^T K S``
    precomputed per fold, products with ``Y_0`` and ``K Y_0`` cost
    ``O(n_stimuli)`` per row instead of ``O(n_targets)`` (``K 1 = 0`` for a
    centred kernel, so ``K Y_0 = K S F / std``).
    """

    def __init__(self, g, mu, rows, onehot, k_stim, sks):
        self.g, self.mu, self.rows, self.onehot, self.k_stim, self.sks = g, mu, rows, onehot, k_stim, sks

    @classmethod
    def from_permuted(cls, fp, mean, std, rows, onehot, k_stim, sks) -> _TiledY:
        return cls(fp / std[:, None, :], mean / std, rows, onehot, k_stim, sks)

    def col_stats(self) -> tuple[np.ndarray, np.ndarray]:
        counts = self.onehot.sum(axis=0)
        diff = self.g[:, counts > 0] - self.mu[:, None, :]
        return np.abs(diff).max(axis=1), np.einsum("s,bsq->bq", counts[counts > 0], diff**2)

    def zero_columns(self, dead: np.ndarray) -> _TiledY:
        g = np.where(dead[:, None, :], 0.0, self.g)
        return _TiledY(g, np.where(dead, 0.0, self.mu), self.rows, self.onehot, self.k_stim, self.sks)

    def m0(self) -> np.ndarray:
        return self.g.transpose(0, 2, 1) @ _left_mul(self.sks, self.g)

    def mul(self, c: np.ndarray) -> np.ndarray:
        gc = (self.g @ c[:, :, None])[:, :, 0]
        return gc[:, self.rows] - (self.mu * c).sum(axis=1)[:, None]

    def kmul(self, c: np.ndarray) -> np.ndarray:
        gc = (self.g @ c[:, :, None])[:, :, 0]
        return (self.k_stim @ gc.T).T

    def tmul(self, v: np.ndarray) -> np.ndarray:
        nb, r, n = v.shape
        vs = (v.reshape(nb * r, n) @ self.onehot).reshape(nb, r, -1)
        return vs @ self.g - v.sum(axis=2)[:, :, None] * self.mu[:, None, :]

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        return self.g[:, self.rows] - self.mu[:, None, :], _left_mul(self.k_stim, self.g)


def _nipals(
    gram: _Gram,
    resp: _DenseY | _TiledY,
    n_components: int,
    max_iter: int = 500,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NIPALS PLS2 in sample space for a batch of response matrices.

    The deflated responses are never formed: ``Y_k = Y_0 - T^T L`` and
    ``K Y_k = K Y_0 - (K T)^T L`` are kept as low-rank corrections, so a
    component costs a few products with ``Y_0`` / ``K Y_0`` and one product
    with ``K`` per response matrix.

    Parameters
    ----------
    gram : _Gram
        The centred (and scaled) training kernel, shared by the batch.
    resp : _DenseY or _TiledY
        Centred (and scaled) responses ``Y_0``, B matrices of (n, q).

    Returns
    -------
    left : ndarray of shape (B, n, n_components)
    right : ndarray of shape (B, n_components, q)
        Dual coefficients ``left @ right``: predictions for new rows are
        ``K_new @ left @ right``, feature-space coefficients ``Xc^T @ left @ right``.
    n_iter : ndarray of shape (B, n_components)
    """
    col_max, norms0 = resp.col_stats()
    nb, q = col_max.shape
    dead = col_max < 10 * _EPS  # scikit-learn zeroes such columns
    if dead.any():
        resp = resp.zero_columns(dead)
        norms0 = np.where(dead, 0.0, norms0)
    live = ~dead
    if not live.any(axis=1).all():
        raise _ConstantResidual
    n = gram.kernel.shape[0] if gram.kernel is not None else gram.xc.shape[0]
    norms = norms0.copy()  # squared column norms of Y_k
    safe = 100 * n * _EPS**2 + 1e-12 * norms0
    m0 = resp.m0()
    # (B, component, sample) so that slices over components stay BLAS-friendly
    scores = np.zeros((nb, n_components, n))
    kscores = np.zeros((nb, n_components, n))
    weights = np.zeros((nb, n_components, n))
    loads = np.zeros((nb, n_components, q))
    kty0 = np.zeros((nb, n_components, q))
    ss = np.ones((nb, n_components))
    n_iter = np.zeros((nb, n_components), dtype=int)
    for k in range(n_components):
        tk, ktk, lk = scores[:, :k], kscores[:, :k], loads[:, :k]
        if k:
            if np.any(live & (norms < safe)):
                raise _Degenerate
            cross = kty0[:, :k].transpose(0, 2, 1) @ lk
            m_mat = m0 - cross - cross.transpose(0, 2, 1) + lk.transpose(0, 2, 1) @ ((tk @ ktk.transpose(0, 2, 1)) @ lk)
        else:
            m_mat = m0
        c, n_iter[:, k] = _power_direction(m_mat, live, max_iter, tol)
        lc = (lk @ c[:, :, None])[:, :, 0]  # (B, k)
        u = resp.mul(c) - (tk.transpose(0, 2, 1) @ lc[:, :, None])[:, :, 0]
        ku = resp.kmul(c) - (ktk.transpose(0, 2, 1) @ lc[:, :, None])[:, :, 0]
        ku -= (tk.transpose(0, 2, 1) @ ((tk @ ku[:, :, None]) / ss[:, :k, None]))[:, :, 0]  # P_k
        t, a = _unit_scores(ku, u)
        tt = (t**2).sum(axis=1)
        kt = gram.matmul(t.T).T
        both = resp.tmul(np.stack([t, kt], axis=1))  # Y_k^T t = Y_0^T t
        load = both[:, 0] / tt[:, None]
        kty0[:, k] = both[:, 1]
        norms -= tt[:, None] * load**2
        scores[:, k], kscores[:, k], weights[:, k], loads[:, k], ss[:, k] = t, kt, a, load, tt
    # P^T W = D^-1 T K A and Q^T = D^-1 T Y_0
    ptw = (kscores @ weights.transpose(0, 2, 1)) / ss[:, :, None]
    q_t = resp.tmul(scores) / ss[:, :, None]
    return weights.transpose(0, 2, 1), _pinv(ptw) @ q_t, n_iter


def _fit(gram: _Gram, resp, n_components: int, max_iter: int, tol: float):
    """``(left, right, n_iter)`` of :func:`_nipals`, with scikit-learn's behaviour in degenerate cases."""
    try:
        return _nipals(gram, resp, n_components, max_iter, tol)
    except (_ConstantResidual, _Degenerate):
        pass
    y0, ky0 = resp.dense()
    dual, n_iter = _fit_dense(gram, y0, ky0, n_components, max_iter, tol)
    return dual, np.broadcast_to(np.eye(dual.shape[2]), (dual.shape[0], dual.shape[2], dual.shape[2])), n_iter


def _dual_from_scores(scores, kscores, weights, ss, y0) -> np.ndarray:
    """``A (P^T W)^+ Q^T`` with ``P^T W = D^-1 T K A`` and ``Q^T = D^-1 T Y_0``."""
    ptw = (kscores @ weights.transpose(0, 2, 1)) / ss[:, :, None]
    q_t = (scores @ y0) / ss[:, :, None]
    return weights.transpose(0, 2, 1) @ (_pinv(ptw) @ q_t)


def _nipals_dual_explicit(
    gram: _Gram,
    y0: np.ndarray,
    ky0: np.ndarray,
    n_components: int,
    max_iter: int = 500,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """NIPALS PLS2 in sample space, deflating Y explicitly (the reference path).

    Used when a Y column may become numerically zero during deflation, where
    scikit-learn zeroes it; returns the dual coefficients ``(B, n, q)`` and iteration counts.

    Parameters
    ----------
    gram : _Gram
        The centred (and scaled) training kernel, shared by the batch.
    y0 : ndarray of shape (B, n_samples, n_targets)
        Centred (and scaled) responses.
    ky0 : ndarray of shape (B, n_samples, n_targets)
        ``K @ y0[b]`` (callers may compute it cheaply).

    Returns
    -------
    dual : ndarray of shape (B, n_samples, n_targets)
        Dual coefficients: predictions for new rows are ``K_new @ dual`` and
        the feature-space coefficients ``Xc^T @ dual``.
    n_iter : ndarray of shape (B, n_components)
    """
    nb, n, q = y0.shape
    yk = y0.copy()
    kyk = ky0.copy()
    # (B, component, sample) so that slices over components stay BLAS-friendly
    scores = np.zeros((nb, n_components, n))
    kscores = np.zeros((nb, n_components, n))
    weights = np.zeros((nb, n_components, n))
    ss = np.ones((nb, n_components))
    n_iter = np.zeros((nb, n_components), dtype=int)
    for k in range(n_components):
        # scikit-learn zeroes Y columns that are numerically zero.
        col_max = np.abs(yk).max(axis=1)
        dead = col_max < 10 * _EPS
        if dead.any():
            yk[np.broadcast_to(dead[:, None, :], yk.shape)] = 0.0
            kyk[np.broadcast_to(dead[:, None, :], kyk.shape)] = 0.0
        live = ~dead & (col_max > _EPS)
        if not live.any(axis=1).all():
            raise _ConstantResidual
        # Z = K_k Y_k = P_k K Y_k, because Y_k already lies in the range of P_k.
        tk = scores[:, :k]
        z_mat = kyk - tk.transpose(0, 2, 1) @ ((tk @ kyk) / ss[:, :k, None])
        c, n_iter[:, k] = _power_direction(yk.transpose(0, 2, 1) @ z_mat, live, max_iter, tol)
        t, a = _unit_scores((z_mat @ c[:, :, None])[:, :, 0], (yk @ c[:, :, None])[:, :, 0])
        tt = (t**2).sum(axis=1)
        kt = gram.matmul(t.T).T
        loading = (t[:, None, :] @ yk)[:, 0] / tt[:, None]
        yk -= t[:, :, None] * loading[:, None, :]
        kyk -= kt[:, :, None] * loading[:, None, :]
        scores[:, k], kscores[:, k], weights[:, k], ss[:, k] = t, kt, a, tt
    # Y_k^T t = Y_0^T t: t is orthogonal to the earlier scores
    return _dual_from_scores(scores, kscores, weights, ss, y0), n_iter


def _pinv(a: np.ndarray) -> np.ndarray:
    """Batched pseudo-inverse with scipy.linalg.pinv's default cut-off."""
    u, s, vt = np.linalg.svd(a)
    cutoff = s.max(axis=-1, keepdims=True) * max(a.shape[-2:]) * _EPS
    inv_s = np.divide(1.0, s, out=np.zeros_like(s), where=s > cutoff)
    return np.einsum("bji,bj,bkj->bik", vt, inv_s, u)


def _power_direction(
    m_mat: np.ndarray, live: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's power method for the first PLS direction, in closed form.

    With ``u = Y_k c`` the x-weights are ``w ∝ X_k^T Y_k c`` and the next
    ``c ∝ M c`` with ``M = Y_k^T K_k Y_k`` (n_targets x n_targets). Starting
    from ``c_0 = e_j`` (the first non-zero column), iteration ``i`` holds
    ``c_i ∝ M^i e_j``. With ``M = V diag(lambda) V^T`` and ``b = V^T e_j``,
    ``w_i . w_{i-1} = S(2i) / sqrt(S(2i+1) S(2i-1))`` where
    ``S(r) = sum(lambda^r b^2)``, so scikit-learn's stopping rule
    ``|w_i - w_{i-1}|^2 < tol`` is evaluated for all iterations at once and
    the same iteration is returned, without a Python loop over iterations
    (null permutations often need hundreds).

    Parameters
    ----------
    m_mat : ndarray of shape (B, q, q)
    live : bool ndarray of shape (B, q)
        Non-zero Y columns (the start is the first of them).

    Returns
    -------
    c : ndarray of shape (B, q)
        The y-side direction of the returned iteration (any scale).
    n_iter : ndarray of shape (B,)
    """
    nb, q, _ = m_mat.shape
    lam, vec = np.linalg.eigh((m_mat + m_mat.transpose(0, 2, 1)) / 2)
    lam = np.clip(lam, 0.0, None)
    start = np.argmax(live, axis=1)
    b = vec[np.arange(nb), start, :]  # coordinates of e_j in the eigenbasis
    top = lam.max(axis=1, keepdims=True)
    mu = np.divide(lam, top, out=np.zeros_like(lam), where=top > 0)
    # Most fits stop within a few dozen iterations: try a short horizon for
    # all, then the full one only for those that have not stopped.
    short = min(64, max_iter)
    stop = _first_stop(mu, b, short, tol, q)
    if short < max_iter:
        rest = np.flatnonzero(stop < 0)
        if rest.size:
            stop[rest] = _first_stop(mu[rest], b[rest], max_iter, tol, q)
    if np.any(stop < 0):
        warnings.warn("Maximum number of iterations reached", ConvergenceWarning, stacklevel=3)
        stop[stop < 0] = max_iter - 1
    with np.errstate(under="ignore"):
        scale = mu ** stop[:, None]
    # c_stop = V diag(mu^stop) V^T e_j
    c = (vec @ (b * scale)[:, :, None])[:, :, 0]
    return c, stop + 1


def _first_stop(mu: np.ndarray, b: np.ndarray, horizon: int, tol: float, q: int) -> np.ndarray:
    """First iteration ``i < horizon`` with ``|w_i - w_{i-1}|^2 < tol`` (-1 if none), shape (B,)."""
    nb = mu.shape[0]
    if q == 1:
        return np.zeros(nb, dtype=int)
    # S(r) relative to top^r, for r = 0 .. 2 * horizon + 1
    with np.errstate(under="ignore"):
        powers = np.ones((nb, q, 2 * horizon + 2))
        powers[:, :, 1:] = np.cumprod(np.broadcast_to(mu[:, :, None], (nb, q, 2 * horizon + 1)), axis=2)
        s = ((b**2)[:, None, :] @ powers)[:, 0, :]
    i = np.arange(1, horizon)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = s[:, 2 * i] / np.sqrt(s[:, 2 * i + 1] * s[:, 2 * i - 1])
    hit = (2.0 - 2.0 * cos) < tol
    return np.where(hit.any(axis=1), np.argmax(hit, axis=1) + 1, -1)


def _unit_scores(ku: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x-scores ``t = K_k u / |w|`` and sample weights ``a = u / |w|`` (``w = X_k^T a`` has unit norm)."""
    norm = np.sqrt(np.maximum((u * ku).sum(axis=1), 0.0))
    scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    return ku * scale[:, None], u * scale[:, None]


def _center_scale(a: np.ndarray, scale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales (ddof=1 standard deviations, 1 where constant or unscaled)."""
    mean = a.mean(axis=-2)
    if not scale:
        return mean, np.ones(mean.shape)
    std = a.std(axis=-2, ddof=1)
    std[std == 0.0] = 1.0
    return mean, std


class KernelPLS(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """PLS regression (NIPALS PLS2) computed in sample space.

    Predictions equal scikit-learn's ``PLSRegression(n_components,
    scale=scale)``; fitting costs ``O(n_samples^2)`` per power iteration
    instead of ``O(n_samples n_features)``, which pays off when
    ``n_samples < n_features`` (voxels >> trials).

    Parameters
    ----------
    n_components : int, default=10
    scale : bool, default=False
        Scale X and Y columns to unit variance. ``False`` centres only, like
        MATLAB's ``plsregress`` used in Kragel et al. (2019).
    max_iter : int, default=500
    tol : float, default=1e-6
        Stopping rule of the power method, as in scikit-learn.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features)
        Regression coefficients (scikit-learn's layout since 1.3).
    intercept_ : ndarray of shape (n_targets,)
        A true intercept: ``predict(X) = X @ coef_.T + intercept_``.
    n_iter_ : list of int
        Power-method iterations per component.
    """

    def __init__(self, n_components: int = 10, *, scale: bool = False, max_iter: int = 500, tol: float = 1e-6):
        self.n_components = n_components
        self.scale = scale
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y) -> KernelPLS:
        """Fit on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_targets)."""
        x, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2, multi_output=True, y_numeric=True)
        self._predict_1d = y.ndim == 1
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        n, p = x.shape
        if not 1 <= self.n_components <= min(n, p):
            raise ValueError(
                f"`n_components` upper bound is {min(n, p)}. Got {self.n_components} instead. "
                "Reduce `n_components`."
            )
        x_mean, x_std = _center_scale(x, self.scale)
        y_mean, y_std = _center_scale(y, self.scale)
        xs = (x - x_mean) / x_std
        y0 = ((y - y_mean) / y_std)[None]
        gram = _Gram.from_data(xs)
        dual, n_iter = _fit_dual(gram, y0, self.n_components, self.max_iter, self.tol)
        coef = (xs.T @ dual[0]) * y_std  # (n_features, n_targets), unscaled Y
        self.coef_ = (coef / x_std[:, None]).T
        self.intercept_ = y_mean - x_mean @ self.coef_.T
        self.n_iter_ = [int(i) for i in n_iter[0]]
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted responses, shape (n_samples, n_targets) (or (n_samples,))."""
        check_is_fitted(self, "coef_")
        x = validate_data(self, X, dtype=np.float64, reset=False)
        pred = x @ self.coef_.T + self.intercept_
        return pred.ravel() if self._predict_1d else pred


def _fit_dual(gram: _Gram, y0: np.ndarray, n_components: int, max_iter: int, tol: float):
    """Dual coefficients ``(B, n, q)`` and iteration counts for dense centred responses."""
    left, right, n_iter = _fit(gram, _DenseY(y0, _batched_kmul(gram, y0)), n_components, max_iter, tol)
    return left @ right, n_iter


def _fit_dense(gram: _Gram, y0: np.ndarray, ky0: np.ndarray, n_components: int, max_iter: int, tol: float):
    """The explicit-deflation path, stopping early as scikit-learn does if Y is exhausted."""
    try:
        return _nipals_dual_explicit(gram, y0, ky0, n_components, max_iter, tol)
    except _ConstantResidual:
        pass
    # Rare: some response matrix is fully explained before n_components.
    # Fit each element alone with as many components as scikit-learn keeps.
    duals, iters = [], []
    for b in range(y0.shape[0]):
        for k in range(n_components, 0, -1):
            try:
                d, it = _nipals_dual_explicit(gram, y0[b : b + 1], ky0[b : b + 1], k, max_iter, tol)
            except _ConstantResidual:
                continue
            if k < n_components:
                warnings.warn(f"y residual is constant at iteration {k}", UserWarning, stacklevel=4)
            duals.append(d[0])
            iters.append(np.pad(it[0], (0, n_components - k)))
            break
        else:  # pragma: no cover - Y is constant; scikit-learn fails too
            raise BrainnetError("the responses are constant; PLS cannot be fitted")
    return np.stack(duals), np.stack(iters)


def simpls(x: np.ndarray, y: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """SIMPLS partial least squares regression (de Jong 1993), X and Y centred, as MATLAB's ``plsregress``.

    Same steps as ``plsregress`` (and GNU Octave's, tested against it): the
    x-weight of each component is the dominant left singular vector of the
    deflated cross-covariance ``S = X0' Y0``; scores ``t = X0 r`` are
    normalised; the loading ``p = X0' t`` is orthogonalised against the
    previous ones and ``S`` is deflated by it; ``B = R Q'`` with ``Q = Y0' T``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_targets)
    n_components : int

    Returns
    -------
    coef : ndarray of shape (n_features, n_targets)
    intercept : ndarray of shape (n_targets,)
        ``predict = x_new @ coef + intercept``.
    """
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x0, y0 = x - x_mean, y - y_mean
    cross = x0.T @ y0
    rotations = np.zeros((x.shape[1], n_components))
    basis = np.zeros((x.shape[1], n_components))
    for a in range(n_components):
        u, s, _ = np.linalg.svd(cross, full_matrices=False)
        if s[0] <= 1e-12 * max(1.0, s.max(initial=0.0)):
            rotations, basis = rotations[:, :a], basis[:, :a]
            break
        r = u[:, 0]
        t = x0 @ r
        norm = np.linalg.norm(t)
        r, t = r / norm, t / norm
        loading = x0.T @ t
        v = loading - basis[:, :a] @ (basis[:, :a].T @ loading)
        v /= np.linalg.norm(v)
        cross -= np.outer(v, v @ cross)
        rotations[:, a], basis[:, a] = r, v
    # scores T = x0 R are orthonormal, so the coefficients are R T' Y
    coef = rotations @ ((x0 @ rotations).T @ y0)
    return coef, y_mean - x_mean @ coef


def _simpls_rotations(gram: np.ndarray, cross: np.ndarray, n_components: int) -> np.ndarray:
    """SIMPLS x-rotations for a batch of cross-covariances, all sharing one X.

    Parameters
    ----------
    gram : ndarray of shape (n_features, n_features) or (n_features,)
        ``x0.T @ x0`` of the centred X (1-d: its diagonal, when it is diagonal): scores ``t = x0 r`` are never formed,
        since SIMPLS only needs ``x0.T t = gram r`` and ``|t|^2 = r' gram r``.
    cross : ndarray of shape (n_batch, n_features, n_targets)
        ``x0.T @ y0`` of each response matrix.

    Returns
    -------
    rotations : ndarray of shape (n_batch, n_features, n_components)
        ``x0 @ rotations[b]`` has orthonormal columns; the coefficients are
        ``rotations[b] @ rotations[b].T @ cross[b]``.
    """
    cross = cross.copy()
    n_batch, n_features, _ = cross.shape
    rotations = np.zeros((n_batch, n_features, n_components))
    basis = np.zeros((n_batch, n_features, n_components))
    for a in range(n_components):
        # first left singular vector of each cross, via the small (n_targets x n_targets) eigenproblem
        _, vecs = np.linalg.eigh(cross.transpose(0, 2, 1) @ cross)
        r = (cross @ vecs[:, :, -1:])[:, :, 0]
        gr = r * gram if gram.ndim == 1 else r @ gram  # a 1-d gram is diagonal
        norm = np.sqrt(np.maximum(np.sum(r * gr, axis=1, keepdims=True), 1e-300))
        r, loading = r / norm, gr / norm
        prev = basis[:, :, :a]
        v = loading - (prev @ (loading[:, None, :] @ prev).transpose(0, 2, 1))[:, :, 0]
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
        cross -= v[:, :, None] * (v[:, None, :] @ cross)
        rotations[:, :, a], basis[:, :, a] = r, v
    return rotations


def _add_row_space(fold, x0: np.ndarray) -> None:
    """Coordinates ``Z`` of a fold's rows with ``Z Z^T`` = the fold's kernel, for SIMPLS.

    SIMPLS depends on X only through ``X X^T`` (its weights lie in the row
    space), so any such ``Z`` gives its predictions. With fewer voxels than
    training rows ``Z`` is the centred X itself; otherwise a Cholesky factor of
    ``K + c 1 1^T`` (``c`` = mean diagonal; the all-ones direction is
    orthogonal to every centred response, so SIMPLS never uses it): about
    ``n^3 / 3`` flops instead of an eigendecomposition's ``~9 n^3``.
    """
    if x0.shape[1] <= fold.train.size:
        mean = x0[fold.train].mean(axis=0)
        fold.z_train = x0[fold.train] - mean
        fold.z_test = x0[fold.test] - mean
        fold.z_gram = fold.z_train.T @ fold.z_train
        return
    kernel = fold.gram.kernel
    c = max(float(np.trace(kernel)) / kernel.shape[0], _EPS)
    try:
        chol = np.linalg.cholesky(kernel + c)
        fold.z_train = chol
        from scipy.linalg import solve_triangular

        fold.z_test = solve_triangular(chol, (fold.k_test + c).T, lower=True).T
        fold.z_gram = chol.T @ chol
    except np.linalg.LinAlgError:  # rank-deficient rows (e.g. duplicates): the eigendecomposition
        vals, vecs = np.linalg.eigh(kernel)
        keep = vals > vals.max(initial=0.0) * vals.size * _EPS
        vals, vecs = vals[keep], vecs[:, keep]
        root = np.sqrt(vals)
        fold.z_train = vecs * root
        fold.z_test = (fold.k_test @ vecs) / root
        fold.z_gram = vals  # Z^T Z is diagonal


@dataclass
class _Fold:
    train: np.ndarray
    test: np.ndarray
    gram: _Gram
    k_test: np.ndarray  # (n_test, n_train)
    k_stim: np.ndarray | None = None  # K_train @ S_train, (n_train, n_stimuli)
    onehot: np.ndarray | None = None  # S_train, (n_train, n_stimuli)
    sks: np.ndarray | None = None  # S^T K S, (n_stimuli, n_stimuli)
    # SIMPLS: training rows' coordinates in the row space of centred X_train (Z Z^T = K), test rows' too
    z_train: np.ndarray | None = None  # (n_train, rank)
    z_test: np.ndarray | None = None  # (n_test, rank)
    z_gram: np.ndarray | None = None  # Z^T Z = diag(eigenvalues), its diagonal (rank,)
    z_stim: np.ndarray | None = None  # Z^T S_train, (rank, n_stimuli)


class CrossValidatedPLS:
    """Cross-validated PLS predictions for many response matrices and one X.

    The fold kernels are computed once; :meth:`predict` and
    :meth:`predict_permuted` then cost ``O(n^2)`` per component and response
    matrix, batched over matrices. Predictions equal fitting scikit-learn's
    ``PLSRegression`` on each training fold and predicting its test rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    groups : ndarray of shape (n_samples,)
        Fold labels: each distinct label is held out once (e.g. subjects for
        leave-one-subject-out).
    n_components : int, default=10
    scale : bool, default=False
    algorithm : {"nipals", "simpls"}, default="nipals"
        ``"simpls"``: :func:`simpls` (MATLAB's ``plsregress``) on each fold's
        coordinates in the row space of its centred X (SIMPLS depends on X
        only through ``X X^T``: its weights lie in that row space), so a
        fold costs products with ``(n_train, rank)`` matrices whatever the
        number of voxels. Centring only (``scale=False``), like ``plsregress``.
    """

    def __init__(self, X: np.ndarray, groups: Sequence, n_components: int = 10, *, scale: bool = False,
                 max_iter: int = 500, tol: float = 1e-6, algorithm: str = "nipals"):
        if algorithm not in ALGORITHMS:
            raise BrainnetError(f"--algorithm {algorithm}: unknown PLS algorithm; use nipals or simpls")
        if algorithm == "simpls" and scale:
            raise BrainnetError("--algorithm simpls centres only (as MATLAB's plsregress); leave out --scale "
                                "or use --algorithm nipals")
        self.algorithm = algorithm
        x = np.asarray(X, dtype=np.float64)
        groups = np.asarray(groups)
        if groups.shape != (x.shape[0],):
            raise BrainnetError(f"groups has shape {groups.shape}; give one label per row of X ({x.shape[0]})")
        labels = np.unique(groups)
        if labels.size < 2:
            raise BrainnetError("cross-validation needs at least 2 groups (e.g. subjects); give data of 2 or more")
        self.n_components, self.scale, self.max_iter, self.tol = n_components, scale, max_iter, tol
        self.n_samples = x.shape[0]
        self.folds: list[_Fold] = []
        # Without scaling every fold kernel comes from one Gram matrix (centring
        # by the overall mean first keeps the double centring well conditioned).
        x0 = x - x.mean(axis=0)
        full = x0 @ x0.T if not scale else None
        for label in labels:
            test, train = np.flatnonzero(groups == label), np.flatnonzero(groups != label)
            limit = min(train.size, x.shape[1])
            if not 1 <= n_components <= limit:
                raise BrainnetError(
                    f"n_components={n_components} is more than a training fold allows ({limit}); "
                    "use fewer components"
                )
            self.folds.append(self._fold(x0, full, train, test))
        if algorithm == "simpls":
            from threadpoolctl import threadpool_limits

            # One BLAS thread: on a busy machine threaded factorisations here ran 5-30x slower (measured).
            with threadpool_limits(limits=1, user_api="blas"):
                for fold in self.folds:
                    _add_row_space(fold, x0)

    def _fold(self, x0, full, train, test) -> _Fold:
        if full is None:
            mean, std = _center_scale(x0[train], True)
            xs = (x0[train] - mean) / std
            xt = (x0[test] - mean) / std
            return _Fold(train, test, _Gram(kernel=xs @ xs.T), xt @ xs.T)
        g_tt = full[np.ix_(train, train)]
        col = g_tt.mean(axis=0)
        kernel = g_tt - col[:, None] - col[None, :] + col.mean()
        g_st = full[np.ix_(test, train)]
        k_test = g_st - g_st.mean(axis=1, keepdims=True) - col[None, :] + col.mean()
        return _Fold(train, test, _Gram(kernel=kernel), k_test)

    def predict(self, Y: np.ndarray) -> np.ndarray:
        """Cross-validated predictions of ``Y`` (n_samples, n_targets) or (B, n_samples, n_targets)."""
        y = np.asarray(Y, dtype=np.float64)
        batch = y[None] if y.ndim == 2 else y
        out = np.empty_like(batch)
        for fold in self.folds:
            if self.algorithm == "simpls":
                ytr = batch[:, fold.train]
                mean = ytr.mean(axis=1)
                cross = fold.z_train.T @ (ytr - mean[:, None])
                out[:, fold.test] = self._simpls_fold(fold, cross) + mean[:, None]
                continue
            ytr = batch[:, fold.train]
            mean, std = _center_scale(ytr, self.scale)
            y0 = (ytr - mean[:, None]) / std[:, None]
            resp = _DenseY(y0, _batched_kmul(fold.gram, y0))
            out[:, fold.test] = self._predict_fold(fold, resp) * std[:, None] + mean[:, None]
        return out[0] if y.ndim == 2 else out

    def predict_permuted(self, F: np.ndarray, rows: np.ndarray, perms: np.ndarray) -> np.ndarray:
        """Cross-validated predictions when row ``i``'s target is ``F[perm[rows[i]]]``.

        This is the permutation test of a design where many rows (trials of
        several subjects) share one stimulus: ``F`` holds one target row per
        stimulus and ``perm`` reassigns stimuli to target rows. Products with
        the responses then go through ``F[perm]`` and the per-fold kernel
        summed over the rows of each stimulus, ``K S``; the ``(n, n_targets)``
        response matrices are never formed.

        Parameters
        ----------
        F : ndarray of shape (n_stimuli, n_targets)
        rows : ndarray of int, shape (n_samples,)
            Stimulus index of each row.
        perms : ndarray of int, shape (B, n_stimuli)

        Returns
        -------
        ndarray of shape (B, n_samples, n_targets)
        """
        f = np.asarray(F, dtype=np.float64)
        rows = np.asarray(rows)
        fp = f[np.asarray(perms)]  # (B, n_stimuli, q)
        out = np.empty((fp.shape[0], self.n_samples, f.shape[1]))
        for fold in self.folds:
            train_rows = rows[fold.train]
            if self.algorithm == "simpls":
                if fold.z_stim is None or fold.z_stim.shape[1] != f.shape[0]:
                    onehot = np.zeros((fold.train.size, f.shape[0]))
                    onehot[np.arange(fold.train.size), train_rows] = 1.0
                    fold.z_stim = fold.z_train.T @ onehot
                counts = np.bincount(train_rows, minlength=f.shape[0])
                mean = np.einsum("s,bsq->bq", counts, fp) / train_rows.size
                # Y0 = S F[perm] - 1 mean^T
                cross = fold.z_stim @ fp - fold.z_train.sum(axis=0)[None, :, None] * mean[:, None, :]
                out[:, fold.test] = self._simpls_fold(fold, cross) + mean[:, None]
                continue
            if fold.k_stim is None or fold.k_stim.shape[1] != f.shape[0]:
                fold.onehot = np.zeros((fold.train.size, f.shape[0]))
                fold.onehot[np.arange(fold.train.size), train_rows] = 1.0
                fold.k_stim = fold.gram.kernel @ fold.onehot
                fold.sks = fold.onehot.T @ fold.k_stim
            counts = fold.onehot.sum(axis=0)
            mean = np.einsum("s,bsq->bq", counts, fp) / train_rows.size
            if self.scale:
                var = np.einsum("s,bsq->bq", counts, (fp - mean[:, None]) ** 2) / (train_rows.size - 1)
                std = np.sqrt(var)
                std[std == 0.0] = 1.0
            else:
                std = np.ones_like(mean)
            resp = _TiledY.from_permuted(fp, mean, std, train_rows, fold.onehot, fold.k_stim, fold.sks)
            out[:, fold.test] = self._predict_fold(fold, resp) * std[:, None] + mean[:, None]
        return out

    def _simpls_fold(self, fold: _Fold, cross: np.ndarray) -> np.ndarray:
        """Centred SIMPLS predictions of the fold's test rows from cross-covariances (B, rank, q)."""
        k = min(self.n_components, fold.z_gram.shape[0])
        rot = _simpls_rotations(fold.z_gram, cross, k)
        return fold.z_test @ (rot @ (rot.transpose(0, 2, 1) @ cross))

    def _predict_fold(self, fold: _Fold, resp) -> np.ndarray:
        """Scaled predictions of the fold's test rows, (B, n_test, q)."""
        left, right, _ = _fit(fold.gram, resp, self.n_components, self.max_iter, self.tol)
        return _left_mul(fold.k_test, left) @ right
