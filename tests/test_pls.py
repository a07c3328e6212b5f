"""Sample-space PLS: equal to scikit-learn's PLSRegression, fold by fold and permutation by permutation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold

from brainnet.errors import BrainnetError
from brainnet.permutation import permutation_indices, permutation_test
from brainnet.pls import CrossValidatedPLS, KernelPLS
from brainnet.stats import pearson_columns


def _data(n, p, q, seed=0, offset=3.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 2.0, size=p) + offset
    y = x[:, : min(p, 4)] @ rng.normal(size=(min(p, 4), q)) + rng.normal(size=(n, q))
    return x, y


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize(
    ("n", "p", "q", "k"),
    [(30, 200, 5, 4), (24, 600, 20, 10), (60, 12, 3, 3), (40, 80, 1, 5), (35, 35, 7, 6)],
)
def test_kernel_pls_equals_sklearn_on_the_same_folds(n, p, q, k, scale):
    x, y = _data(n, p, q, seed=n + p)
    for train, test in KFold(3, shuffle=True, random_state=0).split(x):
        ref = PLSRegression(k, scale=scale).fit(x[train], y[train])
        ours = KernelPLS(k, scale=scale).fit(x[train], y[train])
        np.testing.assert_allclose(ours.predict(x[test]), ref.predict(x[test]), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
        assert ours.n_iter_ == ref.n_iter_  # same power-method path, same stopping step


def test_kernel_pls_1d_target_constant_column_and_estimator_api():
    x, y = _data(30, 50, 3, seed=3)
    y[:, 1] = 2.5  # a dead unit: scikit-learn zeroes it, so must we
    ref = PLSRegression(3, scale=False).fit(x, y)
    ours = KernelPLS(3).fit(x, y)
    np.testing.assert_allclose(ours.predict(x), ref.predict(x), atol=1e-9)
    one = KernelPLS(2).fit(x, y[:, 0])
    assert one.predict(x).shape == (30,)
    np.testing.assert_allclose(one.predict(x), PLSRegression(2, scale=False).fit(x, y[:, 0]).predict(x), atol=1e-9)
    # a true intercept, and the scikit-learn estimator contract
    np.testing.assert_allclose(ours.predict(x), x @ ours.coef_.T + ours.intercept_)
    assert clone(ours).get_params() == {"n_components": 3, "scale": False, "max_iter": 500, "tol": 1e-6}
    assert ours.score(x, y) == pytest.approx(ref.score(x, y), abs=1e-9)
    with pytest.raises(ValueError, match="upper bound is 30"):
        KernelPLS(31).fit(x, y)


def _loso(n_subjects, n_stimuli, p, q, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_stimuli, q))
    rows = np.tile(np.arange(n_stimuli), n_subjects)
    groups = np.repeat(np.arange(n_subjects), n_stimuli)
    x = features[rows] @ rng.normal(size=(q, p)) * 0.3 + rng.normal(size=(rows.size, p)) + 2.0
    return x, features, rows, groups


def _sklearn_loso(x, y, groups, k, scale):
    out = np.empty_like(y)
    for g in np.unique(groups):
        test = groups == g
        out[test] = PLSRegression(k, scale=scale).fit(x[~test], y[~test]).predict(x[test])
    return out


@pytest.mark.parametrize("scale", [False, True])
def test_cross_validated_predictions_equal_refitting_sklearn(scale):
    x, features, rows, groups = _loso(4, 15, 90, 6, seed=1)
    cv = CrossValidatedPLS(x, groups, 3, scale=scale)
    perms = permutation_indices(15, 0, 4, seed=5)
    fast = cv.predict_permuted(features, rows, perms)
    general = cv.predict(features[perms][:, rows])
    for b, perm in enumerate(perms):
        ref = _sklearn_loso(x, features[perm][rows], groups, 3, scale)
        np.testing.assert_allclose(fast[b], ref, atol=1e-9)
        np.testing.assert_allclose(general[b], ref, atol=1e-9)
    # a batch gives what each permutation gives alone
    np.testing.assert_allclose(cv.predict_permuted(features, rows, perms[2:3])[0], fast[2], atol=1e-12)


def test_unbalanced_folds_and_unequal_subjects():
    # subjects see different subsets of stimuli: the stimulus-summed kernel must still be exact
    rng = np.random.default_rng(4)
    features = rng.normal(size=(20, 4))
    rows = np.concatenate([rng.choice(20, size=m, replace=False) for m in (20, 14, 17)])
    groups = np.repeat([0, 1, 2], [20, 14, 17])
    x = features[rows] @ rng.normal(size=(4, 70)) + rng.normal(size=(rows.size, 70))
    cv = CrossValidatedPLS(x, groups, 4)
    perm = rng.permutation(20)
    np.testing.assert_allclose(
        cv.predict_permuted(features, rows, perm[None])[0],
        _sklearn_loso(x, features[perm][rows], groups, 4, False),
        atol=1e-9,
    )


def test_permutation_p_values_equal_literal_refitting():
    """The engine's null, through the batched fast path, equals refitting scikit-learn per permutation."""
    n_subjects, n_stimuli = 4, 12
    x, features, rows, groups = _loso(n_subjects, n_stimuli, 60, 3, seed=2)
    cv = CrossValidatedPLS(x, groups, 2)

    def mean_r(pred, target):
        return np.mean([np.mean(pearson_columns(pred[groups == g], target[groups == g])) for g in range(n_subjects)])

    def fast(perms):
        pred = cv.predict_permuted(features, rows, perms)
        return np.array([mean_r(pred[b], features[p][rows]) for b, p in enumerate(perms)])

    result = permutation_test(fast, n_stimuli, n_permutations=25, seed=11, batch_size=7)
    literal = [
        mean_r(_sklearn_loso(x, features[p][rows], groups, 2, False), features[p][rows])
        for p in permutation_indices(n_stimuli, 0, 25, seed=11)
    ]
    observed = mean_r(_sklearn_loso(x, features[rows], groups, 2, False), features[rows])
    np.testing.assert_allclose(result.null, literal, atol=1e-10)
    assert result.observed == pytest.approx(observed, abs=1e-10)
    literal_p = (1 + np.sum(np.array(literal) >= observed)) / 26
    assert result.p_value == literal_p


