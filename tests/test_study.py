"""The study format: loading, shared voxel sets, validation messages, the embedded study."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.masks import load_mask, n_voxels
from brainnet.study import Study, load_study

SHAPE = (50, 22, 48)  # 4 mm MNI grid cropped to the back of the brain


def _affine() -> np.ndarray:
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-98.0, -134.0, -72.0]
    return affine


def write_study(root: Path, n_subjects=2, n_stimuli=6, repeats=2, seed=0, shape=SHAPE) -> Path:
    """A hand-made study in the documented layout (no network needed)."""
    rng = np.random.default_rng(seed)
    (root / "stimuli").mkdir(parents=True)
    ids = [f"img{i}" for i in range(n_stimuli)]
    pd.DataFrame({"participant_id": [f"sub-{s + 1:02d}" for s in range(n_subjects)]}).to_csv(root / "participants.tsv", sep="\t", index=False)
    pd.DataFrame({"stimulus_id": ids, "file": [f"{i}.png" for i in ids], "category": ["a", "b"] * (n_stimuli // 2)}).to_csv(root / "stimuli.tsv", sep="\t", index=False)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0", "DatasetType": "derivative"}')
    for s in range(n_subjects):
        func = root / f"sub-{s + 1:02d}" / "func"
        func.mkdir(parents=True)
        order = np.concatenate([rng.permutation(n_stimuli) for _ in range(repeats)])
        data = rng.standard_normal((*shape, order.size)).astype(np.float32)
        nib.Nifti1Image(data, _affine()).to_filename(func / f"sub-{s + 1:02d}_task-demo_space-MNI152_desc-singletrial_betas.nii.gz")
        pd.DataFrame({"stimulus_id": [ids[i] for i in order], "run": np.repeat(np.arange(1, repeats + 1), n_stimuli)}).to_csv(
            func / f"sub-{s + 1:02d}_task-demo_desc-singletrial_events.tsv", sep="\t", index=False)
    return root


def _betas(root: Path, sub="01") -> Path:
    return root / f"sub-{sub}" / "func" / f"sub-{sub}_task-demo_space-MNI152_desc-singletrial_betas.nii.gz"


def _events(root: Path, sub="01") -> Path:
    return root / f"sub-{sub}" / "func" / f"sub-{sub}_task-demo_desc-singletrial_events.tsv"


@pytest.fixture
def study_dir(tmp_path) -> Path:
    return write_study(tmp_path / "study")


def test_load_subject_matches_nilearn_masker(study_dir):
    study = load_study(study_dir)
    assert study.task == "demo" and study.subjects == ["01", "02"]
    assert study.stimulus_ids == tuple(f"img{i}" for i in range(6))
    assert study.categories == {f"img{i}": "ab"[i % 2] for i in range(6)}
    sub = study.load_subject("sub-01")
    img = nib.load(_betas(study_dir))
    mask = load_mask("occipital", img)
    assert sub.patterns.shape == (12, n_voxels(mask)) and sub.patterns.dtype == np.float32
    assert sub.n_dropped == 0 and sub.mask_name == "occipital"
    # Independent reference: nilearn's own masking of the same image.
    np.testing.assert_allclose(sub.masker.transform(img), sub.patterns, rtol=1e-6)
    data = img.get_fdata()
    i, j, k = sub.voxel_ijk[5]
    np.testing.assert_allclose(sub.patterns[:, 5], data[i, j, k, :], rtol=1e-6)
    back = sub.masker.inverse_transform(np.arange(sub.n_voxels, dtype=np.float32))
    assert back.shape == SHAPE and back.get_fdata()[i, j, k] == 5
    events = pd.read_csv(_events(study_dir), sep="\t")
    assert sub.stimulus_ids.tolist() == events["stimulus_id"].tolist()
    assert sub.runs.tolist() == events["run"].tolist()


def test_averaged_repeats_in_study_order(study_dir):
    sub = load_study(study_dir).load_subject("01", mask="v1")
    avg, ids = sub.averaged()
    assert ids == tuple(f"img{i}" for i in range(6))
    for row, sid in enumerate(ids):
        np.testing.assert_allclose(avg[row], sub.patterns[sub.stimulus_ids == sid].mean(0), rtol=1e-5)


def test_bad_voxels_dropped_in_every_subject_and_counted(study_dir):
    img = nib.load(_betas(study_dir, "02"))
    data = img.get_fdata().astype(np.float32)
    mask = np.asarray(load_mask("occipital", img).dataobj) > 0
    inside = np.argwhere(mask)
    i, j, k = inside[0]
    data[i, j, k, 3] = np.nan  # one NaN trial
    i2, j2, k2 = inside[1]
    data[i2, j2, k2, :] = 2.5  # constant voxel
    nib.Nifti1Image(data, img.affine).to_filename(_betas(study_dir, "02"))
    study = load_study(study_dir)
    with pytest.warns(BrainnetNotice, match="sub-02: dropped 2 of"):
        one = study.load_subject("02")
    assert one.n_dropped == 2 and one.n_voxels == mask.sum() - 2
    with pytest.warns(BrainnetNotice) as notices:
        subs = study.load_subjects()
    err = " ".join(str(n.message) for n in notices)
    assert f"dropped 2 of {mask.sum()} voxels of mask occipital that are NaN or constant in at least one of 2 subjects" in err
    assert [s.n_dropped for s in subs] == [2, 2]
    np.testing.assert_array_equal(subs[0].voxel_ijk, subs[1].voxel_ijk)
    assert not np.isnan(subs[1].patterns).any()


def test_unknown_subject_lists_available(study_dir):
    with pytest.raises(BrainnetError, match=r"^--subject 07: not in .*participants.tsv; available: 01, 02$"):
        load_study(study_dir).load_subject("07")


def test_events_rows_must_match_volumes(study_dir):
    events = pd.read_csv(_events(study_dir), sep="\t")
    events.iloc[:-1].to_csv(_events(study_dir), sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"_events.tsv: 11 rows but sub-01_task-demo_space-MNI152_desc-singletrial_betas.nii.gz has 12 volumes; give exactly one events row per betas volume$"):
        load_study(study_dir).load_subject("01")


def test_unknown_stimulus_ids(study_dir):
    events = pd.read_csv(_events(study_dir), sep="\t")
    events.loc[0, "stimulus_id"] = "mystery"
    events.to_csv(_events(study_dir), sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"_events.tsv: 1 stimulus ids not in stimuli.tsv \(e.g. \['mystery'\]\); add them to stimuli.tsv or fix the events$"):
        load_study(study_dir).load_subject("01")


def test_missing_betas_file(study_dir):
    _betas(study_dir, "02").unlink()
    with pytest.raises(BrainnetError, match=r"sub-02_task-demo_space-<space>_desc-singletrial_betas.nii.gz: single-trial betas not found; add the 4-D betas of sub-02"):
        load_study(study_dir).load_subject("02")


def test_missing_events_file(study_dir):
    _events(study_dir).unlink()
    with pytest.raises(BrainnetError, match=r"sub-01_task-demo_desc-singletrial_events.tsv: single-trial events not found; add one row per betas volume"):
        load_study(study_dir).load_subject("01")


def test_missing_participants_and_stimuli(study_dir):
    (study_dir / "stimuli.tsv").unlink()
    with pytest.raises(BrainnetError, match=r"stimuli.tsv: stimuli.tsv not found; add stimuli.tsv with columns stimulus_id and file"):
        load_study(study_dir)
    (study_dir / "participants.tsv").unlink()
    with pytest.raises(BrainnetError, match=r"participants.tsv: participants.tsv not found; add participants.tsv with a participant_id column"):
        load_study(study_dir)


def test_missing_study_folder(tmp_path):
    with pytest.raises(BrainnetError, match=r"nowhere: study folder not found; give --study a folder"):
        load_study(tmp_path / "nowhere")


def test_wrong_column_names(study_dir):
    pd.DataFrame({"subject": ["sub-01"]}).to_csv(study_dir / "participants.tsv", sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"participants.tsv: missing column 'participant_id' \(columns: subject\); name the subject column participant_id"):
        load_study(study_dir)


def test_wrong_stimuli_and_events_columns(tmp_path):
    root = write_study(tmp_path / "a")
    pd.DataFrame({"id": ["x"], "path": ["x.png"]}).to_csv(root / "stimuli.tsv", sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"stimuli.tsv: missing column 'stimulus_id', 'file' \(columns: id, path\); use the columns stimulus_id, file"):
        load_study(root)
    root = write_study(tmp_path / "b")
    events = pd.read_csv(_events(root), sep="\t").rename(columns={"stimulus_id": "image"})
    events.to_csv(_events(root), sep="\t", index=False)
    with pytest.raises(BrainnetError, match=r"_events.tsv: missing column 'stimulus_id' \(columns: image, run\); name the column of trial stimuli stimulus_id"):
        load_study(root).load_subject("01")


def test_no_betas_at_all(study_dir):
    for sub in ("01", "02"):
        _betas(study_dir, sub).unlink()
    with pytest.raises(BrainnetError, match=r"no single-trial betas found; expected sub-<label>/func/"):
        load_study(study_dir)


def test_grid_mismatch_between_subjects(study_dir):
    img = nib.load(_betas(study_dir, "02"))
    shifted = img.affine.copy()
    shifted[0, 3] += 4.0
    nib.Nifti1Image(img.get_fdata().astype(np.float32), shifted).to_filename(_betas(study_dir, "02"))
    study = load_study(study_dir)
    study.load_subject("02")  # alone it is fine (the named mask is resampled)
    with pytest.raises(BrainnetError, match=r"sub-02_task-demo_space-MNI152_desc-singletrial_betas.nii.gz: grid \(shape \(50, 22, 48\)\) differs from sub-01's .*a pooled analysis needs every subject on one voxel set; run on betas in one template space"):
        study.load_subjects()


def test_user_mask_on_another_grid(study_dir, tmp_path):
    path = tmp_path / "roi.nii.gz"
    data = np.zeros((10, 10, 10), np.uint8)
    data[2:5, 2:5, 2:5] = 1
    nib.Nifti1Image(data, _affine()).to_filename(path)
    with pytest.raises(BrainnetError, match=r"roi.nii.gz: mask grid \(shape \(10, 10, 10\)\) differs from the data grid .*resample the mask to the data"):
        load_study(study_dir).load_subject("01", mask=path)


def test_user_mask_on_the_data_grid(study_dir, tmp_path):
    path = tmp_path / "roi.nii.gz"
    data = np.zeros(SHAPE, np.uint8)
    data[20:23, 5:8, 20:22] = 1
    nib.Nifti1Image(data, _affine()).to_filename(path)
    sub = load_study(study_dir).load_subject("01", mask=path)
    assert sub.n_voxels == 18 and sub.mask_name == str(path)


def test_mask_without_data_is_refused(study_dir):
    # The data grid covers only the back of the brain: nothing of v1 is zero there,
    # but a mask entirely outside the data's non-zero voxels must be refused.
    img = nib.load(_betas(study_dir))
    data = img.get_fdata().astype(np.float32)
    data[np.asarray(load_mask("v1", img).dataobj) > 0] = 0.0
    nib.Nifti1Image(data, img.affine).to_filename(_betas(study_dir))
    with pytest.raises(BrainnetError, match=r"^--mask v1: every voxel of the mask is NaN or constant in .*the mask does not overlap the data"):
        load_study(study_dir).load_subject("01", mask="v1")


def test_several_tasks_need_a_choice(study_dir):
    src = _betas(study_dir)
    shutil.copy(src, src.with_name(src.name.replace("task-demo", "task-other")))
    with pytest.raises(BrainnetError, match=r"holds several tasks \(demo, other\); choose one with task="):
        load_study(study_dir)
    assert load_study(study_dir, task="demo").task == "demo"


def test_provenance_digest_tracks_file_content(study_dir):
    study = load_study(study_dir)
    first = study.provenance()
    assert first["n_subjects"] == 2 and first["path"] == str(study_dir.resolve())
    assert load_study(study_dir).provenance()["files_sha256"] == first["files_sha256"]
    with open(study_dir / "stimuli.tsv", "a") as fh:
        fh.write("img9\timg9.png\ta\n")
    assert load_study(study_dir).provenance()["files_sha256"] != first["files_sha256"]


def test_features_from_file_are_aligned(study_dir, tmp_path):
    from brainnet.features import Features, save_features

    ids = [f"img{i}" for i in range(6)][::-1] + ["extra"]
    values = np.arange(7, dtype=float)[:, None] * np.ones((1, 3))
    path = save_features(Features(ids, {"fc7": values}), tmp_path / "f.npz")
    feats = load_study(study_dir).features(features_file=path)
    assert feats.stimulus_ids == tuple(f"img{i}" for i in range(6))
    np.testing.assert_array_equal(feats.layer("fc7")[:, 0], [5, 4, 3, 2, 1, 0])
    short = save_features(Features(ids[:3], {"fc7": values[:3]}), tmp_path / "short.npz")
    with pytest.raises(BrainnetError, match=r"short.npz: no features for 3 stimuli of the study .*cover the study's stimuli.tsv"):
        load_study(study_dir).features(features_file=short)


def test_study_class_is_what_load_study_returns(study_dir):
    assert isinstance(load_study(str(study_dir)), Study)


def test_cli_study_info(study_dir, capsys):
    from brainnet.cli import main

    assert main(["study", "info", "--study", str(study_dir), "--mask", "v1"]) == 0
    out = capsys.readouterr().out
    n = load_study(study_dir).load_subject("01", mask="v1").n_voxels
    assert f"mask v1: {n} voxels shared by all subjects (0 dropped)" in out
    assert "01\t12\t6\t2" in out and "stimuli: 6 in 2 categories" in out
    assert main(["study", "info", "--study", str(study_dir / "missing")]) == 2
    assert "brainnet study: error: " in capsys.readouterr().err


def test_missing_images_point_to_features(study_dir):
    with pytest.raises(BrainnetError, match=r"img0.png: image listed in stimuli.tsv not found; .*put the images in its stimuli/ folder, or pass precomputed features with --features\)$"):
        _ = load_study(study_dir).stimuli


def test_embedded_study_is_created_atomically(tmp_path, monkeypatch):
    """Interrupted creation leaves nothing; a concurrent winner's study is kept."""
    import brainnet.simulate
    from brainnet.study import embedded_study_name, embedded_study_path

    monkeypatch.setenv("BRAINNET_HOME", str(tmp_path / "home"))
    final = tmp_path / "home" / "studies" / embedded_study_name()

    def interrupted(out, **kwargs):
        write_study(Path(out), n_subjects=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(brainnet.simulate, "simulate_study", interrupted)
    with pytest.raises(KeyboardInterrupt):
        embedded_study_path()
    assert not final.exists() and list(final.parent.iterdir()) == []

    def loser(out, **kwargs):
        write_study(final, n_subjects=3)  # another process finishes first
        write_study(Path(out), n_subjects=1)

    monkeypatch.setattr(brainnet.simulate, "simulate_study", loser)
    assert embedded_study_path() == final
    assert load_study().subjects == ["01", "02", "03"]
    assert list(final.parent.iterdir()) == [final]


def test_embedded_study_is_rebuilt_when_its_generating_code_changes(tmp_path, monkeypatch):
    """A demo made by another version of the simulator or network is never reused."""
    import brainnet.study as study_module

    package = tmp_path / "pkg"
    (package / "models").mkdir(parents=True)
    for source in study_module._DEMO_SOURCES:
        (package / source).write_text("code")
    monkeypatch.setattr(study_module, "__file__", str(package / "study.py"))
    before = study_module.embedded_study_name()
    assert before.startswith(study_module.DEMO_STUDY["name"] + "-")
    assert study_module.embedded_study_name() == before
    (package / "simulate.py").write_text("changed code")
    assert study_module.embedded_study_name() != before
