"""Ridge regression for many targets with a per-target penalty, in SVD form.

Everything that depends only on the features (standardisation, the thin SVD
of the training features, leave-one-out hat-matrix diagonals, inner-fold
decompositions) lives in a :class:`RidgeBasis`, computed once. Fitting
targets then costs matrix products with the ``(rank, n_targets)`` projection
``U.T @ Y``; this is what makes permutation tests cheap (the basis of each
cross-validation fold is reused for every permutation) and avoids the primal
``(n_features, n_targets)`` coefficients that scikit-learn and himalaya
compute (4,096 x 50,000 for fc7 -> a whole-brain mask).

Why hand-written: scikit-learn's ``RidgeCV(alpha_per_target=True)`` and
himalaya's ``RidgeCV`` refit from scratch for every call and always build
primal weights; neither exposes a reusable decomposition for permutations.
The maths is textbook (ridge via SVD; Golub, Heath & Wahba 1979 for the
leave-one-out shortcut) and is tested against both libraries.

Inner selection of the penalty, per target:

- ``"loo"``: exact leave-one-out squared error (as scikit-learn's
  ``RidgeCV`` with ``alpha_per_target=True``, intercept refit in every
  leave-out), smallest alpha wins ties;
- an int ``k``: ``KFold(k)`` without shuffling inside the training data,
  centred per inner fold, mean over folds of the mean squared error (as
  himalaya's ``RidgeCV(cv=k, fit_intercept=True)``), largest alpha wins ties.
"""

from __future__ import annotations

import numpy as np

#: Columns (targets x permutations) handled per block, to bound memory.
BLOCK_COLUMNS = 16384
#: Block width shared by every n_jobs value (several blocks for threads to share).
_PARALLEL_BLOCK = 4096
#: Inner validation sets longer than this many rows per basis direction score
#: alphas through the Gram identity instead of forming predictions.
_GRAM_ROWS_PER_RANK = 4


