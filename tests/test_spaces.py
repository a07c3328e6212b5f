"""Subjects in their own space: per-subject regions, spaces checked, and a way to a template.

A miniature NOD-shaped dataset: the simulated MNI study is re-expressed in three
"T1w" spaces, each subject on its own grid (padded differently) and shifted in
the world by its own translation, with its own FreeSurfer parcellation on a
finer grid. The transforms are known, so every result in T1w space can be
compared with the same analysis run on the MNI data directly.
"""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainnet.errors import BrainnetError
from brainnet.masks import load_mask
from brainnet.simulate import simulate_study
from brainnet.study import load_study

PADS = [((1, 0, 2), (0, 1, 1)), ((0, 2, 1), (2, 0, 0)), ((3, 1, 0), (1, 2, 2))]  # voxels before / after
SHIFTS = [(6.0, -2.0, 0.0), (-4.0, 8.0, 2.0), (0.0, 0.0, -10.0)]  # T1w world = MNI world + shift (mm)


def _t1w_study(mni, out):
    """The MNI study `mni` as a study in three subject spaces (files named space-T1w)."""
    from nitransforms.linear import Affine

    study = load_study(mni)
    out.mkdir()
    for name in ("dataset_description.json", "participants.tsv", "stimuli.tsv"):
        shutil.copy2(mni / name, out / name)
    shutil.copytree(mni / "stimuli", out / "stimuli")
    for s, label in enumerate(study.subjects):
        betas, events = study.subject_files(label)
        img = nib.load(str(betas))
        occipital = np.asarray(load_mask("occipital", target_img=img).dataobj) > 0
        before, after = PADS[s]
        pad = [(b, a) for b, a in zip(before, after, strict=True)]
        data = np.pad(np.asarray(img.dataobj, np.float32), [*pad, (0, 0)])
        affine = img.affine.copy()
        affine[:3, 3] += -img.affine[:3, :3] @ np.array(before, float) + np.array(SHIFTS[s])
        func, anat = out / f"sub-{label}" / "func", out / f"sub-{label}" / "anat"
        func.mkdir(parents=True)
        anat.mkdir()
        nib.Nifti1Image(data, affine).to_filename(func / f"sub-{label}_task-{study.task}_space-T1w_desc-singletrial_betas.nii.gz")
        shutil.copy2(events, func / events.name.replace("_space-MNI152NLin2009cAsym", ""))
        # The subject's own parcellation, on a 2x finer grid: occipital cortex is lateral occipital (1011),
        # the rest of the brain superior frontal (1028).
        labels = np.pad(np.where(occipital, 1011, 1028).astype(np.int16), pad)
        fine = np.repeat(np.repeat(np.repeat(labels, 2, 0), 2, 1), 2, 2)
        fine_affine = affine.copy()
        fine_affine[:3, :3] = affine[:3, :3] / 2
        fine_affine[:3, 3] = affine[:3, 3] - affine[:3, :3] @ np.full(3, 0.25)
        nib.Nifti1Image(fine, fine_affine).to_filename(anat / f"sub-{label}_desc-aparcaseg_dseg.nii.gz")
        matrix = np.eye(4)
        matrix[:3, 3] = SHIFTS[s]  # maps template (MNI) coordinates into the subject's space
        Affine(matrix).to_filename(out / f"sub-{label}_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.txt", fmt="itk")
    return out


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("spaces")
    mni = simulate_study(root / "mni", n_subjects=3, n_stimuli=40, n_repeats=2, snr=1.0, seed=5)
    return mni, _t1w_study(mni, root / "t1w")


def test_subjects_on_their_own_grids_with_their_own_regions_give_the_mni_results(studies):
    from brainnet.encoding import encode_subject
    from brainnet.network_subject import network_category_decoding
    from brainnet.rsa import network_as_subject
    from brainnet.simulate import load_truth

    mni, t1w = studies
    native = load_study(t1w)
    assert [native.subject_space(s) for s in native.subjects] == ["T1w"] * 3
    signal = {tuple(v) for v in load_truth(mni)["signal_ijk"].tolist()}
    for s, label in enumerate(native.subjects):
        own = encode_subject(native, label, mask="occipital-aparc", n_permutations=10, cv=4)
        ref = encode_subject(mni, label, mask="occipital", n_permutations=10, cv=4)
        # The same voxels in the same order: a whole-voxel shift keeps the scan order of the grid.
        np.testing.assert_array_equal(own.voxel_scores["r"].to_numpy(), ref.voxel_scores["r"].to_numpy())
        scores = own.voxel_scores
        mni_ijk = scores[["i", "j", "k"]].to_numpy() - np.array(PADS[s][0])
        planted = np.array([tuple(v) in signal for v in mni_ijk.tolist()])
        assert 0 < planted.sum() < len(scores)
        assert scores["r"][planted].mean() > scores["r"][~planted].mean() + 0.3
    rsa_kw = dict(layers=["fc8"], n_permutations=20, n_bootstrap=0)
    own = network_as_subject(t1w, mask="occipital-aparc", **rsa_kw)
    ref = network_as_subject(mni, mask="occipital", **rsa_kw)
    np.testing.assert_allclose(own.layers["fc8"].network_human_r, ref.layers["fc8"].network_human_r, atol=1e-12)
    assert own.layers["fc8"].network_human_r > 0.1
    own = network_category_decoding(t1w, mask="occipital-aparc", n_folds=4)
    ref = network_category_decoding(mni, mask="occipital", n_folds=4)
    np.testing.assert_array_equal(own.accuracy, ref.accuracy)


