"""Category decoding with the network as one more subject.

Every subject's patterns and the network's activations are decoded with the
same classifier (:func:`brainnet.categories.decode_categories_within`) on
the same stimulus folds, so the network's accuracy and its confusion
structure can be placed in the human distribution:

- accuracy of each "subject" (within-subject cross-validation over
  stimuli; a human's repeats of a stimulus are averaged first, because the
  network has one row per stimulus and a held-out stimulus must not have
  copies in the training folds);
- the network's rank among the subjects and its percentile;
- row-normalised confusion matrices, and the similarity of their
  *off-diagonal* parts (which categories are mistaken for which, beyond the
  overall accuracy on the diagonal) between every pair of "subjects", each
  human's similarity to the mean of the other humans (leave-one-out), and
  the network's to the mean of all humans, ranked among those.

The folds are stratified by category and seeded (:func:`stimulus_folds`);
they depend only on the stimuli and their categories, never on whose data
is decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet._display import Record
from brainnet.errors import BrainnetError
from brainnet.runs import CategorySpec

__all__ = [
    "stimulus_folds",
    "confusion_similarity",
    "NetworkDecodingResult",
    "decode_network_subject",
    "network_category_decoding",
]


def stimulus_folds(categories: Sequence[str], n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold of each stimulus, shape (n_stimuli,): stratified by category, seeded.

    Raises a :class:`~brainnet.errors.BrainnetError` when a category has
    fewer stimuli than folds.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(categories)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise BrainnetError("category decoding needs at least 2 categories in stimuli.tsv; "
                            "give the stimuli of at least 2 categories a category")
    if n_folds < 2 or counts.min() < n_folds:
        raise BrainnetError(
            f"--folds {n_folds}: category {str(classes[np.argmin(counts)])!r} has only "
            f"{counts.min()} stimuli; use --folds between 2 and {max(2, counts.min())}"
        )
    folds = np.empty(y.size, dtype=int)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros((y.size, 1)), y)):
        folds[test] = k
    return folds


def _nanmean(x: np.ndarray) -> float:
    """Mean of the finite values; NaN (quietly) when there are none.

    A confusion matrix with no errors has constant off-diagonal entries and
    so no correlation with anything.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _off_diagonal(confusions: np.ndarray) -> np.ndarray:
    c = confusions.shape[-1]
    mask = ~np.eye(c, dtype=bool)
    return confusions[..., mask]


def confusion_similarity(confusions: np.ndarray) -> np.ndarray:
    """Pearson r between the off-diagonal parts of confusion matrices.

    Parameters
    ----------
    confusions : ndarray of shape (n, n_classes, n_classes)

    Returns
    -------
    ndarray of shape (n, n)
        NaN where a matrix has constant off-diagonal entries (e.g. perfect
        decoding).
    """
    from brainnet.stats import pearson_columns

    off = _off_diagonal(np.asarray(confusions, dtype=np.float64))  # (n, m)
    return pearson_columns(off.T[:, :, None], off.T[:, None, :], axis=0)


