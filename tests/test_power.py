"""Power analysis: SIMPLS against scikit-learn, batched LOSO against refitting, power curves."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import LinearRegression

from brainnet.errors import BrainnetError
from brainnet.power import _LosoDecoder, power_curve, simpls
from brainnet.stats import pearson_columns


def _data(seed, amplitude, *, n_subjects=10, n_stimuli=40, n_voxels=80, n_units=8):
    """Each subject sees every stimulus once, in its own order; voxels = amplitude * F W + noise."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_stimuli, n_units))
    weights = rng.standard_normal((n_units, n_voxels))
    patterns, index = [], []
    for _ in range(n_subjects):
        order = rng.permutation(n_stimuli)
        patterns.append(
            amplitude * features[order] @ weights + rng.standard_normal((n_stimuli, n_voxels))
        )
        index.append(order)
    return patterns, index, features


def test_simpls_equals_sklearn_for_one_target_and_ols_at_full_rank():
    rng = np.random.default_rng(0)
    x, x_new = rng.standard_normal((50, 12)), rng.standard_normal((7, 12))
    y = rng.standard_normal((50, 1))
    coef, intercept = simpls(x, y, 4)
    expected = PLSRegression(n_components=4, scale=False).fit(x, y).predict(x_new)
    np.testing.assert_allclose(x_new @ coef + intercept, expected.reshape(7, 1), atol=1e-10)
    # several targets: the first component is the same in SIMPLS and NIPALS
    y = rng.standard_normal((50, 5))
    coef, intercept = simpls(x, y, 1)
    nipals = PLSRegression(n_components=1, scale=False, tol=1e-14, max_iter=10000).fit(x, y)
    np.testing.assert_allclose(x_new @ coef + intercept, nipals.predict(x_new), atol=1e-6)
    coef, intercept = simpls(x, y, 12)
    ols = LinearRegression().fit(x, y).predict(x_new)
    np.testing.assert_allclose(x_new @ coef + intercept, ols, atol=1e-10)


def test_batched_loso_equals_refitting_each_permutation():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((30, 6))
    xs = [rng.standard_normal((30, 10)) for _ in range(5)]
    rows = [rng.permutation(30) for _ in range(5)]
    perms = np.stack([rng.permutation(30) for _ in range(4)])
    got = _LosoDecoder(xs, rows, 30, 3).scores(features[perms])
    for b, perm in enumerate(perms):
        permuted = features[perm]
        for s in range(5):
            x_train = np.vstack([x for i, x in enumerate(xs) if i != s])
            y_train = np.vstack([permuted[r] for i, r in enumerate(rows) if i != s])
            coef, intercept = simpls(x_train, y_train, 3)
            r = pearson_columns(xs[s] @ coef + intercept, permuted[rows[s]]).mean()
            assert got[b, s] == pytest.approx(r, abs=1e-9)


def test_detection_rises_with_subjects_and_reaches_one():
    table = power_curve(
        *_data(1, 0.03), subject_sizes=(3, 6, 10), n_repeats=8, n_pca=30, n_components=3
    )
    rates = table["detection_rate"].to_numpy()
    assert list(table["n_subjects"]) == [3, 6, 10]
    assert list(table["n_repeats"]) == [8, 8, 1]  # the full sample exists once
    assert rates[0] < 1.0 and rates[-1] == 1.0
    assert np.all(np.diff(rates) >= 0)
    assert (table["ci_low"] <= table["detection_rate"]).all()
    assert (table["detection_rate"] <= table["ci_high"]).all()
    # planted signal: the mean effect against the permutation null grows with the sample, far above 0
    effects = table["mean_effect_vs_null"].to_numpy()
    assert effects[-1] > effects[0] > 0 and effects[-1] > 2.5


def test_stimulus_subsampling_lowers_power():
    table = power_curve(
        *_data(2, 0.03),
        subject_sizes=(6,),
        n_stimuli_sizes=(10, 40),
        n_repeats=8,
        n_pca=30,
        n_components=3,
    )
    few, many = table["detection_rate"].to_numpy()
    assert list(table["n_stimuli"]) == [10, 40]
    assert few < many