def test_cross_validation_errors():
    x, features, rows, groups = _loso(3, 10, 20, 2)
    with pytest.raises(BrainnetError, match="at least 2 groups"):
        CrossValidatedPLS(x, np.zeros(len(x)), 2)
    with pytest.raises(BrainnetError, match=r"groups has shape \(5,\); give one label per row of X \(30\)"):
        CrossValidatedPLS(x, groups[:5], 2)
    with pytest.raises(BrainnetError, match="n_components=21 is more than a training fold allows \\(20\\); use fewer components"):
        CrossValidatedPLS(x, groups, 21)


def test_exhausted_y_residual_stops_like_sklearn():
    # 8 samples, 8 components: Y is fitted exactly after 7, where scikit-learn stops with a warning
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 50)), rng.normal(size=(8, 2))
    with pytest.warns(UserWarning, match="y residual is constant at iteration 7"):
        ref = PLSRegression(8, scale=False).fit(x, y)
    with pytest.warns(UserWarning, match="y residual is constant at iteration 7"):
        ours = KernelPLS(8).fit(x, y)
    x_new = rng.normal(size=(3, 50))
    np.testing.assert_allclose(ours.predict(x_new), ref.predict(x_new), atol=1e-9)


def test_unconverged_power_method_returns_sklearns_last_iterate():
    from sklearn.exceptions import ConvergenceWarning

    x, y = _data(30, 100, 6, seed=9)
    with pytest.warns(ConvergenceWarning):
        ref = PLSRegression(3, scale=False, max_iter=3).fit(x, y)
    with pytest.warns(ConvergenceWarning):
        ours = KernelPLS(3, max_iter=3).fit(x, y)
    np.testing.assert_allclose(ours.predict(x), ref.predict(x), atol=1e-9)
    assert ours.n_iter_ == ref.n_iter_


# -- SIMPLS (MATLAB's plsregress; decode --algorithm simpls, power) --------------------------------


def _de_jong_simpls(x, y, k):
    """Literal transcription of de Jong (1993), Appendix: SIMPLS with the re-orthogonalised basis."""
    x0, y0 = x - x.mean(0), y - y.mean(0)
    s = x0.T @ y0
    r_all, t_all, q_all, v_all = [], [], [], []
    for _ in range(k):
        evals, evecs = np.linalg.eigh(s.T @ s)
        q = evecs[:, -1]  # dominant eigenvector of S'S
        r = s @ q
        t = x0 @ r
        t -= t.mean()
        norm_t = np.linalg.norm(t)
        t, r = t / norm_t, r / norm_t
        p = x0.T @ t
        q = y0.T @ t
        v = p.copy()
        for v_old in v_all:  # Gram-Schmidt against the previous loadings
            v -= v_old * (v_old @ p)
        v /= np.linalg.norm(v)
        s = s - np.outer(v, v @ s)
        r_all.append(r), t_all.append(t), q_all.append(q), v_all.append(v)
    coef = np.array(r_all).T @ np.array(q_all)
    return coef, y.mean(0) - x.mean(0) @ coef


