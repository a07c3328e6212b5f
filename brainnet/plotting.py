"""Publication figures for brainnet results, and regenerating them from result folders.

Every ``plot_*`` function takes arrays or DataFrames (never files), draws one
figure in brainnet's publication style and returns the matplotlib
:class:`~matplotlib.figure.Figure`, so a notebook can restyle or save it.
Pass ``ax=`` to draw into an existing axes instead (the function then returns
that axes' figure). :func:`make_figures` reads saved result folders and writes
every figure it can as PNG plus a vector format, without recomputing any
analysis.

Style: Okabe & Ito's colour-blind-safe palette for categories, viridis for
sequential maps and ColorBrewer's RdBu (also colour-blind safe) for signed
maps; 8-10 pt fonts at the default figure sizes; TrueType fonts embedded in
PDF and text kept as text in SVG so journals can edit labels. Every axis names
its quantity and unit.

Brain maps are drawn with nilearn (its bundled MNI template; nothing is
downloaded). Dendrograms use scipy's. The rest is plain matplotlib: seaborn
would add a dependency for a few heatmaps.
"""

from __future__ import annotations

import contextlib
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet._plot_brain import atlas_label, peak_table, plot_brain_map, plot_brain_map_grid
from brainnet.errors import BrainnetError, input_error
from brainnet.results import (
    atomic_path,
    atomic_write_json,
    brainnet_version,
    read_json,
    sha256_file,
)

__all__ = [
    "OKABE_ITO",
    "FigureSkipped",
    "publication_style",
    "plot_unit_scores",
    "plot_confusion",
    "plot_dendrogram",
    "plot_pca",
    "plot_rdm",
    "plot_second_order",
    "plot_mds",
    "plot_layer_profile",
    "plot_brain_map",
    "plot_brain_map_grid",
    "peak_table",
    "atlas_label",
    "plot_power",
    "plot_network_output",
    "plot_subject_accuracy",
    "plot_score_histogram",
    "save_figure",
    "make_figures",
]

#: Okabe & Ito (2008) colour-blind-safe palette (black first).
OKABE_ITO: tuple[str, ...] = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
_BLUE = "#0072B2"
_VERMILLION = "#D55E00"
_SKY = "#56B4E9"
_GREY = "#999999"
_SEQUENTIAL = "viridis"
_DIVERGING = "RdBu_r"


class FigureSkipped(UserWarning):
    """Warned by :func:`make_figures` when a figure's input is missing or unreadable."""


def _style() -> dict[str, Any]:
    from cycler import cycler

    return {
        "font.family": "sans-serif",
        "font.sans-serif": ["Arial", "Helvetica", "DejaVu Sans"],
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "legend.fontsize": 8,
        "legend.frameon": False,
        "axes.prop_cycle": cycler(color=list(OKABE_ITO[1:]) + [OKABE_ITO[0]]),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "image.cmap": _SEQUENTIAL,
        # Editable text in vector output: TrueType in PDF, <text> in SVG.
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "none",
        "savefig.dpi": 200,
        "savefig.bbox": "tight",
        "figure.dpi": 100,
    }


@contextlib.contextmanager
def publication_style() -> Iterator[None]:
    """Context manager applying brainnet's figure style (fonts, palette, vector text).

    Examples
    --------
    >>> with publication_style():  # doctest: +SKIP
    ...     fig = plot_power([4, 8], [0.3, 0.9])
    ...     fig.savefig("power.pdf")
    """
    import matplotlib.pyplot as plt

    with plt.rc_context(_style()):
        yield


def _figure_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    with publication_style():
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _styled(func: Callable[..., Any]) -> Callable[..., Any]:
    # rcParams are read when artists are created, so the whole body runs styled.
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with publication_style():
            return func(*args, **kwargs)

    return wrapper


def _as_labels(labels: Sequence[str] | None, n: int, prefix: str) -> list[str]:
    if labels is None:
        return [f"{prefix} {i + 1}" for i in range(n)]
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} {prefix}s")
    return labels


def _square(matrix: Any, name: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square 2-D array, got shape {m.shape}")
    return m


def _block_ticks(ax: Any, groups: np.ndarray, *, lines: bool = True, color: str = "white") -> None:
    """Tick each run of equal ``groups`` at its centre and draw its boundaries."""
    starts = [0] + [i for i in range(1, len(groups)) if groups[i] != groups[i - 1]]
    ends = starts[1:] + [len(groups)]
    centres = [(s + e - 1) / 2 for s, e in zip(starts, ends, strict=True)]
    names = [str(groups[s]) for s in starts]
    ax.set_xticks(centres, names, rotation=90)
    ax.set_yticks(centres, names)
    if lines:
        for b in starts[1:]:
            ax.axhline(b - 0.5, color=color, linewidth=1.0)
            ax.axvline(b - 0.5, color=color, linewidth=1.0)


def _colorbar(fig: Any, image: Any, ax: Any, label: str) -> Any:
    cbar = fig.colorbar(image, ax=ax, shrink=0.8)
    cbar.set_label(label)
    return cbar


# --------------------------------------------------------------------- figures


@_styled
def plot_unit_scores(
    r: Any,
    units: Sequence[str] | None = None,
    *,
    noise_ceiling: float | Sequence[float] | None = None,
    p_values: Sequence[float] | None = None,
    alpha: float = 0.05,
    p_label: str = "p",
    sort: bool = True,
    max_units: int | None = 60,
    ax: Any = None,
    title: str | None = None,
):
    """Per-unit decoding accuracy as bars (the paper's Fig. 4 style).

    Parameters
    ----------
    r : array-like, shape (n_subjects, n_units) or (n_units,)
        Pearson r between observed and predicted unit activations; with
        several subjects the bar is the mean and the error bar one SE.
    units : sequence of str, optional
        Unit names, shape (n_units,) (default ``unit 1`` ...).
    noise_ceiling : float or array-like of shape (n_units,), optional
        Drawn as a dashed line (one value) or a dash per bar.
    p_values : array-like, shape (n_units,), optional
        Units with ``p < alpha`` get an asterisk above their bar.
    alpha : float
        Significance level for the asterisks.
    p_label : str
        Name of the p-value in the legend note (e.g. ``"p_FWE"``).
    sort : bool
        Order bars from best to worst unit (as in the paper).
    max_units : int or None
        Wider layers (fc7: 4,096 units) show only their best ``max_units``
        units (the first ones without ``sort``); the title says so.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    r = np.atleast_2d(np.asarray(r, dtype=float))
    units = _as_labels(units, r.shape[1], "unit")
    if max_units is not None and r.shape[1] > max_units:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # units that are NaN in every subject
            best = np.argsort(-np.nan_to_num(np.nanmean(r, axis=0), nan=-np.inf), kind="stable")
        keep = np.sort(best[:max_units]) if sort else np.arange(max_units)
        title = (title + ": " if title else "") + f"best {max_units} of {r.shape[1]} units"
        r, units = r[:, keep], [units[i] for i in keep]
        if noise_ceiling is not None and np.ndim(noise_ceiling) > 0:
            noise_ceiling = np.asarray(noise_ceiling, dtype=float)[keep]
        if p_values is not None:
            p_values = np.asarray(p_values, dtype=float)[keep]
    n_subjects, n_units = r.shape
    mean = np.nanmean(r, axis=0)
    se = np.nanstd(r, axis=0, ddof=1) / np.sqrt(n_subjects) if n_subjects > 1 else None
    order = np.argsort(-mean, kind="stable") if sort else np.arange(n_units)
    fig, ax = _figure_axes(ax, (max(4.0, 0.28 * n_units + 1.5), 3.2))
    x = np.arange(n_units)
    ax.bar(
        x,
        mean[order],
        yerr=None if se is None else se[order],
        color=_BLUE,
        ecolor="black",
        capsize=1.5,
        error_kw={"linewidth": 0.8},
        label="cross-validated r" + (" (mean ± SE)" if se is not None else ""),
    )
    if noise_ceiling is not None:
        nc = np.asarray(noise_ceiling, dtype=float)
        if nc.ndim == 0:
            ax.axhline(
                float(nc), color=_VERMILLION, linestyle="--", linewidth=1.2, label="noise ceiling"
            )
        else:
            ax.hlines(
                nc[order],
                x - 0.4,
                x + 0.4,
                color=_VERMILLION,
                linestyle="--",
                label="noise ceiling",
            )
    if p_values is not None:
        p = np.asarray(p_values, dtype=float)[order]
        top = mean[order] + (0 if se is None else np.nan_to_num(se[order]))
        pad = 0.03 * max(np.nanmax(np.abs(top)), 1e-12)
        for xi, (pi, ti) in enumerate(zip(p, top, strict=True)):
            if pi < alpha:
                ax.text(xi, max(ti, 0) + pad, "*", ha="center", va="bottom", fontsize=10)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [units[i] for i in order], rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.7, n_units - 0.3)
    ax.set_xlabel("network unit")
    ax.set_ylabel("decoding accuracy (Pearson r)")
    if p_values is not None:
        ax.set_title((title + "\n" if title else "") + f"* {p_label} < {alpha:g}", fontsize=9)
    elif title:
        ax.set_title(title)
    # headroom so the legend never covers bars, marks or ceiling dashes
    tops = [np.nanmax(mean + (0 if se is None else np.nan_to_num(se)))]
    if noise_ceiling is not None:
        tops.append(np.nanmax(np.asarray(noise_ceiling, dtype=float)))
    top = max(float(np.nanmax(tops)), 0.0)
    if top > 0:
        ax.set_ylim(top=top * 1.35)
    ax.legend(loc="upper right", ncol=2)
    return fig


@_styled
def plot_confusion(
    confusion: Any,
    labels: Sequence[str] | None = None,
    *,
    clusters: Sequence[Any] | None = None,
    vmax: float | None = None,
    value_label: str = "proportion of decodings",
    ax: Any = None,
    title: str | None = None,
):
    """Confusion matrix, true categories on rows, decoded on columns, grouped by cluster.

    Parameters
    ----------
    confusion : array-like, shape (n_categories, n_categories)
        Row ``i``, column ``j``: how often true category ``i`` was decoded as
        ``j`` (the layout of ``confusion.tsv`` and ``category_confusion.tsv``).
    labels : sequence of str, optional
        Category names, shape (n_categories,).
    clusters : sequence, optional
        Cluster of each category, shape (n_categories,). Categories are then
        reordered so clusters are contiguous and their boundaries drawn as
        white lines (named in a legend below the matrix).
    vmax : float, optional
        Upper colour limit (default: the largest entry); the lower limit is 0.
    value_label : str
        Colour-bar label (quantity and unit).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    m = _square(confusion, "confusion")
    n = m.shape[0]
    labels = _as_labels(labels, n, "category")
    order = np.arange(n)
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != (n,):
            raise ValueError(f"clusters must have shape ({n},), got {clusters.shape}")
        order = np.lexsort((np.arange(n), clusters))
    m = m[np.ix_(order, order)]
    fig, ax = _figure_axes(ax, (max(4.0, 0.25 * n + 2.2), max(3.8, 0.25 * n + 2.0)))
    image = ax.imshow(
        m, cmap=_SEQUENTIAL, vmin=0.0, vmax=float(np.nanmax(m)) if vmax is None else vmax
    )
    names = [labels[i] for i in order]
    ax.set_xticks(np.arange(n), names, rotation=90)
    ax.set_yticks(np.arange(n), names)
    if clusters is not None:
        groups = clusters[order]
        for b in range(1, n):
            if groups[b] != groups[b - 1]:
                ax.axhline(b - 0.5, color="white", linewidth=1.2)
                ax.axvline(b - 0.5, color="white", linewidth=1.2)
        boundary = Line2D(
            [], [], color="white", linewidth=1.6, path_effects=_outlined(),
            label=f"boundary between discriminable clusters ({len(set(groups.tolist()))} clusters)",
        )
        if fig.get_layout_engine() is not None:
            fig.legend(handles=[boundary], loc="outside lower center", frameon=False)
        else:
            ax.legend(handles=[boundary], loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_ylabel("true category (rows)")
    ax.set_xlabel("decoded category (columns)")
    ax.spines[:].set_visible(False)
    _colorbar(fig, image, ax, value_label)
    if title:
        ax.set_title(title)
    return fig


def _outlined() -> list[Any]:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=3.0, foreground="#444444")]


