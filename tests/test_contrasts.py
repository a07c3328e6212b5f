"""Paired comparisons between regions and between layers (brainnet.contrasts).

Two tests per pair: the side-swap (paired sign-flip) test over subjects, the
headline ``p``, and the stimulus relabelling test, ``p_relabel``. Each is
checked against a naive reference, calibrated on null studies (no signal;
equal signal on both sides), and shown to find a planted difference.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from brainnet.contrasts import (
    COLUMNS,
    contrast_decoding,
    contrast_encoding,
    contrast_rsa,
    contrast_table,
    paired_contrast_test,
    side_swap_table,
)
from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.permutation import (
    exact_sign_flips,
    permutation_indices,
    sign_flip_indices,
    sign_flip_test,
)


def _correlation_side(x: np.ndarray, ys: list[np.ndarray]):
    """Batched statistic: per subject, the mean over voxels of r(x[perm], y_s); x (n,), y_s (n, v)."""
    xs = (x - x.mean()) / x.std()
    zs = [(y - y.mean(axis=0)) / y.std(axis=0) for y in ys]

    def statistic(perms: np.ndarray) -> np.ndarray:
        return np.stack([(xs[perms] @ z / x.size).mean(axis=1) for z in zs], axis=1)

    return statistic


def _group_sides(rng, n_subjects, n, v, slopes):
    """One stimulus variable; every subject and side: ``slope * x`` plus independent noise in v voxels."""
    x = rng.standard_normal(n)
    return x, {f"s{i}": _correlation_side(x, [b * x[:, None] + rng.standard_normal((n, v))
                                              for _ in range(n_subjects)])
               for i, b in enumerate(slopes)}


def _naive_t(d: np.ndarray) -> float:
    """Paired t of the differences d (n,), by scipy."""
    from scipy.stats import ttest_1samp

    return float(ttest_1samp(d, 0.0).statistic)


# -- the engine's sign flips -----------------------------------------------------


def test_exact_flips_are_every_sign_pattern_but_the_identity():
    flips = exact_sign_flips(5, 0, 2**5 - 1)
    patterns = {tuple(row) for row in flips.astype(int)}
    assert len(patterns) == 31 and (1,) * 5 not in patterns
    assert patterns | {(1,) * 5} == set(itertools.product((-1, 1), repeat=5))


def test_random_flips_depend_only_on_seed_and_index():
    whole = sign_flip_indices(9, 0, 50, seed=3)
    parts = np.concatenate([sign_flip_indices(9, a, a + 7, seed=3) for a in range(0, 50, 7)])[:50]
    assert np.array_equal(whole, parts) and set(np.unique(whole)) == {-1.0, 1.0}
    assert not np.array_equal(whole, sign_flip_indices(9, 0, 50, seed=4))
    signs = sign_flip_indices(12, 0, 4000, seed=0)
    assert abs(signs.mean()) < 0.03  # each sign about half the time


def test_sign_flip_test_is_exact_enumeration_below_n_flips_and_agrees_with_a_loop():
    """p equals #{flips, identity included, with |mean| >= observed} / 2**n, counted by hand."""
    d = np.array([0.9, 0.3, -0.2, 0.5, 1.1, 0.05, 0.4])
    result = sign_flip_test(lambda s: (s * d).mean(axis=1), d.size, n_flips=200, alternative="two-sided",
                            batch_size=5)
    assert result.null.shape == (2**7 - 1,)
    every = [abs(np.mean(np.array(signs) * d)) for signs in itertools.product((-1, 1), repeat=7)]
    expected = np.mean(np.array(every) >= abs(d.mean()) - 1e-15)
    assert result.p_value == pytest.approx(expected, abs=1e-12)
    monte_carlo = sign_flip_test(lambda s: (s * d).mean(axis=1), d.size, n_flips=100, seed=5)
    assert monte_carlo.null.shape == (100,)  # 2**7 - 1 > 100 flips: random, from (seed, k)
    np.testing.assert_array_equal(monte_carlo.null, (sign_flip_indices(7, 0, 100, 5) * d).mean(axis=1))


# -- agreement with naive references ---------------------------------------------


