"""A network's own structure: confusions, discriminable categories, PCA dimensionality, rating read-outs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from brainnet.models.registry import Network
from brainnet.structure import network_structure, pca_dimensionality

CLASSES = ("blue", "green", "red")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("red", "green", "blue")):
        (root / cls).mkdir()
        for i in range(16):
            img = rng.integers(0, 90, size=(48, 48, 3)).astype(np.uint8)
            y0, x0 = rng.integers(0, 20, size=2)
            img[y0:y0 + 24, x0:x0 + 24, k] = 230
            Image.fromarray(img).save(root / cls / f"{cls}_{i:02d}.png")
    return root


class ChannelMeans(torch.nn.Module):
    """Outputs mixed channel means: ``mix`` (n_out, 3) decides which colours the network can tell apart."""

    def __init__(self, mix):
        super().__init__()
        self.out = torch.nn.Linear(3, len(mix), bias=False)
        self.out.weight.data = torch.tensor(mix, dtype=torch.float32)

    def forward(self, x):
        return self.out(x.mean(dim=(2, 3)))


def to_unit(img):
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def test_discriminable_categories_follow_what_the_network_can_tell_apart(labelled, tmp_path):
    sees_all = Network.from_module(ChannelMeans([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), to_unit, name="rgb")
    res = network_structure(labelled, sees_all, layer="out", out=tmp_path / "rgb")
    assert res.classes == list(CLASSES) and res.accuracy == 1.0
    assert np.array_equal(res.confusion, np.diag([16, 16, 16])) and res.n_discriminable == 3
    # red and green summed into one unit: the network cannot tell them apart
    merged = Network.from_module(ChannelMeans([[1, 1, 0], [0, 0, 1]]), to_unit, name="rg")
    res = network_structure(labelled, merged, layer="out")
    blue, green, red = 0, 1, 2
    assert res.confusion[blue, blue] == 16 and res.confusion[red, blue] == res.confusion[green, blue] == 0
    assert res.n_discriminable == 2 and res.clusters.labels[red] == res.clusters.labels[green] != res.clusters.labels[blue]
    assert (tmp_path / "rgb" / "confusion.tsv").is_file() and (tmp_path / "rgb" / "summary.json").is_file()


def test_pca_dimensionality_against_numpy_eigenvalues():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 2)) @ np.array([[3.0, 0, 1, 0, 2], [0, 1.0, 0, 1, 0]])
    x += 1e-3 * rng.standard_normal(x.shape)
    d = pca_dimensionality(x)
    ev = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    assert d["n_components_95"] <= 2 and d["n_components_90"] >= 1
    assert d["participation_ratio"] == pytest.approx(ev.sum() ** 2 / (ev**2).sum(), rel=1e-6)


def test_valence_readout_is_recovered_beside_the_published_one(labelled, tmp_path):
    from brainnet.extract import extract_activations
    from brainnet.models.emonet import valence_arousal
    from brainnet.retrain import labelled_images

    stim, _ = labelled_images(labelled)
    fc8 = extract_activations(stim, network="emonet-untrained", layers=["fc8"]).layer("fc8").astype(np.float64)
    p = np.exp(fc8 - fc8.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    valence, _ = valence_arousal(p)
    rng = np.random.default_rng(2)
    ratings = pd.DataFrame({"stimulus_id": [s.split("/")[1] for s in stim.ids],
                            "valence": valence + 0.05 * valence.std() * rng.standard_normal(len(valence)),
                            "arousal": rng.standard_normal(len(valence))})
    path = tmp_path / "ratings.tsv"
    ratings.to_csv(path, sep="\t", index=False)
    res = network_structure(labelled, "emonet-untrained", layer="fc8", ratings=path)
    table = res.readouts.set_index("rating")
    assert table.loc["valence", "published_r"] > 0.99  # ratings made by the published read-out
    assert table.loc["valence", "cv_r"] > 0.9  # and a fitted linear read-out recovers it on held-out images
    assert table.loc["arousal", "cv_r"] < 0.4  # noise ratings: no read-out
    assert table.loc["valence", "published_w_0"] == pytest.approx(0.5990)


def test_network_structure_cli(labelled, tmp_path, capsys):
    from brainnet.cli import main

    assert main(["network-structure", "--network", "emonet-untrained", "--images", str(labelled),
                 "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "3 categories, 48 images" in out and "discriminable categories" in out
    assert (tmp_path / "s" / "summary.json").is_file()
