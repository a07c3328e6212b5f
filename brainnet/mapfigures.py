"""Figures of searchlight and variance-partitioning results, from their result records.

Kept apart from ``plotting.py``: these figures read only the records of
:mod:`brainnet.searchlight` and :mod:`brainnet.partition` (never refit), and
``plotting.make_figures`` finds them through one registry entry each
(:func:`figure_jobs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_searchlight", "plot_partition", "write_figures", "figure_jobs"]


def plot_searchlight(result: Any):
    """Group r map, thresholded at the cluster-mass FWE level (else voxelwise FWE), on the MNI template.

    Parameters
    ----------
    result : SearchlightResult

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import nibabel as nib
    from nilearn import plotting as nplotting

    alpha = float(result.summary.get("alpha", 0.05))
    keep = (result.maps["cluster_p_fwe"] < alpha) | (result.maps["p_fwe"] < alpha)
    r = np.where(keep, np.nan_to_num(result.maps["r"]), 0.0)
    vol = np.zeros(result.shape, dtype=np.float32)
    vol[tuple(result.voxel_ijk.T)] = r
    img = nib.Nifti1Image(vol, result.affine)
    n_sig = int(keep.sum())
    scored = "encoding r" if result.summary.get("statistic") == "encoding" else "r"
    title = f"{result.summary.get('layer', '')} searchlight {scored}, {n_sig} centres FWE<{alpha:g}"
    fig = plt.figure(figsize=(7.0, 2.6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's notes on empty maps and cut coordinates
        vmax = float(np.nanmax(np.abs(result.maps["r"]))) or 1.0
        display = nplotting.plot_stat_map(img, figure=fig, threshold=1e-12, vmax=vmax, title=title,
                                          display_mode="ortho", colorbar=True)
    fig._brainnet_display = display
    return fig


def plot_partition(result: Any):
    """Cross-validated R² of each part of the variance partition across voxels (box plot) and the
    share of voxels whose unique parts survive FWE.

    Parameters
    ----------
    result : PartitionResult

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    parts = [c for c in result.table.columns if c.startswith(("unique_", "shared", "union", "joint"))]
    parts = [c for c in parts if not c.endswith(("_p", "_p_fwe"))]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(parts)), 3.2))
    ax.boxplot([result.table[c].to_numpy(float) for c in parts], showfliers=False)
    ax.set_xticks(range(1, len(parts) + 1), parts, rotation=30, ha="right")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel("cross-validated R²")
    alpha = float(result.summary.get("alpha", 0.05))
    sig = [f"{c[:-6]}: {np.mean(result.table[c] < alpha):.0%}" for c in result.table.columns
           if c.endswith("_p_fwe")]
    ax.set_title("variance partition" + (f" (voxels FWE<{alpha:g}: " + ", ".join(sig) + ")" if sig else ""),
                 fontsize=8)
    fig.tight_layout()
    return fig


def write_figures(result: Any, folder: str | Path) -> list[Path]:
    """Write the record's figure(s) as PNG into its result folder (atomically)."""
    import matplotlib.pyplot as plt

    from brainnet.results import atomic_path

    folder = Path(folder)
    written = []
    for name, thunk in _jobs_for(result):
        fig = thunk()
        try:
            with atomic_path(folder / f"{name}.png", suffix=".png") as tmp:
                fig.savefig(tmp, dpi=120)
        finally:
            plt.close(fig)
        written.append(folder / f"{name}.png")
    return written


def _jobs_for(result: Any) -> list[tuple[str, Callable[[], Any]]]:
    kind = result.summary.get("analysis")
    if kind == "searchlight":
        if result.affine is None or result.shape is None:
            return []
        return [("searchlight_r", lambda: plot_searchlight(result))]
    if kind == "partition":
        return [("partition", lambda: plot_partition(result))]
    return []


def figure_jobs(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    """The figures of one complete searchlight or partition folder, for ``make_figures``."""
    if summary.get("analysis") == "searchlight":
        from brainnet.searchlight import SearchlightResult

        return [("searchlight_r", lambda: plot_searchlight(SearchlightResult.read(run)))]
    from brainnet.partition import PartitionResult

    return [("partition", lambda: plot_partition(PartitionResult.read(run)))]
