"""Brain maps for brainnet figures: thresholded glass brains, stat maps, unit grids, peak tables.

Everything is drawn by nilearn on its bundled MNI152 template (no download):
anatomy, L/R markers and slice coordinates come from nilearn, so a map is
read the way reviewers read any SPM/FSL/nilearn figure. Re-exported by
:mod:`brainnet.plotting`.

Two rules the figure builders rely on:

* a map is only ever drawn thresholded at the threshold the caller reports
  (the caller passes the same number it puts into the caption); when no voxel
  passes, the empty template is drawn with "no voxel survives ..." written on
  it, never the unthresholded map;
* titles sit above nilearn's axes (``fig.suptitle``), so they never cover the
  L/R markers, and the colour bar only spans the signs that are drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_brain_map", "plot_brain_map_grid", "peak_table", "atlas_label"]

_DIVERGING = "RdBu_r"
_POSITIVE = "inferno"  # sequential, colour-blind safe, readable on the grey template
_NEGATIVE = "Blues_r"

# Shipped atlases, most specific first: a peak gets the first region containing it.
_ATLAS_REGIONS: tuple[tuple[str, str], ...] = (
    ("v1", "V1 (Juelich hOc1)"),
    ("v2", "V2 (Juelich hOc2)"),
    ("v3", "V3v (Juelich hOc3v)"),
    ("v4", "V4 (Juelich hOc4)"),
    ("inferotemporal", "inferotemporal cortex (Harvard-Oxford)"),
    ("occipital", "occipital lobe (AAL2)"),
)
_ATLAS_CACHE: dict[str, Any] = {}


def _load3d(img: Any) -> Any:
    from nilearn import image as nimage

    img = nimage.load_img(img)
    if img.ndim == 4 and img.shape[3] == 1:
        img = nimage.index_img(img, 0)
    if img.ndim != 3:
        raise ValueError(f"a 3-D image is needed, got shape {img.shape}")
    return img


def _shown(data: np.ndarray, threshold: float, two_sided: bool) -> np.ndarray:
    """Boolean mask of the voxels drawn: finite, non-zero, at or beyond the threshold."""
    finite = np.nan_to_num(data)
    value = np.abs(finite) if two_sided else finite
    return (finite != 0) & (value >= threshold)


def _colour_settings(values: np.ndarray, vmax: float | None) -> dict[str, Any]:
    """One-signed data get a one-sided colour bar (no unused half), mixed data RdBu."""
    if values.size == 0:
        return {"cmap": _POSITIVE, "vmin": 0.0, "vmax": 1.0 if vmax is None else vmax}
    top = float(np.max(np.abs(values))) if vmax is None else float(vmax)
    top = top if top > 0 else 1.0
    if np.all(values > 0):
        return {"cmap": _POSITIVE, "vmin": 0.0, "vmax": top, "symmetric_cbar": False}
    if np.all(values < 0):
        return {"cmap": _NEGATIVE, "vmin": -top, "vmax": 0.0, "symmetric_cbar": False}
    return {"cmap": _DIVERGING, "vmin": -top, "vmax": top, "symmetric_cbar": True}


def _peak_mm(img: Any, mask: np.ndarray) -> tuple[float, float, float] | None:
    """MNI coordinates (mm) of the largest |value| among the shown voxels."""
    if not mask.any():
        return None
    data = np.where(mask, np.abs(np.nan_to_num(img.get_fdata())), -np.inf)
    ijk = np.unravel_index(int(np.argmax(data)), data.shape)
    x, y, z, _ = img.affine @ np.array([*ijk, 1.0])
    return float(x), float(y), float(z)


def plot_brain_map(
    img: Any,
    *,
    kind: str = "glass",
    threshold: float | None = None,
    two_sided: bool = True,
    vmax: float | None = None,
    value_label: str = "Pearson r",
    title: str | None = None,
    display_mode: str | None = None,
    cut_coords: Any = None,
    bg_img: Any = None,
    empty_note: str | None = None,
    figure: Any = None,
    axes: Any = None,
    **nilearn_kwargs: Any,
):
    """A glass-brain or stat-map view of a 3-D map, thresholded as the caller reports it.

    Parameters
    ----------
    img : Niimg-like
        A 3-D image in MNI space (a nibabel image or a path).
    kind : {"glass", "stat"}
        nilearn's ``plot_glass_brain`` (maximum projections) or
        ``plot_stat_map`` (slices on ``bg_img``, default the MNI152 template).
    threshold : float, optional
        Voxels with ``|v| < threshold`` (``v < threshold`` when
        ``two_sided=False``) are not drawn. Default: only exact zeros (voxels
        outside the mask) are hidden. When no voxel passes, the empty brain is
        drawn with ``empty_note`` (default "no voxel passes the threshold")
        written on it.
    two_sided : bool
        Whether the threshold applies to |v| (True) or to v (False: only
        positive values at or above the threshold are drawn).
    vmax : float, optional
        Colour limit (default: the largest drawn magnitude).
    value_label : str
        The mapped quantity and unit (colour-bar label).
    title : str, optional
        Figure title, drawn above the brain (never over the L/R markers).
    display_mode : str, optional
        nilearn display mode (default ``"ortho"`` for stat maps, ``"lzry"``
        for glass brains).
    cut_coords : optional
        nilearn cut coordinates (default for stat maps: the MNI coordinates of
        the peak of the drawn voxels, so the cuts go through the result).
    bg_img : Niimg-like, optional
        Background of stat maps (default nilearn's bundled MNI152 template).
    empty_note : str, optional
        Text written on the empty brain when nothing passes the threshold.
    figure, axes : optional
        Draw into an existing matplotlib figure / axes rectangle.
    **nilearn_kwargs
        Passed on to nilearn (e.g. ``black_bg``, ``draw_cross``, ``annotate``).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.brainnet_map`` records ``threshold``, ``n_voxels_shown`` and
        ``cut_coords`` (what the figure shows, for captions and tests).
    """
    import matplotlib.pyplot as plt
    from nilearn import image as nimage
    from nilearn import plotting as nplotting

    from brainnet.plotting import publication_style

    if kind not in ("glass", "stat"):
        raise ValueError(f"kind must be 'glass' or 'stat', got {kind!r}")
    img = _load3d(img)
    data = np.asarray(img.get_fdata(), dtype=float)
    cutoff = 1e-12 if threshold is None else float(threshold)
    mask = _shown(data, cutoff, two_sided)
    shown_img = nimage.new_img_like(img, np.where(mask, np.nan_to_num(data), 0.0))
    colours = _colour_settings(data[mask], vmax)
    if display_mode is None:
        display_mode = "ortho" if kind == "stat" else "lzry"
    peak = _peak_mm(img, mask)
    if kind == "stat" and cut_coords is None and display_mode == "ortho" and peak is not None:
        cut_coords = peak
    with publication_style(), warnings.catch_warnings():
        # nilearn warns about empty maps and non-finite cut search; both handled here.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        fig = figure if figure is not None else plt.figure(figsize=(7.2, 2.9 if title else 2.5))
        rect = axes if axes is not None else ((0, 0, 1, 0.86) if title else (0, 0, 1, 1))
        common: dict[str, Any] = {
            "figure": fig,
            "axes": rect,
            "display_mode": display_mode,
            "colorbar": bool(mask.any()),
            # the colour bar greys out the hidden range up to the threshold
            "threshold": cutoff,
            "title": None,
            **{k: v for k, v in colours.items() if k != "symmetric_cbar"},
            "symmetric_cbar": colours.get("symmetric_cbar", "auto"),
        }
        if cut_coords is not None:
            common["cut_coords"] = cut_coords
        common.update(nilearn_kwargs)
        if kind == "glass":
            display = nplotting.plot_glass_brain(
                shown_img if mask.any() else None, plot_abs=False, **common
            )
        else:
            if bg_img is not None:
                common["bg_img"] = bg_img
            if mask.any():
                display = nplotting.plot_stat_map(shown_img, **common)
            else:
                for key in ("vmin", "vmax", "cmap", "symmetric_cbar", "threshold"):
                    common.pop(key, None)
                common["colorbar"] = False
                display = nplotting.plot_anat(bg_img if bg_img is not None else _template(), **common)
        cbar = getattr(display, "_cbar", None)
        if cbar is not None:
            cbar.set_label(value_label)
        if not mask.any():
            note = empty_note or "no voxel passes the threshold"
            fig.text(
                0.5,
                0.04,
                note,
                ha="center",
                va="bottom",
                fontsize=9,
                color="#D55E00",
                fontweight="bold",
                bbox={"facecolor": "white", "edgecolor": "#D55E00", "boxstyle": "round,pad=0.3"},
            )
        if title:
            fig.suptitle(title, y=0.99, va="top", fontsize=10)
    fig._brainnet_display = display  # keep nilearn's display alive with its figure
    fig.brainnet_map = {
        "threshold": None if threshold is None else float(threshold),
        "n_voxels_shown": int(mask.sum()),
        "cut_coords": None if cut_coords is None else [float(c) for c in np.ravel(cut_coords)],
        "peak_mm": None if peak is None else list(peak),
    }
    return fig


def _template() -> Any:
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=2)


def plot_brain_map_grid(
    img: Any,
    labels: Sequence[str] | None = None,
    *,
    threshold: float | None = None,
    two_sided: bool = True,
    vmax: float | None = None,
    value_label: str = "bootstrap z",
    n_cols: int = 4,
    title: str | None = None,
    display_mode: str = "z",
    **nilearn_kwargs: Any,
):
    """One nilearn glass brain per volume of a 4-D map, one shared colour scale.

    For per-unit maps (e.g. the FDR-thresholded bootstrap z map of each
    decoded unit) or principal-component maps. Each panel is nilearn's glass
    brain (outline, L/R, anatomy) in ``display_mode`` (default axial).

    Parameters
    ----------
    img : Niimg-like
        A 4-D image, shape (x, y, z, n_maps) (a 3-D image gives one panel).
    labels : sequence of str, optional
        Panel titles, shape (n_maps,) (default ``map 1`` ...).
    threshold : float, optional
        Voxels with ``|v| < threshold`` are not drawn (default: exact zeros).
    two_sided : bool
        Threshold |v| (True) or v (False).
    vmax : float, optional
        Shared colour limit (default: largest drawn magnitude).
    value_label : str
        The mapped quantity and unit (colour-bar label).
    n_cols : int
        Panels per row.
    title : str, optional
    display_mode : str
        nilearn glass-brain display mode of every panel.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.brainnet_map`` records ``threshold`` and ``n_voxels_shown`` per panel.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from nilearn import image as nimage
    from nilearn import plotting as nplotting

    from brainnet.plotting import _as_labels, publication_style

    img = nimage.load_img(img)
    data = np.asarray(img.get_fdata(), dtype=float)
    if data.ndim == 3:
        data = data[..., None]
    n_maps = data.shape[3]
    labels = _as_labels(labels, n_maps, "map")
    cutoff = 1e-12 if threshold is None else float(threshold)
    masks = [_shown(data[..., k], cutoff, two_sided) for k in range(n_maps)]
    drawn = np.concatenate([data[..., k][m] for k, m in enumerate(masks)])
    colours = _colour_settings(drawn, vmax)
    n_cols = max(1, min(n_cols, n_maps))
    n_rows = -(-n_maps // n_cols)
    panel_w, panel_h, top = 1.9, 2.35, 0.45 if title else 0.1
    label_h = 0.42  # inches above each brain for its (up to two-line) label
    width, height = panel_w * n_cols + 0.9, panel_h * n_rows + top
    with publication_style(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        fig = plt.figure(figsize=(width, height))
        displays = []
        for k in range(n_maps):
            row, col = divmod(k, n_cols)
            left = col * panel_w / width
            bottom = 1 - (top + (row + 1) * panel_h) / height
            rect = (left, bottom, panel_w / width, (panel_h - label_h) / height)
            volume = np.where(masks[k], np.nan_to_num(data[..., k]), 0.0)
            display = nplotting.plot_glass_brain(
                nimage.new_img_like(img, volume) if masks[k].any() else None,
                figure=fig,
                axes=rect,
                display_mode=display_mode,
                plot_abs=False,
                colorbar=False,
                threshold=cutoff,
                cmap=colours["cmap"],
                vmin=colours["vmin"],
                vmax=colours["vmax"],
                **nilearn_kwargs,
            )
            displays.append(display)
            note = "" if masks[k].any() else "\n(no voxel passes)"
            fig.text(
                left + 0.5 * panel_w / width,
                bottom + (panel_h - label_h + 0.04) / height,
                labels[k] + note,
                ha="center",
                va="bottom",
                fontsize=8,
            )
        cax = fig.add_axes((1 - 0.55 / width, 0.2, 0.12 / width, 0.6))
        mappable = ScalarMappable(Normalize(colours["vmin"], colours["vmax"]), cmap=colours["cmap"])
        cbar = fig.colorbar(mappable, cax=cax)
        cbar.set_label(value_label)
        if title:
            fig.suptitle(title, y=1 - 0.04 / height, va="top", fontsize=10)
    fig._brainnet_display = displays
    fig.brainnet_map = {
        "threshold": None if threshold is None else float(threshold),
        "n_voxels_shown": [int(m.sum()) for m in masks],
        "labels": list(labels),
    }
    return fig


def atlas_label(xyz_mm: Sequence[float]) -> str:
    """Region of an MNI coordinate in brainnet's shipped atlases (most specific first).

    Parameters
    ----------
    xyz_mm : sequence of 3 floats
        MNI coordinate in mm.

    Returns
    -------
    str
        e.g. ``"left V1 (Juelich hOc1)"``; ``"outside the shipped atlases"``
        when no shipped region contains the coordinate.
    """
    import nibabel as nib

    from brainnet.masks import mask_path

    x = float(xyz_mm[0])
    side = "left" if x < 0 else "right" if x > 0 else "midline"
    for key, name in _ATLAS_REGIONS:
        if key not in _ATLAS_CACHE:
            atlas = nib.load(mask_path(key))
            _ATLAS_CACHE[key] = (np.asarray(atlas.dataobj) > 0, np.linalg.inv(atlas.affine))
        inside, inverse = _ATLAS_CACHE[key]
        ijk = np.rint(inverse @ np.array([*map(float, xyz_mm[:3]), 1.0]))[:3].astype(int)
        if np.all(ijk >= 0) and np.all(ijk < inside.shape) and inside[tuple(ijk)]:
            return f"{side} {name}"
    return "outside the shipped atlases"


def peak_table(
    img: Any,
    threshold: float,
    *,
    two_sided: bool = False,
    min_distance: float = 8.0,
    cluster_threshold: int = 0,
    value_label: str = "peak value",
) -> pd.DataFrame:
    """Clusters and their peaks above ``threshold``, with atlas labels.

    Computed by :func:`nilearn.reporting.get_clusters_table` (face-connected
    clusters, sub-peaks at least ``min_distance`` mm apart); each peak is
    labelled with :func:`atlas_label`.

    Parameters
    ----------
    img : Niimg-like
        A 3-D statistical map in MNI space.
    threshold : float
        Voxels with value >= threshold (|value| with ``two_sided``) form clusters;
        pass the same threshold the map is drawn and reported with.
    two_sided : bool
        Also report negative clusters.
    min_distance : float
        Minimum distance between sub-peaks in mm.
    cluster_threshold : int
        Clusters smaller than this many voxels are dropped.
    value_label : str
        Name of the peak-value column (the map's quantity).

    Returns
    -------
    pandas.DataFrame
        One row per peak: ``cluster ID`` (sub-peaks ``1a``, ``1b``, ...), ``x (mm)``, ``y (mm)``, ``z (mm)``,
        ``value_label``, ``cluster size (mm³)``, ``region``. Empty (with these
        columns) when nothing passes.
    """
    from nilearn.reporting import get_clusters_table

    columns = ["cluster ID", "x (mm)", "y (mm)", "z (mm)", value_label, "cluster size (mm³)", "region"]
    img = _load3d(img)
    data = np.nan_to_num(np.asarray(img.get_fdata(), dtype=float))
    value = np.abs(data) if two_sided else data
    if not np.any(value >= threshold):
        return pd.DataFrame(columns=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = get_clusters_table(
            img,
            stat_threshold=float(threshold),
            cluster_threshold=cluster_threshold,
            two_sided=two_sided,
            min_distance=min_distance,
        )
    if table.empty:
        return pd.DataFrame(columns=columns)
    size = table["Cluster Size (mm3)"].replace("", np.nan)
    out = pd.DataFrame(
        {
            "cluster ID": table["Cluster ID"].astype(str),
            "x (mm)": table["X"].astype(float),
            "y (mm)": table["Y"].astype(float),
            "z (mm)": table["Z"].astype(float),
            value_label: table["Peak Stat"].astype(float),
            "cluster size (mm³)": pd.to_numeric(size, errors="coerce"),
        }
    )
    out["region"] = [atlas_label(xyz) for xyz in out[["x (mm)", "y (mm)", "z (mm)"]].to_numpy()]
    return out.reset_index(drop=True)
