"""Peak memory of naturalistic encoding for an NNDb-sized subject, streamed in voxel chunks.

An NNDb subject is ~5,400 volumes (TR 1 s) x ~200,000 in-brain voxels: 4.3 GB
as float32, 8.6 GB as float64. This benchmark writes synthetic float32 data of
that shape to a ``.npy`` file (without ever holding it in memory), runs
:func:`brainnet.naturalistic.encode_naturalistic` on it as a memory map in a
child process, and reports the child's peak resident memory. It then runs the
same analysis on a local Dask cluster (2 workers) and checks the numbers are
identical to the single-process run.

    python benchmarks/bench_memory.py            # full NNDb shape (~4.3 GB of disk, minutes)
    python benchmarks/bench_memory.py --quick    # 600 volumes x 20,000 voxels

Output, one line per task: task, brainnet figure, reference figure, ratio,
and whether the outputs agree.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LIMIT_GB = 8.0


def _write_bold(path: Path, n_trs: int, n_voxels: int, n_units: int, frame_rate: float, seed: int) -> np.ndarray:
    """Write (n_trs, n_voxels) float32 to ``path`` row block by row block; return the frame features."""
    from brainnet.naturalistic import convolve_frames

    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((int(n_trs * frame_rate), n_units))
    design = convolve_frames(frames, frame_rate, 1.0, n_trs)
    design = (design - design.mean(0)) / design.std(0)
    weights = rng.standard_normal((n_units, 256)) / np.sqrt(n_units)
    signal = design @ weights  # 256 response profiles, tiled over voxels
    header = {"descr": np.dtype(np.float32).str, "fortran_order": False, "shape": (n_trs, n_voxels)}
    censored = rng.choice(n_trs, max(1, n_trs // 100), replace=False)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for t0 in range(0, n_trs, 64):
            t1 = min(n_trs, t0 + 64)
            block = rng.standard_normal((t1 - t0, n_voxels), dtype=np.float32)
            block += np.tile(signal[t0:t1], (1, n_voxels // 256 + 1))[:, :n_voxels].astype(np.float32) * 0.5
            block[np.isin(np.arange(t0, t1), censored)] = 0.0  # censored volumes, as AFNI writes them
            fh.write(np.ascontiguousarray(block).tobytes())
    return frames


def _child(args) -> None:
    """Run one analysis in this (fresh) process; print its peak RSS and save r."""
    from brainnet.naturalistic import encode_naturalistic

    bold = np.load(args.bold, mmap_mode="r")
    frames = np.load(args.frames)
    scheduler = None
    cluster = None
    if args.dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
        scheduler = Client(cluster)
    start = time.perf_counter()
    result = encode_naturalistic(bold, frames, frame_rate=args.frame_rate, tr=1.0, gap_s=30, chunk_size=args.chunk_size, scheduler=scheduler,
                                  n_jobs=1 if args.dask else args.n_jobs)
    seconds = time.perf_counter() - start
    if cluster is not None:
        scheduler.close()
        cluster.close()
    np.save(args.out, result.r)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(json.dumps({"peak_bytes": peak, "seconds": seconds, "n_censored": result.n_censored}))


def _run_child(bold: Path, frames: Path, out: Path, frame_rate: float, chunk_size: int, dask: bool,
               n_jobs: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", "--bold", str(bold), "--frames", str(frames), "--out", str(out),
           "--frame-rate", str(frame_rate), "--chunk-size", str(chunk_size), "--n-jobs", str(n_jobs)]
    cmd += ["--dask"] if dask else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 volumes x 20,000 voxels instead of 5,400 x 200,000")
    parser.add_argument("--trs", type=int, default=None, help="volumes (default 5,400; 600 with --quick)")
    parser.add_argument("--voxels", type=int, default=None, help="voxels (default 200,000; 20,000 with --quick)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask run (it doubles the run time at full size)")
    parser.add_argument("--units", type=int, default=64, help="frame-feature units (default 64, e.g. PCA of fc7)")
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--n-jobs", type=int, default=2,
                        help="chunks in parallel threads in the single-process run (default 2; results do not depend on it)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the synthetic data")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dask", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bold", help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--frame-rate", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    n_trs, n_voxels = (600, 20_000) if args.quick else (5400, 200_000)
    n_trs, n_voxels = args.trs or n_trs, args.voxels or n_voxels
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        frames = _write_bold(tmp / "bold.npy", n_trs, n_voxels, args.units, args.frame_rate, seed=0)
        np.save(tmp / "frames.npy", frames)
        size = n_trs * n_voxels * 4
        print(f"# synthetic subject {n_trs} volumes x {n_voxels} voxels float32 = {size / 1e9:.2f} GB on disk, "
              f"{args.units} units, chunk {args.chunk_size} voxels, single process with {args.n_jobs} chunk threads (written in {time.perf_counter() - t0:.0f} s)")
        single = _run_child(tmp / "bold.npy", tmp / "frames.npy", tmp / "r_single.npy", args.frame_rate, args.chunk_size,
                            dask=False, n_jobs=args.n_jobs)
        r_single = np.load(tmp / "r_single.npy")
        if not args.no_dask:
            dask = _run_child(tmp / "bold.npy", tmp / "frames.npy", tmp / "r_dask.npy", args.frame_rate, args.chunk_size, dask=True)
            r_dask = np.load(tmp / "r_dask.npy")
    peak_gb = single["peak_bytes"] / 1e9
    full_gb = n_trs * n_voxels * 8 / 1e9
    print("task\tbrainnet\treference\tratio\tagree")
    print(f"peak RSS streamed (GB) vs 8 GB limit\t{peak_gb:.2f}\t{LIMIT_GB:.2f}\t{peak_gb / LIMIT_GB:.3f}\t{peak_gb < LIMIT_GB}")
    print(f"peak RSS streamed (GB) vs the data as float64 in memory\t{peak_gb:.2f}\t{full_gb:.2f}\t{peak_gb / full_gb:.3f}\t{peak_gb < full_gb}")
    print(f"single-process time (s), {args.n_jobs} threads\t{single['seconds']:.1f}\t-\t-\t-")
    if args.no_dask:
        return 0 if peak_gb < LIMIT_GB else 1
    print(f"peak RSS Dask 2 workers (GB) vs single process\t{dask['peak_bytes'] / 1e9:.2f}\t{peak_gb:.2f}\t{dask['peak_bytes'] / single['peak_bytes']:.3f}\t{dask['peak_bytes'] / 1e9 < LIMIT_GB}")
    same = bool(np.array_equal(r_single, r_dask, equal_nan=True))
    print(f"time (s) Dask 2 workers vs single process, r identical\t{dask['seconds']:.1f}\t{single['seconds']:.1f}\t{dask['seconds'] / single['seconds']:.2f}\t{same}")
    print(f"# censored volumes found: {single['n_censored']}; mean r over voxels: {np.nanmean(r_single):.3f}")
    return 0 if same and peak_gb < LIMIT_GB else 1


if __name__ == "__main__":
    sys.exit(main())
