"""A new head on a frozen network (brainnet retrain), then the new network used like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from brainnet.cli import main
from brainnet.errors import BrainnetError
from brainnet.extract import extract_activations
from brainnet.models.registry import get_network
from brainnet.retrain import labelled_images, retrain_head

CLASSES = ("red", "green", "blue")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Noise images with a blob whose colour is the class (a separable rule), 16 per class."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for k, cls in enumerate(CLASSES):
        (root / cls).mkdir()
        for i in range(16):
            img = rng.integers(0, 90, size=(64, 64, 3)).astype(np.uint8)
            y0, x0 = rng.integers(0, 32, size=2)
            img[y0:y0 + 28, x0:x0 + 28, k] = 230
            Image.fromarray(img).save(root / cls / f"{cls}_{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def head(labelled, tmp_path_factory):
    out = tmp_path_factory.mktemp("head") / "head.pt"
    return retrain_head(labelled, "emonet-untrained", out=out, seed=0)


def test_head_learns_a_separable_rule_on_held_out_images(head):
    assert head.classes == sorted(CLASSES) and head.chance == pytest.approx(1 / 3)
    assert head.accuracy >= 0.75 and head.p_value < 1e-3  # 12 held-out images, chance 1/3
    assert head.confusion.sum() == 12 and np.trace(head.confusion) == round(head.accuracy * 12)
    assert all(a > 0.7 for a in head.auc.values())
    report = json.loads(head.path.with_name("head.pt.json").read_text())
    assert report["layer"] == "fc7" and report["backbone_weights"] == "untrained-seed0"
    held_out = [i.split("/")[0] for i in report["test_ids"]]
    assert sorted(held_out) == sorted(CLASSES * 4)  # a stratified split: 4 of 16 per class
    assert head.confusion.sum(axis=1).tolist() == [4, 4, 4]


def test_the_head_network_matches_its_weights_and_runs_in_encode_and_rsa(head, labelled, tmp_path):
    from brainnet.encoding import encode_subject
    from brainnet.rsa import network_as_subject
    from brainnet.simulate import simulate_study
    from brainnet.study import load_study

    net = get_network(f"head:{head.path}")
    assert net.layers[-1] == "head" and net.layers[-2] == "backbone.fc7"
    stim, _ = labelled_images(labelled)
    feats = extract_activations(stim, network=net, layers=["backbone.fc7", "head"])
    state = torch.load(head.path, weights_only=True)
    expected = feats.layer("backbone.fc7") @ state["weight"].numpy().T + state["bias"].numpy()
    np.testing.assert_allclose(feats.layer("head"), expected, rtol=1e-4, atol=1e-4)
    study = load_study(simulate_study(tmp_path / "study", n_subjects=3, n_stimuli=16, seed=6))
    rsa = network_as_subject(study, network=f"head:{head.path}", layers="head", n_permutations=9, n_bootstrap=0)
    assert np.isfinite(rsa.layers["head"].network_human_r)
    enc = encode_subject(study, "01", network=f"head:{head.path}", layer="head", n_permutations=9, cv=4)
    assert enc.provenance["features"]["network"]["weights"] == net.weights
    assert enc.provenance["features"]["network"]["source"].startswith("head:")


def test_head_refuses_another_backbone(head, tmp_path):
    state = torch.load(head.path, weights_only=True)
    state["backbone_weights"] = "untrained-seed9"
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(BrainnetError, match=r"other.pt: was trained on backbone weights untrained-seed9 but "
                       r"emonet-untrained has untrained-seed0; use the backbone the head was trained on$"):
        get_network(f"head:{other}")


def test_retrain_cli(labelled, tmp_path, capsys):
    out = tmp_path / "cli-head.pt"
    assert main(["retrain", "--network", "emonet-untrained", "--images", str(labelled), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and "--network head:" in printed and out.is_file()
    (tmp_path / "one" / "a").mkdir(parents=True)
    assert main(["retrain", "--images", str(tmp_path / "one"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "has 0 class subfolder(s) with images; give at least two subfolders" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
