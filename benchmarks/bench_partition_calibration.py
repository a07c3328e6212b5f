"""Calibration of partition's unique-part test on null studies, both nulls side by side.

    python benchmarks/bench_partition_calibration.py [--studies 200] [--shared 0.4]

Simulates studies where space b explains no unique variance (50 stimuli,
5 voxels; b shares its latent sources with a, or not), runs
``variance_partition`` with 49 permutations, and prints the share of studies
rejecting at alpha = .05 (first voxel's p and FWE p over voxels) for
brainnet's Freedman-Lane null and for permuting all of b's rows (the former
test, reproduced by switching off the smoother). Figures quoted in the README
and the partition module come from this script.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import brainnet.partition as partition


def _simulate(rng, n, n_vox, f_shared, b_shares, f_a=0.15, f_b=0.0, d=3, p=20):
    """The generator of tests/test_partition.py (same draws, so the same studies)."""
    s, ua, ub = (rng.standard_normal((n, d)) for _ in range(3))
    b_source = s if b_shares else rng.standard_normal((n, d))
    xa = np.hstack([s, ua]) @ rng.standard_normal((2 * d, p))
    xb = np.hstack([b_source, ub]) @ rng.standard_normal((2 * d, p))

    def component(z):
        w = rng.standard_normal((d, n_vox))
        return z @ (w / np.linalg.norm(w, axis=0))

    y = (np.sqrt(f_shared) * component(s) + np.sqrt(f_a) * component(ua) + np.sqrt(f_b) * component(ub)
         + np.sqrt(1 - f_shared - f_a - f_b) * rng.standard_normal((n, n_vox)))
    return {"a": xa, "b": xb}, y


def _rates(n_studies: int, f_shared: float, b_shares: bool) -> tuple[float, float]:
    fwe = first = 0
    with threadpool_limits(1):
        for study in range(n_studies):
            spaces, y = _simulate(np.random.default_rng(700 + study), 50, 5, f_shared, b_shares)
            res = partition.variance_partition(spaces, y, n_permutations=49, seed=study, test=["b"],
                                               n_iter=8, inner_cv=3)
            fwe += bool((res.table["unique_b_p_fwe"] <= 0.05).any())
            first += bool(res.table["unique_b_p"].iloc[0] <= 0.05)
    return first / n_studies, fwe / n_studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--shared", type=float, default=0.4)
    args = parser.parse_args()
    freedman_lane = partition._smoother
    for b_shares in (True, False):
        for name, smoother in (("brainnet (Freedman-Lane)", freedman_lane),
                               ("all rows permuted", lambda held, tested: np.zeros_like(held))):
            partition._smoother = smoother
            start = time.process_time()
            first, fwe = _rates(args.studies, args.shared, b_shares)
            print(f"b shares variance with a: {b_shares!s:5}  {name:25}  first voxel {first:.3f}  "
                  f"FWE {fwe:.3f}  ({args.studies} studies, {time.process_time() - start:.0f} CPU s)")
    partition._smoother = freedman_lane


if __name__ == "__main__":
    main()
