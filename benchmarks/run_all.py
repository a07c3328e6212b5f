"""Run every brainnet benchmark and print one summary table with targets (issue 8).

    python benchmarks/run_all.py            # the issue's sizes everywhere (about 6 minutes on 2 cores)
    python benchmarks/run_all.py --quick    # smaller encoding, decoding and memory runs

Each benchmark script runs in its own process (a fresh process per
benchmark, so one's memory and thread settings cannot affect another); its
full output is echoed, then its result lines are collected into the summary:
task, brainnet figure, reference figure from the same run, ratio, whether
the outputs agree, and the issue's target with PASS/FAIL. A scaling section
then times brainnet's encoding, decoding and RSA at three or more sizes of
voxels, stimuli and permutations and prints the fitted log-log exponent
(time ~ size^k). Everything printed is also written, atomically, to
``benchmarks/results/latest.txt`` (``--out`` to change).

Where a full-size reference would take too long, the scripts time a subset
and scale it linearly (said in each line's notes): the scikit-learn PLS
reference on 2 of the 18 folds of one permutation, the scipy RSA loop on 200
of the 10,000 permutations, the encoding references on 5,000 of the 50,000
voxels (plus a 16-voxel run for their fixed cost). ``--quick`` keeps extraction (112 and 1,000
images) and RSA (10,000 permutations) at full size and shrinks encoding
(5,000 voxels), decoding (1,000 voxels) and memory (600 x 20,000).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

_out_lines: list[str] = []


def say(text: str = "") -> None:
    """Print a line and keep it for the results file."""
    print(text, flush=True)
    _out_lines.append(text)


@dataclass
class Result:
    task: str
    brainnet: str
    reference: str
    ratio: float | None
    agree: str
    target: str = "-"
    passed: bool | None = None

    def line(self) -> str:
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        verdict = "" if self.passed is None else (" PASS" if self.passed else " FAIL")
        return f"{self.task}\t{self.brainnet}\t{self.reference}\t{ratio}\t{self.agree}\t{self.target}{verdict}"


def run_script(name: str, args: list[str], timeout: float) -> list[str]:
    """Run ``benchmarks/<name>`` in a fresh process; echo and return its stdout lines."""
    cmd = [sys.executable, str(HERE / name), *args]
    say(f"## {' '.join([Path(cmd[0]).name, *cmd[1:]])}")
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        stdout, failed = proc.stdout, proc.returncode != 0
        tail = proc.stderr.strip().splitlines()[-3:] if failed else []
    except subprocess.TimeoutExpired as err:
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        failed, tail = True, [f"timed out after {timeout:.0f} s"]
    for text in stdout.splitlines():
        say(f"   {text}")
    for text in tail:
        say(f"   [error] {text}")
    say(f"   ({time.perf_counter() - start:.0f} s)")
    return stdout.splitlines()


def _ratio(text: str) -> float | None:
    match = re.search(r"([\d.]+)x", text)
    return float(match.group(1)) if match else None


def _tab_rows(lines: list[str]) -> list[list[str]]:
    return [t.split("\t") for t in lines if t.count("\t") >= 4 and not t.startswith(("#", "task"))]


def extract_results(lines: list[str]) -> list[Result]:
    out = []
    for task, ours, ref, ratio, agree in (r[:5] for r in _tab_rows(lines)):
        res = Result(task, ours, ref, _ratio(ratio), agree)
        if re.fullmatch(r"extract fc8 \d+ images vs plain eager \(per image\)", task):  # the reference
            res.target = ">= 2.5x, agree"
            res.passed = res.ratio is not None and res.ratio >= 2.5 and agree.startswith("yes")
        elif task.startswith(("fraction of compute limit", "ceiling vs eager")) or "vs eager batch-" in task:
            res.target = "(report only)"
        out.append(res)
    return out


def encoding_results(lines: list[str]) -> list[Result]:
    out = []
    for text in lines:
        if not text.startswith("encoding"):
            continue
        parts = [p.strip() for p in text.split(" | ")]  # " | ": the notes contain "|dr|"
        if parts[0].startswith("encoding vs fastest"):
            ratio = _ratio(parts[2])
            out.append(Result("encoding vs fastest reference", parts[1].replace("brainnet fastest mode ", ""),
                              parts[0].split("(", 1)[1].rstrip(")"), ratio, "see lines above",
                              ">= 2x", ratio is not None and ratio >= 2))
        else:
            ref_name, ref_time = parts[2].rsplit(" ", 2)[0], " ".join(parts[2].rsplit(" ", 2)[1:])
            agree = parts[4].replace("agree=True", "yes").replace("agree=False", "NO")
            out.append(Result(f"{parts[0]} vs {ref_name}", parts[1].replace("brainnet ", ""), ref_time,
                              _ratio(parts[3]), agree, "|dr| < 1e-3", agree.startswith("yes")))
    return out


def decode_results(lines: list[str]) -> list[Result]:
    out = []
    for task, ours, ref, ratio, agree in (r[:5] for r in _tab_rows(lines)):
        res = Result(f"decode {task}", ours, ref, _ratio(ratio), agree)
        if task.startswith("seconds per permutation"):
            res.target = ">= 100x, agree"
            res.passed = res.ratio is not None and res.ratio >= 100 and agree.startswith("True")
        out.append(res)
    return out


def rsa_results(lines: list[str]) -> list[Result]:
    out = []
    for task, ours, ref, ratio, agree in (r[:5] for r in _tab_rows(lines)):
        res = Result(task, f"{ours} s", f"{ref} s", _ratio(ratio), agree, ">= 50x, identical p")
        res.passed = res.ratio is not None and res.ratio >= 50 and agree.startswith("yes")
        out.append(res)
    return out


def memory_results(lines: list[str]) -> list[Result]:
    out = []
    for task, ours, ref, ratio, agree in (r[:5] for r in _tab_rows(lines)):
        value = float(ratio) if re.fullmatch(r"[\d.]+", ratio) else None
        res = Result(f"memory {task}", ours, ref, value, agree)
        if "8 GB limit" in task:
            res.target = "<= 8 GB"
            res.passed = agree == "True"
        out.append(res)
    return out


# ---------------------------------------------------------------- scaling


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _exponent(sizes, seconds) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def _scaling_line(analysis: str, axis: str, sizes, fn, repeats: int, expected: str) -> Result:
    seconds = [_best_time(functools.partial(fn, s), repeats) for s in sizes]
    k = _exponent(sizes, seconds)
    points = ", ".join(f"{s:,}: {t:.2f} s" for s, t in zip(sizes, seconds, strict=True))
    return Result(f"scaling {analysis} time vs {axis}", f"exponent {k:.2f}", f"expected {expected}", None,
                  f"({points})", "(report only)")


def scaling_results(quick: bool) -> list[Result]:
    """Fit time ~ size^k for encoding, decoding and RSA along voxels, stimuli and permutations."""
    from brainnet.encoding import cross_validated_encoding
    from brainnet.permutation import permutation_indices
    from brainnet.pls import CrossValidatedPLS
    from brainnet.rsa import compute_rdm, rsa_network_subject

    rng = np.random.default_rng(0)
    repeats = 1 if quick else 2
    units = 4096

    def encode(n_stimuli, n_voxels):
        x = rng.standard_normal((n_stimuli, units))
        y = x[:, :8] @ rng.standard_normal((8, n_voxels)) + rng.standard_normal((n_stimuli, n_voxels))
        return lambda: cross_validated_encoding(x, y, cv=5, inner="loo", seed=0, n_jobs=1)

    def decode(n_stimuli, n_voxels, n_perm, n_subjects=6):
        groups = np.repeat(np.arange(n_subjects), n_stimuli)
        rows = np.tile(np.arange(n_stimuli), n_subjects)
        feats = rng.standard_normal((n_stimuli, 20))
        x = (feats[rows] @ rng.standard_normal((20, n_voxels)) * 0.2
             + rng.standard_normal((rows.size, n_voxels))).astype(np.float32)
        perms = permutation_indices(n_stimuli, 0, n_perm, seed=0)
        return lambda: CrossValidatedPLS(x, groups, 10).predict_permuted(feats, rows, perms)

    def rsa(n_stimuli, n_voxels, n_perm, n_subjects=18):
        patterns = rng.standard_normal((n_subjects, n_stimuli, n_voxels))
        network = compute_rdm(rng.standard_normal((n_stimuli, 20))).vector

        def run():
            humans = np.array([compute_rdm(p).vector for p in patterns])
            rsa_network_subject(humans, {"fc8": network}, n_permutations=n_perm, n_bootstrap=0, seed=0)

        return run

    # Sizes large enough that fixed costs do not hide the growth.
    vox = [5000, 10000, 20000]
    stim = [56, 112, 224]
    perm_d = [32, 64, 128]
    perm_r = [2500, 5000, 10000]
    d_vox = [1000, 2000, 4000]
    return [
        _scaling_line("encoding", "voxels", vox, lambda v: encode(112, v)(), repeats, "~1 (linear)"),
        _scaling_line("encoding", "stimuli", stim, lambda s: encode(s, vox[0])(), repeats, "1-2 (n^2 Gram)"),
        _scaling_line("decoding", "voxels", d_vox, lambda v: decode(112, v, 32)(), repeats, "<= 1"),
        _scaling_line("decoding", "stimuli", stim, lambda s: decode(s, d_vox[0], 32)(), repeats, "1-3"),
        _scaling_line("decoding", "permutations", perm_d, lambda p: decode(112, d_vox[0], p)(), repeats,
                      "< 1 (fixed cost shared)"),
        _scaling_line("rsa", "voxels", [1000, 4000, 16000], lambda v: rsa(112, v, 1000)(), repeats, "< 1"),
        _scaling_line("rsa", "stimuli", stim, lambda s: rsa(s, 200, 1000)(), repeats, "~2 (pairs)"),
        _scaling_line("rsa", "permutations", perm_r, lambda p: rsa(112, 200, p)(), repeats, "~1"),
    ]


# ---------------------------------------------------------------- main


def plan(quick: bool) -> list[tuple[str, list[str], Callable, float]]:
    extract = [
        ("bench_extract.py", ["--sizes", "112", "--rounds", "2"], extract_results, 600),
        ("bench_extract.py", ["--sizes", "1000", "--rounds", "1"], extract_results, 900),
    ]
    if quick:
        return [
            *extract,
            ("bench_encoding.py", ["--quick"], encoding_results, 600),
            ("bench_decode.py", ["--quick", "--permutations", "64", "--reference-folds", "2"], decode_results, 600),
            ("bench_rsa.py", [], rsa_results, 600),
            ("bench_memory.py", ["--quick", "--no-dask"], memory_results, 600),
        ]
    return [
        *extract,
        ("bench_encoding.py", ["--voxels", "50000", "--reference-voxels", "5000"], encoding_results, 900),
        ("bench_decode.py", ["--permutations", "64", "--reference-folds", "2"], decode_results, 900),
        ("bench_rsa.py", [], rsa_results, 600),
        ("bench_memory.py", ["--no-dask"], memory_results, 1800),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.txt", help="results file")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling section")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    import torch

    from brainnet.results import atomic_write_text, brainnet_version

    say(f"# brainnet {brainnet_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, 1-min load at start {os.getloadavg()[0]:.1f}, "
        f"{'quick' if args.quick else 'full'} mode")
    results: list[Result] = []
    for script, script_args, parse, timeout in plan(args.quick):
        results += parse(run_script(script, script_args, timeout))
    if not args.no_scaling:
        say("## scaling (in this process, best of 1-2 runs per size)")
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # Pure-noise permutations of the decoding sizes sometimes use all PLS iterations; timing is unaffected.
            warnings.simplefilter("ignore", ConvergenceWarning)
            results += scaling_results(args.quick)
    say()
    say("# SUMMARY (ratio > 1: brainnet better; memory ratio = brainnet / limit)")
    say("task\tbrainnet\treference\tratio\tagree\ttarget")
    for res in results:
        say(res.line())
    checked = [r for r in results if r.passed is not None]
    say(f"# {sum(r.passed for r in checked)} of {len(checked)} targets PASS; "
        f"total {time.perf_counter() - started:.0f} s, 1-min load at end {os.getloadavg()[0]:.1f}")
    atomic_write_text(args.out, "\n".join(_out_lines) + "\n")
    print(f"# written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
