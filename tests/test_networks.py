"""Networks with their own preprocessing: registry, Hugging Face models, modules with transforms, THINGSvision."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from brainnet.cli import main
from brainnet.errors import BrainnetError
from brainnet.extract import extract_activations, last_cache_stats
from brainnet.features import load_features
from brainnet.models.registry import Network, code_id, get_network, network_layers, register_network
from brainnet.stimuli import demo_stimuli

transformers = pytest.importorskip("transformers")

VIT_MEAN, VIT_STD = [0.2, 0.4, 0.6], [0.5, 0.25, 0.3]


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    """A tiny randomly initialised ViT saved with its own image processor (nothing downloaded)."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=32)
    folder = tmp_path_factory.mktemp("vit")
    transformers.ViTModel(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=VIT_MEAN, image_std=VIT_STD,
                                   resample=2).save_pretrained(folder)
    return folder


class TinyNet(torch.nn.Module):
    """A hand-written network that takes 20 x 20 inputs scaled to 0..1."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        self.fc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 18 * 18, 6))
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=gen) * 0.3

    def forward(self, x):
        return self.fc(self.conv(x))


def tiny_transform(img):
    return np.asarray(img.resize((20, 20)), dtype=np.float32).transpose(2, 0, 1) / 255.0


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return demo_stimuli(6, tmp_path_factory.mktemp("imgs"))


def _independent_vit_input(path, size=32):
    """The ViT's input computed from its preprocessor_config values with Pillow and numpy alone."""
    from PIL import Image

    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float64) / 255.0
    return ((arr - VIT_MEAN) / VIT_STD).transpose(2, 0, 1).astype(np.float32)


def test_vit_uses_its_own_preprocessing_and_layers(vit_dir, images):
    net = get_network(f"hf:{vit_dir}")
    assert net.layers == ("layer1", "layer2", "pooled")
    assert net.pool == "cls" and net.weights.startswith("sha256:") and net.code.startswith("sha256:")
    assert net.preprocessing.description["image_mean"] == pytest.approx(VIT_MEAN)
    feats = extract_activations(images, network=net, layers=["layer2", "pooled"], pool="none")
    # the same activations from the transformers model fed with independently preprocessed pixels
    model = transformers.ViTModel.from_pretrained(vit_dir).eval()
    x = torch.from_numpy(np.stack([_independent_vit_input(p) for p in images.files]))
    with torch.no_grad():
        out = model(pixel_values=x, output_hidden_states=True)
    np.testing.assert_allclose(feats.layer("layer2"), out.hidden_states[2].reshape(6, -1).numpy(), atol=1e-4)
    np.testing.assert_allclose(feats.layer("pooled"), out.pooler_output.numpy(), atol=1e-4)
    prov = feats.provenance
    assert prov["network"]["name"] == f"hf:{vit_dir}" and prov["weights"] == net.weights
    assert prov["preprocessing"]["size"] == {"height": 32, "width": 32}
    assert "227" not in json.dumps(prov["preprocessing"])  # not EmoNet's pipeline
    cls = extract_activations(images, network=net, layers=["layer1"])  # default pool: the CLS token
    np.testing.assert_allclose(cls.layer("layer1"), out.hidden_states[1][:, 0].numpy(), atol=1e-4)


def test_module_with_transform_and_input_mismatch(images):
    module = TinyNet()
    net = Network.from_module(module, tiny_transform, name="tiny")
    assert net.layers == ("conv", "fc")
    feats = extract_activations(images, network=net, layers=["fc"])
    x = torch.from_numpy(np.stack([tiny_transform(__import__("PIL.Image").Image.open(p).convert("RGB"))
                                   for p in images.files]))
    with torch.no_grad():
        np.testing.assert_allclose(feats.layer("fc"), module(x).numpy(), rtol=1e-5, atol=1e-5)
    assert feats.provenance["network"]["name"] == "tiny"
    assert feats.provenance["preprocessing"]["id"].startswith("transform-sha256:")
    # without its transform it gets EmoNet's 227 px input, which it cannot take: one line, no RuntimeError
    with pytest.raises(BrainnetError, match=r"^network tinynet: images preprocessed to \(3, 227, 227\) do not fit "
                       r"its input \(.+\); use the network's own preprocessing \(--network NAME, or "
                       r"Network.from_module\(module, transform=...\)\)$"):
        extract_activations(images, TinyNet(), layers=["fc"], cache=False)


