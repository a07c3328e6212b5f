"""Searchlight encoding: cost against a per-centre loop, and family-wise error on null studies.

1. Cost and values. ``--subjects`` simulated subjects x ``--stimuli`` stimuli
   on a box of ``--centres`` centres (spheres of radius 2 voxels, 33 voxels
   when whole), one planted ball of signal. brainnet's
   ``searchlight_encoding`` (sparse sphere means, one ``encode`` per subject
   with every centre as a target) against the reference: each sphere's mean
   computed in a Python loop over centres, then scikit-learn's ``StandardScaler`` + ``RidgeCV``
   (``alpha_per_target``, efficient leave-one-out, the same alpha grid) fitted
   per fold of the same folds, and the per-fold r averaged. Without
   permutations (the reference has none); the permutation cost of brainnet
   is timed separately and is ``--permutations`` refits of the same kind.
2. ``--null-studies`` null studies (5 x 5 x 4 grid, 3 subjects, 15 stimuli,
   99 permutations, cluster-forming p 0.05): the share with any voxelwise-FWE
   or cluster-mass-FWE rejection at .05, with binomial 95 % intervals
   (nominal: at most 5 %).

Times are CPU seconds of this process (``time.process_time``), the fair
measure on a shared machine.

Usage: python benchmarks/bench_searchlight_encoding.py [--centres 2000] [--null-studies 600]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _study(rng, n_centres: int, n_subjects: int, n_stimuli: int):
    side = int(np.ceil(n_centres ** (1 / 3)))
    ijk = np.argwhere(np.ones((side, side, side), bool))[:n_centres]
    features = rng.standard_normal((n_stimuli, 50))
    inside = np.sqrt(((ijk - side // 2) ** 2).sum(axis=1)) <= 2
    subjects = []
    for _ in range(n_subjects):
        x = rng.standard_normal((n_stimuli, len(ijk)))
        x[:, inside] += 0.1 * (features @ rng.standard_normal(50) / np.sqrt(50))[:, None]
        subjects.append(x)
    return ijk, features, subjects


def _reference(subjects, features, nb, cv: int, seed: int) -> np.ndarray:
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainnet.encoding import DEFAULT_ALPHAS, make_folds

    n_vox = subjects[0].shape[1]
    folds = make_folds(features.shape[0], cv, seed)
    out = []
    for x in subjects:
        means = np.stack([x[:, row[row < n_vox]].mean(axis=1) for row in nb], axis=1)
        r = np.zeros(n_vox)
        for train, test in folds:
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True))
            pred = model.fit(features[train], means[train]).predict(features[test])
            a, b = pred - pred.mean(axis=0), means[test] - means[test].mean(axis=0)
            r += (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
        out.append(r / len(folds))
    return np.mean(out, axis=0)


def _cost(args) -> None:
    from brainnet.searchlight import searchlight_encoding, sphere_neighbourhoods

    ijk, features, subjects = _study(np.random.default_rng(0), args.centres, args.subjects, args.stimuli)
    nb = sphere_neighbourhoods(ijk, 2.0)
    t0 = time.process_time()
    res = searchlight_encoding(subjects, features, nb, voxel_ijk=ijk, n_permutations=0, seed=0)
    ours = time.process_time() - t0
    t0 = time.process_time()
    ref = _reference(subjects, features, nb, 5, 0)
    theirs = time.process_time() - t0
    print(f"{args.subjects} subjects x {args.stimuli} stimuli x {len(ijk)} centres "
          f"({np.mean((nb < len(ijk)).sum(axis=1)):.0f} voxels per sphere), 5 folds, 50 units")
    print(f"  brainnet searchlight_encoding: {ours:.2f} CPU s; per-centre loop + scikit-learn RidgeCV: "
          f"{theirs:.2f} CPU s; ratio {theirs / ours:.1f}x")
    print(f"  group r: max |difference| {np.nanmax(np.abs(res.maps['r'] - ref)):.2e}")
    if args.permutations:
        t0 = time.process_time()
        res = searchlight_encoding(subjects, features, nb, voxel_ijk=ijk, n_permutations=args.permutations,
                                   seed=0)
        spent = time.process_time() - t0
        loop = theirs * (args.permutations + 1)
        print(f"  with {args.permutations} permutations: {spent:.1f} CPU s "
              f"({spent / (args.permutations + 1) / len(ijk) / args.subjects * 1e6:.1f} CPU us per centre, "
              f"subject and fit); {res.summary['n_centres_p_fwe_05']} centres p_FWE < .05")
        print(f"  the reference refitted per permutation (its time x {args.permutations + 1}, extrapolated): "
              f"{loop:.1f} CPU s; ratio {loop / spent:.1f}x")


def _calibration(n_studies: int) -> None:
    from scipy.stats import binomtest

    from brainnet.searchlight import searchlight_encoding, sphere_neighbourhoods

    voxel = cluster = 0
    for study in range(n_studies):
        rng = np.random.default_rng(2000 + study)
        ijk = np.argwhere(np.ones((5, 5, 4), bool))
        features = rng.standard_normal((15, 4))
        subjects = [rng.standard_normal((15, len(ijk))) for _ in range(3)]
        res = searchlight_encoding(subjects, features, sphere_neighbourhoods(ijk, 1.0), voxel_ijk=ijk,
                                   n_permutations=99, seed=study, cluster_p=0.05)
        voxel += bool(np.any(res.maps["p_fwe"] <= 0.05))
        cluster += bool(np.any(res.maps["cluster_p_fwe"] <= 0.05))
    for name, k in (("voxelwise FWE", voxel), ("cluster-mass FWE", cluster)):
        ci = binomtest(k, n_studies).proportion_ci()
        print(f"null studies: {name} rejects in {k}/{n_studies} = {k / n_studies:.1%} "
              f"[{ci.low:.1%}, {ci.high:.1%}] (nominal: at most 5 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centres", type=int, default=2000)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--stimuli", type=int, default=112)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--null-studies", type=int, default=600)
    args = parser.parse_args()
    _cost(args)
    if args.null_studies:
        _calibration(args.null_studies)


if __name__ == "__main__":
    main()
