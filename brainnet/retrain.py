"""A new head for a frozen network, as EmoNet was made (``brainnet retrain``).

Kragel et al. (2019) froze AlexNet and trained a new final layer on 20
emotion categories. :func:`retrain_head` does the same for any network of
the registry: the backbone layer's units are extracted once (and cached),
a multinomial logistic regression (scikit-learn, on standardised units) is
fitted on a stratified training split, and its weights, with the
standardisation folded in, become a linear layer saved as a head file.
Held-out images give accuracy (with an exact binomial test against chance),
one-vs-rest AUC per class and the confusion matrix.

The head file makes a new network: ``--network head:head.pt`` (layer
``head``) works in extract, encode, decode, RSA and side-by-side runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["HeadResult", "labelled_images", "retrain_head"]


@dataclass
class HeadResult:
    """What :func:`retrain_head` learned and how well it does on held-out images.

    Attributes
    ----------
    classes : list of str
    accuracy : float
        Held-out accuracy.
    chance : float
        ``1 / n_classes``.
    p_value : float
        Exact one-sided binomial test of the held-out accuracy against chance.
    auc : dict of str -> float
        One-vs-rest ROC AUC per class on the held-out images.
    confusion : ndarray of shape (n_classes, n_classes)
        Held-out counts, rows true class, columns predicted.
    path : Path or None
        The head file.
    summary : dict
    """

    classes: list[str]
    accuracy: float
    chance: float
    p_value: float
    auc: dict[str, float]
    confusion: np.ndarray
    path: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def labelled_images(folder: str | Path):
    """A folder of class subfolders -> ``(StimulusSet, labels)``.

    Ids are ``<class>/<file stem>``; classes are the subfolder names in sorted order.
    """
    from brainnet.stimuli import IMAGE_EXTENSIONS, StimulusSet, _natural_key

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise input_error(folder, "labelled image folder not found", "give a folder with one subfolder of images per class")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    ids, files, labels = [], [], []
    for cls in classes:
        images = sorted((p for p in (folder / cls).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                         and not p.name.startswith(".")), key=lambda p: _natural_key(p.name))
        for p in images:
            ids.append(f"{cls}/{p.stem}")
            files.append(p.resolve())
            labels.append(cls)
    counts = {c: labels.count(c) for c in classes}
    usable = [c for c in classes if counts[c] > 0]
    if len(usable) < 2:
        raise input_error(folder, f"has {len(usable)} class subfolder(s) with images",
                          "give at least two subfolders (one per class) of images")
    few = [c for c in usable if counts[c] < 4]
    if few:
        raise input_error(folder / few[0], f"holds {counts[few[0]]} image(s)",
                          "give every class at least 4 images (some are held out)")
    return StimulusSet(tuple(ids), tuple(files), tuple(labels), folder.resolve()), np.array(labels)


def retrain_head(
    images: str | Path,
    network: str = "emonet",
    *,
    layer: str | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    pool: str | None = None,
    test_size: float = 0.25,
    penalty: float = 1.0,
    seed: int = 0,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> HeadResult:
    """Train a new linear head on a frozen network's layer.

    Parameters
    ----------
    images : str or Path
        Folder with one subfolder of images per class.
    network : str
        Backbone (a name or spec of the registry; default EmoNet).
    layer : str, optional
        Backbone layer feeding the head (default: EmoNet ``fc7``, as EmoNet
        replaced AlexNet's last layer; others: their last layer).
    weights, untrained_seed
        EmoNet weights file and untrained seed (EmoNet backbones).
    pool : str, optional
        How the layer becomes units (default the network's).
    test_size : float
        Held-out fraction, stratified by class.
    penalty : float
        Inverse L2 strength ``C`` of the logistic regression.
    seed : int
        Seed of the split.
    out : str or Path, optional
        Head file to write (``.pt``); a report goes to ``<out>.json``.
    overwrite : bool
        Replace an existing head file.

    Returns
    -------
    HeadResult
    """
    import torch
    from scipy.stats import binomtest
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from brainnet.extract import extract_activations
    from brainnet.models.head import HEAD_FORMAT
    from brainnet.models.registry import get_network
    from brainnet.results import atomic_write_bytes, atomic_write_json, brainnet_version

    if not isinstance(network, str):
        raise BrainnetError("--network: retrain needs a network name or spec (e.g. emonet, hf:FOLDER) so the head "
                            "file can rebuild it")
    if out is not None:
        out = Path(out)
        if out.suffix != ".pt":
            raise input_error(out, "head files are written as .pt", "give an --out path ending in .pt")
        if out.exists() and not overwrite:
            raise input_error(out, "exists", "pass --overwrite or choose another --out")
    if not 0 < test_size < 1:
        raise BrainnetError(f"--test-fraction {test_size}: must be between 0 and 1; e.g. 0.25")
    net = get_network(network, weights=weights, seed=untrained_seed)
    layer = layer or ("fc7" if net.is_emonet else net.layers[-1])
    stim, labels = labelled_images(images)
    classes = sorted(set(labels.tolist()))
    feats = extract_activations(stim, network=net, layers=[layer], pool=pool)
    x = feats.layer(layer).astype(np.float64)
    y = np.searchsorted(classes, labels)
    rows = np.arange(len(y))
    try:
        train, test = train_test_split(rows, test_size=test_size, stratify=y, random_state=seed)
    except ValueError:
        raise BrainnetError(f"--test-fraction {test_size}: leaves a class without training or held-out images; "
                            "use a fraction between 1/n and 1 - 1/n of the smallest class, or add images") from None
    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression(C=penalty, max_iter=2000).fit(scaler.transform(x[train]), y[train])
    coef = model.coef_ if len(classes) > 2 else np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
    intercept = model.intercept_ if len(classes) > 2 else np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    weight = coef / scale  # the standardisation folded into the linear layer
    bias = intercept - weight @ scaler.mean_
    logits = x[test] @ weight.T + bias
    predicted = logits.argmax(axis=1)
    accuracy = float(np.mean(predicted == y[test]))
    chance = 1.0 / len(classes)
    p_value = float(binomtest(int((predicted == y[test]).sum()), len(test), chance, alternative="greater").pvalue)
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    auc = {}
    for k, cls in enumerate(classes):
        truth = y[test] == k
        auc[cls] = float(roc_auc_score(truth, prob[:, k])) if 0 < truth.sum() < len(truth) else float("nan")
    confusion = confusion_matrix(y[test], predicted, labels=np.arange(len(classes)))
    summary = {
        "analysis": "retrain", "network": net.name, "backbone_weights": net.weights, "layer": layer,
        "pool": feats.provenance["pool"], "classes": classes, "n_images": int(len(y)), "n_train": int(len(train)),
        "n_test": int(len(test)), "accuracy": accuracy, "chance": chance, "p_value": p_value, "auc": auc,
        "confusion": confusion.tolist(), "classifier": f"multinomial logistic regression, C={penalty}, standardised units",
        "seed": seed, "test_size": test_size, "brainnet_version": brainnet_version(),
        "test_ids": [stim.ids[i] for i in test], "features": dict(feats.provenance),
    }
    result = HeadResult(classes, accuracy, chance, p_value, auc, confusion, None, summary)
    if out is not None:
        import io

        state = {
            "format": HEAD_FORMAT,
            "weight": torch.from_numpy(weight.astype(np.float32)),
            "bias": torch.from_numpy(bias.astype(np.float32)),
            "classes": classes,
            "backbone": network,
            "backbone_weights": net.weights,
            "backbone_weights_file": str(Path(weights).expanduser().resolve()) if weights is not None else "",
            "backbone_seed": int(untrained_seed),
            "layer": layer,
            "pool": feats.provenance["pool"],
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_json(out.with_name(out.name + ".json"), summary)
        result.path = atomic_write_bytes(out, buf.getvalue())
    return result
