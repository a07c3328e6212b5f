"""Representational similarity analysis, with the network as one more subject.

Three layers of functionality:

- **RDMs** (:func:`compute_rdm`): per subject or per network layer, over
  stimuli, with repeats averaged (``correlation``, ``euclidean``,
  ``cosine``) or cross-validated across runs (``crossnobis``).
- **Comparisons** (:func:`compare_rdms`): Spearman, Pearson, Kendall tau-a,
  cosine and the whitened cosine / Pearson of Diedrichsen et al. (2021).
- **Network as a subject** (:func:`network_as_subject`,
  :func:`rsa_network_subject`): the network layer's RDM stacked with the
  humans' RDMs; second-order similarity matrix, human noise ceilings, the
  network's rank among the humans, condition-label permutation test,
  bootstrap CIs over subjects and stimuli, max-statistic correction across
  layers.

Conventions follow rsatoolbox so that numbers are interchangeable (tests
check equality on the same data): ``euclidean`` is the squared Euclidean
distance divided by the number of channels (voxels or units); crossnobis is
rsatoolbox's leave-one-run-out estimator (mean over folds of
``(a_i - a_j)' P (b_i - b_j) / n_channels``, train = mean of the other runs,
test = the held-out run) with noise precision ``P``; the noise ceilings pool
the other subjects' RDMs the way ``rsatoolbox.util.pooling.pool_rdm`` does
(average ranks for Spearman, average z-scored RDMs for Pearson, ...).

Where rsatoolbox is used and where not:

- The noise precision for crossnobis (``noise="shrinkage"`` / ``"diagonal"``)
  is rsatoolbox's ``prec_from_residuals`` (shrinkage towards the diagonal,
  Schäfer & Strimmer 2005). The residuals are the single-trial patterns
  around their stimulus means (a GLM's residuals are not part of a study);
  ``noise="identity"`` (default) gives the cross-validated Euclidean
  distance. The precision is ``n_voxels x n_voxels``: fine for a region,
  not for a whole brain at 2 mm.
- RDMs and comparisons are vectorised numpy here rather than rsatoolbox
  objects: rsatoolbox builds per-RDM Python objects and descriptors (its
  memory issues #37/#214), has no condition-label permutation test (issue
  #249), and its Spearman/tau comparisons loop in Python. Permutation and
  bootstrap need thousands of comparisons per second; here a permutation of
  stimuli is a gather of RDM entries, ranks are computed once (they are
  invariant under permutation), and all subjects reduce to one matrix
  product per batch of permutations.
- Kendall tau-a is computed from scipy's tau-b and the tie counts
  (identical to rsatoolbox's value); it has no batched form, so its
  permutation test loops (slow; Spearman is the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet import _defaults
from brainnet._display import Record, Summary
from brainnet.errors import BrainnetError

__all__ = [
    "RDM_METRICS",
    "COMPARISONS",
    "RDM",
    "condition_means",
    "compute_rdm",
    "noise_precision",
    "compare_rdms",
    "pool_rdms",
    "noise_ceiling",
    "RSAResult",
    "LayerRSA",
    "rsa_network_subject",
    "network_as_subject",
]

RDM_METRICS = _defaults.RDM_METRICS
COMPARISONS = _defaults.COMPARISONS
# brainnet name -> rsatoolbox.rdm.compare method
RSATOOLBOX_COMPARE = {
    "spearman": "spearman",
    "pearson": "corr",
    "tau-a": "tau-a",
    "cosine": "cosine",
    "whitened-cosine": "cosine_cov",
    "whitened-pearson": "corr_cov",
}
_NOISE = ("identity", "diagonal", "shrinkage")


# --------------------------------------------------------------------------- RDMs


@dataclass(frozen=True)
class RDM:
    """A representational dissimilarity matrix, stored as its upper triangle.

    Attributes
    ----------
    vector : ndarray of shape (n_stimuli * (n_stimuli - 1) / 2,)
        Dissimilarities of pairs ``(i, j), i < j`` in row-major order (as
        ``scipy.spatial.distance.squareform`` and rsatoolbox).
    stimulus_ids : tuple of str, length n_stimuli
    metric : str
    """

    vector: np.ndarray
    stimulus_ids: tuple[str, ...]
    metric: str

    @property
    def n_stimuli(self) -> int:
        return len(self.stimulus_ids)

    def matrix(self) -> np.ndarray:
        """The square ``(n_stimuli, n_stimuli)`` matrix (zero diagonal)."""
        return _square(self.vector, self.n_stimuli)


def _n_from_pairs(n_pairs: int) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise BrainnetError(
            f"RDM vector has {n_pairs} entries, which is not n*(n-1)/2 for any n; "
            "pass the upper triangle of a square RDM"
        )
    return n


def _square(vector: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n))
    iu, ju = np.triu_indices(n, 1)
    out[iu, ju] = vector
    out[ju, iu] = vector
    return out


def condition_means(
    patterns: np.ndarray, stimulus_ids: Sequence[str], order: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Average the rows of each stimulus.

    Parameters
    ----------
    patterns : ndarray of shape (n_trials, n_channels)
    stimulus_ids : sequence of str, length n_trials
    order : sequence of str, optional
        Stimuli (rows) of the result; default: order of first appearance.

    Returns
    -------
    means : ndarray of shape (n_stimuli, n_channels)
    ids : tuple of str
    """
    patterns = np.asarray(patterns, dtype=np.float64)
    ids = np.asarray([str(s) for s in stimulus_ids])
    if patterns.ndim != 2 or patterns.shape[0] != ids.size:
        raise BrainnetError(
            f"patterns have shape {patterns.shape} but there are {ids.size} stimulus ids; "
            "give one id per row"
        )
    if order is None:
        _, first = np.unique(ids, return_index=True)
        order = ids[np.sort(first)]
    order = np.asarray([str(s) for s in order])
    codes = {s: k for k, s in enumerate(order)}
    missing = sorted(set(order) - set(ids))
    if missing:
        raise BrainnetError(
            f"stimuli {missing[:3]} have no pattern; drop them from the order or add their trials"
        )
    keep = np.array([s in codes for s in ids])
    rows = np.array([codes[s] for s in ids[keep]], dtype=np.intp)
    sums = np.zeros((order.size, patterns.shape[1]))
    np.add.at(sums, rows, patterns[keep])
    counts = np.bincount(rows, minlength=order.size)
    return sums / counts[:, None], tuple(order.tolist())


