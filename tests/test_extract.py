"""Activation extraction: batching, cache, layers, pooling, any module, and the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from brainnet.cli import main
from brainnet.errors import BrainnetError
from brainnet.extract import extract_activations, last_cache_stats
from brainnet.features import load_features
from brainnet.models.weights import load_emonet
from brainnet.stimuli import demo_stimuli, preprocess_image


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh, empty brainnet cache for this test."""
    monkeypatch.setenv("BRAINNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def model0():
    return load_emonet(seed=0)[0]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return demo_stimuli(6, tmp_path_factory.mktemp("six"))


def test_batched_equals_single_and_cache_and_invalidation(home, tmp_path):
    n = 112
    stim = demo_stimuli(n, tmp_path / "imgs")
    layers = ["conv5", "fc7", "fc8"]
    batched = extract_activations(stim, layers=layers, batch_size=32, pool="mean")
    assert last_cache_stats().misses == n and last_cache_stats().hits == 0
    single = extract_activations(stim, layers=layers, batch_size=1, pool="mean", cache=False)
    for layer in layers:
        assert batched.layer(layer).shape[0] == n
        assert np.abs(batched.layer(layer) - single.layer(layer)).max() < 1e-4
    again = extract_activations(stim, layers=layers, batch_size=32, pool="mean")
    assert last_cache_stats().hits == n and last_cache_stats().misses == 0
    for layer in layers:
        np.testing.assert_array_equal(again.layer(layer), batched.layer(layer))
    assert again.provenance == batched.provenance
    # modify one image: only its entry is recomputed
    Image.new("RGB", (50, 50), (250, 10, 10)).save(stim.files[7])
    changed = extract_activations(stim, layers=layers, batch_size=32, pool="mean")
    assert last_cache_stats().hits == n - 1 and last_cache_stats().misses == 1
    diff = np.abs(changed.layer("fc8") - batched.layer("fc8")).max(axis=1)
    assert diff[7] > 1e-3 and np.all(np.delete(diff, 7) == 0)
    # other weights never reuse these entries
    extract_activations(stim.subset(stim.ids[:3]), layers=["fc8"], seed=1)
    assert last_cache_stats().misses == 3


def test_fc8_is_before_softmax_and_softmax_gives_model_output(home, small_set, model0):
    feats = extract_activations(small_set, layers=["fc8", "fc7"], cache=False)
    x = torch.from_numpy(np.stack([preprocess_image(f) for f in small_set.files]))
    with torch.inference_mode():
        prob = model0(x).numpy()
        logits = model0.logits(x).numpy()
    fc8 = feats.layer("fc8")
    assert fc8.shape == (6, 20) and feats.layer("fc7").shape == (6, 4096)
    np.testing.assert_allclose(fc8, logits, rtol=1e-5, atol=1e-4)
    assert not np.allclose(fc8.sum(axis=1), 1.0)  # not probabilities
    soft = np.exp(fc8 - fc8.max(axis=1, keepdims=True))
    np.testing.assert_allclose(soft / soft.sum(axis=1, keepdims=True), prob, atol=1e-5)
    assert feats.stimulus_ids == small_set.ids
    prov = feats.provenance
    assert prov["weights"] == "untrained-seed0" and prov["layers"] == ["fc8", "fc7"] and prov["pool"] == "none"
    assert prov["preprocessing"]["mean"].startswith("imagenet-channel-mean")


def test_conv_layers_flat_or_pooled(home, small_set, model0):
    flat = extract_activations(small_set, layers=["conv5", "conv1"], cache=False)
    assert flat.layer("conv5").shape == (6, 256 * 36) and flat.layer("conv1").shape == (6, 96 * 27 * 27)
    maps = flat.layer("conv5").reshape(6, 256, 6, 6)  # C, H, W order
    for pool, fn in [("mean", np.mean), ("max", np.max)]:
        pooled = extract_activations(small_set, layers=["conv5"], pool=pool, cache=False)
        np.testing.assert_allclose(pooled.layer("conv5"), fn(maps, axis=(2, 3)), rtol=1e-5, atol=1e-5)
    x = torch.from_numpy(preprocess_image(small_set.files[0]))[None]
    with torch.inference_mode():
        ref = model0.conv5(model0.conv4(model0.conv3(model0.conv2(model0.conv1(x)))))
    np.testing.assert_allclose(flat.layer("conv5")[0], ref.flatten().numpy(), rtol=1e-4, atol=1e-4)


def test_sub_module_before_relu(home, small_set, model0):
    feats = extract_activations(small_set, layers=["fc6.1", "fc6"], cache=False)
    np.testing.assert_allclose(np.maximum(feats.layer("fc6.1"), 0), feats.layer("fc6"), atol=1e-6)
    assert feats.layer("fc6.1").min() < 0


def test_any_torch_module(home, small_set):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16, 3),
    )
    feats = extract_activations(small_set, net, layers=["2", "4"], pool="max")
    x = torch.from_numpy(np.stack([preprocess_image(f) for f in small_set.files]))
    with torch.inference_mode():
        np.testing.assert_allclose(feats.layer("4"), net(x).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(feats.layer("2"), net[:3](x).amax(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-5)
    wid = feats.provenance["weights"]
    assert wid.startswith("sha256:") and feats.provenance["model"] == "torch.nn.modules.container.Sequential"
    with torch.no_grad():
        net[4].bias += 1.0
    changed = extract_activations(small_set, net, layers=["4"])
    assert changed.provenance["weights"] != wid and last_cache_stats().misses == len(small_set)
    np.testing.assert_allclose(changed.layer("4"), feats.layer("4") + 1.0, rtol=1e-5, atol=1e-5)


def test_argument_errors(home, small_set):
    with pytest.raises(BrainnetError, match=r"^--layers: unknown layer 'fc9'; available: conv1, conv2, conv3, conv4, conv5, fc6, fc7, fc8$"):
        extract_activations(small_set, layers=["fc9"])
    with pytest.raises(BrainnetError, match=r"^--pool avg: unknown pooling; use one of none, mean, max, cls$"):
        extract_activations(small_set, pool="avg")
    with pytest.raises(BrainnetError, match="either a model or a weights file"):
        extract_activations(small_set, torch.nn.Identity(), weights="w.pt")


def test_extract_from_a_folder_path(home, small_set):
    feats = extract_activations(small_set.root, layers="fc8")
    assert feats.stimulus_ids == small_set.ids and feats.layer("fc8").shape == (6, 20)


# ------------------------------------------------------------------ CLI


def test_cli_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "extract" in out and "fetch" in out
    for cmd in ("extract", "fetch"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:\n  brainnet " + cmd in capsys.readouterr().out


def test_cli_demo_writes_features_with_provenance(home, tmp_path, capsys):
    out = tmp_path / "demo.npz"
    assert main(["extract", "--demo", "--layers", "fc7,fc8", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "brainnet: using untrained EmoNet weights (untrained-seed0); pass --weights PATH for the trained model "
        "(see 'brainnet fetch weights')\n"
    )
    assert captured.out.startswith(f"wrote {out}: 12 stimuli x fc7 (4096 units), fc8 (20 units)")
    feats = load_features(out)
    assert feats.n_stimuli == 12 and feats.layer("fc8").shape == (12, 20)
    assert feats.provenance["weights"] == "untrained-seed0"
    # the same command again: served from cache, same file accepted
    assert main(["extract", "--demo", "--layers", "fc7,fc8", "--out", str(out)]) == 0
    assert "0 computed, 12 from cache" in capsys.readouterr().out
    # other options into the same file: refused without --overwrite
    assert main(["extract", "--demo", "--layers", "fc8", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"brainnet extract: error: {out}: exists and was made from other stimuli, weights or options; "
        "pass --overwrite or choose another --out"
    )


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "nope"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from brainnet.cli import main; sys.exit(main())", "extract", "--stimuli", str(missing), "--out", str(tmp_path / "a.npz")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"brainnet extract: error: {missing}: stimuli not found; give a folder of images, "
        "a stimuli .tsv or an events .tsv\n"
    )
    assert "Traceback" not in proc.stderr


def test_cli_bad_weights_and_out(tmp_path, small_set, capsys):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"garbage")
    code = main(["extract", "--stimuli", str(small_set.root), "--weights", str(bad), "--out", str(tmp_path / "a.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"brainnet extract: error: {bad}: not a readable PyTorch weights file")
    assert main(["extract", "--demo", "--out", str(tmp_path / "a.csv")]) == 2
    assert "give an --out path ending in .npz" in capsys.readouterr().err


def test_unavailable_device_and_progress_bar(home, small_set, capsys):
    with pytest.raises(BrainnetError, match=r"^--device cuda:7: not available on this machine; use --device cpu$"):
        extract_activations(small_set, device="cuda:7")
    with pytest.raises(BrainnetError, match=r"^--device gpu: not available"):
        extract_activations(small_set, device="gpu")
    extract_activations(small_set, layers=["conv1"], pool="mean", progress=True)
    err = capsys.readouterr().err
    assert "extract" in err and "6/6" in err


def test_image_changed_between_hash_and_decode_is_refused(tmp_path):
    from brainnet.extract import _read_checked
    from brainnet.results import sha256_file

    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    sha = sha256_file(path)
    assert _read_checked(path, sha) == path.read_bytes()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(path)
    with pytest.raises(BrainnetError, match=r"image changed or vanished during extraction; rerun the extraction$"):
        _read_checked(path, sha)


def test_thread_setting_is_scoped(monkeypatch):
    import brainnet.extract as ex

    before = torch.get_num_threads()
    monkeypatch.setattr(ex, "_busy_machine", lambda: True)
    with ex._intra_op_threads(None):
        assert torch.get_num_threads() == 1
    with ex._intra_op_threads(3):
        assert torch.get_num_threads() == 3
    monkeypatch.setattr(ex, "_busy_machine", lambda: False)
    with ex._intra_op_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


def test_sublayer_before_an_inplace_relu_keeps_its_negative_values(tmp_path):
    """EmoNet's ReLUs run in place; a hook on the convolution or linear layer before one must see raw values."""
    feats = extract_activations(demo_stimuli(4, tmp_path / "imgs"), layers=["conv1.0", "conv1.1", "fc6.1", "fc6"],
                                cache=False, pool="mean")
    assert feats.layer("conv1.0").min() < 0 and feats.layer("fc6.1").min() < 0
    assert feats.layer("conv1.1").min() >= 0
    np.testing.assert_array_equal(feats.layer("fc6"), np.maximum(feats.layer("fc6.1"), 0))


@pytest.mark.parametrize("cache", [True, False])
def test_provenance_of_a_passed_model_is_its_weights_digest(cache, tmp_path):
    """Without the cache the digest is computed in the background, while the model is made channels-last."""
    from brainnet.extract import _module_weights_id
    from brainnet.models.weights import load_emonet

    model, _ = load_emonet(seed=3)
    expected = _module_weights_id(model)
    feats = extract_activations(demo_stimuli(3, tmp_path / "imgs"), model, layers=["fc8"], cache=cache,
                                channels_last=True)
    assert feats.provenance["weights"] == expected
    with torch.no_grad():
        model.fc8[0].bias.data[0] += 1.0
    again = extract_activations(demo_stimuli(3, tmp_path / "imgs"), model, layers=["fc8"], cache=cache)
    assert again.provenance["weights"] == _module_weights_id(model) != expected


def _gamma(k: int) -> float:
    """Higham's gamma_k for float32: |fl(sum of k products) - exact| <= gamma_k * sum |products|, any order."""
    u = float(np.finfo(np.float32).eps) / 2
    return k * u / (1 - k * u)


def _linear_difference_bound(layer: torch.nn.Linear, a: np.ndarray, b: np.ndarray, bound_in: np.ndarray) -> np.ndarray:
    """Bound on |fl(W a + c) - fl(W b + c)| elementwise, given |a - b| <= bound_in.

    Both products are float32 sums of in_features + 1 terms (the bias is one more
    term) in some order: each is within gamma_{K+1} (|W| |x| + |c|) of its exact
    value, and the exact values differ by at most |W| bound_in.
    """
    w = np.abs(layer.weight.detach().double().numpy())
    c = np.abs(layer.bias.detach().double().numpy())
    g = _gamma(w.shape[1] + 1)
    a, b = np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64))
    return bound_in @ w.T + g * (a @ w.T + c) + g * (b @ w.T + c)


def test_fully_connected_layers_in_larger_batches_give_the_same_rows(tmp_path, monkeypatch):
    """fc-only extraction runs EmoNet's fc layers on stashes of several conv batches; rows must not move.

    Matrix products of another batch shape may sum in another order, so the rows
    agree up to float32 rounding: each layer's bound is derived from the arithmetic
    (gamma_K of each dot product, from the measured inputs of both runs), not a
    fixed tolerance; a row paired with another image would miss it by orders of
    magnitude.
    """
    import brainnet.extract as E
    from brainnet.models.weights import load_emonet

    stim = demo_stimuli(23, tmp_path / "imgs")
    model, _ = load_emonet(seed=1)
    calls = []
    model.fc6.register_forward_hook(lambda _m, _i, out: calls.append(out.shape[0]))
    layers = ["fc6.0", "fc6.1", "fc6", "fc7", "fc8"]  # conv5 flattened, fc6 before/after ReLU, fc7, fc8
    monkeypatch.setattr(E, "_FC_BATCH", 10)  # flush after 12 rows (3 batches of 4), then 12 ... 23
    staged = extract_activations(stim, model, layers=layers, batch_size=4, cache=False)
    assert calls == [12, 11]
    monkeypatch.setattr(E, "_emonet_stages", lambda *_: None)
    calls.clear()
    plain = extract_activations(stim, model, layers=layers, batch_size=4, cache=False)
    assert calls == [4, 4, 4, 4, 4, 3]
    s, p = ({name: f.layer(name) for name in layers} for f in (staged, plain))
    # Each layer's bound starts from the measured difference of its inputs (the
    # convolutions run on the same batches in both, but thread counts may differ).
    steps = [("fc6.1", model.fc6[1], "fc6.0"), ("fc7", model.fc7[0], "fc6"), ("fc8", model.fc8[0], "fc7")]
    for name, linear, source in steps:
        bound = _linear_difference_bound(linear, s[source], p[source], np.abs(s[source].astype(np.float64) - p[source]))
        diff = np.abs(s[name].astype(np.float64) - p[name])
        assert np.all(diff <= bound), (name, float(np.max(diff - bound)))
        # Rows stay with their images: each staged row is nearest to its own plain row.
        dist = np.linalg.norm(s[name][:, None, :].astype(np.float64) - p[name][None], axis=2)
        assert list(dist.argmin(axis=1)) == list(range(len(stim))), name
        # ... and the bound itself is too small to confuse two images' rows.
        others = np.where(np.eye(len(stim), dtype=bool), np.inf, dist).min(axis=1)
        assert np.all(np.linalg.norm(bound, axis=1) < others / 2), name
    np.testing.assert_array_equal(s["fc6"], np.maximum(s["fc6.1"], 0))  # the ReLU is exact
    assert E._emonet_stages(model, ["conv5", "fc8"]) is None  # a conv layer: whole forward per batch
