"""Per-subject encoding: agreement with scikit-learn / himalaya, exact permutations, calibration."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from brainnet.encoding import (
    DEFAULT_ALPHAS,
    VoxelwiseRidgeCV,
    cross_validated_encoding,
    encode,
    encoding_permutation_test,
    make_folds,
    repeat_noise_ceiling,
    split_half_noise_ceiling,
)
from brainnet.errors import BrainnetError
from brainnet.permutation import permutation_indices


def _data(n=60, p=30, v=12, n_signal=6, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p) + rng.uniform(-2, 2, p)
    w = np.zeros((p, v))
    n_signal = min(n_signal, v)
    w[:, :n_signal] = rng.standard_normal((p, n_signal)) / np.sqrt(p)
    y = x @ w + noise * rng.standard_normal((n, v)) + rng.uniform(-1, 1, v)
    return x, y


@pytest.mark.parametrize("shape", [(50, 200), (50, 12)], ids=["p>n", "p<n"])
def test_ridge_matches_sklearn_ridgecv_and_ridge_per_target(shape):
    n, p = shape
    x, y = _data(n=n, p=p, v=15, noise=2.0)
    x_new = _data(n=8, p=p, seed=1)[0]
    model = VoxelwiseRidgeCV(alphas=DEFAULT_ALPHAS).fit(x, y)
    ref = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True)).fit(x, y)
    np.testing.assert_array_equal(model.best_alphas_, ref[-1].alpha_)
    assert len(np.unique(model.best_alphas_)) > 1  # the per-target choice is exercised
    np.testing.assert_allclose(model.predict(x_new), ref.predict(x_new), rtol=1e-8, atol=1e-10)
    for j, alpha in enumerate(model.best_alphas_):
        single = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, y[:, j])
        np.testing.assert_allclose(model.predict(x_new)[:, j], single.predict(x_new), rtol=1e-8, atol=1e-10)
    # Weights on the raw features reproduce the predictions.
    np.testing.assert_allclose(x_new @ model.coef_.T + model.intercept_, model.predict(x_new), atol=1e-9)


def test_ridge_inner_kfold_matches_himalaya():
    himalaya = pytest.importorskip("himalaya.ridge")
    x, y = _data(n=60, p=80, v=10, noise=2.0)
    x_new = _data(n=8, p=80, seed=1)[0]
    model = VoxelwiseRidgeCV(alphas=DEFAULT_ALPHAS, inner=5).fit(x, y)
    scaler = StandardScaler().fit(x)
    ref = himalaya.RidgeCV(alphas=DEFAULT_ALPHAS, cv=5, fit_intercept=True, solver_params={"warn": False})
    ref.fit(scaler.transform(x), y)
    np.testing.assert_allclose(model.best_alphas_, ref.best_alphas_, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x_new), ref.predict(scaler.transform(x_new)), atol=1e-8)


def test_estimator_api_one_target_and_params():
    x, y = _data(v=3)
    model = VoxelwiseRidgeCV(alphas=[1.0, 10.0]).fit(x, y[:, 0])
    assert model.predict(x).shape == (x.shape[0],)
    assert model.get_params()["alphas"] == [1.0, 10.0]
    assert np.isfinite(model.score(x, y[:, 0]))


def test_cross_validated_encoding_equals_sklearn_on_the_same_folds():
    x, y = _data()
    out = cross_validated_encoding(x, y, cv=5, seed=3)
    pred = np.empty_like(y)
    for train, test in make_folds(len(x), 5, seed=3):
        ref = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True))
        pred[test] = ref.fit(x[train], y[train]).predict(x[test])
    np.testing.assert_allclose(out["predictions"], pred, atol=1e-9)
    np.testing.assert_allclose(out["r_pooled"], [sps.pearsonr(y[:, j], pred[:, j])[0] for j in range(y.shape[1])])
    per_fold = [[sps.pearsonr(y[test, j], pred[test, j])[0] for j in range(y.shape[1])]
                for _, test in make_folds(len(x), 5, seed=3)]
    np.testing.assert_allclose(out["r"], np.mean(per_fold, axis=0))
    r2 = 1 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(out["r2"], r2)


def test_pls_matches_sklearn_plsregression_on_the_same_folds():
    x, y = _data(p=15)
    out = cross_validated_encoding(x, y, model="pls", n_components=3, cv=4, seed=1)
    pred = np.empty_like(y)
    for train, test in make_folds(len(x), 4, seed=1):
        ref = make_pipeline(StandardScaler(), PLSRegression(n_components=3, scale=False))
        pred[test] = ref.fit(x[train], y[train]).predict(x[test])
    np.testing.assert_allclose(out["predictions"], pred, atol=1e-9)


def _literal_null(x, y, perms, folds, inner="loo"):
    """Refit scikit-learn (or himalaya) from scratch on each permuted data set."""
    null = []
    for perm in perms:
        # Response row i goes with feature row perm[i]; folds follow the feature rows.
        y_perm = np.empty_like(y)
        y_perm[perm] = y
        pred = np.empty_like(y)
        for train, test in folds:
            ref = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True))
            pred[test] = ref.fit(x[train], y_perm[train]).predict(x[test])
        null.append(_per_fold_r(y_perm, pred, folds))
    return np.array(null)


def _per_fold_r(y, pred, folds):
    """Reference for the headline score: scipy's r within each test fold, averaged over folds."""
    return np.mean([[sps.pearsonr(y[test, j], pred[test, j])[0] for j in range(y.shape[1])]
                    for _, test in folds], axis=0)


