"""Surface studies: single-trial patterns on CIFTI-2 grayordinates (e.g. fsLR 32k).

A subject of a study may hold its betas as one CIFTI-2 dense-scalar file,
``sub-<label>_task-<task>_space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii``,
one map per trial (the ciftify outputs of NOD are of this kind). Its patterns
are then ``(n_trials, n_vertices)``: the cortical vertices of the region, and
encoding, decoding and RSA run on them unchanged.

Regions are vertex sets:

* ``occipital-aparc`` and the other regions of :data:`brainnet.masks.APARC_REGIONS`
  come from the subject's own FreeSurfer (Desikan-Killiany) parcellation on
  the same mesh, ``sub-<label>/anat/sub-<label>_space-fsLR_den-32k_desc-aparc_dseg.dlabel.nii``
  (ciftify writes it as ``sub-<label>.aparc.32k_fs_LR.dlabel.nii``). brainnet
  ships no fsLR atlas: every surface dataset it reads brings each subject's own
  parcellation, and nothing may be downloaded at run time.
* a CIFTI file (``.dlabel.nii`` or ``.dscalar.nii``, one map; non-zero = inside)
  on the same mesh, for everyone or per subject (``{subject}`` in the path).

Maps go back to the surface through :class:`SurfaceMasker`: its
``inverse_transform`` gives a CIFTI-2 dense-scalar image (written as
``*.dscalar.nii``), and :func:`plot_surface_map` draws it with nilearn's
surface plotting on the subject's own meshes
(``sub-<label>/anat/sub-<label>_hemi-{L,R}_space-fsLR_den-32k_midthickness.surf.gii``).

Reading, the brain-model bookkeeping and writing use nibabel's CIFTI-2 axes;
drawing uses ``nilearn.plotting.plot_surf_stat_map``. Nothing is hand-written
beyond matching vertices by (structure, vertex index).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["SURFACE_SUFFIX", "SurfaceMasker", "is_surface_file", "read_surface_betas", "surface_region",
           "plot_surface_map", "hemisphere_maps",
           "surface_map_figure", "subject_meshes", "gifti_to_dscalar"]

#: File ending of surface betas and maps.
SURFACE_SUFFIX = ".dscalar.nii"

_HEMI = {"CIFTI_STRUCTURE_CORTEX_LEFT": "L", "CIFTI_STRUCTURE_CORTEX_RIGHT": "R"}


def is_surface_file(path: str | Path) -> bool:
    """True for a CIFTI-2 dense-scalar file (``*.dscalar.nii``)."""
    return str(path).endswith(SURFACE_SUFFIX)


def read_surface_betas(path: str | Path) -> tuple[np.ndarray, Any]:
    """The ``(n_maps, n_grayordinates)`` float32 data and brain-model axis of a dense-scalar file.

    Parameters
    ----------
    path : str or Path
        A CIFTI-2 ``.dscalar.nii`` file (one map per trial).

    Returns
    -------
    data : ndarray of shape (n_maps, n_grayordinates), float32
    axis : nibabel.cifti2.BrainModelAxis
    """
    import nibabel as nib

    img = _load_cifti(path, "re-create the surface betas (a CIFTI-2 dscalar, one map per trial)")
    axis = img.header.get_axis(1)
    if not isinstance(axis, nib.cifti2.BrainModelAxis) or not any(s in _HEMI for s, _, _ in axis.iter_structures()):
        raise input_error(path, "has no cortical surface brain models (CORTEX_LEFT/CORTEX_RIGHT)",
                          "give surface betas on a cortical mesh such as fsLR 32k")
    data = np.asarray(img.get_fdata(dtype=np.float32))
    return data, axis


def _load_cifti(path: str | Path, fix: str):
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise input_error(path, "file not found", fix)
    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for non-CIFTI files
        raise input_error(path, f"not a readable CIFTI-2 file ({type(err).__name__})", fix) from None
    if not isinstance(img, nib.Cifti2Image):
        raise input_error(path, f"not a CIFTI-2 file ({type(img).__name__})", fix)
    return img


def _cortex(axis) -> dict[str, tuple[np.ndarray, int]]:
    """``{structure: (grayordinate columns, n_vertices of the mesh)}`` of the cortical brain models."""
    out = {}
    for name, sl, bm in axis.iter_structures():
        if name in _HEMI:
            cols = np.arange(len(axis))[sl]
            out[name] = (cols, int(bm.nvertices[name]))
    return out


def _vertex_values(path: Path, betas_axis, fix: str) -> tuple[np.ndarray, Any]:
    """The first map of a CIFTI file at the betas' grayordinates (NaN where it has no value), and its image."""
    img = _load_cifti(path, fix)
    axis = img.header.get_axis(1)
    values = np.asarray(img.get_fdata(dtype=np.float32))[0]
    theirs, ours = _cortex(axis), _cortex(betas_axis)
    for name, (_, n_ours) in ours.items():
        if name in theirs and theirs[name][1] != n_ours:
            raise input_error(path, f"{_HEMI[name]} hemisphere mesh has {theirs[name][1]} vertices, the betas' {n_ours}",
                              f"{fix} (a parcellation on the betas' mesh, e.g. fsLR 32k)")
    if not set(ours) & set(theirs):
        raise input_error(path, "has no cortical brain model of the betas (CORTEX_LEFT/CORTEX_RIGHT)", fix)
    out = np.full(len(betas_axis), np.nan, dtype=np.float32)
    for name, (cols, n) in ours.items():
        if name not in theirs:
            continue
        lookup = np.full(n, np.nan, dtype=np.float32)
        their_cols = theirs[name][0]
        lookup[axis.vertex[their_cols]] = values[their_cols]
        out[cols] = lookup[betas_axis.vertex[cols]]
    return out, img


