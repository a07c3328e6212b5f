"""Condition-label permutation test of network-vs-human RSA: brainnet vs a scipy loop.

Design of the paper's study: 18 subjects + the network (19 "subjects"),
112 stimuli, Spearman comparison of correlation-distance RDMs, 10,000
permutations of the network RDM's stimulus labels. The reference is the
straightforward loop: permute the network RDM, call ``scipy.stats.spearmanr``
against each subject, average. The loop is timed on a subset of the same
permutations and scaled to the full count (said so in the output); both
nulls are compared on the permutations both ran.

Usage: python benchmarks/bench_rsa.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats
from scipy.spatial.distance import squareform

from brainnet.permutation import permutation_indices
from brainnet.rsa import compute_rdm, rsa_network_subject


def _data(n_subjects: int, n_stimuli: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_stimuli, 8))
    humans = np.array(
        [
            compute_rdm(
                latent @ rng.normal(size=(8, 300)) + 2.0 * rng.normal(size=(n_stimuli, 300))
            ).vector
            for _ in range(n_subjects)
        ]
    )
    network = compute_rdm(latent @ rng.normal(size=(8, 20)) + rng.normal(size=(n_stimuli, 20)))
    return humans, network.vector


def _loop_null(humans: np.ndarray, network: np.ndarray, perms: np.ndarray) -> np.ndarray:
    square = squareform(network)
    out = np.empty(len(perms))
    for k, perm in enumerate(perms):
        permuted = squareform(square[np.ix_(perm, perm)], checks=False)
        out[k] = np.mean([stats.spearmanr(permuted, h).statistic for h in humans])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 permutations, loop on 50")
    args = parser.parse_args()
    n_subjects, n_stimuli, seed = 18, 112, 0
    n_perm = 1_000 if args.quick else 10_000
    n_loop = 50 if args.quick else 200
    humans, network = _data(n_subjects, n_stimuli)

    t0 = time.perf_counter()
    res = rsa_network_subject(
        humans, {"fc8": network}, n_permutations=n_perm, n_bootstrap=0, seed=seed
    )
    t_brainnet = time.perf_counter() - t0
    null = res.layers["fc8"].null

    perms = permutation_indices(n_stimuli, 0, n_loop, seed)
    t0 = time.perf_counter()
    loop = _loop_null(humans, network, perms)
    t_loop_subset = time.perf_counter() - t0
    t_loop = t_loop_subset * n_perm / n_loop
    observed = np.mean([stats.spearmanr(network, h).statistic for h in humans])

    max_diff = float(np.max(np.abs(null[:n_loop] - loop)))
    p_ours = (1 + np.sum(null[:n_loop] >= res.layers["fc8"].network_human_r)) / (1 + n_loop)
    p_loop = (1 + np.sum(loop >= observed)) / (1 + n_loop)
    agree = max_diff < 1e-10 and p_ours == p_loop
    print(
        f"# {n_subjects} subjects + network, {n_stimuli} stimuli, {n_perm} condition-label "
        f"permutations; scipy loop timed on {n_loop} permutations ({t_loop_subset:.2f} s) and "
        "scaled linearly"
    )
    print("task\tbrainnet_s\treference_s\tratio\tagree")
    print(
        f"rsa_permutations_{n_perm}\t{t_brainnet:.3f}\t{t_loop:.1f}\t{t_loop / t_brainnet:.0f}x\t"
        f"{'yes' if agree else 'NO'} (max |null diff| {max_diff:.1e} on {n_loop} shared "
        f"permutations; p {p_ours:.4f} vs {p_loop:.4f})"
    )
    print(f"# brainnet p = {res.layers['fc8'].p_value:.5f} from {n_perm} permutations")


if __name__ == "__main__":
    main()
