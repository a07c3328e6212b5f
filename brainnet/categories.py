"""Category decoding from voxel patterns (the paper's fMRI experiment II).

Classifiers:

- :class:`PLSDA` — PLS discriminant analysis: PLS regression on one-hot
  class targets (X and Y centred, not scaled, like MATLAB's ``plsregress``)
  and the class with the largest predicted target wins. It uses
  :class:`brainnet.pls.KernelPLS`, whose predictions equal scikit-learn's
  ``PLSRegression`` (tests check agreement on the same folds).
- ``"logistic"`` — scikit-learn's multinomial ``LogisticRegression`` on
  training-fold standardised voxels.

:func:`decode_categories` pools the trials of all subjects and uses
participant-independent folds: every subject is assigned to one of
``n_folds`` folds (a seeded shuffle dealt round-robin, as GroupKFold but
reproducibly random), so each test fold holds subjects the classifier never
saw. The permutation null shuffles the category of each *stimulus*,
identically for every subject, when stimulus ids are given (a stimulus keeps
one label across subjects, as in the data); otherwise trial labels are
shuffled within each subject. For PLS-DA a whole batch of permuted label
sets is fitted at once in sample space
(:class:`brainnet.pls.CrossValidatedPLS`, fold kernels computed once), which
gives exactly the refitted classifiers' predictions; logistic regression is
refitted literally per permutation (slower; use fewer permutations).

:func:`decode_categories_within` is the single-"subject" version with given
folds, used to decode the network's activations with the same classifier and
folds as a human's patterns ("the network as a subject").

Why the stimulus-level permutation: subjects see the same stimuli, and a
stimulus evokes a pattern of its own beyond its category. A classifier can
learn those stimulus patterns from the training subjects and recognise the
same stimuli in a held-out subject, so it beats chance even when categories
carry no signal; only a null that keeps each stimulus's label consistent
across subjects has that ability too. On such data, shuffling trials within
subjects gave p = 0.05 (the minimum) in 10 of 12 null datasets
(tests/test_categories.py checks both designs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from brainnet import _defaults
from brainnet._display import Record
from brainnet.errors import BrainnetError
from brainnet.runs import CategorySpec

__all__ = [
    "PLSDA",
    "CategoryResult",
    "decode_categories",
    "decode_categories_within",
    "category_confusion",
    "subject_folds",
    "categorize_study",
]

MODELS = _defaults.CATEGORIZE_MODELS


def _pls(n_components: int, scale: bool):
    try:
        from brainnet.pls import KernelPLS
    except ImportError:  # same predictions, fitted in feature space
        from sklearn.cross_decomposition import PLSRegression as KernelPLS

    return KernelPLS(n_components=n_components, scale=scale)


def _cross_validated_pls():
    """brainnet.pls.CrossValidatedPLS, or None where that module is unavailable."""
    try:
        from brainnet.pls import CrossValidatedPLS
    except ImportError:
        return None
    return CrossValidatedPLS


def _one_hot(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """One-hot rows for integer codes of any leading shape: (..., n) -> (..., n, n_classes)."""
    return (codes[..., None] == np.arange(n_classes)).astype(np.float64)


class PLSDA(ClassifierMixin, BaseEstimator):
    """PLS discriminant analysis: PLS regression on one-hot targets, argmax.

    Parameters
    ----------
    n_components : int, default=None
        PLS components; None means ``n_classes - 1`` (the number of
        discriminant directions), capped by the data.
    scale : bool, default=False
        Scale voxels to unit variance (False centres only, like ``plsregress``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    pls_ : brainnet.pls.KernelPLS
        The fitted regression (predictions equal scikit-learn's PLSRegression).
    """

    def __init__(self, n_components: int | None = None, *, scale: bool = False):
        self.n_components = n_components
        self.scale = scale

    def fit(self, X, y) -> PLSDA:
        """Fit on ``X`` (n_samples, n_features) and class labels ``y`` (n_samples,)."""
        x, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"PLSDA needs at least 2 classes in y; got 1 class: {self.classes_[0]!r}")
        k = _n_components(self.n_components, self.classes_.size, x.shape)
        self.pls_ = _pls(k, self.scale).fit(x, _one_hot(codes, self.classes_.size))
        return self

    def decision_function(self, X) -> np.ndarray:
        """Predicted one-hot targets, shape (n_samples, n_classes).

        With two classes, as scikit-learn's classifiers: shape (n_samples,),
        the second class's score minus the first's (> 0 means ``classes_[1]``).
        """
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if self.classes_.size == 2 else scores

    def predict(self, X) -> np.ndarray:
        """Predicted class labels, shape (n_samples,)."""
        scores = self._scores(X)  # refuses an unfitted estimator before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]

    def _scores(self, X) -> np.ndarray:
        check_is_fitted(self, "pls_")
        return self.pls_.predict(validate_data(self, X, dtype=np.float64, reset=False))


def _n_components(n_components: int | None, n_classes: int, shape: tuple[int, int]) -> int:
    limit = min(shape[0] - 1, shape[1])
    k = n_classes - 1 if n_components is None else int(n_components)
    if n_components is None:
        return max(1, min(k, limit))
    if not 1 <= k <= limit:
        raise BrainnetError(
            f"--components {k}: a training fold of {shape[0]} trials x {shape[1]} voxels "
            f"allows 1 to {limit}; use fewer components"
        )
    return k


def _estimator(model: str, n_components: int | None, C: float):
    if model == "logistic" and not C > 0:  # also refuses NaN
        raise BrainnetError(f"--C {C:g}: the inverse regularisation must be positive; e.g. --C 1")
    if model == "plsda":
        return PLSDA(n_components=n_components)
    if model == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    raise BrainnetError(f"--model {model}: unknown classifier; use one of {', '.join(MODELS)}")


def subject_folds(n_subjects: int, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each subject, shape (n_subjects,): a seeded shuffle dealt round-robin.

    Every fold gets ``n_subjects // n_folds`` or one more subjects.
    """
    if n_subjects < 2:
        raise BrainnetError(
            f"--subjects: {n_subjects} subject given; participant-independent folds need at least 2 subjects; add subjects"
        )
    if not 2 <= n_folds <= n_subjects:
        raise BrainnetError(
            f"--folds {n_folds}: participant-independent folds need 2 to {n_subjects} folds "
            f"for {n_subjects} subjects; choose --folds between 2 and {n_subjects}"
        )
    order = np.random.default_rng([seed, 7]).permutation(n_subjects)
    folds = np.empty(n_subjects, dtype=int)
    folds[order] = np.arange(n_subjects) % n_folds
    return folds


def decode_categories_within(
    X: np.ndarray,
    y: Sequence,
    folds: Sequence,
    *,
    model: str = "plsda",
    n_components: int | None = None,
    C: float = 1.0,
) -> np.ndarray:
    """Cross-validated category predictions for one pattern matrix.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        A subject's patterns (trials x voxels) or the network's activations
        (stimuli x units).
    y : sequence of shape (n_samples,)
        Category of each row.
    folds : sequence of shape (n_samples,)
        Fold label of each row; each label is held out once. Pass the same
        folds for the network and a human to compare them like for like.
    model : {"plsda", "logistic"}
    n_components : int, optional
        PLS-DA components (default ``n_classes - 1``).
    C : float
        Inverse regularisation of the logistic regression.

    Returns
    -------
    predicted : ndarray of shape (n_samples,)
        Out-of-fold predicted category of every row (same dtype as ``y``).
    """
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    folds = np.asarray(folds)
    if x.ndim != 2 or y.shape != (x.shape[0],) or folds.shape != (x.shape[0],):
        raise BrainnetError(
            f"X has shape {x.shape}, y {y.shape} and folds {folds.shape}; "
            "give X (n_samples, n_features) with one label and one fold per row"
        )
    if np.unique(folds).size < 2:
        raise BrainnetError("folds has a single label; give at least 2 folds")
    predicted = np.empty(y.shape, dtype=y.dtype)
    for fold in np.unique(folds):
        test = folds == fold
        if np.unique(y[~test]).size < 2:
            raise BrainnetError(
                f"fold {fold}: its training rows hold one category; use other folds"
            )
        est = _estimator(model, n_components, C).fit(x[~test], y[~test])
        predicted[test] = est.predict(x[test])
    return predicted


def category_confusion(y_true: Sequence, y_pred: Sequence, classes: Sequence) -> pd.DataFrame:
    """Row-normalised confusion: rows = true category, columns = predicted; rows sum to 1."""
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=np.asarray(classes))
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    names = [str(c) for c in classes]
    return pd.DataFrame(
        rates, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted")
    )


@dataclass(repr=False)
class CategoryResult(Record):
    """Result of :func:`decode_categories`.

    Attributes
    ----------
    summary : dict
        ``analysis``, ``model``, ``n_subjects``, ``n_trials``, ``n_voxels``,
        ``n_classes``, ``classes``, ``n_folds``, ``accuracy``,
        ``accuracy_se`` (SE across subjects), ``balanced_accuracy``,
        ``chance`` (1 / n_classes), ``p_value``, ``n_permutations``,
        ``null_mean_accuracy``, ``null_sd_accuracy`` and ``effect_vs_null``
        (= (accuracy - null mean) / null SD; None with fewer than 2
        permutations), ``permutation_unit`` ("stimulus" or "trial within subject").
    per_subject : DataFrame
        ``subject``, ``fold``, ``n_trials``, ``accuracy``.
    confusion : DataFrame of shape (n_classes, n_classes)
        Pooled over subjects; rows = true, columns = predicted, rows sum to 1.
    predictions : DataFrame
        ``subject``, ``stimulus_id`` (when given), ``true``, ``predicted``, ``fold``.
    null : ndarray of shape (n_permutations,)
        Permutation distribution of the pooled accuracy.
    """

    summary: dict[str, Any]
    per_subject: pd.DataFrame
    confusion: pd.DataFrame
    predictions: pd.DataFrame
    null: np.ndarray = field(default_factory=lambda: np.empty(0))
    path: Path | None = None

    @property
    def table(self) -> pd.DataFrame:
        """Accuracy per held-out subject (``per_subject``)."""
        return self.per_subject

    def plot(self) -> list[Any]:
        """Accuracy per held-out subject (main) and the category confusion matrix."""
        from brainnet.plotting import plot_confusion, plot_subject_accuracy

        chance = self.summary.get("chance")
        figures = [plot_subject_accuracy(self.per_subject["accuracy"].to_numpy(dtype=float),
                                         [str(s) for s in self.per_subject["subject"]], chance=chance,
                                         title="category decoding accuracy per subject")]
        figures.append(plot_confusion(self.confusion.to_numpy(dtype=float),
                                      [str(c) for c in self.confusion.columns],
                                      value_label="proportion of trials (rows sum to 1)",
                                      title="category confusions (held-out subjects)"))
        return figures

    def write(self, resultdir: Any) -> list[Path]:
        """Write ``category_scores.tsv``, ``category_confusion.tsv`` and
        ``category_predictions.tsv`` through a :class:`~brainnet.results.ResultDir`.

        Given a folder instead, write the record itself (see :meth:`read`).
        """
        from brainnet.results import ResultDir

        if not isinstance(resultdir, ResultDir):
            return super().write(resultdir)
        return [
            resultdir.write_tsv("category_scores.tsv", self.per_subject),
            resultdir.write_tsv("category_confusion.tsv", self.confusion.reset_index()),
            resultdir.write_tsv("category_predictions.tsv", self.predictions),
            resultdir.write_npz("category_null.npz", accuracy=self.null),
        ]


def _check_inputs(patterns, labels, stimulus_ids):
    if len(patterns) != len(labels) or len(patterns) == 0:
        raise BrainnetError(
            f"patterns has {len(patterns)} subjects and labels {len(labels)}; "
            "give one (n_trials, n_voxels) array and one label array per subject"
        )
    if stimulus_ids is not None and len(stimulus_ids) != len(patterns):
        raise BrainnetError(
            f"stimulus_ids has {len(stimulus_ids)} arrays for {len(patterns)} subjects; give one per subject"
        )
    xs, ys, ss, subj = [], [], [], []
    n_voxels = np.asarray(patterns[0]).shape[-1]
    for s, (x, y) in enumerate(zip(patterns, labels, strict=True)):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=object)
        if x.ndim != 2 or x.shape[1] != n_voxels or y.shape != (x.shape[0],):
            raise BrainnetError(
                f"subject {s}: patterns {x.shape} and labels {y.shape} do not match; give "
                f"(n_trials, {n_voxels}) patterns and one label per trial"
            )
        keep = np.array([v is not None and str(v) != "" for v in y], dtype=bool)
        xs.append(x[keep])
        ys.append(y[keep].astype(str))
        subj.append(np.full(int(keep.sum()), s))
        if stimulus_ids is not None:
            sid = np.asarray(stimulus_ids[s]).astype(str)
            if sid.shape != y.shape:
                raise BrainnetError(
                    f"subject {s}: stimulus_ids has {sid.size} entries for {y.size} trials"
                )
            ss.append(sid[keep])
    stims = np.concatenate(ss) if stimulus_ids is not None else None
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(subj), stims


