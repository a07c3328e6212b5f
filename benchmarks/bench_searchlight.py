"""Searchlight RSA: brainnet vs rsatoolbox's searchlight pipeline, side by side.

Design of the issue's target: nilearn's 2 mm MNI152 brain mask, spheres of
radius 3 voxels *as rsatoolbox defines it* (voxels at distance < 3, 93 per
full sphere; brainnet's radius 2.9 voxels selects the same set), 112
stimuli, Spearman comparison of correlation-distance RDMs with a layer RDM.

1. One subject, all centres (or ``--centres``): brainnet's
   ``sphere_neighbourhoods`` + ``searchlight_rsa`` (no permutations) timed in
   full; rsatoolbox's pipeline (``_get_searchlight_neighbors`` per centre, the
   work of ``get_volume_searchlight``, then ``get_searchlight_RDMs`` and
   ``evaluate_models_searchlight`` with ``eval_fixed``) timed on
   ``--reference-centres`` centres and extrapolated linearly to all centres
   (said so in the output). Values are compared on those centres.
2. Group permutation maps: ``--subjects`` subjects x ``--permutations``
   condition permutations on ``--perm-centres`` centres, timed and
   extrapolated linearly in centres to the whole mask (the cost per centre is
   constant: one sphere RDM, one ranking and one row of the null product per
   subject and permutation batch).

Times are CPU seconds of this process (``time.process_time``, all threads),
the fair measure on a shared, busy machine; wall seconds are printed too.
Peak memory is the process's maximum resident set size (``getrusage``),
read after brainnet's runs and before rsatoolbox's.

Usage: python benchmarks/bench_searchlight.py [--quick] [--centres N] [--perm-centres N]
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np


def _mask(n_centres: int | None):
    from nilearn.datasets import load_mni152_brain_mask

    img = load_mni152_brain_mask(resolution=2)
    mask = np.asarray(img.dataobj) > 0
    ijk = np.argwhere(mask)
    total = len(ijk)
    if n_centres is not None and n_centres < total:
        # a contiguous slab of the brain (C order), so spheres are as in the full mask
        keep = np.zeros(total, bool)
        start = total // 2 - n_centres // 2
        keep[start : start + n_centres] = True
        sub = np.zeros_like(mask)
        sub[tuple(ijk[keep].T)] = True
        mask, ijk = sub, ijk[keep]
    return mask, ijk, total


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes on a busy machine)")
    parser.add_argument("--centres", type=int, default=None, help="centres for the one-subject run (default all)")
    parser.add_argument("--reference-centres", type=int, default=200)
    parser.add_argument("--stimuli", type=int, default=112)
    parser.add_argument("--subjects", type=int, default=18)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--perm-centres", type=int, default=20000)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.centres = args.centres or 20000
        args.perm_centres = min(args.perm_centres, 2000)
        args.reference_centres = min(args.reference_centres, 100)

    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (
        _get_searchlight_neighbors,
        evaluate_models_searchlight,
        get_searchlight_RDMs,
    )

    from brainnet.rsa import compute_rdm
    from brainnet.searchlight import searchlight_rsa, sphere_neighbourhoods

    rng = np.random.default_rng(0)
    n = args.stimuli
    mask, ijk, total = _mask(args.centres)
    latent = rng.standard_normal((n, 10))
    layer = compute_rdm(latent @ rng.standard_normal((10, 50)), [str(i) for i in range(n)]).vector
    patterns = (latent @ rng.standard_normal((10, len(ijk))) * 0.3 + rng.standard_normal((n, len(ijk))))

    # ---- brainnet, one subject
    t0, w0 = time.process_time(), time.perf_counter()
    nb = sphere_neighbourhoods(ijk, 2.9)
    res = searchlight_rsa([patterns], layer, nb, voxel_ijk=ijk, n_permutations=0, shape=mask.shape)
    t_bn, w_bn = time.process_time() - t0, time.perf_counter() - w0
    peak_bn = _peak_gb()
    per_centre_bn = t_bn / len(ijk)

    # ---- rsatoolbox on a subset of centres (spread over the slab)
    ref = np.linspace(0, len(ijk) - 1, args.reference_centres).astype(int)
    volume = np.zeros((n, mask.size))
    keys = np.ravel_multi_index(ijk.T, mask.shape)
    volume[:, keys] = patterns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, w0 = time.process_time(), time.perf_counter()
        neighbours = [
            np.ravel_multi_index(_get_searchlight_neighbors(mask, tuple(ijk[c]), 3, True), mask.shape)
            for c in ref
        ]
        sl = get_searchlight_RDMs(volume, keys[ref], neighbours, np.arange(n), method="correlation", verbose=False)
        evals = evaluate_models_searchlight(sl, ModelFixed("layer", RDMs(layer[None])), eval_fixed, method="spearman")
        t_ref, w_ref = time.process_time() - t0, time.perf_counter() - w0
    their = np.array([e.evaluations for e in evals]).ravel()
    diff = float(np.max(np.abs(their - res.subject_r[0, ref])))
    per_centre_ref = t_ref / len(ref)

    print(f"searchlight RSA, one subject: {n} stimuli, radius 3 voxels (93-voxel spheres), "
          f"{len(ijk):,} centres timed ({total:,} in the 2 mm MNI brain mask)")
    print(f"  brainnet    {t_bn:8.1f} CPU s ({w_bn:.0f} wall) for {len(ijk):,} centres = "
          f"{per_centre_bn * 1e3:.3f} CPU ms/centre "
          f"-> whole brain {per_centre_bn * total / 60:.1f} min; peak RSS {peak_bn:.2f} GB")
    print(f"  rsatoolbox  {t_ref:8.1f} CPU s ({w_ref:.0f} wall) for {len(ref):,} centres = "
          f"{per_centre_ref * 1e3:.3f} CPU ms/centre "
          f"-> whole brain {per_centre_ref * total / 60:.1f} min (extrapolated linearly from {len(ref)} centres)")
    print(f"  speed ratio {per_centre_ref / per_centre_bn:.1f}x; max |r difference| on the {len(ref)} shared "
          f"centres {diff:.2e}")

    # ---- group permutation maps
    _, pijk, _ = _mask(args.perm_centres)
    pnb = sphere_neighbourhoods(pijk, 2.9)
    subjects = [latent @ rng.standard_normal((10, len(pijk))) * 0.3 + rng.standard_normal((n, len(pijk)))
                for _ in range(args.subjects)]
    t0, w0 = time.process_time(), time.perf_counter()
    group = searchlight_rsa(subjects, layer, pnb, voxel_ijk=pijk, n_permutations=args.permutations,
                            shape=mask.shape, n_jobs=args.n_jobs)
    t_perm, w_perm = time.process_time() - t0, time.perf_counter() - w0
    per_centre = t_perm / len(pijk)
    print(f"group maps: {args.subjects} subjects x {args.permutations} permutations (voxelwise p, max-statistic "
          f"and cluster-mass FWE), n_jobs={args.n_jobs}, {len(pijk):,} centres: {t_perm:.1f} CPU s "
          f"({w_perm:.0f} wall) -> whole brain {per_centre * total / 60:.1f} CPU min, "
          f"{per_centre * total / 60 / 2:.1f} min on 2 cores (extrapolated linearly in centres); "
          f"peak RSS {_peak_gb():.2f} GB; peak r {group.summary['peak_r']:.3f}")
    print(f"  rsatoolbox has no permutation maps; its pipeline repeated per subject and permutation would take "
          f"~{per_centre_ref * total * args.subjects * (args.permutations + 1) / 86400:.0f} days (extrapolated)")


if __name__ == "__main__":
    main()
