"""The front door from fMRIPrep: a BIDS + fMRIPrep folder -> `brainnet betas --subject all` -> study -> analyses.

The miniature dataset (brainnet.datasets.miniature) has fMRIPrep's layout,
confounds columns and aCompCor metadata, and a planted truth: which voxels
respond to the images, which volumes are high-motion, which voxels are
outside the brain mask.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainnet.betas import CONFOUND_STRATEGIES, fmriprep_confounds, write_betas_study
from brainnet.cli import main
from brainnet.datasets.miniature import simulate_fmriprep_dataset
from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.study import load_study

TASK = "images"
QUICK = ["--method", "lsa", "--noise-model", "ols"]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """Two subjects x two runs, 32 images; read-only (copy it before changing it)."""
    return simulate_fmriprep_dataset(tmp_path_factory.mktemp("mini") / "bids", n_subjects=2, n_runs=2, seed=3)


def _prep(mini, subject="01", run=1, what="desc-preproc_bold.nii.gz") -> Path:
    func = mini.root / "derivatives" / "fmriprep" / f"sub-{subject}" / "func"
    stem = f"sub-{subject}_task-{TASK}_run-{run:02d}"
    return func / (f"{stem}_{what}" if what.startswith("desc-confounds") else f"{stem}_space-{mini.space}_{what}")


def _betas(out: Path, subject: str, space: str) -> Path:
    return out / f"sub-{subject}" / "func" / f"sub-{subject}_task-{TASK}_space-{space}_desc-singletrial_betas.nii.gz"


def test_miniature_dataset_is_read_by_pybids_and_nilearn_as_fmriprep_output(mini):
    from bids import BIDSLayout
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = BIDSLayout(mini.root, validate=True, derivatives=True)
    assert layout.get_subjects() == mini.subjects and layout.get_tasks() == [TASK]
    preproc = layout.get(desc="preproc", suffix="bold", extension=".nii.gz", return_type="filename")
    assert len(preproc) == 4 and all(mini.space in p for p in preproc)
    assert len(layout.get(desc="brain", suffix="mask", return_type="filename")) == 4
    table = pd.read_csv(_prep(mini, what="desc-confounds_timeseries.tsv"), sep="\t")
    fmriprep_columns = {"global_signal", "csf", "white_matter", "csf_wm", "tcompcor", "std_dvars", "dvars",
                        "framewise_displacement", "rmsd", "a_comp_cor_00", "c_comp_cor_00", "w_comp_cor_00",
                        "t_comp_cor_00", "cosine00", "trans_x_derivative1_power2", "rot_z_power2", "motion_outlier00"}
    assert fmriprep_columns <= set(table.columns)
    meta = json.loads(_prep(mini, what="desc-confounds_timeseries.json").read_text())
    assert meta["a_comp_cor_00"]["Mask"] == "combined" and meta["c_comp_cor_00"]["Mask"] == "CSF"
    # nilearn's own presets read the tables; scrubbing censors exactly the planted high-motion volumes.
    for preset in ("simple", "compcor"):
        frame, _ = load_confounds_strategy(str(_prep(mini)), preset)
        assert len(frame) == len(table)
    _, kept = load_confounds_strategy(str(_prep(mini)), "scrubbing")
    assert sorted(set(range(len(table))) - set(kept.tolist())) == mini.high_motion[("01", 1)]
    assert len(mini.high_motion[("01", 1)]) == 4 and mini.high_motion[("01", 2)] == []


def test_confound_strategies_take_the_columns_their_table_row_names(mini):
    bold = _prep(mini)
    table = pd.read_csv(_prep(mini, what="desc-confounds_timeseries.tsv"), sep="\t")
    motion = [f"{b}{s}" for b in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
              for s in ("", "_derivative1", "_power2", "_derivative1_power2")]
    frames = {name: fmriprep_confounds(bold, name) for name in CONFOUND_STRATEGIES}
    assert frames["none"] is None
    assert set(frames["motion6"].columns) == set(motion[::4])
    assert set(frames["motion24"].columns) == set(motion)
    assert set(frames["wmcsf"].columns) == {*motion, "csf", "white_matter"}
    acompcor = set(frames["acompcor"].columns) - set(motion)
    cosines = {c for c in table.columns if c.startswith("cosine")}
    assert acompcor == {f"a_comp_cor_{i:02d}" for i in range(5)} | cosines  # combined mask only, not c_/w_
    censored = [int(c.split("_")[1]) for c in frames["scrubbing"].columns if c.startswith("censored_")]
    assert censored == mini.high_motion[("01", 1)]
    np.testing.assert_allclose(frames["wmcsf"]["csf"], table["csf"] - table["csf"].mean())


def test_betas_all_uses_fmriprep_masks_and_encoding_finds_the_planted_voxels(mini, tmp_path, capsys, science_scale):
    from brainnet.encoding import encode_subjects

    out = tmp_path / "study"
    # Full run: AR(1) noise model on three runs. (LSS, the default, ranks one planted voxel below a noise
    # voxel on this rapid design: planted r 0.51-0.93 against up to 0.54 for noise, LSA 0.84-0.95 against 0.37.)
    method = QUICK if science_scale == "quick" else ["--method", "lsa"]
    if science_scale == "full":
        mini = simulate_fmriprep_dataset(tmp_path / "bids", n_subjects=2, n_runs=3, seed=4)
    argv = ["betas", "--bids", mini.root, "--subject", "all", "--task", TASK, "--confounds", "acompcor", *method, "--out", out]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    study = load_study(out)
    assert study.subjects == mini.subjects and len(study.stimulus_ids) == len(mini.stimuli)
    assert all((out / "stimuli" / s).is_file() for s in study.stimulus_ids)
    # Only the voxels inside fMRIPrep's brain mask were modelled: the others are 0 in every trial.
    data = np.asarray(nib.load(_betas(out, "01", mini.space)).dataobj)
    assert np.all(data[~mini.brain_mask] == 0) and np.all(np.abs(data[mini.brain_mask]).max(axis=1) > 0)
    prov = json.loads(_betas(out, "01", mini.space).with_suffix("").with_suffix(".json").read_text())
    assert prov["parameters"]["mask"].startswith("fmriprep desc-brain_mask")
    assert prov["parameters"]["confounds"] == "acompcor"
    assert sum("desc-brain_mask" in rec["path"] for rec in prov["inputs"]) == len(list(mini.root.glob("derivatives/fmriprep/sub-01/func/*_desc-brain_mask.nii.gz")))

    mask = _prep(mini, what="desc-brain_mask.nii.gz")
    encoded = encode_subjects(study, "all", tmp_path / "results", mask=mask, n_permutations=100, cv=4)
    assert encoded.computed == mini.subjects
    for label in mini.subjects:
        assert study.load_subject(label, mask=mask).n_voxels == int(mini.brain_mask.sum())
        scores = pd.read_csv(encoded.folders[label] / "voxel_scores.tsv", sep="\t")
        flat = np.ravel_multi_index((scores["i"], scores["j"], scores["k"]), mini.brain_mask.shape)
        top = set(flat[np.argsort(scores["r"].to_numpy())[-mini.planted.size:]])
        assert top == set(mini.planted.tolist()), label
        assert np.all(scores["p"].to_numpy()[np.isin(flat, mini.planted)] <= 0.02), label


def test_acompcor_recovers_planted_betas_better_than_motion_only(mini, tmp_path):
    """The miniature's noise includes the aCompCor signals: regressing them out must help (planted truth)."""
    reliability = {}
    for strategy in ("motion24", "acompcor"):
        out = write_betas_study(mini.root, "01", TASK, out=tmp_path / strategy, method="lsa", noise_model="ols",
                                confounds=strategy)
        sub = load_study(out).load_subject("01", mask=_prep(mini, what="desc-brain_mask.nii.gz"))
        flat = np.ravel_multi_index(sub.voxel_ijk.T, mini.brain_mask.shape)
        cols = np.flatnonzero(np.isin(flat, mini.planted))
        halves = [sub.patterns[sub.runs == r][np.argsort(sub.stimulus_ids[sub.runs == r])][:, cols] for r in (1, 2)]
        reliability[strategy] = np.median([np.corrcoef(halves[0][:, v], halves[1][:, v])[0, 1] for v in range(cols.size)])
    assert reliability["acompcor"] > reliability["motion24"] + 0.1, reliability


