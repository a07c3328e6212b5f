"""Seconds per permutation of the paper's unit decoding: brainnet vs refitting scikit-learn.

Paper scale (Kragel et al. 2019, Fig. 4): 18 subjects x 112 trials x 7,214
occipital voxels -> 20 fc8 units, PLS with 10 components, leave-one-subject-out.
One permutation of the test = 18 refits. The reference refits scikit-learn's
``PLSRegression`` on every fold of a permutation; brainnet evaluates batches
of permutations with :class:`brainnet.pls.CrossValidatedPLS`. Both run on the
same permutations in the same process, and the predictions (and, with all
18 reference folds, the null values) of the permutations both ran are
compared. "Agree" means max |difference| < 1e-6: null permutations often run
scikit-learn's power method for hundreds of iterations, where its own
result moves by ~1e-8 if X is merely rotated (an exactly equivalent
problem), while brainnet's closed form moves by ~1e-15; the differences seen
(~1e-8) are scikit-learn's rounding, not a different model.

    python benchmarks/bench_decode.py            # paper scale (reference: ~100 s per permutation)
    python benchmarks/bench_decode.py --quick    # 1,000 voxels
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cross_decomposition import PLSRegression

from brainnet.permutation import permutation_indices
from brainnet.pls import CrossValidatedPLS
from brainnet.stats import pearson_columns


def _data(n_subjects, n_stimuli, n_voxels, n_units, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_stimuli, n_units))
    maps = rng.normal(size=(n_units, n_voxels)) * 0.2
    rows = np.tile(np.arange(n_stimuli), n_subjects)
    x = features[rows] @ maps + rng.normal(size=(rows.size, n_voxels))
    return x.astype(np.float32), features, rows, np.repeat(np.arange(n_subjects), n_stimuli)


def _mean_r(pred, target, groups):
    return float(np.mean([np.nanmean(pearson_columns(pred[groups == g], target[groups == g])) for g in np.unique(groups)]))


def _reference(x, features, rows, groups, perm, k, n_folds):
    """Refit scikit-learn on the first ``n_folds`` folds of one permutation; predictions (NaN elsewhere)."""
    y = features[perm][rows]
    pred = np.full_like(y, np.nan)
    for g in np.unique(groups)[:n_folds]:
        test = groups == g
        pred[test] = PLSRegression(k, scale=False).fit(x[~test], y[~test]).predict(x[test])
    return pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 voxels instead of 7,214")
    parser.add_argument("--permutations", type=int, default=128, help="brainnet permutations to time (default 128)")
    parser.add_argument("--reference", type=int, default=1, help="scikit-learn permutations to time (default 1)")
    parser.add_argument(
        "--reference-folds",
        type=int,
        default=18,
        help="time only this many of the 18 folds of each reference permutation and scale up (default 18: all)",
    )
    args = parser.parse_args()
    n_subjects, n_stimuli, n_units, k = 18, 112, 20, 10
    n_voxels = 1000 if args.quick else 7214
    x, features, rows, groups = _data(n_subjects, n_stimuli, n_voxels, n_units)
    perms = permutation_indices(n_stimuli, 0, args.permutations, seed=0)

    start = time.perf_counter()
    cv = CrossValidatedPLS(x, groups, k)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    null, first = [], None
    for b in range(0, len(perms), 64):
        block = perms[b : b + 64]
        pred = cv.predict_permuted(features, rows, block)
        first = pred[: args.reference] if first is None else first
        null += [_mean_r(pred[i], features[p][rows], groups) for i, p in enumerate(block)]
    ours = (time.perf_counter() - start) / len(perms)

    folds = min(args.reference_folds, n_subjects)
    start = time.perf_counter()
    ref_pred = [_reference(x, features, rows, groups, perms[i], k, folds) for i in range(args.reference)]
    ref = (time.perf_counter() - start) / args.reference * n_subjects / folds

    done = ~np.isnan(ref_pred[0][:, 0])
    diff = max(np.max(np.abs(first[i][done] - ref_pred[i][done])) for i in range(args.reference))
    agree = bool(diff < 1e-6)
    if folds == n_subjects:
        ref_null = [_mean_r(p, features[perms[i]][rows], groups) for i, p in enumerate(ref_pred)]
        null_diff = np.max(np.abs(np.array(null[: args.reference]) - ref_null))
        agree = agree and bool(null_diff < 1e-6)
        what = f"predictions and null values, max |diff| {max(diff, null_diff):.1e}"
    else:
        what = f"predictions of {folds} refitted folds, max |diff| {diff:.1e}; reference time scaled x{n_subjects / folds:g}"
    scale = f"{n_subjects} subjects x {n_stimuli} trials x {n_voxels} voxels -> {n_units} units, {k} components, LOSO"
    print(f"# {scale}")
    print("task\tbrainnet_s\treference_s\tratio\tagree")
    print(f"seconds per permutation (18 refits)\t{ours:.4f}\t{ref:.2f}\t{ref / ours:.0f}x\t{agree} ({what})")
    print(f"one-off fold kernels\t{setup:.2f}\t-\t-\t-")
    total = setup + 10_000 * ours
    print(f"10,000-permutation test (projected)\t{total / 60:.1f} min\t{10_000 * ref / 86400:.1f} days\t{10_000 * ref / total:.0f}x\t-")


if __name__ == "__main__":
    main()
