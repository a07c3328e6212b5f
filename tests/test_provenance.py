"""Provenance identifies inputs by content: a file changed in place is a different run, never mixed.

The red team's case: a mask file edited in place, then ``encode --subject all``
again: subjects already done must not keep old-mask results while later ones
use the new mask. The rerun is refused before anything is computed, naming the
changed file; ``--overwrite`` recomputes every subject with the new content.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainnet.cli import main
from brainnet.masks import load_mask

LABELS = ("01", "02", "03", "04")


@pytest.fixture(scope="module")
def study(small_study, tmp_path_factory):
    study, feats = small_study
    betas = next((study / "sub-01" / "func").glob("*_betas.nii.gz"))
    mask = tmp_path_factory.mktemp("prov") / "mask.nii.gz"
    nib.save(load_mask("occipital", target_img=nib.load(betas)), mask)
    return study, feats, mask


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _n_voxels(out: Path, label: str) -> int:
    return json.loads((out / f"sub-{label}" / "encode-fc8" / "summary.json").read_text())["n_voxels"]


def _copy(study, feats, mask, tmp_path):
    """Private copies (the test edits them in place)."""
    shutil.copytree(study, tmp_path / "study")
    shutil.copy(feats, tmp_path / "fc8.npz")
    shutil.copy(mask, tmp_path / "mask.nii.gz")
    return tmp_path / "study", tmp_path / "fc8.npz", tmp_path / "mask.nii.gz"


def _argv(study, feats, mask, out, *extra):
    return ["encode", "--subject", "all", "--study", str(study), "--features", str(feats), "--mask", str(mask),
            "--cv", "2", "--permutations", "5", "--out", str(out), *extra]


def _edit_mask(mask: Path) -> None:
    img = nib.load(mask)
    data = np.asarray(img.dataobj).copy()
    data[: data.shape[0] // 2] = 0  # drop the left half
    nib.save(nib.Nifti1Image(data, img.affine), mask)


def _edit_betas(path: Path) -> None:
    img = nib.load(path)
    data = np.asarray(img.dataobj).copy()
    data[..., 0] *= 2
    nib.save(nib.Nifti1Image(data, img.affine), path)


def _edit_features(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["fc8"] = arrays["fc8"][::-1].copy()  # other rows for the same ids (a scale alone would not change ridge)
    np.savez(path, **arrays)


@pytest.mark.parametrize("what", ["mask", "betas", "features"])
def test_an_input_changed_in_place_is_refused_by_name_then_recomputed_never_mixed(what, study, tmp_path, capsys):
    study, feats, mask = _copy(*study, tmp_path)
    out = tmp_path / "out"
    argv = _argv(study, feats, mask, out)
    assert main(argv) == 0
    before = _files(out)
    n_before = {label: _n_voxels(out, label) for label in LABELS}
    changed = {"mask": mask,
               "betas": next((study / "sub-02" / "func").glob("*_betas.nii.gz")),
               "features": feats}[what]
    {"mask": _edit_mask, "betas": _edit_betas, "features": _edit_features}[what](changed)
    capsys.readouterr()

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"brainnet encode: error: {out / 'group' / 'encode-fc8'}: holds results made with other parameters, "
        f"weights or data ({changed.resolve()} has changed since); choose another --out folder or pass --overwrite"
    )
    assert "Traceback" not in err
    assert _files(out) == before  # refused before anything was computed or written

    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    fresh = tmp_path / "fresh"
    assert main(_argv(study, feats, mask, fresh)) == 0
    capsys.readouterr()
    # Every subject now reflects the new content, exactly as a run that never saw the old one.
    for label in LABELS:
        for name in ("voxel_scores.tsv", "null_mean_r.tsv"):
            rel = Path(f"sub-{label}") / "encode-fc8" / name
            assert (out / rel).read_bytes() == (fresh / rel).read_bytes(), rel
    if what == "mask":
        assert all(_n_voxels(out, label) < n_before[label] for label in LABELS)
    else:  # the changed file shows in at least one subject's results
        assert any((out / f"sub-{label}" / "encode-fc8" / "voxel_scores.tsv").read_bytes()
                   != before[f"sub-{label}/encode-fc8/voxel_scores.tsv"] for label in LABELS)
