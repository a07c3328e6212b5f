"""The optimised extraction equals a plain eager reference (issue 8).

The reference here is written with ``torch.nn.functional`` (torch's own LRN,
NCHW tensors, no hooks), independently of :mod:`brainnet.models.emonet`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brainnet.extract import extract_activations
from brainnet.models.emonet import LocalResponseNorm
from brainnet.models.weights import load_emonet
from brainnet.stimuli import demo_stimuli, preprocess_image

N_IMAGES = 5


def _reference_layers(w: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    def lrn(h):
        return F.local_response_norm(h, 5, alpha=1e-4, beta=0.75, k=1.0)

    out = {}
    h = F.max_pool2d(lrn(F.relu(F.conv2d(x, w["conv1.0.weight"], w["conv1.0.bias"], stride=4))), 3, 2)
    out["conv1"] = h
    h = F.max_pool2d(lrn(F.relu(F.conv2d(h, w["conv2.0.weight"], w["conv2.0.bias"], padding=2, groups=2))), 3, 2)
    h = F.relu(F.conv2d(h, w["conv3.0.weight"], w["conv3.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, w["conv4.0.weight"], w["conv4.0.bias"], padding=1, groups=2))
    h = F.max_pool2d(F.relu(F.conv2d(h, w["conv5.0.weight"], w["conv5.0.bias"], padding=1, groups=2)), 3, 2)
    out["conv5"] = h
    h = F.relu(F.linear(h.flatten(1), w["fc6.1.weight"], w["fc6.1.bias"]))
    out["fc6"] = h
    h = F.relu(F.linear(h, w["fc7.0.weight"], w["fc7.0.bias"]))
    out["fc8"] = F.linear(h, w["fc8.0.weight"], w["fc8.0.bias"])
    return {name: t.flatten(1) for name, t in out.items()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    stim = demo_stimuli(N_IMAGES, tmp_path_factory.mktemp("fast") / "images")
    model, _ = load_emonet(seed=3)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():  # non-zero biases, so a mis-ordered channel or pixel cannot hide
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.from_numpy(np.stack([preprocess_image(f) for f in stim.files]))
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in _reference_layers(weights, x).items()}
    return stim, weights, ref


def _relative_diff(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_extraction_equals_eager_reference(setup, channels_last, batch_size):
    stim, weights, ref = setup
    model, _ = load_emonet(seed=3)
    model.load_state_dict(weights)
    feats = extract_activations(stim, model, layers=["conv1", "conv5", "fc6", "fc8"], batch_size=batch_size,
                                cache=False, channels_last=channels_last, n_threads=1)
    for layer, expected in ref.items():
        got = feats.layer(layer)
        assert got.shape == expected.shape
        assert _relative_diff(got, expected) < 1e-4, layer


def test_default_channels_last_path_equals_reference(tmp_path):
    """brainnet's own EmoNet (channels-last by default) vs the reference with the same seeded weights."""
    from brainnet.models.weights import untrained_state_dict

    stim = demo_stimuli(3, tmp_path / "images")
    x = torch.from_numpy(np.stack([preprocess_image(f) for f in stim.files]))
    with torch.no_grad():
        ref = _reference_layers(untrained_state_dict(1), x)
    feats = extract_activations(stim, layers=["conv1", "fc8"], seed=1, cache=False, batch_size=2)
    for layer in ("conv1", "fc8"):
        assert _relative_diff(feats.layer(layer), ref[layer].numpy()) < 1e-4


def test_user_model_keeps_its_layout_unless_asked(setup):
    stim, weights, _ = setup
    model, _ = load_emonet(seed=3)
    extract_activations(stim, model, layers=["fc8"], cache=False)
    assert model.conv2[0].weight.is_contiguous()
    extract_activations(stim, model, layers=["fc8"], cache=False, channels_last=True)
    assert model.conv2[0].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("beta", [0.75, 0.6])  # 0.75: the rsqrt(s * sqrt(s)) path; others: pow