def _cut_height(linkage: np.ndarray, n_clusters: int) -> float:
    heights = np.sort(linkage[:, 2])
    n = len(heights) + 1
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be between 1 and {n}, got {n_clusters}")
    if n_clusters == 1:
        return float(heights[-1]) * 1.05 + 1e-12
    if n_clusters == n:
        return float(heights[0]) / 2
    # k clusters remain after the first n - k merges.
    return float(heights[n - n_clusters - 1] + heights[n - n_clusters]) / 2


@_styled
def plot_dendrogram(
    linkage: Any,
    labels: Sequence[str] | None = None,
    *,
    n_clusters: int | None = None,
    distance_label: str = "Ward distance\n(1 − symmetrised confusion)",
    ax: Any = None,
    title: str | None = None,
):
    """Dendrogram of discriminable clusters, coloured at the chosen cut.

    Parameters
    ----------
    linkage : array-like, shape (n_categories - 1, 4)
        A scipy linkage matrix (e.g. ``scipy.cluster.hierarchy.ward``).
    labels : sequence of str, optional
        Category names, shape (n_categories,).
    n_clusters : int, optional
        Colour the tree cut into this many clusters and draw the cut line.
    distance_label : str
        Y-axis label (the linkage distance and its unit).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.cluster import hierarchy

    z = np.asarray(linkage, dtype=float)
    n = z.shape[0] + 1
    labels = _as_labels(labels, n, "category")
    fig, ax = _figure_axes(ax, (max(4.0, 0.28 * n + 1.5), 3.2))
    threshold = _cut_height(z, n_clusters) if n_clusters else 0.0
    palette = [c for c in OKABE_ITO[1:] if c != "#F0E442"]  # yellow is unreadable on white
    hierarchy.set_link_color_palette(palette)
    try:
        hierarchy.dendrogram(
            z,
            labels=labels,
            ax=ax,
            color_threshold=threshold,
            above_threshold_color=_GREY,
            leaf_rotation=90,
            leaf_font_size=8,
        )
    finally:
        hierarchy.set_link_color_palette(None)
    if n_clusters:
        ax.axhline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=0.8,
            label=f"cut: {n_clusters} clusters",
        )
        title = (
            f"{title}: cut at {n_clusters} clusters" if title else f"cut at {n_clusters} clusters"
        )
    ax.set_xlabel("category")
    ax.set_ylabel(distance_label)
    if title:
        ax.set_title(title)
    return fig


def _place_labels(
    ax: Any, xy: np.ndarray, labels: Sequence[str], fontsize: float = 7, bold: Sequence[str] = ()
) -> list[Any]:
    """Annotate points so that no two labels overlap (greedy, densest points first).

    Each label tries offsets at growing distances in eight directions and takes
    the first whose box overlaps no placed label and no point; labels moved
    away from their point get a thin leader line. Written by hand because
    adjustText would add a dependency for one scatter plot; 20 labels are
    placed in well under a second.
    """
    fig = ax.figure
    xy = np.asarray(xy, dtype=float)
    ax.update_datalim(xy)
    ax.autoscale_view()
    ax.margins(0.12)
    fig.canvas.draw()  # settle the layout, so display coordinates stay valid
    renderer = fig.canvas.get_renderer()
    points = ax.transData.transform(xy)
    frame = tuple(ax.get_window_extent(renderer).extents)
    pad = 2.0
    point_boxes = [
        (px - r, py - r, px + r, py + r)
        for (px, py), name in zip(points, labels, strict=True)
        for r in [9 if name in bold else 3]  # the network's star is larger than a dot
    ]
    placed: list[tuple[float, float, float, float]] = []
    texts = []
    # most crowded points first, so they get the nearest free positions
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    crowd = np.sort(dist, axis=1)[:, 1:4].mean(axis=1) if len(points) > 3 else np.zeros(len(points))
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]

    def overlap(box, others) -> float:
        total = 0.0
        for o in others:
            w = min(box[2], o[2]) - max(box[0], o[0])
            h = min(box[3], o[3]) - max(box[1], o[1])
            if w > 0 and h > 0:
                total += w * h
        return total

    for i in np.argsort(crowd, kind="stable"):
        emphasis = labels[i] in bold
        text = ax.annotate(
            labels[i], xy[i], xytext=(0, 0), textcoords="offset points",
            fontsize=fontsize + 2 if emphasis else fontsize,
            fontweight="bold" if emphasis else "normal", ha="left", va="bottom", zorder=4,
        )
        bbox = text.get_window_extent(renderer)
        w, h = bbox.width, bbox.height
        best, best_cost = None, np.inf
        for step in (2, 5, 9, 14, 20, 28):
            for dx, dy in directions:
                ox = dx * step + (0 if dx >= 0 else -w) - (w / 2 if dx == 0 else 0)
                oy = dy * step + (0 if dy >= 0 else -h) - (h / 2 if dy == 0 else 0)
                x0, y0 = points[i][0] + ox, points[i][1] + oy
                box = (x0 - pad, y0 - pad, x0 + w + pad, y0 + h + pad)
                inside = overlap(box, [frame])
                outside = (box[2] - box[0]) * (box[3] - box[1]) - inside
                cost = overlap(box, placed) + overlap(box, point_boxes) + 4 * outside + step * 0.01
                if cost < best_cost:
                    best, best_cost = (ox, oy, box, step), cost
            if best_cost < 1:
                break
        ox, oy, box, step = best
        scale = 72.0 / fig.dpi  # display pixels -> points
        text.set_position((ox * scale, oy * scale))
        if step > 5:
            ax.annotate(
                "", xy[i], xytext=((ox + w / 2) * scale, (oy + h / 2) * scale),
                textcoords="offset points", arrowprops={"arrowstyle": "-", "color": _GREY, "lw": 0.5},
                zorder=2,
            )
        placed.append(box)
        texts.append(text)
    return texts


@_styled
def plot_pca(
    scores: Any,
    labels: Sequence[str] | None = None,
    *,
    explained_variance_ratio: Sequence[float] | None = None,
    components: tuple[int, int] = (0, 1),
    quantity: str = "score",
    ax: Any = None,
    title: str | None = "PCA of PLS coefficients",
):
    """Units in the space of two principal components of their PLS coefficients.

    Parameters
    ----------
    scores : array-like, shape (n_units, n_components)
        Each unit's coordinates on the principal components (e.g. of the
        bootstrap-averaged PLS coefficients, voxels as features).
    labels : sequence of str, optional
        Unit names, shape (n_units,).
    explained_variance_ratio : array-like, shape (n_components,), optional
        Fraction of variance per component, shown in the axis labels.
    components : (int, int)
        Which two components to plot (0-based).
    quantity : str
        What the coordinates are, for the axis labels (``"score"`` or ``"loading"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[1] <= max(components):
        raise ValueError(f"scores must have shape (n_units, > {max(components)}), got {s.shape}")
    labels = _as_labels(labels, s.shape[0], "unit")
    fig, ax = _figure_axes(ax, (5.0, 4.4))
    a, b = components
    ax.scatter(s[:, a], s[:, b], color=_BLUE, s=24, zorder=3)
    _place_labels(ax, s[:, [a, b]], labels, fontsize=7)
    ax.axhline(0, color=_GREY, linewidth=0.6, zorder=1)
    ax.axvline(0, color=_GREY, linewidth=0.6, zorder=1)

    def axis_label(k: int) -> str:
        if explained_variance_ratio is None:
            return f"PC{k + 1} {quantity} (a.u.)"
        share = 100 * float(explained_variance_ratio[k])
        return f"PC{k + 1} {quantity} (a.u.; {share:.1f} % of variance)"

    ax.set_xlabel(axis_label(a))
    ax.set_ylabel(axis_label(b))
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_rdm(
    rdm: Any,
    categories: Sequence[Any] | None = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    value_label: str = "dissimilarity (1 − Pearson r)",
    ax: Any = None,
    title: str | None = None,
):
    """A representational dissimilarity matrix, stimuli grouped by category.

    Parameters
    ----------
    rdm : array-like, shape (n_stimuli, n_stimuli)
        Dissimilarities, stimuli in their original order.
    categories : sequence, optional
        Category of each stimulus, shape (n_stimuli,). Stimuli are reordered by
        category (sorted names, stable within a category), each block gets a
        tick at its centre, and blocks are separated by lines.
    vmin, vmax : float, optional
        Colour limits (default: range of the off-diagonal entries).
    value_label : str
        Colour-bar label (the distance and its unit).

    Returns
    -------
    matplotlib.figure.Figure
    """
    m = _square(rdm, "rdm")
    n = m.shape[0]
    off = m[~np.eye(n, dtype=bool)] if n > 1 else m.ravel()
    vmin = float(np.nanmin(off)) if vmin is None else vmin
    vmax = float(np.nanmax(off)) if vmax is None else vmax
    order = np.arange(n)
    if categories is not None:
        cats = np.asarray([str(c) for c in categories])
        if cats.shape != (n,):
            raise ValueError(f"categories must have shape ({n},), got {cats.shape}")
        order = np.lexsort((np.arange(n), cats))
    fig, ax = _figure_axes(ax, (4.8, 4.0))
    image = ax.imshow(
        m[np.ix_(order, order)], cmap=_SEQUENTIAL, vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    if categories is not None:
        _block_ticks(ax, cats[order])
        ax.set_xlabel("stimulus category")
        ax.set_ylabel("stimulus category")
    else:
        ax.set_xlabel("stimulus (index)")
        ax.set_ylabel("stimulus (index)")
    ax.spines[:].set_visible(False)
    _colorbar(fig, image, ax, value_label)
    if title:
        ax.set_title(title)
    return fig


def _network_index(names: list[str], network: str) -> int:
    if network not in names:
        raise ValueError(f"network {network!r} is not among the names {names}")
    return names.index(network)


@_styled
def plot_second_order(
    matrix: Any,
    names: Sequence[str],
    *,
    network: str = "EmoNet",
    value_label: str = "RDM similarity (Spearman ρ)",
    ax: Any = None,
    title: str | None = None,
):
    """Second-order similarity of the subjects' and the network's RDMs.

    Parameters
    ----------
    matrix : array-like, shape (n_subjects + 1, n_subjects + 1)
        Similarity between every pair of RDMs (humans and the network).
    names : sequence of str
        Row/column names, shape (n_subjects + 1,); one of them is ``network``.
    network : str
        Name of the network row, outlined in vermillion with a bold tick.
    value_label : str
        Colour-bar label (the comparison and its unit).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The diagonal (every RDM's similarity with itself, 1 by definition) is
    masked (drawn light grey) and left out of the colour scale, which is
    sequential (viridis) from the smallest to the largest off-diagonal value.
    """
    from matplotlib.patches import Rectangle

    m = _square(matrix, "second-order matrix")
    names = [str(x) for x in names]
    k = _network_index(names, network)
    n = m.shape[0]
    import matplotlib as mpl

    diagonal = np.eye(n, dtype=bool)
    off = m[~diagonal]
    finite = off[np.isfinite(off)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    cmap = mpl.colormaps[_SEQUENTIAL].with_extremes(bad="#e8e8e8")
    fig, ax = _figure_axes(ax, (max(4.2, 0.24 * n + 2.2), max(3.6, 0.24 * n + 1.6)))
    image = ax.imshow(
        np.ma.masked_where(diagonal, m), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
    )
    ax.set_xticks(np.arange(n), names, rotation=90)
    ax.set_yticks(np.arange(n), names)
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        ticks[k].set_fontweight("bold")
        ticks[k].set_color(_VERMILLION)
    for xy, w, h in (((-0.5, k - 0.5), n, 1), ((k - 0.5, -0.5), 1, n)):
        ax.add_patch(Rectangle(xy, w, h, fill=False, edgecolor=_VERMILLION, linewidth=1.5))
    ax.set_xlabel("subject or network")
    ax.set_ylabel("subject or network")
    ax.spines[:].set_visible(False)
    _colorbar(fig, image, ax, value_label)
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_mds(
    coords: Any,
    names: Sequence[str],
    *,
    network: str = "EmoNet",
    ax: Any = None,
    title: str | None = "MDS of RDM dissimilarity (1 − ρ)",
):
    """Two-dimensional MDS of the subjects and the network, the network highlighted.

    Parameters
    ----------
    coords : array-like, shape (n_subjects + 1, 2)
        MDS coordinates.
    names : sequence of str
        Point names, shape (n_subjects + 1,); one of them is ``network``.
    network : str
        Name of the network point (vermillion star; humans are blue circles).

    Returns
    -------
    matplotlib.figure.Figure
    """
    xy = np.asarray(coords, dtype=float)
    names = [str(x) for x in names]
    if xy.ndim != 2 or xy.shape[1] < 2 or xy.shape[0] != len(names):
        raise ValueError(f"coords must have shape ({len(names)}, 2), got {xy.shape}")
    k = _network_index(names, network)
    human = np.arange(len(names)) != k
    fig, ax = _figure_axes(ax, (5.4, 3.8))
    ax.scatter(
        xy[human, 0], xy[human, 1], color=_BLUE, marker="o", s=28, label="human subjects", zorder=3
    )
    ax.scatter(xy[k, 0], xy[k, 1], color=_VERMILLION, marker="*", s=160, label=network, zorder=4)
    ax.set_xlabel("MDS dimension 1 (a.u.)")
    ax.set_ylabel("MDS dimension 2 (a.u.)")
    ax.set_aspect("equal", adjustable="datalim")
    # outside the data, so the legend's markers never read as more points
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    _place_labels(ax, xy[:, :2], names, fontsize=6, bold=[network])
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_layer_profile(
    layers: Sequence[str],
    values: Any,
    *,
    ci: Any = None,
    noise_ceiling: Any = None,
    ylabel: str = "network–human similarity (Spearman ρ)",
    ci_label: str = "95 % CI",
    p_values: Any = None,
    alpha: float = 0.05,
    p_label: str = "p",
    ax: Any = None,
    title: str | None = None,
):
    """A score per network layer (conv1 -> fc8) with the human noise ceiling as a band.

    Parameters
    ----------
    layers : sequence of str
        Layer names in network order, shape (n_layers,).
    values : array-like, shape (n_layers,)
        The score per layer.
    ci : array-like, shape (2, n_layers), optional
        Lower and upper confidence limits, drawn as error bars.
    noise_ceiling : (lower, upper), optional
        Scalars (one band across layers) or arrays of shape (n_layers,).
    ylabel : str
        The score and its unit.
    ci_label : str
        What the error bars are (legend entry), e.g. ``"95 % bootstrap CI
        over subjects"``.
    p_values : array-like, shape (n_layers,), optional
        Layers with ``p < alpha`` get an asterisk above their error bar.
    alpha : float
        Significance level of the asterisks.
    p_label : str
        Name of the p-value in the legend (e.g. ``"p_FWE"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers = [str(x) for x in layers]
    v = np.asarray(values, dtype=float)
    if v.shape != (len(layers),):
        raise ValueError(f"values must have shape ({len(layers)},), got {v.shape}")
    x = np.arange(len(layers))
    fig, ax = _figure_axes(ax, (max(4.2, 0.5 * len(layers) + 1.5), 4.0))
    if noise_ceiling is not None:
        lower, upper = (np.asarray(b, dtype=float) for b in noise_ceiling)
        band = {"color": _GREY, "alpha": 0.35, "linewidth": 0, "label": "noise ceiling"}
        if lower.ndim == 0 and upper.ndim == 0:
            ax.axhspan(float(lower), float(upper), **band)
        else:
            ax.fill_between(
                x, np.broadcast_to(lower, v.shape), np.broadcast_to(upper, v.shape), **band
            )
    yerr = None
    if ci is not None:
        lo, hi = np.asarray(ci, dtype=float)
        # a percentile bootstrap CI can exclude the estimate (few or skewed
        # resamples); its bar then ends at the estimate instead of failing
        yerr = np.clip(np.vstack([v - lo, hi - v]), 0, None)
    label = "network" + (f" (error bars: {ci_label})" if yerr is not None else "")
    ax.errorbar(x, v, yerr=yerr, color=_BLUE, marker="o", capsize=2, label=label)
    if p_values is not None:
        p = np.asarray(p_values, dtype=float)
        top = v if yerr is None else v + yerr[1]
        span = float(np.nanmax(np.abs(np.r_[top, v]))) or 1.0
        for xi, (pi, ti) in enumerate(zip(p, top, strict=True)):
            if pi < alpha:
                ax.text(xi, ti + 0.03 * span, "*", ha="center", va="bottom", fontsize=11)
        ax.plot([], [], " ", label=f"* {p_label} < {alpha:g}")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, layers)
    ax.set_xlabel("network layer")
    ax.set_ylabel(ylabel)
    # below the axes: it never covers a layer's point or the ceiling band
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_power(
    n_subjects: Any,
    detection_rate: Any,
    *,
    ci_low: Any = None,
    ci_high: Any = None,
    target: float | None = 0.8,
    label: str | None = None,
    xlabel: str = "number of subjects",
    ax: Any = None,
    title: str | None = None,
):
    """Detection rate (power) against sample size, with its confidence band.

    Parameters
    ----------
    n_subjects : array-like, shape (n_sizes,)
        Sample sizes.
    detection_rate : array-like, shape (n_sizes,)
        Fraction of subsamples in which the effect was detected (0-1).
    ci_low, ci_high : array-like, shape (n_sizes,), optional
        Confidence band (e.g. binomial) of the detection rate.
    target : float or None
        Conventional power level drawn as a dotted line (default 0.8).
    label : str, optional
        Legend entry; call again with ``ax=`` to overlay several curves.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = np.asarray(n_subjects, dtype=float)
    rate = np.asarray(detection_rate, dtype=float)
    order = np.argsort(n)
    fig, ax = _figure_axes(ax, (4.0, 3.2))
    (line,) = ax.plot(n[order], rate[order], marker="o", label=label or "detection rate")
    if ci_low is not None and ci_high is not None:
        lo = np.asarray(ci_low, dtype=float)[order]
        hi = np.asarray(ci_high, dtype=float)[order]
        ax.fill_between(
            n[order], lo, hi, color=line.get_color(), alpha=0.25, linewidth=0, label="95 % CI"
        )
    if target is not None:
        ax.axhline(target, color=_GREY, linestyle=":", linewidth=1.0, label=f"power {target:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("detection rate (fraction of subsamples)")
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_network_output(
    values: Any,
    labels: Sequence[str] | None = None,
    *,
    kind: str = "probability",
    ax: Any = None,
    title: str | None = None,
):
    """EmoNet's 20 outputs for one image as horizontal bars, the top category highlighted.

    Parameters
    ----------
    values : array-like, shape (n_units,)
        Softmax probabilities (``kind="probability"``) or fc8 activations
        (``kind="activation"``) for one image.
    labels : sequence of str, optional
        Unit names (default: EmoNet's 20 emotion categories when there are 20).
    kind : {"probability", "activation"}
        Sets the axis label and, for probabilities, the 0-1 range.

    Returns
    -------
    matplotlib.figure.Figure
    """
    v = np.asarray(values, dtype=float).ravel()
    if kind not in ("probability", "activation"):
        raise ValueError(f"kind must be 'probability' or 'activation', got {kind!r}")
    if labels is None and v.size == 20:
        from brainnet.models.emonet import EMOTIONS

        labels = EMOTIONS
    labels = _as_labels(labels, v.size, "unit")
    fig, ax = _figure_axes(ax, (4.2, max(3.0, 0.2 * v.size + 0.8)))
    y = np.arange(v.size)[::-1]  # first unit at the top
    colors = [_VERMILLION if i == int(np.nanargmax(v)) else _SKY for i in range(v.size)]
    ax.barh(y, v, color=colors)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, v.size - 0.4)
    if kind == "probability":
        ax.set_xlim(0, max(1e-9, min(1.0, float(np.nanmax(v)) * 1.1)))
        ax.set_xlabel("output probability (softmax)")
    else:
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlabel("fc8 activation (a.u.)")
    ax.set_ylabel("emotion category")
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_subject_accuracy(
    accuracy: Any,
    names: Sequence[str],
    *,
    network: Any = None,
    chance: float | None = None,
    ylabel: str = "decoding accuracy (proportion correct)",
    ax: Any = None,
    title: str | None = None,
):
    """Accuracy per subject as bars (best first), the network's bar highlighted, chance dashed.

    Parameters
    ----------
    accuracy : array-like, shape (n_subjects,)
        Proportion correct per subject (or per subject and the network).
    names : sequence of str
        Bar labels, shape (n_subjects,).
    network : array-like of bool, shape (n_subjects,), optional
        Which bars are the network (vermillion); the others are humans (blue).
    chance : float, optional
        Chance level, drawn as a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    acc = np.asarray(accuracy, dtype=float)
    names = _as_labels(names, acc.size, "subject")
    is_net = np.zeros(acc.size, bool) if network is None else np.asarray(network, dtype=bool)
    order = np.argsort(-np.nan_to_num(acc, nan=-np.inf), kind="stable")
    fig, ax = _figure_axes(ax, (max(4.0, 0.26 * acc.size + 2.6), 3.2))
    x = np.arange(acc.size)
    colours = [_VERMILLION if is_net[i] else _BLUE for i in order]
    from matplotlib.patches import Patch

    ax.bar(x, acc[order], color=colours)
    handles = [Patch(color=_BLUE, label="human subjects")]
    if is_net.any():
        handles.append(Patch(color=_VERMILLION, label="network"))
    if chance is not None:
        handles.append(
            ax.axhline(chance, color="black", linestyle="--", linewidth=0.9, label=f"chance ({chance:.3g})")
        )
    ax.set_xticks(x, [names[i] for i in order], rotation=90)
    ax.set_xlim(-0.7, acc.size - 0.3)
    ax.set_ylim(0, min(1.0, max(float(np.nanmax(acc)), chance or 0) * 1.15 + 1e-9))
    ax.set_xlabel("subject")
    ax.set_ylabel(ylabel)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    return fig


@_styled
def plot_score_histogram(
    values: Any,
    *,
    xlabel: str = "Pearson r",
    bins: int = 50,
    ax: Any = None,
    title: str | None = None,
):
    """Histogram of a per-voxel score (finite values), with a dashed line at 0.

    Parameters
    ----------
    values : array-like, shape (n_voxels,)
    xlabel : str
        The score and its unit.
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    fig, ax = _figure_axes(ax, (4.0, 3.0))
    ax.hist(v, bins=bins, color=_BLUE)
    ax.axvline(0, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of voxels")
    if title:
        ax.set_title(title)
    return fig


# ------------------------------------------------------------------ saving


def save_figure(
    fig: Any,
    stem: str | Path,
    formats: Sequence[str] = ("png", "pdf"),
    metadata: dict[str, str] | None = None,
) -> list[Path]:
    """Save ``fig`` as ``<stem>.<format>`` for each format, atomically.

    Parameters
    ----------
    fig : matplotlib Figure
    stem : path without suffix
    formats : sequence of {"png", "pdf", "svg"}
    metadata : dict, optional
        ``{"Title": ..., "Description": ...}``; stored in each file's metadata.

    Returns
    -------
    list of Path
    """
    stem = Path(stem)
    written = []
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise BrainnetError(f"--format {fmt}: unknown figure format; use png, pdf or svg")
        path = stem.with_name(f"{stem.name}.{fmt}")
        meta = _file_metadata(fmt, metadata or {})
        with publication_style(), atomic_path(path, suffix="." + fmt) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta)
        written.append(path)
    return written


def _file_metadata(fmt: str, meta: dict[str, str]) -> dict[str, str]:
    title = meta.get("Title", "")
    description = meta.get("Description", "")
    if fmt == "png":
        return {
            "Title": title,
            "Description": description,
            "Software": f"brainnet {brainnet_version()}",
        }
    if fmt == "pdf":
        return {"Title": title, "Subject": description, "Creator": f"brainnet {brainnet_version()}"}
    return {"Title": title, "Description": description}


# ------------------------------------------------- reading result folders

_LAYER_ORDER = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


def _find_runs(results_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Complete analysis folders under ``results_dir`` with their summaries, sorted."""
    runs = []
    for summary_path in sorted(results_dir.rglob("summary.json")):
        if "figures" in summary_path.relative_to(results_dir).parts:
            continue
        summary = read_json(summary_path)
        if summary.get("complete"):
            _check_run(summary_path, summary)
            runs.append((summary_path.parent, summary))
    return runs


def _check_run(summary_path: Path, summary: dict[str, Any]) -> None:
    """Refuse a complete result folder that was edited or damaged since it was written.

    The provenance must still give the fingerprint recorded beside it; every
    TSV must parse, with no text in a column of numbers; every NIfTI and
    ``.npz`` must read to the end. The error names the file.
    """
    import zlib

    import nibabel as nib

    from brainnet._checks import check_image, read_image
    from brainnet.results import fingerprint

    fix = "re-run the analysis that wrote this folder (or remove the folder)"
    provenance = summary.get("provenance")
    if not isinstance(provenance, dict) or fingerprint(provenance) != summary.get("fingerprint"):
        raise input_error(summary_path, "its provenance does not match its fingerprint (edited after the run)", fix)
    run = summary_path.parent
    for path in sorted(run.iterdir()):
        name = path.name
        if name.startswith(".") or not path.is_file():
            continue
        if name.endswith(".tsv"):
            _check_tsv(path, fix)
        elif name.endswith((".nii", ".nii.gz")):
            try:
                img = nib.load(path)
            except Exception as err:  # nibabel raises many types for non-images
                raise input_error(path, f"not a readable NIfTI ({type(err).__name__})", fix) from None
            if isinstance(img, nib.Cifti2Image):  # a surface map: no affine; its values must read
                if not np.all(np.isfinite(np.asarray(img.get_fdata(dtype=np.float32)))):
                    raise input_error(path, "holds NaN or Inf", fix)
                continue
            check_image(img, path, fix)
            read_image(img, path, fix)
        elif name.endswith(".npz"):
            try:
                with np.load(path, allow_pickle=False) as data:
                    for key in data.files:
                        data[key]
            except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as err:
                raise input_error(path, f"not a readable .npz ({type(err).__name__})", fix) from None


# columns of names, which may look like numbers (subject 01, unit 7) next to text labels
_LABELS = {"subject", "unit", "stimulus_id", "category", "layer", "label", "name", "cluster", "predicted", "true",
           "model", "mask", "analysis", "network", "comparison"}


def _check_tsv(path: Path, fix: str) -> None:
    """A results table must parse, and a column of numbers may hold no text (``n/a`` is missing)."""
    try:
        frame = _read_tsv(path)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise input_error(path, f"not a readable TSV ({type(err).__name__})", fix) from None
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or column in _LABELS:
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        text = values.notna() & numbers.isna()
        # a column of names has (almost) no numbers; one with a few text cells among numbers was edited
        if text.any() and numbers.notna().sum() >= text.sum():
            row = int(np.flatnonzero(text.to_numpy())[0])
            raise input_error(
                path, f"column {column!r} holds text ({values.iloc[row]!r}, row {row + 1}) among numbers", fix
            )


def _analysis_kind(run_dir: Path, summary: dict[str, Any]) -> str:
    kind = str(summary.get("analysis") or run_dir.name.split("-", 1)[0]).lower()
    # "encode"/"encoding", "decode"/"decoding", ...
    for known in ("encode", "decode", "power", "rsa"):
        if kind.startswith(known.rstrip("e")):
            return known
    return kind


def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["n/a"])


def _square_frame(path: Path) -> pd.DataFrame:
    """A square matrix stored either wide (first column = row names) or long."""
    frame = _read_tsv(path)
    cols = [c.lower() for c in frame.columns]
    long_keys = {"predicted", "true"}
    if long_keys <= set(cols) and len(frame.columns) == 3:
        frame.columns = cols
        value = next(c for c in cols if c not in long_keys)
        wide = frame.pivot(index="predicted", columns="true", values=value)
        order = list(dict.fromkeys(frame["true"]))
        return wide.reindex(index=order, columns=order)
    first = frame.columns[0]
    if not pd.api.types.is_numeric_dtype(frame[first]):
        frame = frame.set_index(first)
    else:
        frame.index = list(frame.columns)
    frame.index = [str(i) for i in frame.index]
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _pick(frame: pd.DataFrame, *names: str) -> str | None:
    lower = {c.lower(): c for c in frame.columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _run_label(results_dir: Path, run_dir: Path) -> str:
    return "_".join(run_dir.relative_to(results_dir).parts) or run_dir.name


def _weights_text(summary: dict[str, Any]) -> str:
    weights = (summary.get("provenance") or {}).get("weights")
    return f"weights {weights}" if weights else "weights unknown"


# Each builder returns [(name, thunk -> Figure)]; thunks raise FileNotFoundError
# or ValueError/KeyError when an input is missing or unusable, and are skipped.
_Builder = Callable[[Path, dict[str, Any]], list[tuple[str, Callable[[], Any]]]]


def _captioned(fig: Any, caption: str, **tables: pd.DataFrame) -> Any:
    """Attach the caption (and tables, e.g. peaks) that make_figures and the report print."""
    fig.brainnet_caption = " ".join(caption.split())
    fig.brainnet_tables = tables
    return fig


def _weights_sentence(summary: dict[str, Any]) -> str:
    weights = (summary.get("provenance") or {}).get("weights") or summary.get("weights")
    if not weights:
        return ""
    if str(weights).startswith("untrained"):
        return f" Network: untrained EmoNet weights ({weights}), a control, not the trained network."
    return f" Network weights: {weights}."


def _n_text(summary: dict[str, Any]) -> str:
    parts = []
    for key, noun in (("n_subjects", "subjects"), ("n_stimuli", "stimuli"), ("n_voxels", "voxels")):
        value = summary.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{value:,} {noun if value != 1 else noun[:-1]}")
    return ", ".join(parts)


def _encoding_survivors(run: Path, summary: dict[str, Any], alpha: float = 0.05):
    """The r map with only the voxels of p_FWE < alpha, the threshold and their number.

    The threshold is the smallest r among those voxels: with the single-step
    max-statistic correction p_FWE is monotone in r, so ``r >= threshold`` is
    exactly the set of voxels the summary counts as significant.
    """
    import nibabel as nib

    img = nib.load(_require(run / "r_map.nii.gz"))
    frame = _read_tsv(_require(run / "voxel_scores.tsv"))
    needed = {"i", "j", "k", "r", "p_fwe"}
    if not needed <= set(frame.columns):
        raise KeyError(f"voxel_scores.tsv needs the columns {sorted(needed)}")
    significant = frame[frame["p_fwe"] < alpha]
    data = np.zeros(img.shape[:3], dtype=np.float32)
    ijk = significant[["i", "j", "k"]].to_numpy(dtype=int)
    data[tuple(ijk.T)] = significant["r"].to_numpy(dtype=np.float32)
    # the threshold as float32, like the map's values: a float64 minimum can exceed its own voxel's stored value
    values = np.abs(significant["r"].to_numpy(dtype=np.float32))
    threshold = float(values.min()) if len(significant) else None
    return nib.Nifti1Image(data, img.affine), threshold, len(significant)


def _has_negative(img: Any) -> bool:
    return bool(np.any(np.asarray(img.dataobj) < 0))


def _encode_caption(summary: dict[str, Any], n_shown: int, threshold: float | None, view: str) -> str:
    layer = summary.get("layer", "?")
    n_perm = summary.get("n_permutations")
    subject = summary.get("subject", "?")
    shown = (
        f"Shown: the {n_shown:,} voxels with p_FWE < 0.05 (|r| ≥ {threshold:.3f})"
        if n_shown
        else "No voxel survives p_FWE < 0.05; the empty brain is drawn"
    )
    return (
        f"{view} of cross-validated encoding accuracy of subject {subject}: Pearson r between "
        f"observed and predicted single-stimulus responses, {summary.get('model', 'ridge')} "
        f"regression from the {summary.get('n_units', '?')} units of {layer}, "
        f"{summary.get('cv', '?')}-fold cross-validation over stimuli "
        f"({_n_text(summary)} in the {(summary.get('provenance') or {}).get('mask', {}).get('name', '')} mask). "
        f"Test: one-sided permutation test per voxel ({n_perm} permutations of the stimulus order), "
        f"family-wise error corrected over voxels with the maximum statistic. {shown}."
        + _weights_sentence(summary)
    )


def _encode_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    layer = summary.get("layer", "")
    subject = summary.get("subject") or run.parent.name.removeprefix("sub-")
    title = f"sub-{subject}, {layer} encoding: voxels with p_FWE < 0.05"
    empty = "no voxel survives p_FWE < 0.05 (max-statistic permutation correction)"
    if (run / "r_map.dscalar.nii").exists():  # a surface study: the map on the subject's own meshes
        return [("r-map-surface", lambda: _encode_surface_figure(run, summary, subject, layer))]

    def glass() -> Any:
        img, threshold, n = _encoding_survivors(run, summary)
        fig = plot_brain_map(
            img, kind="glass", threshold=threshold, two_sided=_has_negative(img), title=title,
            value_label="encoding accuracy (Pearson r)", empty_note=empty,
        )
        return _captioned(fig, _encode_caption(summary, n, threshold, "Glass brain (maximum projections)"))

    def stat() -> Any:
        img, threshold, n = _encoding_survivors(run, summary)
        fig = plot_brain_map(
            img, kind="stat", threshold=threshold, two_sided=_has_negative(img), title=title,
            value_label="encoding accuracy (Pearson r)", empty_note=empty,
        )
        cuts = fig.brainnet_map["cut_coords"]
        where = f" Cuts through the peak at MNI ({', '.join(f'{c:.0f}' for c in cuts)}) mm." if cuts else ""
        peaks = peak_table(
            img, threshold if n else np.inf, two_sided=_has_negative(img), value_label="peak r"
        )
        return _captioned(
            fig,
            _encode_caption(summary, n, threshold, "Slices on the MNI152 template")
            + where
            + " Peaks and clusters (nilearn get_clusters_table, sub-peaks ≥ 8 mm apart, labels from the shipped atlases) are in the peak table.",
            peaks=peaks,
        )

    return [("r-map-glass", glass), ("r-map-stat", stat)]


def _encode_surface_figure(run: Path, summary: dict[str, Any], subject: str, layer: str) -> Any:
    """Encoding r on the subject's own midthickness meshes, vertices with p_FWE < 0.05 coloured."""
    from brainnet.surfaces import subject_meshes, surface_map_figure

    study = ((summary.get("provenance") or {}).get("study") or {}).get("path")
    if not study:
        raise KeyError("summary.json names no study (provenance.study.path): the meshes cannot be found")
    threshold = _fwe_threshold(run / "voxel_scores.tsv")
    fig = surface_map_figure(_require(run / "r_map.dscalar.nii"), subject_meshes(study, subject),
                             title=f"sub-{subject}, {layer} encoding", threshold=threshold,
                             value_label="Pearson r")
    shown = (f"Coloured: vertices with p_FWE < 0.05 (r ≥ {threshold:.3f})" if threshold is not None
             else "No vertex survives p_FWE < 0.05; r is drawn unthresholded")
    caption = (f"Surface map of cross-validated encoding accuracy of subject {subject} (Pearson r per vertex, "
               f"{summary.get('cv', '?')}-fold cross-validation, {summary.get('model', 'ridge')} regression from "
               f"{layer}), on the subject's own midthickness meshes (nilearn plot_surf_stat_map). {shown}."
               + _weights_sentence(summary))
    return _captioned(fig, caption)


def _fwe_threshold(path: Path, alpha: float = 0.05) -> float | None:
    """Smallest r among voxels with p_FWE < alpha (None when no voxel passes)."""
    if not path.exists():
        return None
    frame = _read_tsv(path)
    r_col, p_col = _pick(frame, "r"), _pick(frame, "p_fwe")
    if r_col is None or p_col is None:
        return None
    significant = frame.loc[frame[p_col] < alpha, r_col]
    return None if significant.empty else float(significant.min())


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path.name} not found")
    return path


def _unit_scores_figure(run: Path, summary: dict[str, Any]):
    frame = _read_tsv(_require(run / "unit_scores.tsv"))
    unit_col, r_col = _pick(frame, "unit"), _pick(frame, "r")
    if unit_col is None or r_col is None:
        raise KeyError("unit_scores.tsv needs 'unit' and 'r' columns")
    subject_col = _pick(frame, "subject")
    units = list(dict.fromkeys(frame[unit_col].astype(str)))
    if subject_col is not None:
        wide = frame.pivot_table(index=subject_col, columns=unit_col, values=r_col, aggfunc="mean", dropna=False)
        wide.columns = [str(c) for c in wide.columns]
        r = wide.reindex(columns=units).to_numpy()  # units that are NaN everywhere (constant) stay, as NaN
    else:
        r = frame.groupby(unit_col, sort=False)[r_col].mean().to_numpy()
    p_values, ceiling, p_label = None, _decode_ceiling(summary), "p"
    p_col = _pick(frame, "p_fwe", "p")
    per_unit = run / "units.tsv"
    if per_unit.exists():
        # one row per unit: FWE-corrected p and the resubstitution r (the ceiling)
        units_frame = _read_tsv(per_unit)
        if "unit" in units_frame.columns:
            units_frame = units_frame.set_index(units_frame["unit"].astype(str)).reindex(units)
            unit_p = _pick(units_frame, "p_fwe", "p")
            if unit_p is not None:
                p_values = units_frame[unit_p].to_numpy(dtype=float)
                p_label = "p_FWE" if unit_p.lower() == "p_fwe" else "p"
            if "resubstitution_r" in units_frame.columns:
                ceiling = units_frame["resubstitution_r"].to_numpy(dtype=float)
    if p_values is None and p_col is not None:
        p_values = (
            frame.groupby(frame[unit_col].astype(str), sort=False)[p_col]
            .first()
            .reindex(units)
            .to_numpy()
        )
    layer = summary.get("layer", "")
    n_voxels = summary.get("n_voxels")
    title = f"{layer} units decoded" + (f" from {n_voxels} voxels" if n_voxels else "")
    return plot_unit_scores(
        r, units, noise_ceiling=ceiling, p_values=p_values, p_label=p_label, title=title
    )


def _decode_ceiling(summary: dict[str, Any]) -> float | None:
    """The noise ceiling in r units, if the summary gives one."""
    for key in ("noise_ceiling_r", "resubstitution_r"):
        value = summary.get(key)
        if isinstance(value, int | float):
            return float(value)
    # decode's noise_ceiling is cv / resubstitution r (a fraction of the ceiling)
    fraction, mean_r = summary.get("noise_ceiling"), summary.get("mean_r")
    if isinstance(fraction, int | float) and isinstance(mean_r, int | float) and fraction > 0:
        return float(mean_r) / float(fraction)
    return None


def _clusters_for(run: Path, labels: list[str]) -> np.ndarray | None:
    path = run / "clusters.tsv"
    if not path.exists():
        return None
    frame = _read_tsv(path)
    unit_col, cluster_col = _pick(frame, "unit", "category"), _pick(frame, "cluster")
    if unit_col is None or cluster_col is None:
        return None
    mapping = dict(zip(frame[unit_col].astype(str), frame[cluster_col], strict=False))
    if not all(label in mapping for label in labels):
        return None
    return np.asarray([mapping[label] for label in labels])


def _confusion_figure(run: Path, summary: dict[str, Any]):
    frame = _square_frame(_require(run / "confusion.tsv"))
    labels = list(frame.columns)
    return plot_confusion(
        frame.to_numpy(dtype=float),
        labels,
        clusters=_clusters_for(run, labels),
        title=f"{summary.get('layer', '')} confusions (mean over subjects)",
    )


def _linkage_for(run: Path, confusion: np.ndarray) -> np.ndarray:
    """The saved Ward linkage, or one rebuilt from the saved confusion matrix."""
    for npz in sorted(run.glob("*.npz")):
        with np.load(npz, allow_pickle=False) as data:
            if "linkage" in data.files:
                return np.asarray(data["linkage"], dtype=float)
    path = run / "linkage.tsv"
    if path.exists():
        return _read_tsv(path).to_numpy(dtype=float)[:, :4]
    # Same definition as the decoding analysis: distance = 1 - symmetrised
    # row-normalised confusion, Ward linkage (cheap, no model is refitted).
    from scipy.cluster.hierarchy import ward
    from scipy.spatial.distance import squareform

    c = np.clip(confusion, 0, None)
    rows = c.sum(axis=1, keepdims=True)
    c = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    d = 1 - (c + c.T) / 2
    np.fill_diagonal(d, 0)
    return ward(squareform(np.clip(d, 0, None), checks=False))


def _dendrogram_figure(run: Path, summary: dict[str, Any]):
    frame = _square_frame(_require(run / "confusion.tsv"))
    z = _linkage_for(run, frame.to_numpy(dtype=float))
    n_clusters = summary.get("n_clusters")
    n_clusters = (
        int(n_clusters) if isinstance(n_clusters, int | float) and n_clusters >= 1 else None
    )
    return plot_dendrogram(
        z, list(frame.columns), n_clusters=n_clusters, title="discriminable clusters"
    )


def _pca_figure(run: Path, summary: dict[str, Any]):
    tsv = run / "bootstrap_pca.tsv"
    npz = run / "bootstrap_pca.npz"
    if tsv.exists():
        frame = _read_tsv(tsv)
        if _pick(frame, "component") is not None:
            # one row per component, one loading column per unit
            skip = {"component", "explained_variance_ratio"}
            units = [c for c in frame.columns if str(c).lower() not in skip]
            ev = _pick(frame, "explained_variance_ratio")
            return plot_pca(
                frame[units].to_numpy(dtype=float).T,
                units,
                explained_variance_ratio=None if ev is None else frame[ev].to_numpy(),
                quantity="loading",
            )
        unit_col = _pick(frame, "unit")
        pcs = [c for c in frame.columns if str(c).lower().startswith("pc")]
        if unit_col is None or len(pcs) < 2:
            raise KeyError("bootstrap_pca.tsv needs 'unit' and at least two 'pc*' columns")
        explained = None
        ev_col = _pick(frame, "explained_variance_ratio")
        if ev_col is not None:
            explained = frame[ev_col].to_numpy()
        return plot_pca(
            frame[pcs].to_numpy(dtype=float),
            frame[unit_col].astype(str),
            explained_variance_ratio=explained,
        )
    if npz.exists():
        with np.load(npz, allow_pickle=False) as data:
            scores = next(
                data[k] for k in ("scores", "unit_scores", "components") if k in data.files
            )
            labels = [str(x) for x in data["units"]] if "units" in data.files else None
            explained = (
                data["explained_variance_ratio"]
                if "explained_variance_ratio" in data.files
                else None
            )
        return plot_pca(scores, labels, explained_variance_ratio=explained)
    raise FileNotFoundError("bootstrap_pca.tsv / bootstrap_pca.npz not found")


def _unit_names(run: Path) -> list[str] | None:
    """Unit names of a decode run (units.tsv or decoding.npz), in map-volume order."""
    if (run / "units.tsv").exists():
        frame = _read_tsv(run / "units.tsv")
        if "unit" in frame.columns:
            return frame["unit"].astype(str).tolist()
    for npz in sorted(run.glob("*.npz")):
        with np.load(npz, allow_pickle=False) as data:
            if "units" in data.files:
                return [str(u) for u in data["units"]]
    return None


def _explained(run: Path) -> np.ndarray | None:
    """Explained-variance ratio per bootstrap principal component, from bootstrap_pca.tsv."""
    path = run / "bootstrap_pca.tsv"
    if not path.exists():
        return None
    frame = _read_tsv(path)
    column = _pick(frame, "explained_variance_ratio")
    return None if column is None else frame[column].to_numpy(dtype=float)


#: Principal components explaining less than this share of variance are not drawn.
_MIN_EXPLAINED = 0.01
#: Unit weight maps drawn (the best-decoded units): a nilearn glass brain costs ~1-2 s a panel.
_MAX_UNIT_MAPS = 8


def _best_units(run: Path, names: list[str]) -> list[int]:
    """Indices of the best-decoded units (by mean r in units.tsv), at most _MAX_UNIT_MAPS."""
    path = run / "units.tsv"
    if path.exists():
        frame = _read_tsv(path)
        if {"unit", "mean_r"} <= set(frame.columns):
            score = dict(zip(frame["unit"].astype(str), frame["mean_r"], strict=False))
            ranked = sorted(range(len(names)), key=lambda i: -np.nan_to_num(score.get(names[i], np.nan), nan=-np.inf))
            return sorted(ranked[:_MAX_UNIT_MAPS])
    return list(range(min(len(names), _MAX_UNIT_MAPS)))


def _weight_map_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    """Nilearn glass brains of the FDR-thresholded unit weight maps and of the bootstrap PCs.

    The unthresholded ``weights_z`` is never drawn when ``weights_z_fdr05``
    exists (same maps, mostly noise).
    """
    from nilearn import image as nimage

    figures = []
    layer = summary.get("layer", "")
    n_boot = summary.get("n_bootstrap")
    weights = run / "weights_z_fdr05.nii.gz"
    if weights.exists() or (run / "weights_z.nii.gz").exists():

        def units_thunk() -> Any:
            path = weights if weights.exists() else run / "weights_z.nii.gz"
            thresholded = path == weights
            img = _load_nifti(path)
            n_maps = img.shape[3] if img.ndim == 4 else 1
            names = _unit_names(run)
            if names is None or len(names) != n_maps:
                names = [f"map {k + 1}" for k in range(n_maps)]
            keep = _best_units(run, names)
            data = np.asarray(img.dataobj, dtype=np.float32).reshape(*img.shape[:3], n_maps)
            n_mask = int(np.count_nonzero(np.any(data != 0, axis=3))) if not thresholded else None
            labels = []
            for k in keep:
                count = int(np.count_nonzero(data[..., k]))
                ijk = np.unravel_index(int(np.argmax(np.abs(np.nan_to_num(data[..., k])))), data.shape[:3])
                peak = (img.affine @ np.r_[ijk, 1.0])[:3]
                where = f", peak ({', '.join(f'{c:.0f}' for c in peak)})" if count else ""
                labels.append(f"{names[k]}\n{count:,} voxels{where}")
            fig = plot_brain_map_grid(
                nimage.index_img(img, keep),
                labels,
                value_label="bootstrap z of the PLS weight",
                title=f"{layer}: voxel weights of the {len(keep)} best-decoded of {n_maps} units"
                + (", FDR q < .05" if thresholded else " (unthresholded)"),
            )
            n_vox = summary.get("n_voxels")
            share = summary.get("n_voxels_fdr05")
            share_text = ""
            if isinstance(share, int) and isinstance(n_vox, int) and n_vox:
                share_text = (
                    f" Over all units, {share:,} of {n_vox * n_maps:,} voxel weights "
                    f"({100 * share / (n_vox * n_maps):.0f} %) pass."
                )
            caption = (
                f"Glass brains (axial maximum projections on the MNI152 outline) of the bootstrap z "
                f"(mean / SD over {n_boot} bootstrap resamples of subjects) of each voxel's PLS "
                f"weight for the {len(keep)} best-decoded {layer} units (of {n_maps}; {_n_text(summary)}); "
                f"each panel gives the number of voxels shown and the MNI coordinates (mm) of the "
                f"largest |z|. "
                + (
                    "Shown: voxels with Benjamini–Hochberg FDR q < .05 over the voxels of each unit's "
                    "map (two-sided normal-approximation p)." + share_text
                    if thresholded
                    else f"Unthresholded ({n_mask} voxels)."
                )
                + _weights_sentence(summary)
            )
            return _captioned(fig, caption)

        figures.append(("weights-z-fdr05" if weights.exists() else "weights-z", units_thunk))
    pcs = run / "bootstrap_pca.nii.gz"
    if pcs.exists():

        def pca_thunk() -> Any:
            img = _load_nifti(pcs)
            n_maps = img.shape[3] if img.ndim == 4 else 1
            explained = _explained(run)
            if explained is None or len(explained) != n_maps:
                raise KeyError("bootstrap_pca.tsv with explained_variance_ratio per component is needed")
            keep = [k for k in range(n_maps) if explained[k] >= _MIN_EXPLAINED]
            if not keep:
                raise ValueError("no principal component explains 1 % of the variance")
            labels = [f"PC{k + 1}\n{100 * explained[k]:.1f} % of variance" for k in keep]
            # a component's sign and scale are arbitrary: each is scaled to max |score| = 1
            data = np.asarray(img.dataobj, dtype=np.float32).reshape(*img.shape[:3], n_maps)[..., keep]
            peak = np.abs(data).max(axis=(0, 1, 2))
            data = data / np.where(peak > 0, peak, 1.0)
            fig = plot_brain_map_grid(
                nimage.new_img_like(img, data),
                labels,
                value_label="PC score / its largest |score|",
                title=f"{layer}: principal components of the unit weight maps",
            )
            caption = (
                f"Glass brains (axial maximum projections) of the voxel scores of the principal "
                f"components of the bootstrap-mean PLS weight maps (voxels as observations, the "
                f"{summary.get('n_units', '?')} {layer} units as variables). Only the {len(keep)} "
                f"components explaining at least {100 * _MIN_EXPLAINED:.0f} % of the variance are "
                f"drawn (of {n_maps}); the share each explains is in its panel title. Each map is scaled "
                f"to its largest |score| (a component's sign and scale are arbitrary). Unthresholded: "
                f"a descriptive summary, not a test." + _weights_sentence(summary)
            )
            return _captioned(fig, caption)

        figures.append(("bootstrap-pca", pca_thunk))
    return figures


def _load_nifti(path: Path) -> Any:
    from nilearn import image as nimage

    try:
        return nimage.load_img(path)
    except Exception as exc:
        raise ValueError(f"{path.name} is not a readable NIfTI image ({exc})") from exc


def _decode_captions(summary: dict[str, Any]) -> dict[str, str]:
    layer = summary.get("layer", "?")
    n = _n_text(summary)
    weights = _weights_sentence(summary)
    model = (
        f"PLS regression ({summary.get('n_components', '?')} components), "
        f"leave-one-subject-out cross-validation"
    )
    n_perm = summary.get("n_permutations")
    return {
        "unit-scores": (
            f"Decoding accuracy of each {layer} unit from voxel patterns: Pearson r between observed "
            f"and predicted unit activations in held-out subjects ({model}; {n}). Bars: mean over "
            f"held-out subjects; error bars: ± 1 SE over subjects; dashes: resubstitution r (noise "
            f"ceiling). *: p_FWE < 0.05, permutation test ({n_perm} permutations of the "
            f"stimulus-to-activation rows, model refitted), family-wise error corrected over units "
            f"with the maximum statistic." + weights
        ),
        "confusion": (
            f"Confusions of the decoded {layer} units: row = true unit, column = the unit its "
            f"decoded output correlates best with, proportion of the {summary.get('n_subjects', '?')} "
            f"held-out subjects (rows sum to 1). Units ordered by discriminable cluster; white lines "
            f"separate the {summary.get('n_clusters', '?')} clusters (Ward linkage on 1 − symmetrised "
            f"confusion, cut where the most clusters pass a one-sided binomial test; cluster-count "
            f"p = {_num(summary.get('cluster_p'))} by permutation)." + weights
        ),
        "dendrogram": (
            f"Ward dendrogram of the {layer} units on 1 − symmetrised confusion, coloured at the cut "
            f"into {summary.get('n_clusters', '?')} discriminable clusters (one-sided binomial test "
            f"per cluster against chance = cluster size / number of units; 95 % bootstrap CI of the "
            f"cluster count over subjects {_num(summary.get('cluster_ci'))})." + weights
        ),
        "pca": (
            f"The {layer} units in the space of the first two principal components of their "
            f"bootstrap-mean PLS weight maps (loadings; % of variance in the axis labels). "
            f"Descriptive, no test." + weights
        ),
    }


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_num(v) for v in value) + "]"
    return "n/a" if value is None else str(value)


def _decode_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    captions = _decode_captions(summary)
    builders = {
        "unit-scores": lambda: _unit_scores_figure(run, summary),
        "confusion": lambda: _confusion_figure(run, summary),
        "dendrogram": lambda: _dendrogram_figure(run, summary),
        "pca": lambda: _pca_figure(run, summary),
    }
    figures = [
        (name, lambda build=build, text=captions[name]: _captioned(build(), text))
        for name, build in builders.items()
    ]
    return [*figures, *_weight_map_figures(run, summary)]


def _power_figure(run: Path, summary: dict[str, Any]):
    frame = _read_tsv(_require(run / "power.tsv"))
    n_col = _pick(frame, "n_subjects", "n")
    rate_col = _pick(frame, "detection_rate", "power")
    if n_col is None or rate_col is None:
        raise KeyError("power.tsv needs 'n_subjects' and 'detection_rate' columns")
    lo, hi = _pick(frame, "ci_low"), _pick(frame, "ci_high")
    group_col = _pick(frame, "n_stimuli")
    groups = [(None, frame)] if group_col is None else list(frame.groupby(group_col))
    fig = None
    for i, (key, part) in enumerate(groups):
        fig = plot_power(
            part[n_col],
            part[rate_col],
            ci_low=None if lo is None else part[lo],
            ci_high=None if hi is None else part[hi],
            target=0.8 if i == 0 else None,
            label=None if key is None else f"{key} stimuli",
            ax=None if fig is None else fig.axes[0],
            title=f"power of {summary.get('layer', '')} decoding",
        )
    return fig


def _names_column(frame: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    first = frame.columns[0]
    if not pd.api.types.is_numeric_dtype(frame[first]):
        return [str(x) for x in frame[first]], frame.drop(columns=first)
    return [str(c) for c in frame.columns], frame


def _network_name(names: list[str], summary: dict[str, Any]) -> str:
    declared = summary.get("network_name") or summary.get("network")
    if isinstance(declared, str) and declared in names:
        return declared
    humans = [n for n in names if not n.startswith("sub-") and not n.isdigit()]
    if len(humans) == 1:
        return humans[0]
    raise KeyError("cannot tell which row is the network")


def _second_order_figure(run: Path, summary: dict[str, Any]):
    frame = _square_frame(_require(run / "second_order.tsv"))
    names = list(frame.columns)
    return plot_second_order(
        frame.to_numpy(dtype=float),
        names,
        network=_network_name(names, summary),
        title=f"{summary.get('layer', '')}: second-order similarity",
    )


def _mds_figure(run: Path, summary: dict[str, Any]):
    frame = _read_tsv(_require(run / "mds.tsv"))
    name_col = _pick(frame, "name", "subject", "label")
    dims = [c for c in frame.columns if c != name_col and np.issubdtype(frame[c].dtype, np.number)]
    if name_col is None or len(dims) < 2:
        raise KeyError("mds.tsv needs a name column and two coordinate columns")
    names = frame[name_col].astype(str).tolist()
    return plot_mds(
        frame[dims[:2]].to_numpy(dtype=float), names, network=_network_name(names, summary)
    )


_RDM_LABELS = {
    "correlation": "dissimilarity (1 − Pearson r)",
    "euclidean": "Euclidean distance (a.u.)",
    "cosine": "cosine distance (1 − cos)",
    "crossnobis": "crossnobis distance (a.u.)",
}


def _study_categories(summary: dict[str, Any], stimulus_ids: list[str]) -> list[str] | None:
    """Stimulus categories from the study's stimuli.tsv, when the study is still there."""
    study = (summary.get("provenance") or {}).get("study")
    root = study.get("path") if isinstance(study, dict) else None
    table = Path(root) / "stimuli.tsv" if root else None
    if table is None or not table.exists():
        return None
    frame = _read_tsv(table)
    if "stimulus_id" not in frame.columns or "category" not in frame.columns:
        return None
    mapping = dict(zip(frame["stimulus_id"].astype(str), frame["category"], strict=False))
    cats = [mapping.get(s) for s in stimulus_ids]
    if any(c is None or (isinstance(c, float) and np.isnan(c)) for c in cats):
        return None
    return [str(c) for c in cats]


def _rdm_figure(run: Path, summary: dict[str, Any], which: str):
    from scipy.spatial.distance import squareform

    with np.load(_require(run / "rdms.npz"), allow_pickle=False) as data:
        if which == "network":
            vector = np.asarray(data["network_rdm"], dtype=float)
        else:
            vector = np.asarray(data["human_rdms"], dtype=float).mean(axis=0)
        ids = [str(s) for s in data["stimulus_ids"]] if "stimulus_ids" in data.files else None
    rdm = squareform(vector, checks=False) if vector.ndim == 1 else vector
    categories = _study_categories(summary, ids) if ids is not None else None
    layer = summary.get("layer", "")
    title = f"network RDM ({layer})" if which == "network" else "mean human RDM"
    label = _RDM_LABELS.get(str(summary.get("rdm")), "dissimilarity (a.u.)")
    return plot_rdm(rdm, categories, value_label=label, title=title)


def _rsa_captions(summary: dict[str, Any]) -> dict[str, str]:
    layer = summary.get("layer", "?")
    n_subjects = summary.get("n_subjects", "?")
    compare = {"spearman": "Spearman ρ", "pearson": "Pearson r", "tau-a": "Kendall τa"}.get(
        str(summary.get("compare")), str(summary.get("compare", "?"))
    )
    rdm = str(summary.get("rdm", "correlation"))
    weights = _weights_sentence(summary)
    test = (
        f"Network–human {compare} = {_num(summary.get('network_human_r'))}, condition-label "
        f"permutation test p = {_num(summary.get('p_value'))} ({summary.get('n_permutations')} "
        f"permutations; p_FWE over layers = {_num(summary.get('p_fwe'))}); the network ranks "
        f"{summary.get('network_rank', '?')} of {summary.get('network_rank_of', '?')}"
    )
    return {
        "second-order": (
            f"Second-order similarity ({compare}) between the {rdm}-distance RDMs of "
            f"{n_subjects} subjects and of {layer} (highlighted; {_n_text(summary)}). The diagonal "
            f"(1 by definition) is masked. {test}." + weights
        ),
        "mds": (
            f"Metric MDS of the RDMs of {n_subjects} subjects (circles) and of {layer} (star), on the "
            f"dissimilarity 1 − {compare} between RDMs. Axes in arbitrary units; only distances "
            f"are meaningful. {test}." + weights
        ),
        "network-rdm": (
            f"RDM of {layer} over {summary.get('n_stimuli', '?')} stimuli ({rdm} distance), "
            f"stimuli grouped by category where the study gives one. Descriptive." + weights
        ),
        "human-rdm": (
            f"Mean over {n_subjects} subjects of the voxel-pattern RDMs ({rdm} distance, "
            f"{summary.get('n_voxels', '?')} voxels), stimuli grouped by category where the study "
            f"gives one. Descriptive."
        ),
    }


def _rsa_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    captions = _rsa_captions(summary)
    builders = {
        "second-order": lambda: _second_order_figure(run, summary),
        "mds": lambda: _mds_figure(run, summary),
        "network-rdm": lambda: _rdm_figure(run, summary, "network"),
        "human-rdm": lambda: _rdm_figure(run, summary, "human"),
    }
    return [
        (name, lambda build=build, text=captions[name]: _captioned(build(), text))
        for name, build in builders.items()
    ]


def _layer_profile_figure(path: Path):
    frame = _read_tsv(path)
    layer_col = _pick(frame, "layer")
    value_col = _pick(frame, "network_human_r", "mean_r", "r")
    if layer_col is None or value_col is None:
        raise KeyError(f"{path.name} needs 'layer' and 'network_human_r' columns")
    rank = {name: i for i, name in enumerate(_LAYER_ORDER)}
    frame = frame.sort_values(
        layer_col, key=lambda s: s.map(lambda x: rank.get(str(x), len(rank))), kind="stable"
    )
    lower, upper = _pick(frame, "noise_ceiling_lower"), _pick(frame, "noise_ceiling_upper")
    ci_lo = _pick(frame, "ci_subjects_low", "ci_low", "ci_lower")
    ci_hi = _pick(frame, "ci_subjects_high", "ci_high", "ci_upper")
    over = "subjects" if ci_lo and "subjects" in ci_lo.lower() else "resamples"
    p_col = _pick(frame, "p_fwe", "p_value", "p")
    p_label = "p_FWE" if p_col and p_col.lower() == "p_fwe" else "p"
    fig = plot_layer_profile(
        frame[layer_col].astype(str).tolist(),
        frame[value_col].to_numpy(dtype=float),
        ci=None
        if ci_lo is None or ci_hi is None
        else frame[[ci_lo, ci_hi]].to_numpy(dtype=float).T,
        noise_ceiling=None if lower is None or upper is None else (frame[lower], frame[upper]),
        ci_label=f"95 % bootstrap CI over {over}",
        p_values=None if p_col is None else frame[p_col].to_numpy(dtype=float),
        p_label=p_label,
        title="network–human RSA by layer",
    )
    if p_col is None:
        test = "No test recorded."
    else:
        corrected = (
            ", family-wise error corrected over layers with the maximum statistic"
            if p_label == "p_FWE"
            else ", uncorrected"
        )
        test = f"*: {p_label} < 0.05, condition-label permutation test{corrected}."
    caption = (
        f"Network–human RDM similarity for each of {len(frame)} layers: the similarity between "
        f"each subject's RDM and the layer's RDM, averaged over subjects. Error bars: 95 % "
        f"bootstrap percentile CI over {over}; grey band: noise ceiling (lower to upper bound). "
        + test
    )
    return _captioned(fig, caption)


def _accuracy_figure(run: Path, summary: dict[str, Any], table: str, title: str):
    frame = _read_tsv(_require(run / table))
    subject_col, acc_col = _pick(frame, "subject"), _pick(frame, "accuracy")
    if subject_col is None or acc_col is None:
        raise KeyError(f"{table} needs 'subject' and 'accuracy' columns")
    network_col = _pick(frame, "is_network")
    names = frame[subject_col].astype(str).tolist()
    is_network = (
        frame[network_col].astype(str).str.lower().eq("true").to_numpy()
        if network_col is not None
        else np.zeros(len(frame), dtype=bool)
    )
    return plot_subject_accuracy(
        frame[acc_col].to_numpy(dtype=float),
        names,
        network=is_network,
        chance=summary.get("chance"),
        title=title,
    )


def _categorize_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    n_classes = summary.get("n_classes", "?")
    if summary.get("n_permutations"):
        test = (
            f"permutation test of the pooled accuracy ({summary.get('n_permutations')} "
            f"permutations of the category labels, per {summary.get('permutation_unit', 'stimulus')}): "
            f"p = {_num(summary.get('p_value'))}"
        )
    else:
        test = "no permutation test was run"
    model = (
        f"{summary.get('model', '?')} classifier, {summary.get('n_folds', '?')} "
        f"participant-independent folds; {summary.get('n_subjects', '?')} subjects, "
        f"{summary.get('n_trials', '?')} trials, {summary.get('n_voxels', '?')} voxels"
    )

    def scores() -> Any:
        fig = _accuracy_figure(
            run, summary, "category_scores.tsv", "category decoding accuracy per subject"
        )
        return _captioned(
            fig,
            f"Accuracy of decoding {n_classes} stimulus categories from the voxel patterns of "
            f"held-out subjects ({model}); dashed line: chance (1/{n_classes}). Pooled accuracy "
            f"{_num(summary.get('accuracy'))}; {test}.",
        )

    def confusion() -> Any:
        frame = _square_frame(_require(run / "category_confusion.tsv"))
        fig = plot_confusion(
            frame.to_numpy(dtype=float),
            list(frame.columns),
            value_label="proportion of trials (rows sum to 1)",
            title="category confusions (held-out subjects)",
        )
        return _captioned(
            fig,
            f"Confusion matrix of the category decoding ({model}): row = true category, column = "
            f"decoded category, proportion of that category's held-out trials. {test}.",
        )

    return [("accuracy", scores), ("confusion", confusion)]


def _network_decoding_figures(
    run: Path, summary: dict[str, Any]
) -> list[tuple[str, Callable[[], Any]]]:
    layer = summary.get("layer", "?")
    n_classes = summary.get("n_classes", "?")

    def scores() -> Any:
        fig = _accuracy_figure(
            run, summary, "subjects.tsv", f"category decoding: {layer} among the subjects"
        )
        return _captioned(
            fig,
            f"Accuracy of decoding {n_classes} stimulus categories with the same classifier "
            f"({summary.get('classifier', '?')}, {summary.get('n_folds', '?')} stimulus folds "
            f"stratified by category) from each of {summary.get('n_subjects', '?')} subjects' voxel "
            f"patterns and from {layer} (vermillion); dashed line: chance (1/{n_classes}). The "
            f"network ranks {summary.get('network_rank', '?')} of "
            f"{summary.get('network_rank_of', '?')}; test of the network's accuracy against chance: "
            f"p = {_num(summary.get('network_accuracy_p'))} (uncorrected)."
            + _weights_sentence(summary),
        )

    def similarity() -> Any:
        frame = _square_frame(_require(run / "confusion_similarity.tsv"))
        names = list(frame.columns)
        network = next((n for n in names if not n.startswith("sub-")), names[-1])
        fig = plot_second_order(
            frame.to_numpy(dtype=float),
            names,
            network=network,
            value_label="confusion similarity (Pearson r)",
            title=f"similarity of confusion matrices ({layer})",
        )
        return _captioned(
            fig,
            f"Pearson r between the category confusion matrices of every pair of the "
            f"{summary.get('n_subjects', '?')} subjects and {layer} (highlighted); diagonal masked. "
            f"Network to humans: mean r = {_num(summary.get('confusion_r_network_to_humans'))}; "
            f"humans to the others (leave-one-out): {_num(summary.get('confusion_r_human_loo_mean'))}. "
            f"Descriptive, no test." + _weights_sentence(summary),
        )

    return [("accuracy", scores), ("confusion-similarity", similarity)]


def _naturalistic_figures(
    run: Path, summary: dict[str, Any]
) -> list[tuple[str, Callable[[], Any]]]:
    def glass() -> Any:
        import nibabel as nib

        path = _require(run / "r.nii.gz")
        data = np.asarray(nib.load(path).dataobj, dtype=float)
        values = data[np.nan_to_num(data) != 0]
        if values.size == 0:
            raise ValueError("r.nii.gz holds no voxel")
        threshold = float(np.quantile(values, 0.95))
        fig = plot_brain_map(
            path,
            kind="glass",
            threshold=threshold,
            two_sided=False,
            value_label="encoding accuracy (Pearson r)",
            title="movie encoding: top 5 % of voxels by r (display threshold, not a test)",
        )
        return _captioned(
            fig,
            f"Glass brain of the cross-validated encoding accuracy (Pearson r between observed and "
            f"predicted BOLD in held-out contiguous blocks, with gaps) of ridge regression from "
            f"HRF-convolved frame features; {_n_text(summary)}, {summary.get('n_volumes', '?')} "
            f"volumes ({summary.get('n_censored', 0)} censored). No test was run: the map is "
            f"thresholded for display at the 95th percentile of r (r ≥ {threshold:.3f}), which is "
            f"not a significance threshold.",
        )

    def histogram() -> Any:
        with np.load(_require(run / "scores.npz"), allow_pickle=False) as data:
            r = np.asarray(data["r"], dtype=float)
        fig = plot_score_histogram(
            r,
            xlabel="encoding accuracy per voxel (Pearson r)",
            title="movie encoding: r of every voxel",
        )
        return _captioned(
            fig,
            f"Distribution of the cross-validated encoding r of all {int(np.isfinite(r).sum()):,} "
            f"voxels (mean {np.nanmean(r):.3f}); dashed line: r = 0. Descriptive, no test.",
        )

    return [("r-map-glass", glass), ("r-histogram", histogram)]


def _power_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    def power() -> Any:
        fig = _power_figure(run, summary)
        return _captioned(
            fig,
            f"Power of {summary.get('power_of', 'decoding')} of {summary.get('layer', '?')}: "
            f"fraction of {summary.get('n_repeats', '?')} random subsamples per size in which the "
            f"effect is detected at α = {summary.get('alpha', 0.05)} "
            f"({summary.get('test', 'permutation test')}; {summary.get('n_permutations')} "
            f"permutations; {summary.get('model', '')}). Band: 95 % binomial CI of the detection "
            f"rate; dotted line: power 0.8. Subsamples drawn from {summary.get('n_subjects', '?')} "
            f"subjects." + _weights_sentence(summary),
        )

    return [("power", power)]


#: Figure builders by analysis kind (see _analysis_kind); other analyses register theirs here.
_BUILDERS: dict[str, _Builder] = {
    "encode": _encode_figures,
    "decode": _decode_figures,
    "power": _power_figures,
    "rsa": _rsa_figures,
    **dict.fromkeys(("searchlight", "partition"), lambda run, summary: _mapfigures(run, summary)),
    "categorize": _categorize_figures,
    "network-category-decoding": _network_decoding_figures,
    "naturalistic_encoding": _naturalistic_figures,
}


def _mapfigures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    from brainnet.mapfigures import figure_jobs

    return figure_jobs(run, summary)


def _figure_jobs(
    results_dir: Path,
) -> list[tuple[str, Path | None, dict[str, Any], Callable[[], Any]]]:
    """Every figure the saved results allow: (name, run folder, summary, thunk)."""
    jobs = []
    for run, summary in _find_runs(results_dir):
        builder = _BUILDERS.get(_analysis_kind(run, summary))
        if builder is None:
            continue
        label = _run_label(results_dir, run)
        for name, thunk in builder(run, summary):
            jobs.append((f"{label}_{name}", run, summary, thunk))
    for path in sorted(results_dir.rglob("rsa-layers.tsv")):
        if "figures" not in path.relative_to(results_dir).parts:
            label = _run_label(results_dir, path.parent)

            def thunk(path: Path = path) -> Any:
                return _layer_profile_figure(path)

            thunk.source = path  # what the figure is drawn from, for make_figures' reuse check
            jobs.append((f"{label}_rsa-layers", None, {}, thunk))
    return jobs


def _render(name: str, thunk: Callable[[], Any]) -> Any:
    """Build one figure; on missing or malformed input warn and return None."""
    try:
        return thunk()
    except (FileNotFoundError, KeyError, ValueError, IndexError, StopIteration) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        warnings.warn(f"skipped figure {name}: {reason}", FigureSkipped, stacklevel=3)
        return None


def _check_results_dir(results_dir: str | Path) -> Path:
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise input_error(
            results_dir,
            "no such results folder",
            "pass the --out folder of an analysis with --results",
        )
    return results_dir


def _code_digest() -> str:
    """Digest of the figure code, so figures drawn by other code are redrawn."""
    import hashlib
    import inspect

    digest = hashlib.sha256(brainnet_version().encode())
    files = {Path(__file__), Path(__file__).parent / "_plot_brain.py"}
    # figure modules of other analyses register builders here: their code counts too
    files |= {Path(f) for b in _BUILDERS.values() if (f := inspect.getsourcefile(b))}
    for path in sorted(files):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _job_source(run: Path | None, thunk: Callable[[], Any]) -> Path | None:
    return run / "summary.json" if run is not None else getattr(thunk, "source", None)


def _reusable(entry: dict[str, Any] | None, out_dir: Path, key: dict[str, Any], formats) -> bool:
    if not entry or any(entry.get(k) != v for k, v in key.items()):
        return False
    files = set(entry.get("files") or [])
    wanted = {f"{entry['figure']}.{fmt}" for fmt in formats}
    tables = (entry.get("tables") or {}).values()
    return wanted <= files and all((out_dir / f).exists() for f in [*wanted, *tables])


def make_figures(
    results_dir: str | Path,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    reuse: bool = False,
) -> list[Path]:
    """Regenerate every figure of the saved results under ``results_dir``.

    Reads the complete analysis folders (``summary.json`` with
    ``complete: true``: ``sub-*/encode-*``, ``group/decode-*``,
    ``group/power-*``, ``group/rsa-*``, ``group/categorize-*``,
    ``group/network-decoding-*``, naturalistic runs and ``rsa-layers.tsv``)
    and writes each figure as ``<results_dir>/figures/<folder>_<figure>.<format>``,
    atomically, plus ``figures/figures.json`` recording each figure's caption
    (what is shown, n, the test and the correction), source folder, weights
    and the checksum of its ``summary.json``, and the figures that were
    skipped. Peak tables of brain maps are written beside their figure as
    ``<figure>_peaks.tsv``. Nothing is recomputed. A figure whose input file
    is missing or unreadable is skipped with a :class:`FigureSkipped`
    warning; the others are still written.

    Parameters
    ----------
    results_dir : str or Path
        The ``--out`` folder of one or more brainnet analyses.
    formats : sequence of {"png", "pdf", "svg"}
        Formats written for every figure.
    reuse : bool
        Keep a figure already in ``figures/`` (not redrawn) when its source
        file, brainnet version and figure code are unchanged and its files in
        ``formats`` exist (``brainnet report`` does this).

    Returns
    -------
    list of Path
        The figure files (written or reused).
    """
    import matplotlib.pyplot as plt

    results_dir = _check_results_dir(results_dir)
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise BrainnetError(f"--format {fmt}: unknown figure format; use png, pdf or svg")
    jobs = _figure_jobs(results_dir)
    if not jobs:
        raise input_error(
            results_dir,
            "holds no complete brainnet results (no summary.json with complete: true)",
            "run an analysis (e.g. brainnet decode --out DIR) first and pass that DIR",
        )
    out_dir = results_dir / "figures"
    previous = {}
    if reuse:
        old = read_json(out_dir / "figures.json")
        previous = {e.get("figure"): e for e in old.get("figures") or [] if isinstance(e, dict)}
    code = _code_digest()
    written: list[Path] = []
    manifest, skipped = [], []
    for name, run, summary, thunk in jobs:
        source = _job_source(run, thunk)
        key = {
            "source_sha256": sha256_file(source) if source is not None and source.exists() else None,
            "code": code,
        }
        if reuse and key["source_sha256"] and _reusable(previous.get(name), out_dir, key, formats):
            entry = previous[name]
            manifest.append(entry)
            written.extend(out_dir / f for f in entry["files"])
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FigureSkipped)
            fig = _render(name, thunk)
        for w in caught:
            skipped.append({"figure": name, "reason": str(w.message)})
            warnings.warn(w.message, FigureSkipped, stacklevel=2)
        if fig is None:
            continue
        caption = getattr(fig, "brainnet_caption", None) or f"{name.replace('_', ', ')}."
        tables = getattr(fig, "brainnet_tables", None) or {}
        try:
            description = _weights_text(summary) if summary else "rsa layer profile"
            paths = save_figure(
                fig, out_dir / name, formats, {"Title": name, "Description": caption + " " + description}
            )
        finally:
            plt.close(fig)
        table_files = {}
        for table_name, frame in tables.items():
            path = out_dir / f"{name}_{table_name}.tsv"
            with atomic_path(path, suffix=".tsv") as tmp:
                frame.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.4g")
            table_files[table_name] = path.name
        written.extend(paths)
        manifest.append(
            {
                "figure": name,
                "files": [p.name for p in paths],
                "caption": caption,
                "tables": table_files,
                "source": str(run.relative_to(results_dir))
                if run is not None
                else str(source.relative_to(results_dir)) if source is not None else None,
                "summary_sha256": sha256_file(run / "summary.json") if run is not None else None,
                "weights": (summary.get("provenance") or {}).get("weights") if summary else None,
                # what a brain map shows: its threshold and number of voxels drawn
                "map": getattr(fig, "brainnet_map", None),
                **key,
            }
        )
    atomic_write_json(
        out_dir / "figures.json",
        {"brainnet_version": brainnet_version(), "figures": manifest, "skipped": skipped},
    )
    return written
