"""Paired permutation comparisons between regions or between layers.

Kragel et al. (2019) compared occipital with whole-brain decoding by a paired
t-test over subjects (delta r = .0155, p = .0404). Held-out subjects of one
group model are not independent, so here the comparison is a permutation
test from the engine (:func:`brainnet.permutation.permutation_test`):

- every *side* (a region, or a layer) has a batched statistic of the
  stimulus relabelling (decode: mean r over subjects and units; encode: mean
  per-fold r over voxels; RSA: mean network-human RDM similarity);
- in each permutation the **same** relabelling of the stimuli is applied to
  every side, so the null of a difference keeps the dependence between the
  sides (overlapping regions, layers of one network);
- for a pair ``(a, b)`` the difference ``d = stat_a - stat_b`` is measured
  against its permutation null: ``effect_vs_null = (d - null mean) / null
  SD``; ``p`` compares ``effect_vs_null`` with the same standardised values
  of the permutations (two-sided by default: ``|.| >= |.|``); the chance
  levels of the two sides need not be equal (e.g. layers of other widths);
- ``p_fwe`` corrects across pairs by the maximum of the standardised
  differences over pairs in each permutation (strong family-wise control,
  Westfall & Young 1993); ``p_holm`` (Holm on ``p``) is the alternative.

What the test rejects: the null that the stimulus labels carry no
information for either side (under it, both sides' statistics are
exchangeable over relabellings, and the test is exact: 2-8 % rejections at
alpha = .05, tests/test_contrasts.py). Equal, non-zero signal on both sides
is not a null of stimulus relabelling: the permutation spread of the
difference is that of chance, wider than its sampling spread under signal,
so there the test is conservative (measured with correlation statistics on
20 stimuli, 3 sides: 2.3 % rejections at slope 0.5, 0.3 % at slope 1, 300
studies each): it loses power, not validity. The difference is read against
each side's own chance (``effect_vs_null``), which matters for decoding,
whose chance level rises with the signal shared across subjects.

Why a new module: the permutation engine, the analyses' batched statistics
and the p-value functions are reused as they are; only the shared-relabelling
bookkeeping and the per-pair table are new (no library offers a paired
permutation test over refitted cross-validated models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet._display import Record
from brainnet.errors import BrainnetError

__all__ = [
    "ContrastResult",
    "contrast_table",
    "paired_contrast_test",
    "contrast_decoding",
    "contrast_encoding",
    "contrast_rsa",
]

ANALYSES = ("decode", "encode", "rsa")
TEST = ("permutation: the same stimulus relabelling on every side; the difference standardised by its "
        "permutation null; p_fwe by the maximum over pairs, p_holm by Holm")


@dataclass(repr=False)
class ContrastResult(Record):
    """Paired permutation comparisons between sides (regions or layers).

    Attributes
    ----------
    summary : dict
        ``analysis``, ``sides``, ``n_pairs``, ``n_permutations``,
        ``alternative``, ``test``, ``pairs`` (the table's rows) ...
    table : DataFrame
        One row per pair: ``pair``, ``side_a``, ``side_b``, ``stat_a``,
        ``stat_b``, ``difference``, ``null_mean``, ``null_sd``,
        ``effect_vs_null``, ``p``, ``p_fwe``, ``p_holm``.
    observed : ndarray of shape (n_sides,)
        Each side's statistic.
    null : ndarray of shape (n_permutations, n_sides)
        Each side's statistic under the shared relabellings.
    sides : list of str
    provenance : dict
    path : Path or None
    """

    summary: dict[str, Any]
    table: pd.DataFrame
    observed: np.ndarray
    null: np.ndarray
    sides: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def plot(self) -> list[Any]:
        """Each pair's difference against the middle 95 % of its permutation null (main figure)."""
        import matplotlib.pyplot as plt

        index = {name: i for i, name in enumerate(self.sides)}
        rows = list(self.table.itertuples())
        fig, ax = plt.subplots(figsize=(7, 1.4 + 0.45 * max(len(rows), 1)))
        for y, row in enumerate(rows):
            diff = self.null[:, index[row.side_a]] - self.null[:, index[row.side_b]]
            low, high = np.nanpercentile(diff, [2.5, 97.5]) if diff.size else (np.nan, np.nan)
            ax.plot([low, high], [y, y], color="0.7", linewidth=6, solid_capstyle="butt")
            ax.plot(row.difference, y, "o", color="C3" if row.p_fwe <= 0.05 else "C0")
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.set_yticks(range(len(rows)), [f"{r.side_a} - {r.side_b}" for r in rows])
        ax.set_xlabel("difference (dot); middle 95 % of its permutation null (bar)")
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
                            sides=np.asarray(self.sides, dtype=str))
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
    """Compare sides whose statistics were computed under shared permutations.

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


def paired_contrast_test(
    statistics: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    n: int,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_permutations: int = 1000,
    seed: int = 0,
    alternative: str = "two-sided",
    batch_size: int = 64,
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> ContrastResult:
    """Paired permutation test between sides, one relabelling of the ``n`` stimuli shared by all.

    Parameters
    ----------
    statistics : dict of str -> callable
        One batched statistic per side: ``statistic(perms)`` with ``perms``
        of shape ``(n_batch, n)`` returns shape ``(n_batch,)`` (or
        ``(n_batch, 1)``); the identity gives the observed value.
    n : int
        Number of stimuli (the exchangeable units of every side).
    pairs, alternative
        See :func:`contrast_table`.
    n_permutations, seed, batch_size, n_jobs, checkpoint, progress
        See :func:`brainnet.permutation.permutation_test`; permutation ``k``
        depends only on ``(seed, k)``, so each side's null equals the null of
        its own analysis run with the same seed.

    Returns
    -------
    ContrastResult
    """
    from brainnet.permutation import permutation_test

    names = [str(k) for k in statistics]
    if len(names) < 2:
        raise BrainnetError(f"got {len(names)} side(s) to compare; give at least two regions or two layers")
    _pairs(names, pairs)  # refuse bad pairs before the permutations
    functions = list(statistics.values())

    def combined(perms: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(f(perms), dtype=np.float64).reshape(perms.shape[0]) for f in functions],
                        axis=1)

    test = permutation_test(combined, n, n_permutations=n_permutations, seed=seed, batch_size=batch_size,
                            n_jobs=n_jobs, checkpoint=checkpoint, progress=progress)
    table = contrast_table(test.observed, test.null, names, pairs, alternative)
    summary = {
        "analysis": "contrast",
        "sides": names,
        "n_pairs": int(table.shape[0]),
        "n_stimuli": int(n),
        "n_permutations": int(n_permutations),
        "alternative": alternative,
        "test": TEST,
        "n_pairs_p_fwe_05": int(np.sum(table["p_fwe"] < 0.05)),
        "pairs": table.to_dict(orient="records"),
    }
    return ContrastResult(summary=summary, table=table, observed=test.observed, null=test.null, sides=names)


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
                      "statistic": _STATISTIC[analysis], **{k: v for k, v in result.summary.items()
                                                            if k != "analysis"}}
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


_STATISTIC = {
    "decode": "mean r over held-out subjects and units (leave-one-subject-out PLS, refitted per permutation)",
    "encode": "mean over voxels of the per-fold r (cross-validated encoding, refitted per permutation)",
    "rsa": "network_human_r: mean over subjects of the network-human RDM similarity",
}


def contrast_decoding(
    study=None,
    *,
    mask: str | Sequence[str] = "occipital",
    layers: str | Sequence[str] = "fc8",
    subjects: Sequence[str] | None = None,
    n_components: int | None = None,
    scale: bool = False,
    algorithm: str = "nipals",
    features=None,
    weights=None,
    untrained_seed: int = 0,
    network=None,
    n_permutations: int = 1000,
    alternative: str = "two-sided",
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ContrastResult:
    """Decode on several regions (one layer) or several layers (one region) and compare them.

    The per-side statistic is ``decode``'s mean r; with the same ``seed``
    each side's null equals ``decode``'s null of the mean r.

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
    n_permutations, alternative, seed, n_jobs, progress
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
    from brainnet.pls import CrossValidatedPLS
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
                  "algorithm": algorithm, "n_permutations": n_permutations, "alternative": alternative}
    _refuse_other_parameters(out, "group", "decode", values, parameters, seed, feats, overwrite)
    statistics, sizes, n_voxels = {}, [], {}
    for value in values:
        m, layer = (value, layer_list[0]) if varying == "mask" else (masks[0], value)
        data = study.load_subjects(labels, mask=m)
        averaged = [d.averaged() for d in data]
        matrix = feats.layer(layer)
        _, fx, rows = decoding._check_inputs([a[0] for a in averaged], [a[1] for a in averaged], matrix,
                                             feats.stimulus_ids, labels, n_components)
        x = np.concatenate([np.asarray(a[0], dtype=np.float64) for a in averaged])
        bounds = np.cumsum([0] + [len(r) for r in rows])
        blocks = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        groups = np.repeat(np.arange(len(rows)), np.diff(bounds))
        basis = decoding._unit_basis(fx, scale) if fx.shape[1] > decoding.MAX_UNITS else None
        cv = CrossValidatedPLS(x, groups, n_components, scale=scale, algorithm=algorithm)
        full = decoding._statistic(cv, fx, np.concatenate(rows), blocks, basis)
        statistics[value] = lambda perms, full=full: full(perms)[:, 0]
        sizes.append(decoding._batch_size(x.shape[0], fx.shape[1]))
        n_voxels[value] = int(x.shape[1])
    fprov = dict(feats.provenance)
    result = paired_contrast_test(statistics, len(feats.stimulus_ids), n_permutations=n_permutations, seed=seed,
                                  alternative=alternative, batch_size=min(sizes), n_jobs=n_jobs,
                                  progress=progress)
    result.summary["n_voxels"] = n_voxels
    result.summary["n_subjects"] = len(labels)
    return _finish(result, "decode", varying, study, fprov, parameters, seed, out, "group", overwrite)