def test_fast_permutation_null_equals_literal_refits():
    x, y = _data(n=40, p=25, v=6)
    res = encoding_permutation_test(x, y, n_permutations=24, seed=5)
    perms = permutation_indices(len(x), 0, 24, seed=5)
    literal = _literal_null(x, y, perms, make_folds(len(x), 5, seed=5))
    np.testing.assert_allclose(res.null, literal, atol=1e-10)
    observed = _literal_null(x, y, [np.arange(len(x))], make_folds(len(x), 5, seed=5))[0]
    np.testing.assert_allclose(res.observed, observed, atol=1e-10)
    # Batching (columns of many permutations at once) and threads change nothing.
    again = encoding_permutation_test(x, y, n_permutations=24, seed=5, n_jobs=2)
    np.testing.assert_allclose(again.null, res.null, atol=1e-12)


def test_pls_permutations_are_literal_refits():
    x, y = _data(n=30, p=10, v=4)
    res = encoding_permutation_test(x, y, model="pls", n_components=2, n_permutations=20, seed=2)
    folds = make_folds(len(x), 5, seed=2)
    for k, perm in enumerate(permutation_indices(len(x), 0, 20, seed=2)):
        y_perm = np.empty_like(y)
        y_perm[perm] = y
        pred = np.empty_like(y)
        for train, test in folds:
            ref = make_pipeline(StandardScaler(), PLSRegression(n_components=2, scale=False))
            pred[test] = ref.fit(x[train], y_perm[train]).predict(x[test])
        np.testing.assert_allclose(res.null[k], _per_fold_r(y_perm, pred, folds), atol=1e-9)


def test_signal_voxels_recovered_and_significant():
    x, y = _data(n=80, p=30, v=40, n_signal=10, noise=0.7, seed=4)
    result = encode(x, y, n_permutations=99, seed=0)
    table = result.voxel_scores
    signal, null = table["r"][:10], table["r"][10:]
    assert signal.min() > null.max()
    assert signal.mean() > 0.4 and abs(null.mean()) < 0.1
    assert (table["p_fwe"][:10] <= 0.01).all()
    assert (table["p_fwe"][10:] > 0.05).mean() > 0.9
    assert result.summary["p_value"] == pytest.approx(1 / 100)
    assert list(table.columns) == ["voxel", "i", "j", "k", "r", "r_pooled", "r2", "p", "p_fwe"]
    s = result.summary
    passing = table["r"][table["p_fwe"] < 0.05]
    assert s["n_voxels_p_fwe_05"] == len(passing) >= 10
    assert s["mean_r_p_fwe_05"] == pytest.approx(passing.mean())
    # The null-relative effect is (observed - null mean) / null SD of the same statistic.
    null_means = np.nanmean(result.null, axis=1)
    assert s["null_mean_r"] == pytest.approx(null_means.mean())
    assert s["effect_vs_null"] == pytest.approx((s["mean_r"] - null_means.mean()) / null_means.std(ddof=1))
    assert s["effect_vs_null"] > 3


