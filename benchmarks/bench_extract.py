"""Benchmark: brainnet's EmoNet extraction vs a plain eager PyTorch implementation.

Run ``python benchmarks/bench_extract.py [--quick]``. Each line prints: task,
brainnet figure, reference figure (same run), ratio, and whether the fc8
outputs agree (max abs diff). The reference network is written here with
``torch.nn.functional`` (torch's own LRN), fed by sequential Pillow decoding;
it uses the same untrained weights as brainnet. The compute limit is
1.44 GFLOP per image divided by the float32 matrix-multiply rate measured
in this run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from brainnet.extract import extract_activations
from brainnet.models.weights import load_emonet, untrained_state_dict
from brainnet.stimuli import demo_stimuli

GFLOP_PER_IMAGE = 1.44
MEAN = np.array([123.68, 116.78, 103.94], dtype=np.float32)[:, None, None]


def eager_forward(w: dict, x: torch.Tensor) -> torch.Tensor:
    """EmoNet fc8 with plain functional ops (torch LRN, no hooks, no tricks)."""
    def lrn(h):
        return F.local_response_norm(h, 5, alpha=1e-4, beta=0.75, k=1.0)

    h = F.max_pool2d(lrn(F.relu(F.conv2d(x, w["conv1.0.weight"], w["conv1.0.bias"], stride=4))), 3, 2)
    h = F.max_pool2d(lrn(F.relu(F.conv2d(h, w["conv2.0.weight"], w["conv2.0.bias"], padding=2, groups=2))), 3, 2)
    h = F.relu(F.conv2d(h, w["conv3.0.weight"], w["conv3.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, w["conv4.0.weight"], w["conv4.0.bias"], padding=1, groups=2))
    h = F.max_pool2d(F.relu(F.conv2d(h, w["conv5.0.weight"], w["conv5.0.bias"], padding=1, groups=2)), 3, 2)
    h = F.relu(F.linear(h.flatten(1), w["fc6.1.weight"], w["fc6.1.bias"]))
    h = F.relu(F.linear(h, w["fc7.0.weight"], w["fc7.0.bias"]))
    return F.linear(h, w["fc8.0.weight"], w["fc8.0.bias"])


def eager_load(path: Path) -> np.ndarray:
    img = Image.open(path).convert("RGB").resize((227, 227), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) - MEAN


def eager_extract(w: dict, files, batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(files), batch_size):
            x = torch.from_numpy(np.stack([eager_load(f) for f in files[start : start + batch_size]]))
            out.append(eager_forward(w, x).numpy())
    return np.concatenate(out)


def matmul_gflops(seconds: float = 1.0) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return n * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def line(task, ours, ref, unit, agree=""):
    print(f"{task:<58} brainnet {ours:8.1f} {unit:<6} reference {ref:8.1f} {unit:<6} ratio {ours / ref:5.2f}  {agree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 images instead of 112")
    args = parser.parse_args()
    n = 32 if args.quick else 112
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRAINNET_HOME"] = tmp  # empty cache: the first run computes everything
        stim = demo_stimuli(n, Path(tmp) / "images")
        weights = untrained_state_dict(0)
        from brainnet.extract import _busy_machine

        busy = _busy_machine()
        print(f"# {n} images, torch {torch.__version__}, untrained-seed0; reference uses {torch.get_num_threads()} "
              f"threads, brainnet {1 if busy else torch.get_num_threads()} (machine busy: load {os.getloadavg()[0]:.1f})")

        ref1, t_ref1 = timed(lambda: eager_extract(weights, stim.files, 1))
        ref32, t_ref32 = timed(lambda: eager_extract(weights, stim.files, 32))
        feats, t_ours = timed(lambda: extract_activations(stim, layers=["fc8"], batch_size=32))
        cached, t_cached = timed(lambda: extract_activations(stim, layers=["fc8"], batch_size=32))
        model, _ = load_emonet(seed=0)
        warm, t_warm = timed(lambda: extract_activations(stim, model, layers=["fc8"], batch_size=32, cache=False))
        fc8 = feats.layer("fc8")

        def agree(ref):
            diff = float(np.abs(fc8 - ref).max())
            return f"agree={'yes' if diff < 1e-3 * max(1.0, np.abs(ref).max()) else 'NO'} (max abs diff {diff:.1e})"

        # brainnet's time includes building the untrained weights (~1 s); the reference gets them for free
        line("extract fc8 vs eager batch-1", n / t_ours, n / t_ref1, "img/s", agree(ref1))
        line("extract fc8 vs eager naive batch-32", n / t_ours, n / t_ref32, "img/s", agree(ref32))
        line("extract fc8, model preloaded, no cache, vs eager batch-32", n / t_warm, n / t_ref32, "img/s",
             f"agree={'yes' if np.abs(warm.layer('fc8') - ref32).max() < 1e-3 else 'NO'}")
        line("cached rerun vs eager batch-1", n / t_cached, n / t_ref1, "img/s",
             f"agree={'yes' if np.array_equal(cached.layer('fc8'), fc8) else 'NO'} (bitwise vs first run)")
        gflops = matmul_gflops()
        limit = gflops / GFLOP_PER_IMAGE
        print(f"{'compute limit (sgemm ' + f'{gflops:.0f} GFLOP/s / 1.44 GFLOP)':<58} {limit:8.1f} img/s; "
              f"brainnet reaches {n / t_ours / limit:.0%}, eager batch-1 {n / t_ref1 / limit:.0%}")


if __name__ == "__main__":
    main()