def _dk_name(label: str) -> str:
    """``L_lateraloccipital`` / ``ctx-lh-lateraloccipital`` / ``lateraloccipital`` -> ``lateraloccipital``."""
    return re.split(r"[_\-.]", label.strip())[-1].lower()


def surface_region(mask, label: str, betas_axis, parcellation: Path | None = None) -> np.ndarray:
    """The region ``mask`` of one subject as a boolean over the betas' grayordinates.

    Parameters
    ----------
    mask : str or Path
        A region of :data:`brainnet.masks.APARC_REGIONS` (needs ``parcellation``),
        or a CIFTI file (``{subject}`` is replaced by ``label``).
    label : str
        The subject.
    betas_axis : nibabel.cifti2.BrainModelAxis
        The brain models of the subject's betas.
    parcellation : Path, optional
        The subject's aparc ``.dlabel.nii`` on the betas' mesh.

    Returns
    -------
    ndarray of shape (n_grayordinates,), bool
    """
    from brainnet.masks import APARC_REGIONS, region_kind

    kind = region_kind(mask)
    if kind == "atlas":
        raise BrainnetError(
            f"--mask {mask}: an MNI152 volume region, but sub-{label}'s betas are on the surface; "
            f"use the subject's own region (--mask {str(mask).lower()}-aparc where it exists) or a CIFTI mask on the betas' mesh")
    if kind == "aparc":
        key = str(mask).strip().lower()
        fix = f"copy ciftify's sub-{label}.aparc.32k_fs_LR.dlabel.nii (the betas' mesh) into the subject's anat folder"
        values, img = _vertex_values(parcellation, betas_axis, fix)
        table = img.header.get_axis(0).label[0]
        wanted = set(APARC_REGIONS[key])
        keys = [k for k, (name, _) in table.items() if _dk_name(name) in wanted]
        if not keys:
            raise input_error(parcellation, f"has no label of {key} ({', '.join(sorted(wanted))})",
                              "give the subject's Desikan-Killiany (aparc) dlabel")
        return np.isin(values, keys)
    path = Path(str(mask).replace("{subject}", label))
    if not is_surface_file(path) and not str(path).endswith(".dlabel.nii"):
        raise input_error(path, "a volume mask, but the betas are on the surface",
                          "give a CIFTI mask (.dlabel.nii or .dscalar.nii) on the betas' mesh, or --mask occipital-aparc")
    values, _ = _vertex_values(path, betas_axis, "give a CIFTI mask on the betas' mesh")
    return np.nan_to_num(values) != 0


