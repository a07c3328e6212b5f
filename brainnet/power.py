"""Power analysis of the group decoding of network units (the paper's fig. S7).

Subjects (and optionally stimuli) are subsampled repeatedly; each subsample is
analysed with a fast version of the decoding test, and the detection rate at
level ``alpha`` is reported per sample size with a Clopper-Pearson 95 % CI.

The test, per subsample, is the group decoding test of ``brainnet decode``
made fast:

1. voxel patterns are reduced once, before any subsampling, to their first
   ``n_pca`` principal components (pooled over all subjects; unsupervised,
   the unit activations are not used), so a fold costs ``O(n_trials n_pca)``
   instead of ``O(n_trials n_voxels)``;
2. PLS regression (SIMPLS, the algorithm of MATLAB's ``plsregress`` used in
   the paper; X and Y centred) predicts the layer's units from the patterns,
   trials of the subsampled subjects pooled, leave-one-subject-out;
3. the statistic is the mean over held-out subjects and units of the Pearson
   r between predicted and true activations across trials;
4. its p-value comes from ``n_permutations`` permutations of the stimulus ->
   feature assignment (identical for all subjects), run through
   :func:`brainnet.permutation.permutation_test` with the SIMPLS fits of a
   whole batch of permutations done at once (every fold's centred X and its
   per-stimulus sums are computed once per subsample).

Why not the cheaper one-sample t-test of the held-out subjects' scores: the
leave-one-subject-out scores are not independent (the model that scores
subject A was trained on subject B and vice versa, which adds a shared term
to both scores), and in null simulations (12 subjects, 60 stimuli) the
t-test detected an effect in 14-15 % of subsamples at alpha = 5 %. The
permutation test keeps the null detection rate at alpha (tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet._display import Record
from brainnet.errors import BrainnetError
from brainnet.pls import (  # the one SIMPLS, shared with decode --algorithm simpls
    _simpls_rotations,
    simpls,
)

__all__ = ["simpls", "power_curve", "power_analysis", "PowerResult"]


class _LosoDecoder:
    """Leave-one-subject-out SIMPLS decoding of stimulus features, batched over permutations.

    Every training fold's centred X and its per-stimulus row sums are kept,
    so a batch of permuted feature assignments costs a few matrix products.
    """

    def __init__(
        self,
        xs: Sequence[np.ndarray],
        rows: Sequence[np.ndarray],
        n_stimuli: int,
        n_components: int,
    ):
        self.n_components = n_components
        self.folds = []
        for s in range(len(xs)):
            x_train = np.vstack([x for i, x in enumerate(xs) if i != s])
            r_train = np.concatenate([r for i, r in enumerate(rows) if i != s])
            mean = x_train.mean(axis=0)
            x0 = x_train - mean
            per_stimulus = np.zeros((x0.shape[1], n_stimuli))
            np.add.at(per_stimulus.T, r_train, x0)
            self.folds.append((x0.T @ x0, per_stimulus, xs[s] - mean, rows[s]))

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Mean-over-units r of each held-out subject, shape (n_batch, n_subjects).

        ``features`` has shape (n_batch, n_stimuli, n_units): one feature
        assignment per batch element.
        """
        from brainnet.stats import pearson_columns

        out = np.empty((features.shape[0], len(self.folds)))
        for s, (gram, per_stimulus, x_test, rows) in enumerate(self.folds):
            # X0^T Y0 = X0^T S F because X0's columns sum to zero
            cross = per_stimulus @ features
            rot = _simpls_rotations(gram, cross, self.n_components)
            coef = rot @ (rot.transpose(0, 2, 1) @ cross)
            predicted = x_test @ coef
            with np.errstate(invalid="ignore"):
                r = pearson_columns(predicted, features[:, rows], axis=1)
            finite = np.isfinite(r)
            out[:, s] = np.where(finite, r, 0.0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
        return out


def _reduce(patterns: Sequence[np.ndarray], n_pca: int, seed: int) -> list[np.ndarray]:
    """Pooled principal-component scores of every subject's patterns."""
    from sklearn.utils.extmath import randomized_svd

    # float32 and two power iterations: a good basis is enough, it need not be exact
    stacked = np.vstack([np.asarray(p, dtype=np.float32) for p in patterns])
    stacked -= stacked.mean(axis=0)
    d = int(min(n_pca, stacked.shape[0] - 1, stacked.shape[1]))
    u, s, _ = randomized_svd(stacked, d, n_iter=2, random_state=seed)
    scores = (u * s).astype(np.float64)
    bounds = np.cumsum([0] + [len(p) for p in patterns])
    return [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _check_arguments(n_subjects, n_stimuli, subject_sizes, n_stimuli_sizes, n_repeats, alpha, n_components, n_pca,
                     n_permutations) -> tuple[list[int], list[int]]:
    """Every argument of a power analysis, checked before any folder or computation.

    Returns the subject and stimulus sample sizes, sorted and unique.
    """
    from brainnet._checks import ParameterError, check_options

    check_options(n_repeats=n_repeats, n_components=n_components, n_pca=n_pca, n_permutations=n_permutations)
    if not 0 < alpha < 1:  # NaN fails too
        raise ParameterError("alpha", alpha, "the test level must be between 0 and 1", "pass e.g. {}",
                             examples=(0.05,))
    # a detection is p < alpha and the smallest permutation p is 1 / (n_permutations + 1)
    least = max(1, int(1 / alpha) - 1)
    while 1 / (least + 1) >= alpha:
        least += 1
    if n_permutations < least:
        raise ParameterError("n_permutations", n_permutations,
                             f"a p-value below {alpha:g} needs at least {least} (the smallest p is 1/(permutations + 1))",
                             "pass {} or more", examples=(max(99, least),))
    subject_sizes = _check_sizes("--sizes", subject_sizes, 3, n_subjects, "subjects")
    low = n_components + 2
    stim_sizes = _check_sizes(
        "--stimuli", n_stimuli_sizes or [n_stimuli], min(low, n_stimuli), n_stimuli, "stimuli"
    )
    return subject_sizes, stim_sizes


def _check_sizes(name: str, sizes: Sequence[int], low: int, high: int, what: str) -> list[int]:
    sizes = sorted({int(v) for v in sizes})
    bad = [v for v in sizes if not low <= v <= high]
    if not sizes or bad:
        raise BrainnetError(
            f"{name} {','.join(map(str, bad or sizes))}: the study has {high} {what}; "
            f"choose sizes between {low} and {high}"
        )
    return sizes


def _one_draw(z, stim_index, features, subjects, stimuli, n_components, n_permutations, seed):
    """Observed mean r, permutation p and effect vs the null ((r - null mean) / null SD) of one subsample."""
    from brainnet.permutation import permutation_test
    from brainnet.stats import null_effect

    local = np.full(features.shape[0], -1)
    local[stimuli] = np.arange(stimuli.size)
    xs, rows = [], []
    for s in subjects:
        keep = local[stim_index[s]] >= 0
        xs.append(z[s][keep])
        rows.append(local[stim_index[s][keep]])
    sub_features = features[stimuli]
    decoder = _LosoDecoder(xs, rows, stimuli.size, n_components)

    def statistic(perms: np.ndarray) -> np.ndarray:
        return decoder.scores(sub_features[perms]).mean(axis=1)

    result = permutation_test(
        statistic, stimuli.size, n_permutations=n_permutations, seed=seed, batch_size=50
    )
    effect = null_effect(result.observed, result.null)["effect"]
    return float(result.observed), float(result.p_value), float("nan") if effect is None else float(effect)


def _run_resumable(run, jobs: list, n_jobs: int, checkpoint: Path | None, meta: dict) -> list:
    """``[run(j) for j in jobs]``, resuming from and saving to ``checkpoint``.

    Subsamples are a function of ``(seed, job)`` only, so finished ones can
    be kept; the checkpoint holds the outcomes of a prefix of ``jobs``.
    """
    import time

    from brainnet import permutation
    from brainnet.results import atomic_save_npz

    done = None if checkpoint is None else permutation._load_checkpoint(checkpoint, meta, n_max=len(jobs), row_shape=(3,))
    outcomes = [] if done is None else [tuple(float(v) for v in row) for row in done]

    def save() -> None:
        atomic_save_npz(checkpoint, draws=np.asarray(outcomes, dtype=np.float64).reshape(-1, 3), **meta)

    last_save = time.monotonic()
    with contextlib.ExitStack() as stack:
        todo = jobs[len(outcomes):]
        if n_jobs == 1:
            results = map(run, todo)
        else:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=None if n_jobs < 0 else n_jobs)
            # on Ctrl-C, drop queued subsamples instead of finishing them all
            stack.callback(pool.shutdown, cancel_futures=True)
            results = pool.map(run, todo)  # yields in job order
        for outcome in results:
            outcomes.append(outcome)
            if checkpoint is not None and time.monotonic() - last_save > permutation.CHECKPOINT_SECONDS:
                save()
                last_save = time.monotonic()
    if checkpoint is not None:
        save()
    return outcomes


def power_curve(
    patterns: Sequence[np.ndarray],
    stimulus_index: Sequence[np.ndarray],
    features: np.ndarray,
    *,
    subject_sizes: Sequence[int] = (4, 8, 12, 18),
    n_stimuli_sizes: Sequence[int] | None = None,
    n_repeats: int = 10,
    alpha: float = 0.05,
    n_components: int = 5,
    n_pca: int = 100,
    n_permutations: int = 99,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
) -> pd.DataFrame:
    """Detection rate of the unit-decoding test versus sample size.

    Parameters
    ----------
    patterns : list of ndarray of shape (n_trials, n_voxels)
        One array per subject, on a shared voxel set.
    stimulus_index : list of int ndarray of shape (n_trials,)
        Row of ``features`` shown on each trial.
    features : ndarray of shape (n_stimuli, n_units)
        The layer's activations.
    subject_sizes : sequence of int
        Numbers of subjects to subsample (3 .. n_subjects).
    n_stimuli_sizes : sequence of int, optional
        Numbers of stimuli to subsample (default: all stimuli only).
    n_repeats : int
        Subsamples per size (the full sample, having only one, is analysed once).
    alpha : float
    n_components : int
        PLS components.
    n_pca : int
        Principal components the voxels are reduced to first.
    n_permutations : int
        Permutations per subsample (99: p < 0.05 needs at most 3 null values
        at or above the observed one).
    seed : int
        Subsample ``r`` of a size is drawn from ``default_rng([seed, n_subjects, n_stimuli, r])``.
    n_jobs : int
        Subsamples analysed in parallel threads.
    checkpoint : path, optional
        ``.npz`` where finished subsamples are saved every
        :data:`brainnet.permutation.CHECKPOINT_SECONDS`; a rerun with the same
        arguments resumes from it (same table as an uninterrupted run).

    Returns
    -------
    DataFrame
        One row per (n_subjects, n_stimuli): ``n_repeats``, ``n_detected``,
        ``detection_rate``, ``ci_low``, ``ci_high`` (Clopper-Pearson 95 %),
        ``mean_r``, ``sd_r`` (of the subsamples' statistic), ``median_p``,
        ``mean_effect_vs_null`` (mean over subsamples of (mean r - null
        mean) / null SD of its own permutation null).
    """
    from scipy.stats import binomtest

    features = np.asarray(features, dtype=np.float64)
    n_subjects, n_stimuli = len(patterns), features.shape[0]
    subject_sizes, stim_sizes = _check_arguments(
        n_subjects, n_stimuli, subject_sizes, n_stimuli_sizes, n_repeats, alpha, n_components, n_pca, n_permutations
    )
    from brainnet._threads import single_blas_thread

    # One BLAS thread, like the subsample loop: the PCA must not depend on the thread count.
    with single_blas_thread():
        z = _reduce(patterns, n_pca, seed)
    stim_index = [np.asarray(s, dtype=int) for s in stimulus_index]

    def run(job):
        n_sub, n_stim, rep = job
        rng = np.random.default_rng([seed, n_sub, n_stim, rep])
        subjects = np.sort(rng.choice(n_subjects, n_sub, replace=False))
        stimuli = np.sort(rng.choice(n_stimuli, n_stim, replace=False))
        return _one_draw(
            z,
            stim_index,
            features,
            subjects,
            stimuli,
            n_components,
            n_permutations,
            seed + rep,
        )

    # The full sample has one subsample only: analyse it once (n_repeats = 1 in the table).
    jobs = [
        (a, b, r)
        for a in subject_sizes
        for b in stim_sizes
        for r in range(1 if (a, b) == (n_subjects, n_stimuli) else n_repeats)
    ]
    meta = {"jobs": np.asarray(jobs, dtype=np.int64), "seed": np.int64(seed),
            "settings": np.asarray([n_components, n_pca, n_permutations], dtype=np.int64)}
    # The matrices of one subsample are small: one BLAS thread each, parallel over subsamples.
    with single_blas_thread():
        outcomes = _run_resumable(run, jobs, n_jobs, None if checkpoint is None else Path(checkpoint), meta)
    rows = []
    for size in dict.fromkeys((a, b) for a, b, _ in jobs):
        picked = [o for j, o in zip(jobs, outcomes, strict=True) if j[:2] == size]
        score = np.array([o[0] for o in picked])
        p = np.array([o[1] for o in picked])
        effect = np.array([o[2] for o in picked])
        detected = int(np.sum(p < alpha))
        ci = binomtest(detected, len(picked)).proportion_ci(confidence_level=0.95, method="exact")
        rows.append(
            {
                "n_subjects": size[0],
                "n_stimuli": size[1],
                "n_repeats": len(picked),
                "n_detected": detected,
                "detection_rate": detected / len(picked),
                "ci_low": float(ci.low),
                "ci_high": float(ci.high),
                "mean_r": float(score.mean()),
                "sd_r": float(score.std(ddof=1)) if len(picked) > 1 else float("nan"),
                "median_p": float(np.median(p)),
                "mean_effect_vs_null": float(np.nanmean(effect)) if np.isfinite(effect).any() else float("nan"),
            }
        )
    return pd.DataFrame(rows)


@dataclass(repr=False)
class PowerResult(Record):
    """Result of :func:`power_analysis`: ``table`` (see :func:`power_curve`) and ``summary``."""

    table: pd.DataFrame
    summary: dict[str, Any]
    path: Path | None = None

    def plot(self) -> list[Any]:
        """Detection rate against the number of subjects, one curve per number of stimuli."""
        from brainnet.plotting import plot_power

        fig = None
        groups = list(self.table.groupby("n_stimuli")) if "n_stimuli" in self.table else [(None, self.table)]
        for i, (key, part) in enumerate(groups):
            fig = plot_power(part["n_subjects"], part["detection_rate"], ci_low=part["ci_low"],
                             ci_high=part["ci_high"], target=0.8 if i == 0 else None,
                             label=None if key is None or len(groups) == 1 else f"{key} stimuli",
                             ax=None if fig is None else fig.axes[0],
                             title=f"power of {self.summary.get('layer', '')} decoding")
        return [fig]

    def write(self, resultdir: Any) -> list[Path]:
        """Write ``power.tsv`` through a :class:`~brainnet.results.ResultDir`.

        Given a folder instead, write the record itself (see :meth:`read`).
        """
        from brainnet.results import ResultDir

        if not isinstance(resultdir, ResultDir):
            return super().write(resultdir)
        return [resultdir.write_tsv("power.tsv", self.table)]


def power_analysis(
    study: Any = None,
    *,
    layer: str = "fc8",
    subject_sizes: Sequence[int] = (4, 8, 12, 18),
    n_stimuli_sizes: Sequence[int] | None = None,
    n_repeats: int = 10,
    alpha: float = 0.05,
    analysis: str = "decode",
    mask: str | Path = "occipital",
    subjects: Sequence[str] | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    features_file: str | Path | None = None,
    n_components: int = 5,
    n_pca: int = 100,
    n_permutations: int = 99,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> PowerResult:
    """Power of the group unit-decoding test versus number of subjects (and stimuli).

    Parameters
    ----------
    study : Study, str or Path, optional
        A loaded study or its folder; None: the embedded demo study.
    layer : str
        Network layer whose units are decoded.
    subject_sizes, n_stimuli_sizes, n_repeats, alpha, n_components, n_pca, n_permutations, seed, n_jobs
        See :func:`power_curve`.
    analysis : {"decode"}
        The analysis whose power is estimated (group decoding of units).
    mask : str or Path
        Region of the patterns.
    subjects : sequence of str, optional
        Subjects to draw from (default: all).
    weights, untrained_seed, features_file
        Network features: EmoNet weights, the seed of untrained weights, or
        a precomputed features file.
    out : path, optional
        Results go to ``<out>/group/power-<layer>/`` (``summary.json``,
        ``power.tsv``); nothing is written when None.
    overwrite : bool
        Replace results in that folder made with other parameters.

    Returns
    -------
    PowerResult
        ``summary`` has ``analysis``, ``layer``, ``model``, ``test``, ``alpha``,
        ``n_subjects``, ``n_stimuli``, ``n_voxels``, ``subject_sizes``,
        ``n_repeats``, ``mean_r`` and ``p_value`` (of the largest sample),
        ``n_permutations`` (per subsample), ``noise_ceiling`` (None),
        ``detection_rate`` (at the largest size) and ``min_subjects_80``
        (smallest size with detection rate >= 0.8, or None).
        ``path`` is the result folder (or None).
    """
    from brainnet import runs
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations)

    if analysis != "decode":
        raise BrainnetError(f"--analysis {analysis}: unknown; power is available for: decode")
    study = runs.resolve_study(study)
    available = len(subjects) if subjects is not None else len(study.subjects)
    _check_sizes("--sizes", subject_sizes, 3, available, "subjects")  # fail before loading data
    labels = [str(s).strip().removeprefix("sub-") for s in (subjects if subjects is not None else study.subjects)]
    feats = runs.layer_features(study, [layer], weights=weights, untrained_seed=untrained_seed,
                                features=features_file)
    spec = _PowerSpec(layer, mask, seed, analysis, labels, tuple(subject_sizes),
                      None if n_stimuli_sizes is None else tuple(n_stimuli_sizes), n_repeats, alpha, n_components,
                      n_pca, n_permutations)
    runner = runs.Runner(spec, study, feats, out, overwrite, runs.Execution(n_jobs))
    return runner.run_group(labels)


@dataclass(frozen=True)
class _PowerSpec:
    """The power spec for :meth:`brainnet.runs.Runner.run_group`: subsamples of all subjects."""

    layer: str
    mask: Any
    seed: int
    analysis_of: str
    subjects: list[str]
    subject_sizes: tuple
    n_stimuli_sizes: tuple | None
    n_repeats: int
    alpha: float
    n_components: int
    n_pca: int
    n_permutations: int

    analysis = "power"

    def parameters(self, label: str) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "subjects": list(self.subjects),
            "subject_sizes": sorted({int(v) for v in self.subject_sizes}),
            "n_stimuli_sizes": sorted({int(v) for v in self.n_stimuli_sizes}) if self.n_stimuli_sizes else None,
            "n_repeats": self.n_repeats,
            "alpha": self.alpha,
            "n_components": self.n_components,
            "n_pca": self.n_pca,
            "n_permutations": self.n_permutations,
        }

    def prepare_group(self, study, labels, feats):
        """Load every subject and check every argument against the data, before the result folder exists."""
        data = study.load_subjects(labels, mask=self.mask)
        position = {s: i for i, s in enumerate(feats.stimulus_ids)}
        stim_index = [np.array([position[s] for s in d.stimulus_ids]) for d in data]
        matrix = feats.layer(self.layer)
        _check_arguments(len(data), matrix.shape[0], self.subject_sizes, self.n_stimuli_sizes, self.n_repeats,
                         self.alpha, self.n_components, self.n_pca, self.n_permutations)
        inputs = {"patterns": [d.patterns for d in data], "stim_index": stim_index, "matrix": matrix}
        extras = {"n_subjects": len(data), "n_voxels": int(data[0].n_voxels),
                  "weights": feats.provenance.get("weights") if feats.provenance else None}
        return inputs, extras, data[0].mask_name, {"n_voxels": int(data[0].n_voxels)}

    def compute(self, inputs, n_jobs: int, checkpoint, progress: bool) -> pd.DataFrame:
        return power_curve(
            inputs["patterns"],
            inputs["stim_index"],
            inputs["matrix"],
            subject_sizes=self.subject_sizes,
            n_stimuli_sizes=self.n_stimuli_sizes,
            n_repeats=self.n_repeats,
            alpha=self.alpha,
            n_components=self.n_components,
            n_pca=self.n_pca,
            n_permutations=self.n_permutations,
            seed=self.seed,
            n_jobs=n_jobs,
            checkpoint=None if checkpoint is None else checkpoint / "power_subsamples.npz",
        )

    def finish(self, job, table: pd.DataFrame) -> PowerResult:
        full = table[table["n_stimuli"] == table["n_stimuli"].max()]
        powered = full[full["detection_rate"] >= 0.8]["n_subjects"]
        largest = full.iloc[-1]
        summary = {
            "analysis": "power",
            "power_of": self.analysis_of,
            "layer": self.layer,
            "model": f"SIMPLS PLS ({self.n_components} components) on {self.n_pca} voxel PCs, leave-one-subject-out",
            "test": "stimulus permutation test of the mean held-out r, per subsample",
            "alpha": self.alpha,
            "n_subjects": job.extras["n_subjects"],
            "n_stimuli": int(job.inputs["matrix"].shape[0]),
            "n_voxels": job.extras["n_voxels"],
            "mean_r": float(largest["mean_r"]),
            "p_value": float(largest["median_p"]),
            "effect_vs_null": float(largest["mean_effect_vs_null"]),
            "effect_vs_null_definition": "(mean r - permutation null mean) / null SD, averaged over subsamples",
            "n_permutations": self.n_permutations,
            "noise_ceiling": None,
            "subject_sizes": [int(v) for v in table["n_subjects"].unique()],
            "n_stimuli_sizes": [int(v) for v in table["n_stimuli"].unique()],
            "n_repeats": self.n_repeats,
            "detection_rate": float(largest["detection_rate"]),
            "min_subjects_80": int(powered.min()) if len(powered) else None,
            "weights": job.extras["weights"],
        }
        return PowerResult(table=table, summary=summary)

    def write(self, result: PowerResult, folder, job) -> None:
        result.write(folder)
        folder.finish(result.summary)
        result.path = folder.path