def noise_precision(
    patterns: np.ndarray, stimulus_ids: Sequence[str], method: str = "shrinkage"
) -> np.ndarray:
    """Noise precision ``(n_channels, n_channels)`` from residuals around stimulus means.

    ``method``: ``"shrinkage"`` (shrinkage towards the diagonal, rsatoolbox's
    ``shrinkage_diag``), ``"diagonal"`` (univariate noise normalisation) or
    ``"identity"``.
    """
    patterns = np.asarray(patterns, dtype=np.float64)
    n_channels = patterns.shape[1]
    if method == "identity":
        return np.eye(n_channels)
    if method not in _NOISE:
        raise BrainnetError(f"noise {method!r} is unknown; use one of {', '.join(_NOISE)}")
    means, order = condition_means(patterns, stimulus_ids)
    codes = {s: k for k, s in enumerate(order)}
    residuals = patterns - means[[codes[str(s)] for s in stimulus_ids]]
    dof = patterns.shape[0] - len(order)
    if dof < 2:
        raise BrainnetError(
            "noise: too few repeated trials to estimate the noise covariance "
            f"({patterns.shape[0]} trials of {len(order)} stimuli); use noise='identity'"
        )
    from rsatoolbox.data.noise import prec_from_residuals

    name = {"shrinkage": "shrinkage_diag", "diagonal": "diag"}[method]
    return prec_from_residuals(residuals, dof=dof, method=name)


def _check_metric(metric: str) -> None:
    if metric not in RDM_METRICS:
        raise BrainnetError(f"--rdm {metric!r} is unknown; use one of {', '.join(RDM_METRICS)}")


def compute_rdm(
    patterns: np.ndarray,
    stimulus_ids: Sequence[str] | None = None,
    *,
    metric: str = "correlation",
    runs: Sequence[Any] | None = None,
    noise: str | np.ndarray = "identity",
    order: Sequence[str] | None = None,
) -> RDM:
    """RDM of one subject or one network layer.

    Parameters
    ----------
    patterns : ndarray of shape (n_trials, n_channels)
        Trials (or stimuli) by voxels (or units).
    stimulus_ids : sequence of str, length n_trials, optional
        Repeats of a stimulus are averaged (cross-validated for
        ``crossnobis``). Default: one stimulus per row, ``"0", "1", ...``.
    metric : {"correlation", "euclidean", "cosine", "crossnobis"}
        ``correlation`` = 1 - Pearson r, ``euclidean`` = squared distance /
        n_channels (rsatoolbox's convention), ``cosine`` = 1 - cosine,
        ``crossnobis`` = leave-one-run-out cross-validated Mahalanobis.
    runs : sequence, length n_trials
        Run of each trial; required for ``crossnobis``.
    noise : {"identity", "diagonal", "shrinkage"} or ndarray (n_channels, n_channels)
        Noise precision for ``crossnobis`` (see :func:`noise_precision`).
    order : sequence of str, optional
        Stimulus order of the RDM.

    Returns
    -------
    RDM
    """
    _check_metric(metric)
    patterns = np.asarray(patterns, dtype=np.float64)
    if stimulus_ids is None:
        stimulus_ids = [str(k) for k in range(patterns.shape[0])]
    if metric == "crossnobis":
        return _crossnobis(patterns, stimulus_ids, runs, noise, order)
    means, ids = condition_means(patterns, stimulus_ids, order)
    if len(ids) < 3:
        raise BrainnetError(f"an RDM needs at least 3 stimuli, got {len(ids)}; use a study with 3 stimuli or more")
    if metric == "euclidean":
        sq = np.sum(means**2, axis=1)
        full = (sq[:, None] + sq[None, :] - 2 * means @ means.T) / means.shape[1]
    else:
        centred = means - means.mean(axis=1, keepdims=True) if metric == "correlation" else means
        norms = np.linalg.norm(centred, axis=1)
        if np.any(norms == 0):
            bad = [ids[k] for k in np.flatnonzero(norms == 0)[:3]]
            raise BrainnetError(
                f"stimuli {bad} have a constant pattern, so the {metric} distance is undefined; "
                "use --rdm euclidean or check the mask"
            )
        unit = centred / norms[:, None]
        full = 1.0 - unit @ unit.T
    iu, ju = np.triu_indices(len(ids), 1)
    return RDM(vector=full[iu, ju], stimulus_ids=ids, metric=metric)


def _crossnobis(patterns, stimulus_ids, runs, noise, order) -> RDM:
    if runs is None:
        raise BrainnetError(
            "--rdm crossnobis needs the run of each trial and this study has none; "
            "use --rdm correlation"
        )
    runs = np.asarray(runs)
    ids = np.asarray([str(s) for s in stimulus_ids])
    run_labels = np.unique(runs)
    if run_labels.size < 2:
        raise BrainnetError(
            "--rdm crossnobis needs at least 2 runs to cross-validate; use --rdm correlation"
        )
    if order is None:
        _, first = np.unique(ids, return_index=True)
        order = ids[np.sort(first)]
    order = [str(s) for s in order]
    for run in run_labels:
        absent = sorted(set(order) - set(ids[runs == run]))
        if absent:
            raise BrainnetError(
                f"--rdm crossnobis needs every stimulus in every run, but run {run} lacks "
                f"{absent[:3]}; use --rdm correlation"
            )
    if isinstance(noise, str):
        precision = noise_precision(patterns, ids, noise)
    else:
        precision = np.asarray(noise, dtype=np.float64)
    n = len(order)
    iu, ju = np.triu_indices(n, 1)
    total = np.zeros(iu.size)
    for run in run_labels:
        test, _ = condition_means(patterns[runs == run], ids[runs == run], order)
        train, _ = condition_means(patterns[runs != run], ids[runs != run], order)
        kernel = train @ precision @ test.T
        diag = np.diag(kernel)
        total += diag[iu] + diag[ju] - kernel[iu, ju] - kernel[ju, iu]
    vector = total / run_labels.size / patterns.shape[1]
    return RDM(vector=vector, stimulus_ids=tuple(order), metric="crossnobis")


# --------------------------------------------------------------------------- comparisons


