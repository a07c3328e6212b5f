"""EmoNet (Kragel et al. 2019): AlexNet with grouped convolutions and LRN, 20 emotion outputs.

The module mirrors the MATLAB network layer by layer. Each named child block
(``conv1`` ... ``conv5``, ``fc6``, ``fc7``, ``fc8``) outputs that layer's
activation as the paper used it:

=======  ==========================================================  ==============
block    operations                                                  output
=======  ==========================================================  ==============
conv1    conv 11x11/4, 3->96; ReLU; LRN(5, 1e-4, 0.75, 1); maxpool   96 x 27 x 27
conv2    conv 5x5 pad 2, groups 2, 96->256; ReLU; LRN; maxpool       256 x 13 x 13
conv3    conv 3x3 pad 1, 256->384; ReLU                              384 x 13 x 13
conv4    conv 3x3 pad 1, groups 2, 384->384; ReLU                    384 x 13 x 13
conv5    conv 3x3 pad 1, groups 2, 384->256; ReLU; maxpool 3/2       256 x 6 x 6
fc6      flatten (PyTorch C, H, W order); linear 9216->4096; ReLU    4096
fc7      linear 4096->4096; ReLU                                     4096
fc8      linear 4096->20 (before softmax)                            20
=======  ==========================================================  ==============

``forward`` returns the softmax of fc8 (the MATLAB ``prob`` layer).

torchvision's AlexNet is not used: it has no grouped convolutions, no LRN and
different channel counts, so it cannot hold EmoNet's weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["EMOTIONS", "LAYERS", "EmoNet", "valence_arousal"]

EMOTIONS: tuple[str, ...] = (
    "Adoration",
    "Aesthetic Appreciation",
    "Amusement",
    "Anxiety",
    "Awe",
    "Boredom",
    "Confusion",
    "Craving",
    "Disgust",
    "Empathic Pain",
    "Entrancement",
    "Excitement",
    "Fear",
    "Horror",
    "Interest",
    "Joy",
    "Romance",
    "Sadness",
    "Sexual Desire",
    "Surprise",
)

LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")

# Shape of each layer's activation for one 3 x 227 x 227 image.
LAYER_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1": (96, 27, 27),
    "conv2": (256, 13, 13),
    "conv3": (384, 13, 13),
    "conv4": (384, 13, 13),
    "conv5": (256, 6, 6),
    "fc6": (4096,),
    "fc7": (4096,),
    "fc8": (20,),
}

INPUT_SIZE = 227

# MATLAB's crossChannelNormalizationLayer and torch's LocalResponseNorm both
# divide alpha by the window size, so the MATLAB parameters carry over as is.
_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}

# Published linear read-outs from the 20 softmax outputs (Kragel et al. 2019).
_VALENCE_INTERCEPT = 3.2963
_VALENCE_W = np.array(
    [0.5990, 0.4576, 0.3248, -0.0634, 0.0035, 0.0560, 0.1163, -0.1370, -0.7719, -0.1210,
     -0.1862, 0.0214, -0.3015, -0.3680, 0.2467, -0.2335, 0.1096, -0.3858, 0.1538, 0.5741]
)
_AROUSAL_INTERCEPT = 6.5139
_AROUSAL_W = np.array(
    [-0.0910, -0.0121, -0.3154, 0.0152, 0.3949, -0.2019, -0.1216, -0.1029, 0.0637, 0.0037,
     -0.1700, 0.0736, 0.2145, 0.1670, -0.2425, -0.0555, 0.1480, 0.1390, 0.1877, -0.0824]
)


#: Elements per slab of the channels-last LRN (~1 MB of float32): each slab's
#: passes stay in a core's L2 cache instead of streaming the whole tensor.
_LRN_SLAB_ELEMENTS = 1 << 18


class LocalResponseNorm(nn.LocalResponseNorm):
    """Cross-channel LRN, same formula as :class:`torch.nn.LocalResponseNorm`.

    ``b_c = a_c / (k + alpha/n * sum_{c' in window(c)} a_c'^2) ** beta`` with a
    window of ``n`` channels centred on ``c`` (zero-padded at the ends).
    torch's version pads and pools the squares with ``avg_pool3d``, the
    slowest step of EmoNet on CPU; adding shifted channel slices in place
    gives the same values (to float rounding) in about half the time, and
    ``beta = 0.75`` is applied as ``rsqrt(s * sqrt(s))`` instead of ``pow``.
    A channels-last input (``x.is_contiguous(memory_format=torch.channels_last)``,
    as :func:`brainnet.extract.extract_activations` runs it) has every pixel's
    channels contiguous: it is normalised in slabs of pixels small enough
    for the CPU cache, so the ten or so elementwise passes of the formula
    read cache instead of memory (about 2x faster than whole-tensor passes
    or a banded matrix product on EmoNet's conv1 and conv2 outputs).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or self.size % 2 == 0:
            return super().forward(x)
        if x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
            n, c, h, w = x.shape
            rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view: channels-last memory
            out = torch.empty_like(rows)
            step = max(1, _LRN_SLAB_ELEMENTS // c)
            for start in range(0, rows.shape[0], step):
                self._normalise_channels(rows[start : start + step], dim=1, out=out[start : start + step])
            return out.reshape(n, h, w, c).permute(0, 3, 1, 2)
        return self._normalise_channels(x, dim=1)

    def _normalise_channels(self, x: torch.Tensor, dim: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """LRN of ``x`` across ``dim`` (written to ``out`` when given)."""
        sq = x * x
        window = sq.clone()
        n = x.shape[dim]
        for d in range(1, min(self.size // 2, n - 1) + 1):  # channels beyond the ends are zero padding
            window.narrow(dim, d, n - d).add_(sq.narrow(dim, 0, n - d))
            window.narrow(dim, 0, n - d).add_(sq.narrow(dim, d, n - d))
        scale = window.mul_(self.alpha / self.size).add_(self.k)
        if self.beta == 0.75:
            # s ** -0.75 == rsqrt(s * sqrt(s)): two cheap passes instead of pow's exp/log
            torch.rsqrt(scale.mul_(scale.sqrt()), out=scale)
        else:
            scale.pow_(-self.beta)
        return scale.mul_(x) if out is None else torch.mul(scale, x, out=out)


def _conv_block(
    c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0, groups: int = 1,
    lrn: bool = False, pool: bool = False,
) -> nn.Sequential:
    ops: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups),
        nn.ReLU(inplace=True),  # saves a pass over the largest tensors; hooks clone what they capture
    ]
    if lrn:
        ops.append(LocalResponseNorm(**_LRN))
    if pool:
        ops.append(nn.MaxPool2d(kernel_size=3, stride=2))
    return nn.Sequential(*ops)


class EmoNet(nn.Module):
    """EmoNet: AlexNet (MATLAB variant) fine-tuned to 20 emotion categories.

    Parameters
    ----------
    n_outputs : int
        Number of output units (20 for EmoNet).

    Notes
    -----
    Input: ``(batch, 3, 227, 227)`` float images on the 0..255 scale with the
    mean image subtracted (see :func:`brainnet.stimuli.preprocess_image`).
    Output: ``(batch, n_outputs)`` softmax probabilities. Register forward hooks
    on the named blocks (``model.fc8``...) to read activations; that is what
    :func:`brainnet.extract.extract_activations` does.
    Parameters are created uninitialised-random by torch; use
    :func:`brainnet.models.weights.load_emonet` for real or seeded weights.
    """

    def __init__(self, n_outputs: int = len(EMOTIONS)) -> None:
        super().__init__()
        self.conv1 = _conv_block(3, 96, 11, stride=4, lrn=True, pool=True)
        self.conv2 = _conv_block(96, 256, 5, padding=2, groups=2, lrn=True, pool=True)
        self.conv3 = _conv_block(256, 384, 3, padding=1)
        self.conv4 = _conv_block(384, 384, 3, padding=1, groups=2)
        self.conv5 = _conv_block(384, 256, 3, padding=1, groups=2, pool=True)
        self.fc6 = nn.Sequential(nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True))
        self.fc7 = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(inplace=True))
        self.fc8 = nn.Sequential(nn.Linear(4096, n_outputs))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """fc8 activations (before softmax), shape ``(batch, n_outputs)``."""
        for name in LAYERS:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities, shape ``(batch, n_outputs)``."""
        return torch.softmax(self.logits(x), dim=1)


def valence_arousal(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The valence and arousal read-outs published with EmoNet.

    Parameters
    ----------
    probabilities : ndarray of shape (n_stimuli, 20)
        Softmax outputs of EmoNet, units in :data:`EMOTIONS` order.

    Returns
    -------
    valence, arousal : ndarray of shape (n_stimuli,)
        ``intercept + probabilities @ w`` with the published weights.
    """
    from brainnet.errors import BrainnetError

    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != len(EMOTIONS):
        raise BrainnetError(
            f"valence_arousal: probabilities have shape {p.shape}; give (n_stimuli, 20) "
            "softmax outputs of EmoNet (the model output, not fc8)"
        )
    return _VALENCE_INTERCEPT + p @ _VALENCE_W, _AROUSAL_INTERCEPT + p @ _AROUSAL_W