@pytest.mark.parametrize(("n", "p", "q", "k"), [(30, 12, 4, 3), (25, 60, 5, 6), (40, 8, 1, 4)])
def test_simpls_equals_the_published_algorithm(n, p, q, k):
    from brainnet.pls import simpls

    x, y = _data(n, p, q, seed=p)
    coef, icpt = simpls(x, y, k)
    ref_coef, ref_icpt = _de_jong_simpls(x, y, k)
    scale = np.abs(x @ ref_coef).max()
    np.testing.assert_allclose(x @ coef + icpt, x @ ref_coef + ref_icpt, atol=1e-9 * scale)


def test_simpls_equals_octave_plsregress(tmp_path):
    import shutil
    import subprocess

    from brainnet.pls import simpls

    if shutil.which("octave") is None:
        pytest.skip("GNU Octave is not installed (Debian: apt-get install octave octave-statistics)")
    x, y = _data(30, 15, 4, seed=3)
    np.savetxt(tmp_path / "x.txt", x, fmt="%.17g")
    np.savetxt(tmp_path / "y.txt", y, fmt="%.17g")
    script = (
        "pkg load statistics; X = load('x.txt'); Y = load('y.txt');"
        "[xl, yl, xs, ys, coef, fitted] = plsregress(X, Y, 5);"
        "save('-ascii', '-double', 'coef.txt', 'coef'); save('-ascii', '-double', 'fitted.txt', 'fitted');"
    )
    run = subprocess.run(["octave", "--no-gui", "--norc", "--quiet", "--eval", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0 and "statistics" in run.stderr and "package" in run.stderr:
        pytest.skip("Octave's statistics package is not installed (Debian: octave-statistics)")
    assert run.returncode == 0, run.stderr[-2000:]
    coef, icpt = simpls(x, y, 5)
    # plsregress returns B = R Q' (no intercept row); fitted = T Q' + mean(Y)
    np.testing.assert_allclose(coef, np.loadtxt(tmp_path / "coef.txt"), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(x @ coef + icpt, np.loadtxt(tmp_path / "fitted.txt"), rtol=1e-8, atol=1e-10)
    # NIPALS (scikit-learn, decode's default) is a different algorithm: it agrees only on component 1.
    nipals = PLSRegression(5, scale=False).fit(x, y).predict(x)
    assert np.abs(nipals - (x @ coef + icpt)).max() > 1e-6


def test_cross_validated_simpls_equals_refitting_simpls_per_fold_and_permutation():
    from brainnet.pls import simpls

    rng = np.random.default_rng(0)
    n_stim, n_sub = 10, 4
    x = rng.normal(size=(n_stim * n_sub, 70))
    groups = np.repeat(np.arange(n_sub), n_stim)
    rows = np.tile(np.arange(n_stim), n_sub)
    f = rng.normal(size=(n_stim, 5))
    cv = CrossValidatedPLS(x, groups, 3, algorithm="simpls")
    perms = permutation_indices(n_stim, 0, 4, seed=1)
    got = cv.predict_permuted(f, rows, perms)
    for b, perm in enumerate(perms):
        y = f[perm][rows]
        ref = np.empty_like(y)
        for g in range(n_sub):
            test = groups == g
            coef, icpt = simpls(x[~test], y[~test], 3)
            ref[test] = x[test] @ coef + icpt
        np.testing.assert_allclose(got[b], ref, atol=1e-10)
        np.testing.assert_allclose(cv.predict(y), ref, atol=1e-10)
    with pytest.raises(BrainnetError, match=r"^--algorithm simpls centres only"):
        CrossValidatedPLS(x, groups, 3, algorithm="simpls", scale=True)
    with pytest.raises(BrainnetError, match=r"^--algorithm pca: unknown PLS algorithm; use nipals or simpls$"):
        CrossValidatedPLS(x, groups, 3, algorithm="pca")


def test_decode_with_simpls_scores_literal_simpls_refits():
    from brainnet.decoding import unit_decoding
    from brainnet.pls import simpls

    rng = np.random.default_rng(2)
    n_stim, n_sub = 14, 4
    feats = rng.normal(size=(n_stim, 3))
    ids = [f"s{i}" for i in range(n_stim)]
    patterns = [feats @ rng.normal(size=(3, 30)) + rng.normal(size=(n_stim, 30)) for _ in range(n_sub)]
    res = unit_decoding(patterns, [ids] * n_sub, feats, ids, n_components=2, algorithm="simpls",
                        n_permutations=5, n_bootstrap=0, confusion=False)
    x = np.concatenate(patterns)
    y = np.tile(feats, (n_sub, 1))
    groups = np.repeat(np.arange(n_sub), n_stim)
    r = []
    for g in range(n_sub):
        test = groups == g
        coef, icpt = simpls(x[~test], y[~test], 2)
        r.append(pearson_columns(x[test] @ coef + icpt, y[test]).mean())
    assert res.summary["mean_r"] == pytest.approx(np.mean(r), abs=1e-10)
    assert res.summary["algorithm"] == "simpls"