class SurfaceMasker:
    """Maps ``(n_vertices,)`` values of a region back to the surface.

    The surface counterpart of a fitted nilearn ``NiftiMasker`` for what
    brainnet needs of one: ``inverse_transform``.

    Parameters
    ----------
    axis : nibabel.cifti2.BrainModelAxis
        The brain models of the subject's betas.
    columns : ndarray of shape (n_vertices,), int
        The grayordinates of the region, in pattern column order.
    """

    mask_img_ = None  # no voxel grid: volume-only analyses (searchlight, partition) refuse surface data

    def __init__(self, axis, columns: np.ndarray) -> None:
        self.axis = axis
        self.columns = np.asarray(columns, dtype=int)

    def inverse_transform(self, values: np.ndarray):
        """A CIFTI-2 dense-scalar image: ``values`` of shape ``(n_vertices,)`` or ``(n_maps, n_vertices)``, 0 elsewhere."""
        import nibabel as nib

        values = np.atleast_2d(np.asarray(values, dtype=np.float32))
        full = np.zeros((values.shape[0], len(self.axis)), dtype=np.float32)
        full[:, self.columns] = values
        scalar = nib.cifti2.ScalarAxis([f"map{i}" for i in range(values.shape[0])])
        return nib.Cifti2Image(full, header=nib.cifti2.Cifti2Header.from_axes((scalar, self.axis)))


def hemisphere_maps(img, index: int = 0) -> dict[str, np.ndarray]:
    """``{"L": values, "R": values}`` on each hemisphere's full mesh (NaN at vertices without a value).

    Parameters
    ----------
    img : nibabel.Cifti2Image or str or Path
        A dense-scalar map.
    index : int
        Which map.
    """
    if not hasattr(img, "header"):
        img = _load_cifti(img, "give a surface map written by brainnet (*.dscalar.nii)")
    axis = img.header.get_axis(1)
    data = np.asarray(img.get_fdata(dtype=np.float32))[index]
    out = {}
    for name, (cols, n) in _cortex(axis).items():
        hemi = np.full(n, np.nan, dtype=np.float32)
        hemi[axis.vertex[cols]] = data[cols]
        out[_HEMI[name]] = hemi
    return out


def subject_meshes(study_root: str | Path, label: str, surface: str = "midthickness") -> dict[str, Path]:
    """``{"L": path, "R": path}``: a subject's own meshes in the study's ``anat`` folder.

    Looks for ``sub-<label>/anat/sub-<label>_hemi-{L,R}_*_<surface>.surf.gii``.
    """
    anat = Path(study_root) / f"sub-{label}" / "anat"
    out = {}
    for hemi in ("L", "R"):
        found = sorted(anat.glob(f"sub-{label}_hemi-{hemi}_*{surface}.surf.gii")) if anat.is_dir() else []
        if not found:
            raise input_error(anat / f"sub-{label}_hemi-{hemi}_space-fsLR_den-32k_{surface}.surf.gii",
                              "surface mesh not found",
                              f"copy ciftify's sub-{label}.{hemi}.{surface}.32k_fs_LR.surf.gii there "
                              "(brainnet.study_from_released_betas does)")
        out[hemi] = found[0]
    return out