def test_null_p_values_are_uniform(science_scale):
    n_runs, n_perm = (60, 99) if science_scale == "quick" else (400, 199)
    p_mean, p_vox = [], []
    for run in range(n_runs):
        rng = np.random.default_rng(1000 + run)
        x = rng.standard_normal((30, 8))
        y = rng.standard_normal((30, 3))
        res = encode(x, y, n_permutations=n_perm, seed=run)
        p_mean.append(res.summary["p_value"])
        p_vox.extend(res.voxel_scores["p"])
    for p in (np.array(p_mean), np.array(p_vox)):
        hits = int(np.sum(p <= 0.05))
        # Two-sided binomial test against the nominal 5 % rate.
        assert sps.binomtest(hits, p.size, 0.05).pvalue > 0.001, (hits, p.size)
    assert sps.kstest(np.array(p_vox), "uniform").pvalue > 0.001


def test_null_studies_per_fold_r_centres_on_zero_and_every_p_is_calibrated(science_scale):
    """Issue 17: on pure noise the headline r reads against 0 and p rejects at the nominal rate."""
    n_runs, n_perm = (120, 19) if science_scale == "quick" else (600, 99)
    mean_r, pooled, p_mean, effect = [], [], [], []
    for run in range(n_runs):
        rng = np.random.default_rng(7000 + run)
        x = rng.standard_normal((30, 6))
        y = rng.standard_normal((30, 6))
        s = encode(x, y, n_permutations=n_perm, seed=run).summary
        mean_r.append(s["mean_r"])
        pooled.append(s["mean_r_pooled"])
        p_mean.append(s["p_value"])
        effect.append(s["effect_vs_null"])
    assert abs(np.mean(mean_r)) < 0.02, np.mean(mean_r)
    # The pooled r this replaces is biased well below 0 on the same studies.
    assert np.mean(pooled) < -0.1, np.mean(pooled)
    rate = np.mean(np.array(p_mean) <= 0.05)
    assert 0.02 <= rate <= 0.08, rate
    # Null-relative effect sizes centre on 0 (each is (mean r - null mean) / null SD).
    assert abs(np.mean(effect)) < 3 * np.std(effect) / np.sqrt(n_runs), np.mean(effect)


def test_noise_ceiling_recovers_known_reliability():
    rng = np.random.default_rng(0)
    n_stim, v, repeats = 1000, 20, 4
    noise_sd = np.linspace(0.5, 3, v)
    signal = rng.standard_normal((n_stim, v))
    trials = np.repeat(signal, repeats, axis=0) + rng.standard_normal((n_stim * repeats, v)) * noise_sd
    ids = np.repeat([f"s{i}" for i in range(n_stim)], repeats)
    ceiling = split_half_noise_ceiling(trials, ids)
    truth = np.sqrt(1 / (1 + noise_sd**2 / repeats))  # corr(average, signal)
    np.testing.assert_allclose(ceiling, truth, atol=0.1)
    assert abs(ceiling.mean() - truth.mean()) < 0.02
    assert split_half_noise_ceiling(signal, [f"s{i}" for i in range(n_stim)]) is None


def _repeated_trials(counts, noise_sd, seed):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((counts.size, noise_sd.size))
    trials = np.repeat(signal, counts, axis=0) + rng.standard_normal((counts.sum(), noise_sd.size)) * noise_sd
    ids = np.repeat([f"s{i}" for i in range(counts.size)], counts)
    # The encoding target averages every stimulus's repeats: reliability var(s) / (var(s) + var(noise) mean(1/r)).
    truth = 1 / (1 + noise_sd**2 * np.mean(1 / counts))
    return trials, ids, truth


