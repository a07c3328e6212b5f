"""Benchmark: voxelwise ridge encoding, brainnet vs scikit-learn and himalaya.

Task (issue 8, item 2): 112 stimuli x 4,096 fc7 units -> 50,000 voxels,
5-fold cross-validation over stimuli, features standardised in each training
fold, one penalty per voxel chosen inside the training folds from the same
15-value grid. Every tool returns out-of-fold predictions; we compare the
per-voxel Pearson r.

Pairs that solve the *same* problem are compared for agreement:

- penalty by exact leave-one-out: brainnet ``inner="loo"`` vs scikit-learn
  ``RidgeCV(alpha_per_target=True)``;
- penalty by inner 5-fold: brainnet ``inner=5`` vs himalaya ``RidgeCV(cv=5)``
  (numpy and torch CPU backends). himalaya refits with targets batched by
  5,000 (``n_targets_batch_refit``): unbatched, its refit holds an
  (n_alphas, n_units, n_voxels) array, 24 GB here, and was killed for lack
  of memory.

Run: ``python benchmarks/bench_encoding.py [--quick] [--voxels N] [--reference-voxels M] [--dtype float32|float64]``.
Each line: task, brainnet seconds, reference seconds (same run), ratio, and
whether |dr| < 1e-3 for all compared voxels (with the largest |dr|).

With ``--reference-voxels M`` (below ``--voxels``), brainnet runs on every
voxel and each reference on the first M voxels and on 16 voxels; the
reference time for all voxels is extrapolated along a straight line (time =
fixed cost, measured by the 16-voxel run, + cost per voxel: both libraries
solve the voxels independently after one decomposition of the features),
and agreement is checked on the first M voxels. This keeps the paper-size run
(50,000 voxels) within minutes; the line says so.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

from brainnet.encoding import DEFAULT_ALPHAS, cross_validated_encoding, make_folds
from brainnet.stats import pearson_columns

print = functools.partial(print, flush=True)  # noqa: A001 - progress must show in logs


def make_data(n_stimuli: int, n_units: int, n_voxels: int, dtype, seed: int = 0):
    """fc7-like features (non-negative, correlated) and voxels driven by a few directions."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_stimuli, 30))
    x = np.maximum(latent @ rng.standard_normal((30, n_units)) + rng.standard_normal((n_stimuli, n_units)), 0)
    w = rng.standard_normal((n_units, 8)) @ rng.standard_normal((8, n_voxels)) / np.sqrt(n_units)
    snr = rng.uniform(0, 1.5, n_voxels)
    signal = x @ w
    signal /= signal.std(axis=0) + 1e-12
    y = signal * snr + rng.standard_normal((n_stimuli, n_voxels))
    return x.astype(dtype), y.astype(dtype)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_brainnet(x, y, folds, inner, seed, n_jobs=-1):
    return cross_validated_encoding(x, y, cv=len(folds), inner=inner, seed=seed, n_jobs=n_jobs)["predictions"]


def run_sklearn(x, y, folds):
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = np.empty(y.shape, dtype=np.float64)
    for train, test in folds:
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True))
        pred[test] = model.fit(x[train], y[train]).predict(x[test])
    return pred


def run_himalaya(x, y, folds, backend_name):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from sklearn.preprocessing import StandardScaler

    backend = set_backend(backend_name, on_error="raise")
    try:
        pred = np.empty(y.shape, dtype=np.float64)
        for train, test in folds:
            scaler = StandardScaler().fit(x[train])
            model = RidgeCV(alphas=DEFAULT_ALPHAS.astype(x.dtype), cv=5, fit_intercept=True,
                            solver_params={"warn": False, "n_targets_batch_refit": 5000})
            model.fit(backend.asarray(scaler.transform(x[train])), backend.asarray(y[train]))
            pred[test] = backend.to_numpy(model.predict(backend.asarray(scaler.transform(x[test]))))
        return pred
    finally:
        set_backend("numpy")