def test_changed_model_code_is_not_served_from_cache(tmp_path, images):
    source = tmp_path / "mynet_code.py"
    body = ("import torch\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        torch.manual_seed(0)\n        self.fc = torch.nn.Linear(12, 3)\n\n"
            "    def forward(self, x):\n        return self.fc(x.mean(dim=(2, 3)).repeat(1, 4){}) \n")
    source.write_text(body.format(""))
    spec = importlib.util.spec_from_file_location("mynet_code", source)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mynet_code"] = mod
    spec.loader.exec_module(mod)
    try:
        first = code_id(mod.Net())
        extract_activations(images, network=Network.from_module(mod.Net(), tiny_transform), layers=["fc"])
        extract_activations(images, network=Network.from_module(mod.Net(), tiny_transform), layers=["fc"])
        assert last_cache_stats().hits == len(images)
        source.write_text(body.format(" * 2"))  # same weights, other forward
        assert code_id(mod.Net()) != first
        extract_activations(images, network=Network.from_module(mod.Net(), tiny_transform), layers=["fc"])
        assert last_cache_stats().misses == len(images)
    finally:
        sys.modules.pop("mynet_code", None)


def test_registry_names_and_errors(vit_dir, tmp_path):
    untrained = get_network("emonet-untrained", seed=4)
    assert untrained.weights == "untrained-seed4" and untrained.preprocessing is None
    with pytest.raises(BrainnetError, match=r"^--network nope: unknown network; use one of emonet, emonet-untrained"):
        get_network("nope")
    with pytest.raises(BrainnetError, match=r"^--weights applies to EmoNet only; network hf:.* brings its own "
                       r"weights \(drop --weights\)$"):
        get_network(f"hf:{vit_dir}", weights=tmp_path / "w.pt")
    with pytest.raises(BrainnetError, match=r"has no preprocessor_config.json, so the network's preprocessing is "
                       r"unknown; save the model's image processor beside it"):
        bare = tmp_path / "bare"
        transformers.ViTModel(transformers.ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=8)).save_pretrained(bare)
        get_network(f"hf:{bare}")
    register_network("vit-local", f"hf:{vit_dir}", persist=True)
    table = network_layers("vit-local")
    assert table["layer"].tolist() == ["layer1", "layer2", "pooled"]
    assert table["n_units"].tolist() == [16, 16, 16]
    assert network_layers("vit-local", pool="none")["n_units"].tolist() == [17 * 16, 17 * 16, 16]


