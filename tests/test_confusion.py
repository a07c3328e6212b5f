"""Confusion analysis and discriminable clusters on planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score, confusion_matrix, precision_recall_fscore_support

from brainnet.confusion import (
    _all_cuts,
    confusion_analysis,
    decode_units,
    decoding_metrics,
    discriminable_clusters,
    unit_confusion,
)
from brainnet.errors import BrainnetError
from brainnet.results import ResultDir, make_provenance

LABELS = [f"unit{i:02d}" for i in range(20)]


def _blocks_study(seed, noise=2.0, n_stimuli=80, n_subjects=12):
    """4 blocks of 5 units; every predicted output of a block follows the block's first unit."""
    rng = np.random.default_rng(seed)
    blocks = np.repeat(np.arange(4), 5)
    factors = rng.standard_normal((n_stimuli, 4))
    observed = factors[:, blocks] + 0.7 * rng.standard_normal((n_stimuli, 20))
    prototype = 5 * blocks
    predicted = [
        observed[:, prototype] + noise * rng.standard_normal((n_stimuli, 20))
        for _ in range(n_subjects)
    ]
    return predicted, observed, blocks


def test_unit_confusion_matches_corrcoef():
    rng = np.random.default_rng(0)
    pred, obs = rng.standard_normal((30, 6)), rng.standard_normal((30, 6))
    expected = np.corrcoef(pred.T, obs.T)[:6, 6:]
    np.testing.assert_allclose(unit_confusion(pred, obs), expected, atol=1e-12)


def test_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    n_units = 8
    decoded = rng.integers(0, n_units, size=(5, n_units))
    decoded[:, :3] = np.arange(3)  # some correct decodings
    metrics = decoding_metrics(decoded)
    truth = np.arange(n_units)
    for s, dec in enumerate(decoded):
        precision, recall, _, _ = precision_recall_fscore_support(
            truth, dec, labels=truth, zero_division=np.nan
        )
        np.testing.assert_allclose(metrics["sensitivity"][s], recall)
        np.testing.assert_allclose(metrics["ppv"][s], precision)
        cm = confusion_matrix(truth, dec, labels=truth)
        fp = cm.sum(axis=0) - np.diag(cm)
        tn = cm.sum() - cm.sum(axis=0) - cm.sum(axis=1) + np.diag(cm)
        np.testing.assert_allclose(metrics["specificity"][s], tn / (tn + fp))


def test_all_cuts_match_scipy_fcluster():
    rng = np.random.default_rng(2)
    for _ in range(5):
        tree = linkage(rng.standard_normal((12, 3)), method="ward")
        cuts = _all_cuts(tree, 12)
        for k in range(2, 13):
            assert len(np.unique(cuts[:, k - 2])) == k
            assert adjusted_rand_score(cuts[:, k - 2], fcluster(tree, k, "maxclust")) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_blocks_are_recovered(seed):
    predicted, observed, blocks = _blocks_study(seed)
    solution = discriminable_clusters(decode_units(predicted, observed))
    assert solution.k == 4
    assert solution.n_clusters == 4
    assert adjusted_rand_score(solution.labels, blocks) == 1.0


def test_distinct_units_give_one_cluster_each():
    rng = np.random.default_rng(3)
    observed = rng.standard_normal((100, 20))
    predicted = [observed + 1.5 * rng.standard_normal((100, 20)) for _ in range(10)]
    result = confusion_analysis(predicted, observed, LABELS, n_bootstrap=50, n_permutations=50)
    assert result.summary["n_clusters"] == 20
    assert result.summary["sensitivity"] > 0.9
    assert result.summary["cluster_p"] == pytest.approx(1 / 51)
    lo, hi = result.summary["cluster_ci"]
    assert lo <= 20 <= hi


def test_analysis_on_planted_blocks_summary_and_confusion():
    predicted, observed, blocks = _blocks_study(4)
    result = confusion_analysis(
        predicted, observed, LABELS, n_bootstrap=60, n_permutations=60, seed=1
    )
    s = result.summary
    assert s["n_clusters"] == 4 and s["cluster_k"] == 4
    # 4 clusters is only modestly above the ~3-4 that clustering finds in pure noise
    # (the clusters are chosen on the same decodings they are tested on), so no p bound here
    assert 0 < s["cluster_p"] <= 1
    lo, hi = s["cluster_ci"]
    assert lo <= 4 <= hi
    # only prototypes are decoded correctly: sensitivity ~ 1/5, chance 1/20
    assert 0.1 < s["sensitivity"] < 0.3
    assert s["chance"] == pytest.approx(0.05)
    conf = result.confusion
    np.testing.assert_allclose(conf.to_numpy().sum(axis=1), 1.0)
    assert list(conf.index) == LABELS and list(conf.columns) == LABELS
    within = np.array([conf.to_numpy()[i, blocks == blocks[i]].sum() for i in range(20)])
    assert within.mean() > 0.9
    assert adjusted_rand_score(result.clusters["cluster"], blocks) == 1.0
    assert result.per_subject.shape == (12, 20, 20)


