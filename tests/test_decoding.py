"""Group decoding of network units: known truth, null calibration, literal refits, outputs, errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control
from sklearn.cross_decomposition import PLSRegression

from brainnet.decoding import _bootstrap_maps, decode_units, unit_decoding
from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.permutation import permutation_indices
from brainnet.stats import pearson_columns


def _arrays(n_subjects, n_stimuli, n_voxels, n_units, signal_units=(), strength=1.0, seed=0):
    """Patterns driven by some units (shared map + individual noise); the rest are null units."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_stimuli, n_units))
    ids = [f"stim{i:03d}" for i in range(n_stimuli)]
    weights = np.zeros((n_units, n_voxels))
    for u in signal_units:
        weights[u, rng.choice(n_voxels, n_voxels // 3, replace=False)] = strength
    patterns = [features @ weights + rng.normal(size=(n_stimuli, n_voxels)) for _ in range(n_subjects)]
    return patterns, [ids] * n_subjects, features, ids, weights


def _literal_mean_r(patterns, features, n_components):
    x = np.concatenate(patterns)
    groups = np.repeat(np.arange(len(patterns)), features.shape[0])
    y = np.tile(features, (len(patterns), 1))
    rs = []
    for g in range(len(patterns)):
        test = groups == g
        pred = PLSRegression(n_components, scale=False).fit(x[~test], y[~test]).predict(x[test])
        rs.append(np.mean(pearson_columns(pred, y[test])))
    return float(np.mean(rs))


def test_signal_units_are_recovered_and_null_units_are_not(science_scale):
    n_stimuli = 40 if science_scale == "quick" else 112
    patterns, ids, features, fids, _ = _arrays(6, n_stimuli, 120, 6, signal_units=(0, 1, 2), strength=0.6, seed=1)
    res = unit_decoding(patterns, ids, features, fids, n_components=4, n_permutations=199, n_bootstrap=0, confusion=False)
    units = res.units.set_index("unit")
    signal, null = units.iloc[:3], units.iloc[3:]
    assert (signal["p_fwe"] < 0.05).all()
    assert (null["p_fwe"] > 0.05).all()
    assert signal["mean_r"].min() > null["mean_r"].max() + 0.2
    # the null distribution of a signal unit lies far below its observed r
    assert signal["mean_r"].min() > np.quantile(res.null[:, 1:4], 0.99)
    assert res.summary["p_value"] == pytest.approx(1 / 200)


def test_null_p_values_are_uniform(science_scale):
    n_runs = 60 if science_scale == "quick" else 200
    p, effect, d = [], [], []
    for run in range(n_runs):
        patterns, ids, features, fids, _ = _arrays(4, 14, 25, 3, seed=100 + run)
        res = unit_decoding(patterns, ids, features, fids, n_components=2, n_permutations=39,
                            n_bootstrap=0, confusion=False, seed=run)
        p.append(res.summary["p_value"])
        effect.append(res.summary["effect_vs_null"])
        d.append(res.summary["cohens_d"])
    # Issue 17: the null-relative effect centres on 0; the paper-style d (against 0, subjects as
    # if independent) is what it replaces, and on the same null studies it is far more variable.
    assert abs(np.mean(effect)) < 3 * np.std(effect) / np.sqrt(n_runs)
    assert np.mean(np.abs(d) > 0.8) > np.mean(np.abs(effect) > 3)
    p = np.array(p)
    expected = 0.05 * n_runs
    bound = 3 * np.sqrt(n_runs * 0.05 * 0.95)
    assert abs(np.sum(p <= 0.05) - expected) <= bound
    assert abs(np.mean(p <= 0.5) - 0.5) <= 3 * np.sqrt(0.25 / n_runs)


def test_observed_null_and_p_equal_literal_refitting_with_sklearn():
    patterns, ids, features, fids, _ = _arrays(4, 12, 50, 3, signal_units=(0,), strength=0.5, seed=7)
    res = unit_decoding(patterns, ids, features, fids, n_components=2, n_permutations=20,
                        n_bootstrap=0, confusion=False, seed=3)
    observed = _literal_mean_r(patterns, features, 2)
    literal = np.array([_literal_mean_r(patterns, features[perm], 2)
                        for perm in permutation_indices(12, 0, 20, seed=3)])
    assert res.summary["mean_r"] == pytest.approx(observed, abs=1e-10)
    np.testing.assert_allclose(res.null[:, 0], literal, atol=1e-10)
    assert res.summary["p_value"] == (1 + np.sum(literal >= observed)) / 21


def test_scores_noise_ceiling_and_bootstrap_maps():
    patterns, ids, features, fids, weights = _arrays(5, 30, 60, 4, signal_units=(0, 1), strength=0.8, seed=2)
    res = unit_decoding(patterns, ids, features, fids, n_components=3, n_permutations=9,
                        n_bootstrap=30, confusion=False)
    scores = res.unit_scores
    assert list(scores.columns) == ["subject", "unit", "r", "mse"]
    assert len(scores) == 5 * 4
    # MSE of subject 01, unit 0 by hand from the stored predictions
    mse = np.mean((res.predictions[0][:, 0] - features[:, 0]) ** 2)
    assert scores.iloc[0]["mse"] == pytest.approx(mse)
    # noise ceiling = cross-validated / resubstitution, resubstitution from sklearn on all rows
    x, y = np.concatenate(patterns), np.tile(features, (5, 1))
    fitted = PLSRegression(3, scale=False).fit(x, y).predict(x)
    resub = np.mean([np.mean(pearson_columns(fitted[i * 30:(i + 1) * 30], features)) for i in range(5)])
    assert res.summary["resubstitution_r"] == pytest.approx(resub, abs=1e-10)
    assert res.summary["noise_ceiling"] == pytest.approx(res.summary["mean_r"] / resub)
    # bootstrap z: voxels carrying unit 0 stand out in unit 0's map
    z = np.abs(res.bootstrap_z[0])
    assert z[weights[0] > 0].mean() > 2 * z[weights[0] == 0].mean()
    assert res.pca["loadings"].shape == (4, 4)
    assert res.pca["explained_variance_ratio"].sum() == pytest.approx(1.0)


def test_bootstrap_z_and_fdr_match_scipy():
    rng = np.random.default_rng(0)
    boot = rng.normal(loc=rng.normal(size=(1, 3, 40)) * 0.5, size=(50, 3, 40))
    z, q, mean = _bootstrap_maps(boot)
    np.testing.assert_allclose(z, boot.mean(0) / boot.std(0, ddof=1))
    from scipy.stats import norm

    for u in range(3):
        np.testing.assert_allclose(q[u], false_discovery_control(2 * norm.sf(np.abs(z[u]))))


def test_array_input_errors():
    patterns, ids, features, fids, _ = _arrays(3, 10, 20, 2)
    with pytest.raises(BrainnetError) as err:
        unit_decoding(patterns[:2], ids[:2], features, fids)
    assert str(err.value) == "decoding needs at least 3 subjects for leave-one-subject-out cross-validation; got 2"
    bad_ids = [ids[0], ids[1], ids[2][:-1] + ["nope"]]
    with pytest.raises(BrainnetError, match=r"sub-03: no features for stimuli \['nope'\]"):
        unit_decoding(patterns, bad_ids, features, fids)
    with pytest.raises(BrainnetError, match=r"n_components=25: must be between 1 and 20"):
        unit_decoding(patterns, ids, features, fids, n_components=25)
    with pytest.raises(BrainnetError, match="the layer's 1025 units are zero for every stimulus; nothing to decode"):
        unit_decoding(patterns, ids, np.zeros((10, 1025)), fids, n_components=1)
    with pytest.raises(BrainnetError, match=r"the layer has 1025 units; with --scale unit decoding supports at most 1024"):
        unit_decoding(patterns, ids, np.ones((10, 1025)), fids, n_components=1, scale=True)
    short = [p[:2] for p in patterns]
    with pytest.raises(BrainnetError, match="sub-01: 2 stimuli; per-subject correlations need at least 3 stimuli"):
        unit_decoding(short, [i[:2] for i in ids], features, fids, n_components=1)


# -- a tiny study on disk (no images: features come from a file) ---------------------


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode_study")
    rng = np.random.default_rng(5)
    n_subjects, n_stimuli, n_units = 4, 24, 20
    ids = [f"img{i:02d}" for i in range(n_stimuli)]
    features = rng.normal(size=(n_stimuli, n_units))
    shape, affine = (5, 5, 4), np.diag([4.0, 4.0, 4.0, 1.0])
    maps = rng.normal(size=(n_units, int(np.prod(shape)))) * (rng.random((n_units, 1)) < 0.5)
    pd.DataFrame({"participant_id": [f"sub-{i + 1:02d}" for i in range(n_subjects)]}).to_csv(
        root / "participants.tsv", sep="\t", index=False)
    pd.DataFrame({"stimulus_id": ids, "file": [f"{s}.png" for s in ids]}).to_csv(
        root / "stimuli.tsv", sep="\t", index=False)
    for s in range(n_subjects):
        func = root / f"sub-{s + 1:02d}" / "func"
        func.mkdir(parents=True)
        order = rng.permutation(n_stimuli)
        data = features[order] @ maps * 0.3 + rng.normal(size=(n_stimuli, maps.shape[1]))
        img = nib.Nifti1Image(data.T.reshape(*shape, n_stimuli).astype(np.float32), affine)
        img.to_filename(func / f"sub-{s + 1:02d}_task-view_space-MNI_desc-singletrial_betas.nii.gz")
        pd.DataFrame({"stimulus_id": [ids[i] for i in order]}).to_csv(
            func / f"sub-{s + 1:02d}_task-view_desc-singletrial_events.tsv", sep="\t", index=False)
    nib.Nifti1Image(np.ones(shape, dtype=np.uint8), affine).to_filename(root / "mask.nii.gz")
    np.savez(root / "feats.npz", stimulus_ids=np.array(ids), fc8=features)
    return root


def _run(tiny_study, out, **kw):
    args = dict(mask=tiny_study / "mask.nii.gz", features=tiny_study / "feats.npz", n_components=3,
                n_permutations=19, n_bootstrap=8, n_cluster_draws=9, out=out)
    args.update(kw)
    return decode_units(tiny_study, **args)


def test_decode_units_writes_every_output(tiny_study, tmp_path):
    res = _run(tiny_study, tmp_path)
    folder = tmp_path / "group" / "decode-fc8"
    assert res.path == folder
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("analysis", "layer", "model", "n_subjects", "n_stimuli", "n_voxels", "mean_r", "p_value",
                "n_permutations", "noise_ceiling", "se_r", "cohens_d", "sensitivity", "specificity", "ppv",
                "n_clusters", "provenance"):
        assert key in summary, key
    assert summary["complete"] and summary["n_subjects"] == 4 and summary["n_voxels"] == 100
    assert summary["provenance"]["parameters"]["n_permutations"] == 19
    scores = pd.read_csv(folder / "unit_scores.tsv", sep="\t", dtype={"subject": str})
    assert list(scores.columns) == ["subject", "unit", "r", "mse"] and len(scores) == 80
    assert scores["unit"].iloc[0] == "Adoration"  # fc8 units carry EmoNet's category names
    z = nib.load(folder / "weights_z_fdr05.nii.gz")
    assert z.shape == (5, 5, 4, 20)
    for name in ("weights_z.nii.gz", "bootstrap_pca.tsv", "bootstrap_pca.nii.gz", "units.tsv",
                 "confusion.tsv", "clusters.tsv", "decoding.npz"):
        assert (folder / name).exists(), name
    assert not (folder / "checkpoints").exists()
    # same parameters: the folder is accepted again; other parameters: refused
    _run(tiny_study, tmp_path)
    with pytest.raises(BrainnetError, match="choose another --out folder or pass --overwrite"):
        _run(tiny_study, tmp_path, n_permutations=29)


def test_decode_units_subject_errors(tiny_study):
    with pytest.raises(BrainnetError, match=r"^--subjects 09: no such subject in .*; choose from 01, 02, 03, 04$"):
        decode_units(tiny_study, subjects=["01", "02", "09"], features=tiny_study / "feats.npz")
    with pytest.raises(BrainnetError, match="^--subjects: 2 subjects given; leave-one-subject-out decoding needs at least 3$"):
        decode_units(tiny_study, subjects=["01", "sub-02"], features=tiny_study / "feats.npz")


def test_cli_decode(tiny_study, tmp_path, capsys):
    from brainnet.cli import main

    common = ["--study", str(tiny_study), "--mask", str(tiny_study / "mask.nii.gz"), "--features",
              str(tiny_study / "feats.npz"), "--out", str(tmp_path)]
    code = main(["decode", *common, "--components", "2", "--permutations", "9", "--bootstrap", "0",
                 "--cluster-draws", "5", "--subjects", "01,02,03"])
    out = capsys.readouterr().out
    assert code == 0
    assert "fc8 decoded from 100 voxels of 3 subjects: mean r =" in out
    assert f"results: {tmp_path / 'group' / 'decode-fc8'}" in out
    code = main(["decode", *common, "--subjects", "01,02,77"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("brainnet decode: error: --subjects 77: no such subject")
    code = main(["decode", *common, "--layer", "fc9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "layer 'fc9' is not in these features; available: fc8" in err[0]
    assert main(["decode", *common, "--permutations", "-1"]) == 2
    assert "--permutations -1: must be 0 or more" in capsys.readouterr().err


def test_layers_wider_than_the_stimuli_are_decoded_through_their_span(monkeypatch, capsys):
    """fc6/fc7-style layers: PLS on the span of the stimulus rows equals PLS on every unit.

    With the power method run to convergence the two agree to float precision (the identity);
    at scikit-learn's stopping rule they differ by the method's tolerance only.
    """
    import brainnet.decoding as D
    import brainnet.pls as P

    patterns, ids, features, fids, _ = _arrays(4, 24, 50, 120, signal_units=range(0, 120, 8), strength=0.4, seed=2)
    kw = dict(n_components=3, n_permutations=15, n_bootstrap=0, confusion=False, seed=0)
    default = D.unit_decoding(patterns, ids, features, fids, **kw)
    for cls in (P.CrossValidatedPLS, P.KernelPLS):
        monkeypatch.setattr(cls.__init__, "__kwdefaults__", {**cls.__init__.__kwdefaults__, "tol": 1e-15, "max_iter": 20000})
    direct = D.unit_decoding(patterns, ids, features, fids, **kw)
    monkeypatch.setattr(D, "MAX_UNITS", 40)  # 120 units > 40: the span path (24 dimensions)
    spanned = D.unit_decoding(patterns, ids, features, fids, **kw)
    assert spanned.summary["unit_span"] == 24 and direct.summary["unit_span"] is None
    for a, b in zip(direct.predictions, spanned.predictions, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(spanned.null, direct.null, atol=1e-5)
    np.testing.assert_allclose(spanned.coef, direct.coef, atol=1e-6)
    assert spanned.unit_scores["r"].shape == (4 * 120,)
    # At the default stopping rule: the same decoding, within the power method's tolerance.
    for cls in (P.CrossValidatedPLS, P.KernelPLS):
        monkeypatch.setattr(cls.__init__, "__kwdefaults__", {**cls.__init__.__kwdefaults__, "tol": 1e-6, "max_iter": 500})
    with pytest.warns(BrainnetNotice) as notices:
        quick = D.unit_decoding(patterns, ids, features, fids, **{**kw, "n_bootstrap": 2, "confusion": True})
    assert abs(quick.summary["mean_r"] - default.summary["mean_r"]) < 1e-4
    np.testing.assert_allclose(quick.unit_scores["r"], default.unit_scores["r"], atol=2e-2)
    assert quick.summary["skipped"] == ["bootstrap maps", "confusion analysis"] and quick.bootstrap_z is None
    assert [str(n.message) for n in notices] == [
        "120 units (> 40): decoded through their 24-dimensional span; bootstrap maps and confusion analysis skipped"]


def test_cli_decodes_a_wide_layer_end_to_end(tmp_path, capsys):
    """brainnet decode --layer fc7 (4,096 units) on a small simulated study: every unit scored and written."""
    import json

    from brainnet.cli import main
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=3, n_stimuli=16, seed=4)
    feats = tmp_path / "fc7.npz"
    assert main(["extract", "--stimuli", str(study / "stimuli.tsv"), "--layers", "fc7", "--out", str(feats), "--quiet"]) == 0
    out = tmp_path / "out"
    argv = ["decode", "--study", str(study), "--features", str(feats), "--layer", "fc7", "--permutations", "4",
            "--components", "2", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "4096 units (> 1024): decoded through their 16-dimensional span" in err and "Traceback" not in err
    folder = out / "group" / "decode-fc7"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["n_units"] == 4096 and summary["unit_span"] == 16
    assert "bootstrap maps" in summary["skipped"]
    import pandas as pd

    units = pd.read_csv(folder / "units.tsv", sep="\t")
    assert len(units) == 4096 and units["p"].between(0, 1).all()
