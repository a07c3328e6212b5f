"""Category decoding with the network as a subject: same classifier and folds,
placement in the human distribution, known answers, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainnet.errors import BrainnetError
from brainnet.network_subject import confusion_similarity, decode_network_subject, stimulus_folds

pytest.importorskip("brainnet.categories")


def _data(rng, n_classes=4, per_class=10, n_subjects=6, noise=6.0, network="clean"):
    y = np.repeat([f"c{k}" for k in range(n_classes)], per_class)
    centroids = rng.normal(size=(n_classes, 8))
    latent = centroids[np.repeat(np.arange(n_classes), per_class)]
    humans = [
        latent @ rng.normal(size=(8, 60)) + noise * rng.normal(size=(y.size, 60))
        for _ in range(n_subjects)
    ]
    if network == "clean":
        net = latent @ rng.normal(size=(8, 20)) + 0.3 * rng.normal(size=(y.size, 20))
    else:
        net = rng.normal(size=(y.size, 20))
    return humans, net, y


def test_stimulus_folds_are_stratified_and_seeded():
    y = np.repeat(["a", "b", "c"], 6)
    folds = stimulus_folds(y, 3, seed=1)
    assert np.array_equal(folds, stimulus_folds(y, 3, seed=1))
    for k in range(3):
        assert sorted(y[folds == k]) == ["a", "a", "b", "b", "c", "c"]
    with pytest.raises(
        BrainnetError,
        match=r"^--folds 7: category 'a' has only 6 stimuli; use --folds between 2 and 6$",
    ):
        stimulus_folds(y, 7)


def test_confusion_similarity_is_pearson_of_off_diagonals():
    rng = np.random.default_rng(0)
    conf = rng.random((4, 5, 5))
    mask = ~np.eye(5, dtype=bool)
    expected = np.corrcoef(np.array([c[mask] for c in conf]))
    np.testing.assert_allclose(confusion_similarity(conf), expected, atol=1e-12)


def test_same_classifier_and_folds_for_every_subject():
    from brainnet.categories import category_confusion, decode_categories_within

    rng = np.random.default_rng(1)
    humans, net, y = _data(rng)
    res = decode_network_subject(humans, net, y, n_folds=5, seed=3)
    folds = stimulus_folds(y, 5, seed=3)
    np.testing.assert_array_equal(res.folds, folds)
    for k, x in enumerate([*humans, net]):
        pred = decode_categories_within(x, y, folds)
        assert res.accuracy[k] == pytest.approx(np.mean(pred == y))
        np.testing.assert_allclose(
            res.confusions[k], category_confusion(y, pred, res.classes).to_numpy()
        )
    mask = ~np.eye(len(res.classes), dtype=bool)
    humans_c = res.confusions[:-1]
    for s in range(len(humans)):
        others = np.delete(humans_c, s, 0).mean(0)
        assert res.human_loo[s] == pytest.approx(np.corrcoef(humans_c[s][mask], others[mask])[0, 1])


def test_network_identical_to_a_subject_gets_that_subjects_scores():
    rng = np.random.default_rng(2)
    humans, _, y = _data(rng)
    res = decode_network_subject(humans, humans[2], y, n_folds=5)
    assert res.accuracy[-1] == res.accuracy[2]
    np.testing.assert_allclose(res.confusions[-1], res.confusions[2])
    assert res.similarity[2, -1] == pytest.approx(1.0)


def test_network_with_category_structure_outranks_noisy_humans():
    rng = np.random.default_rng(3)
    humans, net, y = _data(rng, network="clean")
    res = decode_network_subject(humans, net, y, n_folds=5)
    s = res.summary
    assert s["network_accuracy"] > 0.9
    assert s["network_rank"] == 1 and s["network_percentile"] == 100.0
    assert s["network_accuracy_p"] < 1e-6
    assert s["human_accuracy_range"][1] < 1.0
    # The engine's permutation test of the same accuracy, and its null-relative effect.
    assert s["p_value"] == pytest.approx(1 / 101)
    # CV on shuffled labels sits a little below chance (0.25): the folds were stratified on the true labels.
    assert abs(s["null_mean_accuracy"] - 0.25) < 0.1 and s["effect_vs_null"] > 5


def test_unrelated_network_is_at_chance_and_ranks_last():
    rng = np.random.default_rng(4)
    humans, net, y = _data(rng, noise=0.5, network="random")
    res = decode_network_subject(humans, net, y, n_folds=5)
    s = res.summary
    assert s["network_accuracy"] < 0.5  # chance 0.25; humans near ceiling
    assert s["network_rank"] == s["network_rank_of"]
    assert s["network_accuracy_p"] > 0.01
    assert min(res.accuracy[:-1]) > 0.8


def _null_network_p(n_sim, n_perm):
    rng = np.random.default_rng(8)
    p, effect = [], []
    for sim in range(n_sim):
        humans, net, y = _data(rng, n_classes=3, per_class=6, n_subjects=3, network="random")
        s = decode_network_subject(humans, net, y, n_folds=3, model="plsda", n_permutations=n_perm,
                                   seed=sim).summary
        p.append(s["p_value"])
        effect.append(s["effect_vs_null"])
    return np.array(p), np.array(effect)


def test_network_accuracy_permutation_p_is_uniform_on_null_studies():
    """Issue 17 (quick): the engine's test of the network's accuracy, p roughly uniform on noise."""
    p, effect = _null_network_p(30, 19)
    assert abs(p.mean() - 0.5) < 3 * 0.29 / np.sqrt(p.size), p.mean()
    assert abs(np.mean(effect)) < 3 * np.std(effect) / np.sqrt(effect.size)


@pytest.mark.slow
def test_network_accuracy_permutation_p_is_calibrated_on_null_studies():
    """Issue 17: p <= .05 in 2-8 % of null studies."""
    p, _ = _null_network_p(300, 39)
    rate = np.mean(p <= 0.05)
    assert 0.02 <= rate <= 0.08, rate


def test_bad_input_messages():
    rng = np.random.default_rng(5)
    humans, net, y = _data(rng)
    with pytest.raises(BrainnetError, match="needs at least 3 subjects, got 2"):
        decode_network_subject(humans[:2], net, y)
    with pytest.raises(BrainnetError, match="has 39 rows but there are 40 stimuli"):
        decode_network_subject(humans, net[:-1], y)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    pytest.importorskip("brainnet.study")
    simulate = pytest.importorskip("brainnet.simulate")
    from brainnet.features import Features, save_features

    root = tmp_path_factory.mktemp("netsub_study")
    study = simulate.simulate_study(
        root / "study", n_subjects=4, n_stimuli=24, snr=2.0, resolution_mm=8.0, seed=5
    )
    truth = simulate.load_truth(study)
    ids = [str(s) for s in truth["stimulus_ids"]]
    feats = save_features(Features(ids, {"fc8": truth["features"]}), root / "truth.npz")
    return study, feats


def test_cli_network_decoding(small_study, tmp_path, capsys):
    from brainnet.cli import main

    study, feats = small_study
    out = tmp_path / "out"
    code = main(
        [
            "network-decoding",
            "--study",
            str(study),
            "--features",
            str(feats),
            "--folds",
            "4",
            "--permutations",
            "9",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "rank" in captured.out and "network-decoding-fc8" in captured.out
    folder = out / "group" / "network-decoding-fc8"
    summary = json.loads((folder / "summary.json").read_text())
    # the headline p is the permutation test's; the binomial p is named as the parametric extra
    assert summary["n_permutations"] == 9
    assert (f"(permutation p = {summary['p_value']:.3g}, 9 category shuffles; binomial p vs chance "
            f"{summary['network_accuracy_p']:.3g}, a parametric extra)") in captured.out
    for key in (
        "analysis",
        "layer",
        "model",
        "n_subjects",
        "n_stimuli",
        "n_voxels",
        "mean_r",
        "p_value",
        "n_permutations",
        "noise_ceiling",
        "network_accuracy",
        "network_rank",
        "provenance",
    ):
        assert key in summary, key
    assert summary["complete"] and summary["n_subjects"] == 4 and summary["n_stimuli"] == 24
    table = pd.read_csv(folder / "subjects.tsv", sep="\t")
    assert list(table["subject"]) == ["sub-01", "sub-02", "sub-03", "sub-04", "network"]
    assert len(pd.read_csv(folder / "confusions.tsv", sep="\t")) == 5 * 6 * 6

    code = main(
        [
            "network-decoding",
            "--study",
            str(study),
            "--features",
            str(feats),
            "--folds",
            "9",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == (
        "brainnet network-decoding: error: --folds 9: category 'checker' has only 4 stimuli; "
        "use --folds between 2 and 4"
    )
