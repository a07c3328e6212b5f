"""A network's own structure on a labelled image set, as the paper reports EmoNet's.

:func:`network_structure` gives, for one layer of any network (default its
output layer):

- its **confusion matrix**: categories decoded from the layer's units by a
  stratified k-fold multinomial logistic regression (scikit-learn), every
  image predicted once while held out;
- its **number of discriminable categories** with the same cluster method
  as for brains (:func:`brainnet.confusion.discriminable_clusters`): the
  held-out decodings are arranged as repetitions (repetition ``r`` holds the
  ``r``-th image of every category, so each has one decoding per category,
  as a subject has in the brain analysis);
- the **PCA dimensionality** of its outputs over the images (components for
  90 % and 95 % of the variance, participation ratio);
- with user ratings (a TSV of ``stimulus_id`` plus ``valence``/``arousal``
  columns, OASIS/IAPS-style norms), cross-validated **linear read-outs** of
  each rating from the softmax of the output units, beside the read-outs
  published with EmoNet (when the layer is EmoNet's 20 emotion units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["NetworkStructure", "network_structure", "pca_dimensionality", "rating_readouts"]


@dataclass
class NetworkStructure:
    """Result of :func:`network_structure`.

    Attributes
    ----------
    classes : list of str
    confusion : ndarray of shape (n_classes, n_classes)
        Held-out counts (rows true, columns predicted).
    accuracy : float
    n_discriminable : int
        Discriminable categories (significant clusters at the chosen cut).
    clusters : ClusterSolution
    dimensionality : dict
    readouts : pandas.DataFrame or None
    summary : dict
    """

    classes: list[str]
    confusion: np.ndarray
    accuracy: float
    n_discriminable: int
    clusters: Any
    dimensionality: dict[str, float]
    readouts: Any = None
    summary: dict[str, Any] = field(default_factory=dict)


def pca_dimensionality(x: np.ndarray) -> dict[str, float]:
    """Dimensionality of ``(n_images, n_units)`` outputs.

    Returns
    -------
    dict with ``n_components_90``, ``n_components_95`` (PCA components
    reaching that fraction of the variance) and ``participation_ratio``
    ``(sum l)^2 / sum l^2`` of the PCA eigenvalues.
    """
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float64)
    pca = PCA().fit(x)
    ev = pca.explained_variance_
    frac = np.cumsum(pca.explained_variance_ratio_)
    return {
        "n_components_90": int(np.searchsorted(frac, 0.90 - 1e-12) + 1),
        "n_components_95": int(np.searchsorted(frac, 0.95 - 1e-12) + 1),
        "participation_ratio": float(ev.sum() ** 2 / (ev**2).sum()) if ev.sum() > 0 else 0.0,
        "n_units": int(x.shape[1]),
        "n_images": int(x.shape[0]),
    }


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rating_readouts(outputs: np.ndarray, ratings: Any, *, n_folds: int = 5, seed: int = 0,
                    published: bool = False):
    """Cross-validated linear read-outs of ratings from softmax outputs.

    Parameters
    ----------
    outputs : ndarray of shape (n_images, n_units)
        Output-layer units (before softmax) of the rated images.
    ratings : pandas.DataFrame
        One numeric column per rating (e.g. ``valence``, ``arousal``), rows aligned with ``outputs``.
    n_folds, seed
        ``KFold(n_folds, shuffle=True, random_state=seed)``.
    published : bool
        Also score EmoNet's published read-outs (needs 20 units in EmoNet's order).

    Returns
    -------
    pandas.DataFrame
        One row per rating: ``cv_r``, ``cv_r2`` of the fitted read-out,
        ``published_r`` (or NaN), and the fitted intercept and weights
        (``w_<unit>``; fitted on all images) beside the published ones (``published_w_<unit>``).
    """
    import pandas as pd
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_predict

    from brainnet.models.emonet import (
        _AROUSAL_INTERCEPT,
        _AROUSAL_W,
        _VALENCE_INTERCEPT,
        _VALENCE_W,
    )

    p = _softmax(np.asarray(outputs, dtype=np.float64))
    if len(ratings) < 2 * n_folds:
        raise BrainnetError(f"--ratings: {len(ratings)} rated images are too few for {n_folds}-fold "
                            "cross-validation; rate more images")
    published_w = {"valence": (_VALENCE_INTERCEPT, _VALENCE_W), "arousal": (_AROUSAL_INTERCEPT, _AROUSAL_W)}
    rows = []
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for name in ratings.columns:
        y = ratings[name].to_numpy(dtype=np.float64)
        # The softmax outputs sum to 1, so an intercept plus all units is collinear:
        # LinearRegression's minimum-norm least squares handles it.
        pred = cross_val_predict(LinearRegression(), p, y, cv=folds)
        fit = LinearRegression().fit(p, y)
        row = {"rating": name, "n_images": len(y), "cv_r": float(np.corrcoef(pred, y)[0, 1]),
               "cv_r2": float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()),
               "published_r": np.nan, "intercept": float(fit.intercept_)}
        row.update({f"w_{k}": float(w) for k, w in enumerate(fit.coef_)})
        if published and name in published_w and p.shape[1] == 20:
            b0, w = published_w[name]
            row["published_r"] = float(np.corrcoef(b0 + p @ w, y)[0, 1])
            row["published_intercept"] = b0
            row.update({f"published_w_{k}": float(v) for k, v in enumerate(w)})
        rows.append(row)
    return pd.DataFrame(rows)


def _read_ratings(path: str | Path, ids: tuple[str, ...]):
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", dtype={"stimulus_id": str})
    except (OSError, ValueError, pd.errors.ParserError):
        raise input_error(path, "not a readable ratings TSV", "give a TSV with stimulus_id and rating columns") from None
    if "stimulus_id" not in frame.columns:
        raise input_error(path, "has no 'stimulus_id' column", "name the id column 'stimulus_id'")
    values = frame.drop(columns="stimulus_id").apply(pd.to_numeric, errors="coerce")
    if values.shape[1] == 0 or values.isna().any().any():
        raise input_error(path, "rating columns must be numbers without gaps", "give numeric columns such as valence, arousal")
    index = {s: i for i, s in enumerate(ids)}
    short = {s.rsplit("/", 1)[-1]: i for i, s in enumerate(ids)}  # ratings may name images by file stem
    rows = [index.get(s, short.get(s)) for s in frame["stimulus_id"]]
    if any(r is None for r in rows):
        missing = [s for s, r in zip(frame["stimulus_id"], rows, strict=True) if r is None][:3]
        raise input_error(path, f"rates images not in the image set (e.g. {missing})", "rate images of --images")
    return np.array(rows), values.reset_index(drop=True)


def network_structure(
    images: str | Path,
    network: str = "emonet",
    *,
    layer: str | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    pool: str | None = None,
    ratings: str | Path | None = None,
    n_folds: int = 5,
    alpha: float = 0.05,
    seed: int = 0,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> NetworkStructure:
    """Confusions, discriminable categories, PCA dimensionality and rating read-outs of a network.

    Parameters
    ----------
    images : str or Path
        Folder with one subfolder of images per category (at least 3).
    network : str or Network
        Default EmoNet.
    layer : str, optional
        Default: the network's last layer (EmoNet ``fc8``, a head network ``head``).
    weights, untrained_seed, pool
        As for :func:`brainnet.extract_activations`.
    ratings : str or Path, optional
        TSV of ``stimulus_id`` (``<class>/<stem>`` or the file stem) and numeric rating columns.
    n_folds : int
        Folds of the category decoding and of the read-outs.
    alpha : float
        Level of each cluster's binomial test.
    seed : int
    out : str or Path, optional
        Folder for ``confusion.tsv``, ``readouts.tsv`` and ``summary.json``.
    overwrite : bool

    Returns
    -------
    NetworkStructure
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainnet.confusion import discriminable_clusters
    from brainnet.extract import extract_activations
    from brainnet.models.registry import get_network
    from brainnet.results import ResultDir, make_provenance
    from brainnet.retrain import labelled_images

    net = get_network(network, weights=weights, seed=untrained_seed)
    layer = layer or net.layers[-1]
    stim, labels = labelled_images(images)
    classes = sorted(set(labels.tolist()))
    if len(classes) < 3:
        raise input_error(images, f"has {len(classes)} categories", "the cluster analysis needs at least 3 class subfolders")
    feats = extract_activations(stim, network=net, layers=[layer], pool=pool)
    x = feats.layer(layer).astype(np.float64)
    y = np.searchsorted(classes, labels)
    counts = np.bincount(y)
    if counts.min() < n_folds:
        raise BrainnetError(f"--folds {n_folds}: a category has only {counts.min()} images; use fewer folds or add images")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), x, y, cv=folds)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (y, predicted), 1)
    # repetition r holds the r-th image of every category, as a subject holds one decoding per category
    n_reps = int(counts.min())
    decoded = np.column_stack([predicted[np.flatnonzero(y == c)[:n_reps]] for c in range(len(classes))])
    clusters = discriminable_clusters(decoded, alpha=alpha)
    dimensionality = pca_dimensionality(x)
    readouts = None
    if ratings is not None:
        rows, values = _read_ratings(ratings, stim.ids)
        readouts = rating_readouts(x[rows], values, n_folds=n_folds, seed=seed,
                                   published=net.is_emonet and layer == "fc8")
    accuracy = float(np.trace(confusion) / confusion.sum())
    summary = {
        "analysis": "network-structure", "network": net.name, "weights": net.weights, "layer": layer,
        "classes": classes, "n_images": int(len(y)), "accuracy": accuracy, "chance": 1 / len(classes),
        "confusion": confusion.tolist(), "n_discriminable": clusters.n_clusters, "cluster_k": clusters.k,
        "cluster_labels": clusters.labels.tolist(), "n_repetitions": n_reps, "dimensionality": dimensionality,
        "readouts": None if readouts is None else readouts[["rating", "cv_r", "cv_r2", "published_r"]].to_dict("records"),
    }
    result = NetworkStructure(classes, confusion, accuracy, clusters.n_clusters, clusters, dimensionality, readouts,
                              summary)
    if out is not None:
        prov = make_provenance(weights=net.weights, features=dict(feats.provenance), seed=seed,
                               parameters={"layer": layer, "n_folds": n_folds, "alpha": alpha,
                                           "images": str(Path(images).resolve()),
                                           "ratings": None if ratings is None else str(Path(ratings).resolve())})
        rd = ResultDir(Path(out), prov, overwrite=overwrite)
        rd.write_tsv("confusion.tsv", pd.DataFrame(confusion, index=classes, columns=classes).reset_index(names="true"))
        if readouts is not None:
            rd.write_tsv("readouts.tsv", readouts)
        rd.finish(summary)
    return result