@pytest.mark.parametrize("repeats", [2, 3, 4, "1-4"])
def test_noise_ceilings_match_the_truth_for_any_number_of_repeats(repeats):
    """Tolerance: 0.05 per voxel for ceilings >= 0.5 with 2,000 stimuli (SE about 0.01); 0.02 for the region."""
    rng = np.random.default_rng(3)
    n_stim = 2000
    counts = np.full(n_stim, repeats) if repeats != "1-4" else rng.integers(1, 5, n_stim)
    noise_sd = np.linspace(0.3, 2.0, 12)
    trials, ids, truth = _repeated_trials(counts, noise_sd, seed=4)
    nc = repeat_noise_ceiling(trials, ids)
    split = split_half_noise_ceiling(trials, ids)
    strong = np.sqrt(truth) >= 0.5
    np.testing.assert_allclose(nc.ceiling[strong], np.sqrt(truth)[strong], atol=0.05)
    np.testing.assert_allclose(split[strong], np.sqrt(truth)[strong], atol=0.05)
    assert abs(nc.reliability.mean() - truth.mean()) < 0.02
    assert nc.reliable.all() and nc.n_repeats == pytest.approx(1 / np.mean(1 / counts))


def test_split_half_uses_the_actual_split_sizes_at_three_repeats():
    # The example: the truth 0.638; Spearman-Brown with factor 2 on halves of 2 and 1 repeats gives 0.606.
    noise_sd = np.array([np.sqrt(3 * (1 / 0.638**2 - 1))])
    trials, ids, truth = _repeated_trials(np.full(40000, 3), noise_sd, seed=0)
    assert np.sqrt(truth[0]) == pytest.approx(0.638, abs=1e-3)
    assert split_half_noise_ceiling(trials, ids)[0] == pytest.approx(0.638, abs=0.01)
    assert repeat_noise_ceiling(trials, ids).ceiling[0] == pytest.approx(0.638, abs=0.01)


def test_region_ceiling_reads_zero_without_signal_and_reliable_voxels_are_found():
    rng = np.random.default_rng(1)
    n_stim, repeats = 300, 3
    ids = np.repeat([f"s{i}" for i in range(n_stim)], repeats)
    noise = rng.standard_normal((n_stim * repeats, 60))
    nc = repeat_noise_ceiling(noise, ids)
    # The mean of per-voxel clipped ceilings is well above 0 on pure noise; the mean reliability is not
    # (SE about 0.01 here), and the region ceiling is its square root.
    assert nc.ceiling.mean() > 0.08
    assert abs(nc.summary()["mean_reliability"]) < 0.03
    assert nc.summary()["noise_ceiling"] == pytest.approx(np.sqrt(max(nc.reliability.mean(), 0)))
    # FDR q < .05 on pure noise: false selections are rare.
    assert nc.reliable.sum() <= 3
    signal = np.repeat(rng.standard_normal((n_stim, 10)), repeats, axis=0)
    mixed = noise.copy()
    mixed[:, :10] += signal
    nc = repeat_noise_ceiling(mixed, ids)
    assert nc.reliable[:10].all() and nc.reliable[10:].mean() < 0.1
    s = nc.summary()
    assert s["noise_ceiling_reliable"] > 0.75 > s["noise_ceiling"]
    # encode() reports both summaries and the mean r over the reliable voxels.
    x = rng.standard_normal((n_stim, 5))
    y = np.array([mixed[ids == f"s{i}"].mean(axis=0) for i in range(n_stim)])
    summary = encode(x, y, n_permutations=0, noise_ceiling=nc).summary
    assert summary["n_voxels_reliable"] == nc.reliable.sum()
    assert summary["noise_ceiling"] == pytest.approx(s["noise_ceiling"])
    assert summary["mean_r_over_noise_ceiling_reliable"] == pytest.approx(
        summary["mean_r_reliable"] / s["noise_ceiling_reliable"])


def test_summary_reports_noise_ceiling_or_unavailable():
    x, y = _data(n=30, v=3)
    without = encode(x, y, n_permutations=5).summary
    assert without["noise_ceiling"] is None and without["noise_ceiling_method"].startswith("unavailable")
    with_nc = encode(x, y, n_permutations=5, noise_ceiling=np.full(3, 0.8)).summary
    assert with_nc["noise_ceiling"] == pytest.approx(0.8)
    assert with_nc["mean_r_over_noise_ceiling"] == pytest.approx(with_nc["mean_r"] / 0.8)


