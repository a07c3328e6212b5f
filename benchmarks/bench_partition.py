"""Variance partitioning: brainnet vs himalaya, side by side.

1. Equality: brainnet's union and single-space R² equal himalaya's
   ``MultipleKernelRidgeCV`` (random search) refitted by hand on the same
   outer folds, kernels and settings.
2. Unique-part permutation test at ``--voxels`` voxels: brainnet refits the
   joint model per permutation with himalaya's per-voxel scalings fixed (one
   small solve per candidate scaling and fold, then one hat-matrix product);
   the reference refits himalaya's ``MultipleKernelRidgeCV`` per permutation
   (what a user would write). Both are timed on a few permutations and
   extrapolated linearly to ``--permutations`` (said so in the output).
   With ``--target-voxels`` larger than ``--voxels``, the permutation cost is
   also extrapolated linearly in voxels (the hat-matrix products are per
   voxel; the per-candidate solves do not grow), said so in the output.

Times are CPU seconds of this process (``time.process_time``), the fair
measure on a shared, busy machine.

Usage: python benchmarks/bench_partition.py [--quick] [--voxels N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits


def _data(rng, n, n_vox, d=4, p=60):
    s, ua, ub = (rng.standard_normal((n, d)) for _ in range(3))
    xa = np.hstack([s, ua]) @ rng.standard_normal((2 * d, p))
    xb = np.hstack([s, ub]) @ rng.standard_normal((2 * d, p))
    w = rng.standard_normal((3 * d, n_vox)) / np.sqrt(3 * d)
    y = np.hstack([s, ua, ub]) @ w * 0.6 + rng.standard_normal((n, n_vox))
    return {"a": xa, "b": xb}, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stimuli", type=int, default=112)
    parser.add_argument("--voxels", type=int, default=50000)
    parser.add_argument("--target-voxels", type=int, default=50000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--timed-permutations", type=int, default=8)
    parser.add_argument("--n-iter", type=int, default=20)
    args = parser.parse_args()
    if args.quick:
        args.voxels = min(args.voxels, 5000)
        args.timed_permutations = min(args.timed_permutations, 4)

    from himalaya.kernel_ridge import MultipleKernelRidgeCV

    from brainnet.encoding import make_folds
    from brainnet.partition import _ALPHAS, _r2, _unique_statistic, variance_partition
    from brainnet.permutation import permutation_indices

    rng = np.random.default_rng(0)
    spaces, y = _data(rng, args.stimuli, args.voxels)
    settings = {"n_iter": args.n_iter, "inner_cv": 5}
    with threadpool_limits(1, user_api="blas"):
        t0 = time.process_time()
        res = variance_partition(spaces, y, n_permutations=0, **settings)
        t_fit = time.process_time() - t0

    # ---- equality with himalaya on the first 2,000 voxels
    from brainnet.partition import _fit, _Fold, _groups, _kernels

    yc = y - y.mean(axis=0)
    kernels = _kernels(list(spaces.values()))
    folds = make_folds(args.stimuli, 5, 0)
    sub = slice(0, min(2000, args.voxels))
    joint, only_a = np.zeros_like(yc[:, sub]), np.zeros_like(yc[:, sub])
    for train, test in folds:
        for ks, out in ((kernels, joint), (kernels[:1], only_a)):
            model = MultipleKernelRidgeCV(kernels="precomputed", cv=5, random_state=0, solver_params={
                "n_iter": args.n_iter, "alphas": _ALPHAS, "progress_bar": False})
            model.fit(ks[:, train][:, :, train], yc[train, sub])
            out[test] = model.predict(ks[:, test][:, :, train])
    d_union = np.max(np.abs(res.table["union"].to_numpy()[sub] - _r2(yc[:, sub], joint)))
    d_single = np.max(np.abs(res.table["r2_without_b"].to_numpy()[sub] - _r2(yc[:, sub], only_a)))

    # ---- permutation test of unique_b: brainnet statistic vs himalaya refits
    with threadpool_limits(1, user_api="blas"):
        fitted = []
        for train, test in folds:
            _, deltas = _fit(kernels, yc, train, test, n_iter=args.n_iter, alphas=_ALPHAS, inner_cv=5, seed=0)
            fitted.append(_Fold(train, test, *_groups(deltas)))
        stat = _unique_statistic(kernels, yc, fitted, 1, res.table["r2_without_b"].to_numpy())
        perms = permutation_indices(args.stimuli, 0, args.timed_permutations, 0)
        t0 = time.process_time()
        stat(perms)
        t_bn = (time.process_time() - t0) / len(perms)
        t0 = time.process_time()
        perm = perms[0]
        permuted = kernels.copy()
        permuted[1] = kernels[1][np.ix_(perm, perm)]
        for train, test in folds:
            model = MultipleKernelRidgeCV(kernels="precomputed", cv=5, random_state=0, solver_params={
                "n_iter": args.n_iter, "alphas": _ALPHAS, "progress_bar": False})
            model.fit(permuted[:, train][:, :, train], yc[train])
            model.predict(permuted[:, test][:, :, train])
        t_ref = time.process_time() - t0
    groups = np.mean([len(f.members) for f in fitted])
    print(f"variance partition: {args.stimuli} stimuli, 2 spaces x 60 features, {args.voxels:,} voxels, "
          f"5-fold CV, himalaya random search n_iter={args.n_iter}")
    print(f"  fit (joint + 2 leave-one-out models): {t_fit:.1f} CPU s; equal to himalaya on {joint.shape[1]:,} "
          f"voxels: max |diff| union {d_union:.1e}, single space {d_single:.1e}")
    print(f"  unique-part permutation test, per permutation at {args.voxels:,} voxels "
          f"({groups:.0f} distinct scalings per fold):")
    scale = max(1.0, args.target_voxels / args.voxels)
    print(f"    brainnet (fixed scalings)  {t_bn:7.2f} CPU s -> {args.permutations} permutations "
          f"{t_bn * args.permutations / 60:.1f} CPU min (extrapolated from {len(perms)})")
    print(f"    himalaya refit             {t_ref:7.2f} CPU s -> {args.permutations} permutations "
          f"{t_ref * args.permutations / 60:.1f} CPU min (extrapolated from 1)")
    if scale > 1:
        print(f"    at {args.target_voxels:,} voxels (x{scale:.0f}, extrapolated linearly in voxels): brainnet "
              f"{t_bn * scale * args.permutations / 60:.0f} CPU min, {t_bn * scale * args.permutations / 120:.0f} "
              f"min on 2 cores (n_jobs=2); himalaya refit {t_ref * scale * args.permutations / 3600:.0f} CPU h")
    print(f"    speed ratio {t_ref / t_bn:.1f}x (one BLAS thread each)")


if __name__ == "__main__":
    main()