def _check_comparison(method: str) -> str:
    aliases = {v: k for k, v in RSATOOLBOX_COMPARE.items()}
    method = aliases.get(method, method)
    if method not in COMPARISONS:
        raise BrainnetError(f"--compare {method!r} is unknown; use one of {', '.join(COMPARISONS)}")
    return method


def _as_vectors(rdms: Any) -> np.ndarray:
    if isinstance(rdms, RDM):
        rdms = rdms.vector
    elif isinstance(rdms, Sequence) and rdms and isinstance(rdms[0], RDM):
        rdms = [r.vector for r in rdms]
    out = np.atleast_2d(np.asarray(rdms, dtype=np.float64))
    if out.ndim != 2:
        raise BrainnetError(f"RDMs must be vectors (n_rdms, n_pairs); got shape {out.shape}")
    return out


def _centered_kernel(vectors: np.ndarray) -> np.ndarray:
    """Double-centred second moments ``H (-D/2) H``, flattened: (n_rdms, n*n)."""
    n = _n_from_pairs(vectors.shape[1])
    iu, ju = np.triu_indices(n, 1)
    g = np.zeros((vectors.shape[0], n, n))
    g[:, iu, ju] = -0.5 * vectors
    g[:, ju, iu] = -0.5 * vectors
    g -= g.mean(axis=1, keepdims=True)
    g -= g.mean(axis=2, keepdims=True)
    return g.reshape(vectors.shape[0], n * n)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _embed(vectors: np.ndarray, method: str) -> np.ndarray:
    """Rows whose dot products are the similarities under ``method`` (not tau-a).

    For the whitened methods the rows live in ``n*n`` space (the centred
    kernel, whose Frobenius cosine equals rsatoolbox's whitened cosine
    without a pattern covariance), otherwise in ``n_pairs`` space.
    """
    from scipy.stats import rankdata

    if method == "spearman":
        vectors = rankdata(vectors, axis=1)
    if method in ("spearman", "pearson", "whitened-pearson"):
        vectors = vectors - vectors.mean(axis=1, keepdims=True)
    if method.startswith("whitened"):
        vectors = _centered_kernel(vectors)
    return _unit_rows(vectors)


def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import kendalltau

    n0 = x.size * (x.size - 1) / 2

    def tied(v):
        _, counts = np.unique(v, return_counts=True)
        return float(np.sum(counts * (counts - 1) / 2))

    tx, ty = tied(x), tied(y)
    if tx == n0 or ty == n0:
        return 0.0  # a constant vector has no concordant or discordant pairs
    tau_b = kendalltau(x, y).statistic
    return float(tau_b * np.sqrt((n0 - tx) * (n0 - ty)) / n0)


def compare_rdms(rdms_a: Any, rdms_b: Any, method: str = "spearman") -> np.ndarray:
    """Similarities between two sets of RDMs.

    Parameters
    ----------
    rdms_a : RDM, list of RDM, or ndarray of shape (n_a, n_pairs)
    rdms_b : RDM, list of RDM, or ndarray of shape (n_b, n_pairs)
    method : str
        ``spearman``, ``pearson``, ``tau-a`` (Kendall tau-a), ``cosine``,
        ``whitened-cosine`` or ``whitened-pearson``; rsatoolbox's names
        (``corr``, ``cosine_cov``, ``corr_cov``) are accepted too.

    Returns
    -------
    ndarray of shape (n_a, n_b)
        Equal to ``rsatoolbox.rdm.compare(a, b, method)``.
    """
    method = _check_comparison(method)
    a, b = _as_vectors(rdms_a), _as_vectors(rdms_b)
    if a.shape[1] != b.shape[1]:
        raise BrainnetError(
            f"RDMs have {a.shape[1]} and {b.shape[1]} entries; compare RDMs over the same stimuli"
        )
    if method == "tau-a":
        return np.array([[_tau_a(x, y) for y in b] for x in a])
    return _embed(a, method) @ _embed(b, method).T


def pool_rdms(rdms: Any, method: str = "spearman") -> np.ndarray:
    """The average RDM that best represents a group under ``method``, shape (n_pairs,).

    As ``rsatoolbox.util.pooling.pool_rdm``: rank-average for Spearman and
    tau-a, average of z-scored RDMs for Pearson, of unit-norm RDMs for cosine
    and of whitened-unit-norm RDMs for the whitened methods.
    """
    from scipy.stats import rankdata

    method = _check_comparison(method)
    v = _as_vectors(rdms)
    if method in ("spearman", "tau-a"):
        return rankdata(v, axis=1).mean(axis=0)
    if method == "pearson":
        v = v - v.mean(axis=1, keepdims=True)
        return (v / v.std(axis=1, keepdims=True)).mean(axis=0)
    if method == "cosine":
        return (v / np.sqrt(np.mean(v**2, axis=1, keepdims=True))).mean(axis=0)
    if method == "whitened-pearson":
        v = v - v.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(_centered_kernel(v), axis=1, keepdims=True)
    return (v / norms).mean(axis=0)


def noise_ceiling(rdms: Any, method: str = "spearman") -> tuple[np.ndarray, np.ndarray]:
    """Per-subject noise-ceiling similarities.

    Returns
    -------
    lower : ndarray of shape (n_subjects,)
        Each subject's RDM vs the pooled RDM of the other subjects.
    upper : ndarray of shape (n_subjects,)
        Each subject's RDM vs the pooled RDM of all subjects.
        Their means equal ``rsatoolbox.inference.boot_noise_ceiling``.
    """
    v = _as_vectors(rdms)
    if v.shape[0] < 3:
        raise BrainnetError(
            f"the noise ceiling needs at least 3 subjects, got {v.shape[0]}; add subjects"
        )
    everyone = pool_rdms(v, method)
    upper = compare_rdms(v, everyone, method)[:, 0]
    lower = np.array(
        [
            compare_rdms(v[s], pool_rdms(np.delete(v, s, axis=0), method), method)[0, 0]
            for s in range(v.shape[0])
        ]
    )
    return lower, upper


# --------------------------------------------------------------------------- network as a subject