def test_zero_permutations_gives_scores_without_p_values():
    x, y = _data(n=30, v=4)
    result = encode(x, y, n_permutations=0)
    assert np.isfinite(result.voxel_scores["r"]).all()
    assert result.voxel_scores["p"].isna().all() and result.voxel_scores["p_fwe"].isna().all()
    assert np.isnan(result.summary["p_value"]) and result.summary["n_permutations"] == 0


def test_bad_inputs_give_one_line_messages():
    x, y = _data(n=12, v=2)
    with pytest.raises(BrainnetError, match=r"^--cv 5: 4 stimuli are too few"):
        make_folds(4, 5)
    with pytest.raises(BrainnetError, match=r"^--cv 1: needs at least 2 folds"):
        make_folds(20, 1)
    with pytest.raises(BrainnetError, match=r"^--model svm: unknown model; use ridge or pls$"):
        encode(x, y, model="svm", n_permutations=0)
    with pytest.raises(BrainnetError, match=r"^--alphas \[-1.0\]: penalties must be positive"):
        VoxelwiseRidgeCV(alphas=[-1.0]).fit(x, y)
    with pytest.raises(BrainnetError, match=r"features \(12, 30\) and responses \(11, 2\)"):
        encode(x, y[:11], n_permutations=0)


# -- end to end on a small simulated study -----------------------------------------------


@pytest.fixture(scope="module")
def sim_study(tmp_path_factory):
    # Needs the simulator and feature extraction (other modules of the package).
    simulate = pytest.importorskip("brainnet.simulate")
    pytest.importorskip("brainnet.extract")
    simulate_study = simulate.simulate_study

    out = tmp_path_factory.mktemp("sim") / "study"
    return simulate_study(out, n_subjects=2, n_stimuli=40, n_repeats=2, snr=1.0, seed=3)


def test_encode_subject_recovers_signal_voxels_and_writes_results(sim_study, tmp_path):
    import json

    import nibabel as nib
    import pandas as pd

    from brainnet.encoding import encode_subject
    from brainnet.simulate import load_truth

    result = encode_subject(sim_study, "sub-01", n_permutations=20, out=tmp_path / "res")
    folder = tmp_path / "res" / "sub-01" / "encode-fc8"
    assert result.path == folder
    table = pd.read_csv(folder / "voxel_scores.tsv", sep="\t")
    assert list(table.columns) == ["voxel", "i", "j", "k", "r", "r_pooled", "r2", "p", "p_fwe", "noise_ceiling", "reliable"]
    truth = load_truth(sim_study)
    signal = {tuple(v) for v in truth["signal_ijk"].tolist()}
    is_signal = np.array([tuple(v) in signal for v in table[["i", "j", "k"]].to_numpy().tolist()])
    assert 0 < is_signal.sum() < len(table)
    assert table["r"][is_signal].mean() > table["r"][~is_signal].mean() + 0.3
    # The noise ceiling (two repeats) is higher where there is signal, and above the model's r.
    assert table["noise_ceiling"][is_signal].mean() > table["noise_ceiling"][~is_signal].mean()
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("analysis", "layer", "model", "n_subjects", "n_stimuli", "n_voxels", "mean_r", "p_value",
                "n_permutations", "noise_ceiling", "provenance"):
        assert key in summary, key
    assert summary["complete"] is True and summary["n_stimuli"] == 40 and summary["n_permutations"] == 20
    assert summary["p_value"] == pytest.approx(1 / 21)
    assert summary["noise_ceiling"] is not None
    assert summary["provenance"]["parameters"]["layer"] == "fc8"
    assert summary["provenance"]["weights"] == "untrained-seed0"
    img = nib.load(folder / "r_map.nii.gz")
    data = np.asarray(img.dataobj)
    ijk = table[["i", "j", "k"]].to_numpy()
    np.testing.assert_allclose(data[ijk[:, 0], ijk[:, 1], ijk[:, 2]], table["r"], atol=1e-6)


