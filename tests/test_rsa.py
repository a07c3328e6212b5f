"""RSA: RDMs and comparisons against rsatoolbox, the network-as-subject test
against literal scipy loops, and its behaviour on data with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from brainnet import rsa
from brainnet.errors import BrainnetError
from brainnet.permutation import bootstrap_indices, permutation_indices

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.inference import boot_noise_ceiling  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm, compare  # noqa: E402


def _ids(n):
    return [f"s{k:03d}" for k in range(n)]


def _group(rng, n_stimuli=20, n_subjects=8, n_voxels=40, noise=1.0, dims=6):
    """Subjects share a geometry (latent stimulus space) plus independent noise."""
    latent = rng.normal(size=(n_stimuli, dims))
    patterns = [
        latent @ rng.normal(size=(dims, n_voxels)) + noise * rng.normal(size=(n_stimuli, n_voxels))
        for _ in range(n_subjects)
    ]
    return latent, patterns


# --------------------------------------------------------------------------- RDMs vs rsatoolbox


@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_rdm_equals_rsatoolbox_with_repeats_averaged(metric):
    rng = np.random.default_rng(0)
    ids = np.repeat(_ids(12), 3)
    patterns = rng.normal(size=(ids.size, 30))
    ours = rsa.compute_rdm(patterns, ids, metric=metric, order=sorted(set(ids)))
    ds = Dataset(patterns, obs_descriptors={"stim": list(ids)})
    ref = calc_rdm(ds, method=metric, descriptor="stim").get_vectors()[0]
    np.testing.assert_allclose(ours.vector, ref, rtol=1e-10, atol=1e-12)
    assert ours.stimulus_ids == tuple(sorted(set(ids)))


def test_cosine_rdm_equals_scipy_pdist():
    x = np.random.default_rng(1).normal(size=(10, 7))
    np.testing.assert_allclose(rsa.compute_rdm(x, metric="cosine").vector, pdist(x, "cosine"))
    np.testing.assert_allclose(
        rsa.compute_rdm(x, metric="cosine").matrix(), squareform(pdist(x, "cosine"))
    )


@pytest.mark.parametrize("noise", ["identity", "shrinkage", "diagonal"])
def test_crossnobis_equals_rsatoolbox(noise):
    rng = np.random.default_rng(2)
    ids = np.tile(_ids(9), 3)
    runs = np.repeat([1, 2, 3], 9)
    patterns = rng.normal(size=(ids.size, 15)) + rng.normal(size=(9, 15))[np.tile(np.arange(9), 3)]
    ours = rsa.compute_rdm(
        patterns, ids, metric="crossnobis", runs=runs, noise=noise, order=_ids(9)
    )
    precision = rsa.noise_precision(patterns, ids, noise)
    ds = Dataset(patterns, obs_descriptors={"stim": list(ids), "run": runs})
    ref = calc_rdm(ds, method="crossnobis", descriptor="stim", cv_descriptor="run", noise=precision)
    np.testing.assert_allclose(ours.vector, ref.get_vectors()[0], rtol=1e-9, atol=1e-12)


def test_crossnobis_is_unbiased_where_euclidean_is_not():
    # Identical true patterns: the cross-validated distance is ~0 on average, the plain one > 0.
    rng = np.random.default_rng(3)
    ids = np.tile(_ids(6), 4)
    runs = np.repeat([1, 2, 3, 4], 6)
    cv, plain = [], []
    for _ in range(30):
        x = rng.normal(size=(ids.size, 50))
        cv.append(rsa.compute_rdm(x, ids, metric="crossnobis", runs=runs).vector.mean())
        plain.append(rsa.compute_rdm(x, ids, metric="euclidean").vector.mean())
    assert abs(np.mean(cv)) < 4 * np.std(cv) / np.sqrt(30)
    assert np.mean(plain) > 0.3


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize("method", list(rsa.RSATOOLBOX_COMPARE))
def test_compare_equals_rsatoolbox(method):
    rng = np.random.default_rng(4)
    a = rng.random((3, 66))
    b = rng.random((4, 66)) + 0.5 * a[0]
    b[1, :5] = b[1, 0]  # ties
    ref = compare(RDMs(a), RDMs(b), method=rsa.RSATOOLBOX_COMPARE[method])
    np.testing.assert_allclose(rsa.compare_rdms(a, b, method), ref, rtol=1e-9, atol=1e-12)
    # rsatoolbox's own names are accepted as aliases
    np.testing.assert_allclose(
        rsa.compare_rdms(a, b, rsa.RSATOOLBOX_COMPARE[method]), ref, atol=1e-12
    )


def test_spearman_and_tau_a_equal_scipy():
    rng = np.random.default_rng(5)
    x, y = rng.random(45), rng.random(45)
    assert rsa.compare_rdms(x, y, "spearman")[0, 0] == pytest.approx(
        stats.spearmanr(x, y).statistic
    )
    # without ties tau-a equals tau-b
    assert rsa.compare_rdms(x, y, "tau-a")[0, 0] == pytest.approx(stats.kendalltau(x, y).statistic)


@pytest.mark.parametrize("method", list(rsa.RSATOOLBOX_COMPARE))
def test_noise_ceiling_equals_rsatoolbox(method):
    rng = np.random.default_rng(6)
    humans = rng.random((6, 45)) + rng.random(45)
    lower, upper = rsa.noise_ceiling(humans, method)
    ref_lower, ref_upper = boot_noise_ceiling(RDMs(humans), method=rsa.RSATOOLBOX_COMPARE[method])
    # rsatoolbox pools whitened RDMs with an iterative solver (cg, rtol 1e-5);
    # ours is exact, so those two agree to the solver's precision only.
    tol = 1e-3 if method.startswith("whitened") else 1e-10
    assert lower.mean() == pytest.approx(ref_lower, abs=tol)
    assert upper.mean() == pytest.approx(ref_upper, abs=tol)
    assert np.all(lower <= upper + 1e-12) or method == "tau-a"


# --------------------------------------------------------------------------- network as subject: exactness


def _square_permuted(vector, perm):
    mat = squareform(vector)
    return squareform(mat[np.ix_(perm, perm)], checks=False)


def test_permutation_null_equals_literal_spearmanr_loop():
    rng = np.random.default_rng(7)
    _, patterns = _group(rng, n_stimuli=15, n_subjects=5)
    humans = np.array([rsa.compute_rdm(p).vector for p in patterns])
    net = {"a": rsa.compute_rdm(rng.normal(size=(15, 9))).vector, "b": humans[0] + rng.random(105)}
    res = rsa.rsa_network_subject(humans, net, n_permutations=25, n_bootstrap=0, seed=3)
    perms = permutation_indices(15, 0, 25, seed=3)
    for name in net:
        loop = [
            np.mean([stats.spearmanr(_square_permuted(net[name], p), h).statistic for h in humans])
            for p in perms
        ]
        np.testing.assert_allclose(res.layers[name].null, loop, rtol=1e-10, atol=1e-12)
        observed = np.mean([stats.spearmanr(net[name], h).statistic for h in humans])
        assert res.layers[name].network_human_r == pytest.approx(observed)
        p = (1 + np.sum(np.array(loop) >= observed - 1e-12)) / 26
        assert res.layers[name].p_value == pytest.approx(p)
        assert res.layers[name].p_fwe >= res.layers[name].p_value


@pytest.mark.parametrize(
    "method", ["pearson", "cosine", "whitened-cosine", "whitened-pearson", "tau-a"]
)
def test_permutation_null_equals_direct_comparison_of_permuted_rdms(method):
    rng = np.random.default_rng(8)
    humans = rng.random((4, 45))
    net = {"x": rng.random(45)}
    res = rsa.rsa_network_subject(humans, net, compare=method, n_permutations=20, n_bootstrap=0)
    perms = permutation_indices(10, 0, 20, seed=0)
    loop = [rsa.compare_rdms(_square_permuted(net["x"], p), humans, method).mean() for p in perms]
    np.testing.assert_allclose(res.layers["x"].null, loop, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine", "tau-a"])
def test_stimulus_bootstrap_drops_duplicate_pairs_and_matches_direct_recomputation(method):
    rng = np.random.default_rng(9)
    n = 12
    humans = rng.random((4, n * (n - 1) // 2))
    humans[0, :6] = 0.5  # ties must rank as scipy ranks them
    network = rng.random((2, humans.shape[1]))
    draws = bootstrap_indices(n, 0, 15, seed=1)
    got = rsa._stimulus_bootstrap_statistic(network, humans, method)(draws)
    iu, ju = np.triu_indices(n, 1)
    for k, draw in enumerate(draws):
        full_h = [squareform(h)[np.ix_(draw, draw)][iu, ju] for h in humans]
        full_n = [squareform(v)[np.ix_(draw, draw)][iu, ju] for v in network]
        keep = draw[iu] != draw[ju]  # a stimulus paired with its own copy has no distance
        expected = rsa.compare_rdms(np.array(full_n)[:, keep], np.array(full_h)[:, keep], method)
        np.testing.assert_allclose(got[k], expected.mean(axis=1), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_stimulus_bootstrap_equals_rsatoolbox_subsample_pattern(method):
    # rsatoolbox sets the distance of a stimulus to its own copy to NaN and compare() drops it
    rng = np.random.default_rng(15)
    n = 12
    humans, network = rng.random((4, 66)), rng.random((2, 66))
    draws = bootstrap_indices(n, 0, 6, seed=2)
    got = rsa._stimulus_bootstrap_statistic(network, humans, method)(draws)
    desc = {"index": np.arange(n)}
    for k, draw in enumerate(draws):
        h = RDMs(humans, pattern_descriptors=desc).subsample_pattern("index", draw)
        m = RDMs(network, pattern_descriptors=desc).subsample_pattern("index", draw)
        expected = compare(m, h, rsa.RSATOOLBOX_COMPARE[method]).mean(axis=1)
        np.testing.assert_allclose(got[k], expected, rtol=1e-9, atol=1e-12)


def test_results_do_not_depend_on_n_jobs():
    rng = np.random.default_rng(16)
    humans, net = rng.random((5, 45)), rng.random(45)
    one = rsa.rsa_network_subject(humans, {"x": net}, n_permutations=150, n_bootstrap=30)
    two = rsa.rsa_network_subject(humans, {"x": net}, n_permutations=150, n_bootstrap=30, n_jobs=2)
    np.testing.assert_array_equal(one.layers["x"].null, two.layers["x"].null)
    assert one.layers["x"].ci_stimuli == two.layers["x"].ci_stimuli


def test_second_order_matrix_ranks_and_ceilings():
    rng = np.random.default_rng(10)
    _, patterns = _group(rng, n_subjects=6)
    humans = np.array([rsa.compute_rdm(p).vector for p in patterns])
    net = rsa.compute_rdm(rng.normal(size=(20, 5))).vector
    res = rsa.rsa_network_subject(humans, {"fc8": net}, n_permutations=0, n_bootstrap=0)
    layer = res.layers["fc8"]
    assert layer.second_order.shape == (7, 7)
    np.testing.assert_allclose(layer.second_order, layer.second_order.T)
    np.testing.assert_allclose(layer.second_order[:6, :6], rsa.compare_rdms(humans, humans))
    np.testing.assert_allclose(layer.second_order[6, :6], rsa.compare_rdms(net, humans)[0])
    assert layer.network_rank == 1 + np.sum(res.lower > layer.network_to_mean)
    assert layer.mds.shape == (7, 2)
    loo = [stats.spearmanr(humans[s], np.delete(humans, s, 0).mean(0)).statistic for s in range(6)]
    # Spearman pools average ranks (rsatoolbox), not raw values: close to, not equal to, the raw mean
    assert np.corrcoef(res.lower, loo)[0, 1] > 0.9


# --------------------------------------------------------------------------- known answers


def _simulate_rsa(rng, shared: bool, n_stimuli=24, n_subjects=8, noise=1.5):
    latent, patterns = _group(rng, n_stimuli=n_stimuli, n_subjects=n_subjects, noise=noise)
    humans = np.array([rsa.compute_rdm(p).vector for p in patterns])
    source = latent if shared else rng.normal(size=latent.shape)
    network = source @ rng.normal(size=(source.shape[1], 30))
    return humans, rsa.compute_rdm(network).vector


def test_network_sharing_the_geometry_is_found_and_placed_among_humans():
    humans, net = _simulate_rsa(np.random.default_rng(11), shared=True)
    res = rsa.rsa_network_subject(humans, {"fc8": net}, n_permutations=199, n_bootstrap=100)
    layer = res.layers["fc8"]
    assert layer.network_human_r > 0.3
    assert layer.p_value <= 0.01
    assert layer.ci_subjects[0] > 0 and layer.ci_stimuli[0] > 0
    # noise-free network: at least as typical of the group as a typical subject
    assert layer.network_rank <= len(res.subjects) // 2 + 1


def test_unrelated_network_is_not_found():
    humans, net = _simulate_rsa(np.random.default_rng(12), shared=False)
    res = rsa.rsa_network_subject(humans, {"fc8": net}, n_permutations=199, n_bootstrap=100)
    layer = res.layers["fc8"]
    assert abs(layer.network_human_r) < 0.15
    assert layer.p_value > 0.05
    assert layer.network_rank == len(res.subjects) + 1  # last: below every subject
    assert layer.below_ceiling_p < 0.001
    assert layer.ci_stimuli[0] < layer.network_human_r < layer.ci_stimuli[1]


def test_null_p_values_are_uniform(science_scale):
    n_sim = 300 if science_scale == "full" else 80
    rng = np.random.default_rng(13)
    p = []
    for _ in range(n_sim):
        humans, net = _simulate_rsa(rng, shared=False, n_stimuli=10, n_subjects=4)
        res = rsa.rsa_network_subject(
            humans, {"x": net}, n_permutations=99, n_bootstrap=0, seed=int(rng.integers(1 << 30))
        )
        p.append(res.layers["x"].p_value)
    p = np.array(p)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert stats.binomtest(int(np.sum(p <= 0.05)), n_sim, 0.05).pvalue > 0.01


def test_max_statistic_across_layers_controls_family_wise_error(science_scale):
    n_sim = 200 if science_scale == "full" else 60
    rng = np.random.default_rng(14)
    hits = 0
    for _ in range(n_sim):
        humans, _ = _simulate_rsa(rng, shared=False, n_stimuli=10, n_subjects=4)
        layers = {f"l{k}": rsa.compute_rdm(rng.normal(size=(10, 5))).vector for k in range(4)}
        res = rsa.rsa_network_subject(
            humans, layers, n_permutations=99, n_bootstrap=0, seed=int(rng.integers(1 << 30))
        )
        hits += min(r.p_fwe for r in res.layers.values()) <= 0.05
    assert stats.binomtest(hits, n_sim, 0.05).pvalue > 0.01


# --------------------------------------------------------------------------- errors


def test_bad_input_messages():
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.random(shape)

    with pytest.raises(
        BrainnetError, match=r"^--rdm 'manhattan' is unknown; use one of correlation"
    ):
        rsa.compute_rdm(np.ones((4, 3)), metric="manhattan")
    with pytest.raises(
        BrainnetError, match=r"^--compare 'kendall' is unknown; use one of spearman"
    ):
        rsa.compare_rdms(np.ones(6), np.ones(6), "kendall")
    with pytest.raises(BrainnetError, match="needs at least 3 subjects, got 2; add subjects"):
        rsa.rsa_network_subject(rand(2, 6), {"fc8": rand(6)})
    with pytest.raises(BrainnetError, match="network RDMs have 10 entries but the human RDMs 6"):
        rsa.rsa_network_subject(rand(3, 6), {"fc8": rand(10)})
    with pytest.raises(BrainnetError, match="crossnobis needs the run of each trial"):
        rsa.compute_rdm(rand(8, 3), metric="crossnobis")
    with pytest.raises(BrainnetError, match="run 2 lacks"):
        rsa.compute_rdm(
            rand(5, 3), ["a", "b", "c", "a", "b"], metric="crossnobis", runs=[1, 1, 1, 2, 2]
        )
    with pytest.raises(BrainnetError, match=r"stimuli \['s1'\] have a constant pattern"):
        rsa.compute_rdm(np.array([[1.0, 2, 3], [2, 2, 2], [0, 1, 5]]), ["s0", "s1", "s2"])
    with pytest.raises(BrainnetError, match="not n\\*\\(n-1\\)/2"):
        rsa.compare_rdms(np.ones((2, 5)), np.ones((2, 5)), "whitened-cosine")


def test_unknown_layer_message():
    pytest.importorskip("brainnet.models.emonet")
    from brainnet.runs import check_layers

    with pytest.raises(
        BrainnetError, match=r"^--layers 'fc9' is unknown; use one or more of conv1"
    ):
        check_layers("fc8,fc9", None)


# --------------------------------------------------------------------------- study and CLI


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    pytest.importorskip("brainnet.study")
    simulate = pytest.importorskip("brainnet.simulate")
    from brainnet.features import Features, save_features

    load_truth, simulate_study = simulate.load_truth, simulate.simulate_study

    root = tmp_path_factory.mktemp("rsa_study")
    study = simulate_study(
        root / "study", n_subjects=5, n_stimuli=24, n_repeats=2, snr=2.0, resolution_mm=8.0, seed=4
    )
    truth = load_truth(study)
    ids = [str(s) for s in truth["stimulus_ids"]]
    shared = save_features(Features(ids, {"fc8": truth["features"]}), root / "truth.npz")
    rng = np.random.default_rng(0)
    unrelated = save_features(
        Features(ids, {"fc8": rng.normal(size=truth["features"].shape)}), root / "random.npz"
    )
    return study, shared, unrelated


def _run_cli(argv, capsys):
    from brainnet.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_reports_shared_and_unrelated_geometry(small_study, tmp_path, capsys):
    study, shared, unrelated = small_study
    results = {}
    for name, feats in (("shared", shared), ("unrelated", unrelated)):
        out = tmp_path / name
        code, stdout, _ = _run_cli(
            [
                "rsa",
                "--study",
                str(study),
                "--features",
                str(feats),
                "--permutations",
                "199",
                "--bootstrap",
                "50",
                "--out",
                str(out),
            ],
            capsys,
        )
        assert code == 0, stdout
        assert "network-human r" in stdout and str(out / "group") in stdout
        folder = out / "group" / "rsa-fc8"
        summary = json.loads((folder / "summary.json").read_text())
        for key in (
            "analysis",
            "layer",
            "model",
            "n_subjects",
            "n_stimuli",
            "n_voxels",
            "mean_r",
            "network_human_r",
            "noise_ceiling",
            "noise_ceiling_lower",
            "noise_ceiling_upper",
            "network_rank",
            "p_value",
            "p_fwe",
            "n_permutations",
            "ci",
            "provenance",
        ):
            assert key in summary, key
        assert summary["complete"] is True and summary["n_subjects"] == 5
        assert summary["n_stimuli"] == 24 and summary["n_permutations"] == 199
        second = pd.read_csv(folder / "second_order.tsv", sep="\t")
        assert second.shape == (6, 7) and second["subject"].iloc[-1] == "network"
        assert pd.read_csv(folder / "mds.tsv", sep="\t").shape == (6, 3)
        results[name] = summary
    # same command again: same fingerprint, accepted; other parameters: refused with the fix
    argv = [
        "rsa",
        "--study",
        str(study),
        "--features",
        str(shared),
        "--bootstrap",
        "50",
        "--out",
        str(tmp_path / "shared"),
    ]
    assert _run_cli([*argv, "--permutations", "199"], capsys)[0] == 0
    code, _, err = _run_cli([*argv, "--permutations", "99"], capsys)
    assert code == 2 and err.strip().endswith("choose another --out folder or pass --overwrite")
    assert results["shared"]["network_human_r"] > 0.3 and results["shared"]["p_value"] < 0.01
    assert abs(results["unrelated"]["network_human_r"]) < 0.15
    assert results["unrelated"]["p_value"] > 0.05


def test_cli_crossnobis_and_several_layers(small_study, tmp_path, capsys):
    study, shared, _ = small_study
    from brainnet.features import load_features, save_features

    feats = load_features(shared)
    two = save_features(
        type(feats)(
            feats.stimulus_ids, {"fc7": feats.layer("fc8")[:, ::-1] ** 2, "fc8": feats.layer("fc8")}
        ),
        tmp_path / "two.npz",
    )
    code, stdout, err = _run_cli(
        [
            "rsa",
            "--study",
            str(study),
            "--features",
            str(two),
            "--layers",
            "fc7,fc8",
            "--rdm",
            "crossnobis",
            "--noise",
            "shrinkage",
            "--compare",
            "whitened-pearson",
            "--permutations",
            "49",
            "--bootstrap",
            "20",
            "--out",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert code == 0, err
    profile = pd.read_csv(tmp_path / "out" / "group" / "rsa-layers.tsv", sep="\t")
    assert list(profile["layer"]) == ["fc7", "fc8"]
    assert set(profile["p_fwe"] >= profile["p_value"]) == {True}


def test_cli_bad_input_exits_2_with_one_line(small_study, tmp_path, capsys):
    study, shared, _ = small_study
    code, _, err = _run_cli(
        ["rsa", "--study", str(study), "--layers", "fc9", "--out", str(tmp_path)], capsys
    )
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("brainnet rsa: error: --layers 'fc9' is unknown")
    code, _, err = _run_cli(
        [
            "rsa",
            "--study",
            str(study),
            "--features",
            str(shared),
            "--subjects",
            "01,02",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "brainnet rsa: error: network-as-subject RSA needs at least 3 subjects, got 2; add subjects"
    )
    code, _, err = _run_cli(
        [
            "rsa",
            "--study",
            str(study),
            "--features",
            str(shared),
            "--subjects",
            "01,77",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 2 and "--subject 77: not in" in err


def test_below_ceiling_permutation_is_calibrated_and_finds_a_worse_network(science_scale):
    """Issue 17: the engine's test that the network is below the human ceiling."""
    n_sim = 600 if science_scale == "full" else 200
    rng = np.random.default_rng(21)
    n_subjects, n_stimuli = 24, 10
    pairs = n_stimuli * (n_stimuli - 1) // 2
    p_null = []
    for sim in range(n_sim):
        # The network is one more subject of the same group: shared geometry plus its own noise.
        members = rng.standard_normal(pairs) + 1.5 * rng.standard_normal((n_subjects + 1, pairs))
        p_null.append(rsa._below_ceiling_permutation(members[-1], members[:-1], "spearman", 199, sim, 1))
    rate = np.mean(np.array(p_null) <= 0.05)
    assert 0.02 <= rate <= 0.08, rate
    # End to end: a network without the shared geometry is the least typical member, p at its floor 1/(n+1).
    worse = rsa.rsa_network_subject(members[:-1], {"x": rng.standard_normal(pairs)}, n_permutations=199,
                                    n_bootstrap=0).layers["x"]
    assert worse.below_ceiling_p_permutation <= 1.5 / (n_subjects + 1)
    typical = rsa.rsa_network_subject(members[:-1], {"x": members[-1]}, n_permutations=199,
                                      n_bootstrap=0).layers["x"]
    loo = rsa.noise_ceiling(members, "spearman")[0]
    exact = np.mean(loo <= loo[-1])  # the exact rank test: relabellings are equally likely
    assert typical.below_ceiling_p_permutation == pytest.approx(exact, abs=0.1)