def test_side_swap_agrees_with_an_explicit_loop_over_all_sign_flips():
    """Exact test: every one of the 2**8 flips, t by scipy, p and max-|t| p_fwe and Holm counted by hand."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(8, 3)) + np.array([0.8, 0.0, 0.1])
    table, flip_null, exact = side_swap_table(values, ["a", "b", "c"])
    assert exact and flip_null.shape == (255, 3)
    pairs = [(0, 1), (0, 2), (1, 2)]
    d = np.stack([values[:, i] - values[:, j] for i, j in pairs], axis=1)
    observed = np.array([_naive_t(d[:, m]) for m in range(3)])
    every = np.array([[_naive_t(np.array(signs) * d[:, m]) for m in range(3)]
                      for signs in itertools.product((-1, 1), repeat=8)])
    p = [np.mean(np.abs(every[:, m]) >= abs(observed[m]) * (1 - 1e-12)) for m in range(3)]
    p_fwe = [np.mean(np.abs(every).max(axis=1) >= abs(observed[m]) * (1 - 1e-12)) for m in range(3)]
    assert list(table["pair"]) == ["a - b", "a - c", "b - c"]
    np.testing.assert_allclose(table["t"], observed, rtol=1e-10)
    np.testing.assert_allclose(table["difference"], d.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["sd_difference"], d.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(table["p"], p, rtol=1e-12)
    np.testing.assert_allclose(table["p_fwe"], p_fwe, rtol=1e-12)
    order = np.argsort(p)
    holm = np.minimum(np.maximum.accumulate(np.array(p)[order] * (3 - np.arange(3))), 1)
    np.testing.assert_allclose(table["p_holm"].to_numpy()[order], holm, rtol=1e-12)
    assert (table["n_subjects"] == 8).all()


def test_side_swap_monte_carlo_agrees_with_a_loop_over_the_engines_flips():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(15, 2)) + np.array([0.5, 0.0])
    table, flip_null, exact = side_swap_table(values, ["a", "b"], n_flips=300, seed=9, alternative="greater")
    assert not exact and flip_null.shape == (300, 1)
    d = values[:, 0] - values[:, 1]
    null = np.array([_naive_t(signs * d) for signs in sign_flip_indices(15, 0, 300, 9)])
    np.testing.assert_allclose(flip_null[:, 0], null, rtol=1e-10)
    t = _naive_t(d)
    assert table["p"].iloc[0] == pytest.approx((1 + np.sum(null >= t * (1 - 1e-12))) / 301, abs=1e-12)


def test_relabelling_columns_agree_with_a_naive_loop_over_permutations():
    """Each relabelling recomputed from scratch (np.corrcoef), p-values counted by hand."""
    rng = np.random.default_rng(0)
    n, v, n_perm, seed = 7, 3, 40, 11
    x = rng.standard_normal(n)
    ys = {name: b * x[:, None] + rng.standard_normal((n, v)) for name, b in (("a", 1.0), ("b", 0.2), ("c", 0.0))}
    with pytest.warns(BrainnetNotice, match="1 subject"):
        result = paired_contrast_test({k: _correlation_side(x, [y]) for k, y in ys.items()}, n,
                                      n_permutations=n_perm, seed=seed, batch_size=3)

    def naive(perm):
        return [np.mean([np.corrcoef(x[perm], y[:, j])[0, 1] for j in range(v)]) for y in ys.values()]

    observed = np.array(naive(np.arange(n)))
    null = np.array([naive(permutation_indices(n, k, k + 1, seed)[0]) for k in range(n_perm)])
    np.testing.assert_allclose(result.observed, observed, atol=1e-12)
    np.testing.assert_allclose(result.null, null, atol=1e-12)
    pairs = [(0, 1), (0, 2), (1, 2)]
    standard, standard_null = [], []
    for i, j in pairs:
        d, dn = observed[i] - observed[j], null[:, i] - null[:, j]
        mean, sd = dn.mean(), dn.std(ddof=1)
        standard.append((d - mean) / sd)
        standard_null.append((dn - mean) / sd)
    standard, standard_null = np.array(standard), np.array(standard_null).T
    p = [(1 + sum(abs(standard_null[k, m]) >= abs(standard[m]) for k in range(n_perm))) / (n_perm + 1)
         for m in range(3)]
    p_fwe = [(1 + sum(max(abs(standard_null[k])) >= abs(standard[m]) for k in range(n_perm))) / (n_perm + 1)
             for m in range(3)]
    table = result.table
    assert list(table.columns) == list(COLUMNS)
    np.testing.assert_allclose(table["relabel_effect_vs_null"], standard, rtol=1e-9)
    np.testing.assert_allclose(table["p_relabel"], p, rtol=1e-12)
    np.testing.assert_allclose(table["p_relabel_fwe"], p_fwe, rtol=1e-12)
    order = np.argsort(p)  # Holm by hand
    holm = np.maximum.accumulate(np.array(p)[order] * (3 - np.arange(3)))
    np.testing.assert_allclose(table["p_relabel_holm"].to_numpy()[order], np.minimum(holm, 1), rtol=1e-12)


def test_one_subject_has_only_the_relabelling_test():
    rng = np.random.default_rng(2)
    x, sides = _group_sides(rng, 1, 12, 3, (1.0, 0.0))
    with pytest.warns(BrainnetNotice, match="1 subject: the side-swap test"):
        result = paired_contrast_test(sides, 12, n_permutations=19)
    row = result.table.iloc[0]
    assert np.isnan(row["p"]) and np.isnan(row["t"]) and np.isfinite(row["p_relabel"])
    assert result.summary["n_subjects"] == 1 and result.flip_null.shape == (0, 1)


def test_too_few_subjects_for_p_below_alpha_is_said():
    x, sides = _group_sides(np.random.default_rng(3), 4, 12, 3, (1.0, 0.0))
    with pytest.warns(BrainnetNotice, match=r"4 subjects: the smallest side-swap p is 0.125 \(16 sign flips\)"):
        result = paired_contrast_test(sides, 12, n_permutations=0)
    assert result.table["p"].iloc[0] >= 0.125 and np.isnan(result.table["p_relabel"].iloc[0])


def test_one_sided_alternative_and_chosen_pairs():
    observed = np.array([0.5, 0.1, 0.3])
    null = np.random.default_rng(1).normal(0, 0.1, (99, 3))
    greater = contrast_table(observed, null, ["a", "b", "c"], pairs=[("a", "b")], alternative="greater")
    less = contrast_table(observed, null, ["a", "b", "c"], pairs=[("a", "b")], alternative="less")
    assert list(greater["pair"]) == ["a - b"]
    assert greater["p"].iloc[0] < 0.05 < less["p"].iloc[0]
    values = np.random.default_rng(2).normal(0, 0.3, size=(9, 3)) + np.array([1.0, 0.0, 0.0])
    up, _, _ = side_swap_table(values, ["a", "b", "c"], pairs=[("a", "b")], alternative="greater")
    down, _, _ = side_swap_table(values, ["a", "b", "c"], pairs=[("a", "b")], alternative="less")
    assert list(up["pair"]) == ["a - b"] and up["p"].iloc[0] < 0.05 < down["p"].iloc[0]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: paired_contrast_test({"a": lambda p: p[:, 0]}, 4),
     "got 1 side(s) to compare; give at least two regions or two layers"),
    (lambda: contrast_table(np.zeros(2), np.zeros((5, 2)), ["a", "b"], pairs=[("a", "a")]),
     "pairs: ('a', 'a') is not two different sides; choose from a, b"),
    (lambda: contrast_table(np.zeros(2), np.zeros((5, 3)), ["a", "b"]),
     "observed (2,) and null (5, 3) do not match 2 sides; give observed (n_sides,) and null (n_permutations, n_sides)"),
    (lambda: contrast_table(np.zeros(2), np.zeros((5, 2)), ["a", "b"], alternative="up"),
     "alternative 'up' is unknown; use two-sided, greater or less"),
    (lambda: side_swap_table(np.zeros((5, 3)), ["a", "b"]),
     "per_subject has shape (5, 3); give (n_subjects, n_sides=2)"),
    (lambda: paired_contrast_test({"a": lambda p: p[:, :2] * 1.0, "b": lambda p: p[:, :3] * 1.0}, 4),
     "the sides give [2, 3] values per relabelling; give each side the same subjects"),
    (lambda: paired_contrast_test({"a": lambda p: p[:, 0] * 1.0, "b": lambda p: p[:, 0] * 1.0}, 4,
                                  per_subject={"a": np.zeros(3), "b": np.zeros(4)}),
     "per_subject: the sides have [3, 4] subjects; give each side the same subjects, in the same order"),
    (lambda: sign_flip_test(lambda s: s.sum(axis=1), 30, exact=True),
     "exact: 2**30 sign flips are too many to enumerate; pass exact=False"),
])
def test_bad_arguments_are_refused_in_one_line(call, message):
    with pytest.raises(BrainnetError) as info:
        call()
    assert str(info.value) == message


# -- calibration -----------------------------------------------------------------


def _side_swap_rates(slopes, n_studies, n_subjects=10, n=20, v=5):
    p, fwe, holm = [], [], []
    for seed in range(n_studies):
        _, sides = _group_sides(np.random.default_rng(seed), n_subjects, n, v, slopes)
        table = paired_contrast_test(sides, n, n_permutations=0, n_flips=999, seed=seed).table
        p.append(table["p"].iloc[0] <= 0.05)
        fwe.append(bool((table["p_fwe"] <= 0.05).any()))
        holm.append(bool((table["p_holm"] <= 0.05).any()))
    return np.mean(p), np.mean(fwe), np.mean(holm)


@pytest.mark.parametrize("slope", [0.0, 0.5], ids=["no-signal", "equal-signal"])
def test_side_swap_rejects_at_alpha_with_no_or_equal_signal_on_every_side(slope, science_scale):
    """3 sides, 10 subjects, 999 random flips: p and p_fwe (over the 3 pairs) reject in 2-8 % of studies.

    400 studies: a calibrated test lands in 2-8 % with probability > .999.
    """
    n_studies = 1000 if science_scale == "full" else 400
    p, fwe, holm = _side_swap_rates((slope, slope, slope), n_studies)
    assert 0.02 <= p <= 0.08, p
    assert 0.02 <= fwe <= 0.08, fwe
    assert holm <= 0.08, holm


def test_side_swap_exact_test_rejects_at_alpha_with_equal_signal():
    """7 subjects: all 128 flips enumerated; with equal signal, p <= .05 in 2-8 % of 400 studies."""
    rates = []
    for seed in range(400):
        _, sides = _group_sides(np.random.default_rng(10_000 + seed), 7, 16, 4, (0.7, 0.7))
        result = paired_contrast_test(sides, 16, n_permutations=0)
        assert result.summary["exact"] and result.summary["n_flips"] == 127
        rates.append(result.table["p"].iloc[0] <= 0.05)
    assert 0.02 <= np.mean(rates) <= 0.08, np.mean(rates)


def _relabel_rates(slopes, n_studies, n_subjects=1, n=20, v=5, n_perm=99):
    p, fwe, holm, effect = [], [], [], []
    for seed in range(n_studies):
        _, sides = _group_sides(np.random.default_rng(seed), n_subjects, n, v, slopes)
        with pytest.warns(BrainnetNotice) if n_subjects == 1 else _nothing():
            table = paired_contrast_test(sides, n, n_permutations=n_perm, seed=seed).table
        p.append(table["p_relabel"].iloc[0] < 0.05)
        fwe.append(bool((table["p_relabel_fwe"] < 0.05).any()))
        holm.append(bool((table["p_relabel_holm"] < 0.05).any()))
        effect.append(table["relabel_effect_vs_null"].iloc[0])
    return np.mean(p), np.mean(fwe), np.mean(holm), np.array(effect)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_relabelling_test_rejects_at_alpha_with_no_signal_on_any_side(science_scale):
    """The sharp null (stimulus labels carry nothing on any side): p_relabel and its FWE reject in 2-8 %."""
    n_studies = 600 if science_scale == "full" else 250
    p, fwe, holm, effect = _relabel_rates((0.0, 0.0, 0.0), n_studies)
    assert 0.02 <= p <= 0.08, p
    assert 0.02 <= fwe <= 0.08, fwe  # family-wise over the 3 pairs
    assert holm <= 0.08, holm
    assert abs(effect.mean()) < 0.2 and 0.8 < effect.std() < 1.2, (effect.mean(), effect.std())


def test_relabelling_test_with_equal_signal_is_conservative(science_scale):
    """Equal non-zero signal is not the relabelling null: it rejects less than alpha there (measured, not exact)."""
    n_studies = 600 if science_scale == "full" else 200
    p, fwe, holm, _ = _relabel_rates((0.5, 0.5, 0.5), n_studies)
    assert p <= 0.05 and fwe <= 0.05 and holm <= 0.05, (p, fwe, holm)


@pytest.mark.slow
def test_both_tests_with_equal_signal_on_two_sides_of_other_sizes():
    p_swap, fwe_swap, _ = _side_swap_rates((0.3, 0.3), 2000, n_subjects=14, n=30, v=8)
    assert 0.03 <= p_swap <= 0.07 and 0.03 <= fwe_swap <= 0.07, (p_swap, fwe_swap)
    p, fwe, _, _ = _relabel_rates((0.3, 0.3), 800, n=30, v=8)
    assert p <= 0.08 and fwe <= 0.08, (p, fwe)


def test_planted_difference_is_found_by_both_tests():
    swap, relabel = [], []
    for seed in range(20):
        _, sides = _group_sides(np.random.default_rng(seed), 10, 30, 5, (0.6, 0.3))
        row = paired_contrast_test(sides, 30, n_permutations=99, seed=seed).table.iloc[0]
        swap.append(row["p"] <= 0.05 and row["difference"] > 0)
        relabel.append(row["p_relabel"] <= 0.05 and row["relabel_difference"] > 0)
    assert np.mean(swap) >= 0.9 and np.mean(relabel) >= 0.9, (np.mean(swap), np.mean(relabel))


# -- decode's side-swap values: within-subject, calibrated ------------------------


def _decode_study(rng, n_subjects, n, q, v, slope_a, slope_b):
    """Units F (n, q); region r of every subject: slope_r * F W[:, perm_r] + noise (equal slopes: equal regions)."""
    from brainnet.contrasts import _within_subject_decoding

    f = rng.standard_normal((n, q))
    w = rng.standard_normal((q, v)) / np.sqrt(q)
    codes = [w[:, rng.permutation(v)], w[:, rng.permutation(v)]]  # one voxel code per region
    values = np.empty((n_subjects, 2))
    for s in range(n_subjects):
        for side, slope in enumerate((slope_a, slope_b)):
            x = slope * f @ codes[side] + rng.standard_normal((n, v))
            values[s, side] = _within_subject_decoding(x, f, 2, False, "nipals", 4, 0, None)
    return values


@pytest.mark.parametrize("slope", [0.0, 0.8], ids=["no-signal", "equal-signal"])
def test_decode_side_swap_rejects_at_alpha_with_no_or_equal_signal(slope):
    """8 subjects (all 256 flips), 400 studies: p <= .05 in 2-8 % (the held-out r of one group model would not be)."""
    rates = []
    for seed in range(400):
        values = _decode_study(np.random.default_rng(seed), 8, 20, 3, 10, slope, slope)
        table, _, _ = side_swap_table(values, ["a", "b"], n_flips=255)
        rates.append(table["p"].iloc[0] <= 0.05)
    assert 0.02 <= np.mean(rates) <= 0.08, np.mean(rates)


def test_decode_side_swap_finds_a_planted_difference():
    found = []
    for seed in range(10):
        values = _decode_study(np.random.default_rng(seed), 8, 20, 3, 10, 1.0, 0.2)
        table, _, _ = side_swap_table(values, ["a", "b"])
        found.append(table["p"].iloc[0] <= 0.05 and table["difference"].iloc[0] > 0)
    assert np.mean(found) >= 0.9, np.mean(found)


def test_within_subject_decoding_agrees_with_scikit_learn():
    """One subject's value: sklearn PLSRegression refitted on every fold, per-fold r by np.corrcoef."""
    from sklearn.cross_decomposition import PLSRegression

    from brainnet.contrasts import _within_subject_decoding
    from brainnet.encoding import make_folds

    rng = np.random.default_rng(4)
    f = rng.standard_normal((30, 4))
    x = f @ rng.standard_normal((4, 15)) + rng.standard_normal((30, 15))
    ours = _within_subject_decoding(x, f, 3, False, "nipals", 5, 2, None)
    per_fold = []
    for train, test in make_folds(30, 5, 2):
        pred = PLSRegression(3, scale=False).fit(x[train], f[train]).predict(x[test])
        per_fold.append([np.corrcoef(pred[:, u], f[test, u])[0, 1] for u in range(4)])
    assert ours == pytest.approx(np.mean(per_fold), abs=1e-6)