@dataclass(repr=False)
class NetworkDecodingResult(Record):
    """Category decoding of the subjects and the network (last row).

    Attributes
    ----------
    labels : list of str
        ``sub-<label>`` for each subject, then ``network``.
    classes : list of str
    accuracy : ndarray of shape (n_subjects + 1,)
    confusions : ndarray of shape (n_subjects + 1, n_classes, n_classes)
        Row-normalised (rows = true category).
    similarity : ndarray of shape (n_subjects + 1, n_subjects + 1)
        :func:`confusion_similarity` of every pair.
    human_loo : ndarray of shape (n_subjects,)
        Each human's confusion similarity to the mean of the other humans.
    network_to_mean : float
        The network's confusion similarity to the mean of all humans.
    summary : dict
    """

    labels: list[str]
    classes: list[str]
    stimulus_ids: tuple[str, ...]
    folds: np.ndarray
    accuracy: np.ndarray
    confusions: np.ndarray
    similarity: np.ndarray
    human_loo: np.ndarray
    network_to_mean: float
    summary: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    def per_subject(self):
        """``subject``, ``accuracy``, ``confusion_r_to_network``, ``confusion_r_to_others`` table."""
        import pandas as pd

        n = len(self.labels) - 1
        return pd.DataFrame(
            {
                "subject": self.labels,
                "accuracy": self.accuracy,
                "confusion_r_to_network": self.similarity[:, -1],
                "confusion_r_to_others": np.append(self.human_loo, self.network_to_mean),
                "is_network": [False] * n + [True],
            }
        )

    def confusion_long(self):
        """All confusion matrices as a long table: ``subject``, ``true``, ``predicted``, ``rate``."""
        import pandas as pd

        k = len(self.classes)
        return pd.DataFrame(
            {
                "subject": np.repeat(self.labels, k * k),
                "true": np.tile(np.repeat(self.classes, k), len(self.labels)),
                "predicted": np.tile(self.classes, k * len(self.labels)),
                "rate": self.confusions.ravel(),
            }
        )

    @property
    def table(self):
        """Accuracy per subject and of the network (:meth:`per_subject`)."""
        return self.per_subject()

    def plot(self) -> list[Any]:
        """Accuracy of every subject and the network (main), then the confusion similarities."""
        from brainnet.plotting import plot_second_order, plot_subject_accuracy

        frame = self.per_subject()
        network = self.labels[-1]
        figures = [plot_subject_accuracy(frame["accuracy"].to_numpy(dtype=float),
                                         [str(s) for s in frame["subject"]],
                                         network=frame["is_network"].to_numpy(dtype=bool),
                                         chance=self.summary.get("chance"),
                                         title=f"category decoding: {network} among the subjects")]
        figures.append(plot_second_order(self.similarity, self.labels, network=network,
                                         value_label="confusion similarity (Pearson r)",
                                         title="similarity of confusion matrices"))
        return figures

    def write(self, resultdir: Any) -> Path:
        """Write the tables through a :class:`~brainnet.results.ResultDir` and finish it.

        Given a folder instead, write the record itself (see :meth:`read`).
        """
        import pandas as pd

        from brainnet.results import ResultDir

        if not isinstance(resultdir, ResultDir):
            return super().write(resultdir)

        resultdir.write_tsv("subjects.tsv", self.per_subject())
        resultdir.write_tsv("confusions.tsv", self.confusion_long())
        sim = pd.DataFrame(self.similarity, columns=self.labels)
        sim.insert(0, "subject", self.labels)
        resultdir.write_tsv("confusion_similarity.tsv", sim)
        resultdir.write_tsv(
            "folds.tsv", pd.DataFrame({"stimulus_id": self.stimulus_ids, "fold": self.folds})
        )
        return resultdir.finish(self.summary)


