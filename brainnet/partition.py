"""Variance partitioning across feature spaces with banded ridge and permutation tests.

Per voxel, the cross-validated R² of a *joint* model (all feature spaces,
one penalty per space per voxel: banded / multiple-kernel ridge) and of each
model *without* one space give the set-theoretic partition (de Heer et al.
2017; Lescroart et al. 2015)::

    union      = R²(all spaces)
    unique_s   = R²(all) - R²(all but s)
    shared     = union - sum_s unique_s      (variance explained by >= 2 spaces)

With two spaces the "all but s" models are the single-space models, so
``shared = R²(a) + R²(b) - R²(a, b)``.

The fits are himalaya's ``MultipleKernelRidgeCV`` (random search over the
per-space scalings, inner cross-validation on the training stimuli only),
on linear kernels of the column-standardised features, cross-validated over
stimuli (outer folds of :func:`brainnet.encoding.make_folds`). Responses are
centred over stimuli; R² is pooled over the out-of-fold predictions.

Permutation test of a unique part (``unique_s``), Freedman-Lane style: space
``s`` is split into what the other spaces predict (a kernel-ridge smoother of
the held spaces, penalty by leave-one-out) and the rest, and only the rest's
rows are permuted (its stimulus labels), the other spaces and the responses held, and
the joint model refitted with each voxel's per-space scalings fixed at the
values himalaya chose for it in that fold; ``R²(all but s)`` does not involve
``s`` and stays. Fixing the scalings turns a refit into a few small linear
solves: himalaya's random search gives each voxel one of at most
``n_iter * len(alphas)`` candidate scalings, so per permutation and fold
brainnet solves one ``(n_train x n_train)`` system per candidate actually used
and multiplies the resulting hat matrix with those voxels' training responses
(the refit prediction equals himalaya's to 1e-10; tests check it). Voxelwise p
and max-statistic FWE p come from :func:`brainnet.permutation.permutation_test`
(resumable, threads or Dask). Calibration on null simulations is tested.

Why Freedman-Lane: permuting all of ``s`` also destroys what it shares with the
other spaces, and a joint ridge model gains from a second view of shared
sources, so the plain test rejected too often when the spaces share variance.
Measured on 200 null studies each (50 stimuli, 5 voxels, shared fraction 0.4,
no unique ``b`` variance, 49 permutations, α = .05): plain row permutation
rejected at 13 % (first voxel) and 11 % (FWE over voxels); Freedman-Lane at
3.5 % and 8 %; with spaces that share nothing, 1 % and 6.5 %
(``benchmarks/bench_partition_calibration.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError

__all__ = ["PartitionResult", "variance_partition", "partition_subject"]

_ALPHAS = np.logspace(-3, 5, 9)


@dataclass
class _Fold:
    train: np.ndarray
    test: np.ndarray
    weights: np.ndarray  # (n_groups, n_spaces): exp(deltas) of each distinct candidate
    members: list[np.ndarray]  # voxels of each group


def _standardised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    keep = sd > 0
    return (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]


def _kernels(spaces: list[np.ndarray]) -> np.ndarray:
    """Linear kernels ``(n_spaces, n, n)`` of standardised features, scaled by 1/n_features."""
    return np.stack([z @ z.T / z.shape[1] for z in (_standardised(x) for x in spaces)])


def _fit(kernels: np.ndarray, y: np.ndarray, train, test, *, n_iter, alphas, inner_cv, seed):
    """himalaya's multiple-kernel ridge on one fold: (test predictions, deltas (n_spaces, n_voxels))."""
    from himalaya.kernel_ridge import MultipleKernelRidgeCV

    model = MultipleKernelRidgeCV(
        kernels="precomputed", solver="random_search", cv=inner_cv, random_state=seed,
        solver_params={"n_iter": n_iter, "alphas": alphas, "progress_bar": False},
    )
    model.fit(kernels[:, train][:, :, train], y[train])
    return np.asarray(model.predict(kernels[:, test][:, :, train])), np.asarray(model.deltas_)


