"""Single-trial estimators side by side: simulated designs and real fMRI (Haxby et al. 2001).

Methods, all from one run:

* ``lss``       canonical LSS (nilearn FirstLevelModel, SPM HRF, AR(1), cosine drift;
                brainnet's default before the GLMsingle-class estimator);
* ``lsa``       nilearn LSA (same model, every trial in one GLM);
* ``glmsingle`` brainnet.glmsingle (per-voxel HRF, GLMdenoise, fractional ridge);
* ``blockavg``  block designs only: per-run detrended, z-scored BOLD averaged
                over each block's volumes shifted by 5 s (the classical MVPA estimate).

Data:

* ``sim-event``: brainnet._betas_sim, rapid event-related design (1-s stimuli
  every 4-6 s), 8 runs, 64 stimuli x 4 repeats (each repeat in another run),
  8 categories, 1,000 voxels (half responsive) with HRFs drawn from the
  library, AR(1) + low-rank physiological noise, drift, motion-like confounds
  (given to every method as confounds).
* ``sim-block``: the same simulator, one 24-s block per category per run, 8 runs,
  thermal noise 4x that of sim-event.
* ``haxby``: ``../shared/realdata/haxby2001-slice`` (or ``$BRAINNET_REALDATA/haxby2001-slice``; one slice of Haxby et al.
  2001, subject 1: 12 runs, 8 category blocks per run, 530 voxels); events
  built from attributes.txt (see brainnet._betas_sim.haxby_runs), no confounds.

Scores: ``truth r`` median over responsive voxels of the correlation across
trials with the planted amplitudes; ``split-half`` median voxel-wise
correlation across stimuli of the means of the first and second half of each
stimulus's presentations (responsive voxels in simulations, every voxel on
real data); ``decoding`` leave-one-run-out category accuracy (patterns
z-scored within run, linear SVM; chance 1/8).

``--nod`` also times the GLMsingle-class estimator alone on a NOD-sized
subject (100,000 voxels, 10 runs x 250 volumes, 100 trials per run, TR 2 s)
and prints seconds and peak resident memory (run it on an idle machine).

    python benchmarks/bench_betas.py            # simulations + Haxby (minutes)
    python benchmarks/bench_betas.py --nod      # + the NOD-sized timing
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

from brainnet._betas_sim import (
    block_averages,
    decode_runs,
    haxby_folder,
    haxby_runs,
    simulate_runs,
    split_half,
    truth_correlation,
)
from brainnet.betas import single_trial_betas

REALDATA = haxby_folder()


def _patterns(method: str, d: dict, mask: np.ndarray) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    if method == "blockavg":
        return block_averages(d["bold"], d["events"], d["tr"], mask.astype(int)), time.perf_counter() - t0
    import nibabel as nib

    mask_img = nib.Nifti1Image(mask.astype(np.uint8), d["bold"][0].affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        betas, _ = single_trial_betas(d["bold"], d["events"], method=method, tr=d["tr"], mask=mask_img,
                                      confounds=d.get("confounds"))
    return np.asarray(betas.dataobj)[mask].T, time.perf_counter() - t0


def _score(name: str, d: dict, methods, mask: np.ndarray, truth=None, responsive=None) -> dict:
    events = pd.concat(d["events"], ignore_index=True)
    runs = np.concatenate([[r] * len(e) for r, e in enumerate(d["events"])])
    out = {}
    for m in methods:
        x, seconds = _patterns(m, d, mask)
        row = {"seconds": seconds, "decoding": decode_runs(x, events["category"], runs),
               "split-half": split_half(x, events["stimulus_id"], runs, responsive)}
        if truth is not None:
            row["truth r"] = truth_correlation(x, truth, responsive)
        out[m] = row
        print(f"  {name:10s} {m:10s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    return out


def _table(results: dict) -> None:
    print("\n| data | method | truth r | split-half | decoding | seconds |")
    print("|---|---|---|---|---|---|")
    for data, rows in results.items():
        for m, row in rows.items():
            tr = f"{row['truth r']:.3f}" if "truth r" in row else "-"
            print(f"| {data} | {m} | {tr} | {row['split-half']:.3f} | {row['decoding']:.3f} | {row['seconds']:.1f} |")


def _nod(seed: int = 0) -> None:
    """Time glmsingle on a NOD-sized subject; the data alone are 1.0 GB of float32."""
    from brainnet.glmsingle import glmsingle

    rng = np.random.default_rng(seed)
    n_vox, n_runs, n_vol, n_trials, tr = 100_000, 10, 250, 100, 2.0
    data, trials = [], []
    for _ in range(n_runs):
        y = rng.standard_normal((n_vol, n_vox), dtype=np.float32)
        y += 1000.0
        data.append(y)
        onsets = 4 + np.arange(n_trials) * 4.5 + rng.uniform(0, 0.5, n_trials)
        trials.append(pd.DataFrame({"onset": onsets, "duration": 1.0, "stimulus_id": [f"s{i}" for i in rng.permutation(n_trials * 2)[:n_trials]]}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    res = glmsingle(data, trials, tr=tr)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nNOD-sized subject ({n_vox:,} voxels, {n_runs} runs x {n_vol} volumes, {n_trials} trials/run): "
          f"glmsingle {seconds:.0f} s wall, {cpu:.0f} s CPU, peak RSS {peak:.0f} MB (data {sum(d.nbytes for d in data) / 2**20:.0f} MB; "
          f"RSS before the fit {before:.0f} MB); {res.info['n_noise_regressors']} noise regressors, "
          f"fraction cross-validated: {res.info['fraction_cross_validated']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nod", action="store_true", help="also time glmsingle on a NOD-sized subject")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    for design in ("event", "block"):
        # Blocks carry 24 s of signal each: 4x the thermal noise keeps decoding off the ceiling.
        sim = simulate_runs(design, shape=(10, 10, 10), n_runs=8, n_stimuli=64, n_repeats=4, seed=args.seed,
                            noise=1.0 if design == "event" else 4.0)
        mask = np.ones(sim["bold"][0].shape[:3], bool)
        methods = ("lss", "lsa", "glmsingle") + (("blockavg",) if design == "block" else ())
        results[f"sim-{design}"] = _score(f"sim-{design}", sim, methods, mask, sim["amplitudes"], sim["responsive"])
    if REALDATA.is_dir():
        hx = haxby_runs(REALDATA)
        results["haxby"] = _score("haxby", hx, ("lss", "lsa", "glmsingle", "blockavg"), hx["mask"])
    else:
        print(f"  haxby: {REALDATA} not found; real-data rows skipped")
    _table(results)
    ev = results["sim-event"]
    print(f"\nsim-event split-half: glmsingle {ev['glmsingle']['split-half']:.3f} vs canonical LSS {ev['lss']['split-half']:.3f} "
          f"(ratio {ev['glmsingle']['split-half'] / ev['lss']['split-half']:.2f})")
    for data in ("sim-block", "haxby"):
        if data in results:
            r = results[data]
            print(f"{data} decoding relative to block averages: " + ", ".join(
                f"{m} {r[m]['decoding'] / r['blockavg']['decoding']:.2f}" for m in r if m != "blockavg"))
    if args.nod:
        _nod(args.seed)


if __name__ == "__main__":
    main()
