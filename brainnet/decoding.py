"""Group decoding of network units from brain patterns (Kragel et al. 2019, Fig. 4).

PLS regression predicts a layer's unit activations for each stimulus from the
stimulus's voxel pattern. The rows of all subjects are pooled (each row's
target is its stimulus's unit activations) and cross-validation leaves one
subject out. Per held-out subject and unit the score is Pearson r (and MSE)
across that subject's stimuli.

Inference
---------
- Permutation test: one permutation of the stimulus -> unit-activation rows
  is applied in every subject (the paper's 10,000 shuffles of the fc8 rows);
  the model is refitted on every training fold for every permutation. The
  batched sample-space PLS of :class:`brainnet.pls.CrossValidatedPLS` makes
  this exact refit cheap. p for the mean r, per-unit p and max-statistic
  family-wise corrected p over units.
- Noise ceiling: cross-validated mean r / resubstitution mean r (a model fit
  on all subjects, scored on its own training rows), as in the paper.
- Bootstrap of the PLS coefficients: **subjects** are resampled with
  replacement (the unit of generalisation of a group model; resampling
  pooled trials would treat trials of one subject as independent) and the
  model is refitted on all rows of the drawn subjects. z = mean / SD of each
  coefficient, normal-approximation two-sided p, Benjamini–Hochberg FDR over
  the voxels of each unit's map; maps with q < .05 are kept.
- PCA of the bootstrap-mean coefficient maps (voxels as observations, units
  as variables) summarises which units share spatial weights (Fig. 4A/B).

Repeats of a stimulus within a subject are averaged first, so a subject
contributes one row per stimulus (the paper had one trial per image).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from brainnet import _defaults
from brainnet._display import Record
from brainnet.errors import BrainnetError

if TYPE_CHECKING:
    from brainnet.features import Features

__all__ = [
    "DEFAULT_COMPONENTS",
    "DEFAULT_PERMUTATIONS",
    "DEFAULT_BOOTSTRAP",
    "MAX_UNITS",
    "DecodingResult",
    "unit_decoding",
    "decode_units",
]

DEFAULT_COMPONENTS = _defaults.DECODE_COMPONENTS
DEFAULT_PERMUTATIONS = _defaults.DECODE_PERMUTATIONS
DEFAULT_BOOTSTRAP = _defaults.DECODE_BOOTSTRAP
DEFAULT_CLUSTER_DRAWS = _defaults.DECODE_CLUSTER_DRAWS
#: How ``se_r`` and ``cohens_d`` are defined, and why they are not the test.
PAPER_STYLE_CAVEAT = (
    "paper-style, not a test: SE and d = mean / SD (ddof=1) of the held-out subjects' mean r, measured "
    "against 0 and treating held-out subjects as independent; they are not (every fold shares most training "
    "subjects and all subjects saw the same stimuli, so chance is the permutation null mean, not 0). "
    "Use effect_vs_null and p_value"
)
MAX_UNITS = 1024  # the permutation fast path eigendecomposes (n_units, n_units) matrices
_MEMORY_BUDGET = 1 << 30  # bytes of working arrays per permutation batch


@dataclass(repr=False)
class DecodingResult(Record):
    """Result of :func:`unit_decoding` / :func:`decode_units`.

    Attributes
    ----------
    summary : dict
        ``mean_r``, ``p_value``, ``null_mean_r``, ``null_sd_r``,
        ``effect_vs_null`` (= (mean_r - null_mean_r) / null_sd_r), the
        paper-style ``se_r`` and ``cohens_d`` (see :data:`PAPER_STYLE_CAVEAT`),
        ``noise_ceiling``, ... (summary.json).
    unit_scores : DataFrame
        One row per held-out subject and unit: ``subject``, ``unit``, ``r``, ``mse``.
    units : DataFrame
        One row per unit: ``unit``, ``mean_r``, ``se_r``, ``p``, ``p_fwe``,
        ``resubstitution_r`` and, with permutations, ``null_mean_r``,
        ``null_sd_r``, ``effect_vs_null``.
    predictions : list of ndarray of shape (n_stimuli_s, n_units)
        Cross-validated predictions of each held-out subject's stimuli.
    observed : list of ndarray of shape (n_stimuli_s, n_units)
        The true unit activations of those stimuli.
    stimulus_ids : list of tuple of str
        Row order of ``predictions`` per subject.
    null : ndarray of shape (n_permutations, 1 + n_units)
        Permutation null: column 0 the mean r, then each unit's mean r.
    coef : ndarray of shape (n_units, n_voxels)
        PLS coefficients of the model fit on all subjects.
    bootstrap_z, bootstrap_q : ndarray of shape (n_units, n_voxels) or None
        Bootstrap z of the coefficients and FDR q-values (per unit map).
    pca : dict or None
        ``explained_variance_ratio`` (n_pcs,), ``loadings`` (n_pcs, n_units),
        ``scores`` (n_pcs, n_voxels) of the bootstrap-mean coefficients.
    confusion : brainnet.confusion.ConfusionResult or None
    path : Path or None
        Folder the result was written to.
    """

    summary: dict[str, Any]
    unit_scores: pd.DataFrame
    units: pd.DataFrame
    predictions: list[np.ndarray]
    observed: list[np.ndarray]
    stimulus_ids: list[tuple[str, ...]]
    null: np.ndarray
    coef: np.ndarray
    bootstrap_z: np.ndarray | None = None
    bootstrap_q: np.ndarray | None = None
    pca: dict[str, np.ndarray] | None = None
    confusion: Any = None
    path: Path | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """Per-unit table (``units``): mean r, its standard error, p and FWE p."""
        return self.units

    def plot(self) -> list[Any]:
        """Decoding accuracy per unit (main), then the confusion matrix when one was computed."""
        from brainnet.plotting import plot_unit_scores

        r = self.unit_scores.pivot(index="subject", columns="unit", values="r")[list(self.units["unit"])]
        figures = [plot_unit_scores(r.to_numpy(), list(self.units["unit"]), p_values=self.units["p_fwe"],
                                    p_label="p (FWE)", title="unit decoding accuracy")]
        if self.confusion is not None:
            figures += self.confusion.plot()
        return figures

    def write(self, resultdir: Any, masker: Any = None) -> Path:
        """Write every table, map and summary.json (last) into a :class:`~brainnet.results.ResultDir`.

        Given a folder instead, write the record itself (see :meth:`read`).
        """
        from brainnet.results import ResultDir

        if not isinstance(resultdir, ResultDir):
            return super().write(resultdir)
        resultdir.write_tsv("unit_scores.tsv", self.unit_scores)
        resultdir.write_tsv("units.tsv", self.units)
        arrays = {f"predicted_{i:03d}": p for i, p in enumerate(self.predictions)}
        resultdir.write_npz(
            "decoding.npz",
            null=self.null,
            coef=self.coef.astype(np.float32),
            subjects=np.asarray(self.unit_scores["subject"].unique(), dtype=str),
            units=np.asarray(self.units["unit"], dtype=str),
            **arrays,
        )
        if self.pca is not None:
            unit_names = list(self.units["unit"])
            table = pd.DataFrame(self.pca["loadings"], columns=unit_names)
            table.insert(0, "explained_variance_ratio", self.pca["explained_variance_ratio"])
            table.insert(0, "component", np.arange(1, table.shape[0] + 1))
            resultdir.write_tsv("bootstrap_pca.tsv", table)
        if masker is not None and self.bootstrap_z is not None:
            z = np.nan_to_num(self.bootstrap_z).astype(np.float32)
            kept = np.where(self.bootstrap_q < 0.05, z, 0.0).astype(np.float32)
            resultdir.write_nifti("weights_z.nii.gz", masker.inverse_transform(z))
            resultdir.write_nifti("weights_z_fdr05.nii.gz", masker.inverse_transform(kept))
            if self.pca is not None:
                scores = self.pca["scores"].astype(np.float32)
                resultdir.write_nifti("bootstrap_pca.nii.gz", masker.inverse_transform(scores))
        if self.confusion is not None:
            self.confusion.write(resultdir)
        resultdir.finish(self.summary)
        self.path = resultdir.path
        return resultdir.path


# -- validation ----------------------------------------------------------------


def _check_inputs(patterns, stimulus_ids, features, feature_ids, subjects, n_components):
    if len(patterns) != len(stimulus_ids):
        raise BrainnetError(
            f"got {len(patterns)} pattern arrays but {len(stimulus_ids)} stimulus id lists; give one per subject"
        )
    if len(patterns) < 3:
        raise BrainnetError(
            f"decoding needs at least 3 subjects for leave-one-subject-out cross-validation; got {len(patterns)}"
        )
    subjects = [f"{i + 1:02d}" for i in range(len(patterns))] if subjects is None else [str(s) for s in subjects]
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] != len(feature_ids):
        raise BrainnetError(
            f"features have shape {feats.shape}; expected (n_stimuli={len(feature_ids)}, n_units)"
        )
    if not np.all(np.isfinite(feats)):
        raise BrainnetError("features contain NaN or Inf; extract them again or clean the features file")
    index = {str(s): i for i, s in enumerate(feature_ids)}
    n_voxels = np.asarray(patterns[0]).shape[1]
    rows = []
    for label, pat, ids in zip(subjects, patterns, stimulus_ids, strict=True):
        pat = np.asarray(pat)
        if pat.ndim != 2 or pat.shape[1] != n_voxels or pat.shape[0] != len(ids):
            raise BrainnetError(
                f"sub-{label}: patterns of shape {pat.shape} do not match {len(ids)} stimuli x {n_voxels} voxels"
            )
        missing = [s for s in ids if str(s) not in index]
        if missing:
            raise BrainnetError(f"sub-{label}: no features for stimuli {missing[:3]}; the features must cover every stimulus")
        if len(ids) < 3:
            raise BrainnetError(
                f"sub-{label}: {len(ids)} stimuli; per-subject correlations need at least 3 stimuli"
            )
        rows.append(np.array([index[str(s)] for s in ids], dtype=np.intp))
    n_train = sum(len(r) for r in rows) - max(len(r) for r in rows)
    if not 1 <= n_components <= min(n_train, n_voxels):
        from brainnet._checks import ParameterError

        most = min(n_train, n_voxels)
        raise ParameterError(
            "n_components", n_components,
            f"must be between 1 and {most} (training rows and voxels of the smallest fold)",
            "pass {} or fewer", examples=(most,),
        )
    return subjects, feats, rows


def _unit_names(layer: str, n_units: int, provenance: dict | None = None) -> list[str]:
    names = (provenance or {}).get("units")
    if isinstance(names, list | tuple) and len(names) == n_units:
        return [str(n) for n in names]
    if layer == "fc8" and n_units == 20:
        from brainnet.models.emonet import EMOTIONS

        return list(EMOTIONS)
    return [f"{layer}_{i:04d}" for i in range(n_units)]


# -- scores --------------------------------------------------------------------


def _subject_r(pred: np.ndarray, obs: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    """Pearson r per subject and unit, (B, n_subjects, n_units), for batched rows (B, n, q)."""
    from brainnet.stats import pearson_columns

    return np.stack([pearson_columns(pred[:, b], obs[:, b], axis=1) for b in blocks], axis=1)


def _statistic(cv, features, rows_all, blocks, basis=None):
    """Batched statistic for the engine: [mean r, mean r per unit] for each permutation.

    With a ``basis`` (see :func:`_unit_basis`) the PLS runs on the layer's
    coordinates in that basis and its predictions are mapped back to units.
    """
    fitted = features if basis is None else features @ basis

    def statistic(perms: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # permuted (null) responses often need all 500 power iterations, as in scikit-learn
            warnings.simplefilter("ignore", ConvergenceWarning)
            pred = cv.predict_permuted(fitted, rows_all, perms)
        if basis is not None:
            pred = pred @ basis.T
        obs = features[perms][:, rows_all]
        r = _subject_r(pred, obs, blocks)
        with np.errstate(invalid="ignore"), _quiet_nan():
            per_unit = np.nanmean(r, axis=1)
            overall = np.nanmean(per_unit, axis=1)
        return np.concatenate([overall[:, None], per_unit], axis=1)

    return statistic


class _quiet_nan:
    """Silence numpy's "mean of empty slice" for units that are constant everywhere."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _batch_size(n_rows: int, n_units: int) -> int:
    per_perm = (n_rows * n_units * 4 + n_units**2 * 8) * 8  # (n, q) and (q, q) float64 working arrays
    return int(np.clip(_MEMORY_BUDGET // max(per_perm, 1), 1, 64))


def _unit_basis(feats: np.ndarray, scale: bool) -> np.ndarray:
    """Orthonormal basis ``(n_units, k)`` of the span of the layer's stimulus rows.

    A layer with more units than stimuli (fc6, fc7: 4,096 units for 112 images)
    spans at most ``n_stimuli`` dimensions. Every training target of every fold
    (rows of ``features`` and their means) lies in that span, and centred PLS
    depends on the targets only through rotation-invariant products, so PLS
    on the ``k`` coordinates, mapped back by ``basis.T``, gives the per-unit
    predictions of PLS on all units (to the power method's tolerance) while
    its permutation path works on ``k x k`` instead of ``n_units x n_units``
    matrices. Per-unit scaling would break the rotation invariance.
    """
    n_units = feats.shape[1]
    if scale:
        raise BrainnetError(
            f"the layer has {n_units} units; with --scale unit decoding supports at most {MAX_UNITS}: "
            "decode it without --scale (centring only, as the paper's plsregress)"
        )
    _, s, vt = np.linalg.svd(feats, full_matrices=False)
    keep = s > (s[0] if s.size else 0.0) * max(feats.shape) * np.finfo(np.float64).eps
    if not keep.any():
        raise BrainnetError(f"the layer's {n_units} units are zero for every stimulus; nothing to decode: check the features")
    if keep.sum() > MAX_UNITS:
        raise BrainnetError(
            f"the layer has {n_units} units spanning {int(keep.sum())} dimensions over these stimuli; unit decoding "
            f"supports at most {MAX_UNITS}: reduce the layer first, e.g. to its first principal components, "
            "and pass them with --features"
        )
    return vt[keep].T


# -- bootstrap -----------------------------------------------------------------


def _bootstrap_statistic(x0, gram, features, rows, blocks, n_components, scale):
    """Batched statistic: PLS coefficients (n_units, n_voxels) refitted on resampled subjects."""
    from brainnet.pls import _center_scale, _fit_dual, _Gram

    def fit(draw: np.ndarray) -> np.ndarray:
        idx = np.concatenate([blocks[s] for s in draw])
        y = features[rows[idx]]
        y_mean, y_std = _center_scale(y, scale)
        y0 = ((y - y_mean) / y_std)[None]
        if scale:
            x_mean, x_std = _center_scale(x0[idx], True)
            xs = (x0[idx] - x_mean) / x_std
            kernel = xs @ xs.T
        else:
            g = gram[np.ix_(idx, idx)]
            col = g.mean(axis=0)
            kernel = g - col[:, None] - col[None, :] + col.mean()
            xs, x_std = x0[idx], 1.0
        dual, _ = _fit_dual(_Gram(kernel=kernel), y0, n_components, 500, 1e-6)
        # dual columns sum to zero, so x0 (centred over all rows) gives the same coefficients
        coef = (xs.T @ dual[0]) * y_std
        return (coef / np.reshape(x_std, (-1, 1))).T.astype(np.float32)

    def statistic(draws: np.ndarray) -> np.ndarray:
        return np.stack([fit(d) for d in draws])

    return statistic


def _bootstrap_maps(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z = mean / SD over draws, two-sided normal p -> BH q per unit map; and the mean map."""
    from scipy.stats import norm

    from brainnet.stats import fdr_bh

    mean = boot.mean(axis=0, dtype=np.float64)
    sd = boot.std(axis=0, ddof=1, dtype=np.float64)
    z = np.divide(mean, sd, out=np.zeros_like(mean), where=sd > 0)
    p = 2.0 * norm.sf(np.abs(z))
    q = np.stack([fdr_bh(row) for row in p])
    return z, q, mean


def _pca(coef_map: np.ndarray) -> dict[str, np.ndarray]:
    """PCA of a (n_units, n_voxels) coefficient map: voxels are observations, units variables."""
    data = coef_map.T - coef_map.T.mean(axis=0)
    u, s, vt = np.linalg.svd(data, full_matrices=False)
    var = s**2
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    # sign: largest loading positive, so maps are reproducible across runs
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return {
        "explained_variance_ratio": ratio,
        "loadings": vt * signs[:, None],
        "scores": (u * s * signs).T,
    }


# -- the analysis on arrays ----------------------------------------------------


def unit_decoding(
    patterns: Sequence[np.ndarray],
    stimulus_ids: Sequence[Sequence[str]],
    features: np.ndarray,
    feature_ids: Sequence[str],
    *,
    subjects: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
    n_components: int = DEFAULT_COMPONENTS,
    scale: bool = False,
    algorithm: str = "nipals",
    n_permutations: int = DEFAULT_PERMUTATIONS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    confusion: bool = True,
    n_cluster_draws: int = DEFAULT_CLUSTER_DRAWS,
    seed: int = 0,
    n_jobs: int = 1,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> DecodingResult:
    """Leave-one-subject-out PLS decoding of network units from voxel patterns.

    Parameters
    ----------
    patterns : list of ndarray of shape (n_stimuli_s, n_voxels)
        One array per subject (repeats already averaged), same voxels.
    stimulus_ids : list of sequences of str
        The stimulus of each row of ``patterns[s]``.
    features : ndarray of shape (n_stimuli, n_units)
        The layer's unit activations, rows in ``feature_ids`` order.
    feature_ids : sequence of str of length n_stimuli
    subjects, units : sequence of str, optional
        Labels for the tables (default ``01, 02, ...`` and ``unit_0000, ...``).
    n_components : int
        PLS components (paper: 10).
    scale : bool
        Scale voxels and units to unit variance (default: centre only, like
        MATLAB's ``plsregress`` used in the paper).
    algorithm : {"nipals", "simpls"}
        ``"simpls"``: MATLAB's ``plsregress`` (the paper's; tested against
        GNU Octave's) for the cross-validated predictions, the permutations
        and the resubstitution ceiling. ``"nipals"`` (default): scikit-learn's
        ``PLSRegression``, kept as the default because every output of
        ``decode`` (bootstrap maps included, which always use NIPALS) is
        tested equal to scikit-learn refits; the two differ after the first
        component when there are several units.
    n_permutations : int
        Permutations of the stimulus -> unit rows (same in every subject).
    n_bootstrap : int
        Subject bootstrap samples of the PLS coefficients (0: skip).
    confusion : bool
        Run :func:`brainnet.confusion.confusion_analysis` on the predictions.
    n_cluster_draws : int
        Bootstrap samples and permutations of the discriminable-cluster count.
    seed : int
    n_jobs : int
        Threads for permutation batches (results do not depend on it).
    checkpoint_dir : path, optional
        Checkpoints for resumable permutation runs.

    Returns
    -------
    DecodingResult
    """
    from brainnet.permutation import bootstrap_distribution, max_stat_p_values, permutation_test
    from brainnet.pls import CrossValidatedPLS, KernelPLS, simpls
    from brainnet.stats import cohens_d, null_effect, standard_error

    subjects, feats, rows = _check_inputs(patterns, stimulus_ids, features, feature_ids, subjects, n_components)
    from brainnet._checks import check_options

    check_options(n_permutations=n_permutations, n_bootstrap=n_bootstrap)
    n_units = feats.shape[1]
    basis = _unit_basis(feats, scale) if n_units > MAX_UNITS else None
    skipped = []
    if basis is not None:
        # Per-unit bootstrap maps (n_units x n_voxels per sample) and a units x units confusion
        # matrix do not fit a layer this wide.
        skipped = [name for name, on in (("bootstrap maps", n_bootstrap > 0), ("confusion analysis", confusion)) if on]
        n_bootstrap, confusion = 0, False
        if skipped:
            from brainnet.errors import notice

            notice(f"{n_units} units (> {MAX_UNITS}): decoded through their {basis.shape[1]}-dimensional span; "
                   f"{' and '.join(skipped)} skipped")
    units = [f"unit_{i:04d}" for i in range(n_units)] if units is None else [str(u) for u in units]
    if len(units) != n_units:
        raise BrainnetError(f"got {len(units)} unit names for {n_units} units")
    x = np.concatenate([np.asarray(p, dtype=np.float64) for p in patterns])
    rows_all = np.concatenate(rows)
    sizes = np.cumsum([0] + [len(r) for r in rows])
    blocks = [np.arange(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    groups = np.repeat(np.arange(len(rows)), np.diff(sizes))

    cv = CrossValidatedPLS(x, groups, n_components, scale=scale, algorithm=algorithm)
    identity = np.arange(feats.shape[0])[None]
    fitted = feats if basis is None else feats @ basis  # the targets PLS fits
    pred = cv.predict_permuted(fitted, rows_all, identity)[0]
    if basis is not None:
        pred = pred @ basis.T
    obs = feats[rows_all]
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    test = permutation_test(
        _statistic(cv, feats, rows_all, blocks, basis),
        feats.shape[0],
        n_permutations=n_permutations,
        seed=seed,
        batch_size=_batch_size(x.shape[0], n_units),
        n_jobs=n_jobs,
        checkpoint=None if ckpt is None else ckpt / "decoding_null.npz",
        progress=progress,
    )
    r = _subject_r(pred[None], obs[None], blocks)[0]  # (n_subjects, n_units)
    mse = np.stack([((pred[b] - obs[b]) ** 2).mean(axis=0) for b in blocks])
    with _quiet_nan():
        subject_mean = np.nanmean(r, axis=1)
        if algorithm == "simpls":
            resub_coef, resub_icpt = simpls(x, fitted[rows_all], n_components)
            resub_fit = x @ resub_coef + resub_icpt
            resub_coef = resub_coef.T
        else:
            resub = KernelPLS(n_components, scale=scale).fit(x, fitted[rows_all])
            resub_fit, resub_coef = resub.predict(x), resub.coef_
        resub_pred = resub_fit if basis is None else resub_fit @ basis.T
        r_resub = _subject_r(resub_pred[None], obs[None], blocks)[0]
        resub_unit = np.nanmean(r_resub, axis=0)
        mean_resub = float(np.nanmean(r_resub))
    mean_r = float(np.nanmean(subject_mean))
    ceiling = mean_r / mean_resub if mean_resub > 0 else None
    p_units = test.p_value[1:]
    p_fwe = max_stat_p_values(test.observed[1:], test.null[:, 1:]) if n_permutations else np.full(n_units, np.nan)

    boot_z = boot_q = pca = None
    coef = resub_coef if basis is None else basis @ resub_coef
    if n_bootstrap:
        x0 = x - x.mean(axis=0)
        gram = None if scale else x0 @ x0.T
        boot = bootstrap_distribution(
            _bootstrap_statistic(x0, gram, feats, rows_all, blocks, n_components, scale),
            len(blocks),
            n_bootstrap=n_bootstrap,
            seed=seed,
            batch_size=8,
            n_jobs=n_jobs,
            progress=progress,
        )
        boot_z, boot_q, boot_mean = _bootstrap_maps(boot)
        del boot
        pca = _pca(boot_mean)

    unit_scores = pd.DataFrame(
        {
            "subject": np.repeat(subjects, n_units),
            "unit": np.tile(units, len(subjects)),
            "r": r.ravel(),
            "mse": mse.ravel(),
        }
    )
    with _quiet_nan():
        unit_table = pd.DataFrame(
            {
                "unit": units,
                "mean_r": np.nanmean(r, axis=0),
                "se_r": standard_error(r, axis=0),
                "p": p_units,
                "p_fwe": p_fwe,
                "resubstitution_r": resub_unit,
            }
        )
    if n_permutations > 1:
        unit_null = test.null[:, 1:]
        with _quiet_nan(), np.errstate(invalid="ignore", divide="ignore"):
            unit_table["null_mean_r"] = np.nanmean(unit_null, axis=0)
            unit_table["null_sd_r"] = np.nanstd(unit_null, axis=0, ddof=1)
            unit_table["effect_vs_null"] = (unit_table["mean_r"] - unit_table["null_mean_r"]) / unit_table["null_sd_r"]
    effect = null_effect(mean_r, test.null[:, 0] if n_permutations else [])
    predictions = [pred[b] for b in blocks]
    observed = [obs[b] for b in blocks]
    summary = {
        "analysis": "decoding",
        "model": "pls",
        "algorithm": algorithm,
        "bootstrap_algorithm": "nipals",
        "n_components": n_components,
        "scale": scale,
        "cv": "leave-one-subject-out",
        "n_subjects": len(subjects),
        "n_stimuli": int(feats.shape[0]),
        "n_rows": int(x.shape[0]),
        "n_voxels": int(x.shape[1]),
        "n_units": n_units,
        "mean_r": mean_r,
        "p_value": float(test.p_value[0]) if n_permutations else None,
        "test": "permutation: mean r over subjects and units; stimulus -> unit rows shuffled, model refitted",
        "n_permutations": n_permutations,
        "null_mean_r": effect["null_mean"],
        "null_sd_r": effect["null_sd"],
        "effect_vs_null": effect["effect"],
        "se_r": float(standard_error(subject_mean)),
        "cohens_d": float(cohens_d(subject_mean)),
        "se_r_and_cohens_d": PAPER_STYLE_CAVEAT,
        "n_units_p_fwe_05": int(np.sum(p_fwe < 0.05)),
        "noise_ceiling": ceiling,
        "resubstitution_r": mean_resub,
        "n_bootstrap": n_bootstrap,
        "bootstrap_unit": "subject",
        "unit_span": None if basis is None else int(basis.shape[1]),
        "skipped": skipped,
        "n_voxels_fdr05": None if boot_q is None else int(np.sum(boot_q < 0.05)),
    }
    result = DecodingResult(
        summary=summary,
        unit_scores=unit_scores,
        units=unit_table,
        predictions=predictions,
        observed=observed,
        stimulus_ids=[tuple(np.asarray(feature_ids)[r_].tolist()) for r_ in rows],
        null=test.null,
        coef=coef,
        bootstrap_z=boot_z,
        bootstrap_q=boot_q,
        pca=pca,
    )
    if confusion:
        _add_confusion(result, units, n_cluster_draws, seed, n_jobs, ckpt)
    return result


def _add_confusion(result: DecodingResult, units, n_draws: int, seed: int, n_jobs: int, ckpt) -> None:
    """The one place that calls the confusion / discriminable-cluster analysis."""
    from brainnet.confusion import confusion_analysis

    conf = confusion_analysis(
        result.predictions,
        result.observed,
        units,
        n_bootstrap=n_draws,
        n_permutations=n_draws,
        seed=seed,
        n_jobs=n_jobs,
        checkpoint_dir=ckpt,
    )
    result.confusion = conf
    keys = ("sensitivity", "sensitivity_sd", "specificity", "specificity_sd", "ppv", "ppv_sd",
            "n_clusters", "cluster_ci", "cluster_p", "cluster_test", "cluster_null_mean", "cluster_null_sd",
            "cluster_effect_vs_null", "cluster_method", "n_clusters_heldout", "clusters_heldout_k", "chance")
    result.summary.update({k: conf.summary.get(k) for k in keys})


# -- the study-level entry point -----------------------------------------------


def decode_units(
    study=None,
    *,
    layer: str = "fc8",
    subjects: Sequence[str] | None = None,
    n_components: int = DEFAULT_COMPONENTS,
    scale: bool = False,
    algorithm: str = "nipals",
    mask: str | Path = "occipital",
    features: str | Path | Features | None = None,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    network=None,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_cluster_draws: int = DEFAULT_CLUSTER_DRAWS,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> DecodingResult:
    """Decode a layer's units from all subjects' patterns (``brainnet decode``).

    Parameters
    ----------
    study : Study, path or None
        A :class:`brainnet.study.Study`, a study folder, or None for the
        embedded demo study.
    layer : str
        Network layer whose units are decoded (paper: fc8; also conv1..fc7).
    subjects : sequence of str, optional
        Subject labels (default: all subjects of the study).
    n_components, scale, algorithm, n_permutations, n_bootstrap, n_cluster_draws, seed, n_jobs
        See :func:`unit_decoding`.
    mask : str or Path
        Region (default occipital) or a NIfTI mask.
    features : path or Features, optional
        Precomputed features instead of extracting them with EmoNet: a file, or
        features in memory (e.g. from :func:`brainnet.extract_activations`).
    weights : path, optional
        EmoNet weights; None: deterministic untrained weights (``untrained_seed``).
    network : str or Network, optional
        Another network with its own preprocessing; default EmoNet.
    out : path, optional
        Results go to ``<out>/group/decode-<layer>[-<region>]/`` (see
        :func:`brainnet.runs.result_folder`); nothing is written when None.
    overwrite : bool
        Replace a result folder made with other parameters.

    Returns
    -------
    DecodingResult
    """
    from brainnet import runs
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations,
                  n_bootstrap=n_bootstrap, n_cluster_draws=n_cluster_draws, n_components=n_components)
    study = runs.resolve_study(study)
    labels = _subject_labels(study, subjects)
    spec = _DecodeSpec(layer, mask, seed, labels, n_components, scale, algorithm, n_permutations, n_bootstrap,
                       n_cluster_draws)
    feats = runs.layer_features(study, [layer], weights=weights, untrained_seed=untrained_seed, features=features,
                                network=network)
    runner = runs.Runner(spec, study, feats, out, overwrite, runs.Execution(n_jobs, progress))
    return runner.run_group(labels)


@dataclass(frozen=True)
class _DecodeSpec:
    """The decoding spec for :meth:`brainnet.runs.Runner.run_group`: one model over all subjects."""

    layer: str
    mask: Any
    seed: int
    subjects: list[str]
    n_components: int
    scale: bool
    algorithm: str
    n_permutations: int
    n_bootstrap: int
    n_cluster_draws: int

    analysis = "decode"

    def parameters(self, label: str) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "subjects": list(self.subjects),
            "n_components": self.n_components,
            "scale": self.scale,
            "algorithm": self.algorithm,
            "cv": "leave-one-subject-out",
            "n_permutations": self.n_permutations,
            "n_bootstrap": self.n_bootstrap,
            "bootstrap_unit": "subject",
            "n_cluster_draws": self.n_cluster_draws,
            "unit": "repeat-averaged stimulus",
        }

    def prepare_group(self, study, labels, feats):
        """Load every subject and check the inputs, before the result folder exists."""
        data = study.load_subjects(labels, mask=self.mask)
        matrix = feats.layer(self.layer)
        averaged = [d.averaged() for d in data]
        _check_inputs([a[0] for a in averaged], [a[1] for a in averaged], matrix, feats.stimulus_ids, labels,
                      self.n_components)
        fprov = dict(feats.provenance)
        inputs = {"patterns": [a[0] for a in averaged], "ids": [a[1] for a in averaged], "matrix": matrix,
                  "stimulus_ids": feats.stimulus_ids, "subjects": labels,
                  "units": _unit_names(self.layer, matrix.shape[1], fprov)}
        extras = {"masker": data[0].masker, "mask_name": data[0].mask_name, "weights": fprov.get("weights")}
        return inputs, extras, data[0].mask_name, {"n_voxels": int(data[0].n_voxels)}

    def compute(self, inputs, n_jobs: int, checkpoint, progress: bool) -> DecodingResult:
        return unit_decoding(
            inputs["patterns"],
            inputs["ids"],
            inputs["matrix"],
            inputs["stimulus_ids"],
            subjects=inputs["subjects"],
            units=inputs["units"],
            n_components=self.n_components,
            scale=self.scale,
            algorithm=self.algorithm,
            n_permutations=self.n_permutations,
            n_bootstrap=self.n_bootstrap,
            n_cluster_draws=self.n_cluster_draws,
            seed=self.seed,
            n_jobs=n_jobs,
            checkpoint_dir=checkpoint,
            progress=progress,
        )

    def finish(self, job, result: DecodingResult) -> DecodingResult:
        result.summary = {"analysis": "decoding", "layer": self.layer, "weights": job.extras["weights"],
                          "mask": job.extras["mask_name"], **result.summary}
        result.provenance = job.provenance
        return result

    def write(self, result: DecodingResult, resultdir, job) -> None:
        result.write(resultdir, masker=job.extras["masker"])


def _subject_labels(study, subjects: Sequence[str] | None) -> list[str]:
    if subjects is None:
        if len(study.subjects) < 3:  # refuse before a result folder is made
            raise BrainnetError(
                f"{study.root}: {len(study.subjects)} subjects; leave-one-subject-out decoding needs at least 3; "
                "add subjects"
            )
        return list(study.subjects)
    labels = []
    for s in subjects:
        label = str(s).strip()
        label = label[4:] if label.startswith("sub-") else label
        if label not in study.subjects:
            shown = ", ".join(study.subjects[:8]) + (", ..." if len(study.subjects) > 8 else "")
            raise BrainnetError(f"--subjects {s}: no such subject in {study.root}; choose from {shown}")
        labels.append(label)
    if len(set(labels)) != len(labels):
        raise BrainnetError("--subjects: a subject is listed twice; list each subject once")
    if len(labels) < 3:
        raise BrainnetError(
            f"--subjects: {len(labels)} subjects given; leave-one-subject-out decoding needs at least 3"
        )
    return labels