def contrast_encoding(
    study=None,
    subject: str = "01",
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
    alternative: str = "two-sided",
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ContrastResult:
    """Encode one subject on several regions or layers and compare their mean per-fold r.

    Parameters
    ----------
    study : Study, path or None
    subject : str
    mask, layers
        See :func:`contrast_decoding`.
    model, cv, alphas, inner, n_components, features, weights, untrained_seed, network
        See :func:`brainnet.encoding.encode_subject`.
    n_permutations, alternative, seed, n_jobs, progress
        See :func:`paired_contrast_test`.
    out : path, optional
        Results go to ``<out>/sub-<label>/contrast-encode-<a>_vs_<b>/``.
    overwrite : bool

    Returns
    -------
    ContrastResult
    """
    from brainnet import encoding
    from brainnet._checks import check_options
    from brainnet.study import Study, load_study

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations)
    varying, values, masks, layer_list = _sides(mask, layers)
    study = study if isinstance(study, Study) else load_study(study)
    label = encoding._subject_label(study, subject)
    feats = study.features(layers=tuple(layer_list), weights=weights, seed=untrained_seed,
                           features_file=features, network=network)
    parameters = {"analysis": "encode", "subject": label, "compared": varying, "sides": values, "masks": masks,
                  "layers": layer_list, "model": model, "cv": cv, "alphas": encoding._alphas(alphas).tolist(),
                  "inner": inner, "n_components": n_components if model == "pls" else None,
                  "n_permutations": n_permutations, "alternative": alternative}
    _refuse_other_parameters(out, f"sub-{label}", "encode", values, parameters, seed, feats, overwrite)
    statistics, n_voxels, n = {}, {}, None
    for value in values:
        m, layer = (value, layer_list[0]) if varying == "mask" else (masks[0], value)
        y, ids = study.load_subject(label, mask=m).averaged()
        x, y = encoding._check_arrays(feats.layer(layer)[feats.rows_for(ids)], y)
        folds = encoding.make_folds(len(ids), cv, seed)
        if model == "ridge":
            encoding._check_inner(inner, min(len(train) for train, _ in folds))
        enc = encoding._Encoder(x, folds, model=model, alphas=alphas, inner=inner, n_components=n_components)

        def side(perms, enc=enc, y=y):
            with encoding._quiet_nan():
                return np.nanmean(enc.permuted_r(y, perms), axis=1)

        statistics[value] = side
        n_voxels[value] = int(y.shape[1])
        n = len(ids)
    fprov = dict(feats.provenance)
    result = paired_contrast_test(statistics, n, n_permutations=n_permutations, seed=seed,
                                  alternative=alternative, batch_size=encoding._batch_size(max(n_voxels.values())),
                                  n_jobs=n_jobs, progress=progress)
    result.summary["subject"] = label
    result.summary["n_voxels"] = n_voxels
    return _finish(result, "encode", varying, study, fprov, parameters, seed, out, f"sub-{label}", overwrite)


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
    alternative: str = "two-sided",
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ContrastResult:
    """Network-human RSA on several regions or layers, compared under shared relabellings.

    The per-side statistic is ``rsa``'s ``network_human_r``; with the same
    ``seed`` each side's null equals ``rsa``'s null. Repeats are averaged
    (``rdm`` ``"crossnobis"`` is not offered here).

    Parameters
    ----------
    study : Study, path or None
    mask, layers
        See :func:`contrast_decoding`.
    subjects, rdm, compare, features, weights, untrained_seed, network
        See :func:`brainnet.rsa.network_as_subject`.
    n_permutations, alternative, seed, n_jobs, progress
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
                  "alternative": alternative}
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
        full = rsa._permutation_statistic(net[None], humans, method)
        statistics[value] = lambda perms, full=full: full(perms)[:, 0]
        n_voxels[value] = int(data[0].n_voxels)
    fprov = dict(feats.provenance)
    result = paired_contrast_test(statistics, len(common), n_permutations=n_permutations, seed=seed,
                                  alternative=alternative, n_jobs=n_jobs, progress=progress)
    result.summary["n_subjects"] = len(labels)
    result.summary["n_stimuli"] = len(common)
    result.summary["n_voxels"] = n_voxels
    return _finish(result, "rsa", varying, study, fprov, parameters, seed, out, "group", overwrite)