@pytest.mark.parametrize("channels", [1, 4, 96, 256])
@pytest.mark.parametrize("size", [3, 5, 7])
def test_channels_last_lrn_matches_torch(channels, size, beta):
    gen = torch.Generator().manual_seed(channels * 10 + size)
    x = torch.relu(torch.randn(2, channels, 9, 11, generator=gen) * 200)
    lrn = LocalResponseNorm(size, 1e-4, beta, 2.0)
    expected = torch.nn.LocalResponseNorm(size, 1e-4, beta, 2.0)(x)
    got = lrn(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lrn(x), expected, rtol=1e-5, atol=1e-6)  # NCHW: shifted-slice path
    # The same module on another channel count and shape.
    y = torch.rand(1, channels + 1, 4, 4).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(lrn(y), torch.nn.LocalResponseNorm(size, 1e-4, beta, 2.0)(y), rtol=1e-5, atol=1e-6)


def test_module_weights_id_is_a_sha256_of_names_shapes_and_every_byte():
    import hashlib

    from brainnet.extract import _HASH_CHUNK, _module_weights_id

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, (_HASH_CHUNK // 4) // 2 + 7))
    # Independent computation of the documented digest: header of every tensor, then 16 MB piece digests.
    header, pieces = hashlib.sha256(), []
    for name, t in sorted(model.state_dict().items()):
        header.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        raw = t.numpy().tobytes()
        pieces += [raw[i : i + _HASH_CHUNK] for i in range(0, len(raw), _HASH_CHUNK)]
    assert len(pieces) > len(model.state_dict())  # a tensor spans several pieces
    for piece in pieces:
        header.update(hashlib.sha256(piece).digest())
    assert _module_weights_id(model) == f"sha256:{header.hexdigest()}"
    before = _module_weights_id(model)
    with torch.no_grad():
        model[1].weight.data.view(-1)[-1] += 1.0  # last byte of the last piece; .data bypasses version counters
    assert _module_weights_id(model) != before


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_long_validation_sets_score_alphas_through_the_gram_identity_like_himalaya(dtype):
    """Naturalistic shapes (hundreds of volumes, few features) take the Gram path; it must equal himalaya."""
    himalaya = pytest.importorskip("himalaya.ridge")
    from sklearn.preprocessing import StandardScaler

    from brainnet import _ridge
    from brainnet.encoding import DEFAULT_ALPHAS, VoxelwiseRidgeCV

    rng = np.random.default_rng(4)
    x = rng.standard_normal((600, 12))
    y = x @ rng.standard_normal((12, 40)) * rng.uniform(0.05, 1.0, 40) + 2.0 * rng.standard_normal((600, 40))
    basis = _ridge.RidgeBasis(x.astype(dtype), np.asarray(DEFAULT_ALPHAS), inner=5)
    assert all(sp.val.size > _ridge._GRAM_ROWS_PER_RANK * sp.s.size for sp in basis.splits)  # Gram path taken
    model = VoxelwiseRidgeCV(alphas=DEFAULT_ALPHAS, inner=5).fit(x.astype(dtype), y.astype(dtype))
    scaler = StandardScaler().fit(x)
    ref = himalaya.RidgeCV(alphas=DEFAULT_ALPHAS, cv=5, fit_intercept=True, solver_params={"warn": False})
    ref.fit(scaler.transform(x), y)
    assert len(np.unique(ref.best_alphas_)) > 1  # the per-voxel choice is exercised
    np.testing.assert_allclose(model.best_alphas_, ref.best_alphas_, rtol=1e-6)
    x_new = rng.standard_normal((8, 12))
    tol = 1e-8 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(model.predict(x_new.astype(dtype)), ref.predict(scaler.transform(x_new)), atol=tol)
    # Against brainnet's own direct path (predictions formed for every alpha): the same errors.
    gram_errors = basis.inner_errors(y.astype(dtype))
    old = _ridge._GRAM_ROWS_PER_RANK
    try:
        _ridge._GRAM_ROWS_PER_RANK = 10**9
        direct_errors = _ridge.RidgeBasis(x.astype(dtype), np.asarray(DEFAULT_ALPHAS), inner=5).inner_errors(y.astype(dtype))
    finally:
        _ridge._GRAM_ROWS_PER_RANK = old
    np.testing.assert_allclose(gram_errors, direct_errors, rtol=1e-10 if dtype == np.float64 else 1e-5)
