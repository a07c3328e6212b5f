"""The permutation (and bootstrap) engine shared by encoding, decoding and RSA.

An analysis hands the engine a *batched statistic*: a function that takes a
block of index arrays, shape ``(n_batch, n)``, and returns the statistic for
each, shape ``(n_batch, *stat_shape)``. For a permutation, row ``k`` says
which network row goes with stimulus ``i`` (``features[perm]``); for a
bootstrap, which rows are drawn. The analysis makes that function fast by
reusing what does not change across permutations (decompositions, kernels,
ranks); the engine owns everything else:

- permutation ``k`` is a pure function of ``(seed, k)``, so results do not
  depend on the batch size, on ``n_jobs``, on Dask, or on interruptions;
- p-values are ``(1 + #{null >= observed}) / (1 + N)`` and family-wise
  corrected p-values use the maximum statistic over all elements;
- checkpoints (atomic ``.npz``) let an interrupted run continue where it
  stopped with the same final result;
- batches run in threads (``n_jobs``) or on a Dask cluster (``scheduler``).

Besides permutations of ``n`` units, the engine draws sign flips of ``n``
paired units (:func:`sign_flip_test`): row ``k`` is a vector of ``+1`` /
``-1``, one per unit (e.g. per subject: which of two paired values is
called "a"). With few units every flip is enumerated (an exact test), else
flip ``k`` is a pure function of ``(seed, k)`` like a permutation.

Why hand-written: scipy's ``permutation_test`` re-evaluates an unbatched
statistic and has no max-statistic correction or checkpoints; nilearn's
``permuted_ols`` is specific to OLS; none of them is resumable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from brainnet._display import Record
from brainnet._execution import current_scheduler, dask_client, use_scheduler
from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.results import atomic_save_npz

__all__ = [
    "CheckpointDiscarded",
    "use_scheduler",
    "current_scheduler",
    "dask_client",
    "PermutationResult",
    "permutation_indices",
    "bootstrap_indices",
    "permutation_test",
    "sign_flip_indices",
    "exact_sign_flips",
    "sign_flip_test",
    "bootstrap_distribution",
    "p_values",
    "max_stat_p_values",
]

Alternative = Literal["greater", "less", "two-sided"]
BatchStatistic = Callable[[np.ndarray], np.ndarray]

#: Seconds between checkpoint writes of a long run (a crash loses at most this much work).
CHECKPOINT_SECONDS = 2.0


def _block_labels(n: int, groups: np.ndarray | None) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)]
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise BrainnetError(f"groups has shape {groups.shape}; give one label per row ({n})")
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def permutation_indices(
    n: int, start: int, stop: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Permutations ``start .. stop-1`` of ``range(n)``, shape ``(stop - start, n)``.

    Permutation ``k`` depends only on ``(seed, k)``. With ``groups``, rows are
    permuted only within blocks of equal label (exchangeability blocks).
    """
    blocks = _block_labels(n, groups)
    out = np.empty((stop - start, n), dtype=np.intp)
    for row, k in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, k])
        perm = np.arange(n)
        for block in blocks:
            perm[block] = block[rng.permutation(block.size)]
        out[row] = perm
    return out