# -- study level ---------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Signal only in occipital voxels (the simulator's truth); inferotemporal carries none. 6 subjects."""
    from brainnet.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("contrast") / "study", n_subjects=6, n_stimuli=40, seed=3,
                          snr=1.0)


def test_decode_finds_the_region_with_signal_and_relabelling_is_decodes_own_test(planted):
    from brainnet.contrasts import _within_subject_decoding
    from brainnet.decoding import unit_decoding
    from brainnet.study import load_study

    result = contrast_decoding(planted, mask="occipital,inferotemporal", n_components=3, n_permutations=49, seed=2)
    row = result.table.iloc[0]
    assert row["pair"] == "occipital - inferotemporal"
    assert row["difference"] > 0 and row["p"] <= 0.05 and result.summary["exact"], row.to_dict()
    assert row["relabel_difference"] > 0 and row["relabel_effect_vs_null"] > 1.5 and row["p_relabel"] <= 0.05
    # the relabelling side is exactly decode's statistic and null under the same seed
    study = load_study(planted)
    data = study.load_subjects(None, mask="occipital")
    feats = study.features(layers=("fc8",))
    averaged = [d.averaged() for d in data]
    alone = unit_decoding([a[0] for a in averaged], [a[1] for a in averaged], feats.layer("fc8"),
                          feats.stimulus_ids, n_components=3, n_permutations=49, n_bootstrap=0,
                          confusion=False, seed=2)
    assert result.observed[0] == pytest.approx(alone.summary["mean_r"], abs=1e-12)
    np.testing.assert_allclose(result.null[:, 0], alone.null[:, 0], atol=1e-10)
    # the side-swap values are each subject's own decoding
    third = averaged[2]
    own = _within_subject_decoding(np.asarray(third[0], dtype=np.float64),
                                   feats.layer("fc8")[feats.rows_for(third[1])].astype(np.float64), 3, False,
                                   "nipals", 5, 2, None)
    assert result.per_subject[2, 0] == pytest.approx(own, abs=1e-12)