@dataclass
class LayerRSA:
    """The network (one layer) placed among the human subjects.

    Attributes
    ----------
    layer : str
    network_rdm : ndarray of shape (n_pairs,)
    network_each : ndarray of shape (n_subjects,)
        Similarity of the network's RDM to each subject's.
    network_human_r : float
        Mean of ``network_each`` (comparable with the noise ceilings).
    network_to_mean : float
        Similarity to the pooled RDM of all humans: the network's analogue of a
        subject's leave-one-out value (the network is not in that pool).
    network_rank : int
        Rank of ``network_to_mean`` among the subjects' leave-one-out values
        (1 = most typical of the group, n_subjects + 1 = least).
    network_percentile : float
        Percent of subjects whose leave-one-out value is below the network's.
    second_order : ndarray of shape (n_subjects + 1, n_subjects + 1)
        Pairwise similarities of the human RDMs and the network's (last).
    mds : ndarray of shape (n_subjects + 1, 2)
        MDS of ``1 - second_order``.
    p_value, p_fwe : float
        Condition-label permutation p of ``network_human_r`` (uncorrected and
        max-statistic corrected across the analysed layers).
    ci_subjects, ci_stimuli : tuple of float
        Bootstrap percentile CI of ``network_human_r`` over subjects and over
        stimuli ((nan, nan) when not computed).
    ceiling_gap : float
        Mean over subjects of (lower-ceiling value - network value).
    ceiling_gap_ci : tuple of float
        Subject-bootstrap CI of ``ceiling_gap``.
    below_ceiling_p : float
        Parametric extra, not a permutation test: one-sided paired t-test
        over subjects that the network is below the lower noise ceiling
        (the subjects' lower-ceiling values share data, so its assumptions
        do not hold; read it as descriptive).
    null_mean, null_sd, effect_vs_null : float
        Mean and SD of the permutation null of ``network_human_r`` and
        ``(network_human_r - null_mean) / null_sd``.
    below_ceiling_p_permutation : float
        Permutation test (the engine) that the network is below the human
        ceiling: every member of the group (the subjects and the network) is
        compared with the pooled RDM of all the others; under the null the
        network is exchangeable with a subject, so relabelling which member
        is "the network" gives the null of its leave-one-out value, and p is
        the chance that a member is as low as the network. Its smallest value
        is about ``1 / (n_subjects + 1)``.
    """

    layer: str
    network_rdm: np.ndarray
    network_each: np.ndarray
    network_human_r: float
    network_to_mean: float
    network_rank: int
    network_percentile: float
    second_order: np.ndarray
    mds: np.ndarray
    p_value: float = float("nan")
    p_fwe: float = float("nan")
    ci_subjects: tuple[float, float] = (float("nan"), float("nan"))
    ci_stimuli: tuple[float, float] = (float("nan"), float("nan"))
    ceiling_gap: float = float("nan")
    ceiling_gap_ci: tuple[float, float] = (float("nan"), float("nan"))
    below_ceiling_p: float = float("nan")
    null: np.ndarray = field(default_factory=lambda: np.empty(0))
    null_mean: float = float("nan")
    null_sd: float = float("nan")
    effect_vs_null: float = float("nan")
    below_ceiling_p_permutation: float = float("nan")