def decode_network_subject(
    human_patterns: Sequence[np.ndarray],
    network: np.ndarray,
    categories: Sequence[str],
    *,
    subjects: Sequence[str] | None = None,
    stimulus_ids: Sequence[str] | None = None,
    model: str = "plsda",
    n_folds: int = 5,
    n_components: int | None = None,
    n_permutations: int = 100,
    seed: int = 0,
) -> NetworkDecodingResult:
    """Decode categories from each human's and the network's stimulus patterns.

    Parameters
    ----------
    human_patterns : sequence of ndarray of shape (n_stimuli, n_voxels)
        One per subject, rows in the same stimulus order as ``network``.
    network : ndarray of shape (n_stimuli, n_units)
    categories : sequence of str, length n_stimuli
    subjects : sequence of str, optional
    stimulus_ids : sequence of str, optional
    model : {"plsda", "logistic"}
    n_folds : int
    n_components : int, optional
    n_permutations : int
        Permutations of the stimulus categories for the network's accuracy
        (the engine; the classifier is refitted on the same folds each time).
        ``p_value`` is this test; the binomial ``network_accuracy_p`` is a
        parametric extra (it treats cross-validated decodings as independent).
    seed : int
        Seed of the stimulus folds and of the permutations.

    Returns
    -------
    NetworkDecodingResult
    """
    from scipy.stats import binomtest

    from brainnet.categories import category_confusion, decode_categories_within
    from brainnet.permutation import permutation_test
    from brainnet.stats import null_effect

    y = np.asarray([str(c) for c in categories])
    network = np.asarray(network, dtype=np.float64)
    if len(human_patterns) < 3:
        raise BrainnetError(
            f"placing the network among subjects needs at least 3 subjects, got {len(human_patterns)}; "
            "add subjects (--subjects)"
        )
    for x in [*human_patterns, network]:
        if np.asarray(x).shape[0] != y.size:
            raise BrainnetError(
                f"a pattern matrix has {np.asarray(x).shape[0]} rows but there are {y.size} "
                "stimuli; give one row per stimulus"
            )
    n = len(human_patterns)
    subjects = [str(s) for s in (subjects if subjects is not None else range(1, n + 1))]
    classes = sorted(set(y.tolist()))
    folds = stimulus_folds(y, n_folds, seed)
    accuracy, confusions = [], []
    for x in [*human_patterns, network]:
        predicted = decode_categories_within(x, y, folds, model=model, n_components=n_components)
        accuracy.append(float(np.mean(predicted == y)))
        confusions.append(category_confusion(y, predicted, classes).to_numpy())
    accuracy = np.array(accuracy)
    confusions = np.array(confusions)
    similarity = confusion_similarity(confusions)
    humans = confusions[:n]
    loo = np.array(
        [
            confusion_similarity(np.stack([humans[s], np.delete(humans, s, 0).mean(0)]))[0, 1]
            for s in range(n)
        ]
    )
    to_mean = float(confusion_similarity(np.stack([confusions[-1], humans.mean(0)]))[0, 1])
    chance = 1.0 / len(classes)
    k_correct = int(round(accuracy[-1] * y.size))
    summary = {
        "analysis": "network-category-decoding",
        "model": None,
        "classifier": model,
        "n_subjects": n,
        "n_stimuli": int(y.size),
        "n_classes": len(classes),
        "classes": classes,
        "n_folds": n_folds,
        "chance": chance,
        "network_accuracy": float(accuracy[-1]),
        "human_accuracy_mean": float(accuracy[:n].mean()),
        "human_accuracy_range": [float(accuracy[:n].min()), float(accuracy[:n].max())],
        # rank 1 = best; ties share the better rank
        "network_rank": int(1 + np.sum(accuracy[:n] > accuracy[-1])),
        "network_rank_of": n + 1,
        "network_percentile": float(100.0 * np.mean(accuracy[:n] < accuracy[-1])),
        "network_accuracy_p": float(
            binomtest(k_correct, y.size, chance, alternative="greater").pvalue
        ),
        "mean_r": _nanmean(similarity[-1, :n]),
        "confusion_r_network_to_humans": _nanmean(similarity[-1, :n]),
        "confusion_r_network_to_mean": to_mean,
        "confusion_r_human_loo_mean": _nanmean(loo),
        # undefined when the network's confusions have no off-diagonal variation
        "confusion_rank": int(1 + np.sum(loo > to_mean)) if np.isfinite(to_mean) else None,
        "noise_ceiling": {"lower": _nanmean(loo)},
        "network_accuracy_p_test": "parametric extra: binomial test against chance",
        "p_value": None,
        "n_permutations": int(n_permutations),
    }
    if n_permutations > 0:
        def statistic(perms: np.ndarray) -> np.ndarray:
            return np.array([np.mean(decode_categories_within(network, y[perm], folds, model=model,
                                                              n_components=n_components) == y[perm])
                             for perm in perms])

        perm = permutation_test(statistic, y.size, n_permutations=n_permutations, seed=seed, batch_size=8)
        effect = null_effect(accuracy[-1], perm.null)
        summary.update({
            "p_value": float(perm.p_value),
            "test": "permutation: stimulus categories shuffled, the network's classifier refitted on the same folds",
            "null_mean_accuracy": effect["null_mean"],
            "null_sd_accuracy": effect["null_sd"],
            "effect_vs_null": effect["effect"],
        })
    return NetworkDecodingResult(
        labels=[f"sub-{s}" for s in subjects] + ["network"],
        classes=classes,
        stimulus_ids=tuple(str(s) for s in (stimulus_ids or range(y.size))),
        folds=folds,
        accuracy=accuracy,
        confusions=confusions,
        similarity=similarity,
        human_loo=loo,
        network_to_mean=to_mean,
        summary=summary,
    )


