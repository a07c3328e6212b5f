"""Confusions between decoded network units and discriminable clusters (the paper's Fig. 4C/D).

After the brain -> unit decoding (:mod:`brainnet.pls`), each held-out subject
has a predicted activation vector for every unit. Correlating each predicted
vector with each true unit vector gives a ``(n_units, n_units)`` matrix; its
row-wise argmax is the category that the predicted output of unit ``i`` is
decoded as. From these decodings:

- **metrics** — sensitivity (recall), specificity and positive predictive
  value per category and subject (one decoding per unit and subject, so
  per subject a unit's sensitivity is 0 or 1). The summary reports the
  mean and SD *across subjects* of the per-subject macro averages (over
  categories). The paper's ``66.67 +/- 11.4 %`` sensitivity is consistent
  with an across-subject spread (binomial SD for 20 decodings at p = 2/3
  is 10.5 %); it does not say which spread it used. Per-category values,
  pooled over subjects, are in :attr:`ConfusionResult.per_category`.
- **discriminable clusters** — distance ``1 - (C + C.T) / 2`` between units,
  where ``C`` is the subject-averaged confusion (rows sum to 1); Ward
  linkage; for every cut into ``k = 2 .. n_units`` clusters a one-sided
  binomial test of each cluster (hits = subject-level decodings of its
  members that land inside it, chance = cluster size / n_units). The cut
  with the largest fraction of significant clusters is chosen; ties go to
  the larger ``k`` (the finest partition that is still as discriminable),
  and the number of discriminable clusters is the number of significant
  clusters at that cut (equal to ``k`` when all are significant, as in the
  paper). A bootstrap over subjects gives its CI and a permutation test
  (each subject's true-unit labels relabelled by an independent random
  permutation, which destroys both correct decodings and confusions that
  are consistent across subjects) gives its p-value.

Reimplemented from the paper's description (the authors' MATLAB code is not
used). Why hand-written: scikit-learn has the per-class metrics (the tests
check agreement) but not specificity or the cluster procedure; scipy gives
the Ward linkage and binomial tail used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet._display import Record
from brainnet.errors import BrainnetError
from brainnet.stats import null_effect

__all__ = [
    "unit_confusion",
    "decode_units",
    "decoding_metrics",
    "discriminable_clusters",
    "confusion_analysis",
    "ConfusionResult",
    "ClusterSolution",
    "heldout_clusters",
]


def unit_confusion(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Pearson r of every predicted unit with every true unit, across stimuli.

    Parameters
    ----------
    predicted : ndarray of shape (n_stimuli, n_units)
        Cross-validated predictions of the units for one subject.
    observed : ndarray of shape (n_stimuli, n_units)
        The true unit activations for the same stimuli, same order.

    Returns
    -------
    r : ndarray of shape (n_units, n_units)
        ``r[i, j]`` correlates predicted unit ``i`` with true unit ``j``;
        0 where either vector is constant.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    if predicted.ndim != 2 or predicted.shape != observed.shape:
        raise BrainnetError(
            f"predicted has shape {predicted.shape} and observed {observed.shape}; "
            "give two (n_stimuli, n_units) arrays of the same shape"
        )
    if predicted.shape[0] < 3:
        raise BrainnetError(
            f"predicted has {predicted.shape[0]} stimuli; at least 3 are needed to correlate units"
        )
    from brainnet.stats import zscore_columns

    return zscore_columns(predicted).T @ zscore_columns(observed) / predicted.shape[0]


def decode_units(predicted_per_subject: Sequence[np.ndarray], observed: Any) -> np.ndarray:
    """Decoded category of every predicted unit output, per subject.

    Parameters
    ----------
    predicted_per_subject : list of ndarray of shape (n_stimuli, n_units)
    observed : ndarray of shape (n_stimuli, n_units), or a list of them (one per subject)

    Returns
    -------
    decoded : int ndarray of shape (n_subjects, n_units)
        ``decoded[s, i]`` = the true unit best correlated with subject ``s``'s
        predicted output of unit ``i`` (correct when equal to ``i``).
    """
    if len(predicted_per_subject) == 0:
        raise BrainnetError(
            "predicted_per_subject is empty; give one (n_stimuli, n_units) array per subject"
        )
    if isinstance(observed, np.ndarray) and observed.ndim == 2:
        observed = [observed] * len(predicted_per_subject)
    if len(observed) != len(predicted_per_subject):
        raise BrainnetError(
            f"observed has {len(observed)} arrays for {len(predicted_per_subject)} subjects; "
            "give one array, or one per subject"
        )
    return np.stack(
        [
            np.argmax(unit_confusion(p, o), axis=1)
            for p, o in zip(predicted_per_subject, observed, strict=True)
        ]
    )


def _one_hot_confusions(decoded: np.ndarray, n_units: int) -> np.ndarray:
    """(n_subjects, n_units, n_units) with ``[s, i, decoded[s, i]] = 1``."""
    out = np.zeros((decoded.shape[0], n_units, n_units))
    rows = np.arange(n_units)
    for s, dec in enumerate(decoded):
        out[s, rows, dec] = 1.0
    return out


def decoding_metrics(decoded: np.ndarray) -> dict[str, np.ndarray]:
    """Sensitivity, specificity and PPV of unit decodings, per subject and category.

    Parameters
    ----------
    decoded : int ndarray of shape (n_subjects, n_units)
        From :func:`decode_units`; the true category of row ``i`` is ``i``.

    Returns
    -------
    dict with ``sensitivity``, ``specificity``, ``ppv``, each of shape
    (n_subjects, n_units); PPV is NaN for a category nothing was decoded as
    (scikit-learn's ``zero_division=np.nan``).
    """
    decoded = np.asarray(decoded)
    n_subjects, n_units = decoded.shape
    truth = np.arange(n_units)
    tp = (decoded == truth).astype(float)
    # predicted-as counts per category: column sums of each one-hot confusion
    predicted_as = np.zeros((n_subjects, n_units))
    for s in range(n_subjects):
        predicted_as[s] = np.bincount(decoded[s], minlength=n_units)
    fp = predicted_as - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        ppv = np.where(predicted_as > 0, tp / np.where(predicted_as > 0, predicted_as, 1), np.nan)
    return {
        "sensitivity": tp,
        "specificity": 1.0 - fp / (n_units - 1),
        "ppv": ppv,
    }


@dataclass(frozen=True)
class ClusterSolution:
    """The chosen cut of the Ward tree.

    Attributes
    ----------
    n_clusters : int
        Number of significant (discriminable) clusters at the chosen cut.
    k : int
        Number of clusters of the chosen cut.
    labels : int ndarray of shape (n_units,)
        Cluster of each unit at the chosen cut (0 .. k-1).
    significant : bool ndarray of shape (k,)
    accuracy : ndarray of shape (k,)
        Fraction of the members' decodings that land inside each cluster.
    p_values : ndarray of shape (k,)
        One-sided binomial p of each cluster against chance = size / n_units.
    fraction : ndarray of shape (n_units - 1,)
        Fraction of significant clusters for k = 2 .. n_units.
    linkage : ndarray of shape (n_units - 1, 4)
        scipy linkage matrix.
    """

    n_clusters: int
    k: int
    labels: np.ndarray
    significant: np.ndarray
    accuracy: np.ndarray
    p_values: np.ndarray
    fraction: np.ndarray
    linkage: np.ndarray


def _linkage(mean_confusion: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    similarity = (mean_confusion + mean_confusion.T) / 2.0
    distance = 1.0 - similarity
    np.fill_diagonal(distance, 0.0)
    distance = np.clip(distance, 0.0, None)
    return linkage(squareform(distance, checks=False), method="ward")


def _all_cuts(tree: np.ndarray, n: int) -> np.ndarray:
    """Cluster labels of every cut of a linkage, shape (n, n - 1) for k = 2 .. n.

    Written out because scipy's ``cut_tree`` returns a single cluster for
    ``k = n`` when merge heights tie (scipy issue with equal distances).
    """
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    current = np.arange(n)
    cuts = np.empty((n, n - 1), dtype=int)
    cuts[:, n - 2] = current
    for step, (a, b) in enumerate(tree[:, :2].astype(int)):
        merged = members.pop(a) + members.pop(b)
        members[n + step] = merged
        current = current.copy()
        current[merged] = current[merged].min()
        k = n - step - 1
        if k >= 2:
            # renumber 0 .. k-1 in order of first appearance
            _, first, inverse = np.unique(current, return_index=True, return_inverse=True)
            order = np.argsort(np.argsort(first))
            cuts[:, k - 2] = order[inverse]
    return cuts


def discriminable_clusters(decoded: np.ndarray, *, alpha: float = 0.05) -> ClusterSolution:
    """Ward clusters of the decoding confusions and the most discriminable cut.

    Parameters
    ----------
    decoded : int ndarray of shape (n_subjects, n_units)
    alpha : float
        Level of each cluster's one-sided binomial test.

    Returns
    -------
    ClusterSolution
    """
    from scipy.stats import binom

    decoded = np.asarray(decoded)
    n_subjects, n_units = decoded.shape
    if n_units < 3:
        raise BrainnetError(f"decoded has {n_units} units; the cluster analysis needs at least 3")
    mean_confusion = _one_hot_confusions(decoded, n_units).mean(axis=0)
    tree = _linkage(mean_confusion)
    cuts = _all_cuts(tree, n_units)  # (n_units, n_units - 1)
    inside = cuts[decoded] == cuts[None, :, :]  # (n_subjects, n_units, n_cuts)
    inside = inside.sum(axis=0)  # decodings of each unit landing in its own cluster, per cut
    ks = np.arange(2, n_units + 1)
    # flatten (cut, cluster) pairs so one binomial call covers every cluster of every cut
    flat = cuts + np.arange(ks.size)[None, :] * n_units
    hits = np.bincount(flat.ravel(), weights=inside.ravel(), minlength=ks.size * n_units)
    sizes = np.bincount(flat.ravel(), minlength=ks.size * n_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_all = binom.sf(hits - 1, sizes * n_subjects, sizes / n_units)
    exists = sizes > 0
    significant_all = (p_all < alpha) & exists
    fractions = significant_all.reshape(ks.size, n_units).sum(axis=1) / ks
    col = int(np.flatnonzero(fractions == fractions.max())[-1])  # ties -> larger k
    k = int(ks[col])
    block = slice(col * n_units, col * n_units + k)
    labels = cuts[:, col]
    significant = significant_all[block]
    accuracy = hits[block] / (sizes[block] * n_subjects)
    p = p_all[block]
    return ClusterSolution(
        n_clusters=int(significant.sum()),
        k=int(k),
        labels=np.asarray(labels, dtype=int),
        significant=significant,
        accuracy=accuracy,
        p_values=p,
        fraction=fractions,
        linkage=tree,
    )


@dataclass(repr=False)
class ConfusionResult(Record):
    """Result of :func:`confusion_analysis`.

    Attributes
    ----------
    summary : dict
        ``sensitivity``, ``sensitivity_sd``, ``specificity``,
        ``specificity_sd``, ``ppv``, ``ppv_sd`` (mean and SD across subjects
        of per-subject macro averages), ``n_clusters``, ``cluster_k``,
        ``cluster_ci`` ``(lo, hi)``, ``cluster_p``, ``chance``,
        ``n_bootstrap``, ``n_permutations``, ``alpha``.
    confusion : DataFrame of shape (n_units, n_units)
        Subject-averaged decodings: row = predicted output of a unit,
        column = the true unit it was decoded as; rows sum to 1.
    per_subject : ndarray of shape (n_subjects, n_units, n_units)
        Each subject's correlation matrix (predicted unit x true unit).
    decoded : int ndarray of shape (n_subjects, n_units)
    clusters : DataFrame
        ``unit``, ``cluster``, ``cluster_significant``, ``cluster_accuracy``,
        ``cluster_p`` at the chosen cut.
    per_category : DataFrame
        ``unit``, ``sensitivity``, ``specificity``, ``ppv`` pooled over subjects.
    linkage : ndarray of shape (n_units - 1, 4)
    bootstrap : ndarray of shape (n_bootstrap,)
        Bootstrap distribution of the number of discriminable clusters.
    null : ndarray of shape (n_permutations,)
        Permutation distribution of the number of discriminable clusters.
    """

    summary: dict[str, Any]
    confusion: pd.DataFrame
    per_subject: np.ndarray
    decoded: np.ndarray
    clusters: pd.DataFrame
    per_category: pd.DataFrame
    linkage: np.ndarray
    bootstrap: np.ndarray = field(default_factory=lambda: np.empty(0))
    null: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def table(self) -> pd.DataFrame:
        """Sensitivity, specificity and predictive value per category (``per_category``)."""
        return self.per_category

    def plot(self) -> list[Any]:
        """The confusion matrix (main) and the dendrogram of its clusters."""
        from brainnet.plotting import plot_confusion, plot_dendrogram

        labels = [str(c) for c in self.confusion.columns]
        figures = [plot_confusion(self.confusion.to_numpy(dtype=float), labels, title="confusions")]
        if np.size(self.linkage):
            figures.append(plot_dendrogram(self.linkage, labels))
        return figures

    def write(self, resultdir: Any) -> list[Path]:
        """Write ``confusion.tsv``, ``clusters.tsv``, ``confusion_per_category.tsv``
        and ``confusion.npz`` through a :class:`~brainnet.results.ResultDir`.

        Given a folder instead, write the record itself (see :meth:`read`).
        """
        from brainnet.results import ResultDir

        if not isinstance(resultdir, ResultDir):
            return super().write(resultdir)
        confusion = self.confusion.reset_index()
        return [
            resultdir.write_tsv("confusion.tsv", confusion),
            resultdir.write_tsv("clusters.tsv", self.clusters),
            resultdir.write_tsv("confusion_per_category.tsv", self.per_category),
            resultdir.write_npz(
                "confusion.npz",
                per_subject=self.per_subject,
                decoded=self.decoded,
                linkage=self.linkage,
                bootstrap_n_clusters=self.bootstrap,
                null_n_clusters=self.null,
                units=np.asarray(self.confusion.index, dtype=str),
            ),
        ]


def _split_subjects(n_subjects: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random half of the subjects for finding clusters, the rest for testing them."""
    order = np.random.default_rng([seed, 17]).permutation(n_subjects)
    n_train = (n_subjects + 1) // 2
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def _heldout_accuracy_statistic(decoded: np.ndarray, labels: np.ndarray):
    """Batched statistic: each cluster's accuracy on ``decoded`` after relabelling every subject's units."""
    n_subjects, n_units = decoded.shape
    k = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    offsets = np.arange(n_subjects)[:, None] * n_units

    def statistic(perms: np.ndarray) -> np.ndarray:
        out = np.empty((perms.shape[0], k))
        for b, perm in enumerate(perms):
            relabel = perm.reshape(n_subjects, n_units) - offsets
            relabelled = np.take_along_axis(relabel, decoded, axis=1)
            inside = (labels[relabelled] == labels[None, :]).sum(axis=0)
            out[b] = np.bincount(labels, weights=inside, minlength=k) / (sizes * n_subjects)
        return out

    return statistic


def heldout_clusters(
    decoded: np.ndarray,
    *,
    alpha: float = 0.05,
    n_permutations: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
) -> dict[str, Any] | None:
    """Discriminable clusters found on half of the subjects and tested on the other half.

    The paper's procedure (:func:`discriminable_clusters`) chooses the cut
    and tests its clusters on the same decodings, so pure noise yields
    several "discriminable" clusters. Here a seeded random half of the
    subjects (the larger half) chooses the clusters with that procedure, and
    each cluster's accuracy on the held-out subjects (fraction of its
    members' decodings landing inside it) is tested by the permutation engine:
    each held-out subject's unit labels are relabelled by an independent
    permutation. p-values are Holm-corrected across the clusters.

    Parameters
    ----------
    decoded : int ndarray of shape (n_subjects, n_units)
    alpha : float
        Level of the training half's cut choice and of the held-out tests.
    n_permutations : int
    seed : int
        Seed of the subject split and of the permutations.

    Returns
    -------
    dict or None
        ``train_subjects``, ``test_subjects`` (indices), ``labels`` (cluster
        of each unit, 0 .. k-1), ``accuracy``, ``chance`` (size / n_units),
        ``p``, ``p_holm`` (each of shape (k,)), ``null`` of shape
        (n_permutations, k) and ``n_clusters`` (held-out p_holm < alpha).
        None with fewer than 4 subjects (each half needs 2).
    """
    from brainnet.permutation import permutation_test
    from brainnet.stats import holm

    decoded = np.asarray(decoded)
    n_subjects, n_units = decoded.shape
    if n_subjects < 4 or n_permutations < 1:
        return None
    train, test = _split_subjects(n_subjects, seed)
    labels = discriminable_clusters(decoded[train], alpha=alpha).labels
    held = decoded[test]
    result = permutation_test(
        _heldout_accuracy_statistic(held, labels),
        held.size,
        n_permutations=n_permutations,
        seed=seed,
        groups=np.repeat(np.arange(len(test)), n_units),
        n_jobs=n_jobs,
        checkpoint=checkpoint,
    )
    p_holm = holm(result.p_value)
    sizes = np.bincount(labels)
    return {
        "train_subjects": train,
        "test_subjects": test,
        "labels": labels,
        "accuracy": result.observed,
        "chance": sizes / n_units,
        "p": result.p_value,
        "p_holm": p_holm,
        "null": result.null,
        "n_clusters": int(np.sum(p_holm < alpha)),
    }


def _cluster_count_statistic(decoded: np.ndarray, alpha: float, mode: str):
    """Batched statistic for the engine: number of discriminable clusters per draw."""
    n_subjects, n_units = decoded.shape

    def bootstrap(draws: np.ndarray) -> np.ndarray:
        return np.array(
            [discriminable_clusters(decoded[d], alpha=alpha).n_clusters for d in draws], dtype=float
        )

    def permute(perms: np.ndarray) -> np.ndarray:
        # perms index n_subjects * n_units items permuted within subject blocks:
        # subject s's true-unit labels are relabelled by its own permutation.
        out = np.empty(perms.shape[0])
        offsets = np.arange(n_subjects)[:, None] * n_units
        for b, perm in enumerate(perms):
            relabel = perm.reshape(n_subjects, n_units) - offsets
            relabelled = np.take_along_axis(relabel, decoded, axis=1)
            out[b] = discriminable_clusters(relabelled, alpha=alpha).n_clusters
        return out

    return bootstrap if mode == "bootstrap" else permute


def confusion_analysis(
    predicted_per_subject: Sequence[np.ndarray],
    observed: Any,
    labels: Sequence[str],
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint_dir: str | Path | None = None,
) -> ConfusionResult:
    """Confusion matrix, decoding metrics and discriminable clusters of decoded units.

    Parameters
    ----------
    predicted_per_subject : list of ndarray of shape (n_stimuli, n_units)
        Cross-validated (held-out subject) predictions of the units.
    observed : ndarray of shape (n_stimuli, n_units), or one per subject
        True unit activations, rows aligned with the predictions.
    labels : sequence of str of length n_units
        Unit (category) names.
    alpha : float
        Level of the per-cluster binomial tests.
    n_bootstrap : int
        Resamples of subjects for the CI of the number of clusters (paper: 5,000).
    n_permutations : int
        Permutations for its p-value (paper: 5,000).
    seed : int
    n_jobs : int
    checkpoint_dir : path, optional
        Where the bootstrap and permutation checkpoints go (resumable runs).

    Returns
    -------
    ConfusionResult
    """
    from brainnet.permutation import bootstrap_distribution, permutation_test

    labels = [str(x) for x in labels]
    per_subject = np.stack(
        [
            unit_confusion(p, o)
            for p, o in zip(
                predicted_per_subject, _per_subject(observed, predicted_per_subject), strict=True
            )
        ]
    )
    n_subjects, n_units, _ = per_subject.shape
    if len(labels) != n_units:
        raise BrainnetError(
            f"labels has {len(labels)} names for {n_units} units; give one name per unit"
        )
    if n_subjects < 2:
        raise BrainnetError(f"confusion analysis got {n_subjects} subject; it needs at least 2")
    decoded = np.argmax(per_subject, axis=2)
    metrics = decoding_metrics(decoded)
    solution = discriminable_clusters(decoded, alpha=alpha)

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    boot = bootstrap_distribution(
        _cluster_count_statistic(decoded, alpha, "bootstrap"),
        n_subjects,
        n_bootstrap=n_bootstrap,
        seed=seed,
        n_jobs=n_jobs,
        checkpoint=None if ckpt is None else ckpt / "clusters_bootstrap.npz",
    )
    perm = permutation_test(
        _cluster_count_statistic(decoded, alpha, "permutation"),
        n_subjects * n_units,
        n_permutations=n_permutations,
        seed=seed,
        groups=np.repeat(np.arange(n_subjects), n_units),
        n_jobs=n_jobs,
        checkpoint=None if ckpt is None else ckpt / "clusters_permutation.npz",
    )
    heldout = heldout_clusters(decoded, alpha=alpha, n_permutations=n_permutations, seed=seed, n_jobs=n_jobs,
                               checkpoint=None if ckpt is None else ckpt / "clusters_heldout.npz")
    return _assemble(per_subject, decoded, labels, metrics, solution, boot, perm, alpha, heldout)


def _per_subject(observed: Any, predicted: Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(observed, np.ndarray) and observed.ndim == 2:
        return [observed] * len(predicted)
    if len(observed) != len(predicted):
        raise BrainnetError(
            f"observed has {len(observed)} arrays for {len(predicted)} subjects; "
            "give one array, or one per subject"
        )
    return list(observed)


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else float("nan")


def _assemble(
    per_subject, decoded, labels, metrics, solution, boot, perm, alpha, heldout=None
) -> ConfusionResult:
    n_subjects, n_units = decoded.shape
    macro = {name: np.nanmean(values, axis=1) for name, values in metrics.items()}
    boot = np.asarray(boot, dtype=float)
    ci = (
        (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))
        if boot.size
        else (float("nan"), float("nan"))
    )
    effect = null_effect(solution.n_clusters, np.asarray(perm.null, dtype=float)) if perm.n_permutations \
        else {"null_mean": None, "null_sd": None, "effect": None}
    summary = {
        "sensitivity": float(macro["sensitivity"].mean()),
        "sensitivity_sd": _sd(macro["sensitivity"]),
        "specificity": float(macro["specificity"].mean()),
        "specificity_sd": _sd(macro["specificity"]),
        "ppv": float(np.nanmean(macro["ppv"])),
        "ppv_sd": _sd(macro["ppv"][np.isfinite(macro["ppv"])]),
        "n_clusters": solution.n_clusters,
        "cluster_k": solution.k,
        "cluster_ci": ci,
        "cluster_p": float(perm.p_value) if perm.n_permutations else None,
        "cluster_test": "permutation of the cluster count (each subject's unit labels relabelled); the "
        "per-cluster binomial p-values choose the cut on the same decodings and are not tests by themselves",
        "cluster_null_mean": effect["null_mean"],
        "cluster_null_sd": effect["null_sd"],
        "cluster_effect_vs_null": effect["effect"],
        "cluster_method": "paper: cut chosen and clusters tested on the same decodings (binomial); only "
        "cluster_p is a test. n_clusters_heldout: clusters found on half of the subjects, tested on the others",
        "n_clusters_heldout": None if heldout is None else heldout["n_clusters"],
        "clusters_heldout_k": None if heldout is None else int(heldout["labels"].max() + 1),
        "chance": 1.0 / n_units,
        "alpha": alpha,
        "n_bootstrap": int(boot.size),
        "n_permutations": perm.n_permutations,
        "spread": "SD across subjects of per-subject macro averages over categories",
    }
    one_hot = _one_hot_confusions(decoded, n_units)
    confusion = pd.DataFrame(
        one_hot.mean(axis=0),
        index=pd.Index(labels, name="predicted_unit"),
        columns=pd.Index(labels, name="decoded_as"),
    )
    pooled = one_hot.sum(axis=0)
    tp = np.diag(pooled)
    predicted_as = pooled.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_category = pd.DataFrame(
            {
                "unit": labels,
                "sensitivity": tp / n_subjects,
                "specificity": 1.0 - (predicted_as - tp) / (n_subjects * (n_units - 1)),
                "ppv": np.where(predicted_as > 0, tp / np.maximum(predicted_as, 1), np.nan),
            }
        )
    clusters = pd.DataFrame(
        {
            "unit": labels,
            "cluster": solution.labels + 1,
            "cluster_significant": solution.significant[solution.labels],
            "cluster_accuracy": solution.accuracy[solution.labels],
            "cluster_p": solution.p_values[solution.labels],
        }
    )
    if heldout is not None:
        h = heldout["labels"]
        clusters["heldout_cluster"] = h + 1
        clusters["heldout_accuracy"] = heldout["accuracy"][h]
        clusters["heldout_chance"] = heldout["chance"][h]
        clusters["heldout_p"] = heldout["p"][h]
        clusters["heldout_p_holm"] = heldout["p_holm"][h]
    return ConfusionResult(
        summary=summary,
        confusion=confusion,
        per_subject=per_subject,
        decoded=decoded,
        clusters=clusters,
        per_category=per_category,
        linkage=solution.linkage,
        bootstrap=boot,
        null=np.asarray(perm.null, dtype=float),
    )
