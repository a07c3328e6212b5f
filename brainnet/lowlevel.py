"""Low-level control features computed from the stimulus images themselves.

So that "what does the network explain beyond low-level vision?" is one
command (``brainnet partition --controls pixels,gabor``), brainnet ships two
image descriptors, registered in :data:`CONTROLS`:

- ``pixels``: the image as EmoNet sees it (227 x 227 RGB), block-averaged to
  a 16 x 16 luminance thumbnail (256 values) plus colour statistics (mean,
  standard deviation of R, G, B and of the two opponent channels R-G and
  B-Y; 10 values): 266 features.
- ``gabor``: a GIST-like Gabor-energy descriptor (Oliva & Torralba 2001):
  the luminance image (128 x 128, mean removed) filtered by a bank of
  log-Gabor-like Gaussian filters in the frequency domain at 4 scales x 8
  orientations; the energy (modulus) of each filtered image averaged over a
  4 x 4 grid of windows: 512 features.

Written with numpy/scipy only (an FFT per image and scale bank) rather than
taking a dependency: no maintained Python package ships GIST; the whole
``gabor`` set for 112 images takes about a second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError

__all__ = ["CONTROLS", "pixel_features", "gabor_features", "control_features"]


def _rgb(paths: Sequence[Path]) -> np.ndarray:
    """Images as ``(n, 3, 227, 227)`` float32 RGB on 0..255 (brainnet's decoding and resizing)."""
    from brainnet.stimuli import decode_image

    zero = np.zeros((3, 1, 1), dtype=np.float32)
    out = np.empty((len(paths), 3, 227, 227), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = decode_image(Path(path).read_bytes(), path, zero)
    return out


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]


def _block_mean(images: np.ndarray, blocks: int) -> np.ndarray:
    """Average ``(n, h, w)`` over a ``blocks x blocks`` grid (edges split as evenly as possible)."""
    n, h, w = images.shape
    rows = np.array_split(np.arange(h), blocks)
    cols = np.array_split(np.arange(w), blocks)
    out = np.empty((n, blocks, blocks), dtype=np.float64)
    for a, r in enumerate(rows):
        strip = images[:, r[0] : r[-1] + 1].mean(axis=1)
        for b, c in enumerate(cols):
            out[:, a, b] = strip[:, c[0] : c[-1] + 1].mean(axis=1)
    return out


def pixel_features(rgb: np.ndarray) -> np.ndarray:
    """16 x 16 luminance thumbnail and colour statistics.

    Parameters
    ----------
    rgb : ndarray of shape (n_images, 3, height, width)

    Returns
    -------
    ndarray of shape (n_images, 266)
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    thumb = _block_mean(_luminance(rgb), 16).reshape(len(rgb), -1)
    rg = rgb[:, 0] - rgb[:, 1]
    by = rgb[:, 2] - (rgb[:, 0] + rgb[:, 1]) / 2
    channels = [rgb[:, 0], rgb[:, 1], rgb[:, 2], rg, by]
    stats = [f(c.reshape(len(rgb), -1), axis=1) for c in channels for f in (np.mean, np.std)]
    return np.column_stack([thumb, *stats])


def _gabor_bank(size: int, scales: int, orientations: int) -> np.ndarray:
    """Frequency-domain filters ``(scales * orientations, size, size)`` (GIST's Gaussian bank)."""
    f = np.fft.fftfreq(size)
    fx, fy = np.meshgrid(f, f, indexing="xy")
    radius = np.sqrt(fx**2 + fy**2)
    angle = np.arctan2(fy, fx)
    bank = []
    for s in range(scales):
        centre = 0.25 / 2**s  # cycles per pixel: 0.25, 0.125, ...
        sigma_f = 0.55  # bandwidth in octaves (log-radial Gaussian)
        with np.errstate(divide="ignore"):
            radial = np.exp(-(np.log(radius / centre) ** 2) / (2 * sigma_f**2))
        radial[0, 0] = 0.0
        for o in range(orientations):
            theta = np.pi * o / orientations
            delta = np.angle(np.exp(1j * (angle - theta)))  # wrapped to (-pi, pi]
            angular = np.exp(-(delta**2) / (2 * (np.pi / orientations) ** 2))  # one-sided: quadrature pair
            bank.append(radial * angular)
    return np.stack(bank)


def gabor_features(rgb: np.ndarray, scales: int = 4, orientations: int = 8, blocks: int = 4) -> np.ndarray:
    """GIST-like Gabor energy in a grid of windows.

    Parameters
    ----------
    rgb : ndarray of shape (n_images, 3, height, width)
    scales, orientations, blocks : int

    Returns
    -------
    ndarray of shape (n_images, scales * orientations * blocks * blocks)
    """
    from scipy import fft
    from scipy.ndimage import zoom

    lum = _luminance(np.asarray(rgb, dtype=np.float64))
    size = 128
    lum = zoom(lum, (1, size / lum.shape[1], size / lum.shape[2]), order=1)[:, :size, :size]
    lum = lum - lum.mean(axis=(1, 2), keepdims=True)
    bank = _gabor_bank(size, scales, orientations)
    spectra = fft.fft2(lum)  # (n, size, size)
    out = []
    for filt in bank:
        energy = np.abs(fft.ifft2(spectra * filt))  # complex response of a one-sided filter: energy
        out.append(_block_mean(energy, blocks).reshape(len(lum), -1))
    return np.column_stack(out)


#: Control feature sets: name -> function of ``(n, 3, 227, 227)`` RGB images.
CONTROLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pixels": pixel_features,
    "gabor": gabor_features,
}


def control_features(stimuli: Any, names: Sequence[str] | str = ("pixels",)):
    """Low-level feature sets of a stimulus set, as one :class:`~brainnet.features.Features`.

    Parameters
    ----------
    stimuli : StimulusSet
    names : sequence of str or comma-separated str
        Keys of :data:`CONTROLS`.

    Returns
    -------
    Features
        One "layer" per control, ``(n_stimuli, n_features)``; provenance
        records the image checksums and the descriptor names.
    """
    from brainnet.features import Features
    from brainnet.results import sha256_file

    names = [s.strip() for s in names.split(",")] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in CONTROLS]
    if unknown or not names:
        raise BrainnetError(
            f"--controls {','.join(unknown) or '(none)'}: unknown control features; use one or more of "
            f"{', '.join(CONTROLS)}"
        )
    rgb = _rgb(stimuli.files)
    layers = {name: CONTROLS[name](rgb).astype(np.float32) for name in names}
    provenance = {
        "model": "lowlevel",
        "weights": None,
        "controls": names,
        "images_sha256": {sid: sha256_file(f) for sid, f in zip(stimuli.ids, stimuli.files, strict=True)},
    }
    return Features(stimulus_ids=tuple(stimuli.ids), layers=layers, provenance=provenance)