def network_category_decoding(
    study: Any = None,
    *,
    layer: str = "fc8",
    mask: str | Path = "occipital",
    subjects: Sequence[str] | None = None,
    model: str = "plsda",
    n_folds: int = 5,
    n_components: int | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    features_file: str | Path | None = None,
    n_permutations: int = 100,
    seed: int = 0,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> NetworkDecodingResult:
    """Category decoding of a study's subjects and of one network layer, side by side.

    Uses the study's stimulus categories (``stimuli.tsv`` column
    ``category``) and the stimuli every subject saw. With ``out``, writes
    ``<out>/group/network-decoding-<layer>/`` (``summary.json``,
    ``subjects.tsv``, ``confusions.tsv``, ``confusion_similarity.tsv``,
    ``folds.tsv``).

    Returns
    -------
    NetworkDecodingResult
    """
    from brainnet import runs
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed, n_components=n_components)
    (layer,) = runs.check_layers([layer], features_file)
    study = runs.resolve_study(study)
    if not study.categories:
        raise BrainnetError(
            f"{study.root / 'stimuli.tsv'}: has no category column; add one (a category per "
            "stimulus) to decode categories"
        )
    labels = [study._label(s) for s in (subjects if subjects is not None else study.subjects)]
    features = runs.layer_features(study, [layer], weights=weights, untrained_seed=untrained_seed,
                                   features=features_file)
    spec = _NetworkDecodingSpec(mask=mask, seed=seed, subjects=labels, model=model, n_folds=n_folds,
                                n_components=n_components, n_permutations=n_permutations, layer=layer)
    return runs.Runner(spec, study, features, out, overwrite).run_group(labels)


@dataclass(frozen=True)
class _NetworkDecodingSpec(CategorySpec):
    """The network-decoding spec for :meth:`brainnet.runs.Runner.run_group`: every subject and the network."""

    layer: str = "fc8"

    analysis = "network-decoding"
    # --folds is checked against the stimuli the subjects share, so before the folder
    prepare_first = True

    def folder_name(self) -> str:
        return f"network-decoding-{self.layer}"

    def parameters(self, label: str) -> dict[str, Any]:
        return {**self.category_parameters(), "layer": self.layer, "averaged_repeats": True}

    def prepare_group(self, study, labels, feats):
        """Average each subject's repeats on its own voxels; keep the stimuli all saw; check --folds."""
        from brainnet.study import voxel_counts

        data = study.load_subjects(labels, mask=self.mask, shared=None)  # each subject decoded on its own voxels
        averaged = [sd.averaged() for sd in data]
        present = set.intersection(*(set(ids) for _, ids in averaged))
        common = [s for s in study.stimulus_ids if s in present and s in study.categories]
        categories = [study.categories[s] for s in common]
        stimulus_folds(categories, self.n_folds, self.seed)  # refuses an impossible --folds now
        inputs = {
            "patterns": [x[[list(ids).index(s) for s in common]] for x, ids in averaged],
            "network": feats.layer(self.layer)[feats.rows_for(common)],
            "categories": categories,
            "subjects": [sd.subject for sd in data],
            "stimulus_ids": common,
        }
        n_voxels = voxel_counts(data)
        extras = {"n_voxels": n_voxels, "model": feats.provenance.get("model")}
        return inputs, extras, self.mask, {"n_voxels": n_voxels}

    def compute(self, inputs, n_jobs: int, checkpoint, progress: bool) -> NetworkDecodingResult:
        return decode_network_subject(
            inputs["patterns"],
            inputs["network"],
            inputs["categories"],
            subjects=inputs["subjects"],
            stimulus_ids=inputs["stimulus_ids"],
            model=self.model,
            n_folds=self.n_folds,
            n_components=self.n_components,
            n_permutations=self.n_permutations,
            seed=self.seed,
        )

    def finish(self, job, result: NetworkDecodingResult) -> NetworkDecodingResult:
        result.summary.update({"layer": self.layer, "n_voxels": job.extras["n_voxels"],
                               "model": job.extras["model"]})
        return result

    def write(self, result: NetworkDecodingResult, folder, job) -> None:
        result.paths["summary"] = result.write(folder)