def bootstrap_indices(
    n: int, start: int, stop: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Bootstrap draws ``start .. stop-1`` (rows drawn with replacement), shape ``(stop - start, n)``.

    With ``groups``, rows are resampled within each block. Draw ``k`` depends
    only on ``(seed, k)``; the streams differ from :func:`permutation_indices`.
    """
    blocks = _block_labels(n, groups)
    out = np.empty((stop - start, n), dtype=np.intp)
    for row, k in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, k, 1])
        draw = np.arange(n)
        for block in blocks:
            draw[block] = block[rng.integers(0, block.size, size=block.size)]
        out[row] = draw
    return out


def sign_flip_indices(n: int, start: int, stop: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Random sign flips ``start .. stop-1`` of ``n`` paired units, shape ``(stop - start, n)``, values +1 / -1.

    Flip ``k`` depends only on ``(seed, k)`` (its own stream, not that of
    :func:`permutation_indices` or :func:`bootstrap_indices`); ``groups`` is
    accepted for the engine's signature and must be None.
    """
    if groups is not None:
        raise BrainnetError("groups: sign flips have no exchangeability blocks; leave groups out")
    out = np.empty((stop - start, n), dtype=np.float64)
    for row, k in enumerate(range(start, stop)):
        out[row] = 1.0 - 2.0 * np.random.default_rng([seed, k, 2]).integers(0, 2, size=n)
    return out


def exact_sign_flips(n: int, start: int, stop: int, seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """Sign flips ``start + 1 .. stop`` of all ``2**n``, shape ``(stop - start, n)``, values +1 / -1.

    Flip ``k`` gives unit ``i`` the sign ``-1`` when bit ``i`` of ``k`` is
    set; flip 0 (the identity) is left out, so draws ``0 .. 2**n - 2`` are
    the other flips and ``(1 + #{null >= observed}) / (1 + N)`` with
    ``N = 2**n - 1`` is the exact p-value (the identity counted once).
    ``seed`` and ``groups`` are accepted for the engine's signature (no
    randomness; ``groups`` must be None).
    """
    if groups is not None:
        raise BrainnetError("groups: sign flips have no exchangeability blocks; leave groups out")
    k = np.arange(start + 1, stop + 1, dtype=np.int64)[:, None]
    bits = (k >> np.arange(n, dtype=np.int64)[None]) & 1
    return 1.0 - 2.0 * bits.astype(np.float64)


def _oriented(observed: np.ndarray, null: np.ndarray, alternative: Alternative):
    if alternative == "greater":
        return observed, null
    if alternative == "less":
        return -observed, -null
    if alternative == "two-sided":
        return np.abs(observed), np.abs(null)
    raise BrainnetError(f"alternative {alternative!r} is unknown; use greater, less or two-sided")


def p_values(observed: np.ndarray, null: np.ndarray, alternative: Alternative = "greater") -> np.ndarray:
    """Element-wise permutation p-values ``(1 + #{null >= observed}) / (1 + N)``.

    Parameters
    ----------
    observed : ndarray of shape stat_shape
    null : ndarray of shape (n_permutations, *stat_shape)
    """
    obs, nul = _oriented(np.asarray(observed), np.asarray(null), alternative)
    # NaN in the null (e.g. a constant permuted column) never counts as exceeding.
    exceed = np.sum(nul >= obs, axis=0)
    return (1.0 + exceed) / (1.0 + nul.shape[0])


def max_stat_p_values(
    observed: np.ndarray, null: np.ndarray, alternative: Alternative = "greater"
) -> np.ndarray:
    """Family-wise corrected p-values by the maximum statistic over all elements.

    ``p_fwe[j] = (1 + #{max_j' null[k, j'] >= observed[j]}) / (1 + N)``
    (Nichols & Holmes 2002): strong control of the family-wise error rate.
    """
    obs, nul = _oriented(np.asarray(observed), np.asarray(null), alternative)
    flat = nul.reshape(nul.shape[0], -1)
    maxima = np.nanmax(flat, axis=1) if flat.shape[1] else np.full(nul.shape[0], -np.inf)
    maxima = np.sort(maxima)
    exceed = maxima.size - np.searchsorted(maxima, obs, side="left")
    return (1.0 + exceed) / (1.0 + maxima.size)


@dataclass(frozen=True, repr=False)
class PermutationResult(Record):
    """Observed statistic, its permutation null, and p-values.

    Attributes
    ----------
    observed : ndarray of shape stat_shape
    null : ndarray of shape (n_permutations, *stat_shape)
    alternative : {"greater", "less", "two-sided"}
    seed : int
    """

    observed: np.ndarray
    null: np.ndarray
    alternative: Alternative
    seed: int

    @property
    def summary(self) -> dict[str, Any]:
        """Number of permutations, alternative, seed and the smallest p values."""
        return {
            "n_permutations": self.n_permutations,
            "alternative": self.alternative,
            "seed": self.seed,
            "n_statistics": int(np.size(self.observed)),
            "min_p_value": float(np.min(self.p_value)),
            "min_p_fwe": float(np.min(self.p_fwe)),
        }

    @property
    def table(self):
        """One row per statistic: observed value, p and FWE p."""
        import pandas as pd

        return pd.DataFrame({"observed": np.ravel(self.observed), "p_value": np.ravel(self.p_value),
                             "p_fwe": np.ravel(self.p_fwe)})

    def plot(self) -> list[Any]:
        """The null distribution of the maximum statistic with the observed values marked."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        null = np.asarray(self.null, dtype=float).reshape(len(self.null), -1)
        ax.hist(np.nanmax(null[1:], axis=1) if len(null) > 1 else null.ravel(), bins=30, color="0.6",
                label="null of the maximum")
        for value in np.ravel(self.observed)[:50]:
            ax.axvline(value, color="#D55E00", linewidth=0.8)
        ax.set_xlabel("statistic")
        ax.set_ylabel("permutations")
        ax.set_title(f"{self.n_permutations} permutations; vermillion: observed")
        ax.legend(loc="upper left")
        return [fig]

    @property
    def n_permutations(self) -> int:
        return int(self.null.shape[0])

    @property
    def p_value(self) -> np.ndarray:
        """Uncorrected p-values, shape stat_shape."""
        return p_values(self.observed, self.null, self.alternative)

    @property
    def p_fwe(self) -> np.ndarray:
        """Max-statistic family-wise corrected p-values, shape stat_shape."""
        return max_stat_p_values(self.observed, self.null, self.alternative)


class CheckpointDiscarded(BrainnetNotice):
    """A checkpoint was unreadable or made by another run: it was set aside and the work is redone.

    A :class:`~brainnet.errors.BrainnetNotice`, so the command line shows it as one line.
    """


def _discard(path: Path, reason: str) -> None:
    import warnings

    warnings.warn(f"{path}: checkpoint {reason}; discarded, this part of the run starts again",
                  CheckpointDiscarded, stacklevel=3)


def _same(stored: np.ndarray, value: Any) -> bool:
    value = np.asarray(value)
    if stored.shape != value.shape or stored.dtype.kind != value.dtype.kind:
        return False
    if value.dtype.kind in "fc":
        return bool(np.array_equal(stored, value, equal_nan=True))  # a NaN observed value is the same value
    return bool(np.array_equal(stored, value))


def _load_checkpoint(path: Path, meta: dict[str, Any], n_max: int | None = None,
                     row_shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """The draws of a checkpoint made by this very run (``meta``), or None, with a warning, if it is not one.

    A checkpoint is checked before use: readable (a truncated or corrupt file
    is not), made with the same ``meta`` (seed, sizes, observed statistic),
    at most ``n_max`` finite-typed rows of shape ``row_shape``.
    """
    import zipfile
    import zlib

    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        _discard(path, f"is unreadable or truncated ({type(err).__name__})")
        return None
    draws = stored.get("draws")
    if draws is None or any(key not in stored or not _same(stored[key], value) for key, value in meta.items()):
        _discard(path, "was made by another run (other seed, sizes or data)")
        return None  # never mix it into this one
    if (draws.ndim < 1 or draws.dtype.kind not in "fiub" or (n_max is not None and draws.shape[0] > n_max)
            or (row_shape is not None and draws.shape[1:] != tuple(row_shape))):
        _discard(path, f"holds draws of shape {draws.shape}, which this run cannot have made")
        return None
    return draws


def _run_draws(
    statistic: BatchStatistic,
    index_fn: Callable[[int, int], np.ndarray],
    n_draws: int,
    *,
    batch_size: int,
    n_jobs: int,
    checkpoint: str | Path | None,
    checkpoint_meta: dict[str, Any],
    scheduler: Any,
    progress: bool,
) -> np.ndarray:
    """Evaluate ``statistic`` on draws ``0 .. n_draws-1`` in batches; resumable."""
    from brainnet._checks import check_count, check_n_jobs

    check_count(n_draws, "n_draws", 0)
    check_count(batch_size, "batch_size", 1)
    check_n_jobs(n_jobs)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    observed = checkpoint_meta.get("observed")
    done = None if ckpt is None else _load_checkpoint(
        ckpt, checkpoint_meta, n_max=n_draws, row_shape=None if observed is None else np.shape(observed))
    chunks: list[np.ndarray] = [] if done is None else [done]
    start = 0 if done is None else done.shape[0]
    bounds = [(b, min(b + batch_size, n_draws)) for b in range(start, n_draws, batch_size)]

    def run(bound: tuple[int, int]) -> np.ndarray:
        # One BLAS thread wherever the batch runs (here, an n_jobs thread, a Dask worker):
        # products round differently with other thread counts (see brainnet._threads).
        from brainnet._threads import single_blas_thread

        with single_blas_thread():
            return np.asarray(statistic(index_fn(*bound)))

    bar = _progress_bar(n_draws, start, progress)
    last_save = time.monotonic()
    for result in _execute(run, bounds, n_jobs, scheduler, statistic):
        chunks.append(result)
        bar.update(result.shape[0])
        if ckpt is not None and time.monotonic() - last_save > CHECKPOINT_SECONDS:
            atomic_save_npz(ckpt, draws=np.concatenate(chunks), **checkpoint_meta)
            last_save = time.monotonic()
    bar.close()
    draws = np.concatenate(chunks) if chunks else np.empty((0,))
    if ckpt is not None:
        atomic_save_npz(ckpt, draws=draws, **checkpoint_meta)
    return draws


def _progress_bar(total: int, initial: int, enabled: bool):
    from brainnet._progress import progress_bar

    return progress_bar(total, initial=initial, enabled=enabled, unit="perm")


def _execute(run, bounds, n_jobs: int, scheduler: Any, statistic: BatchStatistic):
    """Yield ``run(bound)`` for each bound, in order."""
    scheduler = scheduler if scheduler is not None else current_scheduler()
    if scheduler is not None:
        yield from _execute_dask(bounds, scheduler, run)
        return
    n_workers = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
    if n_workers == 1 or len(bounds) <= 1:
        for bound in bounds:
            yield run(bound)
        return
    # Threads share the precomputed arrays; each batch runs on one BLAS thread (see run).
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        # Submit in waves so a checkpoint never waits on far-ahead batches.
        for wave in range(0, len(bounds), n_workers):
            yield from pool.map(run, bounds[wave : wave + n_workers])


def _execute_dask(bounds, scheduler: Any, run):
    with dask_client(scheduler) as client:
        shipped = client.scatter(run, broadcast=True)
        futures = [client.submit(_call, shipped, bound, pure=False) for bound in bounds]
        for future in futures:
            yield future.result()


def _call(fn, bound):
    return fn(bound)


def _distribution(
    kind: str,
    indices: Callable[..., np.ndarray],
    statistic: BatchStatistic,
    n: int,
    n_draws: int,
    seed: int,
    groups: np.ndarray | None,
    identity: np.ndarray | None = None,
    **run: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``(statistic on the identity, draws of shape (n_draws, *stat_shape))``, resumable.

    ``identity`` is the draw that gives the observed statistic (default
    ``arange(n)``, the identity permutation; all ones for sign flips).
    """
    from brainnet._checks import check_count, check_null_fits
    from brainnet._threads import single_blas_thread

    parameter = {"bootstrap": "n_bootstrap", "sign-flip": "n_flips", "sign-flip-exact": "n_flips"}.get(
        kind, "n_permutations")
    check_count(n_draws, parameter, 0)
    check_null_fits(n_draws, 1, parameter)  # even one value per draw: refuse before the first evaluation
    with single_blas_thread():  # as every batch of the null: one BLAS thread
        first = np.arange(n, dtype=np.intp) if identity is None else np.asarray(identity)
        observed = np.asarray(statistic(first[None]))[0]
    check_null_fits(n_draws, observed.size, parameter)
    meta = {
        "kind": np.array(kind),
        "seed": np.array(seed),
        "n": np.array(n),
        "n_draws": np.array(n_draws),
        "batch_size": np.array(run["batch_size"]),
        "observed": observed,
        "groups": np.asarray(groups if groups is not None else []),
    }
    draws = _run_draws(
        statistic, lambda a, b: indices(n, a, b, seed, groups), n_draws, checkpoint_meta=meta, **run
    )
    return observed, draws.reshape((n_draws, *observed.shape))


def permutation_test(
    statistic: BatchStatistic,
    n: int,
    *,
    n_permutations: int = 1000,
    seed: int = 0,
    alternative: Alternative = "greater",
    groups: np.ndarray | None = None,
    batch_size: int = 64,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    scheduler: Any = None,
    progress: bool = False,
) -> PermutationResult:
    """Permutation test of a batched statistic.

    Parameters
    ----------
    statistic : callable
        ``statistic(perms)`` with ``perms`` of shape ``(n_batch, n)`` returns
        an array of shape ``(n_batch, *stat_shape)``. The observed value is
        ``statistic(arange(n)[None])[0]``.
    n : int
        Number of exchangeable units (e.g. stimuli).
    n_permutations : int
        Number of random permutations (the identity is not counted among them).
    seed : int
        Permutation ``k`` is drawn from ``default_rng([seed, k])``.
    alternative : {"greater", "less", "two-sided"}
    groups : ndarray of shape (n,), optional
        Exchangeability blocks; units are permuted only within a block.
    batch_size : int
        Permutations per call of ``statistic``. Results do not depend on
        ``n_jobs`` or ``scheduler``; keep ``batch_size`` fixed for
        bit-identical nulls.
    n_jobs : int
        Threads evaluating batches (-1: all cores).
    checkpoint : path, optional
        ``.npz`` file updated every few seconds; a rerun with the same
        ``seed``, ``n``, ``n_permutations`` and observed statistic resumes
        from it.
    scheduler : str or dask.distributed.Client, optional
        Run batches on a Dask cluster (address or client); default: the one
        set by :func:`use_scheduler`, else this process.
    progress : bool
        Show a progress bar.

    Returns
    -------
    PermutationResult
    """
    observed, null = _distribution(
        "permutation", permutation_indices, statistic, n, n_permutations, seed, groups,
        batch_size=batch_size, n_jobs=n_jobs, checkpoint=checkpoint, scheduler=scheduler,
        progress=progress,
    )
    return PermutationResult(observed=observed, null=null, alternative=alternative, seed=seed)


def sign_flip_test(
    statistic: BatchStatistic,
    n: int,
    *,
    n_flips: int = 10000,
    seed: int = 0,
    alternative: Alternative = "greater",
    exact: bool | None = None,
    batch_size: int = 256,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    scheduler: Any = None,
    progress: bool = False,
) -> PermutationResult:
    """Sign-flip test of a batched statistic of ``n`` paired units (e.g. subjects).

    Under the null that each unit's pair is exchangeable (its two values
    could be swapped, i.e. its paired difference is symmetric about 0, and
    units are independent), flipping the sign of any set of units leaves
    the data's distribution unchanged (Good 2005; Winkler et al. 2014).

    Parameters
    ----------
    statistic : callable
        ``statistic(signs)`` with ``signs`` of shape ``(n_batch, n)``
        (+1 / -1) returns shape ``(n_batch, *stat_shape)``; all ones gives
        the observed value.
    n : int
        Number of paired units.
    n_flips : int
        Random flips when the test is not exact.
    seed : int
        Random flip ``k`` comes from ``default_rng([seed, k, 2])``.
    alternative : {"greater", "less", "two-sided"}
    exact : bool, optional
        Enumerate all ``2**n`` flips (the null holds the ``2**n - 1`` that
        are not the identity). Default: exact when ``2**n - 1 <= n_flips``.
    batch_size, n_jobs, checkpoint, scheduler, progress
        As for :func:`permutation_test`.

    Returns
    -------
    PermutationResult
        ``null`` of shape ``(n_draws, *stat_shape)``: ``2**n - 1`` rows when
        exact, else ``n_flips``; ``p_value`` and ``p_fwe`` are exact when the
        flips were enumerated.
    """
    from brainnet._checks import check_count

    check_count(n, "n", 1)
    check_count(n_flips, "n_flips", 0)
    if exact is None:
        exact = n < 63 and 2**n - 1 <= n_flips
    if exact and n > 24:
        raise BrainnetError(f"exact: 2**{n} sign flips are too many to enumerate; pass exact=False")
    kind, indices, n_draws = (("sign-flip-exact", exact_sign_flips, 2**n - 1) if exact
                              else ("sign-flip", sign_flip_indices, n_flips))
    observed, null = _distribution(
        kind, indices, statistic, n, n_draws, seed, None, identity=np.ones(n),
        batch_size=batch_size, n_jobs=n_jobs, checkpoint=checkpoint, scheduler=scheduler, progress=progress,
    )
    return PermutationResult(observed=observed, null=null, alternative=alternative, seed=seed)


def bootstrap_distribution(
    statistic: BatchStatistic,
    n: int,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
    batch_size: int = 64,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    scheduler: Any = None,
    progress: bool = False,
) -> np.ndarray:
    """Bootstrap distribution of a batched statistic, shape ``(n_bootstrap, *stat_shape)``.

    ``statistic(draws)`` receives row indices drawn with replacement, shape
    ``(n_batch, n)``. Same reproducibility and resume guarantees as
    :func:`permutation_test`.
    """
    _, draws = _distribution(
        "bootstrap", bootstrap_indices, statistic, n, n_bootstrap, seed, groups,
        batch_size=batch_size, n_jobs=n_jobs, checkpoint=checkpoint, scheduler=scheduler,
        progress=progress,
    )
    return draws
