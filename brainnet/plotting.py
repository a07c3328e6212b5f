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
    "plot_power",
    "plot_network_output",
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
    """Confusion matrix (rows predicted, columns true), grouped by cluster.

    Parameters
    ----------
    confusion : array-like, shape (n_categories, n_categories)
        Row ``i``, column ``j``: how often true category ``j`` was decoded as ``i``.
    labels : sequence of str, optional
        Category names, shape (n_categories,).
    clusters : sequence, optional
        Cluster of each category, shape (n_categories,). Categories are then
        reordered so clusters are contiguous and outlined with white lines.
    vmax : float, optional
        Upper colour limit (default: the largest entry); the lower limit is 0.
    value_label : str
        Colour-bar label (quantity and unit).

    Returns
    -------
    matplotlib.figure.Figure
    """
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
    fig, ax = _figure_axes(ax, (max(4.0, 0.25 * n + 2.2), max(3.5, 0.25 * n + 1.6)))
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
    ax.set_xlabel("true category")
    ax.set_ylabel("decoded category")
    ax.spines[:].set_visible(False)
    _colorbar(fig, image, ax, value_label)
    if title:
        ax.set_title(title)
    return fig


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
    fig, ax = _figure_axes(ax, (4.2, 3.8))
    a, b = components
    ax.scatter(s[:, a], s[:, b], color=_BLUE, s=24, zorder=3)
    for (x, y), name in zip(s[:, [a, b]], labels, strict=True):
        ax.annotate(name, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
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
    Colour limits are symmetric around 0 (± the largest off-diagonal
    magnitude) so positive and negative similarity read alike; the diagonal
    (self-similarity, 1) is left out of the scaling.
    """
    from matplotlib.patches import Rectangle

    m = _square(matrix, "second-order matrix")
    names = [str(x) for x in names]
    k = _network_index(names, network)
    n = m.shape[0]
    off = np.abs(m[~np.eye(n, dtype=bool)])
    lim = float(np.nanmax(off)) if off.size and np.isfinite(off).any() else 1.0
    fig, ax = _figure_axes(ax, (max(4.2, 0.24 * n + 2.2), max(3.6, 0.24 * n + 1.6)))
    image = ax.imshow(m, cmap=_DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest")
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
    fig, ax = _figure_axes(ax, (4.2, 3.8))
    ax.scatter(
        xy[human, 0], xy[human, 1], color=_BLUE, marker="o", s=28, label="human subjects", zorder=3
    )
    ax.scatter(xy[k, 0], xy[k, 1], color=_VERMILLION, marker="*", s=160, label=network, zorder=4)
    for i, name in enumerate(names):
        ax.annotate(
            name,
            xy[i, :2],
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=8 if i == k else 6,
            fontweight="bold" if i == k else "normal",
        )
    ax.set_xlabel("MDS dimension 1 (a.u.)")
    ax.set_ylabel("MDS dimension 2 (a.u.)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best")
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

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers = [str(x) for x in layers]
    v = np.asarray(values, dtype=float)
    if v.shape != (len(layers),):
        raise ValueError(f"values must have shape ({len(layers)},), got {v.shape}")
    x = np.arange(len(layers))
    fig, ax = _figure_axes(ax, (max(3.8, 0.5 * len(layers) + 1.5), 3.2))
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
        yerr = np.vstack([v - lo, hi - v])
    ax.errorbar(x, v, yerr=yerr, color=_BLUE, marker="o", capsize=2, label="network")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, layers)
    ax.set_xlabel("network layer")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best")
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


def plot_brain_map(
    img: Any,
    *,
    kind: str = "glass",
    threshold: float | str | None = None,
    vmax: float | None = None,
    value_label: str = "Pearson r",
    title: str | None = None,
    display_mode: str = "ortho",
):
    """A glass-brain or stat-map view of a 3-D map (r map, bootstrap weight z map).

    Parameters
    ----------
    img : Niimg-like
        A 3-D image in MNI space (a nibabel image or a path).
    kind : {"glass", "stat"}
        nilearn's ``plot_glass_brain`` (maximum projections) or
        ``plot_stat_map`` (slices on the bundled MNI152 template).
    threshold : float, optional
        Values with ``|v| < threshold`` are not shown (default: only exact
        zeros, i.e. voxels outside the mask, are hidden).
    vmax : float, optional
        Symmetric colour limit (default: the largest absolute value).
    value_label : str
        The mapped quantity and unit, used for the colour bar and title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from nilearn import image as nimage
    from nilearn import plotting as nplotting

    if kind not in ("glass", "stat"):
        raise ValueError(f"kind must be 'glass' or 'stat', got {kind!r}")
    img = nimage.load_img(img)
    if img.ndim == 4 and img.shape[3] == 1:
        img = nimage.index_img(img, 0)
    if img.ndim != 3:
        raise ValueError(f"plot_brain_map needs a 3-D image, got shape {img.shape}")
    data = np.asarray(img.get_fdata(), dtype=float)
    if threshold is None:
        # hide the exact zeros outside the mask (nilearn would draw them)
        threshold = 1e-12
    if vmax is None:
        finite = np.abs(data[np.isfinite(data)])
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    with publication_style(), warnings.catch_warnings():
        fig = plt.figure(figsize=(7.0, 2.6))
        common = {
            "figure": fig,
            "display_mode": display_mode,
            "colorbar": True,
            "threshold": threshold,
            "vmax": vmax,
            "cmap": _DIVERGING,
            "title": title,
        }
        # nilearn warns when it picks cut coordinates for sparse maps; not actionable here.
        warnings.simplefilter("ignore", UserWarning)
        if kind == "glass":
            display = nplotting.plot_glass_brain(img, plot_abs=False, **common)
        else:
            display = nplotting.plot_stat_map(img, **common)
        cbar = getattr(display, "_cbar", None)
        if cbar is not None:
            cbar.set_label(value_label)
    fig._brainnet_display = display  # keep nilearn's display alive with its figure
    return fig


def _axial_mip(volume: np.ndarray) -> np.ndarray:
    """Signed maximum-intensity projection along z: the value of largest |v|."""
    idx = np.nanargmax(np.abs(np.nan_to_num(volume)), axis=2)
    return np.take_along_axis(volume, idx[..., None], axis=2)[..., 0]


def plot_brain_map_grid(
    img: Any,
    labels: Sequence[str] | None = None,
    *,
    threshold: float | None = None,
    vmax: float | None = None,
    value_label: str = "bootstrap z",
    n_cols: int = 5,
    title: str | None = None,
):
    """Axial maximum-intensity projections of every volume of a 4-D map, one panel each.

    For per-unit maps (e.g. the FDR-thresholded bootstrap z map of each of
    the 20 EmoNet units) in one figure with one shared colour scale. Each
    panel shows, per (x, y) column of voxels, the value of largest magnitude
    along z (a glass-brain axial view), inside the outline of the voxels that
    carry data in any volume. Drawn directly with matplotlib: nilearn's
    glass brain takes seconds per panel, too slow for 20 panels.

    Parameters
    ----------
    img : Niimg-like
        A 4-D image, shape (x, y, z, n_maps) (a 3-D image gives one panel),
        in an RAS+ space such as MNI (left hemisphere on the left).
    labels : sequence of str, optional
        Panel titles, shape (n_maps,) (default ``map 1`` ...).
    threshold : float, optional
        Values with ``|v| < threshold`` are not shown (default: exact zeros).
    vmax : float, optional
        Shared symmetric colour limit (default: largest absolute value).
    value_label : str
        The mapped quantity and unit (colour-bar label).
    n_cols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from nilearn import image as nimage

    img = nimage.load_img(img)
    data = np.asarray(img.get_fdata(), dtype=float)
    if data.ndim == 3:
        data = data[..., None]
    n_maps = data.shape[3]
    labels = _as_labels(labels, n_maps, "map")
    if vmax is None:
        finite = np.abs(data[np.isfinite(data)])
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    outline = np.any(np.nan_to_num(data) != 0, axis=(2, 3)).T.astype(float)
    # extent in mm of the (x, y) plane, from the affine's diagonal (RAS+ grids)
    aff = img.affine
    x0, y0 = aff[0, 3], aff[1, 3]
    x1, y1 = x0 + aff[0, 0] * data.shape[0], y0 + aff[1, 1] * data.shape[1]
    extent = (min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))
    n_cols = max(1, min(n_cols, n_maps))
    n_rows = -(-n_maps // n_cols)
    with publication_style():
        fig, axes = plt.subplots(
            n_rows,
            n_cols,
            figsize=(1.5 * n_cols + 1.0, 1.7 * n_rows + 0.5),
            squeeze=False,
            layout="constrained",
        )
        image = None
        for k, ax in enumerate(axes.ravel()):
            ax.set_axis_off()
            if k >= n_maps:
                continue
            mip = _axial_mip(data[..., k]).T
            cutoff = 1e-12 if threshold is None else threshold
            mip = np.ma.masked_where(~(np.abs(mip) >= cutoff), mip)
            ax.contour(outline, levels=[0.5], colors=_GREY, linewidths=0.6, extent=extent)
            image = ax.imshow(
                mip,
                origin="lower",
                cmap=_DIVERGING,
                vmin=-vmax,
                vmax=vmax,
                extent=extent,
                interpolation="nearest",
            )
            ax.set_aspect("equal")
            ax.set_title(labels[k], fontsize=8)
        cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
        cbar.set_label(value_label)
        if title:
            fig.suptitle(title)
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


def _encode_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    layer = summary.get("layer", "")
    subject = run.parent.name
    title = f"{subject} {layer} encoding: r per voxel"

    def stat() -> Any:
        return plot_brain_map(_require(run / "r_map.nii.gz"), kind="stat", title=title)

    def glass() -> Any:
        threshold = _fwe_threshold(run / "voxel_scores.tsv")
        note = " (all voxels)" if threshold is None else " (p_FWE < 0.05)"
        return plot_brain_map(
            _require(run / "r_map.nii.gz"), kind="glass", threshold=threshold, title=title + note
        )

    return [("r-map-glass", glass), ("r-map-stat", stat)]


def _fwe_threshold(path: Path, alpha: float = 0.05) -> float | None:
    """Smallest |r| among voxels with p_FWE < alpha, to show only those voxels."""
    if not path.exists():
        return None
    frame = _read_tsv(path)
    r_col, p_col = _pick(frame, "r"), _pick(frame, "p_fwe")
    if r_col is None or p_col is None:
        return None
    significant = frame.loc[frame[p_col] < alpha, r_col].abs()
    if significant.empty:
        return None
    # just below the weakest significant voxel, so that voxel is still drawn
    return float(significant.min()) * (1 - 1e-6)


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


def _weight_map_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    """A glass brain per 3-D map; a grid of axial projections per 4-D map.

    When the FDR-thresholded ``weights_z_fdr05`` exists, the unthresholded
    ``weights_z`` is not drawn (same maps, mostly noise).
    """
    import nibabel as nib

    paths = sorted(run.glob("*.nii*"))
    stems = {p.name.split(".nii")[0] for p in paths}
    figures = []
    for path in paths:
        stem = path.name.split(".nii")[0]
        if f"{stem}_fdr05" in stems:
            continue
        try:
            shape = nib.load(path).shape
        except Exception:  # unreadable: the thunk reports it as skipped
            shape = ()

        def thunk(path: Path = path, stem: str = stem, shape: tuple = shape) -> Any:
            from nilearn import image as nimage

            try:
                img = nimage.load_img(path)
            except Exception as exc:
                raise ValueError(f"{path.name} is not a readable NIfTI image ({exc})") from exc
            is_pca = "pca" in stem
            value_label = "PC score (a.u.)" if is_pca else "bootstrap z"
            if img.ndim == 4 and img.shape[3] > 1:
                n_maps = img.shape[3]
                labels = [f"PC{k + 1}" for k in range(n_maps)] if is_pca else _unit_names(run)
                if labels is None or len(labels) != n_maps:
                    labels = [f"map {k + 1}" for k in range(n_maps)]
                note = ", FDR q < .05" if stem.endswith("fdr05") else ""
                return plot_brain_map_grid(
                    img, labels, value_label=value_label, title=f"{stem}{note}"
                )
            if img.ndim == 4:
                img = nimage.index_img(img, 0)
            return plot_brain_map(img, kind="glass", value_label=value_label, title=stem)

        figures.append((stem.replace("_", "-"), thunk))
    return figures


def _decode_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("unit-scores", lambda: _unit_scores_figure(run, summary)),
        ("confusion", lambda: _confusion_figure(run, summary)),
        ("dendrogram", lambda: _dendrogram_figure(run, summary)),
        ("pca", lambda: _pca_figure(run, summary)),
        *_weight_map_figures(run, summary),
    ]


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


def _rsa_figures(run: Path, summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("second-order", lambda: _second_order_figure(run, summary)),
        ("mds", lambda: _mds_figure(run, summary)),
        ("network-rdm", lambda: _rdm_figure(run, summary, "network")),
        ("human-rdm", lambda: _rdm_figure(run, summary, "human")),
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
    ci_lo = _pick(frame, "ci_low", "ci_lower", "ci_subjects_low")
    ci_hi = _pick(frame, "ci_high", "ci_upper", "ci_subjects_high")
    return plot_layer_profile(
        frame[layer_col].astype(str).tolist(),
        frame[value_col].to_numpy(dtype=float),
        ci=None
        if ci_lo is None or ci_hi is None
        else frame[[ci_lo, ci_hi]].to_numpy(dtype=float).T,
        noise_ceiling=None if lower is None or upper is None else (frame[lower], frame[upper]),
        title="network–human RSA by layer",
    )


_BUILDERS: dict[str, _Builder] = {
    "encode": _encode_figures,
    "decode": _decode_figures,
    "power": lambda run, summary: [("power", lambda: _power_figure(run, summary))],
    "rsa": _rsa_figures,
    **dict.fromkeys(("searchlight", "partition"), lambda run, summary: _mapfigures(run, summary)),
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
            jobs.append(
                (f"{label}_rsa-layers", None, {}, lambda path=path: _layer_profile_figure(path))
            )
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


def make_figures(results_dir: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Regenerate every figure of the saved results under ``results_dir``.

    Reads the complete analysis folders (``summary.json`` with
    ``complete: true``: ``sub-*/encode-*``, ``group/decode-*``,
    ``group/power-*``, ``group/rsa-*`` and ``rsa-layers.tsv``) and writes each
    figure as ``<results_dir>/figures/<folder>_<figure>.<format>``, atomically,
    plus ``figures/figures.json`` recording each figure's source folder,
    weights and the checksum of its ``summary.json``. Nothing is recomputed.
    A figure whose input file is missing or unreadable is skipped with a
    :class:`FigureSkipped` warning; the others are still written.

    Parameters
    ----------
    results_dir : str or Path
        The ``--out`` folder of one or more brainnet analyses.
    formats : sequence of {"png", "pdf", "svg"}
        Formats written for every figure.

    Returns
    -------
    list of Path
        The figure files written.
    """
    import matplotlib.pyplot as plt

    results_dir = _check_results_dir(results_dir)
    jobs = _figure_jobs(results_dir)
    if not jobs:
        raise input_error(
            results_dir,
            "holds no complete brainnet results (no summary.json with complete: true)",
            "run an analysis (e.g. brainnet decode --out DIR) first and pass that DIR",
        )
    out_dir = results_dir / "figures"
    written: list[Path] = []
    manifest = []
    for name, run, summary, thunk in jobs:
        fig = _render(name, thunk)
        if fig is None:
            continue
        try:
            description = _weights_text(summary) if summary else "rsa layer profile"
            paths = save_figure(
                fig, out_dir / name, formats, {"Title": name, "Description": description}
            )
        finally:
            plt.close(fig)
        written.extend(paths)
        source = run / "summary.json" if run is not None else None
        manifest.append(
            {
                "figure": name,
                "files": [p.name for p in paths],
                "source": str(run.relative_to(results_dir)) if run is not None else None,
                "summary_sha256": sha256_file(source) if source is not None else None,
                "weights": (summary.get("provenance") or {}).get("weights") if summary else None,
            }
        )
    atomic_write_json(
        out_dir / "figures.json", {"brainnet_version": brainnet_version(), "figures": manifest}
    )
    return written
