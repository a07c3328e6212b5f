"""Calibration of ``brainnet contrast``'s two tests on null and planted studies, side by side.

    python benchmarks/bench_contrast_calibration.py [--studies 400] [--decode-studies 400] [--relabel-decode 100]
        [--large-studies 200]

Prints, for each kind of study, the share of studies rejecting at alpha = .05
with a binomial 95 % interval:

1. Correlation studies (the generator of tests/test_contrasts.py: 3 sides,
   10 subjects, 20 stimuli, 5 voxels; each subject's value is its mean r over
   voxels, as encode's and rsa's per-subject values): the side-swap test
   (``p`` of the first pair, ``p_fwe`` over the 3 pairs; 999 random flips)
   and the relabelling test (``p_relabel``, ``p_relabel_fwe``; 99 shared
   relabellings), on studies with no signal, equal signal on every side and a
   planted difference.
2. Decoding studies (8 subjects, 20 stimuli, 3 units, 10 voxels per region,
   2 components; then 10 subjects, 30 stimuli, 5 units, 40 voxels, 3
   components; equal regions share one voxel code): the side-swap test on the
   within-subject decoding r (what ``contrast decode`` uses), the same
   sign-flip test on the held-out r of one leave-one-subject-out model (the
   design it replaces, as the paper's paired t-test), and the relabelling
   test of the leave-one-subject-out mean r (49 relabellings, fewer studies).
   Every sign-flip test here enumerates all 2^n_subjects flips.

Figures quoted in the README, docs/statistics.md and brainnet/contrasts.py
come from this script.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from brainnet.contrasts import (
    _decode_side,
    _within_subject_decoding,
    paired_contrast_test,
    side_swap_table,
)
from brainnet.errors import BrainnetNotice

CORRELATION = {"no signal": (0.0, 0.0, 0.0), "equal signal 0.5": (0.5, 0.5, 0.5),
               "equal signal 1.0": (1.0, 1.0, 1.0), "planted 0.6 vs 0.3": (0.6, 0.3, 0.3)}
DECODING = {"no signal": (0.0, 0.0), "equal signal 0.8": (0.8, 0.8), "planted 1.0 vs 0.6": (1.0, 0.6)}


def _correlation_side(x, ys):
    """Per subject, the mean over voxels of r(x[perm], y_s) (as tests/test_contrasts.py)."""
    xs = (x - x.mean()) / x.std()
    zs = [(y - y.mean(axis=0)) / y.std(axis=0) for y in ys]
    return lambda perms: np.stack([(xs[perms] @ z / x.size).mean(axis=1) for z in zs], axis=1)


def _group_sides(rng, n_subjects, n, v, slopes):
    x = rng.standard_normal(n)
    return {f"s{i}": _correlation_side(x, [b * x[:, None] + rng.standard_normal((n, v))
                                           for _ in range(n_subjects)])
            for i, b in enumerate(slopes)}


def _interval(k: int, n: int) -> str:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95)
    return f"{100 * k / n:5.1f} % [{100 * ci.low:4.1f}, {100 * ci.high:4.1f}]"


def _correlation(n_studies: int) -> None:
    print(f"\n1. correlation studies: 3 sides, 10 subjects, 20 stimuli, 5 voxels; {n_studies} studies each")
    print(f"{'study':<22} {'side-swap p':>24} {'side-swap p_fwe':>24} {'relabel p':>24} {'relabel p_fwe':>24}")
    for name, slopes in CORRELATION.items():
        counts = np.zeros(4, dtype=int)
        for seed in range(n_studies):
            sides = _group_sides(np.random.default_rng(seed), 10, 20, 5, slopes)
            t = paired_contrast_test(sides, 20, n_permutations=99, n_flips=999, seed=seed).table
            counts += [t["p"].iloc[0] <= 0.05, (t["p_fwe"] <= 0.05).any(),
                       t["p_relabel"].iloc[0] <= 0.05, (t["p_relabel_fwe"] <= 0.05).any()]
        print(f"{name:<22} " + " ".join(f"{_interval(int(c), n_studies):>24}" for c in counts), flush=True)


def _decode_study(rng, slopes, n_subjects=8, n=20, q=3, v=10):
    """Units F; region r of every subject: slope_r * F W[:, perm_r] + noise (equal slopes: equal regions)."""
    f = rng.standard_normal((n, q))
    w = rng.standard_normal((q, v)) / np.sqrt(q)
    codes = [w[:, rng.permutation(v)] for _ in slopes]  # one voxel code per region, shared by its subjects
    return f, [[slope * f @ code + rng.standard_normal((n, v)) for _ in range(n_subjects)]
               for slope, code in zip(slopes, codes, strict=True)]


def _heldout_r(patterns, f, n_components=2):
    """Each held-out subject's mean r of one leave-one-subject-out PLS model (the design not used)."""
    from brainnet import decoding
    from brainnet.pls import CrossValidatedPLS

    n = f.shape[0]
    x = np.concatenate(patterns)
    groups = np.repeat(np.arange(len(patterns)), n)
    rows = np.tile(np.arange(n), len(patterns))
    blocks = [np.arange(s * n, (s + 1) * n) for s in range(len(patterns))]
    pred = CrossValidatedPLS(x, groups, n_components).predict_permuted(f, rows, np.arange(n)[None])
    return np.nanmean(decoding._subject_r(pred, f[rows][None], blocks)[0], axis=1)