def test_null_detection_rate_stays_at_alpha(science_scale):
    n_datasets = 80 if science_scale == "full" else 20
    detected, effects = 0, []
    for seed in range(n_datasets):
        table = power_curve(
            *_data(100 + seed, 0.0, n_subjects=6),
            subject_sizes=(4,),
            n_repeats=2,
            n_pca=30,
            n_components=3,
            seed=seed,
        )
        detected += int(table["n_detected"].iloc[0])
        effects.append(table["mean_effect_vs_null"].iloc[0])
    # null-relative effect sizes centre on 0: each is a mean of 2 values of SD about 1
    assert abs(np.mean(effects)) < 3 / np.sqrt(2 * n_datasets), np.mean(effects)
    # with 99 permutations a null subsample is detected with probability 0.04
    n = 2 * n_datasets
    assert detected / n <= 0.04 + 2.5 * np.sqrt(0.04 * 0.96 / n)


def test_reproducible():
    a = power_curve(*_data(3, 0.02), subject_sizes=(4,), n_repeats=3, n_pca=20, n_components=2)
    b = power_curve(*_data(3, 0.02), subject_sizes=(4,), n_repeats=3, n_pca=20, n_components=2)
    assert a.equals(b)


def test_bad_sizes_and_permutations():
    data = _data(4, 0.0, n_subjects=5)
    with pytest.raises(
        BrainnetError,
        match="--sizes 2,9: the study has 5 subjects; choose sizes between 3 and 5",
    ):
        power_curve(*data, subject_sizes=(2, 4, 9))
    with pytest.raises(BrainnetError, match="--stimuli 100: the study has 40 stimuli"):
        power_curve(*data, subject_sizes=(4,), n_stimuli_sizes=(100,))
    with pytest.raises(
        BrainnetError, match=re.escape("n_permutations=19: a p-value below 0.05 needs at least 20 (the smallest p is "
                                       "1/(permutations + 1)); pass n_permutations=99 or more")
    ):
        power_curve(*data, subject_sizes=(4,), n_permutations=19)
    with pytest.raises(BrainnetError, match=re.escape("n_permutations=99: a p-value below 0.01 needs at least 100")):
        power_curve(*data, subject_sizes=(4,), n_permutations=99, alpha=0.01)
    power_curve(*data, subject_sizes=(4,), n_repeats=1, n_permutations=20)  # 1/21 < .05: accepted


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """6 subjects x 24 stimuli; shared with the other analysis test modules (same parameters)."""
    simulate = pytest.importorskip("brainnet.simulate")
    root = tmp_path_factory.getbasetemp() / "c_small_study" / "study"
    if not (root / "dataset_description.json").is_file():
        simulate.simulate_study(root, n_subjects=6, n_stimuli=24, seed=3, snr=2.0, overwrite=True)
    return root


def test_power_analysis_on_a_simulated_study(small_study, tmp_path):
    from brainnet.power import power_analysis

    result = power_analysis(
        small_study,
        subject_sizes=(3, 6),
        n_repeats=3,
        n_components=3,
        n_pca=30,
        seed=0,
        out=tmp_path / "out",
    )
    assert list(result.table["n_subjects"]) == [3, 6]
    assert result.summary["n_subjects"] == 6 and result.summary["n_stimuli"] == 24
    assert result.summary["detection_rate"] == 1.0
    assert result.summary["effect_vs_null"] == pytest.approx(result.table["mean_effect_vs_null"].iloc[-1])
    folder = tmp_path / "out" / "group" / "power-fc8"
    assert result.path == folder
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["analysis"] == "power"
    for key in ("layer", "model", "n_subjects", "n_stimuli", "n_voxels", "mean_r", "p_value"):
        assert key in summary
    assert summary["noise_ceiling"] is None and summary["n_permutations"] == 99
    assert summary["provenance"]["parameters"]["subject_sizes"] == [3, 6]
    assert (folder / "power.tsv").read_text().startswith("n_subjects\tn_stimuli")


def test_power_cli(small_study, tmp_path, capsys):
    from brainnet.cli import main

    args = ["power", "--study", str(small_study), "--sizes", "3,6", "--repeats", "2"]
    args += ["--components", "3", "--pca", "20", "--out", str(tmp_path / "res")]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "3 subjects x 24 stimuli" in captured.out
    assert str(tmp_path / "res" / "group" / "power-fc8") in captured.out
    assert "untrained EmoNet weights (untrained-seed0)" in captured.err
    assert main(["power", "--study", str(small_study), "--sizes", "2,9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0] == (
        "brainnet power: error: --sizes 2,9: the study has 6 subjects; choose sizes between 3 and 6"
    )
