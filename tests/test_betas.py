"""Single-trial betas: real NOD/THINGS events, planted responses come back (LSA and LSS)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import gamma

from brainnet.betas import fmriprep_confounds, read_events, single_trial_betas, write_betas_study
from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.study import load_study

DATA = Path(__file__).resolve().parent / "data"
NOD = DATA / "ds004496" / "sub-01" / "ses-imagenet01" / "func"
THINGS = DATA / "ds004192" / "sub-01" / "ses-things01" / "func"
TR = 2.0  # NOD's RepetitionTime (task-imagenet_bold.json)


def _nod_events(run: int) -> Path:
    return NOD / f"sub-01_ses-imagenet01_task-imagenet_run-{run:02d}_events.tsv"


def test_real_nod_events_parse_into_trials():
    for run in (1, 2):
        trials = read_events(_nod_events(run))
        raw = pd.read_csv(_nod_events(run), sep="\t")
        assert len(trials) == len(raw) == 100
        assert trials["stimulus_id"].tolist() == raw.sort_values("onset")["stim_file"].tolist()
        assert trials["stimulus_id"].str.match(r"^imagenet/n\d{8}/n\d{8}_\d+\.JPEG$").all()
        assert (np.diff(trials["onset"]) > 0).all()


def test_real_things_events_parse_into_trials():
    path = THINGS / "sub-01_ses-things01_task-things_run-01_events.tsv"
    raw = pd.read_csv(path, sep="\t")
    trials = read_events(path)
    assert len(trials) == len(raw) and trials["stimulus_id"].iloc[0] == "dog/dog_12s.jpg"
    exp = read_events(path, trial_types=["exp"])
    assert len(exp) == (raw["trial_type"] == "exp").sum() > 0
    assert not exp["stimulus_id"].str.startswith("catch").any()


def test_events_errors(tmp_path):
    path = tmp_path / "x_events.tsv"
    pd.DataFrame({"onset": [1.0], "duration": [1.0], "picture": ["a"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"x_events.tsv: no stimulus column \(looked for stimulus_id, stim_file.*\); name it with --stimulus-column"):
        read_events(path)
    assert read_events(path, stimulus_column="picture")["stimulus_id"].tolist() == ["a"]
    pd.DataFrame({"start": [1.0], "stim_file": ["a"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"x_events.tsv: missing column 'onset'"):
        read_events(path)


def _spm_hrf(dt: float) -> np.ndarray:
    # SPM's canonical double gamma, written out here independently of nilearn.
    t = np.arange(0, 32, dt)
    h = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6.0
    return h / h.sum()


def _synthetic_run(events: Path, responses: dict[str, np.ndarray], rng, noise=0.3, shape=(4, 4, 4)):
    """BOLD whose voxels respond to each stimulus with a known amplitude."""
    trials = read_events(events)
    n_vol = int(np.ceil((trials["onset"].max() + 30) / TR))
    dt = 0.1
    fine = np.zeros((int(n_vol * TR / dt), int(np.prod(shape))))
    for onset, duration, sid in trials[["onset", "duration", "stimulus_id"]].itertuples(index=False):
        fine[int(onset / dt): int((onset + duration) / dt)] += responses[sid]
    hrf = _spm_hrf(dt)
    conv = np.stack([np.convolve(fine[:, v], hrf)[: len(fine)] for v in range(fine.shape[1])], axis=1)
    bold = conv[:: int(TR / dt)][:n_vol] * 10.0
    drift = np.linspace(0, 1, n_vol)[:, None] * rng.normal(0, 1, fine.shape[1])
    bold = 100 + bold + drift + rng.normal(0, noise, bold.shape)
    img = nib.Nifti1Image(bold.T.reshape(*shape, n_vol).astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
    img.header.set_zooms((3.0, 3.0, 3.0, TR))
    return img, trials


def _responses(events_files, rng, n_voxels=64):
    ids = pd.concat([read_events(e) for e in events_files])["stimulus_id"].unique()
    return {s: rng.normal(1.0, 0.5, n_voxels) for s in ids}


@pytest.mark.parametrize("method", ["lsa", "lss"])
def test_planted_responses_come_back(method):
    rng = np.random.default_rng(0)
    runs = [_nod_events(1), _nod_events(2)] if method == "lsa" else [_nod_events(1)]
    truth = _responses(runs, rng)
    imgs = [_synthetic_run(e, truth, rng)[0] for e in runs]
    full = nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), imgs[0].affine)
    betas, trials = single_trial_betas(imgs, runs, method=method, tr=TR, mask=full, noise_model="ols")
    assert betas.shape == (4, 4, 4, 100 * len(runs)) and len(trials) == betas.shape[3]
    assert trials["run"].tolist() == [r for r in range(1, len(runs) + 1) for _ in range(100)]
    est = betas.get_fdata().reshape(64, -1).T  # (n_trials, n_voxels)
    planted = np.stack([truth[s] for s in trials["stimulus_id"]])
    r = [np.corrcoef(est[:, v], planted[:, v])[0, 1] for v in range(64)]
    assert np.median(r) > 0.8, np.median(r)


def test_confounds_selection(tmp_path):
    """nilearn's fMRIPrep loader behind --confounds motion*: the table's columns, demeaned, first-row n/a filled."""
    n = 20
    rng = np.random.default_rng(1)
    table = pd.DataFrame({c: rng.normal(size=n) for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf")})
    for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"):
        table[f"{c}_derivative1"] = table[c].diff()
        table[f"{c}_power2"] = table[c] ** 2
        table[f"{c}_derivative1_power2"] = table[f"{c}_derivative1"] ** 2
    bold = tmp_path / "sub-01_task-t_space-T1w_desc-preproc_bold.nii.gz"
    nib.Nifti1Image(np.zeros((2, 2, 2, n), np.float32), np.eye(4)).to_filename(bold)
    path = tmp_path / "sub-01_task-t_desc-confounds_timeseries.tsv"
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    assert fmriprep_confounds(bold, "none") is None
    six = fmriprep_confounds(bold, "motion6")
    assert sorted(six.columns) == sorted(["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])
    np.testing.assert_allclose(six["rot_y"], table["rot_y"] - table["rot_y"].mean())
    full = fmriprep_confounds(bold, "motion24")
    assert full.shape == (n, 24) and not full.isna().any().any()
    d = table["rot_z_derivative1"].to_numpy().copy()
    d[0] = d[1]  # nilearn fills the first row's n/a with the second row
    np.testing.assert_allclose(full["rot_z_derivative1"], d - d.mean())
    with pytest.raises(BrainnetError, match=r"^--confounds friston: unknown strategy; use one of none, motion6"):
        fmriprep_confounds(bold, "friston")
    table.drop(columns="rot_z").to_csv(path, sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"missing confound columns rot_z wanted by --confounds motion6; choose a strategy "
                                             r"this table supports \(none\) or re-run fMRIPrep"):
        fmriprep_confounds(bold, "motion6")


def _bids(tmp_path: Path, rng) -> tuple[Path, dict]:
    """A tiny BIDS dataset with fMRIPrep derivatives, built around the real NOD events."""
    bids = tmp_path / "bids"
    shutil.copytree(DATA / "ds004496", bids)
    deriv = bids / "derivatives" / "fmriprep" / "sub-01" / "ses-imagenet01" / "func"
    deriv.mkdir(parents=True)
    runs = [_nod_events(1)]
    truth = _responses(runs, rng)
    for run, events in enumerate(runs, start=1):
        img, _ = _synthetic_run(events, truth, rng)
        stem = f"sub-01_ses-imagenet01_task-imagenet_run-{run:02d}"
        img.to_filename(deriv / f"{stem}_space-T1w_desc-preproc_bold.nii.gz")
        n = img.shape[3]
        motion = pd.DataFrame({c: rng.normal(0, 0.01, n) for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")})
        motion.to_csv(deriv / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    # Some of the listed images exist in the dataset's stimuli folder.
    first = read_events(runs[0])["stimulus_id"].iloc[0]
    (bids / "stimuli" / first).parent.mkdir(parents=True, exist_ok=True)
    (bids / "stimuli" / first).write_bytes(b"jpeg")
    return bids, truth


def test_write_betas_study_from_bids(tmp_path):
    rng = np.random.default_rng(2)
    bids, truth = _bids(tmp_path, rng)
    with pytest.warns(BrainnetNotice, match="99 of 100 stimulus images not found"):
        out = write_betas_study(bids, "01", "imagenet", out=tmp_path / "study", method="lsa", mask=False,
                                noise_model="ols", confounds="motion6")
    func = out / "sub-01" / "func"
    betas = func / "sub-01_task-imagenet_space-T1w_desc-singletrial_betas.nii.gz"
    assert betas.is_file() and (out / "stimuli" / read_events(_nod_events(1))["stimulus_id"].iloc[0]).is_file()
    prov = json.loads(betas.with_name(betas.name.replace(".nii.gz", ".json")).read_text())
    assert prov["parameters"]["method"] == "lsa" and prov["parameters"]["tr"] == TR
    assert len(prov["inputs"]) == 3 and all(len(rec["sha256"]) == 64 for rec in prov["inputs"])
    events = pd.read_csv(func / "sub-01_task-imagenet_desc-singletrial_events.tsv", sep="\t")
    assert list(events.columns) == ["stimulus_id", "run", "session", "onset", "duration"]
    assert set(events["session"]) == {"imagenet01"}
    # The written folder is a study: the trial patterns carry the planted responses.
    mask = tmp_path / "all.nii.gz"
    nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), nib.load(betas).affine).to_filename(mask)
    sub = load_study(out).load_subject("01", mask=mask)
    assert sub.patterns.shape == (100, 64)
    planted = np.stack([truth[s] for s in sub.stimulus_ids])
    order = np.ravel_multi_index(sub.voxel_ijk.T, (4, 4, 4))
    r = [np.corrcoef(sub.patterns[:, v], planted[:, order[v]])[0, 1] for v in range(64)]
    assert np.median(r) > 0.8
    with pytest.raises(BrainnetError, match=r"already holds task-imagenet betas of sub-01 made from other inputs or parameters; "
                                             r"choose another --out or pass --overwrite"):
        write_betas_study(bids, "01", "imagenet", out=out, method="lsa", mask=False, confounds="motion6")


def test_bids_errors(tmp_path):
    rng = np.random.default_rng(3)
    bids, _ = _bids(tmp_path, rng)
    with pytest.raises(BrainnetError, match=r"sub-02: no events files for task 'imagenet'; check --bids, --subject and --task"):
        write_betas_study(bids, "02", "imagenet", out=tmp_path / "o")
    with pytest.raises(BrainnetError, match=r"derivatives/fmriprp: derivatives folder not found"):
        write_betas_study(bids, "01", "imagenet", out=tmp_path / "o", derivatives="fmriprp")
    with pytest.raises(BrainnetError, match=r"no BOLD runs for task 'imagenet' in space MNI152; check --derivatives, --space and --task"):
        write_betas_study(bids, "01", "imagenet", out=tmp_path / "o", space="MNI152")
    with pytest.raises(BrainnetError, match=r"^--method lsx: unknown; use one of glmsingle, lss, lsa$"):
        write_betas_study(bids, "01", "imagenet", out=tmp_path / "o", method="lsx")


def test_cli_betas(tmp_path, capsys):
    from brainnet.cli import main

    bids, _ = _bids(tmp_path, np.random.default_rng(4))
    mask = tmp_path / "all.nii.gz"
    bold = next((bids / "derivatives").rglob("*_bold.nii.gz"))
    nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), nib.load(bold).affine).to_filename(mask)
    out = tmp_path / "study"
    args = ["betas", "--bids", str(bids), "--subject", "01", "--task", "imagenet", "--method", "lsa",
            "--noise-model", "ols", "--confounds", "motion6", "--mask", str(mask), "--out", str(out)]
    assert main(args) == 0
    assert load_study(out).load_subject("01", mask=mask).patterns.shape == (100, 64)
    capsys.readouterr()
    assert main(args) == 0  # the same command again: the finished subject is reused
    assert "sub-01: betas already in" in capsys.readouterr().err
    assert main([*args[:-2], "--noise-model", "ar1", *args[-2:]]) == 2  # other parameters: refused
    assert "brainnet betas: error: " in capsys.readouterr().err
