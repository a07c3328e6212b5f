"""Bit-identity does not depend on scheduling: one BLAS thread in every promised kernel.

OpenBLAS rounds large products differently with 1 and 2 threads, so the engine
runs the observed statistic and every batch on exactly one BLAS thread, in this
process, in ``n_jobs`` threads and on Dask workers, and the limit holds while
other threads enter and leave it (threadpoolctl's own limits are process-wide
and restored by whoever leaves first).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from brainnet._threads import single_blas_thread
from brainnet.permutation import bootstrap_distribution, permutation_test


def _blas_threads() -> set[int]:
    return {lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers}


def test_the_limit_holds_while_another_thread_leaves_it():
    """Thread B is still inside when thread A leaves: B keeps one BLAS thread (plain
    threadpool_limits blocks would give B the count A found on entry); the last one out restores."""
    before = _blas_threads()
    a_in, b_in, a_out, b_done = (threading.Event() for _ in range(4))
    seen = {}

    def a():
        with single_blas_thread():
            a_in.set()
            b_in.wait()
        a_out.set()

    def b():
        a_in.wait()
        with single_blas_thread():
            b_in.set()
            a_out.wait()
            seen["b after a left"] = _blas_threads()
        b_done.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b_done.is_set() and seen["b after a left"] == {1}
    assert _blas_threads() == before
    with single_blas_thread(), single_blas_thread():  # nested in one thread
        assert _blas_threads() == {1}
    assert _blas_threads() == before


def _thread_sensitive_statistic(seen: list):
    """Column sums of a (n, 1904) @ (1904, 1904) float32 product: with OpenBLAS its last
    bits depend on the thread count (measured 1 vs 2 threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 1904)).astype(np.float32)
    k = rng.standard_normal((1904, 1904)).astype(np.float32)

    def statistic(perms):
        seen.append(_blas_threads())
        return np.stack([(a[p] @ k)[:, :8].sum(axis=0) for p in perms])

    return statistic


def test_every_batch_and_the_observed_value_run_on_one_blas_thread_whatever_n_jobs():
    results = {}
    for n_jobs in (1, 2):
        seen: list = []
        # The caller's own limit (here two threads) does not reach the kernels.
        with threadpool_limits(limits=2, user_api="blas"):
            res = permutation_test(_thread_sensitive_statistic(seen), 40, n_permutations=6, seed=1,
                                   batch_size=2, n_jobs=n_jobs)
            boot = bootstrap_distribution(_thread_sensitive_statistic(seen), 40, n_bootstrap=4, seed=1,
                                          batch_size=2, n_jobs=n_jobs)
        assert seen and all(s == {1} for s in seen), (n_jobs, seen)
        results[n_jobs] = (res.observed, res.null, boot)
    for left, right in zip(results[1], results[2], strict=True):
        np.testing.assert_array_equal(left, right)


def test_dask_thread_workers_run_batches_on_one_blas_thread():
    distributed = pytest.importorskip("dask.distributed")
    seen: list = []
    local = permutation_test(_thread_sensitive_statistic([]), 40, n_permutations=6, seed=2, batch_size=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            remote = permutation_test(_thread_sensitive_statistic(seen), 40, n_permutations=6, seed=2,
                                      batch_size=2, scheduler=client)
    assert seen and all(s == {1} for s in seen), seen
    np.testing.assert_array_equal(local.null, remote.null)
    np.testing.assert_array_equal(local.observed, remote.observed)