def test_cli_layers_and_extract(vit_dir, images, tmp_path, capsys):
    assert main(["layers", "--network", f"hf:{vit_dir}"]) == 0
    out = capsys.readouterr().out
    assert "layer1" in out and "17x16" in out and f"hf:{vit_dir}" in out
    assert main(["layers"]) == 0
    import re

    assert re.search(r"^conv1\s+96x27x27\s+69984$", capsys.readouterr().out, flags=re.M)
    target = tmp_path / "vit.npz"
    assert main(["extract", "--stimuli", str(images.root), "--network", f"hf:{vit_dir}", "--layers", "all",
                 "--out", str(target), "--quiet"]) == 0
    feats = load_features(target)
    assert feats.layer_names == ["layer1", "layer2", "pooled"]
    assert feats.provenance["network"]["weights"].startswith("sha256:")
    assert main(["extract", "--demo", "--network", "nope", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brainnet extract: error: --network nope: unknown network") and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()


def test_thingsvision_outputs_read_as_features(tmp_path):
    import h5py

    rng = np.random.default_rng(0)
    names = ["animals/cat_01.jpg", "animals/dog_02.png", "tools/saw.jpg"]
    acts = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    npy = tmp_path / "resnet_layer4"
    npy.mkdir()
    np.save(npy / "features.npy", acts)
    (npy / "file_names.txt").write_text("\n".join(names) + "\n")
    feats = load_features(npy)
    assert feats.stimulus_ids == ("cat_01", "dog_02", "saw") and feats.layer_names == ["resnet_layer4"]
    np.testing.assert_array_equal(feats.layer("resnet_layer4"), acts.reshape(3, -1))
    h5 = tmp_path / "h5"
    h5.mkdir()
    with h5py.File(h5 / "features.hdf5", "w") as f:
        f.create_dataset("features", data=acts[:, :, 0, 0])
    (h5 / "file_names.txt").write_text("\n".join(names))
    np.testing.assert_array_equal(load_features(h5 / "features.hdf5", layer="fc").layer("fc"), acts[:, :, 0, 0])
    (h5 / "file_names.txt").write_text("\n".join(names[:2]))
    with pytest.raises(BrainnetError, match=r"features have 3 rows but file_names.txt lists 2 files; use the "
                       r"file_names.txt written with these features$"):
        load_features(h5)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    from brainnet.simulate import simulate_study
    from brainnet.study import load_study

    return load_study(simulate_study(tmp_path_factory.mktemp("nets") / "study", n_subjects=3, n_stimuli=16, seed=5))


def test_vit_and_module_go_through_encode_decode_and_rsa(vit_dir, small_study, tmp_path):
    from brainnet.decoding import decode_units
    from brainnet.encoding import encode_subject
    from brainnet.rsa import network_as_subject

    tiny = Network.from_module(TinyNet(), tiny_transform, name="tiny")
    for network, layer in ((f"hf:{vit_dir}", "layer2"), (tiny, "fc")):
        name = network if isinstance(network, str) else "tiny"
        weights = get_network(network).weights
        enc = encode_subject(small_study, "01", network=network, layer=layer, n_permutations=9, cv=4,
                             out=tmp_path / "enc")
        assert enc.provenance["features"]["network"] == {**get_network(network).provenance(), "weights": weights}
        assert enc.provenance["weights"] == weights and np.isfinite(enc.summary["mean_r"])
        dec = decode_units(small_study, network=network, layer=layer, n_components=2, n_permutations=9,
                           n_bootstrap=0, n_cluster_draws=0)
        assert dec.summary["n_units"] == (16 if name != "tiny" else 6)
        rsa = network_as_subject(small_study, network=network, layers="all", n_permutations=9, n_bootstrap=0,
                                 out=tmp_path / f"rsa-{name[:3]}")
        assert list(rsa.layers) == list(get_network(network).layers)
        summary = json.loads((tmp_path / f"rsa-{name[:3]}" / "group" / f"rsa-{layer}" / "summary.json").read_text())
        assert summary["provenance"]["features"]["network"]["name"] == name
        assert summary["provenance"]["weights"] == weights


def test_several_networks_decode_each_image_once(vit_dir, images, monkeypatch):
    import brainnet.stimuli as S
    from brainnet.extract import shared_decoding

    calls = []
    real = S.decode_rgb
    monkeypatch.setattr(S, "decode_rgb", lambda data, name: calls.append(name) or real(data, name))
    tiny = Network.from_module(TinyNet(), tiny_transform)
    plain = [extract_activations(images, network=n, layers=[layer], cache=False)
             for n, layer in ((f"hf:{vit_dir}", "layer1"), (tiny, "fc"))]
    assert len(calls) == 2 * len(images)
    calls.clear()
    with shared_decoding():
        shared = [extract_activations(images, network=n, layers=[layer], cache=False)
                  for n, layer in ((f"hf:{vit_dir}", "layer1"), (tiny, "fc"))]
    assert sorted(calls) == sorted(images.files)  # once per image for both networks
    for a, b in zip(plain, shared, strict=True):
        for name in a.layer_names:
            np.testing.assert_array_equal(a.layer(name), b.layer(name))