def test_betas_all_resumes_with_the_subject_in_progress_and_equals_a_dask_run(mini, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    kwargs = {"method": "lsa", "noise_model": "ols", "confounds": "wmcsf"}
    out = write_betas_study(mini.root, "all", TASK, out=tmp_path / "here", **kwargs)
    first, second = _betas(out, "01", mini.space), _betas(out, "02", mini.space)
    reference = np.asarray(nib.load(second).dataobj).copy()
    stamp = first.stat().st_mtime_ns
    # As if killed while writing sub-02: its betas are there, its provenance sidecar (written last) is not.
    second.with_suffix("").with_suffix(".json").unlink()
    nib.save(nib.Nifti1Image(np.zeros_like(reference), nib.load(second).affine), second)
    with pytest.warns(BrainnetNotice) as notices:
        write_betas_study(mini.root, "01,sub-02", TASK, out=out, **kwargs)  # the same subjects, named
    err = " ".join(str(n.message) for n in notices)
    assert "sub-01: betas already in" in err and "sub-02: an earlier run did not finish this subject" in err
    assert first.stat().st_mtime_ns == stamp  # the finished subject was not recomputed
    np.testing.assert_array_equal(np.asarray(nib.load(second).dataobj), reference)
    assert load_study(out).subjects == mini.subjects
    # One Dask task per subject gives the same betas as one process.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        there = write_betas_study(mini.root, "all", TASK, out=tmp_path / "there", scheduler=client, **kwargs)
    for label in mini.subjects:
        a, b = (np.asarray(nib.load(_betas(o, label, mini.space)).dataobj) for o in (out, there))
        np.testing.assert_array_equal(a, b)
    assert load_study(there).subjects == mini.subjects


def test_events_from_real_nod_runs_time_the_miniature(tmp_path):
    nod = Path(__file__).parent / "data" / "ds004496" / "sub-01" / "ses-imagenet01" / "func"
    runs = sorted(nod.glob("*_events.tsv"))
    mini = simulate_fmriprep_dataset(tmp_path / "bids", n_subjects=1, n_runs=2, n_stimuli=12, events_from=runs, seed=1)
    for run, source in enumerate(runs, start=1):
        ours = pd.read_csv(mini.root / "sub-01" / "func" / f"sub-01_task-{TASK}_run-{run:02d}_events.tsv", sep="\t")
        real = pd.read_csv(source, sep="\t").iloc[:12]
        np.testing.assert_allclose(np.diff(ours["onset"]), np.diff(real["onset"]), atol=1e-3)
        assert ours["duration"].tolist() == real["duration"].tolist()


def test_study_option_on_a_bids_or_fmriprep_folder_gives_the_betas_command(mini, tmp_path, capsys):
    root = mini.root
    command = f"brainnet betas --bids {root} --subject all --task {TASK} --out {root.parent / 'bids_study'}"
    for folder, kind in ((root, "a BIDS dataset"), (root / "derivatives" / "fmriprep", "an fMRIPrep output folder")):
        assert main(["encode", "--study", str(folder), "--subject", "01"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (f"brainnet encode: error: {folder}: {kind}, not a brainnet study; a study is made with "
                       f"brainnet betas; run: {command}")
    raw_only = Path(shutil.copytree(root, tmp_path / "raw", ignore=shutil.ignore_patterns("derivatives", "stimuli")))
    assert main(["rsa", "--study", str(raw_only)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"run: brainnet betas --bids {raw_only} --subject all --task {TASK} --derivatives none --out {tmp_path / 'raw_study'}")


@pytest.mark.slow
def test_sigkilled_betas_all_resumes_and_equals_an_uninterrupted_run(mini, tmp_path):
    """SIGKILL `brainnet betas --subject all` once sub-01 is complete; the rerun keeps sub-01 and finishes sub-02."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "study"
    argv = ["betas", "--bids", str(mini.root), "--subject", "all", "--task", TASK, *QUICK, "--confounds", "motion6",
            "--out", str(out)]
    done = _betas(out, "01", mini.space).with_suffix("").with_suffix(".json")
    pending = _betas(out, "02", mini.space).with_suffix("").with_suffix(".json")
    proc = subprocess.Popen([sys.executable, "-m", "brainnet", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and not done.exists():
            time.sleep(0.02)
        if proc.poll() is not None or pending.exists():
            pytest.fail(f"the run ended before sub-02 was in progress: {proc.stderr.read()!r}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    stamp = _betas(out, "01", mini.space).stat().st_mtime_ns
    assert main(argv) == 0
    assert _betas(out, "01", mini.space).stat().st_mtime_ns == stamp
    reference = write_betas_study(mini.root, "02", TASK, out=tmp_path / "reference", method="lsa", noise_model="ols",
                                  confounds="motion6")
    np.testing.assert_array_equal(np.asarray(nib.load(_betas(out, "02", mini.space)).dataobj),
                                  np.asarray(nib.load(_betas(reference, "02", mini.space)).dataobj))
    assert load_study(out).subjects == mini.subjects


def test_t1w_betas_carry_the_subjects_parcellation_and_run_with_its_own_regions(tmp_path, capsys):
    # fMRIPrep in T1w space: `brainnet betas` copies each subject's aparc parcellation into the study,
    # so per-subject analyses run with --mask occipital-aparc; an MNI atlas region is refused.
    from brainnet.encoding import encode_subjects

    mini = simulate_fmriprep_dataset(tmp_path / "bids", n_subjects=2, n_runs=2, n_stimuli=16, space="T1w", seed=2)
    out = tmp_path / "study"
    argv = ["betas", "--bids", mini.root, "--subject", "all", "--task", TASK, *QUICK, "--out", out]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    study = load_study(out)
    assert [study.subject_space(s) for s in study.subjects] == ["T1w", "T1w"]
    for label in study.subjects:
        assert (out / f"sub-{label}" / "anat" / f"sub-{label}_desc-aparcaseg_dseg.nii.gz").is_file()
        data = study.load_subject(label, mask="occipital-aparc")
        flat = np.ravel_multi_index(tuple(data.voxel_ijk.T), mini.brain_mask.shape)
        assert set(flat.tolist()) == set(mini.planted.tolist())  # lateral occipital = the planted voxels
    encoded = encode_subjects(study, "all", tmp_path / "results", mask="occipital-aparc", n_permutations=20, cv=4)
    assert all(encoded.table["mean_r"] > 0.5)
    with pytest.raises(BrainnetError, match=r"^--mask occipital: an MNI152 atlas region, but sub-01's betas are in space T1w"):
        study.load_subject("01", mask="occipital")