def _decoding(n_studies: int, n_relabel: int, n_subjects=8, n=20, q=3, v=10, n_components=2) -> None:
    print(f"\n2. decoding studies: 2 regions, {n_subjects} subjects, {n} stimuli, {q} units, {v} voxels, "
          f"{n_components} components; {n_studies} studies each (relabelling: {n_relabel}, 49 relabellings)")
    print(f"{'study':<22} {'side-swap, within-subj':>24} {'sign-flip, held-out r':>24} {'relabel p (LOSO r)':>24}")
    n_flips = 2**n_subjects - 1
    for name, slopes in DECODING.items():
        within = heldout = relabel = 0
        for seed in range(n_studies):
            rng = np.random.default_rng(seed)
            f, sides = _decode_study(rng, slopes, n_subjects, n, q, v)
            own = np.stack([[_within_subject_decoding(x, f, n_components, False, "nipals", 4, 0, None)
                             for x in side] for side in sides], axis=1)
            within += side_swap_table(own, ["a", "b"], n_flips=n_flips)[0]["p"].iloc[0] <= 0.05
            loso = np.stack([_heldout_r(side, f, n_components) for side in sides], axis=1)
            heldout += side_swap_table(loso, ["a", "b"], n_flips=n_flips)[0]["p"].iloc[0] <= 0.05
            if seed < n_relabel:
                ids = [f"s{i}" for i in range(f.shape[0])]
                statistics = {}
                for k, side in enumerate(sides):
                    statistics[k] = _decode_side(side, [ids] * len(side), f, ids, None, n_components=n_components,
                                                 scale=False, algorithm="nipals", cv=4, seed=0)[0]
                t = paired_contrast_test(statistics, f.shape[0], per_subject={0: own[:, 0], 1: own[:, 1]},
                                         n_permutations=49, seed=seed).table
                relabel += t["p_relabel"].iloc[0] <= 0.05
        print(f"{name:<22} {_interval(int(within), n_studies):>24} {_interval(int(heldout), n_studies):>24} "
              f"{_interval(int(relabel), max(n_relabel, 1)):>24}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=400, help="correlation studies per kind (default 400)")
    parser.add_argument("--decode-studies", type=int, default=400, help="decoding studies per kind (default 400)")
    parser.add_argument("--relabel-decode", type=int, default=100,
                        help="decoding studies per kind for the relabelling test (default 100)")
    parser.add_argument("--large-studies", type=int, default=200,
                        help="larger decoding studies (10 subjects, 30 stimuli, 5 units, 40 voxels) per kind "
                        "(default 200; relabelling on a quarter of them)")
    args = parser.parse_args()
    start = time.process_time()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", BrainnetNotice)
        warnings.simplefilter("ignore", UserWarning)  # PLS convergence on pure noise
        _correlation(args.studies)
        _decoding(args.decode_studies, min(args.relabel_decode, args.decode_studies))
        _decoding(args.large_studies, args.large_studies // 4, n_subjects=10, n=30, q=5, v=40, n_components=3)
    print(f"\nrejections at alpha = .05 (p <= .05), binomial 95 % intervals; {time.process_time() - start:.0f} CPU s")


if __name__ == "__main__":
    main()