@dataclass(repr=False)
class RSAResult(Record):
    """Result of :func:`rsa_network_subject` / :func:`network_as_subject`.

    Attributes
    ----------
    subjects : list of str
    stimulus_ids : tuple of str
    human_rdms : ndarray of shape (n_subjects, n_pairs)
    lower, upper : ndarray of shape (n_subjects,)
        Per-subject noise-ceiling values (see :func:`noise_ceiling`).
    noise_ceiling_lower, noise_ceiling_upper : float
    layers : dict of str -> LayerRSA
    parameters : dict
    """

    subjects: list[str]
    stimulus_ids: tuple[str, ...]
    human_rdms: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    noise_ceiling_lower: float
    noise_ceiling_upper: float
    layers: dict[str, LayerRSA]
    parameters: dict[str, Any]
    n_voxels: int | None = None
    model: str | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    def profile(self):
        """Per-layer table (pandas DataFrame), one row per layer in analysis order."""
        import pandas as pd

        rows = []
        for res in self.layers.values():
            rows.append(
                {
                    "layer": res.layer,
                    "network_human_r": res.network_human_r,
                    "ci_subjects_low": res.ci_subjects[0],
                    "ci_subjects_high": res.ci_subjects[1],
                    "ci_stimuli_low": res.ci_stimuli[0],
                    "ci_stimuli_high": res.ci_stimuli[1],
                    "network_to_mean": res.network_to_mean,
                    "network_rank": res.network_rank,
                    "p_value": res.p_value,
                    "p_fwe": res.p_fwe,
                    "null_mean": res.null_mean,
                    "null_sd": res.null_sd,
                    "effect_vs_null": res.effect_vs_null,
                    "noise_ceiling_lower": self.noise_ceiling_lower,
                    "noise_ceiling_upper": self.noise_ceiling_upper,
                    "below_ceiling_p": res.below_ceiling_p,
                    "below_ceiling_p_permutation": res.below_ceiling_p_permutation,
                }
            )
        return pd.DataFrame(rows)

    def _headline(self) -> dict[str, Any]:
        head = {f"network_human_r[{layer}]": res.network_human_r for layer, res in self.layers.items()}
        return {"n_subjects": len(self.subjects), "n_stimuli": len(self.stimulus_ids), **head,
                "noise_ceiling_lower": self.noise_ceiling_lower, "noise_ceiling_upper": self.noise_ceiling_upper}

    @property
    def summary(self) -> Summary:
        """Headline numbers of all layers (a dict); ``summary(layer)`` is one layer's ``summary.json``."""
        return Summary(self._headline(), self._layer_summary)

    @property
    def table(self):
        """Per-layer table (:meth:`profile`)."""
        return self.profile()

    def plot(self) -> list[Any]:
        """Network–human similarity per layer with the noise ceiling (main), then the mean human RDM."""
        from brainnet.plotting import plot_layer_profile, plot_rdm
        prof = self.profile()
        figures = [plot_layer_profile(
            list(prof["layer"]), prof["network_human_r"].to_numpy(dtype=float),
            ci=prof[["ci_subjects_low", "ci_subjects_high"]].to_numpy(dtype=float).T,
            noise_ceiling=(self.noise_ceiling_lower, self.noise_ceiling_upper),
            p_values=prof["p_value"].to_numpy(dtype=float), title="network–human RDM similarity",
        )]
        figures.append(plot_rdm(_square(np.nanmean(self.human_rdms, axis=0), len(self.stimulus_ids)),
                                title="mean human RDM"))
        return figures

    def _layer_summary(self, layer: str) -> dict[str, Any]:
        """The ``summary.json`` record of one layer."""
        res = self.layers[layer]
        p = self.parameters
        return {
            "analysis": "rsa",
            "layer": layer,
            "model": self.model,
            "n_subjects": len(self.subjects),
            "n_stimuli": len(self.stimulus_ids),
            "n_voxels": self.n_voxels,
            "rdm": p.get("rdm"),
            "compare": p.get("compare"),
            "mean_r": res.network_human_r,
            "network_human_r": res.network_human_r,
            "network_to_mean": res.network_to_mean,
            "noise_ceiling": {"lower": self.noise_ceiling_lower, "upper": self.noise_ceiling_upper},
            "noise_ceiling_lower": self.noise_ceiling_lower,
            "noise_ceiling_upper": self.noise_ceiling_upper,
            "network_rank": res.network_rank,
            "network_rank_of": len(self.subjects) + 1,
            "network_percentile": res.network_percentile,
            "p_value": res.p_value,
            "p_fwe": res.p_fwe,
            "test": "permutation: stimulus labels of the network RDM shuffled; p_fwe by max over layers",
            "n_permutations": p.get("n_permutations"),
            "null_mean": res.null_mean,
            "null_sd": res.null_sd,
            "effect_vs_null": res.effect_vs_null,
            "n_bootstrap": p.get("n_bootstrap"),
            "ci": {
                "level": p.get("ci_level"),
                "subjects": list(res.ci_subjects),
                "stimuli": list(res.ci_stimuli),
            },
            "ceiling_gap": res.ceiling_gap,
            "ceiling_gap_ci": list(res.ceiling_gap_ci),
            "below_ceiling_p": res.below_ceiling_p,
            "below_ceiling_test": "parametric extra: one-sided paired t-test over subjects (values not independent)",
            "below_ceiling_p_permutation": res.below_ceiling_p_permutation,
            "below_ceiling_permutation_test": "permutation: which member of subjects + network is the network, "
            "statistic = its similarity to the pooled RDM of the others (smallest p about 1/(n_subjects+1))",
        }

    def second_order_frame(self, layer: str):
        """``second_order`` as a labelled DataFrame (first column ``subject``)."""
        import pandas as pd

        labels = [f"sub-{s}" for s in self.subjects] + ["network"]
        frame = pd.DataFrame(self.layers[layer].second_order, columns=labels)
        frame.insert(0, "subject", labels)
        return frame

    def save(self, out: str | Path, provenance_for, overwrite: bool = False, result_dirs=None) -> dict[str, Path]:
        """Write ``<out>/group/rsa-<layer>/`` per layer (and ``rsa-layers.tsv``).

        ``provenance_for(layer)`` returns the provenance record of a layer.
        ``result_dirs`` are the layers' already opened
        :class:`~brainnet.results.ResultDir` (opened before the run).
        """
        import pandas as pd

        from brainnet.results import atomic_write_tsv

        group = Path(out) / "group"
        labels = [f"sub-{s}" for s in self.subjects] + ["network"]
        if result_dirs is None:  # the runner's opening: a refused folder leaves none of the others behind
            from brainnet.results import result_path
            from brainnet.runs import open_folders

            folders = {name: result_path(out, "group", _rsa_folder(name)) for name in self.layers}
            result_dirs = open_folders(folders, provenance_for, overwrite=overwrite)
        for name, res in self.layers.items():
            rd = result_dirs[name]
            rd.write_tsv("second_order.tsv", self.second_order_frame(name))
            rd.write_tsv(
                "mds.tsv", pd.DataFrame({"subject": labels, "x": res.mds[:, 0], "y": res.mds[:, 1]})
            )
            rd.write_tsv(
                "subjects.tsv",
                pd.DataFrame(
                    {
                        "subject": labels[:-1],
                        "network_r": res.network_each,
                        "noise_ceiling_lower": self.lower,
                        "noise_ceiling_upper": self.upper,
                    }
                ),
            )
            rd.write_npz(
                "rdms.npz",
                human_rdms=self.human_rdms,
                network_rdm=res.network_rdm,
                stimulus_ids=np.asarray(self.stimulus_ids),
                subjects=np.asarray(self.subjects),
                null=res.null,
            )
            self.paths[name] = rd.finish(self.summary(name)).parent
        if len(self.layers) > 1:
            self.paths["profile"] = atomic_write_tsv(group / "rsa-layers.tsv", self.profile())
        return self.paths


def _pair_lookup(n: int) -> np.ndarray:
    lookup = np.full((n, n), -1, dtype=np.intp)
    iu, ju = np.triu_indices(n, 1)
    lookup[iu, ju] = np.arange(iu.size)
    lookup[ju, iu] = np.arange(iu.size)
    return lookup


def permuted_pairs(perms: np.ndarray, n: int) -> np.ndarray:
    """Gather indices of permuted RDM vectors, shape ``(n_batch, n_pairs)``.

    ``vector[idx[k]]`` is the RDM vector of the stimuli reordered by
    ``perms[k]`` (stimulus ``i`` takes the pattern of stimulus ``perms[k, i]``).
    """
    return _pair_permuter(n)(perms)


def _pair_permuter(n: int):
    """:func:`permuted_pairs` with the lookup tables built once."""
    # int32 halves the memory traffic of this (memory-bound) gather
    iu, ju = (a.astype(np.int32) for a in np.triu_indices(n, 1))
    flat_lookup = _pair_lookup(n).astype(np.int32).ravel()

    def gather(perms: np.ndarray) -> np.ndarray:
        perms = perms.astype(np.int32, copy=False)
        return flat_lookup[perms[:, iu] * np.int32(n) + perms[:, ju]]

    return gather


def _permuted_kernel(perms: np.ndarray, n: int) -> np.ndarray:
    return (perms[:, :, None] * n + perms[:, None, :]).reshape(perms.shape[0], n * n)


