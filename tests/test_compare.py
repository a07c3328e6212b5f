"""Networks side by side: one table and figure, FWE over networks x layers, pairwise tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from brainnet.cli import main
from brainnet.compare import compare_networks, paired_sign_flip, rsa_grid_inference
from brainnet.rsa import compute_rdm

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=32)
    folder = tmp_path_factory.mktemp("vit")
    transformers.ViTModel(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_three_networks_side_by_side_on_the_embedded_study(vit_dir, tmp_path, capsys):
    from brainnet.models.registry import register_network

    register_network("vit-local", f"hf:{vit_dir}", persist=True)
    out = tmp_path / "res"
    assert main(["rsa", "--networks", "emonet,emonet-untrained,vit-local", "--layers", "all", "--permutations", "19",
                 "--bootstrap", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "3 networks, 19 network x layer scores" in printed.out
    folder = out / "group" / "networks-rsa"
    table = pd.read_csv(folder / "networks.tsv", sep="\t")
    assert len(table) == 8 + 8 + 3 and table["rank"].tolist() == list(range(1, 20))
    assert (np.diff(table["score"]) <= 0).all()  # ranked best first
    assert set(table["network"]) == {"emonet", "emonet-untrained", "vit-local"}
    assert (table["p_fwe"] >= table["p_value"]).all()
    assert (table["noise_ceiling_lower"] <= table["noise_ceiling_upper"]).all()
    assert (table["ci_subjects_low"] <= table["score"] + 1e-12).all() and (table["ci_stimuli_low"].notna()).all()
    assert (folder / "networks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pairs = pd.read_csv(folder / "pairwise.tsv", sep="\t")
    assert len(pairs) == 3
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] and summary["n_tests"] == 19
    prov = summary["provenance"]
    assert prov["networks"]["vit-local"]["weights"].startswith("sha256:")
    assert prov["weights"] == {"emonet": "untrained-seed0", "emonet-untrained": "untrained-seed0",
                               "vit-local": prov["networks"]["vit-local"]["weights"]}
    assert "using untrained EmoNet weights" in printed.err


def test_encode_side_by_side_and_its_cli(vit_dir, tmp_path, capsys):
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=3, n_stimuli=16, seed=5)
    result = compare_networks(study, ["emonet-untrained", f"hf:{vit_dir}"], analysis="encode",
                              layers={"emonet-untrained": "fc8", f"hf:{vit_dir}": "layer2,pooled"},
                              n_permutations=9, n_bootstrap=5, cv=4)
    assert result.table[["network", "layer"]].values.tolist() and len(result.table) == 3
    assert result.scores.shape == (3, 3) and result.path is None
    assert main(["encode", "--study", str(study), "--networks", f"emonet-untrained,hf:{vit_dir}", "--layers", "fc8",
                 "--permutations", "2", "--cv", "4", "--out", str(tmp_path / "o")]) == 2
    assert "--layers: network hf:" in capsys.readouterr().err  # the ViT has no fc8: one line, nothing written
    assert not (tmp_path / "o" / "group" / "networks-encode").exists()


def _null_rdms(rng, n_subjects, n_stimuli, n_keys):
    humans = np.vstack([compute_rdm(rng.standard_normal((n_stimuli, 30)), [str(i) for i in range(n_stimuli)]).vector
                        for _ in range(n_subjects)])
    # network x layer RDMs correlated with each other (layers of one network are), none with the humans
    base = rng.standard_normal((n_stimuli, 20))
    network = np.vstack([compute_rdm(base + rng.standard_normal((n_stimuli, 20)), [str(i) for i in range(n_stimuli)]).vector
                         for _ in range(n_keys)])
    return network, humans


def test_fwe_over_networks_and_layers_is_calibrated_on_null_data(science_scale):
    from brainnet.rsa import _check_comparison

    n_reps = 1000 if science_scale == "full" else 200
    rng = np.random.default_rng(11)
    any_fwe = any_raw = 0
    for rep in range(n_reps):
        network, humans = _null_rdms(rng, 4, 9, 6)
        perm, _ = rsa_grid_inference(network, humans, _check_comparison("spearman"), n_permutations=99,
                                     n_bootstrap=0, seed=rep)
        any_fwe += perm.p_fwe.min() <= 0.05
        any_raw += perm.p_value.min() <= 0.05
    # family-wise rate at its nominal 5 % (binomial 99.9 % band), uncorrected clearly above it
    se = np.sqrt(0.05 * 0.95 / n_reps)
    assert any_fwe / n_reps <= 0.05 + 3.3 * se
    assert any_fwe / n_reps >= 0.05 - 3.3 * se - 0.01
    assert any_raw / n_reps > 0.05 + 3.3 * se


def test_paired_sign_flip_matches_the_exact_test():
    import itertools

    rng = np.random.default_rng(3)
    diffs = rng.standard_normal((2, 6)) + np.array([[0.8], [0.0]])
    result = paired_sign_flip(diffs, n_permutations=4000, seed=1)
    signs = np.array(list(itertools.product([1, -1], repeat=6)))
    for k in range(2):
        null = np.abs(signs @ diffs[k] / 6)
        exact = np.mean(null >= abs(diffs[k].mean()) - 1e-12)
        se = np.sqrt(exact * (1 - exact) / 4000)
        assert abs(result.p_value[k] - exact) <= 4 * se + 1 / 4000


def test_decode_side_by_side_and_its_cli(vit_dir, tmp_path, capsys):
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=3, n_stimuli=16, seed=5)
    out = tmp_path / "o"
    result = compare_networks(study, ["emonet-untrained", f"hf:{vit_dir}"], analysis="decode", n_components=2,
                              layers={"emonet-untrained": "fc7,fc8", f"hf:{vit_dir}": "pooled"},
                              n_permutations=9, n_bootstrap=5, out=out)
    table = pd.read_csv(result.path / "networks.tsv", sep="\t")
    assert len(table) == 3 and (table["p_fwe"] >= table["p_value"]).all()
    assert table["noise_ceiling_lower"].isna().all() and table["ci_stimuli_low"].isna().all()
    assert result.summary["score"] == "mean over subjects of the unit-mean leave-one-subject-out decoding r"
    assert main(["decode", "--study", str(study), "--networks", f"emonet-untrained,hf:{vit_dir}", "--layers", "fc8",
                 "--out", str(tmp_path / "cli")]) == 2
    assert "--layers: network hf:" in capsys.readouterr().err and not (tmp_path / "cli").exists()