def test_group_encode_finds_the_region_with_signal_and_matches_encode(planted):
    from brainnet.encoding import encode_subject

    result = contrast_encoding(planted, mask="occipital,inferotemporal", n_permutations=19, seed=1)
    row = result.table.iloc[0]
    assert result.summary["n_subjects"] == 6 and result.summary["subjects"] == [f"{i:02d}" for i in range(1, 7)]
    assert row["difference"] > 0 and row["p"] <= 0.05 and row["p_relabel"] <= 0.05, row.to_dict()
    for s, label in ((0, "01"), (4, "05")):
        alone = encode_subject(planted, label, mask="inferotemporal", n_permutations=0, seed=1)
        assert result.per_subject[s, 1] == pytest.approx(alone.summary["mean_r"], abs=1e-6)  # batch shapes differ: see below


def test_encode_finds_the_region_with_signal_and_matches_encode(planted):
    from brainnet.encoding import encode_subject

    with pytest.warns(BrainnetNotice, match="1 subject: the side-swap test"):
        result = contrast_encoding(planted, "01", mask="occipital,inferotemporal", n_permutations=49, seed=1)
    row = result.table.iloc[0]
    assert row["relabel_difference"] > 0 and row["p_relabel"] <= 0.05, row.to_dict()
    assert np.isnan(row["p"]) and result.summary["subject"] == "01"
    alone = encode_subject(planted, "01", mask="inferotemporal", n_permutations=49, seed=1)
    # The same ridge solves in other batch shapes (sized for the larger side) and, on a busy machine,
    # other BLAS blockings: equal up to rounding amplified by the penalty grid's conditioning
    # (5e-9 seen under load), so 1e-6, four orders below the null's spread.
    assert result.observed[1] == pytest.approx(alone.summary["mean_r"], abs=1e-6)
    np.testing.assert_allclose(result.null[:, 1], np.nanmean(alone.null, axis=1), rtol=0, atol=1e-6)
    assert np.std(result.null[:, 1]) > 1e-3


