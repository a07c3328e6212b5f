"""The GLMsingle-class estimator: planted truth, independent references, real fMRI."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import gamma

from brainnet._betas_sim import (
    block_averages,
    decode_runs,
    haxby_folder,
    haxby_runs,
    simulate_runs,
    truth_correlation,
)
from brainnet.betas import single_trial_betas, write_betas_study
from brainnet.errors import BrainnetError
from brainnet.glmsingle import FRACTIONS, HRF_PEAKS, _regressors, glmsingle, hrf_library


def _arrays(sim):
    return [np.asarray(b.dataobj).reshape(-1, b.shape[3]).T for b in sim["bold"]]


def test_hrf_library_peaks_where_documented():
    dt = 0.01
    lib = hrf_library(dt)
    assert lib.shape == (20, 3200)
    np.testing.assert_allclose(lib.max(axis=1), 1.0)
    # Peak times agree with HRF_PEAKS to the sampling step.
    np.testing.assert_allclose(lib.argmax(axis=1) * dt, HRF_PEAKS, atol=dt)
    # Library HRF k is SPM's double gamma (written out here) on a stretched time axis.
    t = np.arange(3200) * dt
    spm = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6.0
    stretch = HRF_PEAKS[7] / (t[np.argmax(spm)])
    ref = gamma.pdf(t / stretch, 6) - gamma.pdf(t / stretch, 16) / 6.0
    np.testing.assert_allclose(lib[7], ref / ref.max(), atol=1e-3)


def test_regressors_agree_with_nilearn_design_matrices():
    from nilearn.glm.first_level import make_first_level_design_matrix

    tr, n, oversampling = 2.0, 100, 50
    dt = tr / oversampling
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"onset": np.sort(rng.uniform(0, 180, 12)), "duration": rng.choice([0.5, 1.0, 3.0], 12)})
    events["trial_type"] = [f"t{i:02d}" for i in range(12)]
    for k in (0, 7, 19):
        def hrf(t_r, over, k=k):
            return hrf_library(t_r / over)[k]

        ref = make_first_level_design_matrix(np.arange(n) * tr, events, hrf_model=hrf, drift_model=None,
                                             oversampling=oversampling)
        ref = ref[[f"t{i:02d}_hrf" for i in range(12)]].to_numpy()
        ours = _regressors(events, n, tr, hrf_library(dt)[k:k + 1], dt, normalise=False)[0]
        # nilearn places an onset on the first fine-grid point at or after it, we on the nearest:
        # a shift of at most one fine step changes a boxcar convolved with a kernel of maximum 1
        # by at most 2 (the kernel's value entering minus the one leaving).
        assert np.abs(ref - ours).max() <= 2.0, np.abs(ref - ours).max()
        assert min(np.corrcoef(ref[:, j], ours[:, j])[0, 1] for j in range(12)) > 0.999


def test_betas_agree_with_fracridge_and_nilearn_rebuilt_independently():
    """Without noise regressors, each voxel's betas are fracridge's solver on nilearn's design, rescaled.

    (fracridge's FracRidgeRegressor fails on scikit-learn >= 1.2, where ``_preprocess_data`` lost
    ``normalize``; its ``fracridge`` function is the same solver.)
    """
    from fracridge import fracridge
    from nilearn.glm.first_level import make_first_level_design_matrix

    sim = simulate_runs("event", shape=(3, 3, 3), n_runs=4, n_stimuli=16, n_repeats=3, seed=5)
    tr, dt = sim["tr"], sim["tr"] / 50
    data = _arrays(sim)
    res = glmsingle(data, sim["events"], tr=tr, max_pcs=0, dt=dt)
    assert res.info["fraction_cross_validated"] and res.info["n_noise_regressors"] == 0
    shrunk = np.flatnonzero(res.fraction < 1)
    assert shrunk.size > 0
    for v in shrunk[:3]:
        k = int(res.hrf_index[v])
        est, ols = [], []
        for y, ev in zip(data, sim["events"], strict=True):
            frame_times = np.arange(len(y)) * tr
            names = [f"t{i:03d}" for i in range(len(ev))]
            design = make_first_level_design_matrix(
                frame_times, ev.assign(trial_type=names)[["onset", "duration", "trial_type"]],
                hrf_model=lambda t_r, over, k=k: hrf_library(t_r / over)[k], drift_model="polynomial",
                drift_order=int(round(len(y) * tr / 120)), oversampling=50)
            x = design[[f"{n}_<lambda>" for n in names]].to_numpy()
            # Each regressor scaled so the response to its boxcar peaks at 1 (as documented).
            x = x / np.array([np.convolve(np.ones(max(int(round(d / dt)), 1)), hrf_library(dt)[k]).max() for d in ev["duration"]])
            drift = design.drop(columns=[f"{n}_<lambda>" for n in names]).to_numpy()
            q, _ = np.linalg.qr(drift)
            psc = y[:, v] / y[:, v].mean() * 100
            xr, yr = x - q @ (q.T @ x), psc - q @ (q.T @ psc)
            est.append(fracridge(xr, yr, float(res.fraction[v]), jit=False)[0])
            ols.append(np.linalg.lstsq(xr, yr, rcond=None)[0])
        est, ols = np.concatenate(est), np.concatenate(ols)
        slope, offset = np.polyfit(est, ols, 1)
        # nilearn and we put onsets up to one fine step apart (see the test above): agreement to 1 %.
        ref = offset + slope * est
        assert np.abs(res.betas[:, v] - ref).max() <= 0.01 * np.abs(ref).max() + 1e-6, (v, np.abs(res.betas[:, v] - ref).max())
        # The chosen fraction is what fracridge promises: |ridge| / |OLS| per run.
        assert np.isclose(np.linalg.norm(est[: len(sim["events"][0])]) / np.linalg.norm(ols[: len(sim["events"][0])]),
                          res.fraction[v], atol=0.02)


def test_hrf_choice_recovers_planted_hrfs():
    sim = simulate_runs("event", shape=(6, 6, 6), n_runs=6, n_stimuli=36, n_repeats=3, seed=2, noise=0.25)
    res = glmsingle(_arrays(sim), sim["events"], tr=sim["tr"], confounds=[c.to_numpy() for c in sim["confounds"]])
    resp = sim["responsive"]
    off = np.abs(HRF_PEAKS[res.hrf_index[resp]] - HRF_PEAKS[sim["hrf_index"][resp]])
    within = np.mean(off <= 1.0)
    # Chance of |peak difference| <= 1 s for two independent uniform indices of the library.
    idx = np.arange(20)
    chance = np.mean(np.abs(HRF_PEAKS[idx[:, None]] - HRF_PEAKS[idx[None, :]]) <= 1.0)
    sd = np.sqrt(chance * (1 - chance) / resp.sum())
    assert within > max(0.5, chance + 4 * sd), (within, chance, sd)  # measured 0.65 vs chance 0.42
    assert np.corrcoef(res.hrf_index[resp], sim["hrf_index"][resp])[0, 1] > 0.3
    # Voxels without a response are the noise pool; they have no cross-validated task variance.
    assert np.median(res.r2[~resp]) < 0.01 < np.median(res.r2[resp])


def test_recovers_planted_amplitudes_better_than_canonical_lss(science_scale):
    n_runs, n_stimuli = (6, 24) if science_scale == "quick" else (8, 64)
    sim = simulate_runs("event", shape=(5, 5, 5), n_runs=n_runs, n_stimuli=n_stimuli, n_repeats=3, seed=7)
    full = nib.Nifti1Image(np.ones((5, 5, 5), np.uint8), sim["bold"][0].affine)
    kw = {"tr": sim["tr"], "mask": full, "confounds": sim["confounds"]}
    ours, trials = single_trial_betas(sim["bold"], sim["events"], **kw)  # the default method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lss, _ = single_trial_betas(sim["bold"], sim["events"], method="lss", **kw)
    assert trials["stimulus_id"].tolist() == pd.concat(sim["events"])["stimulus_id"].tolist()
    resp = np.flatnonzero(sim["responsive"])
    a, b = (np.asarray(img.dataobj).reshape(-1, len(trials)).T for img in (ours, lss))
    r_ours = [truth_correlation(a, sim["amplitudes"], [v]) for v in resp]
    r_lss = [truth_correlation(b, sim["amplitudes"], [v]) for v in resp]
    # Sign test across responsive voxels: better in clearly more than half (3 binomial SDs above 1/2).
    better = np.mean(np.array(r_ours) > np.array(r_lss))
    assert better > 0.5 + 3 * 0.5 / np.sqrt(resp.size), better
    assert np.median(r_ours) > np.median(r_lss), (np.median(r_ours), np.median(r_lss))


def test_no_repeats_means_ols_and_nan_noise_ceiling():
    sim = simulate_runs("event", shape=(3, 3, 3), n_runs=3, n_stimuli=30, n_repeats=1, seed=3)
    res = glmsingle(_arrays(sim), sim["events"], tr=sim["tr"], max_pcs=2)
    assert not res.info["fraction_cross_validated"] and res.info["fractions"] == [1.0]
    assert (res.fraction == 1).all() and np.isnan(res.ncsnr).all()


def test_noise_pool_without_voxels_is_refused():
    # Every voxel responds, without noise: no voxel is free of task variance.
    rng = np.random.default_rng(1)
    events = [pd.DataFrame({"onset": 10.0 + 30 * np.arange(4), "duration": 10.0, "stimulus_id": list("abcd")}) for _ in range(3)]
    x = [_regressors(ev, 70, 2.0, hrf_library(0.1)[5:6], 0.1)[0] for ev in events]
    data = [1000 + 10 * xr @ rng.uniform(0.5, 1.5, (4, 8)) for xr in x]
    with pytest.raises(BrainnetError, match=r"^glmsingle: the noise pool has no voxels \(every modelled voxel's cross-validated "
                                            r"R² > 0\); widen --mask beyond the task-responsive voxels \(in Python: or pass max_pcs=0\)$"):
        glmsingle(data, events, tr=2.0)
    assert glmsingle(data, events, tr=2.0, max_pcs=0).betas.shape == (12, 8)
    with pytest.raises(BrainnetError, match=r"^glmsingle: fractions must include 1 \(the OLS solution\); add it$"):
        glmsingle(data, events, tr=2.0, fractions=[0.5])


def test_write_betas_study_writes_maps_and_provenance(tmp_path):
    sim = simulate_runs("event", shape=(4, 4, 4), n_runs=3, n_stimuli=12, n_repeats=3, seed=4)
    bids = tmp_path / "bids"
    func = bids / "sub-01" / "func"
    func.mkdir(parents=True)
    for r, (img, ev) in enumerate(zip(sim["bold"], sim["events"], strict=True), start=1):
        img.header.set_zooms((3.0, 3.0, 3.0, sim["tr"]))
        img.to_filename(func / f"sub-01_task-sim_run-{r}_bold.nii.gz")
        ev.drop(columns="category").to_csv(func / f"sub-01_task-sim_run-{r}_events.tsv", sep="\t", index=False)
    out = write_betas_study(bids, "01", "sim", out=tmp_path / "study", derivatives=None, mask=False, copy_stimuli=False)
    got = out / "sub-01" / "func"
    betas = got / "sub-01_task-sim_space-orig_desc-singletrial_betas.nii.gz"
    prov = json.loads(betas.with_name(betas.name.replace(".nii.gz", ".json")).read_text())
    assert prov["parameters"]["method"] == "glmsingle"
    assert set(prov["maps"]) == {"hrf_index", "r2", "fraction", "ncsnr"}
    assert prov["glmsingle"]["fraction_cross_validated"] is True and "n_noise_regressors" in prov["glmsingle"]
    for name in prov["maps"].values():
        img = nib.load(got / name)
        assert img.shape == (4, 4, 4) and np.allclose(img.affine, nib.load(betas).affine)
    hrf = np.asarray(nib.load(got / prov["maps"]["hrf_index"]).dataobj)
    assert hrf.min() >= 0 and hrf.max() < 20
    frac = np.asarray(nib.load(got / prov["maps"]["fraction"]).dataobj)
    assert set(np.round(np.unique(frac).astype(float), 2)) <= set(FRACTIONS.tolist())


HAXBY = haxby_folder()


@pytest.mark.skipif(not HAXBY.is_dir(), reason=f"real fMRI not found at {HAXBY} (../shared/realdata beside the repository)")
def test_default_keeps_block_average_decoding_on_real_haxby_blocks():
    hx = haxby_runs(HAXBY)
    events = pd.concat(hx["events"], ignore_index=True)
    runs = np.repeat(np.arange(len(hx["events"])), [len(e) for e in hx["events"]])
    assert len(runs) == 96 and events["stimulus_id"].nunique() == 8
    mask = nib.Nifti1Image(hx["mask"].astype(np.uint8), hx["bold"][0].affine)
    betas, _ = single_trial_betas(hx["bold"], hx["events"], tr=hx["tr"], mask=mask)
    ours = decode_runs(np.asarray(betas.dataobj)[hx["mask"]].T, events["category"], runs)
    blocks = decode_runs(block_averages(hx["bold"], hx["events"], hx["tr"], hx["mask"]), events["category"], runs)
    # Both are accuracies over the same 96 blocks; the goal is 0.9 of block averages.
    assert blocks > 0.5 and ours >= 0.9 * blocks, (ours, blocks)


@pytest.mark.skipif(not HAXBY.is_dir(), reason=f"real fMRI not found at {HAXBY} (../shared/realdata beside the repository)")
def test_realdata_manifest_matches_the_files_read():
    import hashlib
    from pathlib import Path

    manifest = json.loads((Path(__file__).resolve().parents[1] / "data_manifests" / "realdata.json").read_text())
    (entry,) = [d for d in manifest["datasets"] if d["name"] == "haxby2001-slice"]
    for rec in entry["files"]:
        path = HAXBY / rec["name"]
        assert path.stat().st_size == rec["size"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == rec["sha256"]


def test_runs_on_different_grids_are_refused():
    sim = simulate_runs("event", shape=(3, 3, 3), n_runs=2, n_stimuli=8, n_repeats=2, seed=8)
    small = nib.Nifti1Image(np.asarray(sim["bold"][1].dataobj)[:2], sim["bold"][1].affine)
    with pytest.raises(BrainnetError, match=r"^BOLD run 2: grid \(shape \(2, 3, 3\)\) differs from that of BOLD run 1 "
                                            r"\(shape \(3, 3, 3\)\) or its affine; give runs on one grid"):
        single_trial_betas([sim["bold"][0], small], sim["events"], tr=sim["tr"], mask=False)