def _reference_time(run, m: int, n_voxels: int) -> tuple[float, np.ndarray]:
    """Seconds for ``n_voxels`` (measured, or extrapolated from m voxels) and predictions on m voxels.

    Extrapolation: ``t(n) = t(16) + (t(m) - t(16)) * n / m``; the 16-voxel run
    measures the fixed cost (feature decompositions) that does not grow with voxels.
    """
    t_m, pred = _timed(lambda: run(m))
    if m >= n_voxels:
        return t_m, pred
    t_fixed, _ = _timed(lambda: run(16))
    t_fixed = min(t_fixed, t_m)
    return t_fixed + (t_m - t_fixed) * n_voxels / m, pred


def _agreement(y, pred_a, pred_b) -> tuple[bool, float]:
    dr = np.abs(pearson_columns(y, pred_a) - pearson_columns(y, pred_b))
    worst = float(np.nanmax(dr))
    return bool(worst < 1e-3), worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 voxels instead of 50,000")
    parser.add_argument("--voxels", type=int, default=None)
    parser.add_argument("--units", type=int, default=4096)
    parser.add_argument("--stimuli", type=int, default=112)
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--skip-sklearn", action="store_true", help="skip the slowest reference")
    parser.add_argument("--reference-voxels", type=int, default=None,
                        help="run the references on this many voxels (and 16, for the fixed cost) and extrapolate linearly")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="threads for every tool (BLAS, torch, brainnet n_jobs); default: each tool's own default",
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads):
            return _run(args)
    return _run(args)


def _run(args) -> int:
    n_voxels = args.voxels or (5000 if args.quick else 50000)
    dtype = np.dtype(args.dtype)
    x, y = make_data(args.stimuli, args.units, n_voxels, dtype)
    seed = 0
    folds = make_folds(args.stimuli, 5, seed)
    print(f"# {args.stimuli} stimuli x {args.units} units -> {n_voxels} voxels, 5-fold CV, "
          f"{DEFAULT_ALPHAS.size} alphas per voxel, {args.dtype}, {os.cpu_count()} cores, "
          f"threads: {args.threads or 'each tool default'}, load average {os.getloadavg()[0]:.1f}")

    jobs = args.threads or -1
    t_loo, p_loo = _timed(lambda: run_brainnet(x, y, folds, "loo", seed, jobs))
    t_k5, p_k5 = _timed(lambda: run_brainnet(x, y, folds, 5, seed, jobs))
    m = min(args.reference_voxels or n_voxels, n_voxels)
    if m < n_voxels:
        print(f"# references run on 16 and {m} voxels, time extrapolated linearly to {n_voxels}; "
              f"agreement on the first {m} voxels")
    rows = []
    if not args.skip_sklearn:
        t_ref, p_ref = _reference_time(lambda v: run_sklearn(x, y[:, :v], folds), m, n_voxels)
        rows.append(("LOO alpha", "sklearn RidgeCV(alpha_per_target)", t_loo, p_loo[:, :m], t_ref, p_ref))
    for backend in ("numpy", "torch"):
        try:
            t_ref, p_ref = _reference_time(lambda v, b=backend: run_himalaya(x, y[:, :v], folds, b), m, n_voxels)
        except Exception as err:  # noqa: BLE001 - report a missing backend, keep benchmarking
            print(f"himalaya {backend}: skipped ({type(err).__name__}: {err})")
            continue
        rows.append(("inner 5-fold alpha", f"himalaya RidgeCV {backend}", t_k5, p_k5[:, :m], t_ref, p_ref))
    y = y[:, :m]

    for mode, ref_name, t_b, p_b, t_r, p_r in rows:
        ok, worst = _agreement(y, p_b, p_r)
        print(f"encoding {mode} | brainnet {t_b:.2f} s | {ref_name} {t_r:.2f} s | "
              f"ratio {t_r / t_b:.1f}x | agree={ok} (max |dr| {worst:.1e})")
    if rows:
        fastest = min(rows, key=lambda r: r[4])
        brainnet_best = min(t_loo, t_k5)
        print(f"encoding vs fastest reference ({fastest[1]}, {fastest[4]:.2f} s) | brainnet fastest mode "
              f"{brainnet_best:.2f} s | ratio {fastest[4] / brainnet_best:.1f}x | target >= 2x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