def test_rsa_regions_and_layers_and_matches_rsa(planted):
    from brainnet.rsa import compare_rdms, compute_rdm, network_as_subject
    from brainnet.study import load_study

    regions = contrast_rsa(planted, mask="occipital,inferotemporal", n_permutations=99, seed=4)
    row = regions.table.iloc[0]
    assert row["difference"] > 0 and row["p"] <= 0.05 and row["p_relabel"] <= 0.05, row.to_dict()
    alone = network_as_subject(planted, mask="inferotemporal", n_permutations=99, n_bootstrap=0, seed=4)
    assert regions.observed[1] == pytest.approx(alone.layers["fc8"].network_human_r, abs=1e-12)
    np.testing.assert_allclose(regions.null[:, 1], alone.layers["fc8"].null, atol=1e-12)
    # per subject: the subject's RDM compared with the network's, by rsa.compare_rdms
    study = load_study(planted)
    feats = study.features(layers=("fc8",))
    ids = list(study.stimulus_ids)
    net = compute_rdm(feats.layer("fc8")[feats.rows_for(ids)], ids)
    humans = [compute_rdm(sd.patterns, sd.stimulus_ids, order=ids)
              for sd in study.load_subjects(None, mask="inferotemporal", shared=None)]
    np.testing.assert_allclose(regions.per_subject[:, 1], compare_rdms(net, humans, "spearman")[0], atol=1e-12)
    layers = contrast_rsa(planted, layers="fc6,fc7,fc8", n_permutations=49, seed=4)
    assert list(layers.table["pair"]) == ["fc6 - fc7", "fc6 - fc8", "fc7 - fc8"]
    table = layers.table
    assert (table["p_fwe"] >= table["p"]).all() and (table["p_holm"] >= table["p"]).all()
    assert (table["p_relabel_fwe"] >= table["p_relabel"]).all()
    assert len(repr(layers)) <= 1000


