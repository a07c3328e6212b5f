"""Searchlight RSA: rsatoolbox agreement, permutation exactness, planted signal, null calibration."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from brainnet.errors import BrainnetError
from brainnet.rsa import compute_rdm
from brainnet.searchlight import (
    SearchlightResult,
    searchlight_rdms,
    searchlight_rsa,
    sphere_neighbourhoods,
)


def _box_mask(shape=(7, 8, 6)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    mask[2, 2, 2] = False  # a hole, so truncated spheres occur inside too
    return mask


def _rsatoolbox_searchlight(mask, patterns_2d, keys, radius, model_vector):
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (
        evaluate_models_searchlight,
        get_searchlight_RDMs,
        get_volume_searchlight,
    )

    n = patterns_2d.shape[0]
    volume = np.zeros((n, mask.size))
    volume[:, keys] = patterns_2d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centres, neighbours = get_volume_searchlight(mask, radius=radius, threshold=0.5,
                                                     truncate_at_boundary=True)
        rdms = get_searchlight_RDMs(volume, centres, neighbours, np.arange(n), method="correlation",
                                    verbose=False)
        model = ModelFixed("layer", RDMs(model_vector[None]))
        evals = evaluate_models_searchlight(rdms, model, eval_fixed, method="spearman")
    return centres, neighbours, rdms.dissimilarities, np.array([e.evaluations for e in evals]).ravel()


def test_neighbourhoods_rdms_and_r_equal_rsatoolbox():
    rng = np.random.default_rng(0)
    mask = _box_mask()
    ijk = np.argwhere(mask)
    keys = np.ravel_multi_index(ijk.T, mask.shape)
    column = {k: c for c, k in enumerate(keys)}
    patterns = rng.standard_normal((10, ijk.shape[0]))
    layer = compute_rdm(rng.standard_normal((10, 6)), [str(i) for i in range(10)]).vector
    # rsatoolbox keeps voxels at distance < 2; ours at <= radius: the same set for radius sqrt(3)
    nb = sphere_neighbourhoods(ijk, np.sqrt(3))
    centres, neighbours, their_rdms, their_r = _rsatoolbox_searchlight(mask, patterns, keys, 2, layer)
    rows = np.array([column[c] for c in centres])
    for c, row in enumerate(rows):
        assert {column[v] for v in neighbours[c]} == set(nb[row][nb[row] < ijk.shape[0]].tolist())
    np.testing.assert_allclose(searchlight_rdms(patterns, nb)[rows], their_rdms, rtol=0, atol=1e-12)
    result = searchlight_rsa([patterns], layer, nb, voxel_ijk=ijk, n_permutations=0)
    np.testing.assert_allclose(result.subject_r[0, rows], their_r, rtol=0, atol=1e-12)
    assert nb[:, 0].tolist() == list(range(ijk.shape[0]))  # each sphere starts with its centre


def test_rdms_over_many_blocks_equal_numpy_corrcoef_per_sphere():
    # more spheres than one inner block (and a chunk ending mid-block), against np.corrcoef per sphere
    rng = np.random.default_rng(7)
    mask = _box_mask((9, 9, 8))
    ijk = np.argwhere(mask)
    patterns = rng.standard_normal((9, ijk.shape[0]))
    nb = sphere_neighbourhoods(ijk, 1.5)
    assert nb.shape[0] > 2 * 64
    ours = searchlight_rdms(patterns, nb, chunk_size=150)
    iu = np.triu_indices(9, 1)
    for row in range(nb.shape[0]):
        cols = nb[row][nb[row] < ijk.shape[0]]
        np.testing.assert_allclose(ours[row], 1 - np.corrcoef(patterns[:, cols])[iu], rtol=0, atol=1e-12)


def test_ranks_equal_scipy_with_ties_signed_zeros_and_near_equal_values():
    from brainnet.searchlight import _ranks

    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 300))
    x[0, :10] = 0.0
    x[0, 10:20] = -0.0  # equal to 0.0: one tie group
    x[1] = np.round(x[1], 1)  # many ties
    x[2, 1] = np.nextafter(x[2, 0], np.inf)  # differ in the last bit only (below the key's precision)
    x[3, 5] = np.nextafter(x[3, 4], -np.inf)
    x[4] *= 1e-300  # subnormal and tiny values
    np.testing.assert_array_equal(_ranks(x), stats.rankdata(x, axis=1))


def test_subject_threads_give_bit_identical_maps():
    rng = np.random.default_rng(9)
    ijk, subjects, layer, _ = _planted_study(rng, (6, 6, 5), 4, 9, np.array([2, 2, 2]), 1.0, 0.5)
    nb = sphere_neighbourhoods(ijk, 1.5)
    one = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=20, seed=2, n_jobs=1)
    two = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=20, seed=2, n_jobs=2)
    np.testing.assert_array_equal(one.subject_r, two.subject_r)
    np.testing.assert_array_equal(one.maps["r"], two.maps["r"])
    np.testing.assert_array_equal(one.null_max, two.null_max)


def test_sphere_radius_in_mm_uses_voxel_sizes():
    ijk = np.argwhere(np.ones((9, 9, 9), bool))
    centre = int(np.flatnonzero((ijk == 4).all(axis=1))[0])
    # 2 x 2 x 4 mm voxels, 4 mm radius: +-2 voxels in-plane, +-1 through-plane
    nb = sphere_neighbourhoods(ijk, 4.0, (2.0, 2.0, 4.0))
    members = ijk[nb[centre][nb[centre] < len(ijk)]] - 4
    assert np.abs(members[:, 2]).max() == 1 and np.abs(members[:, 0]).max() == 2
    mm = members * np.array([2.0, 2.0, 4.0])
    assert np.all(np.sqrt((mm**2).sum(axis=1)) <= 4.0)
    assert len(members) == np.sum(np.sqrt(((np.argwhere(np.ones((5, 5, 3))) - [2, 2, 1]) * [2, 2, 4]) ** 2)
                                  .sum(axis=1) <= 4)


def test_null_equals_a_loop_over_permuted_layer_rdms():
    from brainnet.permutation import permutation_indices

    rng = np.random.default_rng(1)
    ijk = np.argwhere(np.ones((4, 4, 3), bool))
    nb = sphere_neighbourhoods(ijk, 1.0)
    subjects = [rng.standard_normal((8, len(ijk))) for _ in range(3)]
    layer_matrix = compute_rdm(rng.standard_normal((8, 5)), [str(i) for i in range(8)]).matrix()
    iu = np.triu_indices(8, 1)
    result = searchlight_rsa(subjects, layer_matrix[iu], nb, voxel_ijk=ijk, n_permutations=7, seed=3,
                             chunk_size=5)
    sphere = np.stack([searchlight_rdms(s, nb) for s in subjects])  # (n_subjects, n_centres, n_pairs)
    perms = permutation_indices(8, 0, 7, 3)
    # null maps are not stored in the record; its max is: recompute the max-statistic null by a loop
    for k, perm in enumerate(perms):
        permuted = layer_matrix[np.ix_(perm, perm)][iu]
        group = np.mean([[stats.spearmanr(permuted, v).statistic for v in s] for s in sphere], axis=0)
        assert result.null_max[k] == pytest.approx(group.max(), abs=1e-6)  # float32 null
    observed = np.mean([[stats.spearmanr(layer_matrix[iu], v).statistic for v in s] for s in sphere], axis=0)
    np.testing.assert_allclose(result.maps["r"], observed, atol=1e-12)


def _planted_study(rng, shape, n_subjects, n_cond, centre, signal_radius, snr):
    """Subjects' patterns on a full box grid; inside a ball the patterns carry the layer's geometry."""
    ijk = np.argwhere(np.ones(shape, bool))
    features = rng.standard_normal((n_cond, 6))
    inside = np.sqrt(((ijk - centre) ** 2).sum(axis=1)) <= signal_radius
    subjects = []
    for _ in range(n_subjects):
        x = rng.standard_normal((n_cond, len(ijk)))
        x[:, inside] += snr * features @ rng.standard_normal((6, int(inside.sum())))
        subjects.append(x)
    layer = compute_rdm(features, [str(i) for i in range(n_cond)]).vector
    return ijk, subjects, layer, inside


def test_planted_sphere_found_by_fwe_maps_and_nothing_else():
    rng = np.random.default_rng(2)
    shape, centre, radius = (10, 10, 10), np.array([3, 4, 5]), 1.5
    ijk, subjects, layer, inside = _planted_study(rng, shape, 5, 12, centre, 1.5, 0.6)
    nb = sphere_neighbourhoods(ijk, radius)
    res = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=199, seed=0)
    _assert_planted_ball_found_and_nothing_else(res, ijk, inside, centre, radius + 1.5)
    assert res.summary["n_clusters_p_fwe_05"] == 1


def _assert_planted_ball_found_and_nothing_else(res, ijk, inside, centre, reach_radius):
    """Both FWE maps find most of the ball, nothing beyond ``reach_radius``; the top cluster peaks at it."""
    # a sphere can reach the signal only if its centre is within radius + signal radius of it
    reach = np.sqrt(((ijk - centre) ** 2).sum(axis=1)) <= reach_radius
    voxel_hits = res.maps["p_fwe"] <= 0.05
    cluster_hits = res.maps["cluster_p_fwe"] <= 0.05
    assert voxel_hits[inside].mean() > 0.5 and cluster_hits[inside].mean() > 0.5
    assert not voxel_hits[~reach].any() and not cluster_hits[~reach].any()
    peak = res.table.iloc[0]
    assert peak.p_fwe <= 0.05 and np.abs(np.array([peak.i, peak.j, peak.k]) - centre).max() <= 1


def _null_family_rejections(n_studies: int) -> tuple[int, int]:
    voxel = cluster = 0
    for study in range(n_studies):
        rng = np.random.default_rng(1000 + study)
        ijk, subjects, layer, _ = _planted_study(rng, (5, 5, 4), 3, 7, np.zeros(3), 0.0, 0.0)
        nb = sphere_neighbourhoods(ijk, 1.0)
        res = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=99, seed=study,
                              cluster_p=0.05)
        voxel += bool(np.any(res.maps["p_fwe"] <= 0.05))
        cluster += bool(np.any(res.maps["cluster_p_fwe"] <= 0.05))
    return voxel, cluster


def test_family_wise_error_calibrated_on_null_studies(science_scale):
    n_studies = 600 if science_scale == "full" else 150
    voxel, cluster = _null_family_rejections(n_studies)
    # one-sided: FWE control means at most 5 % (a conservative test passes)
    assert stats.binomtest(voxel, n_studies, 0.05, alternative="greater").pvalue > 0.01, voxel
    assert stats.binomtest(cluster, n_studies, 0.05, alternative="greater").pvalue > 0.01, cluster
    if science_scale == "full":  # and not grossly conservative
        assert voxel >= 5 and cluster >= 5


def test_threads_chunks_and_resume_give_identical_maps(tmp_path):
    rng = np.random.default_rng(4)
    ijk, subjects, layer, _ = _planted_study(rng, (6, 6, 5), 3, 9, np.array([2, 2, 2]), 1.0, 0.5)
    nb = sphere_neighbourhoods(ijk, 1.5)
    base = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=40, seed=5)
    other = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=40, seed=5, n_jobs=2,
                            chunk_size=17, batch_size=8, checkpoint_dir=tmp_path)
    resumed = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=40, seed=5, n_jobs=2,
                              chunk_size=17, batch_size=8, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir())[0] == "searchlight-chunk00000000.npz"
    for res in (other, resumed):
        for name in ("r", "p", "p_fwe", "cluster_p_fwe"):
            np.testing.assert_allclose(res.maps[name], base.maps[name], rtol=0, atol=1e-6)


def test_result_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    ijk, subjects, layer, _ = _planted_study(rng, (6, 6, 5), 3, 9, np.array([2, 2, 2]), 1.5, 1.0)
    nb = sphere_neighbourhoods(ijk, 1.5)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    res = searchlight_rsa(subjects, layer, nb, voxel_ijk=ijk, n_permutations=30, affine=affine,
                          shape=(6, 6, 5))
    res.provenance = {"seed": 0}
    folder = res.write(tmp_path / "sl")
    back = SearchlightResult.read(folder)
    for name, values in res.maps.items():
        np.testing.assert_array_equal(back.maps[name], values)
    assert back.table.shape == res.table.shape and back.subjects == res.subjects
    assert repr(back) == repr(res) and (folder / "searchlight_r.png").stat().st_size > 0
    import nibabel as nib

    img = nib.load(folder / "r_map.nii.gz")
    assert np.allclose(img.get_fdata()[tuple(ijk.T)], res.maps["r"], atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compare": "tau-a"}, "compare='tau-a': searchlight RSA supports spearman, pearson, cosine"),
        ({"cluster_p": 2.0}, "cluster_p=2.0, alpha=0.05: give probabilities between 0 and 1"),
    ],
)
def test_bad_arguments_one_line(kwargs, message):
    ijk = np.argwhere(np.ones((3, 3, 3), bool))
    nb = sphere_neighbourhoods(ijk, 1.0)
    x = np.random.default_rng(0).standard_normal((6, 27))
    with pytest.raises(BrainnetError) as err:
        searchlight_rsa([x], np.arange(15.0), nb, voxel_ijk=ijk, **kwargs)
    assert str(err.value) == message


def test_command_writes_maps_table_figure_and_enters_figures(tmp_path, capsys):
    from brainnet.cli import main
    from brainnet.plotting import make_figures
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=3, n_stimuli=16, seed=3)
    out = tmp_path / "out"
    argv = ["searchlight", "--study", study, "--mask", "occipital", "--radius", "8",
            "--permutations", "19", "--out", out]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert "searchlight RSA (spearman, 8 mm" in capsys.readouterr().out
    folder = out / "group" / "searchlight-fc8-occipital"  # a region other than the whole brain is named
    res = SearchlightResult.read(folder)
    assert res.summary["n_subjects"] == 3 and res.summary["n_permutations"] == 19
    assert res.provenance["parameters"]["radius_mm"] == 8.0 and res.provenance["weights"] == "untrained-seed0"
    for name in ("r_map", "p_map", "p_fwe_map", "cluster_p_fwe_map", "cluster_map"):
        assert (folder / f"{name}.nii.gz").is_file()
    written = make_figures(out, formats=("png",))
    assert any(p.name.endswith("searchlight_r.png") for p in written)
    from brainnet.report import write_report

    html = write_report(out).read_text()
    assert "searchlight_r" in html and "clusters.tsv" in html


def test_through_the_runner_other_parameters_are_refused_before_loading(small_study, tmp_path, monkeypatch):
    import re

    from brainnet.errors import BrainnetNotice
    from brainnet.searchlight import searchlight_group
    from brainnet.study import Study

    study, feats = small_study
    out = tmp_path / "out"
    kw = dict(mask="occipital", radius=8.0, features_file=feats, out=out)
    first = searchlight_group(study, n_permutations=5, **kw)
    folder = out / "group" / "searchlight-fc8-occipital"
    assert first.provenance["parameters"]["subjects"] == ["01", "02", "03", "04"]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def no_loading(*args, **kwargs):
        raise AssertionError("subject data loaded before the folder was checked")

    monkeypatch.setattr(Study, "load_subjects", no_loading)
    monkeypatch.setattr(Study, "load_subject", no_loading)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError, match="^" + re.escape(f"{folder}: holds results made with other")):
            searchlight_group(study, n_permutations=6, **kw)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{folder}: n_permutations=5 there, 6 in this run"]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- the encoding statistic


def _explicit_sphere_means(pattern: np.ndarray, nb: np.ndarray) -> np.ndarray:
    n_vox = pattern.shape[1]
    return np.stack([pattern[:, row[row < n_vox]].mean(axis=1) for row in nb], axis=1)


def test_encoding_equals_encode_of_each_subjects_sphere_means():
    from brainnet import encode
    from brainnet.searchlight import searchlight_encoding

    rng = np.random.default_rng(11)
    ijk, subjects, _, _ = _planted_study(rng, (5, 5, 4), 3, 15, np.array([2, 2, 2]), 1.0, 0.4)
    features = rng.standard_normal((15, 5))
    nb = sphere_neighbourhoods(ijk, 1.5)
    res = searchlight_encoding(subjects, features, nb, voxel_ijk=ijk, n_permutations=39, seed=3, cluster_p=0.05)
    per_subject = [encode(features, _explicit_sphere_means(x, nb), n_permutations=39, seed=3) for x in subjects]
    r = np.stack([e.voxel_scores["r"].to_numpy() for e in per_subject])
    null = np.mean([e.null for e in per_subject], axis=0)
    np.testing.assert_allclose(res.subject_r, r, rtol=0, atol=1e-10)
    group = r.mean(axis=0)
    np.testing.assert_allclose(res.maps["r"], group, rtol=0, atol=1e-10)
    # p and FWE p as counts over the group null, written out
    p = (1 + (null >= group - 1e-12).sum(axis=0)) / 40
    p_fwe = (1 + (null.max(axis=1)[:, None] >= group - 1e-12).sum(axis=0)) / 40
    np.testing.assert_allclose(res.maps["p"], p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.maps["p_fwe"], p_fwe, rtol=0, atol=1e-12)
    assert res.summary["statistic"] == "encoding" and res.summary["n_units"] == 5


def test_encoding_finds_a_planted_sphere_and_nothing_else():
    from brainnet.searchlight import searchlight_encoding

    rng = np.random.default_rng(2)
    shape, centre = (10, 10, 10), np.array([3, 4, 5])
    ijk = np.argwhere(np.ones(shape, bool))
    features = rng.standard_normal((30, 6))
    inside = np.sqrt(((ijk - centre) ** 2).sum(axis=1)) <= 1.5
    subjects = []
    for _ in range(4):  # every voxel of the ball carries one feature combination per subject
        x = rng.standard_normal((30, len(ijk)))
        x[:, inside] += 0.15 * (features @ rng.standard_normal(6))[:, None]
        subjects.append(x)
    nb = sphere_neighbourhoods(ijk, 1.5)
    res = searchlight_encoding(subjects, features, nb, voxel_ijk=ijk, n_permutations=99, seed=0)
    _assert_planted_ball_found_and_nothing_else(res, ijk, inside, centre, 3.0)


def test_encoding_family_wise_error_calibrated_on_null_studies(science_scale):
    from brainnet.searchlight import searchlight_encoding

    n_studies = 600 if science_scale == "full" else 100
    voxel = cluster = 0
    for study in range(n_studies):
        rng = np.random.default_rng(2000 + study)
        ijk = np.argwhere(np.ones((5, 5, 4), bool))
        features = rng.standard_normal((15, 4))
        subjects = [rng.standard_normal((15, len(ijk))) for _ in range(3)]
        res = searchlight_encoding(subjects, features, sphere_neighbourhoods(ijk, 1.0), voxel_ijk=ijk,
                                   n_permutations=99, seed=study, cluster_p=0.05)
        voxel += bool(np.any(res.maps["p_fwe"] <= 0.05))
        cluster += bool(np.any(res.maps["cluster_p_fwe"] <= 0.05))
    assert stats.binomtest(voxel, n_studies, 0.05, alternative="greater").pvalue > 0.01, voxel
    assert stats.binomtest(cluster, n_studies, 0.05, alternative="greater").pvalue > 0.01, cluster
    if science_scale == "full":
        assert voxel >= 5 and cluster >= 5


def test_encoding_threads_and_resume_give_identical_maps(tmp_path):
    from brainnet.searchlight import searchlight_encoding

    rng = np.random.default_rng(4)
    ijk, subjects, _, _ = _planted_study(rng, (6, 6, 5), 3, 15, np.array([2, 2, 2]), 1.0, 0.5)
    features = rng.standard_normal((15, 4))
    nb = sphere_neighbourhoods(ijk, 1.5)
    base = searchlight_encoding(subjects, features, nb, voxel_ijk=ijk, n_permutations=30, seed=5)
    kw = dict(voxel_ijk=ijk, n_permutations=30, seed=5, n_jobs=2, checkpoint_dir=tmp_path)
    other = searchlight_encoding(subjects, features, nb, **kw)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"searchlight-encode-subject{s:03d}.npz" for s in range(3)]
    # a run stopped after the first subject: its checkpoint is read back, the others are computed again
    for name in names[1:]:
        (tmp_path / name).unlink()
    resumed = searchlight_encoding(subjects, features, nb, **kw)
    for name in ("r", "p", "p_fwe", "cluster_p_fwe"):
        np.testing.assert_array_equal(resumed.maps[name], other.maps[name])
    # threads: encode's own promise (its permutation test agrees to 1e-12 across n_jobs)
    np.testing.assert_allclose(other.maps["r"], base.maps["r"], rtol=0, atol=1e-12)
    for name in ("p", "p_fwe", "cluster_p_fwe"):
        np.testing.assert_array_equal(other.maps[name], base.maps[name])


_ENC_X = np.random.default_rng(0).standard_normal((12, 27))
_ENC_F = np.random.default_rng(1).standard_normal((12, 4))


@pytest.mark.parametrize(
    ("patterns", "features", "kwargs", "message"),
    [
        ([_ENC_X], np.zeros((10, 4)), {}, "features have shape (10, 4) but the patterns have 12 conditions; "
                                          "give one feature row per condition, in the patterns' order"),
        ([_ENC_X], np.ones((12, 4)), {}, "features hold NaN/Inf or no unit that varies across conditions; "
                                         "give finite activations of a layer with at least one varying unit"),
        ([_ENC_X], np.zeros((12, 0)), {}, "features hold NaN/Inf or no unit that varies across conditions; "
                                          "give finite activations of a layer with at least one varying unit"),
        ([_ENC_X, np.where(np.arange(27) == 3, np.nan, _ENC_X)], _ENC_F, {},
         "patterns of subject 2 hold NaN or Inf; drop those voxels (columns) from every subject first"),
        ([_ENC_X], _ENC_F, {"n_permutations": 5.0},
         "n_permutations=5.0: must be 0 or more; pass n_permutations=0 or a larger number"),
        ([_ENC_X, _ENC_X], _ENC_F, {"subjects": ["a"]},
         "subjects has 1 labels for 2 subjects' patterns; give one label per subject, in the patterns' order"),
        ([_ENC_X[:, :0]], _ENC_F, {}, "patterns have no voxels; give at least one voxel (column) per subject"),
    ],
)
def test_encoding_bad_arrays_one_line(patterns, features, kwargs, message):
    from brainnet.searchlight import searchlight_encoding

    ijk = np.argwhere(np.ones((3, 3, 3), bool))[: max(1, patterns[0].shape[1])]
    with pytest.raises(BrainnetError) as err:
        searchlight_encoding(patterns, features, sphere_neighbourhoods(ijk, 1.0), voxel_ijk=ijk, **kwargs)
    assert str(err.value) == message


def test_a_centre_without_r_has_no_p_value():
    # a subject whose sphere is constant has no r there: the group r is NaN, and so are p and p_FWE
    # (before, nothing in the null "exceeded" NaN, so it got the smallest p and counted as an FWE hit)
    from brainnet.searchlight import searchlight_encoding

    rng = np.random.default_rng(3)
    ijk = np.argwhere(np.ones((4, 4, 3), bool))
    subjects = [rng.standard_normal((15, len(ijk))) for _ in range(3)]
    subjects[1][:, 0] = 1.0  # the centre's 0-radius sphere is one constant voxel
    res = searchlight_encoding(subjects, rng.standard_normal((15, 3)), sphere_neighbourhoods(ijk, 0.5),
                               voxel_ijk=ijk, n_permutations=19, seed=0)
    assert np.isnan(res.maps["r"][0]) and np.isnan(res.maps["p"][0]) and np.isnan(res.maps["p_fwe"][0])
    assert np.isfinite(res.maps["p"][1:]).all() and np.isfinite(res.maps["p_fwe"][1:]).all()


def test_encoding_command_writes_its_own_folder_figure_and_report(tmp_path, capsys):
    from brainnet.cli import main
    from brainnet.plotting import make_figures
    from brainnet.report import write_report
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=3, n_stimuli=16, seed=3)
    out = tmp_path / "out"
    argv = ["searchlight", "--study", study, "--mask", "occipital", "--radius", "8", "--statistic", "encoding",
            "--cv", "4", "--permutations", "9", "--out", out]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert "searchlight encoding (ridge, 4-fold CV, per-fold r of each sphere's mean response" in capsys.readouterr().out
    folder = out / "group" / "searchlight-encoding-fc8-occipital"
    res = SearchlightResult.read(folder)
    assert res.summary["statistic"] == "encoding" and res.summary["cv"] == 4
    assert res.provenance["parameters"]["statistic"] == "encoding" and "compare" not in res.provenance["parameters"]
    # RSA into the same --out is another folder, not a refusal
    assert main([str(a) for a in argv[:7] + ["--permutations", "9", "--out", out]]) == 0, capsys.readouterr().err
    assert (out / "group" / "searchlight-fc8-occipital" / "summary.json").is_file()
    written = make_figures(out, formats=("png",))
    assert sum(p.name.endswith("searchlight_r.png") for p in written) == 2
    html = write_report(out).read_text()
    assert "searchlight-encoding-fc8-occipital" in html
    assert "layer fc8 was encoded into each sphere&#x27;s mean response" in html or \
        "layer fc8 was encoded into each sphere's mean response" in html
    assert "RDM was compared with layer fc8" in html


def test_encoding_says_compare_is_not_used():
    from brainnet.errors import BrainnetNotice
    from brainnet.searchlight import searchlight_group

    with pytest.warns(BrainnetNotice, match=r"^compare='cosine' is not used by the encoding searchlight"):
        with pytest.raises(BrainnetError, match="^--radius 0: a sphere needs a positive radius"):
            searchlight_group(statistic="encoding", compare="cosine", radius=0)