def _r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss = np.sum(y**2, axis=0)  # y is centred
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - np.sum((y - pred) ** 2, axis=0) / ss


def _groups(deltas: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct columns of ``deltas`` (himalaya's candidates) and the voxels of each."""
    distinct, inverse = np.unique(np.round(deltas.T, 10), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return np.exp(distinct), [np.flatnonzero(inverse == g) for g in range(distinct.shape[0])]


def _smoother(held: np.ndarray, tested: np.ndarray) -> np.ndarray:
    """Kernel-ridge smoother ``(n, n)`` predicting the tested space's features from the held spaces.

    The penalty is the one of ``_ALPHAS`` (times the kernel's mean diagonal) with the
    smallest leave-one-out error of that prediction, computed from the kernels alone:
    for the hat matrix ``H``, the LOO residuals of features ``Z`` are
    ``(I - H) Z / (1 - diag H)``, and ``Z Z'`` is the tested kernel.
    """
    n = held.shape[0]
    scale = np.trace(held) / n
    best, best_err = None, np.inf
    for alpha in _ALPHAS:
        hat = np.linalg.solve(held + alpha * scale * np.eye(n), held).T
        resid = np.eye(n) - hat
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.sum(np.diag(resid @ tested @ resid.T) / (1.0 - np.diag(hat)) ** 2)
        if np.isfinite(err) and err < best_err:
            best, best_err = hat, err
    return best


def _unique_statistic(kernels, y, folds: list[_Fold], space: int, r2_without: np.ndarray):
    """Batched ``unique_space`` per voxel with the rows of ``space`` permuted, scalings fixed."""
    others = [b for b in range(kernels.shape[0]) if b != space]
    rest = []  # per fold: kernel of the held spaces for each group, (n_groups, n, n)
    for f in folds:
        rest.append(np.einsum("gb,bij->gij", f.weights[:, others], kernels[others]))
    ss = np.sum(y**2, axis=0)
    smoother = _smoother(kernels[others].sum(axis=0), kernels[space])
    residual = np.eye(smoother.shape[0]) - smoother

    def statistic(perms: np.ndarray) -> np.ndarray:
        out = np.empty((perms.shape[0], y.shape[1]), dtype=np.float32)
        for row, perm in enumerate(perms):
            # Freedman-Lane: only the part of the tested space that the others do not
            # predict is relabelled, so what it shares with them stays in every permutation.
            m = smoother + residual[perm]
            permuted = m @ kernels[space] @ m.T
            sse = np.zeros(y.shape[1])
            for f, held in zip(folds, rest, strict=True):
                k = held + f.weights[:, space, None, None] * permuted  # (G, n, n)
                a = k[:, f.train][:, :, f.train]
                a[:, np.arange(f.train.size), np.arange(f.train.size)] += 1.0
                # hat matrices (G, n_test, n_train) = K[test, train] (K[train, train] + I)^-1
                hat = np.linalg.solve(a, k[:, f.train][:, :, f.test]).transpose(0, 2, 1)
                ytr, yte = y[f.train], y[f.test]
                for g, vox in enumerate(f.members):
                    sse[vox] += np.sum((yte[:, vox] - hat[g] @ ytr[:, vox]) ** 2, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[row] = (1.0 - sse / ss) - r2_without
        return out

    return statistic


@dataclass
class PartitionResult:
    """What :func:`variance_partition` / :func:`partition_subject` found.

    Attributes
    ----------
    summary : dict
        Mean of each part over voxels, voxels with FWE-significant unique
        parts, parameters (the content of ``summary.json`` without provenance).
    table : pandas.DataFrame
        One row per voxel: ``voxel`` [, ``i, j, k``], ``union``, ``shared``,
        ``unique_<space>``, ``r2_without_<space>`` and, for tested spaces,
        ``unique_<space>_p`` and ``unique_<space>_p_fwe``.
    spaces : list of str
    null_max : dict of str -> ndarray of shape (n_permutations,)
        Largest permuted unique part over voxels, per tested space.
    affine, shape : grid of the voxels, optional
    provenance : dict
    path : Path or None
    """

    summary: dict[str, Any]
    table: Any
    spaces: list[str]
    null_max: dict[str, np.ndarray] = field(default_factory=dict)
    affine: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self) -> str:
        s = self.summary
        parts = ", ".join(f"unique {k} {s.get(f'mean_unique_{k}', float('nan')):.3f}" for k in self.spaces)
        return (f"PartitionResult({'+'.join(self.spaces)}: {s.get('n_voxels')} voxels, mean union "
                f"{s.get('mean_union', float('nan')):.3f}, shared {s.get('mean_shared', float('nan')):.3f}, {parts})")

    def image(self, column: str):
        """A table column as a NIfTI image (needs ``i, j, k`` and the grid)."""
        import nibabel as nib

        if self.affine is None or self.shape is None or "i" not in self.table:
            raise BrainnetError("this result has no voxel grid; pass voxel_ijk, affine and shape")
        vol = np.zeros(tuple(self.shape), dtype=np.float32)
        ijk = self.table[["i", "j", "k"]].to_numpy(int)
        vol[tuple(ijk.T)] = np.nan_to_num(self.table[column].to_numpy(float))
        return nib.Nifti1Image(vol, self.affine)

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write ``voxels.tsv``, ``null_max.tsv``, maps of each part (NIfTI), a figure and ``summary.json``."""
        import pandas as pd

        from brainnet.mapfigures import write_figures
        from brainnet.results import ResultDir

        rd = ResultDir(folder, self.provenance, overwrite=overwrite)
        rd.write_tsv("voxels.tsv", self.table)
        rd.write_tsv("null_max.tsv", pd.DataFrame({f"unique_{k}": v for k, v in self.null_max.items()}))
        if self.affine is not None and self.shape is not None and "i" in self.table:
            for column in ["union", "shared", *[f"unique_{k}" for k in self.spaces]]:
                rd.write_nifti(f"{column}_map.nii.gz", self.image(column))
        write_figures(self, rd.path)
        rd.finish({**self.summary, "spaces": self.spaces,
                   "grid": None if self.affine is None else {"affine": np.asarray(self.affine).tolist(),
                                                             "shape": list(self.shape or ())}})
        self.path = rd.path
        return rd.path

    @classmethod
    def read(cls, folder: str | Path) -> PartitionResult:
        """Load a result written by :meth:`write`."""
        import pandas as pd

        from brainnet.results import read_json

        folder = Path(folder)
        summary = read_json(folder / "summary.json")
        if not summary.get("complete"):
            raise BrainnetError(f"{folder}: no complete partition result; rerun the analysis")
        nulls = pd.read_csv(folder / "null_max.tsv", sep="\t", na_values=["n/a"])
        grid = summary.get("grid") or {}
        return cls(
            summary={k: v for k, v in summary.items()
                     if k not in ("provenance", "fingerprint", "complete", "grid", "spaces")},
            table=pd.read_csv(folder / "voxels.tsv", sep="\t", na_values=["n/a"]),
            spaces=list(summary["spaces"]),
            null_max={c[len("unique_"):]: nulls[c].to_numpy(float) for c in nulls.columns},
            affine=np.asarray(grid["affine"]) if grid else None,
            shape=tuple(grid["shape"]) if grid else None,
            provenance=summary.get("provenance", {}), path=folder,
        )


def variance_partition(
    spaces: Mapping[str, np.ndarray],
    responses: np.ndarray,
    *,
    test: Sequence[str] | None = None,
    cv: int = 5,
    inner_cv: int = 5,
    n_iter: int = 20,
    alphas: Sequence[float] | None = None,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    voxel_ijk: np.ndarray | None = None,
    affine: np.ndarray | None = None,
    shape: tuple[int, ...] | None = None,
    batch_size: int = 16,
    n_jobs: int = 1,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> PartitionResult:
    """Partition each voxel's cross-validated variance among feature spaces (array-level core).

    Parameters
    ----------
    spaces : dict of str -> ndarray of shape (n_stimuli, n_features_s)
        Two or more feature spaces, rows aligned with ``responses``.
    responses : ndarray of shape (n_stimuli, n_voxels)
    test : sequence of str, optional
        Spaces whose unique part gets a permutation test (default: all).
    cv : int
        Outer folds over stimuli.
    inner_cv : int
        himalaya's inner folds (choice of the per-space scalings).
    n_iter : int
        Random-search candidates of the per-space scalings (himalaya).
    alphas : sequence of float, optional
        Ridge penalties tried with each candidate (default ``logspace(-3, 5, 9)``).
    n_permutations : int
        Row permutations of each tested space (0: no test).
    alpha : float
        Level of the summary counts.
    seed : int
        Folds, himalaya's random search and permutations.
    voxel_ijk, affine, shape : optional
        Voxel grid, for the table and images.
    batch_size, n_jobs, checkpoint_dir, progress
        The permutation engine's (results do not depend on ``n_jobs``).

    Returns
    -------
    PartitionResult
    """
    import pandas as pd

    from brainnet.encoding import make_folds
    from brainnet.permutation import permutation_test

    names = [str(k) for k in spaces]
    if len(names) < 2:
        raise BrainnetError(f"spaces: give at least two feature spaces to partition, got {len(names)}")
    y = np.asarray(responses, dtype=np.float64)
    if y.ndim != 2 or not np.all(np.isfinite(y)):
        raise BrainnetError("responses: give a finite (n_stimuli, n_voxels) array")
    xs = [np.asarray(spaces[k], dtype=np.float64) for k in names]
    for name, x in zip(names, xs, strict=True):
        if x.ndim != 2 or x.shape[0] != y.shape[0] or not np.all(np.isfinite(x)):
            raise BrainnetError(
                f"spaces[{name!r}] has shape {x.shape}; give a finite ({y.shape[0]}, n_features) array, "
                "one row per stimulus of the responses"
            )
        if not np.any(x.std(axis=0) > 0):
            raise BrainnetError(f"spaces[{name!r}] is constant over stimuli; it cannot explain variance")
    tested = names if test is None else [str(t) for t in test]
    unknown = [t for t in tested if t not in names]
    if unknown:
        raise BrainnetError(f"test={unknown[0]!r} is not one of the spaces ({', '.join(names)})")
    if n_permutations < 0:
        raise BrainnetError(f"n_permutations={n_permutations}: give 0 or more")
    alphas = _ALPHAS if alphas is None else np.asarray(alphas, dtype=np.float64)
    folds_idx = make_folds(y.shape[0], cv, seed)
    y = y - y.mean(axis=0)
    kernels = _kernels(xs)
    k = len(names)
    fit = {"n_iter": n_iter, "alphas": alphas, "inner_cv": inner_cv, "seed": seed}
    joint = np.zeros_like(y)
    without = np.zeros((k, *y.shape))
    folds: list[_Fold] = []
    for train, test_rows in folds_idx:
        pred, deltas = _fit(kernels, y, train, test_rows, **fit)
        joint[test_rows] = pred
        folds.append(_Fold(train, test_rows, *_groups(deltas)))
        for b in range(k):
            keep = [c for c in range(k) if c != b]
            without[b, test_rows] = _fit(kernels[keep], y, train, test_rows, **fit)[0]
    union = _r2(y, joint)
    r2_without = np.stack([_r2(y, without[b]) for b in range(k)])
    unique = union[None] - r2_without
    shared = union - unique.sum(axis=0)
    table = pd.DataFrame({"voxel": np.arange(y.shape[1])})
    if voxel_ijk is not None:
        ijk = np.asarray(voxel_ijk, dtype=int)
        table["i"], table["j"], table["k"] = ijk[:, 0], ijk[:, 1], ijk[:, 2]
    table["union"], table["shared"] = union, shared
    for b, name in enumerate(names):
        table[f"unique_{name}"] = unique[b]
        table[f"r2_without_{name}"] = r2_without[b]
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    null_max: dict[str, np.ndarray] = {}
    summary: dict[str, Any] = {
        "analysis": "partition", "spaces": names, "n_stimuli": int(y.shape[0]), "n_voxels": int(y.shape[1]),
        "cv": cv, "inner_cv": inner_cv, "n_iter": n_iter, "alphas": alphas.tolist(),
        "n_permutations": int(n_permutations), "seed": seed, "alpha": alpha,
        "mean_union": float(np.nanmean(union)), "mean_shared": float(np.nanmean(shared)),
    }
    for b, name in enumerate(names):
        summary[f"mean_unique_{name}"] = float(np.nanmean(unique[b]))
    if n_permutations > 0:
        for name in tested:
            b = names.index(name)
            res = permutation_test(
                _unique_statistic(kernels, y, folds, b, r2_without[b]), y.shape[0],
                n_permutations=n_permutations, seed=seed, batch_size=batch_size, n_jobs=n_jobs,
                checkpoint=ckpt / f"partition-unique-{b}.npz" if ckpt is not None else None,
                progress=progress,
            )
            table[f"unique_{name}_p"] = res.p_value
            table[f"unique_{name}_p_fwe"] = res.p_fwe
            null_max[name] = np.nanmax(res.null, axis=1)
            summary[f"n_voxels_unique_{name}_p_fwe_05"] = int(np.sum(res.p_fwe < alpha))
    return PartitionResult(summary=summary, table=table, spaces=names, null_max=null_max,
                           affine=None if affine is None else np.asarray(affine),
                           shape=None if shape is None else tuple(int(s) for s in shape))


def partition_subject(
    study: Any = None,
    *,
    subject: str | None = None,
    layers: Sequence[str] | str = ("conv1", "fc8"),
    controls: Sequence[str] | str | None = None,
    mask: str | Path = "occipital",
    cv: int = 5,
    n_iter: int = 20,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    features_file: str | Path | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> PartitionResult:
    """Variance partitioning of one subject's voxels among network layers and low-level controls.

    The spaces are the ``layers`` (network activations) and the ``controls``
    (image descriptors of :mod:`brainnet.lowlevel`, computed from the
    study's stimulus images); every space's unique part is tested. With
    ``out``, writes ``<out>/sub-<label>/partition-<space>+<space>...[-<region>]/``.

    Parameters
    ----------
    study : Study, str or Path, optional
    subject : str, optional
        Default: the study's first subject.
    layers : sequence of str or comma-separated str
    controls : sequence of str or comma-separated str, optional
        Keys of :data:`brainnet.lowlevel.CONTROLS` (``pixels``, ``gabor``).
    mask : str or Path
    cv, n_iter, n_permutations, alpha, seed
        See :func:`variance_partition`.
    weights, untrained_seed, features_file
        Where the network's activations come from.
    n_jobs, progress, out, overwrite

    Returns
    -------
    PartitionResult
    """
    from brainnet import runs
    from brainnet._checks import check_options
    from brainnet.lowlevel import CONTROLS

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations)
    layer_names = runs.check_layers(layers, features_file)
    control_names = ([] if not controls else
                     [c.strip() for c in controls.split(",") if c.strip()] if isinstance(controls, str)
                     else list(controls))
    unknown = [c for c in control_names if c not in CONTROLS]
    if unknown:
        raise BrainnetError(
            f"--controls {unknown[0]}: unknown control features; use one or more of {', '.join(CONTROLS)}"
        )
    if len(layer_names) + len(control_names) < 2:
        raise BrainnetError(
            f"--layers {','.join(layer_names)}: partitioning needs at least two spaces; "
            "give two layers (e.g. --layers conv1,fc8) or add --controls pixels"
        )
    study = runs.resolve_study(study)
    label = runs.subject_label(study, subject if subject is not None else study.subjects[0])
    spec = _PartitionSpec(tuple(layer_names), tuple(control_names), mask, cv, n_iter, int(n_permutations), alpha,
                          seed)
    feats = study.features(layers=layer_names, weights=weights, seed=untrained_seed, features_file=features_file)
    runner = runs.Runner(spec, study, feats, out, overwrite, runs.Execution(n_jobs, progress))
    return runner.run_subject(label)


@dataclass(frozen=True)
class _PartitionSpec:
    """The partition spec for :meth:`brainnet.runs.Runner.run_subject`: one subject's voxels."""

    layers: tuple[str, ...]
    controls: tuple[str, ...]
    mask: Any
    cv: int
    n_iter: int
    n_permutations: int
    alpha: float
    seed: int

    analysis = "partition"
    scatter = ("y",)
    checkpoint_dir = True  # one checkpoint per tested space
    clean_on_refusal = True

    @property
    def layer(self) -> str:
        """The spaces, as the folder names them (``partition-conv1+fc8``)."""
        return "+".join(self.layers + self.controls)

    def parameters(self, label: str) -> dict[str, Any]:
        return {"subject": label, "layers": list(self.layers), "controls": list(self.controls), "cv": self.cv,
                "n_iter": self.n_iter, "n_permutations": self.n_permutations, "alpha": self.alpha,
                "unit": "repeat-averaged stimulus"}

    def prepare(self, study, label: str, feats) -> tuple[dict[str, Any], dict[str, Any], int, Any]:
        """Load the subject's voxels, align the layers and compute the image-derived controls."""
        from brainnet.encoding import make_folds
        from brainnet.lowlevel import control_features

        data = study.load_subject(label, mask=self.mask)
        if data.masker.mask_img_ is None:  # surface betas (brainnet.surfaces)
            raise BrainnetError(
                f"--study {study.root}: surface betas (vertices, no voxel grid); variance partitioning needs "
                "volume betas: run it on a volume study, or run encode, decode or rsa on the surface")
        y, ids = data.averaged()
        make_folds(len(ids), self.cv, self.seed)  # refuse a bad --cv before any folder exists
        spaces = {name: feats.layer(name)[feats.rows_for(ids)] for name in self.layers}
        extras: dict[str, Any] = {"weights": dict(feats.provenance).get("weights"), "mask_name": data.mask_name,
                                  "provenance": {"controls": None}}
        if self.controls:
            ctrl = control_features(study.stimuli.subset(list(ids)), list(self.controls))
            spaces.update({name: ctrl.layer(name) for name in self.controls})
            extras["provenance"] = {"controls": dict(ctrl.provenance)}
        img = data.masker.mask_img_
        inputs = {"spaces": spaces, "y": y, "ijk": data.voxel_ijk, "affine": img.affine, "shape": img.shape[:3]}
        return inputs, extras, int(y.shape[1]), data.space

    def compute(self, inputs: dict[str, Any], n_jobs: int, checkpoint, progress: bool) -> PartitionResult:
        return variance_partition(
            inputs["spaces"], inputs["y"], cv=self.cv, n_iter=self.n_iter, n_permutations=self.n_permutations,
            alpha=self.alpha, seed=self.seed, voxel_ijk=inputs["ijk"], affine=inputs["affine"],
            shape=inputs["shape"], n_jobs=n_jobs, checkpoint_dir=checkpoint, progress=progress,
        )

    def finish(self, job, result: PartitionResult) -> PartitionResult:
        """Label the array-level result with its subject, region and provenance."""
        result.summary = {"analysis": "partition", "subject": job.label, "mask": job.extras["mask_name"],
                          "weights": job.extras["weights"],
                          **{k: v for k, v in result.summary.items() if k != "analysis"}}
        result.provenance = job.provenance
        return result