def test_cli_writes_the_comparison_table_with_provenance(planted, tmp_path, capsys):
    import pandas as pd

    from brainnet.cli import main

    out = tmp_path / "out"
    assert main(["contrast", "rsa", "--study", str(planted), "--mask", "occipital,inferotemporal",
                 "--permutations", "19", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "side-swap test over 6 subjects (all 64 sign flips (exact))" in printed
    assert "occipital - inferotemporal:" in printed and "p_FWE" in printed and "p_relabel" in printed
    folder = out / "group" / "contrast-rsa-occipital_vs_inferotemporal"
    table = pd.read_csv(folder / "contrasts.tsv", sep="\t")
    assert list(table.columns) == list(COLUMNS)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["analysis"] == "contrast-rsa" and summary["n_permutations"] == 19
    assert summary["n_flips"] == 63 and summary["exact"] is True
    assert summary["complete"] is True
    assert summary["provenance"]["parameters"]["sides"] == ["occipital", "inferotemporal"]
    assert summary["provenance"]["seed"] == 0 and summary["provenance"]["study"]
    with np.load(folder / "contrast_null.npz") as saved:
        assert saved["per_subject"].shape == (6, 2) and saved["flip_null"].shape == (63, 1)
    assert [m["name"] for m in summary["provenance"]["mask"]] == ["occipital", "inferotemporal"]
    # the report reads a region comparison (one mask per side in the provenance) and describes it
    assert main(["report", "--results", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert "Comparison of regions occipital and inferotemporal (rsa, 6 subjects)" in (out / "report.html").read_text()
    (out / "report.html").unlink()
    # Other parameters in the same folder: refused before any subject is loaded, the parameter named.
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    from brainnet.study import Study

    def no_loading(*args, **kwargs):
        raise AssertionError("subject data loaded before the folder was checked")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Study, "load_subjects", no_loading)
        assert main(["contrast", "rsa", "--study", str(planted), "--mask", "occipital,inferotemporal",
                     "--permutations", "29", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"brainnet contrast: error: {folder}: holds results made with other parameters, weights or "
                       "data; choose another --out folder or pass --overwrite"), err
    assert any(f"{folder}: n_permutations=19 there, 29 in this run" in line for line in err), err
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_cli_group_encode_side_swap_only(planted, tmp_path, capsys):
    from brainnet.cli import main

    out = tmp_path / "out"
    assert main(["contrast", "encode", "--study", str(planted), "--layers", "fc7,fc8", "--permutations", "0",
                 "--cv", "4", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "encode, side-swap test over 6 subjects" in printed and "relabelling test" not in printed
    summary = json.loads((out / "group" / "contrast-encode-fc7_vs_fc8" / "summary.json").read_text())
    assert summary["provenance"]["parameters"]["cv"] == 4 and summary["n_permutations"] == 0


def test_regions_and_layers_both_several_is_refused(planted):
    with pytest.raises(BrainnetError) as info:
        contrast_rsa(planted, mask="occipital,v1", layers="fc7,fc8")
    assert str(info.value) == ("--mask and --layers both list several; compare regions (one layer) or layers "
                               "(one region)")