def _stimulus_labels(stims: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus index of each row and the single category code of each stimulus."""
    unique, rows = np.unique(stims, return_inverse=True)
    stim_code = np.full(unique.size, -1)
    stim_code[rows] = codes
    if np.any(stim_code[rows] != codes):
        bad = unique[np.flatnonzero(np.bincount(rows, weights=stim_code[rows] != codes))[0]]
        raise BrainnetError(
            f"stimulus {bad}: has different categories on different trials; give one category per stimulus"
        )
    return rows, stim_code


def _accuracy_statistic(x, n_classes, fold_of_row, model, n_components, C, permuted_codes):
    """Batched statistic (pooled accuracy per permutation) and the out-of-fold predictor."""
    CrossValidatedPLS = _cross_validated_pls() if model == "plsda" else None
    if CrossValidatedPLS is not None:
        folds = np.unique(fold_of_row)
        shape = (int((fold_of_row != folds[0]).sum()), x.shape[1])
        k = _n_components(n_components, n_classes, shape)
        cv = CrossValidatedPLS(x, fold_of_row, n_components=k)

        def predict(codes: np.ndarray) -> np.ndarray:
            """Out-of-fold predicted codes, shape (B, n), for label sets of shape (B, n)."""
            return np.argmax(cv.predict(_one_hot(codes, n_classes)), axis=2)

    else:

        def predict(codes: np.ndarray) -> np.ndarray:
            return np.stack(
                [
                    decode_categories_within(
                        x, t, fold_of_row, model=model, n_components=n_components, C=C
                    )
                    for t in codes
                ]
            )

    def statistic(perms: np.ndarray) -> np.ndarray:
        target = permuted_codes(perms)  # (B, n)
        return (predict(target) == target).mean(axis=1)

    return statistic, predict


def decode_categories(
    patterns: Sequence[np.ndarray],
    labels: Sequence[Sequence],
    *,
    model: str = "plsda",
    n_folds: int = 8,
    n_components: int | None = None,
    C: float = 1.0,
    n_permutations: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    groups: Sequence | None = None,
    stimulus_ids: Sequence[Sequence[str]] | None = None,
    subjects: Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
) -> CategoryResult:
    """Decode categories from voxel patterns with participant-independent folds.

    Parameters
    ----------
    patterns : list of ndarray of shape (n_trials, n_voxels)
        One array per subject, on a shared voxel set.
    labels : list of sequence of shape (n_trials,)
        Category of each trial; trials labelled None or "" are left out.
    model : {"plsda", "logistic"}
    n_folds : int
        Participant-independent folds (paper, experiment II: 8).
    n_components : int, optional
        PLS-DA components (default ``n_classes - 1``).
    C : float
        Inverse regularisation of the logistic regression.
    n_permutations : int
        Label permutations for the p-value of the pooled accuracy (paper: 1,000).
    seed : int
        Seeds the subject -> fold assignment and the permutations.
    n_jobs : int
    groups : sequence of shape (n_subjects,), optional
        Fold label of each subject, overriding the seeded assignment.
    stimulus_ids : list of sequence of shape (n_trials,), optional
        Stimulus of each trial; then stimuli (not trials) are permuted, the
        same way for every subject.
    subjects : sequence of str, optional
        Subject labels for the tables (default "1", "2", ...).
    checkpoint : path, optional
        Checkpoint ``.npz`` of the permutation run (resumable).

    Returns
    -------
    CategoryResult
    """
    from brainnet.permutation import permutation_test

    _estimator(model, n_components, C)  # validates the model name early
    x, y, subj, stims = _check_inputs(patterns, labels, stimulus_ids)
    n_subjects = len(patterns)
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise BrainnetError(
            f"labels hold {classes.size} category; category decoding needs at least 2"
        )
    if groups is None:
        subject_fold = subject_folds(n_subjects, n_folds, seed)
    else:
        subject_fold = np.asarray(groups)
        if subject_fold.shape != (n_subjects,) or np.unique(subject_fold).size < 2:
            raise BrainnetError(
                f"groups has shape {subject_fold.shape}; give one fold label per subject ({n_subjects}), "
                "with at least 2 distinct labels"
            )
    fold_of_row = subject_fold[subj]

    if stims is not None:
        stim_rows, stim_code = _stimulus_labels(stims, codes)
        n_exchangeable, perm_groups = stim_code.size, None

        def permuted_codes(perms: np.ndarray) -> np.ndarray:
            return stim_code[perms][:, stim_rows]

    else:
        n_exchangeable, perm_groups = codes.size, subj

        def permuted_codes(perms: np.ndarray) -> np.ndarray:
            return codes[perms]

    statistic, predict = _accuracy_statistic(
        x, classes.size, fold_of_row, model, n_components, C, permuted_codes
    )
    result = permutation_test(
        statistic,
        n_exchangeable,
        n_permutations=n_permutations,
        seed=seed,
        groups=perm_groups,
        batch_size=16,
        n_jobs=n_jobs,
        checkpoint=checkpoint,
    )
    predicted = predict(codes[None])[0]
    return _assemble(
        x, codes, predicted, classes, subj, fold_of_row, stims, subjects, model, result
    )


def _null_relative(accuracy: float, null: np.ndarray) -> dict[str, float | None]:
    """Null mean and SD of the accuracy and ``effect_vs_null`` = (accuracy - null mean) / null SD."""
    from brainnet.stats import null_effect

    effect = null_effect(accuracy, null)
    return {"null_mean_accuracy": effect["null_mean"], "null_sd_accuracy": effect["null_sd"],
            "effect_vs_null": effect["effect"]}


def _assemble(x, codes, predicted, classes, subj, fold_of_row, stims, subjects, model, perm):
    from sklearn.metrics import balanced_accuracy_score

    n_subjects = int(subj.max()) + 1
    names = (
        [str(s) for s in subjects]
        if subjects is not None
        else [str(i + 1) for i in range(n_subjects)]
    )
    correct = predicted == codes
    per_subject = pd.DataFrame(
        {
            "subject": names,
            "fold": [
                int(fold_of_row[subj == s][0]) if np.any(subj == s) else -1
                for s in range(n_subjects)
            ],
            "n_trials": np.bincount(subj, minlength=n_subjects),
            "accuracy": [
                float(correct[subj == s].mean()) if np.any(subj == s) else np.nan
                for s in range(n_subjects)
            ],
        }
    )
    predictions = pd.DataFrame({"subject": np.asarray(names)[subj]})
    if stims is not None:
        predictions["stimulus_id"] = stims
    predictions["true"] = classes[codes]
    predictions["predicted"] = classes[predicted]
    predictions["fold"] = fold_of_row
    acc = per_subject["accuracy"].to_numpy()
    summary = {
        "analysis": "categorize",
        "model": model,
        "n_subjects": n_subjects,
        "n_trials": int(codes.size),
        "n_voxels": int(x.shape[1]),
        "n_classes": int(classes.size),
        "classes": [str(c) for c in classes],
        "n_folds": int(np.unique(fold_of_row).size),
        "accuracy": float(correct.mean()),
        "accuracy_se": float(np.nanstd(acc, ddof=1) / np.sqrt(np.isfinite(acc).sum()))
        if n_subjects > 1
        else None,
        "balanced_accuracy": float(balanced_accuracy_score(codes, predicted)),
        "chance": 1.0 / classes.size,
        "p_value": float(perm.p_value) if perm.n_permutations else None,
        "n_permutations": perm.n_permutations,
        **_null_relative(float(correct.mean()), perm.null),
        "permutation_unit": "stimulus" if stims is not None else "trial within subject",
    }
    return CategoryResult(
        summary=summary,
        per_subject=per_subject,
        confusion=category_confusion(classes[codes], classes[predicted], classes),
        predictions=predictions,
        null=np.asarray(perm.null, dtype=float),
    )


DEFAULT_PERMUTATIONS = _defaults.CATEGORIZE_PERMUTATIONS


def _subject_labels(study, subjects: Sequence[str] | None) -> list[str]:
    """The chosen subjects, checked against the study before anything is loaded or written."""
    if subjects is None:
        return list(study.subjects)
    labels = []
    for s in subjects:
        label = str(s).strip().removeprefix("sub-")
        if label not in study.subjects:
            shown = ", ".join(study.subjects[:8]) + (", ..." if len(study.subjects) > 8 else "")
            raise BrainnetError(f"--subjects {s}: no such subject in {study.root}; choose from {shown}")
        labels.append(label)
    if len(set(labels)) != len(labels):
        raise BrainnetError("--subjects: a subject is listed twice; list each subject once")
    return labels


def _mask_label(mask: str | Path) -> str:
    name = Path(str(mask)).name
    for suffix in (".nii.gz", ".nii"):
        name = name.removesuffix(suffix)
    return name


def categorize_study(
    study: Any = None,
    *,
    mask: str | Path = "occipital",
    subjects: Sequence[str] | None = None,
    model: str = "plsda",
    n_folds: int = 8,
    n_components: int | None = None,
    C: float = 1.0,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> CategoryResult:
    """Decode the study's stimulus categories from voxel patterns (experiment II).

    Parameters
    ----------
    study : Study, str or Path, optional
        A loaded study or its folder (``stimuli.tsv`` needs a ``category``
        column); None: the embedded demo study.
    mask : str or Path
        Region of the patterns.
    subjects : sequence of str, optional
        Subjects to use (default: all).
    model, n_folds, n_components, C, n_permutations, seed, n_jobs
        See :func:`decode_categories` (the default of 100 permutations keeps
        the embedded study under a minute; the paper used 1,000).
    out : path, optional
        Results go to ``<out>/group/categorize-<mask>/`` (``summary.json``,
        ``category_scores.tsv``, ``category_confusion.tsv``,
        ``category_predictions.tsv``); nothing is written when None.
    overwrite : bool
        Replace results in that folder made with other parameters.

    Returns
    -------
    CategoryResult
        ``path`` is the result folder (or None).
    """
    from brainnet._checks import check_options

    check_options(seed=seed, n_jobs=n_jobs, n_permutations=n_permutations, n_components=n_components)
    from brainnet.errors import input_error
    from brainnet.study import Study, load_study

    _estimator(model, n_components, C)
    study = study if isinstance(study, Study) else load_study(study)
    if not study.categories:
        raise input_error(
            study.root / "stimuli.tsv",
            "has no category column (or it is empty)",
            "add a category column naming each stimulus's category to decode categories",
        )
    labels_given = _subject_labels(study, subjects)
    subject_folds(len(labels_given), n_folds, seed)  # fail on bad --folds before loading data
    from brainnet import runs

    spec = _CategorizeSpec(mask=mask, seed=seed, subjects=labels_given, model=model, n_folds=n_folds,
                           n_components=n_components, n_permutations=n_permutations, C=C)
    return runs.Runner(spec, study, None, out, overwrite, runs.Execution(n_jobs)).run_group(labels_given)


@dataclass(frozen=True)
class _CategorizeSpec(CategorySpec):
    """The categorize spec for :meth:`brainnet.runs.Runner.run_group`: brain patterns only, no layer."""

    C: float = 1.0

    analysis = "categorize"
    layer = None

    def folder_name(self) -> str:
        return f"categorize-{_mask_label(self.mask)}"

    def parameters(self, label: str) -> dict[str, Any]:
        return {**self.category_parameters(), "C": self.C if self.model == "logistic" else None}

    def prepare_group(self, study, labels_given, feats):
        """Load every subject and check the categories, before the result folder exists."""
        from brainnet.errors import input_error

        data = study.load_subjects(labels_given, mask=self.mask)
        labels = [[study.categories.get(s) for s in d.stimulus_ids] for d in data]
        seen = sorted({c for row in labels for c in row if c})
        if len(seen) < 2:
            raise input_error(
                study.root / "stimuli.tsv",
                f"the trials of the chosen subjects cover {len(seen)} category ({', '.join(seen) or 'none'})",
                "category decoding needs stimuli of at least 2 categories in the category column",
            )
        inputs = {"patterns": [d.patterns for d in data], "labels": labels,
                  "stimulus_ids": [d.stimulus_ids for d in data], "subjects": [d.subject for d in data]}
        n_stimuli = len({s for d in data for s in d.stimulus_ids.tolist() if study.categories.get(s)})
        extras = {"mask_name": data[0].mask_name, "n_stimuli": n_stimuli}
        return inputs, extras, data[0].mask_name, {"n_voxels": int(data[0].n_voxels)}

    def compute(self, inputs, n_jobs: int, checkpoint, progress: bool) -> CategoryResult:
        return decode_categories(
            inputs["patterns"],
            inputs["labels"],
            model=self.model,
            n_folds=self.n_folds,
            n_components=self.n_components,
            C=self.C,
            n_permutations=self.n_permutations,
            seed=self.seed,
            n_jobs=n_jobs,
            stimulus_ids=inputs["stimulus_ids"],
            subjects=inputs["subjects"],
            checkpoint=None if checkpoint is None else checkpoint / "categorize_null.npz",
        )

    def finish(self, job, result: CategoryResult) -> CategoryResult:
        result.summary.update(
            {
                "layer": None,
                "mask": job.extras["mask_name"],
                "n_stimuli": job.extras["n_stimuli"],
                "mean_r": None,
                "noise_ceiling": None,
            }
        )
        return result

    def write(self, result: CategoryResult, folder, job) -> None:
        result.write(folder)
        folder.finish(result.summary)
        result.path = folder.path
