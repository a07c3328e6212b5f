import numpy as np
import pytest
from scipy import stats as sps

from brainnet.errors import BrainnetError
from brainnet.permutation import (
    bootstrap_distribution,
    bootstrap_indices,
    max_stat_p_values,
    p_values,
    permutation_indices,
    permutation_test,
)


def _corr_statistic(x, y):
    """Batched Pearson r of x[perm] with each column of y: (B, n_cols)."""
    xz = (x - x.mean()) / x.std()
    yz = (y - y.mean(0)) / y.std(0)

    def statistic(perms):
        return xz[perms] @ yz / len(x)

    return statistic


def test_permutations_depend_only_on_seed_and_index():
    whole = permutation_indices(30, 0, 25, seed=3)
    parts = np.vstack([permutation_indices(30, 0, 10, seed=3), permutation_indices(30, 10, 25, seed=3)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, permutation_indices(30, 0, 25, seed=4))
    for perm in whole:
        np.testing.assert_array_equal(np.sort(perm), np.arange(30))


def test_permutations_stay_within_groups():
    groups = np.repeat([0, 1, 2], 5)
    perms = permutation_indices(15, 0, 50, seed=0, groups=groups)
    for perm in perms:
        np.testing.assert_array_equal(groups[perm], groups)
    assert len({tuple(p) for p in perms}) > 40


def test_bootstrap_draws_with_replacement_within_groups():
    groups = np.repeat([0, 1], 10)
    draws = bootstrap_indices(20, 0, 30, seed=1, groups=groups)
    assert all(np.array_equal(groups[d], groups) for d in draws)
    assert any(len(np.unique(d)) < 20 for d in draws)
    np.testing.assert_array_equal(draws, bootstrap_indices(20, 0, 30, seed=1, groups=groups))


def test_null_equals_literal_loop_and_p_formula():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(40)
    y = np.column_stack([x + rng.standard_normal(40), rng.standard_normal(40)])
    res = permutation_test(_corr_statistic(x, y), 40, n_permutations=200, seed=7, batch_size=17)
    perms = permutation_indices(40, 0, 200, seed=7)
    literal = np.array([[sps.pearsonr(x[p], y[:, j])[0] for j in range(2)] for p in perms])
    np.testing.assert_allclose(res.null, literal, atol=1e-12)
    np.testing.assert_allclose(res.observed, [sps.pearsonr(x, y[:, j])[0] for j in range(2)])
    expected_p = (1 + (literal >= res.observed).sum(0)) / 201
    np.testing.assert_allclose(res.p_value, expected_p)
    expected_fwe = (1 + (literal.max(1)[:, None] >= res.observed).sum(0)) / 201
    np.testing.assert_allclose(res.p_fwe, expected_fwe)
    assert res.p_value[0] == pytest.approx(1 / 201)
    assert res.n_permutations == 200


def test_alternatives():
    obs = np.array([2.0, -2.0])
    null = np.array([[1.0, -3.0], [3.0, 1.0], [-2.5, 0.0]])
    np.testing.assert_allclose(p_values(obs, null, "greater"), [2 / 4, 3 / 4])
    np.testing.assert_allclose(p_values(obs, null, "less"), [3 / 4, 2 / 4])
    np.testing.assert_allclose(p_values(obs, null, "two-sided"), [3 / 4, 2 / 4])
    np.testing.assert_allclose(max_stat_p_values(obs, null, "two-sided"), [4 / 4, 4 / 4])
    with pytest.raises(BrainnetError, match="alternative 'up' is unknown"):
        p_values(obs, null, "up")


def test_null_p_values_are_uniform(science_scale):
    n_runs = 300 if science_scale == "quick" else 2000
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(n_runs):
        x, y = rng.standard_normal(20), rng.standard_normal((20, 1))
        res = permutation_test(_corr_statistic(x, y), 20, n_permutations=99, seed=int(rng.integers(1 << 30)))
        ps.append(res.p_value[0])
    ps = np.array(ps)
    # p is discrete on k/100; the fraction below 0.05 must be within binomial error of 5 %.
    frac = np.mean(ps <= 0.05)
    assert abs(frac - 0.05) < 3 * np.sqrt(0.05 * 0.95 / n_runs)
    assert sps.kstest(ps, "uniform").pvalue > 1e-3


def test_results_do_not_depend_on_jobs_or_batches():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(50), rng.standard_normal((50, 30))
    stat = _corr_statistic(x, y)
    ref = permutation_test(stat, 50, n_permutations=130, seed=5, batch_size=16)
    threaded = permutation_test(stat, 50, n_permutations=130, seed=5, batch_size=16, n_jobs=2)
    np.testing.assert_array_equal(ref.null, threaded.null)
    other_batches = permutation_test(stat, 50, n_permutations=130, seed=5, batch_size=1)
    np.testing.assert_allclose(ref.null, other_batches.null, atol=1e-12)


def test_checkpoint_resumes_to_the_same_result(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(30), rng.standard_normal((30, 4))
    stat = _corr_statistic(x, y)
    full = permutation_test(stat, 30, n_permutations=100, seed=1, batch_size=10)

    calls = {"n": 0}

    def interrupted(perms):
        calls["n"] += 1
        if calls["n"] == 6:  # observed + 4 batches done, then the user hits Ctrl-C
            raise KeyboardInterrupt
        return stat(perms)

    ckpt = tmp_path / "perm.npz"
    import brainnet.permutation as engine

    mp = pytest.MonkeyPatch()
    mp.setattr(engine, "CHECKPOINT_SECONDS", -1.0)  # save after every batch
    with pytest.raises(KeyboardInterrupt):
        permutation_test(interrupted, 30, n_permutations=100, seed=1, batch_size=10, checkpoint=ckpt)
    mp.undo()
    with np.load(ckpt) as saved:
        assert saved["draws"].shape[0] == 40
    seen = []

    def counting(perms):
        seen.append(len(perms))
        return stat(perms)

    resumed = permutation_test(counting, 30, n_permutations=100, seed=1, batch_size=10, checkpoint=ckpt)
    assert sum(seen) == 1 + 60  # the observed value, then only the 60 missing permutations
    np.testing.assert_array_equal(resumed.null, full.null)


def test_checkpoint_of_another_run_is_not_mixed_in(tmp_path):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(30), rng.standard_normal((30, 2))
    ckpt = tmp_path / "perm.npz"
    permutation_test(_corr_statistic(x, y), 30, n_permutations=50, seed=1, checkpoint=ckpt)
    y2 = rng.standard_normal((30, 2))
    fresh = permutation_test(_corr_statistic(x, y2), 30, n_permutations=50, seed=1)
    resumed = permutation_test(_corr_statistic(x, y2), 30, n_permutations=50, seed=1, checkpoint=ckpt)
    np.testing.assert_array_equal(fresh.null, resumed.null)


def test_bootstrap_distribution_matches_literal_loop():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((25, 3))

    def mean_stat(draws):
        return x[draws].mean(axis=1)

    dist = bootstrap_distribution(mean_stat, 25, n_bootstrap=40, seed=2, batch_size=7)
    literal = np.array([x[d].mean(0) for d in bootstrap_indices(25, 0, 40, seed=2)])
    np.testing.assert_allclose(dist, literal)


def test_dask_cluster_gives_identical_null():
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal(40), rng.standard_normal((40, 5))
    stat = _corr_statistic(x, y)
    ref = permutation_test(stat, 40, n_permutations=60, seed=9, batch_size=8)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            res = permutation_test(stat, 40, n_permutations=60, seed=9, batch_size=8, scheduler=client)
    np.testing.assert_array_equal(ref.null, res.null)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(BrainnetError, match="groups has shape"):
        permutation_indices(5, 0, 2, 0, groups=np.zeros(4))
    with pytest.raises(BrainnetError) as info:
        permutation_test(lambda p: p[:, :1].astype(float), 5, n_permutations=3, batch_size=0)
    assert str(info.value) == "batch_size=0: must be 1 or more; pass batch_size=1 or a larger number"


def test_use_scheduler_sends_every_enclosed_test_to_dask():
    distributed = pytest.importorskip("dask.distributed")
    from brainnet.permutation import use_scheduler

    rng = np.random.default_rng(8)
    x, y = rng.standard_normal(30), rng.standard_normal((30, 3))
    ref = permutation_test(_corr_statistic(x, y), 30, n_permutations=40, seed=2, batch_size=8)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            with use_scheduler(client):
                res = permutation_test(_corr_statistic(x, y), 30, n_permutations=40, seed=2, batch_size=8)
            prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    np.testing.assert_array_equal(ref.null, res.null)
    assert "call" in prefixes
