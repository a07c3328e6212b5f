"""EmoNet architecture, the two public weight layouts, and the read-outs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brainnet.errors import BrainnetError
from brainnet.models.emonet import (
    EMOTIONS,
    LAYER_SHAPES,
    LAYERS,
    EmoNet,
    LocalResponseNorm,
    valence_arousal,
)
from brainnet.models.weights import _convert, detect_format, load_emonet, untrained_state_dict

# Canonical random EmoNet, written by hand here (independently of brainnet's loader):
# conv weights as (out, in/groups, kh, kw); fc6 as a (4096, 256, 6, 6) kernel over conv5's (C, H, W).
CONVS = [  # name, weight shape, stride, padding, groups, lrn, pool
    ("conv1", (96, 3, 11, 11), 4, 0, 1, True, True),
    ("conv2", (256, 48, 5, 5), 1, 2, 2, True, True),
    ("conv3", (384, 256, 3, 3), 1, 1, 1, False, False),
    ("conv4", (384, 192, 3, 3), 1, 1, 2, False, False),
    ("conv5", (256, 192, 3, 3), 1, 1, 2, False, True),
]


@pytest.fixture(scope="module")
def canonical():
    rng = np.random.default_rng(7)

    def he(shape, fan_in):
        return torch.from_numpy((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32))

    w = {}
    for name, shape, *_ in CONVS:
        w[name] = he(shape, np.prod(shape[1:])), torch.from_numpy(rng.normal(0, 0.1, shape[0]).astype(np.float32))
    w["fc6"] = he((4096, 256, 6, 6), 9216), torch.from_numpy(rng.normal(0, 0.1, 4096).astype(np.float32))
    w["fc7"] = he((4096, 4096), 4096), torch.from_numpy(rng.normal(0, 0.1, 4096).astype(np.float32))
    w["fc8"] = he((20, 4096), 4096), torch.from_numpy(rng.normal(0, 0.1, 20).astype(np.float32))
    return w


def emonet_pytorch_layout(w) -> dict:
    """The OSF emonet-pytorch state dict: fc layers as convolutions."""
    state = {}
    for i, (name, *_rest) in enumerate(CONVS):
        state[f"conv_{i}.0.weight"], state[f"conv_{i}.0.bias"] = w[name]
    state["conv_5.0.weight"], state["conv_5.0.bias"] = w["fc6"]
    state["conv_6.0.weight"], state["conv_6.0.bias"] = w["fc7"][0][:, :, None, None], w["fc7"][1]
    state["classifier.0.weight"], state["classifier.0.bias"] = w["fc8"][0][:, :, None, None], w["fc8"][1]
    return state


def matlab_flatten_fc6(kernel: torch.Tensor) -> torch.Tensor:
    """fc1 of emonet-py: column c*36 + w*6 + h holds kernel[:, c, h, w] (MATLAB column-major)."""
    out = torch.empty(4096, 9216)
    for c in range(256):
        for h in range(6):
            for x in range(6):
                out[:, c * 36 + x * 6 + h] = kernel[:, c, h, x]
    return out


def emonet_py_layout(w, fc6_weight=None) -> dict:
    state = {}
    for name, *_rest in CONVS:
        state[f"{name}.weight"], state[f"{name}.bias"] = w[name]
    state["fc1.weight"] = matlab_flatten_fc6(w["fc6"][0]) if fc6_weight is None else fc6_weight
    state["fc1.bias"] = w["fc6"][1]
    state["fc2.weight"], state["fc2.bias"] = w["fc7"]
    state["fc3.weight"], state["fc3.bias"] = w["fc8"]
    return state


def reference_lrn(x, n=5, alpha=1e-4, beta=0.75, k=1.0):
    """Cross-channel LRN written channel by channel (AlexNet/MATLAB formula)."""
    c_total = x.shape[1]
    out = torch.empty_like(x)
    for c in range(c_total):
        lo, hi = max(0, c - n // 2), min(c_total, c + n // 2 + 1)
        ss = (x[:, lo:hi] ** 2).sum(dim=1)
        out[:, c] = x[:, c] / (k + alpha / n * ss) ** beta
    return out


def reference_forward(w, x):
    """Plain functional EmoNet: returns (fc8 logits, probabilities)."""
    h = x
    for name, _shape, stride, pad, groups, lrn, pool in CONVS:
        h = F.relu(F.conv2d(h, *w[name], stride=stride, padding=pad, groups=groups))
        if lrn:
            h = reference_lrn(h)
        if pool:
            h = F.max_pool2d(h, 3, 2)
    h = F.relu(F.conv2d(h, *w["fc6"])).flatten(1)
    h = F.relu(h @ w["fc7"][0].T + w["fc7"][1])
    logits = h @ w["fc8"][0].T + w["fc8"][1]
    return logits, torch.softmax(logits, dim=1)


@pytest.fixture(scope="module")
def weight_files(canonical, tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    pt, py = folder / "emonet_pytorch.pt", folder / "emonet.pth"
    torch.save(emonet_pytorch_layout(canonical), pt)
    torch.save(emonet_py_layout(canonical), py)
    return pt, py


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(3)
    return torch.rand(3, 3, 227, 227, generator=gen) * 255 - 120


def test_both_public_layouts_give_identical_outputs(weight_files, images, canonical):
    pt, py = weight_files
    m_pt, id_pt = load_emonet(pt)
    m_py, id_py = load_emonet(py)
    assert id_pt.startswith("sha256:") and id_py.startswith("sha256:") and id_pt != id_py
    with torch.inference_mode():
        out_pt, out_py = m_pt(images), m_py(images)
        logits_pt, logits_py = m_pt.logits(images), m_py.logits(images)
    assert torch.equal(out_pt, out_py)
    assert torch.equal(logits_pt, logits_py)
    # the flatten order is pinned: emonet-py fc1 in PyTorch (c, h, w) order gives other outputs
    wrong_state, fmt = _convert(py, emonet_py_layout(canonical, fc6_weight=canonical["fc6"][0].reshape(4096, -1)))
    assert fmt == "emonet-py"
    m_wrong = EmoNet().eval()
    m_wrong.load_state_dict(wrong_state)
    with torch.inference_mode():
        assert (m_wrong.logits(images) - logits_py).abs().max() > 1e-3


def test_matches_independent_functional_forward(weight_files, images, canonical):
    model, _ = load_emonet(weight_files[0])
    with torch.inference_mode():
        ref_logits, ref_prob = reference_forward(canonical, images)
        logits, prob = model.logits(images), model(images)
    scale = ref_logits.abs().max()
    assert scale > 1.0  # a non-trivial network output
    assert (logits - ref_logits).abs().max() <= 1e-4 * scale
    torch.testing.assert_close(prob, ref_prob, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(prob, torch.softmax(logits, dim=1))


def test_brainnet_state_dict_is_a_third_layout(weight_files):
    model, _ = load_emonet(weight_files[1])
    state = model.state_dict()
    assert detect_format(state.keys()) == "brainnet"
    converted, fmt = _convert(weight_files[1], state)
    assert fmt == "brainnet" and all(torch.equal(converted[k], state[k]) for k in state)


def test_lrn_matches_torch_and_reference():
    x = torch.relu(torch.randn(2, 96, 9, 9, generator=torch.Generator().manual_seed(0)) * 60)
    ours = LocalResponseNorm(5, 1e-4, 0.75, 1.0)(x)
    torch.testing.assert_close(ours, torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)(x))
    torch.testing.assert_close(ours, reference_lrn(x))
    assert (ours - x).abs().max() > 1e-2  # the normalisation does something at this scale
    even = LocalResponseNorm(4, 1e-3, 0.6, 2.0)(x)  # even windows are asymmetric: torch's path
    torch.testing.assert_close(even, torch.nn.LocalResponseNorm(4, 1e-3, 0.6, 2.0)(x))


def test_layer_blocks_have_the_published_shapes():
    model, _ = load_emonet(seed=0)
    assert [name for name, _ in model.named_children()] == list(LAYERS)
    h = torch.zeros(2, 3, 227, 227)
    with torch.inference_mode():
        for name in LAYERS:
            h = getattr(model, name)(h)
            assert tuple(h.shape[1:]) == LAYER_SHAPES[name]
    n_conv = sum(np.prod(shape) + shape[0] for _, shape, *_ in CONVS)
    n_fc = 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 20 + 20
    assert sum(p.numel() for p in model.parameters()) == n_conv + n_fc
    assert len(EMOTIONS) == 20 == len(set(EMOTIONS))
    assert EMOTIONS[0] == "Adoration" and EMOTIONS[-1] == "Surprise"


def test_untrained_weights_are_deterministic_and_seeded():
    a, c = untrained_state_dict(0), untrained_state_dict(1)
    assert not torch.equal(a["conv1.0.weight"], c["conv1.0.weight"])
    # He scaling: weight std close to sqrt(2 / fan_in)
    assert a["fc7.0.weight"].std().item() == pytest.approx((2 / 4096) ** 0.5, rel=0.01)
    model, weights_id = load_emonet(seed=0)
    assert weights_id == "untrained-seed0"
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    state = model.state_dict()
    assert all(torch.equal(state[k], a[k]) for k in a)


def test_untrained_weights_identical_in_a_fresh_process():
    code = (
        "import hashlib; from brainnet.models.weights import untrained_state_dict as u; s = u(3); "
        "print(hashlib.sha256(b''.join(s[k].numpy().tobytes() for k in sorted(s))).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import hashlib

    s = untrained_state_dict(3)
    here = hashlib.sha256(b"".join(s[k].numpy().tobytes() for k in sorted(s))).hexdigest()
    assert out.stdout.strip() == here


def test_valence_arousal_is_the_published_linear_readout():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(20), size=6)
    val, aro = valence_arousal(p)
    assert val.shape == aro.shape == (6,)
    eye_v, eye_a = valence_arousal(np.eye(20))
    zero_v, zero_a = valence_arousal(np.zeros((1, 20)))
    # linear in p: value = intercept + sum_k p_k * w_k
    np.testing.assert_allclose(val, zero_v + p @ (eye_v - zero_v))
    np.testing.assert_allclose(aro, zero_a + p @ (eye_a - zero_a))
    idx = {e: i for i, e in enumerate(EMOTIONS)}
    # face validity of the published weights: adoration/joy-type units raise valence over disgust/horror
    assert eye_v[idx["Adoration"]] > eye_v[idx["Disgust"]]
    assert eye_v[idx["Aesthetic Appreciation"]] > eye_v[idx["Horror"]]
    assert eye_a[idx["Awe"]] > eye_a[idx["Boredom"]]
    with pytest.raises(BrainnetError, match=r"give \(n_stimuli, 20\) softmax outputs"):
        valence_arousal(np.ones((3, 19)))


def test_bare_emonet_module_forward_is_softmax_of_logits():
    torch.manual_seed(0)
    model = EmoNet().eval()
    x = torch.randn(2, 3, 227, 227)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), torch.softmax(model.logits(x), dim=1))