def test_encode_subject_unknown_subject_and_layer(sim_study):
    from brainnet.encoding import encode_subject

    with pytest.raises(BrainnetError, match=r"^--subject 07: no such subject in .*; choose one of 01, 02$"):
        encode_subject(sim_study, "07", n_permutations=0)
    with pytest.raises(BrainnetError, match="layer"):
        encode_subject(sim_study, "01", layer="fc9", n_permutations=0)


def test_cli_encode_runs_and_reports(sim_study, tmp_path, capsys):
    from brainnet.cli import main

    code = main(["encode", "--study", str(sim_study), "--subject", "02", "--permutations", "10",
                 "--cv", "4", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.strip().splitlines()
    assert lines[0].startswith("sub-02 fc8 ridge: mean r = ")
    assert lines[-1] == f"results: {tmp_path / 'sub-02' / 'encode-fc8'}"
    assert "untrained EmoNet weights" in captured.err
    assert (tmp_path / "sub-02" / "encode-fc8" / "summary.json").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--subject", "99"], "brainnet encode: error: --subject 99: no such subject in "),
        (["--cv", "1"], "brainnet encode: error: --cv 1: needs at least 2 folds; e.g. --cv 5"),
        (["--cv", "41"], "brainnet encode: error: --cv 41: 40 stimuli are too few for 41-fold"),
        (["--permutations", "-3"], "brainnet encode: error: --permutations -3: must be 0 or more; pass --permutations 0"),
        (["--alphas", "0", "1"], "brainnet encode: error: --alphas [0.0, 1.0]: penalties must be positive"),
    ],
)
def test_cli_encode_bad_input_exits_2_with_one_line(sim_study, tmp_path, capsys, argv, message):
    from brainnet.cli import main

    code = main(["encode", "--study", str(sim_study), "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(message), err
    assert not any("Traceback" in line for line in err)


def test_features_in_memory_and_one_table_tsv_give_the_extracted_result(sim_study, tmp_path):
    # The same features three ways: extracted by the study, passed from Python, and written as a
    # one-table TSV named after something else than the layer (`--features fc7_features.tsv --layer fc7`).
    import pandas as pd

    from brainnet.encoding import encode_subject
    from brainnet.extract import extract_activations
    from brainnet.features import Features
    from brainnet.study import load_study

    study = load_study(sim_study)
    kw = dict(layer="fc7", n_permutations=5, cv=4)
    extracted = encode_subject(study, "01", **kw)
    feats = extract_activations(study.stimuli, layers=["fc7"])
    in_memory = encode_subject(study, "01", features=feats, **kw)
    table = pd.DataFrame(feats.layer("fc7"), columns=[f"u{i}" for i in range(feats.layer("fc7").shape[1])])
    table.insert(0, "stimulus_id", feats.stimulus_ids)
    tsv = tmp_path / "fc7_features.tsv"
    table.to_csv(tsv, sep="\t", index=False, float_format="%.17g")
    from_tsv = encode_subject(study, "01", features=tsv, **kw)
    np.testing.assert_array_equal(in_memory.voxel_scores["r"].to_numpy(), extracted.voxel_scores["r"].to_numpy())
    # A TSV is read as float64; written with 17 significant digits it reads back exactly.
    as_float64 = Features(feats.stimulus_ids, {"fc7": feats.layer("fc7").astype(np.float64)})
    np.testing.assert_array_equal(from_tsv.voxel_scores["r"].to_numpy(),
                                  encode_subject(study, "01", features=as_float64, **kw).voxel_scores["r"].to_numpy())
    prov = in_memory.provenance["features"]
    assert prov["source"] == "in-memory" and len(prov["sha256"]) == 64


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_draws_progress_bars_on_a_terminal_unless_quiet(sim_study, tmp_path, capsys, monkeypatch, quiet):
    from brainnet.cli import main

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    argv = ["encode", "--study", str(sim_study), "--subject", "01", "--permutations", "7", "--cv", "4",
            "--out", str(tmp_path), *(["--quiet"] if quiet else [])]
    assert main(argv) == 0
    err = capsys.readouterr().err
    # The bar's total is drawn when it opens; its later states depend on tqdm's refresh timer,
    # so only the opening "0/7 ... perm/s" is asserted.
    assert ("/7 [" in err and "perm/s" in err) is not quiet, err
