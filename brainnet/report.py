"""A self-contained HTML report of saved brainnet results, written for a collaborator.

:func:`write_report` turns a results folder (the ``--out`` of one or more
analyses) into a single ``report.html``:

1. banners when results were computed with untrained network weights or on
   simulated data (the embedded demo study);
2. a **methods paragraph** generated from the provenance of every result
   (what was run, its parameters, software versions, references to cite), in
   the spirit of fMRIPrep's boilerplate, to adapt into a paper;
3. an overview table (one row per result; its "main result" column is a
   sentence, so no column means different statistics in different rows);
4. per result: its numbers in words with units, its tables (per-unit
   decoding table, peak tables of brain maps, per-subject tables), its
   figures with captions (what is shown, n, the test and the correction),
   and its provenance collapsed in a ``<details>`` element.

Figures are taken from ``<results>/figures/`` (written by
:func:`brainnet.plotting.make_figures`); figures already there and up to date
are reused, not redrawn. They are embedded as base64 PNG, so the page needs
no server, no network and no companion files. Nothing is recomputed.

The page is plain HTML and CSS written with the standard library: a template
engine (jinja2) would add a dependency for one page.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet.plotting import (
    FigureSkipped,
    _analysis_kind,
    _check_results_dir,
    _figure_jobs,
    _find_runs,
    _read_tsv,
    _run_label,
    make_figures,
)
from brainnet.results import atomic_write_text, brainnet_version, read_json

__all__ = ["write_report"]

# -------------------------------------------------------------- words for keys

#: Summary keys in words, with their unit. Keys not listed are shown as their
#: words (underscores to spaces); bookkeeping keys are hidden.
_LABELS: dict[str, str] = {
    "analysis": "analysis",
    "layer": "network layer",
    "model": "model",
    "classifier": "classifier",
    "subject": "subject",
    "weights": "network weights",
    "mask": "region (mask)",
    "n_subjects": "subjects (n)",
    "n_stimuli": "stimuli (n)",
    "n_voxels": "voxels (n)",
    "n_units": "network units (n)",
    "n_rows": "rows of data (stimuli × subjects)",
    "n_trials": "trials (n)",
    "n_classes": "categories (n)",
    "n_components": "PLS components (n)",
    "n_folds": "cross-validation folds (n)",
    "cv": "cross-validation",
    "mean_r": "mean cross-validated r (Pearson)",
    "median_r": "median cross-validated r (Pearson)",
    "mean_r2": "mean cross-validated R²",
    "se_r": "standard error of the mean r",
    "cohens_d": "effect size (Cohen's d)",
    "p_value": "p (permutation test)",
    "p_fwe": "p, family-wise corrected",
    "n_permutations": "permutations (n)",
    "n_bootstrap": "bootstrap resamples (n)",
    "bootstrap_unit": "bootstrap resamples",
    "n_voxels_p_fwe_05": "voxels with p_FWE < 0.05 (n)",
    "n_units_p_fwe_05": "units with p_FWE < 0.05 (n)",
    "n_voxels_fdr05": "unit-voxel weights with FDR q < .05 (n)",
    "noise_ceiling": "noise ceiling",
    "noise_ceiling_method": "noise ceiling method",
    "noise_ceiling_lower": "noise ceiling, lower bound",
    "noise_ceiling_upper": "noise ceiling, upper bound",
    "resubstitution_r": "resubstitution r (decoding ceiling)",
    "mean_r_over_noise_ceiling": "mean r / noise ceiling",
    "median_alpha": "median ridge penalty (α)",
    "network_human_r": "network–human RDM similarity",
    "network_to_mean": "network to mean human RDM similarity",
    "network_rank": "network rank among subjects",
    "network_rank_of": "ranked among (n)",
    "network_percentile": "network percentile among subjects (%)",
    "rdm": "RDM distance",
    "compare": "RDM comparison",
    "ci": "95 % confidence intervals",
    "ceiling_gap": "gap to the noise ceiling",
    "ceiling_gap_ci": "95 % CI of the gap to the noise ceiling",
    "below_ceiling_p": "p (network below the noise ceiling)",
    "sensitivity": "sensitivity (mean over subjects)",
    "sensitivity_sd": "sensitivity, SD over subjects",
    "specificity": "specificity (mean over subjects)",
    "specificity_sd": "specificity, SD over subjects",
    "ppv": "positive predictive value (mean over subjects)",
    "ppv_sd": "positive predictive value, SD over subjects",
    "n_clusters": "discriminable clusters (n)",
    "cluster_ci": "95 % bootstrap CI of the cluster count",
    "cluster_p": "p (cluster count, permutation test)",
    "chance": "chance level (proportion)",
    "accuracy": "accuracy (proportion correct)",
    "accuracy_se": "accuracy, SE over subjects",
    "balanced_accuracy": "balanced accuracy",
    "network_accuracy": "network accuracy (proportion correct)",
    "human_accuracy_mean": "mean human accuracy (proportion correct)",
    "human_accuracy_range": "human accuracy range",
    "network_accuracy_p": "p (network accuracy vs chance)",
    "permutation_unit": "permuted unit",
    "alpha": "test level (α)",
    "detection_rate": "detection rate at the largest sample",
    "min_subjects_80": "subjects needed for 80 % power",
    "subject_sizes": "subsample sizes (subjects)",
    "n_stimuli_sizes": "subsample sizes (stimuli)",
    "n_repeats": "subsamples per size (n)",
    "power_of": "power of",
    "test": "test",
    "scale": "voxels scaled to unit variance",
    "unit_span": "units decoded through their span",
    "n_volumes": "fMRI volumes (n)",
    "n_censored": "censored volumes (n)",
    "max_r": "largest voxel r",
}
#: Keys whose meaning depends on the analysis.
_LABELS_BY_KIND: dict[str, dict[str, str]] = {
    "decode": {"noise_ceiling": "share of the noise ceiling (cross-validated r / resubstitution r)"},
    "encode": {"noise_ceiling": "noise ceiling (mean split-half r, Spearman–Brown)"},
}
_HIDDEN_KEYS = {"provenance", "fingerprint", "complete", "parameters", "skipped", "subjects", "classes"}

#: Column names of result tables in words (others: underscores to spaces).
_COLUMNS: dict[str, str] = {
    "unit": "unit",
    "mean_r": "mean r (held-out subjects)",
    "se_r": "SE of r",
    "p": "p (uncorrected)",
    "p_fwe": "p (FWE-corrected)",
    "resubstitution_r": "resubstitution r (ceiling)",
    "n_subjects": "subjects (n)",
    "n_stimuli": "stimuli (n)",
    "detection_rate": "detection rate",
    "ci_low": "95 % CI, low",
    "ci_high": "95 % CI, high",
    "median_p": "median p",
    "n_repeats": "subsamples (n)",
    "network_r": "network–subject RDM similarity",
    "noise_ceiling_lower": "noise ceiling, lower",
    "noise_ceiling_upper": "noise ceiling, upper",
    "accuracy": "accuracy (proportion correct)",
    "confusion_r_to_network": "confusion r to the network",
    "confusion_r_to_others": "confusion r to the other subjects",
    "is_network": "network?",
    "cluster": "discriminable cluster",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "positive predictive value",
    "layer": "layer",
    "network_human_r": "network–human RDM similarity",
    "ci_subjects_low": "95 % CI over subjects, low",
    "ci_subjects_high": "95 % CI over subjects, high",
    "ci_stimuli_low": "95 % CI over stimuli, low",
    "ci_stimuli_high": "95 % CI over stimuli, high",
    "network_to_mean": "network to mean human RDM",
    "network_rank": "network rank",
    "p_value": "p (permutation, uncorrected)",
    "below_ceiling_p": "p (below the noise ceiling)",
    "cluster_significant": "cluster significant?",
    "cluster_accuracy": "cluster accuracy",
    "cluster_p": "cluster p (binomial)",
    "mse": "mean squared error",
    "n_trials": "trials (n)",
    "fold": "fold",
}

#: Result tables shown in full (in this order), with a sentence saying what they are.
_TABLES: dict[str, str] = {
    "units.tsv": "Per-unit decoding: mean over held-out subjects of the cross-validated r, its "
    "SE, the permutation p uncorrected and family-wise corrected over units (max statistic), "
    "and the resubstitution r used as the noise ceiling.",
    "power.tsv": "Detection rate per subsample size, with its 95 % binomial CI.",
    "subjects.tsv": "One row per subject.",
    "category_scores.tsv": "Category-decoding accuracy per held-out subject.",
    "confusion_per_category.tsv": "Sensitivity, specificity and positive predictive value per "
    "category, pooled over subjects.",
    "clusters.tsv": "Discriminable cluster of each unit.",
}

# Notes of tables whose meaning depends on the analysis: (analysis, file) -> note.
_KIND_TABLES: dict[tuple[str, str], str] = {
    ("searchlight", "clusters.tsv"): "Clusters of the group r map above the cluster-forming threshold: "
    "number of centres, cluster mass and its cluster-mass FWE p, the peak with its voxel and MNI "
    "coordinates and the shipped atlas regions containing it.",
}

_TITLES = {
    "encode": "Encoding: network units → voxels",
    "decode": "Decoding network units from voxels",
    "rsa": "RSA: the network as one more subject",
    "power": "Power analysis",
    "categorize": "Category decoding from voxels",
    "network-category-decoding": "Category decoding: the network among the subjects",
    "naturalistic_encoding": "Movie (naturalistic) encoding",
}

_CSS = """
body { font-family: Arial, Helvetica, 'DejaVu Sans', sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.1em; } h4 { font-size: 1em; margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
.scroll { overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 1.5em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.88em; color: #333; max-width: 60em; }
.banner { background: #fff3cd; border: 2px solid #D55E00; padding: 0.8em 1em; margin: 1em 0;
          font-weight: bold; }
.methods { background: #f7f9fc; border-left: 4px solid #0072B2; padding: 0.6em 1em; }
.meta, .skipped, .note { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 0.85em; }
"""

# ------------------------------------------------------------------ formatting


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _words(key: str) -> str:
    return str(key).replace("_", " ")


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return "n/a" if np.isnan(value) else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "; ".join(f"{_words(k)}: {_format(v)}" for k, v in value.items())
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)
    cls = ' class="num"' if numeric else ""
    return f"<td{cls}>{_esc(_format(value))}</td>"


def _key_value_table(items: Mapping[str, Any], css_class: str) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(v)}</tr>" for k, v in items.items())
    return f'<table class="{css_class}">{rows}</table>'


def _frame_table(frame: pd.DataFrame, css_class: str, max_rows: int = 60,
                 columns: Mapping[str, str] | None = None) -> str:
    names = {**_COLUMNS, **(columns or {})}
    head = "".join(f"<th>{_esc(names.get(str(c), _words(c)))}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        values = [v.item() if isinstance(v, np.generic) else v for v in row]
        body.append("<tr>" + "".join(_cell(v) for v in values) + "</tr>")
    note = ""
    if len(frame) > max_rows:
        note = f'<p class="meta">First {max_rows} of {len(frame)} rows.</p>'
    return (
        f'<div class="scroll"><table class="{css_class}"><tr>{head}</tr>'
        f"{''.join(body)}</table></div>{note}"
    )


def _summary_in_words(summary: Mapping[str, Any], kind: str = "") -> dict[str, Any]:
    labels = {**_LABELS, **_LABELS_BY_KIND.get(kind, {})}
    shown = {}
    for key, value in summary.items():
        if key in _HIDDEN_KEYS or isinstance(value, Mapping) and key not in ("ci", "noise_ceiling"):
            continue
        shown[labels.get(key, _words(key))] = value
    return shown


# ------------------------------------------------------- weights and simulated


def _weights(summary: Mapping[str, Any]) -> str | None:
    weights = (summary.get("provenance") or {}).get("weights")
    return None if weights is None else str(weights)


def _is_untrained(weights: str | None) -> bool:
    return weights is not None and weights.startswith("untrained")


def _is_simulated(summary: Mapping[str, Any]) -> bool:
    """True when the study is simulated (the embedded demo or brainnet simulate)."""
    study = (summary.get("provenance") or {}).get("study")
    if not isinstance(study, Mapping):
        return False
    if str(study.get("task", "")).lower() == "simulated":
        return True
    path = study.get("path")
    return bool(path) and (Path(str(path)) / "truth.json").is_file()


def _banners(runs: list[tuple[Path, dict[str, Any]]]) -> str:
    parts = []
    untrained = sorted({w for _, s in runs if _is_untrained(w := _weights(s))})
    if untrained:
        parts.append(
            '<div class="banner" id="untrained-banner">UNTRAINED WEIGHTS: results in this '
            f"report were computed with untrained EmoNet weights ({_esc(', '.join(untrained))}), "
            "a control model, not the trained EmoNet of Kragel et al. (2019). Rerun with "
            "--weights PATH (e.g. after brainnet fetch weights) for the real network.</div>"
        )
    simulated = [run for run, s in runs if _is_simulated(s)]
    if simulated:
        parts.append(
            '<div class="banner" id="simulated-banner">SIMULATED DATA: '
            f"{len(simulated)} of the {len(runs)} results in this report were computed on a "
            "simulated study (brainnet's embedded demo or brainnet simulate: procedural images "
            "and voxel responses with a planted signal), not on real fMRI. Pass --study DIR "
            "with your own study to analyse real data.</div>"
        )
    return "".join(parts)


# ------------------------------------------------------------------ methods


_REFERENCES = {
    "emonet": "Kragel, P. A., Reddan, M. C., LaBar, K. S., & Wager, T. D. (2019). Emotion "
    "schemas are embedded in the human visual system. Science Advances, 5(7), eaaw4358.",
    "nilearn": "Abraham, A., Pedregosa, F., Eickenberg, M., et al. (2014). Machine learning for "
    "neuroimaging with scikit-learn. Frontiers in Neuroinformatics, 8, 14.",
    "sklearn": "Pedregosa, F., et al. (2011). Scikit-learn: Machine learning in Python. Journal "
    "of Machine Learning Research, 12, 2825–2830.",
    "maxstat": "Nichols, T. E., & Holmes, A. P. (2002). Nonparametric permutation tests for "
    "functional neuroimaging: a primer with examples. Human Brain Mapping, 15(1), 1–25.",
    "fdr": "Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate. Journal "
    "of the Royal Statistical Society B, 57(1), 289–300.",
    "rsa": "Kriegeskorte, N., Mur, M., & Bandettini, P. (2008). Representational similarity "
    "analysis. Frontiers in Systems Neuroscience, 2, 4.",
    "ceiling": "Nili, H., Wingfield, C., Walther, A., et al. (2014). A toolbox for "
    "representational similarity analysis. PLoS Computational Biology, 10(4), e1003553.",
    "pls": "de Jong, S. (1993). SIMPLS: an alternative approach to partial least squares "
    "regression. Chemometrics and Intelligent Laboratory Systems, 18(3), 251–263.",
    "ridge": "Hoerl, A. E., & Kennard, R. W. (1970). Ridge regression: biased estimation for "
    "nonorthogonal problems. Technometrics, 12(1), 55–67.",
    "ward": "Ward, J. H. (1963). Hierarchical grouping to optimize an objective function. "
    "Journal of the American Statistical Association, 58(301), 236–244.",
}


def _mask_words(s: Mapping[str, Any]) -> str:
    """The region(s) of a run: the provenance's mask entry (one, or one per compared side) or the summary's."""
    entry = (s.get("provenance") or {}).get("mask")
    entries = entry if isinstance(entry, list) else [entry]
    names = [str(e.get("name")) for e in entries if isinstance(e, Mapping) and e.get("name")]
    return " and ".join(names) or str(s.get("mask") or "the")


def _method_sentence(kind: str, s: Mapping[str, Any], refs: list[str]) -> str:
    p = (s.get("provenance") or {}).get("parameters") or {}
    mask = _mask_words(s)
    layer = s.get("layer") or p.get("layer") or "?"
    n_perm = s.get("n_permutations")
    extra = _more_method_sentence(kind, s, refs, mask, layer, n_perm)
    if extra is not None:
        return extra
    if kind == "encode":
        refs += ["ridge", "maxstat"]
        return (
            f"Encoding (subject {s.get('subject', '?')}): the responses of each of "
            f"{s.get('n_voxels', '?')} voxels of the {mask} mask to {s.get('n_stimuli', '?')} "
            f"stimuli were predicted from the {s.get('n_units', '?')} units of layer {layer} with "
            f"{s.get('model', 'ridge')} regression (penalty chosen per voxel by "
            f"{p.get('inner', 'inner')} cross-validation within the training set), in "
            f"{s.get('cv', '?')}-fold cross-validation over stimuli; accuracy is the Pearson r "
            f"between observed and predicted responses. Each voxel's r was tested with "
            f"{n_perm} permutations of the stimulus order (model refitted for each), family-wise "
            f"error corrected over voxels with the maximum statistic."
        )
    if kind == "decode":
        refs += ["pls", "maxstat", "fdr", "ward"]
        return (
            f"Decoding: the {s.get('n_units', '?')} units of layer {layer} were predicted from "
            f"{s.get('n_voxels', '?')} voxels of the {mask} mask with PLS regression "
            f"({s.get('n_components', '?')} components) on the data of {s.get('n_subjects', '?')} "
            f"subjects × {s.get('n_stimuli', '?')} stimuli, in leave-one-subject-out "
            f"cross-validation; accuracy is the Pearson r between observed and predicted unit "
            f"activations in the held-out subject. Significance: {n_perm} permutations of the "
            f"stimulus-to-activation rows (model refitted), p corrected over units with the "
            f"maximum statistic. Voxel weights: {s.get('n_bootstrap', '?')} bootstrap resamples "
            f"of subjects, z = mean / SD, Benjamini–Hochberg FDR q < .05 per unit. Confusions "
            f"and discriminable clusters: Ward linkage on 1 − the symmetrised confusion matrix, "
            f"one-sided binomial test per cluster."
        )
    if kind == "rsa":
        refs += ["rsa", "ceiling", "maxstat"]
        return (
            f"RSA (layer {layer}): representational dissimilarity matrices ({s.get('rdm', '?')} "
            f"distance) of {s.get('n_stimuli', '?')} stimuli were computed from the "
            f"{s.get('n_voxels', '?')} voxels of each of {s.get('n_subjects', '?')} subjects and "
            f"from the network layer, and compared with {s.get('compare', '?')} correlation; the "
            f"network was ranked among the subjects as one more subject. Significance: "
            f"{n_perm} condition-label permutations (family-wise corrected over layers with the "
            f"maximum statistic); 95 % CIs from {s.get('n_bootstrap', '?')} bootstrap resamples of "
            f"subjects and of stimuli; noise ceiling as in Nili et al. (2014)."
        )
    if kind == "power":
        return (
            f"Power: {s.get('power_of', 'decoding')} of layer {layer} was repeated on "
            f"{s.get('n_repeats', '?')} random subsamples of {s.get('subject_sizes', '?')} "
            f"subjects ({s.get('model', '')}; {s.get('test', '')}, {n_perm} permutations, "
            f"α = {s.get('alpha', '?')}); power is the fraction of subsamples with a detection."
        )
    if kind == "categorize":
        refs += ["sklearn"]
        return (
            f"Category decoding: the {s.get('n_classes', '?')} stimulus categories were decoded "
            f"from {s.get('n_voxels', '?')} voxels of the {mask} mask with a "
            f"{s.get('model', '?')} classifier in {s.get('n_folds', '?')} participant-independent "
            f"folds ({s.get('n_subjects', '?')} subjects, {s.get('n_trials', '?')} trials); the "
            f"pooled accuracy was tested with {n_perm} permutations of the labels per "
            f"{s.get('permutation_unit', 'stimulus')}."
        )
    if kind == "network-category-decoding":
        return (
            f"Network category decoding: the same {s.get('classifier', '?')} classifier decoded "
            f"{s.get('n_classes', '?')} categories from each of {s.get('n_subjects', '?')} "
            f"subjects' voxel patterns and from layer {layer} ({s.get('n_folds', '?')} stimulus "
            f"folds stratified by category); the network's accuracy was ranked among the "
            f"subjects' and its confusion matrix correlated with theirs."
        )
    if kind == "naturalistic_encoding":
        refs += ["ridge"]
        return (
            f"Movie encoding: HRF-convolved frame features predicted {s.get('n_voxels', '?')} "
            f"voxels over {s.get('n_volumes', '?')} volumes with ridge regression in blocked "
            f"cross-validation with gaps; no permutation test."
        )
    return f"{_words(kind).capitalize()}: see the provenance below."


def _more_method_sentence(kind: str, s: Mapping[str, Any], refs: list[str], mask: str, layer: Any,
                          n_perm: Any) -> str | None:
    """Methods of the searchlight, variance partitioning and contrasts (None for other analyses)."""
    if kind == "searchlight":
        refs += ["maxstat"]
        if s.get("statistic") == "encoding":
            scored = (f"layer {layer} was encoded into each sphere's mean response with ridge regression "
                      f"({s.get('cv', '?')}-fold cross-validation over stimuli; per-fold Pearson r)")
        else:
            refs += ["rsa"]
            scored = (f"each sphere's correlation-distance RDM was compared with layer {layer}'s by "
                      f"{s.get('compare', '?')} correlation")
        return (
            f"Searchlight ({s.get('radius_mm', '?')} mm spheres around each of {s.get('n_centres', '?')} "
            f"centres of the {mask} mask, {s.get('n_subjects', '?')} subjects, "
            f"{s.get('n_conditions', '?')} stimuli): {scored}; the group map is the mean over subjects. "
            f"{n_perm} condition-label permutations shared by every sphere and subject gave voxelwise p, "
            f"maximum-statistic FWE p and cluster-mass FWE p (cluster-forming p {s.get('cluster_p', '?')})."
        )
    if kind == "partition":
        refs += ["maxstat"]
        spaces = ", ".join(str(x) for x in s.get("spaces") or []) or "?"
        return (
            f"Variance partitioning (subject {s.get('subject', '?')}, {s.get('n_voxels', '?')} voxels of the "
            f"{mask} mask, {s.get('n_stimuli', '?')} stimuli): banded ridge regression (one penalty per "
            f"feature space and voxel, himalaya) of the feature spaces {spaces}, jointly and leaving each out, "
            f"in {s.get('cv', '?')}-fold cross-validation over stimuli, gave each space's unique and the "
            f"shared cross-validated R²; each unique part was tested with {n_perm} permutations of that "
            f"space's rows, family-wise error corrected over voxels with the maximum statistic."
        )
    if kind.startswith("contrast-"):
        sides = [str(x) for x in s.get("sides") or []]
        named = " and ".join(sides) if sides else (mask if s.get("compared") == "mask" else "?")
        compared = ("regions " if s.get("compared") == "mask" else "layers ") + named
        value = str(s.get("statistic", "?")).removeprefix("per subject: ")
        return (
            f"Comparison of {compared} ({kind.split('-', 1)[1]}, {s.get('n_subjects', '?')} subjects): "
            f"the paired difference of a per-subject value ({value}) was tested by "
            f"swapping each subject's two sides ({s.get('n_flips', '?')} sign flips, "
            f"{'exact' if s.get('exact') else 'random'}; paired t; FWE over pairs by the maximum |t|, and "
            f"Holm); as a secondary test, {n_perm} stimulus relabellings applied to every side."
        )
    return None


def _methods(runs: list[tuple[Path, dict[str, Any]]]) -> str:
    refs: list[str] = []
    # one sentence per analysis, the layers of runs that differ only by layer joined
    grouped: dict[str, list[str]] = {}
    for run, summary in runs:
        layer = str(summary.get("layer") or "")
        marked = {**summary, "layer": "\x00"} if layer else summary
        sentence = _method_sentence(_analysis_kind(run, summary), marked, refs)
        grouped.setdefault(sentence, []).append(layer)
    sentences = []
    for sentence, layers in grouped.items():
        if len(layers) > 1:
            names = ", ".join(layers[:-1]) + " and " + layers[-1]
            sentence = sentence.replace("layer \x00", "layers " + names)
        sentences.append(sentence.replace("\x00", layers[0]))
    provenances = [s.get("provenance") or {} for _, s in runs]
    weights = sorted({str(p.get("weights")) for p in provenances if p.get("weights")})
    trained = [w for w in weights if not w.startswith("untrained")]
    untrained = [w for w in weights if w.startswith("untrained")]
    net = ""
    if weights:
        refs.insert(0, "emonet")
        net = (
            "Network activations were extracted from EmoNet (Kragel et al., 2019), an AlexNet "
            "retrained on 20 emotion categories"
            + (f", with weights {', '.join(trained)}" if trained else "")
            + (
                f"{' and' if trained else ', with'} untrained control weights ({', '.join(untrained)})"
                if untrained
                else ""
            )
            + ". "
        )
    studies = sorted(
        {
            (str((p.get("study") or {}).get("path")), str((p.get("study") or {}).get("files_sha256", ""))[:12])
            for p in provenances
            if isinstance(p.get("study"), Mapping)
        }
    )
    study_text = ""
    if studies:
        study_text = "Data: " + "; ".join(
            f"study {path}" + (f" (files sha256 {sha}…)" if sha else "") for path, sha in studies
        ) + ". "
    software: dict[str, str] = {}
    for p in provenances:
        for name, version in (p.get("software") or {}).items():
            software.setdefault(str(name), str(version))
    versions = sorted({str(p.get("brainnet_version")) for p in provenances if p.get("brainnet_version")})
    seeds = sorted({str(p.get("seed")) for p in provenances if p.get("seed") is not None})
    refs += ["nilearn", "sklearn"]
    software_text = (
        f"Analyses were run with brainnet {', '.join(versions) or brainnet_version()}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(software.items())) + ")" if software else "")
        + (f", random seed {', '.join(seeds)}" if seeds else "")
        + "; figures were drawn with nilearn and matplotlib."
    )
    unique_refs = list(dict.fromkeys(refs))
    references = "".join(f"<li>{_esc(_REFERENCES[r])}</li>" for r in unique_refs)
    return (
        '<section id="methods"><h2>Methods</h2><div class="methods">'
        f"<p>{_esc(net + study_text)}{' '.join(_esc(s) for s in sentences)} {_esc(software_text)}</p>"
        "</div>"
        '<p class="note">This paragraph was generated by brainnet from the provenance recorded '
        "with every result (parameters, data checksums, software versions). Check it against "
        "your design and adapt it for your paper; please cite:</p>"
        f"<ol class=\"references\">{references}</ol></section>"
    )


# ----------------------------------------------------------------- headline


def _headline(kind: str, s: Mapping[str, Any]) -> str:
    """The main result in one sentence (its meaning is in the words, per row)."""

    def n(v: Any) -> str:
        return _format(v)

    if kind == "encode":
        return (
            f"mean voxel encoding r = {n(s.get('mean_r'))} over {n(s.get('n_voxels'))} voxels; "
            f"{n(s.get('n_voxels_p_fwe_05'))} voxels with p_FWE < 0.05"
        )
    if kind == "decode":
        return (
            f"mean unit decoding r = {n(s.get('mean_r'))} over {n(s.get('n_units'))} units, "
            f"p = {n(s.get('p_value'))}; {n(s.get('n_units_p_fwe_05'))} units with p_FWE < 0.05"
        )
    if kind == "rsa":
        return (
            f"network–human RDM similarity = {n(s.get('network_human_r'))}, p = "
            f"{n(s.get('p_value'))}; rank {n(s.get('network_rank'))} of {n(s.get('network_rank_of'))}"
        )
    if kind == "power":
        return f"80 % power with {n(s.get('min_subjects_80'))} subjects"
    if kind == "categorize":
        return (
            f"category accuracy = {n(s.get('accuracy'))} (chance {n(s.get('chance'))}), "
            f"p = {n(s.get('p_value'))}"
        )
    if kind == "network-category-decoding":
        return (
            f"network accuracy = {n(s.get('network_accuracy'))}, mean human "
            f"{n(s.get('human_accuracy_mean'))} (chance {n(s.get('chance'))}); rank "
            f"{n(s.get('network_rank'))} of {n(s.get('network_rank_of'))}"
        )
    if kind == "naturalistic_encoding":
        return f"mean voxel encoding r = {n(s.get('mean_r'))}, largest {n(s.get('max_r'))}"
    return "see the section"


def _overview(results_dir: Path, runs: list[tuple[Path, dict[str, Any]]]) -> str:
    rows = []
    for run, summary in runs:
        kind = _analysis_kind(run, summary)
        rows.append(
            {
                "result": _run_label(results_dir, run),
                "analysis": _TITLES.get(kind, _words(kind)),
                "layer": summary.get("layer"),
                "subjects (n)": summary.get("n_subjects"),
                "stimuli (n)": summary.get("n_stimuli"),
                "voxels (n)": summary.get("n_voxels"),
                "main result": _headline(kind, summary),
                "network weights": _weights(summary),
            }
        )
    return _frame_table(pd.DataFrame(rows), "overview", max_rows=1000)


# -------------------------------------------------------------- per result


def _tsv_html(path: Path, heading: str, note: str, columns: Mapping[str, str] | None = None) -> str:
    try:
        table = _frame_table(_read_tsv(path), "data", columns=columns)
    except (OSError, ValueError) as exc:
        return f'<p class="skipped">{_esc(path.name)} unreadable: {_esc(exc)}</p>'
    return f'<h4>{_esc(heading)}</h4><p class="note">{_esc(note)}</p>{table}'


def _figure_html(out_dir: Path, entry: Mapping[str, Any]) -> str:
    png = out_dir / f"{entry['figure']}.png"
    try:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
    except OSError:
        return f'<p class="skipped">{_esc(png.name)} could not be read</p>'
    tables = ""
    for name, file in (entry.get("tables") or {}).items():
        heading = "Peaks and clusters" if name == "peaks" else _words(name)
        note = (
            "Peaks (sub-peaks at least 8 mm apart) of the clusters of the thresholded map "
            "(nilearn get_clusters_table), with MNI coordinates and the region of brainnet's "
            "shipped atlases (Juelich, Harvard-Oxford, AAL2) containing each peak."
            if name == "peaks"
            else ""
        )
        path = out_dir / file
        if path.exists():
            frame = _read_tsv(path)
            tables += (
                _tsv_html(path, heading, note)
                if not frame.empty
                else f'<h4>{_esc(heading)}</h4><p class="note">No voxel survives: no peak.</p>'
            )
    return (
        f'<figure id="fig-{_esc(entry["figure"])}"><img src="data:image/png;base64,{data}" '
        f'alt="{_esc(entry["figure"])}"><figcaption><b>{_esc(entry["figure"])}.</b> '
        f"{_esc(entry.get('caption', ''))}</figcaption></figure>{tables}"
    )


def _provenance_html(provenance: Mapping[str, Any]) -> str:
    if not provenance:
        return '<p class="meta">No provenance recorded.</p>'
    simple = {_words(k): v for k, v in provenance.items() if not isinstance(v, Mapping)}
    nested = {k: v for k, v in provenance.items() if isinstance(v, Mapping)}
    text = "".join(
        f"<h4>{_esc(_words(k))}</h4><pre>{_esc(json.dumps(v, indent=2, sort_keys=True, default=str))}</pre>"
        for k, v in nested.items()
    )
    return _key_value_table(simple, "provenance") + text


def _section(
    results_dir: Path,
    run: Path,
    summary: Mapping[str, Any],
    entries: list[Mapping[str, Any]],
    skipped: list[str],
) -> str:
    label = _run_label(results_dir, run)
    kind = _analysis_kind(run, summary)
    heading = _TITLES.get(kind, _words(kind).capitalize())
    if summary.get("layer"):
        heading += f", layer {summary['layer']}"
    out_dir = results_dir / "figures"
    figures = "".join(_figure_html(out_dir, e) for e in entries)
    skipped_html = "".join(f'<p class="skipped">{_esc(s)}</p>' for s in skipped)
    weights = _weights(summary)
    banner = ""
    if _is_untrained(weights):
        banner = f'<p class="banner">Computed with untrained network weights ({_esc(weights)}).</p>'
    if _is_simulated(summary):
        banner += '<p class="banner">Computed on simulated data, not real fMRI.</p>'
    own_columns = {"cluster": "cluster"} if kind == "searchlight" else None
    tables = "".join(
        _tsv_html(run / name, _words(name.removesuffix(".tsv")).capitalize(),
                  f"{_KIND_TABLES.get((kind, name), note)} ({name})", own_columns)
        for name, note in _TABLES.items()
        if (run / name).exists()
    )
    return (
        f'<section class="run" id="{_esc(label)}"><h2>{_esc(heading)}</h2>'
        f'<p class="meta">Folder: {_esc(run.relative_to(results_dir))}</p>'
        f"{banner}<h3>Results</h3><p><b>{_esc(_headline(kind, summary))}.</b></p>"
        f"{_key_value_table(_summary_in_words(summary, kind), 'summary')}{tables}"
        f"<h3>Figures</h3>{figures or '<p class=meta>No figures.</p>'}{skipped_html}"
        f"<details><summary>Provenance (parameters, data checksums, software)</summary>"
        f"{_provenance_html(summary.get('provenance') or {})}</details></section>"
    )


def _layers_section(
    results_dir: Path, path: Path, entries: list[Mapping[str, Any]], skipped: list[str]
) -> str:
    label = _run_label(results_dir, path.parent) + "_rsa-layers"
    try:
        table = _frame_table(_read_tsv(path), "layers")
    except (OSError, ValueError) as exc:
        table = f'<p class="skipped">{_esc(path.name)} unreadable: {_esc(exc)}</p>'
    figures = "".join(_figure_html(results_dir / "figures", e) for e in entries)
    skipped_html = "".join(f'<p class="skipped">{_esc(s)}</p>' for s in skipped)
    return (
        f'<section class="run" id="{_esc(label)}"><h2>RSA across layers</h2>'
        '<p class="note">One row per layer: network–human RDM similarity, its 95 % bootstrap '
        "CIs over subjects and over stimuli, the permutation p (uncorrected and family-wise "
        "corrected over layers) and the noise ceiling.</p>"
        f"{table}{figures}{skipped_html}</section>"
    )


def write_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write one self-contained HTML page describing the results in ``results_dir``.

    Parameters
    ----------
    results_dir : str or Path
        The ``--out`` folder of one or more brainnet analyses.
    out : str or Path, optional
        Where to write the page (default ``<results_dir>/report.html``).

    Returns
    -------
    Path
        The written HTML file. It embeds every figure (base64 PNG) and needs
        no server or network: open it with any browser.

    Notes
    -----
    Figures come from ``<results_dir>/figures/``: those already there and
    up to date (same source file, brainnet version and figure code) are
    reused; the others are drawn and saved there (PNG) first. Figures whose
    inputs are missing are listed as skipped on the page (and warned as
    :class:`~brainnet.plotting.FigureSkipped`); the rest of the page is
    still written.
    """
    from brainnet.errors import input_error

    results_dir = _check_results_dir(results_dir)
    runs = _find_runs(results_dir)
    layer_files = [
        p for p in sorted(results_dir.rglob("rsa-layers.tsv"))
        if "figures" not in p.relative_to(results_dir).parts
    ]
    if not runs and not layer_files:
        raise input_error(
            results_dir,
            "holds no complete brainnet results (no summary.json with complete: true)",
            "run an analysis (e.g. brainnet decode --out DIR) first and pass that DIR",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FigureSkipped)
        if _figure_jobs(results_dir):  # results of analyses without figures: tables only
            make_figures(results_dir, formats=("png",), reuse=True)
    for w in caught:
        if issubclass(w.category, FigureSkipped):
            warnings.warn(w.message, FigureSkipped, stacklevel=2)  # passed on for the CLI
    manifest = read_json(results_dir / "figures" / "figures.json")
    entries = [e for e in manifest.get("figures") or [] if isinstance(e, dict)]
    skipped = [e for e in manifest.get("skipped") or [] if isinstance(e, dict)]

    def of(prefix: str, items: list[dict]) -> list[dict]:
        return [e for e in items if str(e.get("figure", "")).startswith(prefix + "_")]

    sections = []
    for run, summary in runs:
        label = _run_label(results_dir, run)
        mine = [e for e in of(label, entries) if e.get("source") == str(run.relative_to(results_dir))]
        gone = [str(e.get("reason")) for e in of(label, skipped)]
        sections.append(_section(results_dir, run, summary, mine, gone))
    for path in layer_files:
        name = _run_label(results_dir, path.parent) + "_rsa-layers"
        mine = [e for e in entries if e.get("figure") == name]
        gone = [str(e.get("reason")) for e in skipped if e.get("figure") == name]
        sections.append(_layers_section(results_dir, path, mine, gone))
    toc = "".join(
        f'<li><a href="#{_esc(_run_label(results_dir, run))}">'
        f"{_esc(_TITLES.get(_analysis_kind(run, s), _words(_analysis_kind(run, s))))} "
        f"({_esc(_run_label(results_dir, run))})</a></li>"
        for run, s in runs
    )
    title = f"brainnet report: {results_dir.resolve().name}"
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        f'<p class="meta">Written {_esc(created)} by brainnet {_esc(brainnet_version())} '
        f"from {_esc(results_dir.resolve())}.</p>"
        f"{_banners(runs)}{_methods(runs) if runs else ''}"
        f"<h2>Overview</h2>{_overview(results_dir, runs)}"
        f'<nav><ul class="toc">{toc}</ul></nav>'
        f"{''.join(sections)}</body></html>\n"
    )
    out = results_dir / "report.html" if out is None else Path(out)
    return atomic_write_text(out, page)
