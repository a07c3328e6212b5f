"""Variance partitioning: himalaya agreement, planted fractions, calibrated unique-part tests, controls."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from brainnet.errors import BrainnetError
from brainnet.lowlevel import gabor_features, pixel_features
from brainnet.partition import PartitionResult, variance_partition


def _simulate(rng, n, n_vox, f_shared=0.2, f_a=0.15, f_b=0.10, d=3, p=20, b_shares=True):
    """Two feature spaces from latent sources: s (in both), u_a (only a), u_b (only b).

    Each voxel's response has unit variance: ``f_shared`` from s, ``f_a`` from
    u_a, ``f_b`` from u_b, the rest noise, so the population partition is
    union = f_shared + f_a + f_b, unique_a = f_a, unique_b = f_b, shared = f_shared.
    """
    s, ua, ub = (rng.standard_normal((n, d)) for _ in range(3))
    b_source = s if b_shares else rng.standard_normal((n, d))
    xa = np.hstack([s, ua]) @ rng.standard_normal((2 * d, p))
    xb = np.hstack([b_source, ub]) @ rng.standard_normal((2 * d, p))

    def component(z):
        w = rng.standard_normal((d, n_vox))
        return z @ (w / np.linalg.norm(w, axis=0))

    y = (np.sqrt(f_shared) * component(s) + np.sqrt(f_a) * component(ua) + np.sqrt(f_b) * component(ub)
         + np.sqrt(1 - f_shared - f_a - f_b) * rng.standard_normal((n, n_vox)))
    return {"a": xa, "b": xb}, y


FAST = {"n_iter": 8, "inner_cv": 3}


def test_joint_and_single_models_equal_himalaya():
    from himalaya.kernel_ridge import MultipleKernelRidgeCV

    from brainnet.encoding import make_folds
    from brainnet.partition import _kernels, _r2

    rng = np.random.default_rng(0)
    spaces, y = _simulate(rng, 60, 12)
    with threadpool_limits(1):
        res = variance_partition(spaces, y, n_permutations=3, seed=2, **FAST)
    yc = y - y.mean(axis=0)
    kernels = _kernels(list(spaces.values()))
    joint, only_a = np.zeros_like(yc), np.zeros_like(yc)
    for train, test in make_folds(60, 5, 2):
        for ks, out in ((kernels, joint), (kernels[:1], only_a)):
            model = MultipleKernelRidgeCV(kernels="precomputed", cv=3, random_state=2, solver_params={
                "n_iter": 8, "alphas": np.logspace(-3, 5, 9), "progress_bar": False})
            model.fit(ks[:, train][:, :, train], yc[train])
            out[test] = model.predict(ks[:, test][:, :, train])
    np.testing.assert_allclose(res.table["union"], _r2(yc, joint), atol=1e-9)
    np.testing.assert_allclose(res.table["r2_without_b"], _r2(yc, only_a), atol=1e-9)
    np.testing.assert_allclose(res.table["unique_b"], _r2(yc, joint) - _r2(yc, only_a), atol=1e-9)


def test_refit_with_fixed_scalings_equals_himalaya_prediction():
    from brainnet.partition import _fit, _Fold, _groups, _kernels, _unique_statistic

    rng = np.random.default_rng(1)
    spaces, y = _simulate(rng, 50, 9)
    y = y - y.mean(axis=0)
    kernels = _kernels(list(spaces.values()))
    train, test = np.arange(40), np.arange(40, 50)
    with threadpool_limits(1):
        pred, deltas = _fit(kernels, y, train, test, n_iter=8, alphas=np.logspace(-3, 5, 9), inner_cv=3, seed=0)
    fold = _Fold(train, test, *_groups(deltas))
    stat = _unique_statistic(kernels, y, [fold], 1, np.zeros(9))
    identity = stat(np.arange(50)[None])[0]
    ss = np.sum(y**2, axis=0)
    expected = 1 - np.sum((y[test] - pred) ** 2, axis=0) / ss
    np.testing.assert_allclose(identity, expected, atol=1e-5)  # float32 statistic


def test_planted_fractions_recovered(science_scale):
    # Cross-validated R² is biased low by estimation error (about n_features / n_train of the
    # explainable variance), most for the union, which sums the parts: tolerances per scale.
    n, tol, tol_union = (500, 0.03, 0.04) if science_scale == "full" else (200, 0.05, 0.08)
    rng = np.random.default_rng(3)
    spaces, y = _simulate(rng, n, 24)
    with threadpool_limits(1):
        res = variance_partition(spaces, y, n_permutations=0, n_iter=20, inner_cv=3)
    s = res.summary
    assert s["mean_union"] == pytest.approx(0.45, abs=tol_union)
    assert s["mean_shared"] == pytest.approx(0.20, abs=tol)
    assert s["mean_unique_a"] == pytest.approx(0.15, abs=tol)
    assert s["mean_unique_b"] == pytest.approx(0.10, abs=tol)
    assert s["mean_unique_a"] > s["mean_unique_b"]


def test_unique_part_detected_when_present():
    rng = np.random.default_rng(4)
    spaces, y = _simulate(rng, 80, 6, f_b=0.25)
    with threadpool_limits(1):
        res = variance_partition(spaces, y, n_permutations=99, test=["b"], **FAST)
    assert (res.table["unique_b_p_fwe"] <= 0.05).all()


@pytest.mark.parametrize("b_shares", [False, True], ids=["independent", "shared-variance"])
def test_unique_part_test_calibrated_on_null_studies(science_scale, b_shares):
    # With shared variance, permuting all of b's rows rejected 26 of 200 studies at the
    # first voxel (binomial p < 1e-4): the full scale catches that; Freedman-Lane gives 7.
    n_studies = 200 if science_scale == "full" else 40
    fwe = first = 0
    with threadpool_limits(1):
        for study in range(n_studies):
            rng = np.random.default_rng(700 + study)
            spaces, y = _simulate(rng, 50, 5, f_shared=0.4 if b_shares else 0.2, f_b=0.0, b_shares=b_shares)
            res = variance_partition(spaces, y, n_permutations=49, seed=study, test=["b"], **FAST)
            fwe += bool((res.table["unique_b_p_fwe"] <= 0.05).any())
            first += bool(res.table["unique_b_p"].iloc[0] <= 0.05)
    for hits in (fwe, first):
        assert stats.binomtest(hits, n_studies, 0.05, alternative="greater").pvalue > 0.01, (fwe, first)


def test_result_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    spaces, y = _simulate(rng, 40, 8)
    ijk = np.argwhere(np.ones((2, 2, 2), bool))
    with threadpool_limits(1):
        res = variance_partition(spaces, y, n_permutations=9, voxel_ijk=ijk, affine=np.eye(4),
                                 shape=(2, 2, 2), **FAST)
    res.provenance = {"seed": 0}
    folder = res.write(tmp_path / "part")
    back = PartitionResult.read(folder)
    np.testing.assert_allclose(back.table["unique_a"], res.table["unique_a"], rtol=1e-12)
    np.testing.assert_allclose(back.null_max["b"], res.null_max["b"], rtol=1e-6)  # float32 null
    assert repr(back) == repr(res) and (folder / "partition.png").is_file()
    assert (folder / "unique_b_map.nii.gz").is_file()


def test_bad_arguments_one_line():
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(BrainnetError, match=r"^spaces: give at least two feature spaces to partition, got 1$"):
        variance_partition({"a": x}, x)
    with pytest.raises(BrainnetError, match=r"^test='c' is not one of the spaces \(a, b\)$"):
        variance_partition({"a": x, "b": x}, x, test=["c"])


def test_low_level_controls_respond_to_orientation_and_colour():
    yy, xx = np.mgrid[0:227, 0:227]
    vertical = 127 + 100 * np.sin(2 * np.pi * xx / 8.0)
    horizontal = 127 + 100 * np.sin(2 * np.pi * yy / 8.0)
    rgb = np.stack([np.stack([g] * 3) for g in (vertical, horizontal)]).astype(np.float32)
    g = gabor_features(rgb).reshape(2, 4, 8, 16).mean(axis=3)  # (image, scale, orientation)
    best = g.max(axis=1).argmax(axis=1)
    assert best[0] != best[1] and abs(int(best[0]) - int(best[1])) == 4  # 90 degrees apart of 8
    red = np.zeros((1, 3, 227, 227), np.float32)
    red[:, 0] = 255
    px = pixel_features(red)
    assert px.shape == (1, 266)
    np.testing.assert_allclose(px[0, :256], 0.299 * 255, rtol=1e-6)  # luminance thumbnail
    np.testing.assert_allclose(px[0, 256:266:2], [255, 0, 0, 255, -127.5], rtol=1e-6)  # channel means


def test_command_with_controls_writes_result_and_figure(tmp_path, capsys):
    from brainnet.cli import main
    from brainnet.plotting import make_figures
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=1, n_stimuli=24, seed=3)
    out = tmp_path / "out"
    argv = ["partition", "--study", study, "--mask", "v1", "--layers", "fc8", "--controls", "pixels",
            "--cv", "3", "--n-iter", "4", "--permutations", "9", "--out", out]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert "unique pixels: mean R²" in capsys.readouterr().out
    folder = out / "sub-01" / "partition-fc8+pixels-v1"  # a named region is in the name
    res = PartitionResult.read(folder)
    assert res.spaces == ["fc8", "pixels"] and res.provenance["controls"]["controls"] == ["pixels"]
    assert {"unique_fc8_p_fwe", "unique_pixels_p_fwe"} <= set(res.table.columns)
    assert any(p.name.endswith("partition.png") for p in make_figures(out, formats=("png",)))
    from brainnet.report import write_report

    html = write_report(out).read_text()
    assert "Variance partitioning (subject 01" in html and "of the feature spaces fc8, pixels" in html


def test_through_the_runner_other_parameters_are_refused_before_loading_and_a_rerun_reads(small_study, tmp_path,
                                                                                         monkeypatch):
    import warnings

    from brainnet.errors import BrainnetNotice
    from brainnet.partition import partition_subject
    from brainnet.study import Study

    study, feats = small_study
    out = tmp_path / "out"
    kw = dict(subject="02", layers="fc8", controls="pixels", features_file=feats, cv=3, n_iter=2, out=out)
    first = partition_subject(study, n_permutations=3, **kw)
    folder = out / "sub-02" / "partition-fc8+pixels"
    assert first.path == folder and first.provenance["parameters"]["n_permutations"] == 3
    assert first.provenance["controls"]["controls"] == ["pixels"]  # image-derived inputs are described too
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def no_loading(*args, **kwargs):
        raise AssertionError("subject data loaded before the folder was checked")

    monkeypatch.setattr(Study, "load_subject", no_loading)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError, match="^" + str(folder).replace("+", r"\+") + ": holds results made"):
            partition_subject(study, n_permutations=4, **kw)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{folder}: n_permutations=3 there, 4 in this run"]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    monkeypatch.undo()
    again = partition_subject(study, n_permutations=3, **kw)  # same parameters: the same numbers
    assert again.table.equals(first.table) and again.summary == first.summary
