"""Category decoding: PLS-DA vs scikit-learn, planted signal, exact permutations, null p."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GroupKFold, cross_val_score

from brainnet.categories import (
    PLSDA,
    decode_categories,
    decode_categories_within,
    subject_folds,
)
from brainnet.errors import BrainnetError
from brainnet.permutation import permutation_indices
from brainnet.results import ResultDir, make_provenance


def _study(seed, *, n_subjects=8, n_stimuli=24, n_voxels=60, n_classes=3, signal=0.6):
    """Subjects see the same stimuli in their own order; each category has a voxel prototype."""
    rng = np.random.default_rng(seed)
    category = np.arange(n_stimuli) % n_classes
    prototypes = rng.standard_normal((n_classes, n_voxels))
    stimulus_part = 0.5 * rng.standard_normal((n_stimuli, n_voxels))
    patterns, labels, stimuli = [], [], []
    for _ in range(n_subjects):
        order = rng.permutation(n_stimuli)
        x = signal * prototypes[category[order]] + stimulus_part[order]
        patterns.append(x + rng.standard_normal((n_stimuli, n_voxels)))
        labels.append(np.array([f"cat{c}" for c in category[order]], dtype=object))
        stimuli.append(np.array([f"stim{i:03d}" for i in order]))
    return patterns, labels, stimuli


def test_plsda_matches_sklearn_plsregression_argmax():
    patterns, labels, _ = _study(0)
    x, y = np.vstack(patterns), np.concatenate(labels).astype(str)
    folds = np.repeat(np.arange(4), x.shape[0] // 4)
    ours = decode_categories_within(x, y, folds, n_components=3)
    classes = np.unique(y)
    expected = np.empty_like(y)
    for fold in range(4):
        test = folds == fold
        onehot = (y[~test, None] == classes[None]).astype(float)
        pls = PLSRegression(n_components=3, scale=False).fit(x[~test], onehot)
        expected[test] = classes[np.argmax(pls.predict(x[test]), axis=1)]
    np.testing.assert_array_equal(ours, expected)


def test_plsda_is_a_sklearn_classifier():
    patterns, labels, _ = _study(1, signal=1.5)
    x, y = np.vstack(patterns), np.concatenate(labels).astype(str)
    groups = np.repeat(np.arange(8), 24)
    est = clone(PLSDA(n_components=2))
    assert est.get_params() == {"n_components": 2, "scale": False}
    scores = cross_val_score(est, x, y, groups=groups, cv=GroupKFold(4))
    assert scores.mean() > 0.8
    fitted = PLSDA().fit(x, y)
    assert fitted.decision_function(x).shape == (x.shape[0], 3)
    assert set(fitted.predict(x)) <= set(fitted.classes_)


@pytest.mark.parametrize(("model", "n_permutations"), [("plsda", 9), ("logistic", 3)])
def test_planted_categories_are_decoded(model, n_permutations):
    patterns, labels, stimuli = _study(2)
    result = decode_categories(
        patterns,
        labels,
        model=model,
        n_folds=4,
        n_permutations=n_permutations,
        stimulus_ids=stimuli,
    )
    s = result.summary
    assert s["chance"] == pytest.approx(1 / 3)
    assert s["accuracy"] > 0.7
    assert s["p_value"] == pytest.approx(1 / (n_permutations + 1))  # the minimum
    assert result.null.max() < s["accuracy"]
    assert s["null_mean_accuracy"] == pytest.approx(result.null.mean())
    assert s["null_sd_accuracy"] == pytest.approx(result.null.std(ddof=1))
    assert s["effect_vs_null"] == pytest.approx((s["accuracy"] - result.null.mean()) / result.null.std(ddof=1))
    assert s["effect_vs_null"] > 2
    assert s["permutation_unit"] == "stimulus"
    assert len(result.per_subject) == 8 and (result.per_subject["accuracy"] > 0.4).all()
    np.testing.assert_allclose(result.confusion.to_numpy().sum(axis=1), 1.0)
    assert s["balanced_accuracy"] == pytest.approx(np.diag(result.confusion.to_numpy()).mean())


def test_batched_permutations_equal_literal_refitting():
    patterns, labels, stimuli = _study(3, n_subjects=6, signal=0.3)
    n_perm, seed = 20, 5
    result = decode_categories(
        patterns, labels, n_folds=3, n_permutations=n_perm, seed=seed, stimulus_ids=stimuli
    )
    x = np.vstack(patterns)
    sid = np.concatenate(stimuli)
    unique, rows = np.unique(sid, return_inverse=True)
    stim_label = dict(zip(np.concatenate(stimuli), np.concatenate(labels), strict=True))
    stim_label = np.array([stim_label[u] for u in unique])
    folds = np.repeat(subject_folds(6, 3, seed), 24)
    assert result.summary["accuracy"] == pytest.approx(
        np.mean(decode_categories_within(x, stim_label[rows], folds) == stim_label[rows])
    )
    for k, perm in enumerate(permutation_indices(unique.size, 0, n_perm, seed)):
        y = stim_label[perm][rows]
        literal = np.mean(decode_categories_within(x, y, folds) == y)
        assert result.null[k] == pytest.approx(literal)


@pytest.mark.parametrize("unit", ["stimulus", "trial"])
def test_null_p_values_are_uniform(unit, science_scale):
    """No category signal: p is uniform when the permuted unit matches the design.

    With stimulus-specific patterns shared by subjects (every study), only the
    stimulus-level permutation is valid; shuffling trials within subjects is
    checked on data without stimulus-specific patterns.
    """
    n_datasets = 60 if science_scale == "full" else 12
    pvals, effects = [], []
    for seed in range(n_datasets):
        patterns, labels, stimuli = _study(100 + seed, n_subjects=6, n_voxels=30, signal=0.0)
        if unit == "trial":
            rng = np.random.default_rng(seed)
            patterns = [rng.standard_normal(p.shape) for p in patterns]
        result = decode_categories(
            patterns,
            labels,
            n_folds=3,
            n_permutations=19,
            seed=seed,
            stimulus_ids=stimuli if unit == "stimulus" else None,
        )
        assert result.summary["permutation_unit"].startswith(unit)
        pvals.append(result.summary["p_value"])
        effects.append(result.summary["effect_vs_null"])
    pvals = np.array(pvals)
    assert np.mean(pvals <= 0.05) <= 0.25
    assert 0.25 < pvals.mean() < 0.75
    # null-relative effect sizes centre on 0 (mean of n_datasets values of SD about 1)
    assert abs(np.mean(effects)) < 3 / np.sqrt(n_datasets), np.mean(effects)


def test_subject_folds_are_balanced_and_seeded():
    folds = subject_folds(18, 8, seed=0)
    counts = np.bincount(folds)
    assert counts.size == 8 and counts.min() == 2 and counts.max() == 3
    np.testing.assert_array_equal(folds, subject_folds(18, 8, seed=0))
    assert not np.array_equal(folds, subject_folds(18, 8, seed=1))


def test_network_as_a_subject_uses_the_same_folds():
    rng = np.random.default_rng(4)
    y = np.repeat(["a", "b", "c"], 10)
    activations = rng.standard_normal((30, 20)) + 2.0 * (y[:, None] == "a")
    folds = np.tile(np.arange(5), 6)
    pred = decode_categories_within(activations, y, folds, model="logistic")
    assert pred.shape == (30,)
    assert np.mean(pred[y == "a"] == "a") > 0.8


def test_write_through_resultdir(tmp_path):
    patterns, labels, stimuli = _study(6)
    result = decode_categories(patterns, labels, n_folds=4, n_permutations=3, stimulus_ids=stimuli)
    rd = ResultDir(tmp_path / "categorize", make_provenance(seed=0))
    result.write(rd)
    scores = pd.read_csv(tmp_path / "categorize" / "category_scores.tsv", sep="\t")
    assert list(scores.columns) == ["subject", "fold", "n_trials", "accuracy"]
    confusion = pd.read_csv(tmp_path / "categorize" / "category_confusion.tsv", sep="\t")
    assert list(confusion.columns) == ["true", "cat0", "cat1", "cat2"]
    preds = pd.read_csv(tmp_path / "categorize" / "category_predictions.tsv", sep="\t")
    assert len(preds) == 8 * 24


def test_bad_input_messages():
    patterns, labels, stimuli = _study(7, n_subjects=4)
    with pytest.raises(
        BrainnetError, match="--model svm: unknown classifier; use one of plsda, logistic"
    ):
        decode_categories(patterns, labels, model="svm", n_permutations=0)
    with pytest.raises(
        BrainnetError, match="--folds 8: participant-independent folds need 2 to 4 folds"
    ):
        decode_categories(patterns, labels, n_folds=8, n_permutations=0)
    one = [np.array(["x"] * 24, dtype=object)] * 4
    with pytest.raises(
        BrainnetError, match="labels hold 1 category; category decoding needs at least 2"
    ):
        decode_categories(patterns, one, n_folds=2, n_permutations=0)
    bad = [lab.copy() for lab in labels]
    bad[1][0] = "cat2" if bad[1][0] != "cat2" else "cat1"
    with pytest.raises(BrainnetError, match="has different categories on different trials"):
        decode_categories(patterns, bad, n_folds=2, n_permutations=0, stimulus_ids=stimuli)
    with pytest.raises(BrainnetError, match="--components 500"):
        decode_categories(patterns, labels, n_folds=2, n_components=500, n_permutations=0)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """6 subjects x 24 stimuli; shared with the other analysis test modules (same parameters)."""
    simulate = pytest.importorskip("brainnet.simulate")
    root = tmp_path_factory.getbasetemp() / "c_small_study" / "study"
    if not (root / "dataset_description.json").is_file():
        simulate.simulate_study(root, n_subjects=6, n_stimuli=24, seed=3, snr=2.0, overwrite=True)
    return root


def test_categorize_study_writes_results(small_study, tmp_path):
    import json

    from brainnet.categories import categorize_study

    result = categorize_study(small_study, n_folds=3, n_permutations=9, out=tmp_path / "res")
    folder = tmp_path / "res" / "group" / "categorize-occipital"
    assert result.path == folder
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["analysis"] == "categorize"
    n_categories = pd.read_csv(small_study / "stimuli.tsv", sep="\t")["category"].nunique()
    assert summary["n_subjects"] == 6 and summary["n_stimuli"] == 24
    assert summary["n_classes"] == n_categories
    assert summary["accuracy"] > 2 * summary["chance"]
    assert summary["permutation_unit"] == "stimulus"
    assert summary["provenance"]["parameters"]["n_folds"] == 3
    scores = pd.read_csv(folder / "category_scores.tsv", sep="\t", dtype={"subject": str})
    assert list(scores["subject"]) == ["01", "02", "03", "04", "05", "06"]


def test_categorize_cli(small_study, tmp_path, capsys):
    from brainnet.cli import main

    args = ["categorize", "--study", str(small_study), "--folds", "3", "--permutations", "4"]
    assert main([*args, "--out", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    n_categories = pd.read_csv(small_study / "stimuli.tsv", sep="\t")["category"].nunique()
    expected = f"plsda category decoding ({n_categories} categories, occipital, 3 participant-"
    assert expected in out
    assert str(tmp_path / "res" / "group" / "categorize-occipital") in out
    assert main(["categorize", "--study", str(small_study), "--folds", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "brainnet categorize: error: --folds 8: participant-independent folds need 2 to 6 "
        "folds for 6 subjects; choose --folds between 2 and 6"
    ]


def test_categorize_needs_a_category_column(small_study, tmp_path):
    import shutil

    from brainnet.categories import categorize_study

    copy = shutil.copytree(small_study, tmp_path / "nocat")
    table = pd.read_csv(copy / "stimuli.tsv", sep="\t").drop(columns="category")
    table.to_csv(copy / "stimuli.tsv", sep="\t", index=False)
    with pytest.raises(
        BrainnetError, match=r"stimuli.tsv: has no category column .*; add a category"
    ):
        categorize_study(copy, n_folds=3, n_permutations=0)