def test_null_permutation_p_is_not_small(science_scale):
    n_datasets = 40 if science_scale == "full" else 15
    pvals, counts = [], []
    for seed in range(n_datasets):
        rng = np.random.default_rng(1000 + seed)
        observed = rng.standard_normal((60, 20))
        predicted = [rng.standard_normal((60, 20)) for _ in range(12)]
        result = confusion_analysis(
            predicted, observed, LABELS, n_bootstrap=0, n_permutations=49, seed=seed
        )
        pvals.append(result.summary["cluster_p"])
        counts.append(result.summary["n_clusters"])
    pvals = np.array(pvals)
    # under the null p is uniform on {1/50, ..., 1}: few small values, mean near 1/2
    assert np.mean(pvals < 0.05) <= 0.2
    assert 0.3 < pvals.mean() < 0.75
    assert np.mean(counts) < 8


def test_summary_is_mean_and_sd_across_subjects():
    predicted, observed, _ = _blocks_study(5, noise=3.0)
    result = confusion_analysis(predicted, observed, LABELS, n_bootstrap=0, n_permutations=0)
    per_subject_sens = (result.decoded == np.arange(20)).mean(axis=1)
    assert result.summary["sensitivity"] == pytest.approx(per_subject_sens.mean())
    assert result.summary["sensitivity_sd"] == pytest.approx(per_subject_sens.std(ddof=1))
    assert result.summary["cluster_p"] is None
    pooled = result.per_category.set_index("unit")["sensitivity"]
    np.testing.assert_allclose(pooled.to_numpy(), np.diag(result.confusion.to_numpy()))


def test_reproducible_with_seed():
    predicted, observed, _ = _blocks_study(6, noise=3.0)
    a = confusion_analysis(predicted, observed, LABELS, n_bootstrap=20, n_permutations=20, seed=3)
    b = confusion_analysis(predicted, observed, LABELS, n_bootstrap=20, n_permutations=20, seed=3)
    np.testing.assert_array_equal(a.null, b.null)
    np.testing.assert_array_equal(a.bootstrap, b.bootstrap)


def test_write_through_resultdir(tmp_path):
    predicted, observed, _ = _blocks_study(7)
    result = confusion_analysis(predicted, observed, LABELS, n_bootstrap=5, n_permutations=5)
    rd = ResultDir(tmp_path / "decode-fc8", make_provenance(seed=0, parameters={"x": 1}))
    result.write(rd)
    conf = pd.read_csv(tmp_path / "decode-fc8" / "confusion.tsv", sep="\t")
    assert list(conf.columns) == ["predicted_unit", *LABELS]
    clusters = pd.read_csv(tmp_path / "decode-fc8" / "clusters.tsv", sep="\t")
    assert list(clusters.columns[:2]) == ["unit", "cluster"]
    with np.load(tmp_path / "decode-fc8" / "confusion.npz") as data:
        assert data["per_subject"].shape == (12, 20, 20)


def test_bad_input_messages():
    rng = np.random.default_rng(0)
    with pytest.raises(
        BrainnetError, match=r"predicted has shape \(10, 4\) and observed \(10, 5\)"
    ):
        unit_confusion(rng.standard_normal((10, 4)), rng.standard_normal((10, 5)))
    obs = rng.standard_normal((10, 4))
    with pytest.raises(
        BrainnetError, match="labels has 3 names for 4 units; give one name per unit"
    ):
        confusion_analysis([obs, obs], obs, ["a", "b", "c"], n_bootstrap=0, n_permutations=0)
    with pytest.raises(BrainnetError, match="observed has 3 arrays for 2 subjects"):
        confusion_analysis([obs, obs], [obs] * 3, list("abcd"), n_bootstrap=0, n_permutations=0)
    with pytest.raises(BrainnetError, match="it needs at least 2"):
        confusion_analysis([obs], obs, list("abcd"), n_bootstrap=0, n_permutations=0)


def test_heldout_clusters_find_planted_blocks_and_are_calibrated_on_noise(science_scale):
    """Issue 17: clusters chosen on half of the subjects, tested on the others by the engine."""
    from brainnet.confusion import heldout_clusters

    predicted, observed, blocks = _blocks_study(4)
    decoded = decode_units(predicted, observed)
    found = heldout_clusters(decoded, n_permutations=99, seed=1)
    assert found["n_clusters"] == 4
    assert adjusted_rand_score(found["labels"], blocks) == 1.0
    assert set(found["train_subjects"]).isdisjoint(found["test_subjects"])
    # End to end through confusion_analysis, beside the paper's same-data count.
    s = confusion_analysis(predicted, observed, LABELS, n_bootstrap=0, n_permutations=99, seed=1).summary
    assert s["n_clusters_heldout"] == 4 and s["n_clusters"] == 4
    # Pure noise: the same-data method always finds >= 2 clusters; held-out tests reject at the nominal rate.
    n_sim = 300 if science_scale == "full" else 100
    rng = np.random.default_rng(5)
    p, counts, same_data = [], [], []
    for sim in range(n_sim):
        noise = rng.integers(0, 20, size=(12, 20))
        res = heldout_clusters(noise, n_permutations=99, seed=sim)
        p.extend(res["p"])
        counts.append(res["n_clusters"])
        same_data.append(discriminable_clusters(noise).n_clusters)
    rate = np.mean(np.array(p) <= 0.05)
    assert 0.02 <= rate <= 0.08, rate
    assert np.mean(np.array(counts) > 0) <= 0.08
    assert np.mean(same_data) > 1.5 > np.mean(counts)


def test_holm_adjusted_p_values_by_hand():
    from brainnet.stats import holm

    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    # Holm by hand: sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1, running maximum.
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, np.nan, 0.5])
