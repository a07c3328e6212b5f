"""Several networks side by side: every network x layer against the same brains.

:func:`compare_networks` extracts each network's layers (each with its own
preprocessing; the activation cache serves anything computed before), then
scores every network x layer with one analysis (``"rsa"``: the network's
RDM against each subject's, as :func:`brainnet.rsa.network_as_subject`;
``"encode"``: cross-validated encoding of every voxel, averaged over voxels
and subjects; ``"decode"``: leave-one-subject-out PLS decoding of the units,
averaged over units and subjects). Inference uses the permutation engine once for all of them:

- the same stimulus permutation is applied to every network x layer, so the
  maximum statistic over all of them gives family-wise corrected p-values
  across networks *and* layers (``p_fwe``);
- bootstrap CIs over subjects and over stimuli;
- pairwise comparisons of the networks (each at its best layer, chosen on
  these data: a descriptive choice, stated in the table) by sign flips of
  the per-subject differences, run by the engine as permutations within
  exchangeability blocks of two (one block per subject), with max-statistic
  FWE over the pairs.

Written to ``<out>/group/networks-<analysis>/``: ``networks.tsv`` (ranked,
with the noise ceiling), ``pairwise.tsv``, ``networks.png`` and
``summary.json`` whose provenance names every network and its weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError

__all__ = ["ANALYSES", "NetworkComparison", "compare_networks"]


@dataclass
class NetworkComparison:
    """Result of :func:`compare_networks`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per network x layer, best first: ``network``, ``layer``,
        ``score``, CIs, ``p_value``, ``p_fwe``, noise ceiling, ``fraction_of_ceiling``, ``rank``.
    pairwise : pandas.DataFrame
        One row per pair of networks (at their best layers): difference, CI, p, p_fwe.
    summary : dict
    path : Path or None
    """

    table: Any
    pairwise: Any
    summary: dict[str, Any]
    path: Path | None = None
    scores: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))


def _split(value) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(s).strip() for s in items if str(s).strip()]


def _grid(networks, layers, weights, untrained_seed):
    """``[(label, Network, [layers])]`` with every network resolved and its layers checked."""
    from brainnet.models.registry import Network, get_network

    items = networks if isinstance(networks, list | tuple) else _split(networks)
    if len(items) < 2:
        raise BrainnetError("--networks: give at least two networks, e.g. --networks emonet,emonet-untrained")
    grid, labels = [], []
    for item in items:
        net = get_network(item, weights=weights if item in ("emonet", None) else None, seed=untrained_seed) \
            if not isinstance(item, Network) else item
        label = item if isinstance(item, str) else net.name
        wanted = _split(layers.get(label, "all") if isinstance(layers, dict) else layers) or ["all"]
        if label in labels:
            raise BrainnetError(f"--networks: {label} is listed twice; list each network once")
        labels.append(label)
        names = list(net.layers) if wanted == ["all"] else wanted
        missing = [n for n in names if n not in net.layers]
        if missing:
            raise BrainnetError(
                f"--layers: network {label} has no layer {missing[0]!r}; use --layers all or one of "
                f"{', '.join(net.layers)}"
            )
        grid.append((label, net, names))
    return grid


def _features(study, grid, weights, untrained_seed):
    from brainnet.extract import shared_decoding

    with shared_decoding():  # each image decoded once for all networks
        return {label: study.features(layers=names, network=net,
                                      weights=weights if net.is_emonet and weights else None, seed=untrained_seed)
                for label, net, names in grid}


# --------------------------------------------------------------------------- scoring


def _rsa_scores(data, common, grid, feats, rdm, compare, noise):
    """Per-key per-subject RDM similarity, and what the engine needs."""
    from brainnet.rsa import (
        _check_comparison,
        _check_metric,
        compare_rdms,
        compute_rdm,
        noise_ceiling,
    )

    _check_metric(rdm)
    method = _check_comparison(compare)
    humans = np.vstack([compute_rdm(sd.patterns, sd.stimulus_ids, metric=rdm, runs=sd.runs, noise=noise,
                                    order=common).vector for sd in data])
    net_metric = "euclidean" if rdm == "crossnobis" else rdm
    keys, vectors, done = [], [], {}
    for label, _net, names in grid:
        rows = feats[label].rows_for(common)
        for name in names:
            keys.append((label, name))
            # two entries with the same weights, code, preprocessing and pool (emonet and
            # emonet-untrained without a weights file) have the same activations: one RDM
            same = _identity(feats[label].provenance, name)
            if same not in done:
                done[same] = compute_rdm(feats[label].layer(name)[rows], common, metric=net_metric).vector
            vectors.append(done[same])
    network = np.vstack(vectors)
    lower, upper = noise_ceiling(humans, method)
    return keys, compare_rdms(network, humans, method), (lower, upper), (network, humans, method)


def _identity(provenance, layer: str) -> str:
    import json

    network = {k: v for k, v in dict(provenance.get("network", {})).items() if k not in ("name", "source")}
    return json.dumps([network, provenance.get("preprocessing"), provenance.get("pool"),
                       provenance.get("stimuli"), layer], sort_keys=True, default=str)


def rsa_grid_inference(network, humans, method, *, n_permutations, n_bootstrap, seed, n_jobs=1, checkpoint_dir=None):
    """Permutation p (uncorrected and FWE over all rows of ``network``) and stimulus-bootstrap draws.

    Parameters
    ----------
    network : ndarray of shape (n_keys, n_pairs)
        One RDM per network x layer.
    humans : ndarray of shape (n_subjects, n_pairs)

    Returns
    -------
    perm : PermutationResult or None
    stimulus_draws : ndarray of shape (n_bootstrap, n_keys) or None
    """
    from brainnet.permutation import bootstrap_distribution, permutation_test
    from brainnet.rsa import _n_from_pairs, _permutation_statistic, _stimulus_bootstrap_statistic

    n = _n_from_pairs(humans.shape[1])
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    perm = None
    if n_permutations > 0:
        perm = permutation_test(_permutation_statistic(network, humans, method), n, n_permutations=n_permutations,
                                seed=seed, n_jobs=n_jobs,
                                checkpoint=ckpt / "permutations.npz" if ckpt else None)
    draws = None
    if n_bootstrap > 0 and not method.startswith("whitened"):
        draws = bootstrap_distribution(_stimulus_bootstrap_statistic(network, humans, method), n,
                                       n_bootstrap=n_bootstrap, seed=seed + 1, n_jobs=n_jobs,
                                       checkpoint=ckpt / "stimulus-bootstrap.npz" if ckpt else None)
    return perm, draws


def _encode_scores(data, common, grid, feats, model, cv, alphas, inner, n_components, seed):
    """Per-key per-subject mean out-of-fold r, and the encoders for the permutations."""
    from brainnet.encoding import _alphas, _Encoder, make_folds, split_half_noise_ceiling
    from brainnet.stats import pearson_columns

    folds = make_folds(len(common), cv, seed)
    responses = []
    ceilings = []
    for sd in data:
        y, ids = sd.averaged()
        index = {s: i for i, s in enumerate(ids)}
        responses.append(y[[index[s] for s in common]].astype(np.float64))
        c = split_half_noise_ceiling(sd.patterns, sd.stimulus_ids)
        ceilings.append(np.nan if c is None else float(np.nanmean(c)))
    keys, encoders, preds = [], [], []
    scores = []
    for label, _net, names in grid:
        rows = feats[label].rows_for(common)
        for name in names:
            x = feats[label].layer(name)[rows]
            if np.ptp(x, axis=0).max(initial=0) == 0:
                raise BrainnetError(
                    f"--layers: layer {name!r} of network {label} is the same for every stimulus; "
                    "leave it out or choose another --pool"
                )
            enc = _Encoder(x.astype(np.float64), folds, model=model,
                           alphas=_alphas(alphas), inner=inner, n_components=n_components)
            keys.append((label, name))
            encoders.append(enc)
            p = [enc.predict(y)[0] for y in responses]
            preds.append(p)
            scores.append([float(np.nanmean(pearson_columns(y, q))) for y, q in zip(responses, p, strict=True)])
    return keys, np.array(scores), np.array(ceilings), encoders, responses, preds


def _encode_statistic(encoders, responses):
    from brainnet.encoding import _blas_limit

    def statistic(perms: np.ndarray) -> np.ndarray:
        with _blas_limit():
            out = np.empty((perms.shape[0], len(encoders)))
            for k, enc in enumerate(encoders):
                out[:, k] = np.mean([np.nanmean(enc.permuted_r(y, perms), axis=1) for y in responses], axis=0)
        return out

    return statistic


def _encode_stimulus_statistic(responses, preds):
    from brainnet.stats import pearson_columns

    def statistic(draws: np.ndarray) -> np.ndarray:
        out = np.empty((draws.shape[0], len(preds)))
        for b, d in enumerate(draws):
            for k, per_subject in enumerate(preds):
                out[b, k] = np.mean([np.nanmean(pearson_columns(y[d], q[d])) for y, q in
                                     zip(responses, per_subject, strict=True)])
        return out

    return statistic


def _decode_scores(data, study_ids, grid, feats, n_components):
    """Per-key per-subject mean unit r of leave-one-subject-out PLS decoding, and the engine statistic."""
    from brainnet.decoding import MAX_UNITS, _check_inputs, _statistic, _subject_r, _unit_basis
    from brainnet.pls import CrossValidatedPLS

    averaged = [sd.averaged() for sd in data]
    patterns, ids = [a[0] for a in averaged], [a[1] for a in averaged]
    keys, stats, scores = [], [], []
    cv = rows_all = blocks = None
    for label, _net, names in grid:
        for name in names:
            _, f, rows = _check_inputs(patterns, ids, feats[label].layer(name), study_ids, None, n_components)
            if cv is None:
                x = np.concatenate([np.asarray(p, dtype=np.float64) for p in patterns])
                rows_all = np.concatenate(rows)
                sizes = np.cumsum([0] + [len(r) for r in rows])
                blocks = [np.arange(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
                cv = CrossValidatedPLS(x, np.repeat(np.arange(len(rows)), np.diff(sizes)), n_components, scale=False)
            basis = _unit_basis(f, False) if f.shape[1] > MAX_UNITS else None
            fitted = f if basis is None else f @ basis
            pred = cv.predict_permuted(fitted, rows_all, np.arange(f.shape[0])[None])[0]
            pred = pred if basis is None else pred @ basis.T
            with np.errstate(invalid="ignore"):
                r = _subject_r(pred[None], f[rows_all][None], blocks)[0]
            scores.append(np.nanmean(r, axis=1))
            stats.append(_statistic(cv, f, rows_all, blocks, basis))
            keys.append((label, name))

    def statistic(perms: np.ndarray) -> np.ndarray:
        return np.stack([s(perms)[:, 0] for s in stats], axis=1)

    return keys, np.array(scores), statistic


# --------------------------------------------------------------------------- pairs


def paired_sign_flip(differences: np.ndarray, *, n_permutations: int, seed: int, n_jobs: int = 1):
    """Two-sided sign-flip test of mean per-subject differences, by the permutation engine.

    Subject ``s`` contributes two exchangeable rows (``2s``, ``2s + 1``);
    permuting within these blocks of two is flipping the sign of its
    difference, for every pair at once (so ``p_fwe`` is max-statistic
    corrected over the pairs).

    Parameters
    ----------
    differences : ndarray of shape (n_pairs, n_subjects)

    Returns
    -------
    PermutationResult
        ``observed`` of shape (n_pairs,): the mean differences.
    """
    from brainnet.permutation import permutation_test

    d = np.asarray(differences, dtype=np.float64)
    n_subjects = d.shape[1]
    groups = np.repeat(np.arange(n_subjects), 2)
    first = np.arange(0, 2 * n_subjects, 2)

    def statistic(perms: np.ndarray) -> np.ndarray:
        signs = np.where(perms[:, first] == first, 1.0, -1.0)  # (batch, n_subjects)
        return signs @ d.T / n_subjects

    return permutation_test(statistic, 2 * n_subjects, n_permutations=n_permutations, seed=seed,
                            alternative="two-sided", groups=groups, n_jobs=n_jobs)


# --------------------------------------------------------------------------- entry point

ANALYSES = ("rsa", "encode", "decode")


def compare_networks(
    study=None,
    networks: Sequence[str] | str = ("emonet", "emonet-untrained"),
    *,
    analysis: str = "rsa",
    layers: Sequence[str] | str = "all",
    mask: str | Path = "occipital",
    subjects: Sequence[str] | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    rdm: str = "correlation",
    compare: str = "spearman",
    noise: str = "identity",
    model: str = "ridge",
    cv: int = 5,
    alphas=None,
    inner="loo",
    n_components: int = 5,
    n_permutations: int = 1000,
    n_bootstrap: int = 1000,
    ci_level: float = 0.95,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> NetworkComparison:
    """Rank every network x layer against the same brains (``brainnet rsa|encode --networks``).

    Parameters
    ----------
    study : Study, path or None
        Default: the embedded demo study.
    networks : sequence of str or Network, or comma-separated str
        At least two (see :func:`brainnet.models.registry.get_network`).
    analysis : {"rsa", "encode", "decode"}
        ``decode``: leave-one-subject-out PLS decoding of the units from the
        voxels (as :func:`brainnet.decoding.decode_units`), scored by the
        unit-mean r; its CIs are over subjects only and it has no noise ceiling.
    layers : "all", layer names, or dict of network -> layers
        ``"all"``: each network's own layer list; names must exist in every
        network; a dict chooses per network (missing networks: all).
    mask, subjects
        Region and subjects (default all).
    weights, untrained_seed
        EmoNet weights file (for the ``emonet`` entry) and the untrained seed.
    rdm, compare, noise
        RSA dissimilarity, comparison and crossnobis noise precision (see :func:`brainnet.rsa.network_as_subject`).
    model, cv, alphas, inner, n_components
        Encoding model (see :func:`brainnet.encoding.encode_subject`);
        ``n_components`` is also the PLS components of ``decode``.
    n_permutations, n_bootstrap, ci_level, seed, n_jobs
        Inference (one permutation set for all networks x layers).
    out : path, optional
        Results go to ``<out>/group/networks-<analysis>/``.
    overwrite : bool

    Returns
    -------
    NetworkComparison
    """
    import pandas as pd

    from brainnet.permutation import bootstrap_distribution
    from brainnet.results import ResultDir, make_provenance, removed_on_refusal
    from brainnet.rsa import _percentile_ci
    from brainnet.study import Study, load_study

    if analysis not in ANALYSES:
        raise BrainnetError(f"analysis {analysis!r} is unknown; use one of {', '.join(ANALYSES)}")
    if n_permutations < 0 or n_bootstrap < 0:
        raise BrainnetError("--permutations and --bootstrap must be 0 or more; pass 0 or a larger number")
    grid = _grid(networks, layers, weights, untrained_seed)
    study = study if isinstance(study, Study) else load_study(study)
    data = study.load_subjects(subjects, mask=mask)
    if len(data) < 3:
        raise BrainnetError(f"comparing networks needs at least 3 subjects, got {len(data)}; add subjects")
    present = set.intersection(*(set(sd.stimulus_ids.tolist()) for sd in data))
    common = [s for s in study.stimulus_ids if s in present]
    if len(common) < 4:
        raise BrainnetError(f"only {len(common)} stimuli were seen by every subject; comparing networks needs 4")
    feats = _features(study, grid, weights, untrained_seed)
    parameters = {
        "analysis": analysis, "networks": [g[0] for g in grid], "layers": {g[0]: g[2] for g in grid},
        "n_permutations": int(n_permutations), "n_bootstrap": int(n_bootstrap), "ci_level": ci_level,
        "subjects": [sd.subject for sd in data], "n_stimuli": len(common), "mask": str(mask),
    }
    if analysis == "rsa":
        parameters.update(rdm=rdm, compare=compare, noise=noise)
    elif analysis == "decode":
        parameters.update(model="pls", n_components=n_components, cv="leave-one-subject-out")
    else:
        parameters.update(model=model, cv=cv, alphas=None if alphas is None else list(map(float, alphas)),
                          inner=inner, n_components=n_components if model == "pls" else None)
    target = Path(out) / "group" / f"networks-{analysis}" if out is not None else None
    with removed_on_refusal(target if target is not None else Path("/nonexistent-brainnet")):
        rd = None
        if target is not None:
            provenance = make_provenance(
                weights={g[0]: feats[g[0]].provenance.get("weights") for g in grid},
                features={g[0]: dict(feats[g[0]].provenance) for g in grid},
                networks={g[0]: g[1].provenance() for g in grid},
                study=study.provenance(), mask={"name": str(mask), "n_voxels": data[0].n_voxels},
                seed=seed, parameters=parameters,
            )
            rd = ResultDir(target, provenance, overwrite=overwrite)
        ckpt = rd.checkpoint_dir if rd is not None else None
        if analysis == "rsa":
            keys, each, (lower, upper), (network, humans, method) = _rsa_scores(data, common, grid, feats, rdm, compare, noise)
            perm, stim_draws = rsa_grid_inference(network, humans, method, n_permutations=n_permutations,
                                                  n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs,
                                                  checkpoint_dir=ckpt)
            ceiling = (float(lower.mean()), float(upper.mean()))
        elif analysis == "decode":
            from brainnet.permutation import permutation_test

            keys, each, statistic = _decode_scores(data, list(study.stimulus_ids), grid, feats, n_components)
            perm = permutation_test(statistic, len(study.stimulus_ids), n_permutations=n_permutations, seed=seed,
                                    n_jobs=n_jobs, batch_size=8,
                                    checkpoint=ckpt / "permutations.npz" if ckpt else None) if n_permutations else None
            stim_draws = None  # rows belong to subjects' blocks: CIs over subjects only
            ceiling = (np.nan, np.nan)
        else:
            from brainnet.permutation import permutation_test

            keys, each, ceilings, encoders, responses, preds = _encode_scores(
                data, common, grid, feats, model, cv, alphas, inner, n_components, seed)
            perm = None
            if n_permutations > 0:
                perm = permutation_test(_encode_statistic(encoders, responses), len(common),
                                        n_permutations=n_permutations, seed=seed, n_jobs=n_jobs, batch_size=8,
                                        checkpoint=ckpt / "permutations.npz" if ckpt else None)
            stim_draws = None
            if n_bootstrap > 0:
                stim_draws = bootstrap_distribution(_encode_stimulus_statistic(responses, preds), len(common),
                                                    n_bootstrap=n_bootstrap, seed=seed + 1, n_jobs=n_jobs)
            ceiling = (float(np.nanmean(ceilings)),) * 2 if np.isfinite(ceilings).any() else (np.nan, np.nan)
        score = each.mean(axis=1)
        nan2 = np.full((2, len(keys)), np.nan)
        ci_subj = nan2 if n_bootstrap == 0 else _percentile_ci(bootstrap_distribution(
            lambda d: each[:, d].mean(axis=2).T, each.shape[1], n_bootstrap=n_bootstrap, seed=seed), ci_level)
        ci_stim = nan2 if stim_draws is None else _percentile_ci(stim_draws, ci_level)
        rows = []
        for k, (label, layer) in enumerate(keys):
            rows.append({
                "network": label, "layer": layer, "score": score[k],
                "ci_subjects_low": ci_subj[0, k], "ci_subjects_high": ci_subj[1, k],
                "ci_stimuli_low": ci_stim[0, k], "ci_stimuli_high": ci_stim[1, k],
                "p_value": float(perm.p_value[k]) if perm is not None else np.nan,
                "p_fwe": float(perm.p_fwe[k]) if perm is not None else np.nan,
                "noise_ceiling_lower": ceiling[0], "noise_ceiling_upper": ceiling[1],
                "fraction_of_ceiling": score[k] / ceiling[0] if ceiling[0] and np.isfinite(ceiling[0]) else np.nan,
            })
        table = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        pairwise = _pairwise(keys, each, grid, n_permutations, n_bootstrap, ci_level, seed, n_jobs)
        best = table.iloc[0]
        summary = {
            "analysis": f"networks-{analysis}", "score": "mean over subjects of " + (
                "RDM similarity (" + compare + ")" if analysis == "rsa" else "the voxel-mean out-of-fold r"
                if analysis == "encode" else "the unit-mean leave-one-subject-out decoding r"),
            "n_subjects": len(data), "n_stimuli": len(common), "n_networks": len(grid), "n_tests": len(keys),
            "best": {"network": best["network"], "layer": best["layer"], "score": float(best["score"]),
                     "p_fwe": float(best["p_fwe"])},
            "noise_ceiling": {"lower": ceiling[0], "upper": ceiling[1]},
            "n_p_fwe_05": int((table["p_fwe"] < 0.05).sum()),
            "correction": "max statistic over every network x layer (one permutation set)",
            "pairwise": "each network at its best layer (chosen on these data); sign flips over subjects, "
                        "max statistic over pairs",
        }
        result = NetworkComparison(table, pairwise, summary, scores=each)
        if rd is not None:
            rd.write_tsv("networks.tsv", table)
            rd.write_tsv("pairwise.tsv", pairwise)
            rd.write_with("networks.png", lambda fh: _figure(table, analysis, fh))
            result.path = rd.finish(summary).parent
    return result


def _pairwise(keys, each, grid, n_permutations, n_bootstrap, ci_level, seed, n_jobs):
    import pandas as pd

    from brainnet.permutation import bootstrap_distribution
    from brainnet.rsa import _percentile_ci

    labels = [g[0] for g in grid]
    best = {}
    for label in labels:
        idx = [k for k, key in enumerate(keys) if key[0] == label]
        best[label] = max(idx, key=lambda k: each[k].mean())
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]]
    diffs = np.array([each[best[a]] - each[best[b]] for a, b in pairs])
    test = paired_sign_flip(diffs, n_permutations=n_permutations, seed=seed + 2, n_jobs=n_jobs) \
        if n_permutations > 0 else None
    ci = np.full((2, len(pairs)), np.nan)
    if n_bootstrap > 0:
        ci = _percentile_ci(bootstrap_distribution(lambda d: diffs[:, d].mean(axis=2).T, diffs.shape[1],
                                                   n_bootstrap=n_bootstrap, seed=seed + 3), ci_level)
    return pd.DataFrame({
        "network_a": [a for a, _ in pairs], "layer_a": [keys[best[a]][1] for a, _ in pairs],
        "network_b": [b for _, b in pairs], "layer_b": [keys[best[b]][1] for _, b in pairs],
        "difference": diffs.mean(axis=1), "ci_low": ci[0], "ci_high": ci[1],
        "p_value": test.p_value if test is not None else np.nan,
        "p_fwe": test.p_fwe if test is not None else np.nan,
    })


def _figure(table, analysis: str, fh) -> None:
    """Networks x layers ranked by score with subject CIs, the noise ceiling band and FWE marks."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.28 * len(t)))
    try:
        lo, hi = float(t["noise_ceiling_lower"].iloc[0]), float(t["noise_ceiling_upper"].iloc[0])
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axvspan(lo, max(hi, lo + 1e-6), color="0.85", label="noise ceiling")
        networks = list(dict.fromkeys(table["network"]))
        colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(networks)}
        y = np.arange(len(t))
        err = np.vstack([t["score"] - t["ci_subjects_low"], t["ci_subjects_high"] - t["score"]])
        ax.barh(y, t["score"], color=[colors[n] for n in t["network"]],
                xerr=None if np.isnan(err).all() else np.abs(err), capsize=2)
        for yi, (_, row) in zip(y, t.iterrows(), strict=True):
            if row["p_fwe"] < 0.05:
                ax.text(row["score"], yi, " *", va="center")
        ax.set_yticks(y, [f"{n} {layer}" for n, layer in zip(t["network"], t["layer"], strict=True)], fontsize=7)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel("network-human RDM similarity" if analysis == "rsa" else "mean out-of-fold r")
        ax.set_title(f"networks x layers ({analysis}); * p_FWE < 0.05 over all of them", fontsize=9)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in networks]
        ax.legend(handles, networks, fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(fh, format="png", dpi=120)
    finally:
        plt.close(fig)