def surface_map_figure(img, meshes: dict[str, str | Path], title: str = "", threshold=None,
                       value_label: str = "value"):
    """A matplotlib figure of a dense-scalar map on each hemisphere's mesh (nilearn ``plot_surf_stat_map``).

    Parameters
    ----------
    img : nibabel.Cifti2Image or str or Path
        The map (its first map is drawn).
    meshes : dict of str to path
        ``{"L": mesh.surf.gii, "R": mesh.surf.gii}`` (midthickness or inflated).
    threshold : float, optional
        Values with smaller magnitude are not coloured.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import nibabel as nib
    from nilearn import plotting

    values = hemisphere_maps(img)
    hemis = [h for h in ("L", "R") if h in values]
    for hemi in hemis:
        mesh = Path(meshes[hemi])
        n = nib.load(str(mesh)).agg_data("NIFTI_INTENT_POINTSET").shape[0]
        if n != values[hemi].size:
            raise input_error(mesh, f"mesh has {n} vertices, the map's {hemi} hemisphere {values[hemi].size}",
                              "draw on the subject's own mesh of the betas' space (e.g. fsLR 32k midthickness)")
    fig, axes = plt.subplots(1, len(hemis), subplot_kw={"projection": "3d"}, figsize=(4.5 * len(hemis), 4))
    axes = np.atleast_1d(axes)
    finite = np.concatenate([values[h][np.isfinite(values[h])] for h in hemis])
    vmax = float(np.max(np.abs(finite))) if finite.size and np.any(finite) else 1.0
    for ax, hemi in zip(axes, hemis, strict=True):
        plotting.plot_surf_stat_map(str(meshes[hemi]), np.nan_to_num(values[hemi]),
                                    hemi="left" if hemi == "L" else "right", view="lateral", axes=ax, figure=fig,
                                    colorbar=hemi == hemis[-1], vmax=vmax, threshold=threshold,
                                    title=f"{hemi} hemisphere")
    fig.suptitle(f"{title} ({value_label})" if title else value_label)
    return fig


def plot_surface_map(img, meshes: dict[str, str | Path], out: str | Path, title: str = "", threshold=None) -> Path:
    """Write :func:`surface_map_figure` as a PNG, atomically.

    Returns
    -------
    Path
    """
    import matplotlib.pyplot as plt

    from brainnet.results import atomic_path

    fig = surface_map_figure(img, meshes, title=title, threshold=threshold)
    try:
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=80)
    finally:
        plt.close(fig)
    return Path(out)


def gifti_to_dscalar(left: str | Path, right: str | Path, out: str | Path, medial_wall: np.ndarray | None = None,
                     names=None) -> Path:
    """Join per-hemisphere GIFTI betas (``.func.gii``, one data array per trial) into one dense-scalar file.

    Parameters
    ----------
    left, right : str or Path
        ``*_hemi-L_*.func.gii`` and ``*_hemi-R_*.func.gii`` of one subject,
        each with one data array of shape ``(n_vertices,)`` per trial.
    out : str or Path
        The ``.dscalar.nii`` to write (atomically).
    medial_wall : ndarray of shape (n_vertices_left + n_vertices_right,), bool, optional
        Vertices to leave out of the brain models (default: none).
    names : sequence of str, optional
        One name per map (default ``trial0``, ``trial1``, ...).

    Returns
    -------
    Path
    """
    import nibabel as nib

    from brainnet.results import atomic_path

    arrays = []
    for path in (Path(left), Path(right)):
        if not path.is_file():
            raise input_error(path, "GIFTI betas not found", "give the subject's left and right .func.gii betas")
        try:
            data = np.column_stack([np.asarray(d.data, dtype=np.float32) for d in nib.load(str(path)).darrays])
        except Exception as err:  # nibabel raises many types for non-GIFTI files
            raise input_error(path, f"not readable GIFTI data arrays ({type(err).__name__})",
                              "give a .func.gii with one data array per trial") from None
        arrays.append(data)
    if arrays[0].shape[1] != arrays[1].shape[1]:
        raise input_error(right, f"{arrays[1].shape[1]} trials but the left hemisphere has {arrays[0].shape[1]}",
                          "give both hemispheres of the same betas")
    n_left, n_right = arrays[0].shape[0], arrays[1].shape[0]
    keep = np.ones(n_left + n_right, bool) if medial_wall is None else ~np.asarray(medial_wall, bool)
    if keep.size != n_left + n_right:
        raise BrainnetError(f"medial_wall: {keep.size} values for {n_left + n_right} vertices; give one per vertex of both hemispheres")
    models = (nib.cifti2.BrainModelAxis.from_mask(keep[:n_left], name="CORTEX_LEFT")
              + nib.cifti2.BrainModelAxis.from_mask(keep[n_left:], name="CORTEX_RIGHT"))
    data = np.concatenate([arrays[0][keep[:n_left]], arrays[1][keep[n_left:]]]).T
    names = list(names) if names is not None else [f"trial{i}" for i in range(data.shape[0])]
    img = nib.Cifti2Image(data, header=nib.cifti2.Cifti2Header.from_axes((nib.cifti2.ScalarAxis(names), models)))
    with atomic_path(out, suffix=".dscalar.nii") as tmp:
        img.to_filename(str(tmp))
    return Path(out)
