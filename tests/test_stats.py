import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import gammaln

from brainnet.stats import cohens_d, fdr_bh, pearson_columns, standard_error, zscore_columns


def test_pearson_columns_matches_scipy_and_flags_constant_columns():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    b[:, 3] = 1.0
    r = pearson_columns(a, b)
    for j in range(3):
        assert np.isclose(r[j], sps.pearsonr(a[:, j], b[:, j])[0])
    assert np.isnan(r[3])


def test_zscore_columns_handles_constant():
    x = np.column_stack([np.arange(5.0), np.ones(5)])
    z = zscore_columns(x)
    np.testing.assert_allclose(z[:, 0], sps.zscore(x[:, 0]))
    np.testing.assert_array_equal(z[:, 1], 0)


def test_fdr_bh_matches_scipy():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200) ** 2
    np.testing.assert_allclose(fdr_bh(p), sps.false_discovery_control(p))
    with_nan = np.array([0.01, np.nan, 0.04])
    q = fdr_bh(with_nan)
    assert np.isnan(q[1]) and np.allclose(q[[0, 2]], sps.false_discovery_control([0.01, 0.04]))


def test_effect_sizes():
    x = np.array([0.2, 0.3, 0.25, 0.35])
    assert np.isclose(cohens_d(x), x.mean() / x.std(ddof=1))
    assert np.isclose(standard_error(x), sps.sem(x))


def test_spearman_brown_steps_up_split_half_correlation():
    from brainnet.stats import spearman_brown

    # Two halves with reliability r each -> full length reliability 2r/(1+r).
    np.testing.assert_allclose(spearman_brown(np.array([0.0, 0.5, 1.0])), [0.0, 2 / 3, 1.0])
    # Stepping up by k then by 1/k is the identity.
    r = np.linspace(0.05, 0.95, 7)
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 3.0), 1 / 3.0), r)
    assert np.isnan(spearman_brown(np.nan))


def test_paper_d_candidates_agree_with_direct_formulas_and_none_gives_the_published_3():
    from brainnet.stats import paper_d_candidates

    rng = np.random.default_rng(0)
    x = 0.28 + 0.07 * rng.standard_normal(18)
    got = paper_d_candidates(x.mean(), sps.sem(x), x.size)
    t = sps.ttest_1samp(x, 0).statistic
    assert got["mean/sd_ddof1"] == pytest.approx(cohens_d(x))
    assert got["t/sqrt(n)"] == pytest.approx(t / np.sqrt(x.size))
    assert got["mean/sd_ddof0"] == pytest.approx(x.mean() / x.std(ddof=0))
    # Hedges' exact small-sample factor Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)), m = n-1, vs its approximation.
    m = x.size - 1
    exact_j = np.exp(gammaln(m / 2) - gammaln((m - 1) / 2)) / np.sqrt(m / 2)
    assert got["hedges_g"] == pytest.approx(cohens_d(x) * exact_j, rel=2e-3)
    # The paper's numbers: mean r .2819 +/- .0163 SE over 18 subjects, published d = 3.00.
    paper = paper_d_candidates(0.2819, 0.0163, 18)
    assert paper["mean/sd_ddof1"] == pytest.approx(4.076, abs=1e-3)
    assert all(abs(v - 3.00) > 0.5 for v in paper.values()), paper


def test_null_effect_is_distance_from_the_null_in_null_sds():
    from brainnet.stats import null_effect

    null = np.array([0.1, 0.2, 0.3, np.nan])
    got = null_effect(0.5, null)
    assert got["null_mean"] == pytest.approx(0.2) and got["null_sd"] == pytest.approx(0.1)
    assert got["effect"] == pytest.approx(3.0)
    assert null_effect(0.5, [0.1]) == {"null_mean": None, "null_sd": None, "effect": None}
