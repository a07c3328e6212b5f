"""Paired comparisons between regions and between layers, each a permutation test.

Kragel et al. (2019) compared occipital with whole-brain decoding by a paired
t-test over held-out subjects (delta r = .0155, p = .0404). Held-out subjects
of one group model share their training data, so that test treats dependent
values as independent. Here two tests from the permutation engine
(:mod:`brainnet.permutation`) answer two different questions:

**Side-swap test (the headline ``p``, ``p_fwe``, ``p_holm``): do the two sides
perform equally?** Each subject gives one value per side (encode: that
subject's mean per-fold r over voxels; rsa: that subject's RDM similarity to
the network; decode: that subject's *within-subject* cross-validated
decoding r, see below). For a pair ``(a, b)`` the paired differences
``d_s = a_s - b_s`` are summarised by the paired ``t``; under the null that
the two sides are exchangeable within each subject (equal performance, the
subject's two values could be swapped) and subjects are independent, the sign
of every ``d_s`` can be flipped: :func:`brainnet.permutation.sign_flip_test`
enumerates all ``2**n_subjects`` flips when that is at most ``n_flips`` (an
exact test), else draws ``n_flips`` of them from ``(seed, k)``. ``p_fwe``
takes the maximum ``|t|`` over all pairs under the **same** flip of each
subject (strong family-wise control, Westfall & Young 1993); ``p_holm`` is
Holm on ``p``. Calibrated whether the sides carry no signal or the same
signal: 3.8-6.5 % rejections at alpha = .05 (``p_fwe``: 3.8-5.0 %) on both
kinds of null study, and a planted difference found in 69-100 % of studies
(tests/test_contrasts.py; ``python benchmarks/bench_contrast_calibration.py``).
It needs at least 2 subjects (6 for an exact two-sided p below .05).

Why decode's side-swap values are within-subject: the per-held-out-subject r
of leave-one-subject-out decoding is *not* a valid input to a sign-flip (or
t-) test over subjects. Each held-out subject is predicted by a model fitted
on all the others, so the differences ``d_s`` share one fitted model per side
and move together: sign-flipping them rejected 16.5-18 % of pure-noise
studies and 11-19 % of studies whose two regions carry the same signal
(measured, 8-10 subjects; the paper's paired t-test over held-out subjects
has the same flaw). A subject's own cross-validated decoding (PLS from its
voxels to the units, the same components, ``cv`` folds over stimuli, per-fold
r averaged over folds and units) depends on that subject's data only, and is
calibrated (3.0-4.5 % on the same kinds of study).

**Relabelling test (secondary, the ``relabel_*`` columns): do the stimulus
labels carry information for either side?** Every side's own statistic (decode:
leave-one-subject-out mean r; encode: mean over subjects of mean per-fold r;
rsa: ``network_human_r``) is recomputed under the **same** relabelling of the
stimuli on every side (each side refitted as in its own analysis, so each
side's null equals its own analysis's null under the same ``seed``).
``relabel_effect_vs_null = (difference - null mean) / null SD`` and
``p_relabel`` compares it with the same standardisation of every relabelling
(``p_relabel_fwe``: maximum over pairs; ``p_relabel_holm``: Holm). It is exact
when no side carries stimulus information (2.0-4.5 %; ``p_relabel_fwe`` with 3 sides
8.0 % on 400 studies, 5.5 % on 1,000 further ones), but its null is that of chance, not of "no difference": with
equal non-zero signal on both sides the relabelling spread of the difference
is wider than its sampling spread, so it is conservative there (0.8-3.5 %
with correlation statistics, 0 % for decode) and loses power: for decode,
whose relabellings are learned as well as the true labels when the signal is
shared across subjects, it found a planted difference in 0-2 % of studies
where the side-swap test found it in 69-99.5 %. Kept because it is the only
test for one subject and because it reads each side against its own chance
level; a small ``p_relabel`` says that some side carries stimulus
information, not that the sides differ.

Which is the default and why: the side-swap test answers the question a
comparison asks ("does a differ from b?"), is calibrated when both sides carry
the same signal, has the power the relabelling test lacks, and costs no
refits (one fit per subject and side), so it gives ``p`` / ``p_fwe`` /
``p_holm``. The relabelling test costs ``n_permutations`` refits of every
side; ``n_permutations=0`` skips it.

Why a new module: the permutation engine, the analyses' batched statistics and
the p-value functions are reused as they are; only the paired bookkeeping and
the per-pair table are new (no library offers a paired permutation test over
refitted cross-validated models).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet._display import Record
from brainnet.errors import BrainnetError, notice

__all__ = [
    "ContrastResult",
    "contrast_table",
    "side_swap_table",
    "paired_contrast_test",
    "contrast_decoding",
    "contrast_encoding",
    "contrast_rsa",
]

ANALYSES = ("decode", "encode", "rsa")
TEST = ("side-swap permutation over subjects: each subject's pair of values swapped (sign of the paired "
        "difference flipped), statistic the paired t; p_fwe by the maximum |t| over pairs, p_holm by Holm")
RELABEL_TEST = ("secondary, stimulus relabelling: the same relabelling on every side; the difference "
                "standardised by its permutation null; tests 'the labels carry information for neither side' "
                "(conservative when both sides carry equal signal)")
#: Columns of :attr:`ContrastResult.table`, in order.
COLUMNS = ("pair", "side_a", "side_b", "stat_a", "stat_b", "difference", "sd_difference", "n_subjects", "t", "p",
           "p_fwe", "p_holm", "relabel_stat_a", "relabel_stat_b", "relabel_difference", "relabel_null_mean",
           "relabel_null_sd", "relabel_effect_vs_null", "p_relabel", "p_relabel_fwe", "p_relabel_holm")


@dataclass(repr=False)
class ContrastResult(Record):
    """Paired comparisons between sides (regions or layers): side-swap test, relabelling test.

    Attributes
    ----------
    summary : dict
        ``analysis``, ``sides``, ``n_pairs``, ``n_subjects``, ``n_flips``,
        ``exact``, ``n_permutations``, ``alternative``, ``test``,
        ``relabel_test``, ``pairs`` (the table's rows) ...
    table : DataFrame
        One row per pair, columns :data:`COLUMNS`: the side-swap test on
        the per-subject values (``stat_a``, ``stat_b``: their means over
        subjects; ``difference``, ``sd_difference``: mean and SD of the
        paired differences; ``t``, ``p``, ``p_fwe``, ``p_holm``) and the
        relabelling test on each side's own statistic (``relabel_*``).
    observed : ndarray of shape (n_sides,)
        Each side's own statistic (relabelling test).
    null : ndarray of shape (n_permutations, n_sides)
        Each side's statistic under the shared relabellings.
    sides : list of str
    per_subject : ndarray of shape (n_subjects, n_sides)
        The side-swap test's values (NaN-free subjects only).
    flip_null : ndarray of shape (n_flips, n_pairs)
        The paired t of every pair under each sign flip (the identity left out).
    provenance : dict
    path : Path or None
    """

    summary: dict[str, Any]
    table: pd.DataFrame
    observed: np.ndarray
    null: np.ndarray
    sides: list[str]
    per_subject: np.ndarray
    flip_null: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def plot(self) -> list[Any]:
        """Each pair's paired t against the middle 95 % of its side-swap null (main figure)."""
        import matplotlib.pyplot as plt

        rows = list(self.table.itertuples())
        fig, ax = plt.subplots(figsize=(7, 1.4 + 0.45 * max(len(rows), 1)))
        for y, row in enumerate(rows):
            flips = self.flip_null[:, y] if self.flip_null.ndim == 2 and self.flip_null.shape[1] > y else []
            flips = np.asarray(flips, dtype=float)
            flips = flips[np.isfinite(flips)]
            if flips.size:
                low, high = np.percentile(flips, [2.5, 97.5])
                ax.plot([low, high], [y, y], color="0.7", linewidth=6, solid_capstyle="butt")
            if np.isfinite(row.t):
                ax.plot(row.t, y, "o", color="C3" if row.p_fwe <= 0.05 else "C0")
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.set_yticks(range(len(rows)), [f"{r.side_a} - {r.side_b}" for r in rows])
        ax.set_xlabel("paired t over subjects (dot); middle 95 % of its side-swap null (bar)")
        ax.set_title("paired comparisons (red: p_FWE ≤ .05 across pairs)")
        fig.tight_layout()
        return [fig]

    def write(self, resultdir: Any) -> Path:
        """Write ``contrasts.tsv``, ``contrast_null.npz`` and summary.json (last) into a ResultDir.

        Given a folder instead, write the record itself (see :meth:`read`).
        """
        from brainnet.results import ResultDir

        if not isinstance(resultdir, ResultDir):
            return super().write(resultdir)
        resultdir.write_tsv("contrasts.tsv", self.table)
        resultdir.write_npz("contrast_null.npz", null=self.null, observed=self.observed,
                            sides=np.asarray(self.sides, dtype=str), per_subject=self.per_subject,
                            flip_null=self.flip_null)
        resultdir.finish(self.summary)
        self.path = resultdir.path
        return resultdir.path


# -- the core on arrays --------------------------------------------------------


def _pairs(names: Sequence[str], pairs: Sequence[tuple[str, str]] | None) -> list[tuple[int, int]]:
    index = {n: i for i, n in enumerate(names)}
    if pairs is None:
        return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    out = []
    for pair in pairs:
        if len(pair) != 2 or pair[0] == pair[1] or any(p not in index for p in pair):
            raise BrainnetError(
                f"pairs: {tuple(pair)!r} is not two different sides; choose from {', '.join(names)}"
            )
        out.append((index[pair[0]], index[pair[1]]))
    return out


def contrast_table(
    observed: np.ndarray,
    null: np.ndarray,
    names: Sequence[str],
    pairs: Sequence[tuple[str, str]] | None = None,
    alternative: str = "two-sided",
) -> pd.DataFrame:
    """The relabelling comparison of sides whose statistics were computed under shared permutations.

    Tests "the stimulus labels carry information for neither side" (see the
    module docstring); :func:`paired_contrast_test` reports it as the
    ``relabel_*`` columns.

    Parameters
    ----------
    observed : ndarray of shape (n_sides,)
    null : ndarray of shape (n_permutations, n_sides)
        Row ``k``: every side's statistic under the same relabelling ``k``.
    names : sequence of str of length n_sides
    pairs : sequence of (str, str), optional
        The comparisons ``a - b`` (default: every pair, in the order given).
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: side a above side b.

    Returns
    -------
    DataFrame
        One row per pair (columns as :attr:`ContrastResult.table`). NaN
        where the difference's null is constant or has fewer than 2 values.
    """
    from brainnet.permutation import max_stat_p_values, p_values
    from brainnet.stats import holm

    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    names = [str(n) for n in names]
    if observed.shape != (len(names),) or null.ndim != 2 or null.shape[1] != len(names):
        raise BrainnetError(
            f"observed {observed.shape} and null {null.shape} do not match {len(names)} sides; "
            "give observed (n_sides,) and null (n_permutations, n_sides)"
        )
    if alternative not in ("two-sided", "greater", "less"):
        raise BrainnetError(f"alternative {alternative!r} is unknown; use two-sided, greater or less")
    index = _pairs(names, pairs)
    a = np.array([i for i, _ in index], dtype=np.intp)
    b = np.array([j for _, j in index], dtype=np.intp)
    diff = observed[a] - observed[b]
    diff_null = null[:, a] - null[:, b]  # (n_permutations, n_pairs)
    finite = np.isfinite(diff_null)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, np.where(finite, diff_null, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)
        dev = np.where(finite, diff_null - mean, 0.0)
        sd = np.where(count > 1, np.sqrt((dev**2).sum(axis=0) / np.maximum(count - 1, 1)), np.nan)
        usable = np.isfinite(sd) & (sd > 0)
        scale = np.where(usable, sd, np.nan)
        effect = (diff - mean) / scale
        standard_null = (diff_null - mean) / scale
    if null.shape[0]:
        p = p_values(np.nan_to_num(effect, nan=np.inf), standard_null, alternative)
        p_fwe = max_stat_p_values(np.nan_to_num(effect, nan=np.inf), standard_null[:, usable], alternative)
        p, p_fwe = np.where(usable, p, np.nan), np.where(usable, p_fwe, np.nan)
    else:
        p = p_fwe = np.full(len(index), np.nan)
    return pd.DataFrame({
        "pair": [f"{names[i]} - {names[j]}" for i, j in index],
        "side_a": [names[i] for i in a],
        "side_b": [names[j] for j in b],
        "stat_a": observed[a],
        "stat_b": observed[b],
        "difference": diff,
        "null_mean": mean,
        "null_sd": sd,
        "effect_vs_null": effect,
        "p": p,
        "p_fwe": p_fwe,
        "p_holm": holm(p),
    })


def _paired_t(d: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Batched paired t of the columns of ``d`` (n_subjects, n_pairs) under sign flips (n_batch, n_subjects).

    Sums run in one fixed order, so flipping every sign negates ``t``
    exactly (the two tie in a two-sided test, as they must). Zero spread:
    ``t`` is 0 for a zero mean, else +-inf.
    """
    n = d.shape[0]
    squares = (d**2).sum(axis=0)

    def statistic(signs: np.ndarray) -> np.ndarray:
        mean = (np.asarray(signs, dtype=np.float64)[:, :, None] * d[None]).sum(axis=1) / n
        variance = np.maximum(squares - n * mean**2, 0.0) / (n - 1)
        se = np.sqrt(variance / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(se > 0, mean / np.where(se > 0, se, 1.0), np.sign(mean) * np.inf)

    return statistic


def side_swap_table(
    per_subject: np.ndarray,
    names: Sequence[str],
    pairs: Sequence[tuple[str, str]] | None = None,
    alternative: str = "two-sided",
    *,
    n_flips: int = 10000,
    seed: int = 0,
    exact: bool | None = None,
) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """Side-swap (paired sign-flip) test of every pair of sides over subjects.

    Parameters
    ----------
    per_subject : ndarray of shape (n_subjects, n_sides)
        One value per subject and side; a subject with a NaN on any side is
        left out (with a notice).
    names : sequence of str of length n_sides
    pairs : sequence of (str, str), optional
        The comparisons ``a - b`` (default: every pair, in the order given).
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: side a above side b.
    n_flips, seed, exact
        See :func:`brainnet.permutation.sign_flip_test`.

    Returns
    -------
    table : DataFrame
        One row per pair: ``pair``, ``side_a``, ``side_b``, ``stat_a``,
        ``stat_b`` (means over subjects), ``difference`` (mean paired
        difference), ``sd_difference`` (its SD over subjects, ddof 1),
        ``n_subjects``, ``t``, ``p``, ``p_fwe`` (max |t| over pairs),
        ``p_holm``. NaN tests with fewer than 2 subjects.
    flip_null : ndarray of shape (n_draws, n_pairs)
        ``t`` under each flip (identity left out).
    exact : bool
        Whether every flip was enumerated.
    """
    from brainnet.permutation import max_stat_p_values, p_values, sign_flip_test
    from brainnet.stats import holm

    names = [str(n) for n in names]
    values = np.asarray(per_subject, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise BrainnetError(f"per_subject has shape {values.shape}; give (n_subjects, n_sides={len(names)})")
    if alternative not in ("two-sided", "greater", "less"):
        raise BrainnetError(f"alternative {alternative!r} is unknown; use two-sided, greater or less")
    index = _pairs(names, pairs)
    a = np.array([i for i, _ in index], dtype=np.intp)
    b = np.array([j for _, j in index], dtype=np.intp)
    complete = np.all(np.isfinite(values), axis=1)
    if not complete.all():
        notice(f"{int((~complete).sum())} of {complete.size} subjects have no value on some side (NaN) and are "
               "left out of the side-swap test")
    values = values[complete]
    n = values.shape[0]
    d = values[:, a] - values[:, b]  # (n_subjects, n_pairs)
    nan = np.full(len(index), np.nan)
    means = values.mean(axis=0) if n else np.full(len(names), np.nan)
    sd = d.std(axis=0, ddof=1) if n > 1 else nan
    if n < 2:
        t, p, p_fwe, flip_null, exact = nan, nan, nan, np.empty((0, len(index))), False
    else:
        exact = bool(exact) if exact is not None else bool(n < 63 and 2**n - 1 <= n_flips)
        test = sign_flip_test(_paired_t(d), n, n_flips=n_flips, seed=seed, alternative=alternative, exact=exact)
        t, flip_null = test.observed, test.null
        if flip_null.shape[0]:
            p, p_fwe = p_values(t, flip_null, alternative), max_stat_p_values(t, flip_null, alternative)
        else:
            p = p_fwe = nan
    table = pd.DataFrame({
        "pair": [f"{names[i]} - {names[j]}" for i, j in index],
        "side_a": [names[i] for i in a],
        "side_b": [names[j] for j in b],
        "stat_a": means[a],
        "stat_b": means[b],
        "difference": d.mean(axis=0) if n else nan,
        "sd_difference": sd,
        "n_subjects": np.full(len(index), n, dtype=np.int64),
        "t": t,
        "p": p,
        "p_fwe": p_fwe,
        "p_holm": holm(p),
    })
    return table, np.asarray(flip_null, dtype=np.float64), bool(exact)


def _smallest_p(n_subjects: int, n_flips: int, exact: bool, alternative: str) -> float:
    """The smallest p-value the side-swap test can give."""
    if n_subjects < 2:
        return float("nan")
    if exact:
        return (2.0 if alternative == "two-sided" else 1.0) / 2**n_subjects
    return 1.0 / (1 + n_flips)


def paired_contrast_test(
    statistics: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    n: int,
    *,
    per_subject: Mapping[str, np.ndarray] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_permutations: int = 1000,
    n_flips: int = 10000,
    exact: bool | None = None,
    seed: int = 0,
    alternative: str = "two-sided",
    batch_size: int | Mapping[str, int] = 64,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> ContrastResult:
    """Side-swap test over subjects and relabelling test over stimuli between sides.

    Parameters
    ----------
    statistics : dict of str -> callable
        One batched statistic per side: ``statistic(perms)`` with ``perms``
        of shape ``(n_batch, n)`` (relabellings of the ``n`` stimuli)
        returns shape ``(n_batch, n_subjects)`` (each subject's value; the
        side's statistic is their mean) or ``(n_batch,)`` (the side's
        statistic itself); the identity gives the observed value.
    n : int
        Number of stimuli (the exchangeable units of the relabelling test).
    per_subject : dict of str -> ndarray of shape (n_subjects,), optional
        The side-swap test's values, one per subject (same subjects, same
        order on every side). Default: each subject's value of
        ``statistics`` under the identity (which then must return one per
        subject).
    pairs, alternative
        See :func:`side_swap_table`.
    n_permutations : int
        Shared stimulus relabellings of the relabelling test (0: skip it;
        its columns are then NaN).
    n_flips, exact
        Sign flips of the side-swap test (all ``2**n_subjects`` when that is
        at most ``n_flips``, unless ``exact=False``); see
        :func:`brainnet.permutation.sign_flip_test`.
    seed, n_jobs, progress
        See :func:`brainnet.permutation.permutation_test`. Each side runs
        through the engine with the same ``seed``: relabelling ``k`` depends
        only on ``(seed, k)``, so it is the same on every side, and each
        side's relabelling null equals the null of its own analysis run with
        the same seed; flip ``k`` likewise depends only on ``(seed, k)``.
    batch_size : int or dict of str -> int
        Relabellings per call, one for all sides or one per side (give each
        side its own analysis's batch size for bit-identical nulls).
    checkpoint : path, optional
        Resumable runs: side ``i`` checkpoints to ``<stem>-side<i><suffix>``.

    Returns
    -------
    ContrastResult
    """
    from brainnet._checks import check_count
    from brainnet.permutation import permutation_test

    names = [str(k) for k in statistics]
    if len(names) < 2:
        raise BrainnetError(f"got {len(names)} side(s) to compare; give at least two regions or two layers")
    _pairs(names, pairs)  # refuse bad pairs before the permutations
    check_count(n_permutations, "n_permutations", 0)
    check_count(n_flips, "n_flips", 0)
    functions = dict(zip(names, statistics.values(), strict=True))
    sizes = ({str(k): v for k, v in batch_size.items()} if isinstance(batch_size, Mapping)
             else dict.fromkeys(names, batch_size))
    ckpt = None if checkpoint is None else Path(checkpoint)
    observed_all, null_all = [], []
    for i, name in enumerate(names):
        # One engine run per side, all with the same seed: relabelling k is the same on every side (it depends
        # only on (seed, k)), and each side keeps its own analysis's batch size, so its null is that analysis's
        # null to the last bit (float32 products round differently in batches of other widths).
        side = permutation_test(
            lambda perms, f=functions[name]: np.asarray(f(perms), dtype=np.float64).reshape(perms.shape[0], -1),
            n, n_permutations=n_permutations, seed=seed, batch_size=int(sizes[name]), n_jobs=n_jobs,
            checkpoint=None if ckpt is None else ckpt.with_name(f"{ckpt.stem}-side{i}{ckpt.suffix}"),
            progress=progress)
        observed_all.append(side.observed)
        null_all.append(side.null)
    widths = sorted({o.size for o in observed_all})
    if len(widths) != 1:
        raise BrainnetError(f"the sides give {widths} values per relabelling; give each side the same subjects")
    test_observed = np.stack(observed_all)  # (n_sides, n_subjects)
    test_null = np.stack(null_all, axis=1)  # (n_permutations, n_sides, n_subjects)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a side NaN for every subject stays NaN
        observed = np.nanmean(test_observed, axis=-1)  # (n_sides,)
        null = np.nanmean(test_null, axis=-1) if test_null.size else np.empty((0, len(names)))
    if per_subject is not None:
        per_subject = {str(k): v for k, v in per_subject.items()}
        missing = [k for k in names if k not in per_subject]
        if missing:
            raise BrainnetError(f"per_subject: no values for side(s) {', '.join(missing)}; give one array per side")
        lengths = {np.size(per_subject[k]) for k in names}
        if len(lengths) != 1:
            raise BrainnetError(f"per_subject: the sides have {sorted(lengths)} subjects; give each side the same "
                                "subjects, in the same order")
        values = np.stack([np.asarray(per_subject[k], dtype=np.float64).reshape(-1) for k in names], axis=1)
    else:
        values = test_observed.T  # (n_subjects, n_sides)
    swap, flip_null, is_exact = side_swap_table(values, names, pairs, alternative, n_flips=n_flips, seed=seed,
                                                exact=exact)
    n_subjects = int(swap["n_subjects"].iloc[0])
    smallest = _smallest_p(n_subjects, n_flips, is_exact, alternative)
    if n_subjects < 2:
        notice(f"{n_subjects} subject: the side-swap test (p, p_fwe) needs at least 2 subjects; only the relabelling "
               "test (p_relabel) is reported")
    elif smallest > 0.05:
        notice(f"{n_subjects} subjects: the smallest side-swap p is {smallest:.3g} ({2**n_subjects} sign flips), so "
               "p cannot fall below .05; add subjects (6 or more for a two-sided test)")
    relabel = contrast_table(observed, null, names, pairs, alternative)
    table = swap.assign(
        relabel_stat_a=relabel["stat_a"].to_numpy(),
        relabel_stat_b=relabel["stat_b"].to_numpy(),
        relabel_difference=relabel["difference"].to_numpy(),
        relabel_null_mean=relabel["null_mean"].to_numpy(),
        relabel_null_sd=relabel["null_sd"].to_numpy(),
        relabel_effect_vs_null=relabel["effect_vs_null"].to_numpy(),
        p_relabel=relabel["p"].to_numpy(),
        p_relabel_fwe=relabel["p_fwe"].to_numpy(),
        p_relabel_holm=relabel["p_holm"].to_numpy(),
    )[list(COLUMNS)]
    summary = {
        "analysis": "contrast",
        "sides": names,
        "n_pairs": int(table.shape[0]),
        "n_subjects": n_subjects,
        "n_flips": int(flip_null.shape[0]),
        "exact": is_exact,
        "smallest_p": smallest,
        "n_stimuli": int(n),
        "n_permutations": int(n_permutations),
        "alternative": alternative,
        "test": TEST,
        "relabel_test": RELABEL_TEST,
        "n_pairs_p_fwe_05": int(np.sum(table["p_fwe"] < 0.05)),
        "n_pairs_p_relabel_fwe_05": int(np.sum(table["p_relabel_fwe"] < 0.05)),
        "pairs": table.to_dict(orient="records"),
    }
    return ContrastResult(summary=summary, table=table, observed=observed, null=null, sides=names,
                          per_subject=values[np.all(np.isfinite(values), axis=1)], flip_null=flip_null)


# -- study level ---------------------------------------------------------------


def _sides(masks, layers) -> tuple[str, list[str], list[str], list[str]]:
    """(what varies, its values, masks, layers) from comma-separated or listed masks and layers."""
    def listed(value) -> list[str]:
        items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
        return [v.strip() for v in items if str(v).strip()]

    masks, layers = listed(masks), listed(layers)
    if len(masks) > 1 and len(layers) > 1:
        raise BrainnetError("--mask and --layers both list several; compare regions (one layer) or layers "
                            "(one region)")
    varying, values = ("mask", masks) if len(masks) > 1 else ("layer", layers)
    if len(values) < 2 or len(set(values)) != len(values):
        raise BrainnetError(f"--mask/--layers: {len(set(values))} region and layer, nothing to compare; give at least "
                            "two different regions (e.g. --mask occipital,whole-brain) or layers (e.g. --layers fc7,fc8)")
    return varying, values, masks, layers


def _finish(result: ContrastResult, analysis: str, varying: str, study, fprov, parameters, seed,
            out, folder: str, overwrite: bool) -> ContrastResult:
    from brainnet.masks import describe_mask
    from brainnet.results import ResultDir, make_provenance

    result.summary = {"analysis": f"contrast-{analysis}", "compared": varying,
                      "statistic": _STATISTIC[analysis], "relabel_statistic": _RELABEL_STATISTIC[analysis],
                      **{k: v for k, v in result.summary.items() if k != "analysis"}}
    subjects = parameters.get("subjects") or [parameters["subject"]]
    masks = [describe_mask(m, subjects) for m in parameters["masks"]]  # mask files by content
    result.provenance = make_provenance(weights=fprov.get("weights"), features=fprov, study=study.provenance(),
                                        mask=masks[0] if len(masks) == 1 else masks, seed=seed,
                                        parameters=parameters)
    if out is not None:
        rd = ResultDir(_folder(out, folder, analysis, result.sides), result.provenance, overwrite=overwrite)
        result.write(rd)
    return result


def _folder(out, owner: str, analysis: str, sides: Sequence[str]) -> Path:
    from brainnet.results import result_path

    return result_path(out, owner, f"contrast-{analysis}-{'_vs_'.join(sides)}")


def _refuse_other_parameters(out, owner: str, analysis: str, sides, parameters, seed: int, feats,
                             overwrite: bool) -> None:
    """The runner's early refusal (the differing parameter named) before any subject is loaded."""
    from brainnet.runs import refuse_other_parameters

    if out is not None:
        weights = dict(feats.provenance).get("weights")
        refuse_other_parameters(_folder(out, owner, analysis, sides),
                                {"parameters": parameters, "seed": seed, "weights": weights}, overwrite)


#: What each subject contributes to the side-swap test (stat_a, stat_b: their means over subjects).
_STATISTIC = {
    "decode": "per subject: within-subject decoding r (PLS from the subject's voxels to the units, cross-validated "
              "over stimuli, per-fold r averaged over folds and units)",
    "encode": "per subject: mean over voxels of the per-fold r (cross-validated encoding)",
    "rsa": "per subject: similarity of the subject's RDM to the network's",
}
#: Each side's own statistic, recomputed under every shared relabelling (relabel_stat_a, relabel_stat_b).
_RELABEL_STATISTIC = {
    "decode": "mean r over held-out subjects and units (leave-one-subject-out PLS, refitted per relabelling)",
    "encode": "mean over subjects of the mean per-fold r (cross-validated encoding, refitted per relabelling)",
    "rsa": "network_human_r: mean over subjects of the network-human RDM similarity",
}


def _within_subject_decoding(patterns: np.ndarray, features: np.ndarray, n_components: int, scale: bool,
                             algorithm: str, cv: int, seed: int, basis: np.ndarray | None) -> float:
    """One subject's own cross-validated decoding r: PLS from voxels to units, ``cv`` folds over stimuli.

    Parameters
    ----------
    patterns : ndarray of shape (n_stimuli, n_voxels)
        The subject's repeat-averaged patterns.
    features : ndarray of shape (n_stimuli, n_units)
        The units for the same stimuli, same order.
    n_components, scale, algorithm
        As for decoding.
    cv, seed
        Folds over stimuli (:func:`brainnet.encoding.make_folds`).
    basis : ndarray of shape (n_units, k), optional
        Decode the layer's coordinates in this basis (wide layers), as decoding does.

    Returns
    -------
    float
        Per-fold r of every unit averaged over folds, then over units (NaN units left out).
    """
    from brainnet.encoding import make_folds
    from brainnet.pls import CrossValidatedPLS
    from brainnet.stats import fold_mean_pearson

    folds = make_folds(patterns.shape[0], cv, seed)
    labels = np.empty(patterns.shape[0], dtype=np.intp)
    for k, (_, test) in enumerate(folds):
        labels[test] = k
    smallest = min(len(train) for train, _ in folds)
    if not 1 <= n_components <= min(smallest, patterns.shape[1]):
        raise BrainnetError(
            f"--components {n_components}: within-subject decoding (the side-swap test) trains on {smallest} "
            f"stimuli x {patterns.shape[1]} voxels per fold; use at most {min(smallest, patterns.shape[1])} "
            "components or more folds (--cv)")
    target = features if basis is None else features @ basis
    with warnings.catch_warnings():
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        model = CrossValidatedPLS(patterns, labels, n_components, scale=scale, algorithm=algorithm)
        pred = model.predict(target)
    if basis is not None:
        pred = pred @ basis.T
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant units stay NaN and are left out
        return float(np.nanmean(fold_mean_pearson(features, pred, folds)))


def _decode_side(patterns: Sequence[np.ndarray], stimulus_ids: Sequence[Sequence[str]], features: np.ndarray,
                 feature_ids: Sequence[str], subjects: Sequence[str] | None, *, n_components: int, scale: bool,
                 algorithm: str, cv: int, seed: int):
    """One side of a decoding comparison, on arrays.

    Parameters
    ----------
    patterns : list of ndarray of shape (n_stimuli_s, n_voxels)
        Each subject's repeat-averaged patterns (same voxels).
    stimulus_ids : list of sequences of str
    features : ndarray of shape (n_stimuli, n_units)
    feature_ids : sequence of str
    subjects : sequence of str, optional
    n_components, scale, algorithm, cv, seed
        As for :func:`contrast_decoding`.

    Returns
    -------
    statistic : callable
        Batched leave-one-subject-out mean r (``decode``'s), shape (n_batch,).
    per_subject : ndarray of shape (n_subjects,)
        Each subject's within-subject decoding r (:func:`_within_subject_decoding`).
    batch_size : int
        ``decode``'s batch size for these sizes.
    n_voxels : int
    """
    from brainnet import decoding
    from brainnet.pls import CrossValidatedPLS

    _, fx, rows = decoding._check_inputs(patterns, stimulus_ids, features, feature_ids, subjects, n_components)
    xs = [np.asarray(x, dtype=np.float64) for x in patterns]
    basis = decoding._unit_basis(fx, scale) if fx.shape[1] > decoding.MAX_UNITS else None
    per_subject = np.array([_within_subject_decoding(x, fx[r], n_components, scale, algorithm, cv, seed, basis)
                            for x, r in zip(xs, rows, strict=True)])
    x = np.concatenate(xs)
    bounds = np.cumsum([0] + [len(r) for r in rows])
    blocks = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    groups = np.repeat(np.arange(len(rows)), np.diff(bounds))
    model = CrossValidatedPLS(x, groups, n_components, scale=scale, algorithm=algorithm)
    full = decoding._statistic(model, fx, np.concatenate(rows), blocks, basis)
    return (lambda perms: full(perms)[:, 0]), per_subject, decoding._batch_size(x.shape[0], fx.shape[1]), x.shape[1]


def contrast_decoding(
    study=None,
    *,
    mask: str | Sequence[str] = "occipital",
    layers: str | Sequence[str] = "fc8",
    subjects: Sequence[str] | None = None,
    n_components: int | None = None,
    scale: bool = False,
    algorithm: str = "nipals",
    cv: int = 5,
    features=None,
    weights=None,
    untrained_seed: int = 0,
    network=None,
    n_permutations: int = 1000,
    n_flips: int = 10000,
    alternative: str = "two-sided",
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ContrastResult:
    """Decode on several regions (one layer) or several layers (one region) and compare them.

    Side-swap test (``p``): each subject's within-subject decoding r (its
    own PLS, ``cv`` folds over stimuli; see the module docstring for why
    not the held-out r of the group model). Relabelling test
    (``p_relabel``): ``decode``'s leave-one-subject-out mean r, whose null
    equals ``decode``'s under the same ``seed``.

    Parameters
    ----------
    study : Study, path or None
    mask : str or sequence of str
        Region(s), e.g. ``"occipital,whole-brain"``.
    layers : str or sequence of str
        Layer(s), e.g. ``"fc7,fc8"``. Exactly one of ``mask`` and ``layers``
        lists several.
    subjects, n_components, scale, algorithm, features, weights, untrained_seed, network
        See :func:`brainnet.decoding.decode_units`.
    cv : int
        Folds over stimuli of the within-subject decoding (folds from ``seed``).
    n_permutations, n_flips, alternative, seed, n_jobs, progress
        See :func:`paired_contrast_test`.
    out : path, optional
        Results go to ``<out>/group/contrast-decode-<a>_vs_<b>/``.
    overwrite : bool

    Returns
    -------
    ContrastResult
    """
    from brainnet import decoding
    from brainnet._checks import check_options
    from brainnet.study import Study, load_study

    n_components = decoding.DEFAULT_COMPONENTS if n_components is None else n_components
    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations,
                  n_components=n_components)
    varying, values, masks, layer_list = _sides(mask, layers)
    study = study if isinstance(study, Study) else load_study(study)
    labels = decoding._subject_labels(study, subjects)
    feats = study.features(layers=tuple(layer_list), weights=weights, seed=untrained_seed,
                           features_file=features, network=network)
    parameters = {"analysis": "decode", "compared": varying, "sides": values, "masks": masks,
                  "layers": layer_list, "subjects": labels, "n_components": n_components, "scale": scale,
                  "algorithm": algorithm, "cv": cv, "n_permutations": n_permutations, "n_flips": n_flips,
                  "alternative": alternative}
    _refuse_other_parameters(out, "group", "decode", values, parameters, seed, feats, overwrite)
    statistics, per_subject, sizes, n_voxels = {}, {}, {}, {}
    for value in values:
        m, layer = (value, layer_list[0]) if varying == "mask" else (masks[0], value)
        averaged = [d.averaged() for d in study.load_subjects(labels, mask=m)]
        statistics[value], per_subject[value], sizes[value], n_voxels[value] = _decode_side(
            [a[0] for a in averaged], [a[1] for a in averaged], feats.layer(layer), feats.stimulus_ids, labels,
            n_components=n_components, scale=scale, algorithm=algorithm, cv=cv, seed=seed)
    fprov = dict(feats.provenance)
    result = paired_contrast_test(statistics, len(feats.stimulus_ids), per_subject=per_subject,
                                  n_permutations=n_permutations, n_flips=n_flips, seed=seed,
                                  alternative=alternative, batch_size=sizes, n_jobs=n_jobs, progress=progress)
    result.summary["n_voxels"] = n_voxels
    result.summary["subjects"] = labels
    return _finish(result, "decode", varying, study, fprov, parameters, seed, out, "group", overwrite)


def contrast_encoding(
    study=None,
    subjects: str | Sequence[str] = "all",
    *,
    mask: str | Sequence[str] = "occipital",
    layers: str | Sequence[str] = "fc8",
    model: str = "ridge",
    cv: int = 5,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    features=None,
    weights=None,
    untrained_seed: int = 0,
    network=None,
    n_permutations: int = 1000,
    n_flips: int = 10000,
    alternative: str = "two-sided",
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ContrastResult:
    """Encode every subject on several regions or layers and compare their mean per-fold r.

    Side-swap test (``p``): each subject's mean per-fold r over voxels, as
    ``encode`` reports it. Relabelling test (``p_relabel``): the mean of
    those over subjects under one stimulus relabelling shared by every
    subject and side (for one subject, its null equals ``encode``'s null of
    the mean r under the same ``seed``). When the subjects saw different
    stimuli, every subject is restricted to the stimuli all of them saw
    (with a notice), so one relabelling applies to all.

    Parameters
    ----------
    study : Study, path or None
    subjects : "all", str or sequence of str
        ``"all"`` (default), one label (``"01"``: a one-subject comparison,
        relabelling test only) or several.
    mask, layers
        See :func:`contrast_decoding`.
    model, cv, alphas, inner, n_components, features, weights, untrained_seed, network
        See :func:`brainnet.encoding.encode_subject`.
    n_permutations, n_flips, alternative, seed, n_jobs, progress
        See :func:`paired_contrast_test`.
    out : path, optional
        Results go to ``<out>/group/contrast-encode-<a>_vs_<b>/`` (one
        subject: ``<out>/sub-<label>/...``).
    overwrite : bool

    Returns
    -------
    ContrastResult
    """
    from brainnet import encoding
    from brainnet._checks import check_options
    from brainnet.runs import subject_labels
    from brainnet.study import Study, load_study

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations)
    varying, values, masks, layer_list = _sides(mask, layers)
    study = study if isinstance(study, Study) else load_study(study)
    labels = subject_labels(study, subjects)
    feats = study.features(layers=tuple(layer_list), weights=weights, seed=untrained_seed,
                           features_file=features, network=network)
    parameters = {"analysis": "encode", "subjects": labels, "compared": varying, "sides": values, "masks": masks,
                  "layers": layer_list, "model": model, "cv": cv, "alphas": encoding._alphas(alphas).tolist(),
                  "inner": inner, "n_components": n_components if model == "pls" else None,
                  "n_permutations": n_permutations, "n_flips": n_flips, "alternative": alternative}
    folder = f"sub-{labels[0]}" if len(labels) == 1 else "group"
    _refuse_other_parameters(out, folder, "encode", values, parameters, seed, feats, overwrite)
    statistics, n_voxels, common = {}, {}, None
    for value in values:
        m, layer = (value, layer_list[0]) if varying == "mask" else (masks[0], value)
        loaded = [study.load_subject(label, mask=m).averaged() for label in labels]
        if common is None:
            present = set.intersection(*(set(ids) for _, ids in loaded))
            common = [s for s in loaded[0][1] if s in present]
            dropped = max(len(ids) for _, ids in loaded) - len(common)
            if dropped:
                notice(f"the {len(labels)} subjects saw different stimuli; every subject is compared on the "
                       f"{len(common)} stimuli all of them saw, so one relabelling applies to all")
        folds = encoding.make_folds(len(common), cv, seed)
        if model == "ridge":
            encoding._check_inner(inner, min(len(train) for train, _ in folds))
        raw = feats.layer(layer)[feats.rows_for(common)]
        arrays = [encoding._check_arrays(raw, y[[{s: i for i, s in enumerate(ids)}[s] for s in common]])
                  for y, ids in loaded]  # (features, responses) per subject, as encode casts them
        ys = [y for _, y in arrays]
        enc = encoding._Encoder(arrays[0][0], folds, model=model, alphas=alphas, inner=inner,
                                n_components=n_components)

        def side(perms, enc=enc, ys=ys):
            with encoding._quiet_nan():
                return np.stack([np.nanmean(enc.permuted_r(y, perms), axis=1) for y in ys], axis=1)

        statistics[value] = side
        n_voxels[value] = int(max(y.shape[1] for y in ys))
    fprov = dict(feats.provenance)
    result = paired_contrast_test(statistics, len(common), n_permutations=n_permutations, n_flips=n_flips,
                                  seed=seed, alternative=alternative,
                                  batch_size={k: encoding._batch_size(v) if model == "ridge" else 1
                                              for k, v in n_voxels.items()},
                                  n_jobs=n_jobs, progress=progress)
    result.summary["subjects"] = labels
    if len(labels) == 1:
        result.summary["subject"] = labels[0]
    result.summary["n_stimuli"] = len(common)
    result.summary["n_voxels"] = n_voxels
    return _finish(result, "encode", varying, study, fprov, parameters, seed, out, folder, overwrite)


def _rsa_side(network: np.ndarray, humans: np.ndarray, method: str) -> Callable[[np.ndarray], np.ndarray]:
    """Batched per-subject similarity of the relabelled network RDM to each human RDM, (n_batch, n_subjects).

    The per-subject form of :func:`brainnet.rsa._permutation_statistic` (whose
    value is the mean of these over subjects).
    """
    from brainnet import rsa

    n = rsa._n_from_pairs(humans.shape[1])
    if method == "tau-a":
        def loop(perms: np.ndarray) -> np.ndarray:
            idx = rsa._pair_permuter(n)(perms)
            return np.array([[rsa._tau_a(network[row], h) for h in humans] for row in idx])

        return loop
    net = rsa._embed(network[None], method)[0]  # (dim,)
    embedded = rsa._embed(humans, method)  # (n_subjects, dim)
    gather = (lambda perms: rsa._permuted_kernel(perms, n)) if method.startswith("whitened") else rsa._pair_permuter(n)

    def statistic(perms: np.ndarray) -> np.ndarray:
        return net[gather(perms)] @ embedded.T

    return statistic


def contrast_rsa(
    study=None,
    *,
    mask: str | Sequence[str] = "occipital",
    layers: str | Sequence[str] = "fc8",
    subjects: Sequence[str] | None = None,
    rdm: str = "correlation",
    compare: str = "spearman",
    features=None,
    weights=None,
    untrained_seed: int = 0,
    network=None,
    n_permutations: int = 1000,
    n_flips: int = 10000,
    alternative: str = "two-sided",
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ContrastResult:
    """Network-human RSA on several regions or layers, compared over subjects and under shared relabellings.

    Side-swap test (``p``): each subject's RDM similarity to the network's.
    Relabelling test (``p_relabel``): ``rsa``'s ``network_human_r`` (their
    mean), whose null equals ``rsa``'s under the same ``seed``. Repeats are
    averaged (``rdm`` ``"crossnobis"`` is not offered here).

    Parameters
    ----------
    study : Study, path or None
    mask, layers
        See :func:`contrast_decoding`.
    subjects, rdm, compare, features, weights, untrained_seed, network
        See :func:`brainnet.rsa.network_as_subject`.
    n_permutations, n_flips, alternative, seed, n_jobs, progress
        See :func:`paired_contrast_test`.
    out : path, optional
        Results go to ``<out>/group/contrast-rsa-<a>_vs_<b>/``.
    overwrite : bool

    Returns
    -------
    ContrastResult
    """
    from brainnet import rsa, runs
    from brainnet._checks import check_options
    from brainnet.study import Study, load_study

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations)
    if rdm == "crossnobis":
        raise BrainnetError("--rdm crossnobis: not offered for comparisons; use correlation, euclidean or cosine")
    rsa._check_metric(rdm)
    method = rsa._check_comparison(compare)
    varying, values, masks, layer_list = _sides(mask, layers)
    study = study if isinstance(study, Study) else load_study(study)
    labels = runs.subject_labels(study, "all" if subjects is None else subjects)
    feats = study.features(layers=tuple(layer_list), weights=weights, seed=untrained_seed,
                           features_file=features, network=network)
    parameters = {"analysis": "rsa", "compared": varying, "sides": values, "masks": masks, "layers": layer_list,
                  "subjects": labels, "rdm": rdm, "compare": method, "n_permutations": n_permutations,
                  "n_flips": n_flips, "alternative": alternative}
    _refuse_other_parameters(out, "group", "rsa", values, parameters, seed, feats, overwrite)
    statistics, n_voxels, common = {}, {}, None
    for value in values:
        m, layer = (value, layer_list[0]) if varying == "mask" else (masks[0], value)
        data = study.load_subjects(labels, mask=m, shared=None)
        if len(data) < 3:
            raise BrainnetError(f"network-as-subject RSA needs at least 3 subjects, got {len(data)}; add subjects")
        if common is None:
            present = set.intersection(*(set(sd.stimulus_ids.tolist()) for sd in data))
            common = [s for s in study.stimulus_ids if s in present]
            if len(common) < 4:
                raise BrainnetError(f"only {len(common)} stimuli were seen by every subject; RSA needs at least 4")
        humans = np.vstack([rsa.compute_rdm(sd.patterns, sd.stimulus_ids, metric=rdm, order=common).vector
                            for sd in data])
        net = rsa.compute_rdm(feats.layer(layer)[feats.rows_for(common)], common, metric=rdm).vector
        statistics[value] = _rsa_side(net, humans, method)
        n_voxels[value] = int(data[0].n_voxels)
    fprov = dict(feats.provenance)
    result = paired_contrast_test(statistics, len(common), n_permutations=n_permutations, n_flips=n_flips,
                                  seed=seed, alternative=alternative, n_jobs=n_jobs, progress=progress)
    result.summary["subjects"] = labels
    result.summary["n_stimuli"] = len(common)
    result.summary["n_voxels"] = n_voxels
    return _finish(result, "rsa", varying, study, fprov, parameters, seed, out, "group", overwrite)