def _thin_svd(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``U S Vt`` of a centred matrix, keeping numerically non-zero directions.

    For wide (or tall) matrices it is computed from the eigendecomposition of
    the small Gram matrix, as scikit-learn's ``RidgeCV`` does: one product
    and a tiny ``eigh`` instead of LAPACK's SVD, which was 10-30x slower on a
    busy 2-core machine.
    """
    from brainnet._threads import single_blas_thread

    n, p = xc.shape
    with single_blas_thread():
        if max(n, p) < 2 * min(n, p):
            u, s, vt = np.linalg.svd(xc, full_matrices=False)
            tol = (s[0] if s.size else 0.0) * max(n, p) * np.finfo(xc.dtype).eps
            keep = s > tol
            return u[:, keep], s[keep], vt[keep]
        x64 = xc.astype(np.float64, copy=False)
        wide = n <= p
        gram = x64 @ x64.T if wide else x64.T @ x64
        evals, evecs = np.linalg.eigh(gram)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        # eigh is accurate to ~eps * largest eigenvalue: drop what is below that.
        tol = (evals[0] if evals.size else 0.0) * max(n, p) * np.finfo(np.float64).eps * 10
        keep = evals > tol
        s = np.sqrt(evals[keep])
        if wide:
            u = evecs[:, keep]
            vt = (u.T @ x64) / s[:, None]
        else:
            vt = evecs[:, keep].T
            u = (x64 @ vt.T) / s[None, :]
        return u.astype(xc.dtype), s.astype(xc.dtype), vt.astype(xc.dtype)


class _InnerSplit:
    """Decomposition of one inner training split (for inner k-fold selection)."""

    def __init__(self, xs: np.ndarray, train: np.ndarray, val: np.ndarray):
        self.train, self.val = train, val
        mu = xs[train].mean(axis=0)
        self.u, self.s, vt = _thin_svd(xs[train] - mu)
        self.p_val = (xs[val] - mu) @ vt.T


class RidgeBasis:
    """Target-independent part of a ridge fit on one training set.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
        Training features.
    alphas : ndarray of shape (n_alphas,)
        Candidate penalties.
    inner : "loo" or int
        How the per-target penalty is chosen (see the module docstring).
    standardize : bool
        Scale features to unit variance (ddof=0) on these samples, as
        ``StandardScaler``; they are always centred (the intercept is not
        penalised).
    """

    def __init__(self, x: np.ndarray, alphas: np.ndarray, inner="loo", standardize: bool = True):
        x = np.asarray(x)
        self.dtype = np.float32 if x.dtype == np.float32 else np.float64
        x = x.astype(self.dtype, copy=False)
        self.alphas = np.asarray(alphas, dtype=np.float64)
        self.inner = inner
        n = x.shape[0]
        self.mean = x.mean(axis=0)
        scale = x.std(axis=0) if standardize else np.ones(x.shape[1], self.dtype)
        # Constant features keep scale 1, as StandardScaler does.
        self.scale = np.where(scale > 0, scale, 1).astype(self.dtype)
        xs = (x - self.mean) / self.scale
        self.u, self.s, self.vt = _thin_svd(xs)
        self.n = n
        if inner == "loo":
            # Columns of U are orthogonal to the constant vector (xs is centred);
            # q is the hat-matrix mass outside span(U) and 1, zero at full rank.
            rank_full = self.u.shape[1] >= n - 1
            lev = (self.u**2).sum(axis=1)
            self.q = np.zeros(n) if rank_full else np.clip(1 - 1 / n - lev, 0, None)
            self.has_perp = not rank_full
        else:
            k = int(inner)
            folds = np.array_split(np.arange(n), k)
            self.splits = [
                _InnerSplit(xs, np.setdiff1d(np.arange(n), val), val) for val in folds
            ]

    # -- penalty selection ---------------------------------------------------------
    def select(self, y: np.ndarray) -> np.ndarray:
        """Index into ``alphas`` of the best penalty for each column of ``y``.

        Parameters
        ----------
        y : ndarray of shape (n_samples, n_targets)

        Returns
        -------
        best : ndarray of shape (n_targets,)
        """
        y = y.astype(self.dtype, copy=False)
        errors = self.inner_errors(y)
        if self.inner == "loo":
            return np.argmin(errors, axis=0)
        # himalaya prefers larger alphas on (near) ties.
        score = -errors + (np.log(self.alphas) * 1e-10)[:, None]
        return np.argmax(score, axis=0)

    def inner_errors(self, y: np.ndarray) -> np.ndarray:
        """Inner cross-validated mean squared error, shape ``(n_alphas, n_targets)``."""
        y = y.astype(self.dtype, copy=False)
        if self.inner == "loo":
            return self._loo_errors(y)
        return self._kfold_errors(y)

    def _loo_terms(self) -> None:
        """Feature-only parts of the leave-one-out errors, for every alpha.

        With ``y_c = U c + perp`` (``perp`` orthogonal to U and 1), the
        leave-one-out residuals are ``D (U (w * c) + perp)`` where
        ``w = alpha / (s^2 + alpha)`` and ``D = diag(1 / (1 - h))``; their
        squared norm is ``g' M g + 2 g' U' D^2 perp + perp' D^2 perp`` with
        ``g = w * c`` and ``M = U' D^2 U``. ``w``, ``D`` and ``M`` depend on
        the features only. Writing 1 - h and the residual in terms of
        ``w`` (not ``y - H y``) keeps them accurate for small alphas.
        """
        s2 = self.s.astype(np.float64) ** 2
        w = self.alphas[:, None] / (s2[None, :] + self.alphas[:, None])  # (A, r)
        u = self.u.astype(np.float64)
        denom = self.q[None, :] + w @ (u**2).T  # (A, n)
        with np.errstate(divide="ignore"):
            d2 = 1.0 / denom**2
        self._w = w.astype(self.dtype)
        self._d2 = d2.astype(self.dtype)
        self._m = np.einsum("ai,ik,il->akl", d2, u, u).astype(self.dtype)  # (A, r, r)
        if self.has_perp:
            # Rows (alpha, k) of U' D_alpha^2, stacked for one product with perp.
            self._wu = (d2[:, None, :] * u.T[None]).reshape(-1, u.shape[0]).astype(self.dtype)

    def _loo_errors(self, y: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        if not hasattr(self, "_m"):
            self._loo_terms()
        yc = y - y.mean(axis=0)
        if c is None:
            c = self.u.T @ yc
        n_alphas, rank = self._w.shape
        if self.has_perp:
            perp = yc - self.u @ c
            cross = (self._wu @ perp).reshape(n_alphas, rank, -1)
            outside = self._d2 @ (perp * perp)
        out = np.empty((n_alphas, y.shape[1]))
        for a in range(n_alphas):
            g = self._w[a][:, None] * c
            err = np.einsum("kj,kj->j", g, self._m[a] @ g)
            if self.has_perp:
                err += 2 * np.einsum("kj,kj->j", g, cross[a]) + outside[a]
            out[a] = err / self.n
        return out

    def _kfold_errors(self, y: np.ndarray) -> np.ndarray:
        n_alphas = self.alphas.size
        out = np.zeros((n_alphas, y.shape[1]))
        yc = y - y.mean(axis=0)  # centred once: the splits below work on views of it
        for sp in self.splits:
            s = sp.s.astype(np.float64)
            g = s[None, :] / (s[None, :] ** 2 + self.alphas[:, None])  # (A, r)
            c, yval = self._split_projection(sp, yc)
            if sp.val.size > _GRAM_ROWS_PER_RANK * s.size:
                out += self._kfold_errors_gram(sp, g, c, yval)
                continue
            if not hasattr(sp, "stacked"):
                # Validation rows times each alpha's shrinkage, stacked: one product for all alphas.
                sp.stacked = (sp.p_val[None] * g[:, None, :]).reshape(-1, s.size).astype(self.dtype)
            pred = (sp.stacked @ c).reshape(n_alphas, sp.val.size, -1)
            pred -= yval[None]
            out += np.einsum("aij,aij->aj", pred, pred) / sp.val.size
        return out / len(self.splits)

    @staticmethod
    def _split_projection(sp: _InnerSplit, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``U' (y_train - mean_train)`` and ``y_val - mean_train`` for one inner split.

        The validation rows are one contiguous block, so the training rows are
        the two slices around it: products on views, no gathered copy of the
        training targets. ``yc`` is centred over all rows, so the training mean
        ``m`` is small and the correction ``(U' 1) m`` (``U' 1`` is zero up to
        rounding, as U spans centred columns) loses no precision.
        """
        a, b = int(sp.val[0]), int(sp.val[-1]) + 1
        if b - a != sp.val.size:  # not a block: gather
            ytr = yc[sp.train]
            m = ytr.mean(axis=0)
            return sp.u.T @ (ytr - m), yc[sp.val] - m
        m = (yc[:a].sum(axis=0) + yc[b:].sum(axis=0)) / (yc.shape[0] - (b - a))
        c = sp.u[:a].T @ yc[:a] + sp.u[a:].T @ yc[b:] - np.outer(sp.u.sum(axis=0), m).astype(yc.dtype)
        return c, yc[a:b] - m

    @staticmethod
    def _kfold_errors_gram(sp: _InnerSplit, g: np.ndarray, c: np.ndarray, yval: np.ndarray) -> np.ndarray:
        """Mean squared validation error per alpha without forming the predictions.

        With ``P`` the validation rows in the basis and ``pred = P diag(g) c``,
        ``|pred - y|^2 = |y|^2 - 2 (g c) . (P' y) + (g c) . (P'P) (g c)``:
        ``(rank, n_targets)`` products instead of ``(n_alphas * n_val, n_targets)``
        predictions. Used when validation sets are long (naturalistic runs of
        thousands of volumes) compared with the rank; combined in float64.
        """
        if not hasattr(sp, "gram"):
            p64 = sp.p_val.astype(np.float64)
            sp.gram = p64.T @ p64
        cross = (sp.p_val.T @ yval).astype(np.float64)  # (r, n_targets)
        c64 = c.astype(np.float64)
        total = np.square(yval).sum(axis=0, dtype=np.float64)
        out = np.empty((g.shape[0], c.shape[1]))
        for a in range(g.shape[0]):
            gc = g[a][:, None] * c64
            out[a] = total - 2 * np.einsum("kj,kj->j", gc, cross) + np.einsum("kj,kj->j", gc, sp.gram @ gc)
        return out / sp.val.size

    # -- fitting and prediction --------------------------------------------------------
    def fit_targets(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, ymean, best)``: projection, target means and chosen alpha index per target."""
        c, ymean = self.project(y)
        if self.inner == "loo":
            best = np.argmin(self._loo_errors(y.astype(self.dtype, copy=False), c), axis=0)
        else:
            best = self.select(y)
        return c, ymean, best

    def project(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(U.T @ (y - mean), mean)``: the target-dependent part of the fit."""
        y = y.astype(self.dtype, copy=False)
        ymean = y.mean(axis=0)
        return self.u.T @ (y - ymean), ymean

    def rows(self, x_new: np.ndarray) -> np.ndarray:
        """New samples in the basis: ``((x_new - mean) / scale) @ V``, shape (n_new, rank)."""
        xs = (np.asarray(x_new, dtype=self.dtype) - self.mean) / self.scale
        return xs @ self.vt.T

    def predict(self, p_new: np.ndarray, c: np.ndarray, ymean: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Predictions ``(n_new, n_targets)`` with penalty ``alphas[best[j]]`` for target j."""
        out = np.empty((p_new.shape[0], c.shape[1]), dtype=self.dtype)
        s = self.s.astype(np.float64)
        for a in np.unique(best):
            cols = np.flatnonzero(best == a)
            g = (s / (s**2 + self.alphas[a])).astype(self.dtype)
            out[:, cols] = (p_new * g) @ c[:, cols]
        return out + ymean

    def coef(self, c: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Primal weights on the standardised features, shape (n_features, n_targets)."""
        s = self.s.astype(np.float64)
        g = (s[:, None] / (s[:, None] ** 2 + self.alphas[best][None, :])).astype(self.dtype)
        return self.vt.T @ (g * c)


def cross_val_predict_blocks(
    bases: list[tuple[RidgeBasis, np.ndarray, np.ndarray, np.ndarray]],
    y: np.ndarray,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions for every column of ``y``.

    Parameters
    ----------
    bases : list of (basis, train, test, p_test)
        One entry per outer fold: the basis fitted on ``x[train]`` and the test
        rows in that basis (``basis.rows(x[test])``).
    y : ndarray of shape (n_samples, n_columns)
    n_jobs : int
        Threads over blocks of columns (-1: all cores). BLAS runs single-threaded
        inside: its threads gain little on these thin products and, on a busy
        machine, their spin-waiting cost us up to 8x.

    Returns
    -------
    predictions : ndarray of shape (n_samples, n_columns)
    best : ndarray of shape (n_folds, n_columns)
        Index of the chosen alpha per fold and column.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from brainnet._threads import single_blas_thread

    dtype = bases[0][0].dtype
    y = y.astype(dtype, copy=False)
    pred = np.empty(y.shape, dtype=dtype)
    best = np.empty((len(bases), y.shape[1]), dtype=np.intp)
    workers = (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)
    # The same blocks whatever n_jobs: BLAS rounds a column differently depending on
    # its place in a block, so blocks sized by the worker count broke bit-identity.
    step = min(BLOCK_COLUMNS, _PARALLEL_BLOCK)
    blocks = [slice(a, a + step) for a in range(0, y.shape[1], step)]

    def work(cols: slice) -> None:
        for f, (basis, train, test, p_test) in enumerate(bases):
            c, ymean, b = basis.fit_targets(y[train, cols])
            pred[test, cols] = basis.predict(p_test, c, ymean, b)
            best[f, cols] = b

    with single_blas_thread():
        if workers == 1 or len(blocks) == 1:
            for cols in blocks:
                work(cols)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(work, blocks))
    return pred, best