def _permutation_statistic(network: np.ndarray, humans: np.ndarray, method: str):
    """Batched ``network_human_r`` of every layer under condition-label permutations.

    A permutation of the stimuli permutes the entries of an RDM; ranks,
    means and norms do not change. So every human RDM is embedded once
    (:func:`_embed`), averaged over subjects, and each permutation costs a
    gather of the network's embedded vector and one dot product.
    """
    n = _n_from_pairs(humans.shape[1])
    if method == "tau-a":

        def loop(perms: np.ndarray) -> np.ndarray:
            idx = _pair_permuter(n)(perms)
            return np.array(
                [[np.mean([_tau_a(net[row], h) for h in humans]) for net in network] for row in idx]
            )

        return loop
    net = _embed(network, method)  # (n_layers, dim)
    mean_human = _embed(humans, method).mean(axis=0)  # (dim,)
    if method.startswith("whitened"):
        gather = lambda perms: _permuted_kernel(perms, n)  # noqa: E731
    else:
        gather = _pair_permuter(n)

    def statistic(perms: np.ndarray) -> np.ndarray:
        idx = gather(perms)  # (n_batch, dim)
        return np.stack([net_l[idx] @ mean_human for net_l in net], axis=1)

    return statistic


def _stimulus_bootstrap_statistic(network: np.ndarray, humans: np.ndarray, method: str):
    """``network_human_r`` per layer for stimuli drawn with replacement.

    Pairs of a stimulus with its own duplicate have no dissimilarity and are
    dropped, as rsatoolbox's bootstrap does. A draw keeps RDM entry ``e``
    ``m_e`` times, so instead of gathering and re-sorting each draw the
    statistic works on the original entries with multiplicity weights: the
    average rank of an entry in the drawn vector is the cumulative count of
    the drawn entries up to its value minus half its own ties (exactly
    ``scipy.stats.rankdata`` of the drawn vector), and Pearson/cosine become
    weighted sums.
    """
    from scipy.stats import rankdata

    n = _n_from_pairs(humans.shape[1])
    iu, ju = np.triu_indices(n, 1)
    lookup = _pair_lookup(n)
    n_net = network.shape[0]
    both = np.vstack([network, humans])
    n_vec, n_pairs = both.shape
    # dense ranks (ties share one), offset so that all vectors rank in one bincount
    dense = rankdata(both, axis=1, method="dense").astype(np.intp) - 1
    flat_groups = (dense + (np.arange(n_vec) * n_pairs)[:, None]).ravel()

    def transformed(m: np.ndarray) -> np.ndarray:
        if method == "spearman":
            counts = np.bincount(flat_groups, weights=np.tile(m, n_vec), minlength=n_vec * n_pairs)
            counts = counts.reshape(n_vec, n_pairs)
            avg_rank = np.cumsum(counts, axis=1) - (counts - 1) / 2
            values = np.take_along_axis(avg_rank, dense, axis=1)
        else:
            values = both
        if method != "cosine":
            values = values - (values @ m / m.sum())[:, None]
        norms = np.sqrt((values**2) @ m)
        return np.divide(
            values, norms[:, None], out=np.zeros_like(values), where=norms[:, None] > 0
        )

    def statistic(draws: np.ndarray) -> np.ndarray:
        out = np.empty((draws.shape[0], n_net))
        for k, draw in enumerate(draws):
            a, b = draw[iu], draw[ju]
            idx = lookup[a[a != b], b[a != b]]
            if method == "tau-a":
                out[k] = compare_rdms(network[:, idx], humans[:, idx], method).mean(axis=1)
                continue
            m = np.bincount(idx, minlength=n_pairs).astype(np.float64)
            values = transformed(m)
            out[k] = (values[:n_net] * m) @ values[n_net:].mean(axis=0)
        return out

    return statistic


def _below_ceiling_permutation(network: np.ndarray, humans: np.ndarray, method: str, n_permutations: int,
                               seed: int, n_jobs: int) -> float:
    """p that the network's leave-one-out similarity is as low as a random member's (see LayerRSA)."""
    from brainnet.permutation import permutation_test

    members = np.vstack([humans, network[None]])
    loo = noise_ceiling(members, method)[0]  # each member vs the pooled RDM of all the others
    test = permutation_test(lambda perms: loo[perms[:, -1]], members.shape[0], n_permutations=n_permutations,
                            seed=seed, alternative="less", n_jobs=n_jobs)
    return float(test.p_value)


def _percentile_ci(draws: np.ndarray, level: float) -> np.ndarray:
    """Percentile interval over axis 0: shape ``(2, *stat_shape)``."""
    tail = 100 * (1 - level) / 2
    return np.nanpercentile(draws, [tail, 100 - tail], axis=0)


def _mds(second_order: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import MDS

    dissimilarity = np.clip(1.0 - second_order, 0.0, None)
    dissimilarity = (dissimilarity + dissimilarity.T) / 2
    np.fill_diagonal(dissimilarity, 0.0)
    mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed)
    return mds.fit_transform(dissimilarity)