def test_pooled_decoding_refuses_mixed_spaces_then_equals_mni_after_the_transforms(studies, tmp_path):
    from brainnet.decoding import decode_units
    from brainnet.spaces import study_to_template

    mni, t1w = studies
    kw = dict(n_permutations=10, n_bootstrap=0, n_cluster_draws=0)
    with pytest.raises(BrainnetError, match=r"a pooled analysis needs every subject on one voxel set; run on betas in one template space"):
        decode_units(t1w, mask="occipital-aparc", **kw)
    with pytest.raises(BrainnetError, match=r"^--mask occipital: an MNI152 atlas region, but sub-01's betas are in space T1w"):
        decode_units(t1w, mask="occipital", **kw)
    reference = next((mni / "sub-01" / "func").glob("*_betas.nii.gz"))
    template = study_to_template(t1w, str(t1w / "sub-{subject}_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.txt"),
                                 reference, tmp_path / "in-mni")
    assert load_study(template).subject_space("02") == "MNI152NLin2009cAsym"
    moved = decode_units(template, mask="occipital", **kw)
    direct = decode_units(mni, mask="occipital", **kw)
    # Linear interpolation at whole-voxel positions returns the stored float32 values.
    np.testing.assert_allclose(moved.unit_scores["r"], direct.unit_scores["r"], atol=1e-6)
    assert moved.summary["mean_r"] == pytest.approx(direct.summary["mean_r"], abs=1e-6)


def test_region_and_space_mistakes_are_one_line_errors(studies, tmp_path):
    from brainnet.spaces import study_to_template

    _, t1w = studies
    native = load_study(t1w)
    with pytest.raises(BrainnetError, match=r"masks/sub-01_occipital.nii.gz: mask file not found"):
        native.load_subject("01", mask=str(tmp_path / "masks" / "sub-{subject}_occipital.nii.gz"))
    # a per-subject template on each subject's own grid works
    masks = tmp_path / "masks"
    masks.mkdir()
    for label in native.subjects:
        betas, _ = native.subject_files(label)
        img = nib.load(str(betas))
        occipital = np.asarray(native.load_subject(label, mask="occipital-aparc").masker.mask_img_.dataobj)
        keep = np.zeros(img.shape[:3], np.uint8)
        i, j, k = np.argwhere(occipital)[0]
        keep[i, j, k] = keep[i + 1, j, k] = 1
        nib.Nifti1Image(keep, img.affine).to_filename(masks / f"sub-{label}_box.nii.gz")
    assert native.load_subject("03", mask=str(masks / "sub-{subject}_box.nii.gz")).n_voxels == 2
    # a parcellation in another space than the betas
    anat = t1w / "sub-02" / "anat"
    moved = anat / "sub-02_space-MNI152NLin2009cAsym_desc-aparcaseg_dseg.nii.gz"
    (anat / "sub-02_desc-aparcaseg_dseg.nii.gz").rename(moved)
    try:
        with pytest.raises(BrainnetError, match=r"sub-02_desc-aparcaseg_dseg.nii.gz: parcellation only in space MNI152NLin2009cAsym, but the betas are in space T1w"):
            native.load_subject("02", mask="occipital-aparc")
    finally:
        moved.rename(anat / "sub-02_desc-aparcaseg_dseg.nii.gz")
    with pytest.raises(BrainnetError, match=r"sub-03_xfm.h5: transform of sub-03 not found"):
        study_to_template(t1w, {"01": t1w / "sub-01_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.txt",
                                "02": t1w / "sub-02_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.txt",
                                "03": t1w / "sub-03_xfm.h5"}, t1w / "participants.tsv", tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_space_is_recorded_for_each_subject(studies):
    _, t1w = studies
    data = load_study(t1w).load_subjects(mask="occipital-aparc", shared=None)
    assert [sd.space for sd in data] == ["T1w"] * 3
    assert len({sd.n_voxels for sd in data}) == 1  # the same region, on three grids
    assert not pd.Series([sd.voxel_ijk.min(axis=0).tolist() for sd in data]).duplicated().any()  # own grids
