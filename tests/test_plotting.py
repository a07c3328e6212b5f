"""Tests of brainnet.plotting: every figure's content, and ``brainnet figures``.

``build_results_folder`` writes a synthetic results folder with the layout of
the analyses (encode, decode, power, rsa); test_report.py reuses it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from brainnet import plotting  # noqa: E402
from brainnet.errors import BrainnetError  # noqa: E402
from brainnet.results import ResultDir, make_provenance  # noqa: E402

EMO = [f"emotion {i}" for i in range(20)]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _ax(fig):
    return fig.axes[0]


# ------------------------------------------------------------ unit scores


def test_unit_scores_bars_sorted_with_se_ceiling_and_marks():
    rng = np.random.default_rng(0)
    true_means = np.linspace(0.05, 0.45, 20)[rng.permutation(20)]
    r = true_means + rng.normal(0, 0.02, (6, 20))
    p = np.where(np.arange(20) % 3 == 0, 0.001, 0.5)
    fig = plotting.plot_unit_scores(r, EMO, noise_ceiling=0.6, p_values=p, alpha=0.05)
    ax = _ax(fig)
    bars = ax.patches
    assert len(bars) == 20
    means = r.mean(axis=0)
    order = np.argsort(-means)
    np.testing.assert_allclose([b.get_height() for b in bars], means[order])
    assert [t.get_text() for t in ax.get_xticklabels()] == [EMO[i] for i in order]
    assert sum(t.get_text() == "*" for t in ax.texts) == int((p < 0.05).sum())
    # asterisks sit above the bars of the significant units
    star_x = sorted(round(t.get_position()[0]) for t in ax.texts if t.get_text() == "*")
    assert star_x == sorted(int(np.where(order == i)[0][0]) for i in np.where(p < 0.05)[0])
    assert any(np.allclose(line.get_ydata(), 0.6) for line in ax.get_lines())
    assert "Pearson r" in ax.get_ylabel() and ax.get_xlabel()
    # SE error bars: one segment per unit with the sample SE
    (errbar,) = [c for c in ax.containers if hasattr(c, "errorbar") and c.errorbar is not None]
    segs = errbar.errorbar.lines[2][0].get_segments()
    se = r.std(axis=0, ddof=1) / np.sqrt(6)
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segs], 2 * se[order])


def test_unit_scores_single_row_no_sort_and_per_unit_ceiling():
    r = np.array([0.1, 0.3, 0.2])
    fig = plotting.plot_unit_scores(r, ["a", "b", "c"], sort=False, noise_ceiling=[0.5, 0.6, 0.7])
    ax = _ax(fig)
    np.testing.assert_allclose([b.get_height() for b in ax.patches], r)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    (ceiling,) = [c for c in ax.collections if c.get_label() == "noise ceiling"]
    np.testing.assert_allclose([s[0, 1] for s in ceiling.get_segments()], [0.5, 0.6, 0.7])


def test_unit_scores_rejects_wrong_label_count():
    with pytest.raises(ValueError, match="2 labels for 3 units"):
        plotting.plot_unit_scores(np.zeros(3), ["a", "b"])


# --------------------------------------------------------------- confusion


def test_confusion_reordered_by_cluster_with_boundaries_and_limits():
    rng = np.random.default_rng(1)
    m = rng.random((6, 6))
    labels = list("abcdef")
    clusters = [2, 1, 2, 3, 1, 3]
    fig = plotting.plot_confusion(m, labels, clusters=clusters)
    ax = _ax(fig)
    order = [1, 4, 0, 2, 3, 5]
    np.testing.assert_allclose(ax.images[0].get_array(), m[np.ix_(order, order)])
    assert [t.get_text() for t in ax.get_xticklabels()] == [labels[i] for i in order]
    assert ax.images[0].get_clim() == (0.0, pytest.approx(m.max()))
    horizontal = [ln for ln in ax.get_lines() if np.ptp(ln.get_ydata()) == 0]
    assert sorted(ln.get_ydata()[0] for ln in horizontal) == [1.5, 3.5]
    # true categories on rows, said in the axis labels; the boundaries are named in a legend
    assert ax.get_ylabel() == "true category (rows)"
    assert ax.get_xlabel() == "decoded category (columns)"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "boundary between discriminable clusters (3 clusters)"
    ]
    assert fig.axes[1].get_ylabel() == "proportion of decodings"


def test_confusion_without_clusters_keeps_order_and_uses_vmax():
    m = np.eye(4) * 0.5
    fig = plotting.plot_confusion(m, vmax=1.0)
    ax = _ax(fig)
    np.testing.assert_allclose(ax.images[0].get_array(), m)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert not ax.get_lines()


# -------------------------------------------------------------- dendrogram


def _three_block_linkage():
    from scipy.cluster.hierarchy import ward

    rng = np.random.default_rng(2)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    points = np.vstack([c + rng.normal(0, 0.3, (4, 2)) for c in centres])
    return ward(points)


def test_dendrogram_colours_the_chosen_cut():
    z = _three_block_linkage()
    labels = [f"c{i}" for i in range(12)]
    fig = plotting.plot_dendrogram(z, labels, n_clusters=3)
    ax = _ax(fig)
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == sorted(labels)
    link_colours = {to_hex(c) for coll in ax.collections for c in coll.get_colors()}
    link_colours.discard(plotting._GREY.lower())
    assert len(link_colours) == 3
    (cut,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("cut")]
    heights = np.sort(z[:, 2])
    assert heights[-3] < cut.get_ydata()[0] < heights[-2]
    assert "distance" in ax.get_ylabel()


def test_cut_height_edges():
    z = _three_block_linkage()
    assert plotting._cut_height(z, 1) > z[:, 2].max()
    assert plotting._cut_height(z, 12) < z[:, 2].min()
    with pytest.raises(ValueError, match="between 1 and 12"):
        plotting._cut_height(z, 13)


# --------------------------------------------------------------------- PCA


def test_pca_points_and_variance_labels():
    scores = np.arange(30, dtype=float).reshape(10, 3)
    fig = plotting.plot_pca(
        scores, [f"u{i}" for i in range(10)], explained_variance_ratio=[0.5, 0.25, 0.1]
    )
    ax = _ax(fig)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), scores[:, :2])
    assert "50.0 % of variance" in ax.get_xlabel() and "25.0 % of variance" in ax.get_ylabel()
    labels = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in labels) == sorted(f"u{i}" for i in range(10))
    # no two labels overlap (the points sit on a line, the naive placement overlaps them all)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    # each label stays attached to its own point (text at the point, or a leader line to it)
    for t in labels:
        i = int(t.get_text()[1:])
        np.testing.assert_allclose(t.xy, scores[i, :2])
    fig2 = plotting.plot_pca(scores, components=(1, 2))
    np.testing.assert_allclose(_ax(fig2).collections[0].get_offsets(), scores[:, 1:])
    assert _ax(fig2).get_xlabel() == "PC2 score (a.u.)"


# --------------------------------------------------------------------- RDM


def test_rdm_ordered_by_category_with_block_ticks():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 5))
    rdm = 1 - np.corrcoef(x)
    cats = ["fear", "awe", "joy", "awe", "fear", "joy", "awe", "joy", "fear"]
    fig = plotting.plot_rdm(rdm, cats)
    ax = _ax(fig)
    order = [1, 3, 6, 0, 4, 8, 2, 5, 7]
    np.testing.assert_allclose(ax.images[0].get_array(), rdm[np.ix_(order, order)])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["awe", "fear", "joy"]
    np.testing.assert_allclose(ax.get_yticks(), [1, 4, 7])
    off = rdm[~np.eye(9, dtype=bool)]
    assert ax.images[0].get_clim() == (pytest.approx(off.min()), pytest.approx(off.max()))
    assert "1 − Pearson r" in fig.axes[1].get_ylabel()


# ------------------------------------------------------ second order & MDS


def test_second_order_masks_the_diagonal_with_a_sequential_map():
    rng = np.random.default_rng(4)
    m = np.corrcoef(rng.normal(size=(5, 30)))
    names = ["sub-01", "sub-02", "EmoNet", "sub-03", "sub-04"]
    fig = plotting.plot_second_order(m, names, network="EmoNet")
    ax = _ax(fig)
    off = m[~np.eye(5, dtype=bool)]
    # the colour range is the off-diagonal range (no unused half, no saturating diagonal)
    assert ax.images[0].get_clim() == (pytest.approx(off.min()), pytest.approx(off.max()))
    shown = ax.images[0].get_array()
    assert shown.mask.tolist() == np.eye(5, dtype=bool).tolist()
    assert ax.images[0].get_cmap().name.startswith("viridis")
    bold = [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert bold == ["EmoNet"]
    rects = [p for p in ax.patches if to_hex(p.get_edgecolor()) == plotting._VERMILLION.lower()]
    assert sorted((p.get_x(), p.get_y()) for p in rects) == [(-0.5, 1.5), (1.5, -0.5)]
    with pytest.raises(ValueError, match="network 'AlexNet'"):
        plotting.plot_second_order(m, names, network="AlexNet")


def test_mds_network_point_is_highlighted():
    coords = np.arange(10, dtype=float).reshape(5, 2)
    names = ["sub-01", "sub-02", "sub-03", "EmoNet", "sub-04"]
    fig = plotting.plot_mds(coords, names, network="EmoNet")
    ax = _ax(fig)
    humans, net = ax.collections
    np.testing.assert_allclose(humans.get_offsets(), coords[[0, 1, 2, 4]])
    np.testing.assert_allclose(net.get_offsets(), coords[[3]])
    assert to_hex(net.get_facecolor()[0]) == plotting._VERMILLION.lower()
    assert net.get_sizes()[0] > humans.get_sizes()[0]
    assert net.get_label() == "EmoNet"
    assert "MDS dimension 1" in ax.get_xlabel()


# ------------------------------------------------------------ layer profile


def test_layer_profile_line_band_and_ci():
    layers = ["conv1", "conv2", "conv3", "fc8"]
    v = np.array([0.05, 0.1, 0.2, 0.3])
    ci = np.vstack([v - 0.02, v + 0.03])
    fig = plotting.plot_layer_profile(
        layers, v, ci=ci, noise_ceiling=(0.4, 0.5), ci_label="95 % bootstrap CI over subjects",
        p_values=[0.2, 0.01, 0.04, 0.001], p_label="p_FWE",
    )
    ax = _ax(fig)
    (network,) = [c for c in ax.containers if c.get_label().startswith("network")]
    # the legend says what the error bars are and what the stars mean
    assert network.get_label() == "network (error bars: 95 % bootstrap CI over subjects)"
    assert "* p_FWE < 0.05" in [t.get_text() for t in ax.get_legend().get_texts()]
    stars = sorted(round(t.get_position()[0]) for t in ax.texts if t.get_text() == "*")
    assert stars == [1, 2, 3]
    np.testing.assert_allclose(network.lines[0].get_ydata(), v)
    caps = network.lines[2][0].get_segments()
    np.testing.assert_allclose([(s[0, 1], s[1, 1]) for s in caps], ci.T)
    assert [t.get_text() for t in ax.get_xticklabels()] == layers
    (band,) = [p for p in ax.patches if p.get_label() == "noise ceiling"]
    ys = band.get_path().transformed(band.get_patch_transform()).vertices[:, 1]
    assert (ys.min(), ys.max()) == (pytest.approx(0.4), pytest.approx(0.5))
    assert ax.get_xlabel() == "network layer" and "Spearman" in ax.get_ylabel()
    fig2 = plotting.plot_layer_profile(layers, v, noise_ceiling=([0.3, 0.3, 0.4, 0.4], 0.6))
    (band2,) = [c for c in _ax(fig2).collections if c.get_label() == "noise ceiling"]
    ys = band2.get_paths()[0].vertices[:, 1]
    assert (ys.min(), ys.max()) == (pytest.approx(0.3), pytest.approx(0.6))


# -------------------------------------------------------------------- power


def test_power_curve_band_and_target():
    n = [18, 4, 12, 8]
    rate = [1.0, 0.2, 0.9, 0.6]
    fig = plotting.plot_power(n, rate, ci_low=np.subtract(rate, 0.1), ci_high=np.add(rate, 0.05))
    ax = _ax(fig)
    curve = ax.get_lines()[0]
    np.testing.assert_allclose(curve.get_xdata(), [4, 8, 12, 18])
    np.testing.assert_allclose(curve.get_ydata(), [0.2, 0.6, 0.9, 1.0])
    assert any(np.allclose(ln.get_ydata(), 0.8) for ln in ax.get_lines()[1:])
    assert len(ax.collections) == 1  # the CI band
    assert ax.get_ylim() == (-0.02, 1.02)
    assert ax.get_xlabel() == "number of subjects" and "detection rate" in ax.get_ylabel()


# ---------------------------------------------------------- network output


def test_network_output_bars_with_emotion_labels():
    from brainnet.models.emonet import EMOTIONS

    p = np.full(20, 0.02)
    p[7] = 0.62
    fig = plotting.plot_network_output(p)
    ax = _ax(fig)
    assert len(ax.patches) == 20
    top_down = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    assert [label.get_text() for _, label in top_down] == list(EMOTIONS)
    colours = [to_hex(b.get_facecolor()) for b in ax.patches]
    assert colours.count(plotting._VERMILLION.lower()) == 1
    assert colours.index(plotting._VERMILLION.lower()) == 7
    assert ax.patches[7].get_width() == pytest.approx(0.62)
    assert ax.get_xlabel() == "output probability (softmax)"
    fig2 = plotting.plot_network_output(np.linspace(-1, 1, 3), ["a", "b", "c"], kind="activation")
    assert _ax(fig2).get_xlabel() == "fc8 activation (a.u.)"
    with pytest.raises(ValueError, match="kind"):
        plotting.plot_network_output(p, kind="logit")


# --------------------------------------------------------------- brain map


def _brain_img(shape=(20, 24, 20), values=(0.5, -0.3)):
    import nibabel as nib

    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    affine[:3, 3] = [-78, -112, -70]
    data = np.zeros(shape, dtype=np.float32)
    data[4:8, 2:6, 6:10] = values[0]
    data[12:15, 3:6, 6:9] = values[1]
    return nib.Nifti1Image(data, affine)


def _map_layers(fig):
    """The stat-map images nilearn drew (masked arrays), not the template or the glass outline."""
    return [
        im for a in fig.axes for im in a.images
        if np.ma.isMaskedArray(im.get_array()) and im.get_array().mask.any()
        and not im.get_cmap().name.lower().startswith(("gray", "grey"))  # the template
    ]


@pytest.mark.parametrize("kind", ["glass", "stat"])
def test_brain_map_views_colour_limits_and_label(kind):
    fig = plotting.plot_brain_map(
        _brain_img(), kind=kind, threshold=0.1, value_label="Pearson r", display_mode="ortho"
    )
    # mixed signs: symmetric limits around 0
    images = _map_layers(fig)
    assert len(images) == 3  # ortho: sagittal, coronal, axial
    for im in images:
        assert im.get_clim() == (pytest.approx(-0.5), pytest.approx(0.5))
    assert any(a.get_ylabel() == "Pearson r" for a in fig.axes)
    assert fig.brainnet_map["n_voxels_shown"] == 4 * 4 * 4 + 3 * 3 * 3
    with pytest.raises(ValueError, match="kind"):
        plotting.plot_brain_map(_brain_img(), kind="surface")


@pytest.mark.parametrize("kind", ["glass", "stat"])
def test_brain_map_one_signed_has_no_unused_colour_half_and_cuts_at_the_peak(kind):
    fig = plotting.plot_brain_map(
        _brain_img(), kind=kind, threshold=0.1, two_sided=False, title="a title",
        display_mode="ortho",
    )
    # only the positive block passes; the colour bar runs 0..0.5, not -0.5..0.5
    assert fig.brainnet_map["n_voxels_shown"] == 4 * 4 * 4
    for im in _map_layers(fig):
        assert im.get_clim() == (pytest.approx(0.0), pytest.approx(0.5))
    # the title is the figure's (above nilearn's axes), not a box over the L/R markers
    assert fig._suptitle.get_text() == "a title"
    top_of_brain = max(a.get_position().y1 for a in fig.axes)
    assert top_of_brain <= fig._suptitle.get_position()[1]
    if kind == "stat":  # the cuts go through the peak voxel (4 mm grid: centre of its block)
        peak = fig.brainnet_map["peak_mm"]
        assert fig.brainnet_map["cut_coords"] == peak
        assert -78 + 8 * 4 <= peak[0] <= -78 + 8 * 7


@pytest.mark.parametrize("kind", ["glass", "stat"])
def test_brain_map_with_no_survivor_draws_the_empty_brain_and_says_so(kind):
    fig = plotting.plot_brain_map(
        _brain_img(), kind=kind, threshold=0.9, two_sided=False,
        empty_note="no voxel survives p_FWE < 0.05",
    )
    assert fig.brainnet_map["n_voxels_shown"] == 0
    assert _map_layers(fig) == []  # nothing of the map is drawn, in no view
    assert "no voxel survives p_FWE < 0.05" in [t.get_text() for t in fig.texts]
    # and no colour bar pretends to scale something
    assert getattr(fig._brainnet_display, "_cbar", None) is None


def test_brain_map_passes_nilearn_knobs_through():
    fig = plotting.plot_brain_map(
        _brain_img(), kind="stat", threshold=0.1, display_mode="z", cut_coords=[-30, -10, 10],
        bg_img=_brain_img(values=(1.0, 1.0)), draw_cross=False,
    )
    display = fig._brainnet_display
    assert list(display.cut_coords) == [-30, -10, 10]
    assert len(_map_layers(fig)) == 3


# ------------------------------------------------------------------ saving


def test_save_figure_formats_are_vector_and_carry_metadata(tmp_path):
    fig = plotting.plot_power([4, 8], [0.3, 0.9])
    paths = plotting.save_figure(
        fig, tmp_path / "power", ("png", "pdf", "svg"), {"Title": "t", "Description": "weights X"}
    )
    assert [p.name for p in paths] == ["power.png", "power.pdf", "power.svg"]
    assert paths[1].read_bytes().startswith(b"%PDF")
    svg = paths[2].read_text()
    assert "<svg" in svg and "number of subjects" in svg  # text kept as text
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.info["Software"].startswith("brainnet ")
        assert im.info["Description"] == "weights X"
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(BrainnetError, match="--format eps"):
        plotting.save_figure(fig, tmp_path / "x", ("eps",))


# ------------------------------------------------- synthetic results folder


def _provenance(weights: str, layer: str = "fc8", study: Path | None = None) -> dict:
    return make_provenance(
        weights=weights,
        study={"path": str(study or "/no/such/study"), "files_sha256": "0" * 64},
        mask={"name": "occipital", "n_voxels": 120},
        seed=0,
        parameters={"layer": layer},
    )


ALL_PARTS = ("encode", "decode", "power", "rsa")
STIMULI = [f"img{i:02d}" for i in range(9)]
CATEGORIES = ["fear", "awe", "joy", "awe", "fear", "joy", "awe", "joy", "fear"]


def build_results_folder(
    root: Path, weights: str = "untrained-seed0", parts: tuple[str, ...] = ALL_PARTS
) -> Path:
    """A results folder with the layout of the analyses in ``parts`` (synthetic numbers)."""
    rng = np.random.default_rng(0)
    study = root / "study"
    study.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"stimulus_id": STIMULI, "file": [f"{s}.png" for s in STIMULI], "category": CATEGORIES}
    ).to_csv(study / "stimuli.tsv", sep="\t", index=False)
    prov = _provenance(weights, study=study)
    if "encode" in parts:
        _encode_run(root, prov)
    if "decode" in parts:
        _decode_run(root, prov, rng)
    if "power" in parts:
        _power_run(root, prov)
    if "rsa" in parts:
        _rsa_runs(root, prov, rng)
    # an unfinished run (no summary.json) must be ignored
    ResultDir(root / "group" / "decode-fc7", _provenance(weights, "fc7"))
    return root


def _encode_run(root, prov):
    enc = ResultDir(root / "sub-01" / "encode-fc8", prov)
    enc.write_tsv(
        "voxel_scores.tsv",
        pd.DataFrame(
            {"voxel": range(3), "i": [5, 6, 7], "j": 3, "k": 7, "r": [0.1, 0.2, 0.3]}
            | {"p_fwe": [0.5, 0.02, 0.01]}
        ),
    )
    enc.write_nifti("r_map.nii.gz", _brain_img())
    enc.finish(
        {"analysis": "encode", "layer": "fc8", "model": "ridge", "mean_r": 0.2, "p_value": 0.01,
         "n_voxels_p_fwe_05": 2, "n_permutations": 100}
    )


UNIT_P_FWE = np.where(np.arange(20) % 4 == 0, 0.2, 0.001)  # units 0, 4, ... not significant
UNIT_RESUB = np.linspace(0.5, 0.7, 20)
LINKAGE = None  # set by _decode_run: the saved Ward linkage (heights x 10)


def _decode_run(root, prov, rng):
    """Files as brainnet.decoding / brainnet.confusion write them."""
    from scipy.cluster.hierarchy import ward

    global LINKAGE
    dec = ResultDir(root / "group" / "decode-fc8", prov)
    subjects = ["01", "02", "03"]
    dec.write_tsv(
        "unit_scores.tsv",
        pd.DataFrame(
            [
                {"subject": s, "unit": u, "r": 0.3 + 0.01 * i, "mse": 1.0}
                for s in subjects
                for i, u in enumerate(EMO)
            ]
        ),
    )
    dec.write_tsv(
        "units.tsv",
        pd.DataFrame(
            {"unit": EMO, "mean_r": 0.3, "p": 0.001, "p_fwe": UNIT_P_FWE}
            | {"resubstitution_r": UNIT_RESUB}
        ),
    )
    conf = np.eye(20) * 0.6 + rng.random((20, 20)) * 0.05
    wide = pd.DataFrame(conf, columns=EMO)
    wide.insert(0, "unit", EMO)
    dec.write_tsv("confusion.tsv", wide)
    dec.write_tsv("clusters.tsv", pd.DataFrame({"unit": EMO, "cluster": np.arange(20) % 4 + 1}))
    LINKAGE = ward(rng.normal(size=(20, 3)))
    LINKAGE[:, 2] *= 10
    dec.write_npz("confusion.npz", linkage=LINKAGE, units=np.asarray(EMO))
    loadings = rng.normal(size=(3, 20))
    pca = pd.DataFrame(loadings, columns=EMO)
    pca.insert(0, "explained_variance_ratio", [0.4, 0.2, 0.1])
    pca.insert(0, "component", [1, 2, 3])
    dec.write_tsv("bootstrap_pca.tsv", pca)
    maps = np.stack([_brain_img(values=(1.0 + k, -1.0)).get_fdata() for k in range(20)], axis=-1)
    affine = _brain_img().affine
    dec.write_nifti("weights_z.nii.gz", nib.Nifti1Image(maps.astype(np.float32), affine))
    dec.write_nifti("weights_z_fdr05.nii.gz", nib.Nifti1Image(maps.astype(np.float32), affine))
    dec.finish(
        {
            "analysis": "decoding",
            "layer": "fc8",
            "mean_r": 0.395,
            "se_r": 0.01,
            "noise_ceiling": 0.79,
            "n_clusters": 4,
            "p_value": 0.001,
        }
    )


def _power_run(root, prov):
    power = ResultDir(root / "group" / "power-fc8", prov)
    power.write_tsv(
        "power.tsv",
        pd.DataFrame(
            {
                "n_subjects": [4, 8, 12],
                "detection_rate": [0.3, 0.7, 0.95],
                "ci_low": [0.2, 0.6, 0.9],
                "ci_high": [0.4, 0.8, 0.99],
            }
        ),
    )
    power.finish({"analysis": "power", "layer": "fc8"})


def _rsa_runs(root, prov, rng):
    names = [f"sub-0{i}" for i in range(1, 5)] + ["EmoNet"]
    second = np.corrcoef(rng.normal(size=(5, 40)))
    rsa = ResultDir(root / "group" / "rsa-fc8", prov)
    frame = pd.DataFrame(second, columns=names)
    frame.insert(0, "name", names)
    rsa.write_tsv("second_order.tsv", frame)
    coords = rng.normal(size=(5, 2))
    rsa.write_tsv("mds.tsv", pd.DataFrame({"name": names, "x": coords[:, 0], "y": coords[:, 1]}))
    n_pairs = len(STIMULI) * (len(STIMULI) - 1) // 2
    rsa.write_npz(
        "rdms.npz",
        human_rdms=rng.random((4, n_pairs)),
        network_rdm=np.arange(n_pairs, dtype=float),
        stimulus_ids=np.asarray(STIMULI),
    )
    rsa.finish(
        {
            "analysis": "rsa",
            "layer": "fc8",
            "network_human_r": 0.21,
            "noise_ceiling_lower": 0.3,
            "noise_ceiling_upper": 0.4,
            "network_rank": 3,
            "p_value": 0.02,
            "ci": [0.1, 0.3],
        }
    )
    layers = pd.DataFrame(
        {
            "layer": ["fc8", "conv1", "fc7"],
            "network_human_r": [0.21, 0.05, 0.15],
            "noise_ceiling_lower": 0.3,
            "noise_ceiling_upper": 0.4,
        }
    )
    from brainnet.results import atomic_write_tsv

    atomic_write_tsv(root / "group" / "rsa-layers.tsv", layers)


EXPECTED_FIGURES = {
    "sub-01_encode-fc8_r-map-glass",
    "sub-01_encode-fc8_r-map-stat",
    "group_decode-fc8_unit-scores",
    "group_decode-fc8_confusion",
    "group_decode-fc8_dendrogram",
    "group_decode-fc8_pca",
    "group_decode-fc8_weights-z-fdr05",
    "group_power-fc8_power",
    "group_rsa-fc8_second-order",
    "group_rsa-fc8_mds",
    "group_rsa-fc8_network-rdm",
    "group_rsa-fc8_human-rdm",
    "group_rsa-layers",
}


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory):
    return build_results_folder(tmp_path_factory.mktemp("results"))


def test_make_figures_writes_every_figure(results_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error", plotting.FigureSkipped)
        # PNG only here (vector glass brains are slow to write); the default PDF is checked
        # in test_cli_figures, SVG in test_save_figure_formats_are_vector_and_carry_metadata
        paths = plotting.make_figures(results_folder, formats=("png",))
    figures = results_folder / "figures"
    assert {p.parent for p in paths} == {figures}
    assert {p.name.rsplit(".", 1)[0] for p in paths} == EXPECTED_FIGURES
    assert sorted(p.suffix for p in paths) == [".png"] * len(EXPECTED_FIGURES)
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((figures / "figures.json").read_text())
    entries = {e["figure"]: e for e in manifest["figures"]}
    entry = entries["group_decode-fc8_unit-scores"]
    assert entry["weights"] == "untrained-seed0" and entry["source"] == "group/decode-fc8"
    assert len(entry["summary_sha256"]) == 64
    # every figure has a caption saying what is shown, and tested ones the test and correction
    assert set(entries) == EXPECTED_FIGURES and manifest["skipped"] == []
    for name, e in entries.items():
        assert len(e["caption"]) > 60, name
    assert "family-wise error corrected over units" in entry["caption"]
    assert "untrained EmoNet weights (untrained-seed0)" in entry["caption"]
    # the encoding maps are thresholded exactly at the reported correction (p_FWE < .05):
    # the weakest significant r, and as many voxels as the summary counts
    for view in ("glass", "stat"):
        shown = entries[f"sub-01_encode-fc8_r-map-{view}"]["map"]
        assert shown["threshold"] == pytest.approx(0.2, abs=1e-7) and shown["n_voxels_shown"] == 2
    assert "the 2 voxels with p_FWE < 0.05 (|r| ≥ 0.200)" in entries["sub-01_encode-fc8_r-map-stat"]["caption"]
    # the stat map's peak table, with atlas labels
    peaks = pd.read_csv(figures / entries["sub-01_encode-fc8_r-map-stat"]["tables"]["peaks"], sep="\t")
    assert list(peaks.columns) == [
        "cluster ID", "x (mm)", "y (mm)", "z (mm)", "peak r", "cluster size (mm³)", "region"
    ]
    assert peaks["peak r"].iloc[0] == pytest.approx(0.3)
    assert peaks["region"].iloc[0] == plotting.atlas_label(peaks.iloc[0, 1:4].to_numpy(float))


def test_encoding_map_with_no_survivor_says_so(tmp_path):
    root = build_results_folder(tmp_path / "res", parts=("encode",))
    run = root / "sub-01" / "encode-fc8"
    scores = pd.read_csv(run / "voxel_scores.tsv", sep="\t")
    scores["p_fwe"] = 0.5
    scores.to_csv(run / "voxel_scores.tsv", sep="\t", index=False)
    plotting.make_figures(root, formats=("png",))
    entries = {
        e["figure"]: e for e in json.loads((root / "figures" / "figures.json").read_text())["figures"]
    }
    for view in ("glass", "stat"):
        entry = entries[f"sub-01_encode-fc8_r-map-{view}"]
        # the unthresholded r map (which has voxels of |r| = 0.5) is never drawn
        assert entry["map"]["n_voxels_shown"] == 0
        assert "No voxel survives p_FWE < 0.05; the empty brain is drawn" in entry["caption"]
    peaks = pd.read_csv(root / "figures" / "sub-01_encode-fc8_r-map-stat_peaks.tsv", sep="\t")
    assert peaks.empty


def test_atlas_labels_come_from_the_shipped_masks():
    import nibabel as nib

    from brainnet.masks import mask_path

    v1 = nib.load(mask_path("v1"))
    ijk = np.argwhere(np.asarray(v1.dataobj) > 0)[0]
    xyz = (v1.affine @ np.r_[ijk, 1.0])[:3]
    assert plotting.atlas_label(xyz) == ("left" if xyz[0] < 0 else "right") + " V1 (Juelich hOc1)"
    assert plotting.atlas_label([0.0, 60.0, 0.0]) == "outside the shipped atlases"


def test_figures_read_the_saved_numbers(results_folder):
    jobs = {name: thunk for name, _, _, thunk in plotting._figure_jobs(results_folder)}
    ax = _ax(jobs["group_decode-fc8_unit-scores"]())
    assert len(ax.patches) == 20
    assert max(b.get_height() for b in ax.patches) == pytest.approx(0.3 + 0.19)
    # significance from units.tsv's p_fwe, the ceiling from its resubstitution r
    assert sum(t.get_text() == "*" for t in ax.texts) == int((UNIT_P_FWE < 0.05).sum())
    assert ax.get_title().endswith("* p_FWE < 0.05")
    assert ax.get_ylim()[1] >= UNIT_RESUB.max() * 1.3  # legend headroom above the ceiling
    (ceiling,) = [c for c in ax.collections if c.get_label() == "noise ceiling"]
    order = np.arange(20)[::-1]  # r rises with the unit index: bars are sorted descending
    np.testing.assert_allclose([s[0, 1] for s in ceiling.get_segments()], UNIT_RESUB[order])
    # without units.tsv: decode's noise_ceiling is a fraction, ceiling r = mean_r / fraction
    assert plotting._decode_ceiling({"noise_ceiling": 0.79, "mean_r": 0.395}) == 0.5
    assert plotting._decode_ceiling({"resubstitution_r": 0.6, "noise_ceiling": 0.5}) == 0.6
    assert plotting._decode_ceiling({"noise_ceiling": None, "mean_r": 0.3}) is None
    # the dendrogram uses the saved linkage, not one rebuilt from the confusions
    dendro = _ax(jobs["group_decode-fc8_dendrogram"]())
    heights = [seg[:, 1].max() for c in dendro.collections for seg in c.get_segments()]
    assert max(heights) == pytest.approx(LINKAGE[:, 2].max())
    # PCA: one point per unit at its loadings on PC1 and PC2
    pca_ax = _ax(jobs["group_decode-fc8_pca"]())
    saved = pd.read_csv(results_folder / "group" / "decode-fc8" / "bootstrap_pca.tsv", sep="\t")
    np.testing.assert_allclose(pca_ax.collections[0].get_offsets(), saved[EMO].to_numpy()[:2].T)
    assert pca_ax.get_xlabel() == "PC1 loading (a.u.; 40.0 % of variance)"
    # per-unit weight maps: the 8 best-decoded units (all tie at mean_r 0.3 here: the first 8),
    # labelled with their names and voxel counts
    grid = jobs["group_decode-fc8_weights-z-fdr05"]()
    # (the peak: the block of value 1 + k at voxels 4..7, 2..5, 6..9 of the 8 mm grid)
    labels = grid.brainnet_map["labels"]
    assert [lab.split(", peak")[0] for lab in labels] == [
        f"{u}\n{4 * 4 * 4 + 3 * 3 * 3} voxels" for u in EMO[:8]
    ]
    assert labels[0].endswith("peak (-46, -96, -22)")
    conf_ax = _ax(jobs["group_decode-fc8_confusion"]())
    assert conf_ax.images[0].get_array().shape == (20, 20)
    assert conf_ax.get_xticklabels()[0].get_text() == "emotion 0"  # cluster 1 first
    assert len([ln for ln in conf_ax.get_lines() if np.ptp(ln.get_ydata()) == 0]) == 3
    prof = _ax(jobs["group_rsa-layers"]())
    assert [t.get_text() for t in prof.get_xticklabels()] == ["conv1", "fc7", "fc8"]
    mds = _ax(jobs["group_rsa-fc8_mds"]())
    assert mds.collections[1].get_label() == "EmoNet"
    # the network RDM comes back square, ordered by the study's categories
    from scipy.spatial.distance import squareform

    rdm_ax = _ax(jobs["group_rsa-fc8_network-rdm"]())
    order = np.lexsort((np.arange(9), CATEGORIES))
    expected = squareform(np.arange(36, dtype=float))[np.ix_(order, order)]
    np.testing.assert_allclose(rdm_ax.images[0].get_array(), expected)
    assert [t.get_text() for t in rdm_ax.get_xticklabels()] == ["awe", "fear", "joy"]
    # the glass brain of the r map shows only the voxels with p_FWE < .05 (r = 0.2 and 0.3)
    threshold = plotting._fwe_threshold(
        results_folder / "sub-01" / "encode-fc8" / "voxel_scores.tsv"
    )
    assert threshold == 0.2  # the weakest significant r
    glass = jobs["sub-01_encode-fc8_r-map-glass"]()
    assert glass.brainnet_map == {
        "threshold": pytest.approx(0.2), "n_voxels_shown": 2, "cut_coords": None,
        "peak_mm": [-78 + 8 * 7, -112 + 8 * 3, -70 + 8 * 7],
    }
    assert glass._suptitle.get_text().endswith("voxels with p_FWE < 0.05")


def test_make_figures_skips_missing_inputs_and_keeps_going(tmp_path):
    root = build_results_folder(tmp_path / "res", parts=("decode",))
    run = root / "group" / "decode-fc8"
    (run / "confusion.tsv").unlink()
    for nifti in run.glob("*.nii.gz"):
        nifti.unlink()
    (run / "bootstrap_pca.tsv").write_text("nothing useful\n1\n")
    with pytest.warns(plotting.FigureSkipped) as record:
        paths = plotting.make_figures(root, formats=("svg",))
    messages = sorted(str(w.message) for w in record)
    assert messages == [
        "skipped figure group_decode-fc8_confusion: confusion.tsv not found",
        "skipped figure group_decode-fc8_dendrogram: confusion.tsv not found",
        "skipped figure group_decode-fc8_pca: "
        "bootstrap_pca.tsv needs 'unit' and at least two 'pc*' columns",
    ]
    assert paths == [root / "figures" / "group_decode-fc8_unit-scores.svg"]


def test_make_figures_errors_name_the_folder(tmp_path):
    with pytest.raises(BrainnetError) as err:
        plotting.make_figures(tmp_path / "nope")
    assert str(err.value) == (
        f"{tmp_path / 'nope'}: no such results folder; pass the --out folder of an analysis with --results"
    )
    with pytest.raises(BrainnetError, match="holds no complete brainnet results"):
        plotting.make_figures(tmp_path)


def test_cli_figures(tmp_path, capsys):
    from brainnet.cli import main

    root = build_results_folder(tmp_path / "res", parts=("power",))
    (root / "group" / "power-fc8" / "power.tsv").unlink()
    _power_run(root / "other", _provenance("sha256:" + "ab" * 32))
    assert main(["figures", "--results", str(root)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote 1 figures (2 files) to {root / 'figures'}"
    assert captured.err.strip() == (
        "brainnet: skipped figure group_power-fc8_power: power.tsv not found"
    )
    assert sorted(p.name for p in (root / "figures").iterdir()) == [
        "figures.json",
        "other_group_power-fc8_power.pdf",
        "other_group_power-fc8_power.png",
    ]
    assert (root / "figures" / "other_group_power-fc8_power.pdf").read_bytes().startswith(b"%PDF")
    assert main(["figures", "--results", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"brainnet figures: error: {tmp_path / 'missing'}: no such results folder; "
        "pass the --out folder of an analysis with --results"
    ]


def test_weight_maps_only_components_with_variance_and_unreadable(tmp_path):
    maps = [_brain_img(values=(3.0, -1.0)), _brain_img(values=(0.5, -2.0)), _brain_img()]
    img = nib.Nifti1Image(np.stack([m.get_fdata() for m in maps], axis=-1), maps[0].affine)
    nib.save(img, tmp_path / "bootstrap_pca.nii.gz")
    pd.DataFrame(
        {"component": [1, 2, 3], "explained_variance_ratio": [0.7, 0.25, 0.001], "a": 0.0}
    ).to_csv(tmp_path / "bootstrap_pca.tsv", sep="\t", index=False)
    (tmp_path / "weights_z_fdr05.nii.gz").write_bytes(b"not a nifti")
    jobs = dict(plotting._weight_map_figures(tmp_path, {"layer": "fc8"}))
    assert sorted(jobs) == ["bootstrap-pca", "weights-z-fdr05"]
    grid = jobs["bootstrap-pca"]()
    # the third component explains 0.1 %: not drawn; the others say how much they explain
    assert grid.brainnet_map["labels"] == [
        "PC1\n70.0 % of variance", "PC2\n25.0 % of variance"
    ]
    assert "2 components explaining at least 1 %" in grid.brainnet_caption
    assert grid.axes[-1].get_ylabel() == "PC score / its largest |score|"
    # each component scaled to its largest |score|: one shared -1..1 colour scale
    assert grid.axes[-1].get_ylim() == (pytest.approx(-1.0), pytest.approx(1.0))
    with pytest.warns(plotting.FigureSkipped, match="weights_z_fdr05.nii.gz is not a readable NIfTI"):
        assert plotting._render("broken", jobs["weights-z-fdr05"]) is None


def test_brain_map_grid_layout_and_threshold():
    data = np.zeros((20, 24, 20, 7))
    data[8, 6, 8, :] = np.arange(1, 8)
    data[12, 4, 8, :] = -0.5
    affine = _brain_img().affine
    fig = plotting.plot_brain_map_grid(
        nib.Nifti1Image(data, affine), list("abcdefg"), threshold=1.0, n_cols=3, vmax=10,
        title="grid",
    )
    # one nilearn glass brain per map, plus the shared colour bar
    assert len(fig._brainnet_display) == 7
    assert fig.brainnet_map["n_voxels_shown"] == [1] * 7  # |-0.5| < threshold is hidden
    labels = [t for t in fig.texts if t is not fig._suptitle]
    assert [t.get_text() for t in labels] == list("abcdefg")
    # positive values only pass: the colour bar has no unused negative half
    assert fig.axes[-1].get_ylim() == (0.0, 10.0)
    layers = _map_layers(fig)
    assert layers and all(im.get_clim() == (0.0, 10.0) for im in layers)
    # the second row's labels sit below the first row's brains
    first_row_bottom = min(d.axes[k].ax.get_position().y0 for d in fig._brainnet_display[:3]
                           for k in d.axes)
    assert all(t.get_position()[1] < first_row_bottom for t in labels[3:])


def test_unit_scores_of_a_wide_layer_show_its_best_units():
    from brainnet.plotting import plot_unit_scores

    rng = np.random.default_rng(0)
    r = rng.uniform(-0.1, 0.3, (5, 200))
    r[:, 7] = np.nan  # a unit that is constant for every stimulus
    r[:, 150] = 0.9  # the best unit
    names = [f"fc7_{i:04d}" for i in range(200)]
    fig = plot_unit_scores(r, names, p_values=np.linspace(0, 1, 200), max_units=25, title="fc7")
    ax = fig.axes[0]
    assert len(ax.patches) == 25
    shown = [t.get_text() for t in ax.get_xticklabels()]
    expected = [names[i] for i in np.argsort(-np.nanmean(r, axis=0))[:25]]
    assert shown == expected and shown[0] == "fc7_0150" and "fc7_0007" not in shown
    assert "best 25 of 200 units" in ax.get_title()
    assert fig.get_size_inches()[0] < 12


def test_unit_scores_figure_keeps_units_that_are_nan_everywhere(tmp_path):
    import pandas as pd

    from brainnet.plotting import _unit_scores_figure

    frame = pd.DataFrame({"subject": np.repeat(["01", "02"], 3), "unit": ["a", "b", "c"] * 2,
                          "r": [0.2, np.nan, 0.4, 0.3, np.nan, 0.5]})
    frame.to_csv(tmp_path / "unit_scores.tsv", sep="\t", index=False)
    fig = _unit_scores_figure(tmp_path, {"layer": "fc7"})
    assert sorted(t.get_text() for t in fig.axes[0].get_xticklabels()) == ["a", "b", "c"]


def test_figures_of_categorize_network_decoding_and_naturalistic(tmp_path):
    """Every analysis gets figures with captions (n, test, correction), from its saved files."""
    root = tmp_path / "res"
    prov = _provenance("untrained-seed0")
    classes = ["awe", "fear", "joy"]
    cat = ResultDir(root / "group" / "categorize-occipital", prov)
    cat.write_tsv("category_scores.tsv", pd.DataFrame(
        {"subject": ["01", "02", "03"], "fold": [0, 1, 2], "n_trials": 9, "accuracy": [0.5, 0.6, 0.4]}))
    confusion = pd.DataFrame(np.eye(3) * 0.5 + 1 / 6, columns=classes)
    confusion.insert(0, "true", classes)
    cat.write_tsv("category_confusion.tsv", confusion)
    cat.finish({"analysis": "categorize", "model": "plsda", "n_subjects": 3, "n_trials": 27,
                "n_voxels": 120, "n_classes": 3, "n_folds": 3, "accuracy": 0.5, "chance": 1 / 3,
                "p_value": 0.01, "n_permutations": 99, "permutation_unit": "stimulus"})
    net = ResultDir(root / "group" / "network-decoding-fc8", prov)
    names = ["sub-01", "sub-02", "sub-03", "network"]
    net.write_tsv("subjects.tsv", pd.DataFrame(
        {"subject": names, "accuracy": [0.4, 0.5, 0.45, 0.9], "is_network": [False] * 3 + [True]}))
    sim = pd.DataFrame(np.corrcoef(np.random.default_rng(0).normal(size=(4, 9))), columns=names)
    sim.insert(0, "subject", names)
    net.write_tsv("confusion_similarity.tsv", sim)
    net.finish({"analysis": "network-category-decoding", "layer": "fc8", "classifier": "plsda",
                "n_subjects": 3, "n_classes": 3, "n_folds": 3, "chance": 1 / 3,
                "network_rank": 1, "network_rank_of": 4, "network_accuracy_p": 0.001})
    nat = ResultDir(root / "movie", prov)
    img = _brain_img()
    r = img.get_fdata()[img.get_fdata() != 0]
    nat.write_nifti("r.nii.gz", img)
    nat.write_npz("scores.npz", r=r)
    nat.finish({"analysis": "naturalistic_encoding", "n_voxels": int(r.size), "n_volumes": 300,
                "n_censored": 4, "mean_r": float(r.mean())})
    with warnings.catch_warnings():
        warnings.simplefilter("error", plotting.FigureSkipped)
        plotting.make_figures(root, formats=("png",))
    entries = {e["figure"]: e for e in json.loads((root / "figures" / "figures.json").read_text())["figures"]}
    assert set(entries) == {
        "group_categorize-occipital_accuracy", "group_categorize-occipital_confusion",
        "group_network-decoding-fc8_accuracy", "group_network-decoding-fc8_confusion-similarity",
        "movie_r-map-glass", "movie_r-histogram",
    }
    assert "3 subjects, 27 trials, 120 voxels" in entries["group_categorize-occipital_accuracy"]["caption"]
    assert "99 permutations" in entries["group_categorize-occipital_confusion"]["caption"]
    assert "ranks 1 of 4" in entries["group_network-decoding-fc8_accuracy"]["caption"]
    # no test for movie encoding: the caption says the threshold is for display only
    glass = entries["movie_r-map-glass"]
    assert "not a significance threshold" in glass["caption"]
    assert glass["map"]["threshold"] == pytest.approx(np.quantile(r, 0.95))
    # the network's bar is the vermillion one, chance is drawn
    jobs = {name: thunk for name, _, _, thunk in plotting._figure_jobs(root)}
    ax = _ax(jobs["group_network-decoding-fc8_accuracy"]())
    colours = [to_hex(b.get_facecolor()) for b in ax.patches]
    assert colours[0] == plotting._VERMILLION.lower() and colours.count(colours[0]) == 1
    assert any(np.allclose(line.get_ydata(), 1 / 3) for line in ax.get_lines())


def test_encoding_map_shows_every_significant_voxel_when_float32_rounds_down(tmp_path):
    # r = 0.7 is 0.69999999 in the float32 map: a float64 threshold of 0.7 would hide that voxel
    import nibabel as nib

    from brainnet._plot_brain import plot_brain_map
    from brainnet.plotting import _encoding_survivors

    vol = np.zeros((4, 4, 4), dtype=np.float32)
    vol[1, 1, 1], vol[2, 2, 2], vol[3, 3, 3] = 0.7, 0.9, 0.1
    nib.save(nib.Nifti1Image(vol, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "r_map.nii.gz")
    pd.DataFrame({"voxel": [0, 1, 2], "i": [1, 2, 3], "j": [1, 2, 3], "k": [1, 2, 3], "r": [0.7, 0.9, 0.1],
                  "p_fwe": [0.01, 0.01, 0.5]}).to_csv(tmp_path / "voxel_scores.tsv", sep="\t", index=False)
    img, threshold, n = _encoding_survivors(tmp_path, {})
    fig = plot_brain_map(img, threshold=threshold, kind="stat")
    assert n == 2 and fig.brainnet_map["n_voxels_shown"] == 2
