"""Benchmark: brainnet's EmoNet extraction vs a plain eager PyTorch implementation.

Run ``python benchmarks/bench_extract.py [--quick]``. Each line prints: task,
brainnet figure, reference figure (same run), ratio, and whether the fc8
outputs agree (max abs diff). The reference network is written here with
``torch.nn.functional`` (torch's own LRN), fed by sequential Pillow decoding;
it uses the same untrained weights as brainnet. The compute limit is
1.44 GFLOP per image divided by the float32 matrix-multiply rate measured
in this run.

Run ``python benchmarks/bench_extract.py [--sizes 112 1000] [--rounds N]``.
Runs are interleaved (reference, brainnet, reference, ...) and the best of
``--rounds`` kept, so a ratio holds when other processes load the machine.
Both sides use the same torch thread count unless ``--threads auto``. The
fair reference is eager *batched* (batch 32); batch 1 is printed too. Note
that the eager batched reference already reaches a large fraction of the
compute limit printed last, which bounds any attainable ratio over it.
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


def best_of(rounds: int, runs: dict) -> dict:
    """Best time of each named run over ``rounds`` rounds, runs interleaved within a round.

    Interleaving makes a ratio robust to other processes loading the machine
    for a while: both sides see the same conditions in each round.
    """
    results, times = {}, {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            results[name], t = timed(fn)
            times[name] = min(times[name], t)
    return {name: (results[name], times[name]) for name in runs}


def relative_diff(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref|."""
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def row(task, ours, ref, unit, agree="-"):
    """One tab-separated result line: task, brainnet, reference, ratio, agree."""
    print(f"{task}\t{ours:.1f} {unit}\t{ref:.1f} {unit}\t{ours / ref:.2f}x\t{agree}", flush=True)


def bench_size(n: int, tmp: Path, weights: dict, rounds: int, batch_size: int, batch1: bool,
               threads: int | None) -> float:
    stim = demo_stimuli(n, tmp / f"images{n}")
    model, _ = load_emonet(seed=0)
    runs = {
        "ref": lambda: eager_extract(weights, stim.files, batch_size),
        "ours": lambda: extract_activations(stim, model, layers=["fc8"], batch_size=batch_size, cache=False,
                                            channels_last=True, n_threads=threads).layer("fc8"),
    }
    if batch1:
        runs["ref1"] = lambda: eager_extract(weights, stim.files, 1)
    res = best_of(rounds, runs)
    (ref, t_ref), (ours, t_ours) = res["ref"], res["ours"]
    d = relative_diff(ours, ref)
    agree = f"{'yes' if d < 1e-4 else 'NO'} (max abs diff / max abs {d:.1e})"
    row(f"extract fc8 {n} images vs eager batch-{batch_size}", n / t_ours, n / t_ref, "img/s", agree)
    if batch1:
        ref1, t_ref1 = res["ref1"]
        d1 = relative_diff(ours, ref1)
        row(f"extract fc8 {n} images vs eager batch-1", n / t_ours, n / t_ref1, "img/s",
            f"{'yes' if d1 < 1e-4 else 'NO'} (max abs diff / max abs {d1:.1e})")
    # The whole user call: builds the untrained weights (~1 s) and fills the activation cache.
    first, t_first = timed(lambda: extract_activations(stim, layers=["fc8"], batch_size=batch_size, n_threads=threads))
    cached, t_cached = timed(lambda: extract_activations(stim, layers=["fc8"], batch_size=batch_size))
    row(f"extract fc8 {n} images end to end (incl. building weights) vs eager batch-{batch_size}",
        n / t_first, n / t_ref, "img/s", f"{'yes' if relative_diff(first.layer('fc8'), ref) < 1e-4 else 'NO'}")
    row(f"extract fc8 {n} images cached rerun vs eager batch-{batch_size}", n / t_cached, n / t_ref, "img/s",
        f"{'yes' if np.array_equal(cached.layer('fc8'), first.layer('fc8')) else 'NO'} (bitwise vs first run)")
    return n / t_ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 and 112 images instead of 112 and 1,000")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="numbers of images")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds, best time kept (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads", default="same",
        help="brainnet's torch threads: 'same' as the reference (default; fair comparison) or 'auto' "
             "(brainnet's own choice: 1 when the 1-minute load average >= CPUs, which lags and counts "
             "the reference run itself)",
    )
    args = parser.parse_args()
    threads = torch.get_num_threads() if args.threads == "same" else None
    sizes = args.sizes or ([32, 112] if args.quick else [112, 1000])
    from brainnet.extract import _busy_machine

    load = os.getloadavg()[0]
    print(f"# torch {torch.__version__}, untrained-seed0, batch {args.batch_size}, best of {args.rounds} "
          f"interleaved rounds; reference: {torch.get_num_threads()} threads, sequential decoding, NCHW, "
          f"torch LRN; brainnet: {threads or (1 if _busy_machine() else torch.get_num_threads())} threads "
          f"(1-min load {load:.1f}), channels-last, decoding in a thread", flush=True)
    print("task\tbrainnet\treference\tratio\tagree", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRAINNET_HOME"] = tmp  # empty cache: the first run computes everything
        weights = untrained_state_dict(0)
        rates = [bench_size(n, Path(tmp), weights, args.rounds, args.batch_size, batch1=(k == 0), threads=threads)
                 for k, n in enumerate(sizes)]
    gflops = matmul_gflops()
    limit = gflops / GFLOP_PER_IMAGE
    row(f"fraction of compute limit (sgemm {gflops:.0f} GFLOP/s / {GFLOP_PER_IMAGE} GFLOP per image)",
        max(rates), limit, "img/s")


if __name__ == "__main__":
    main()