def rsa_network_subject(
    human_rdms: Any,
    network_rdms: dict[str, Any],
    *,
    subjects: Sequence[str] | None = None,
    stimulus_ids: Sequence[str] | None = None,
    compare: str = "spearman",
    n_permutations: int = 1000,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> RSAResult:
    """Place network RDMs among human RDMs (array-level core of :func:`network_as_subject`).

    Parameters
    ----------
    human_rdms : ndarray of shape (n_subjects, n_pairs) or list of RDM
        One RDM per subject, over the same stimuli in the same order.
    network_rdms : dict of str -> ndarray of shape (n_pairs,) or RDM
        One RDM per network layer.
    subjects : sequence of str, optional
        Subject labels (default ``"1".."n"``).
    stimulus_ids : sequence of str, optional
    compare : str
        Comparison method (see :func:`compare_rdms`).
    n_permutations : int
        Condition-label permutations of the network RDM (0 to skip).
    n_bootstrap : int
        Bootstrap draws over subjects and over stimuli (0 to skip).
    ci_level : float
    seed : int
    n_jobs : int
    checkpoint_dir : path, optional
        Where the permutation/bootstrap engine keeps resumable checkpoints.
    progress : bool

    Returns
    -------
    RSAResult

    Notes
    -----
    - ``network_human_r`` is the mean over subjects of the network's
      similarity to each subject's RDM, the quantity the noise ceilings
      bound (lower: each subject vs the pooled RDM of the others; upper: vs
      the pooled RDM of all).
    - The permutation test shuffles the stimulus labels of the network RDM
      (the same permutation for every layer, so the max statistic over
      layers gives ``p_fwe``); permutation ``k`` is the engine's, so the null
      equals a literal loop over permuted RDMs (tests check it against
      ``scipy.stats.spearmanr``).
    - The subject bootstrap resamples the per-subject values (network
      similarity and lower-ceiling value) with replacement; it does not
      recompute the ceiling within each resample. The stimulus bootstrap
      recomputes every comparison on the resampled stimuli, dropping the
      pairs of a stimulus with its own duplicate; it is not computed for the
      whitened comparisons (their centring needs whole RDMs), whose
      ``ci_stimuli`` stays (nan, nan).
    - ``below_ceiling_p`` is a one-sided paired t-test over subjects of
      (lower-ceiling value - network value) > 0.
    """
    from scipy.stats import ttest_rel

    from brainnet.permutation import bootstrap_distribution, permutation_test
    from brainnet.stats import null_effect

    method = _check_comparison(compare)
    humans = _as_vectors(human_rdms)
    n_subjects, n_pairs = humans.shape
    n = _n_from_pairs(n_pairs)
    if n_subjects < 3:
        raise BrainnetError(
            f"network-as-subject RSA needs at least 3 subjects, got {n_subjects}; add subjects"
        )
    if not network_rdms:
        raise BrainnetError("no network layers given; pass at least one layer")
    names = list(network_rdms)
    network = np.vstack([_as_vectors(network_rdms[k]) for k in names])
    if network.shape[1] != n_pairs:
        raise BrainnetError(
            f"network RDMs have {network.shape[1]} entries but the human RDMs {n_pairs}; "
            "compute them over the same stimuli"
        )
    subjects = [str(s) for s in (subjects if subjects is not None else range(1, n_subjects + 1))]
    stimulus_ids = tuple(str(s) for s in (stimulus_ids or range(n)))
    lower, upper = noise_ceiling(humans, method)
    human_second = compare_rdms(humans, humans, method)
    pooled = pool_rdms(humans, method)
    each = compare_rdms(network, humans, method)  # (n_layers, n_subjects)
    to_mean = compare_rdms(network, pooled, method)[:, 0]
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None

    perm = None
    if n_permutations > 0:
        perm = permutation_test(
            _permutation_statistic(network, humans, method),
            n,
            n_permutations=n_permutations,
            seed=seed,
            n_jobs=n_jobs,
            checkpoint=ckpt / f"rsa-permutations-{method}.npz" if ckpt else None,
            progress=progress,
        )
    gap = lower[None, :] - each  # (n_layers, n_subjects)
    boot_subj = boot_stim = None
    if n_bootstrap > 0:
        paired = np.stack([each, gap], axis=-1)  # (n_layers, n_subjects, 2)
        boot_subj = bootstrap_distribution(
            lambda d: paired[:, d, :].mean(axis=2).transpose(1, 0, 2),
            n_subjects,
            n_bootstrap=n_bootstrap,
            seed=seed,
            n_jobs=n_jobs,
        )  # (n_boot, n_layers, 2)
        if not method.startswith("whitened"):
            boot_stim = bootstrap_distribution(
                _stimulus_bootstrap_statistic(network, humans, method),
                n,
                n_bootstrap=n_bootstrap,
                seed=seed + 1,
                n_jobs=n_jobs,
                checkpoint=ckpt / f"rsa-stimulus-bootstrap-{method}.npz" if ckpt else None,
                progress=progress,
            )  # (n_boot, n_layers)

    layers: dict[str, LayerRSA] = {}
    for k, name in enumerate(names):
        second = np.empty((n_subjects + 1, n_subjects + 1))
        second[:n_subjects, :n_subjects] = human_second
        second[-1, :n_subjects] = second[:n_subjects, -1] = each[k]
        second[-1, -1] = (
            1.0 if method != "tau-a" else compare_rdms(network[k], network[k], method)[0, 0]
        )
        res = LayerRSA(
            layer=name,
            network_rdm=network[k],
            network_each=each[k],
            network_human_r=float(each[k].mean()),
            network_to_mean=float(to_mean[k]),
            network_rank=int(1 + np.sum(lower > to_mean[k])),
            network_percentile=float(100.0 * np.mean(lower < to_mean[k])),
            second_order=second,
            mds=_mds(second, seed),
            ceiling_gap=float(gap[k].mean()),
            below_ceiling_p=float(ttest_rel(lower, each[k], alternative="greater").pvalue),
        )
        if perm is not None:
            res.p_value = float(perm.p_value[k])
            res.p_fwe = float(perm.p_fwe[k])
            res.null = perm.null[:, k]
            res.below_ceiling_p_permutation = _below_ceiling_permutation(
                network[k], humans, method, n_permutations, seed, n_jobs)
            effect = null_effect(res.network_human_r, res.null)
            res.null_mean, res.null_sd, res.effect_vs_null = (
                np.nan if effect[key] is None else effect[key] for key in ("null_mean", "null_sd", "effect"))
        if boot_subj is not None:
            ci = _percentile_ci(boot_subj[:, k, :], ci_level)
            res.ci_subjects = (float(ci[0, 0]), float(ci[1, 0]))
            res.ceiling_gap_ci = (float(ci[0, 1]), float(ci[1, 1]))
        if boot_stim is not None:
            ci = _percentile_ci(boot_stim[:, k], ci_level)
            res.ci_stimuli = (float(ci[0]), float(ci[1]))
        layers[name] = res
    parameters = {
        "compare": method,
        "n_permutations": int(n_permutations),
        "n_bootstrap": int(n_bootstrap),
        "ci_level": ci_level,
        "seed": seed,
        "layers": names,
    }
    return RSAResult(
        subjects=subjects,
        stimulus_ids=stimulus_ids,
        human_rdms=humans,
        lower=lower,
        upper=upper,
        noise_ceiling_lower=float(lower.mean()),
        noise_ceiling_upper=float(upper.mean()),
        layers=layers,
        parameters=parameters,
    )


def _rsa_folder(layer: str) -> str:
    """The name of a layer's RSA folder under ``<out>/group``."""
    return f"rsa-{layer}"


def network_as_subject(
    study: Any = None,
    *,
    layers: Sequence[str] | str = ("fc8",),
    mask: str | Path = "occipital",
    subjects: Sequence[str] | None = None,
    rdm: str = "correlation",
    compare: str = "spearman",
    noise: str = "identity",
    n_permutations: int = 10000,
    n_bootstrap: int = 1000,
    ci_level: float = 0.95,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    features_file: str | Path | None = None,
    network: Any = None,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> RSAResult:
    """RSA with the network as one more subject of a study.

    Computes each subject's RDM (repeats averaged, or crossnobis across
    runs) and each layer's RDM over the stimuli all subjects saw, then runs
    :func:`rsa_network_subject`. With ``out``, writes
    ``<out>/group/rsa-<layer>/`` (``summary.json``, ``second_order.tsv``,
    ``mds.tsv``, ``subjects.tsv``, ``rdms.npz``) and, for several layers,
    ``<out>/group/rsa-layers.tsv``.

    Parameters
    ----------
    study : Study, str or Path, optional
        Default: the embedded demo study.
    layers : sequence of str or comma-separated str
        Network layers (default ``("fc8",)``).
    mask : str or Path
        Region of the subjects' patterns.
    subjects : sequence of str, optional
        Default: all subjects of the study.
    rdm : {"correlation", "euclidean", "cosine", "crossnobis"}
        Dissimilarity. The network has no runs or noise, so with
        ``crossnobis`` its RDM is the (noise-free) ``euclidean`` one.
    compare : str
        RDM comparison (see :func:`compare_rdms`).
    noise : {"identity", "diagonal", "shrinkage"}
        Noise precision of crossnobis.
    n_permutations, n_bootstrap : int
        Condition-label permutations; bootstrap draws (subjects and stimuli).
    ci_level : float
    weights, untrained_seed, features_file, network
        Where the network's activations come from (see ``Study.features``).
    seed, n_jobs, progress
    out : str or Path, optional
        Result folder; nothing is written without it.
    overwrite : bool

    Returns
    -------
    RSAResult
    """
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations, n_bootstrap=n_bootstrap)
    from brainnet import runs

    _check_metric(rdm)
    method = _check_comparison(compare)
    if noise not in _NOISE:
        raise BrainnetError(f"--noise {noise!r} is unknown; use one of {', '.join(_NOISE)}")
    layer_names = runs.check_layers(layers, features_file, network)
    study = runs.resolve_study(study)
    labels = [study._label(s) for s in (subjects if subjects is not None else study.subjects)]
    features = runs.layer_features(study, layer_names, weights=weights, untrained_seed=untrained_seed,
                                   features=features_file, network=network)
    spec = _RSASpec(tuple(layer_names), mask, seed, labels, rdm, method, noise, int(n_permutations),
                    int(n_bootstrap), ci_level)
    runner = runs.Runner(spec, study, features, out, overwrite, runs.Execution(n_jobs, progress))
    return runner.run_group(labels)


@dataclass(frozen=True)
class _RSASpec:
    """The RSA spec for :meth:`brainnet.runs.Runner.run_group`: one folder per layer (``parts``)."""

    parts: tuple
    mask: Any
    seed: int
    subjects: list
    rdm: str
    compare: str
    noise: str
    n_permutations: int
    n_bootstrap: int
    ci_level: float

    analysis = "rsa"
    layer = None
    prepare_first = True  # the folders record the number of stimuli every subject saw

    def folder_name(self, layer: str) -> str:
        return _rsa_folder(layer)

    def _parameters(self) -> dict[str, Any]:
        return {
            "compare": self.compare,
            "n_permutations": self.n_permutations,
            "n_bootstrap": self.n_bootstrap,
            "ci_level": self.ci_level,
            "seed": self.seed,
            "layers": list(self.parts),
            "rdm": self.rdm,
            "network_rdm": "euclidean" if self.rdm == "crossnobis" else self.rdm,
            "noise": self.noise,
            "mask": str(self.mask),
        }

    def parameters(self, layer: str) -> dict[str, Any]:
        return {**self._parameters(), "layer": layer, "subjects": list(self.subjects)}

    def prepare_group(self, study, labels, feats):
        """Each subject's RDM (own voxels) and each layer's, over the stimuli every subject saw."""
        from brainnet.study import voxel_counts

        data = study.load_subjects(labels, mask=self.mask, shared=None)  # RDMs need no shared voxels
        present = set.intersection(*(set(sd.stimulus_ids.tolist()) for sd in data))
        common = [s for s in study.stimulus_ids if s in present]
        if len(common) < 4:
            raise BrainnetError(
                f"only {len(common)} stimuli were seen by every subject; RSA needs at least 4"
            )
        humans = np.vstack(
            [
                compute_rdm(
                    sd.patterns, sd.stimulus_ids, metric=self.rdm, runs=sd.runs, noise=self.noise, order=common
                ).vector
                for sd in data
            ]
        )
        rows = feats.rows_for(common)
        net_metric = "euclidean" if self.rdm == "crossnobis" else self.rdm
        network = {name: compute_rdm(feats.layer(name)[rows], common, metric=net_metric).vector
                   for name in self.parts}
        if len(data) < 3:  # checked again by the core; here before any folder is made
            raise BrainnetError(
                f"network-as-subject RSA needs at least 3 subjects, got {len(data)}; add subjects"
            )
        n_voxels = voxel_counts(data)
        inputs = {"humans": humans, "network": network, "subjects": [sd.subject for sd in data],
                  "stimulus_ids": common}
        extras = {"n_voxels": n_voxels, "model": feats.provenance.get("model", "emonet"),
                  "parameters": {"n_stimuli": len(common)}}
        return inputs, extras, self.mask, {"n_voxels": n_voxels}

    def compute(self, inputs, n_jobs: int, checkpoint, progress: bool) -> RSAResult:
        # The checkpoints live inside a folder whose fingerprint covers every parameter of the
        # run, so a rerun with other parameters can never resume from them.
        return rsa_network_subject(
            inputs["humans"],
            inputs["network"],
            subjects=inputs["subjects"],
            stimulus_ids=inputs["stimulus_ids"],
            compare=self.compare,
            n_permutations=self.n_permutations,
            n_bootstrap=self.n_bootstrap,
            ci_level=self.ci_level,
            seed=self.seed,
            n_jobs=n_jobs,
            checkpoint_dir=checkpoint,
            progress=progress,
        )

    def finish(self, job, result: RSAResult) -> RSAResult:
        result.n_voxels = job.extras["n_voxels"]
        result.model = job.extras["model"]
        result.parameters.update(self._parameters())
        return result

    def write(self, result: RSAResult, resultdirs, job) -> None:
        result.save(job.target.parent, None, result_dirs=resultdirs)
