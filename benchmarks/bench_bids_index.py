"""What pybids costs `brainnet betas`: import and indexing time beside one subject's GLM fit.

`brainnet betas` finds runs, events, fMRIPrep brain masks and confounds tables
with pybids (two ``BIDSLayout``: the raw folder and the fMRIPrep folder,
metadata not indexed). This script writes the miniature BIDS + fMRIPrep
dataset of :mod:`brainnet.datasets.miniature`, then times, in one process:
``import bids``, indexing both folders, and estimating one subject's betas
(LSA, the faster method) after the layouts exist, and prints their ratio.

    python benchmarks/bench_bids_index.py                 # 3 subjects x 2 runs
    python benchmarks/bench_bids_index.py --subjects 20   # index cost grows with the files
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    from brainnet.datasets.miniature import simulate_fmriprep_dataset

    with tempfile.TemporaryDirectory() as tmp:
        mini = simulate_fmriprep_dataset(Path(tmp) / "bids", n_subjects=args.subjects, n_runs=args.runs, n_stimuli=16)
        n_files = sum(1 for p in mini.root.rglob("*") if p.is_file())
        assert "bids" not in sys.modules
        t0 = time.perf_counter()
        import bids  # noqa: F401

        t_import = time.perf_counter() - t0
        from brainnet import betas

        t0 = time.perf_counter()
        raw, prep = betas._layouts(mini.root, mini.root / "derivatives" / "fmriprep")
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = betas._plan_subject(raw, prep, mini.root, mini.root / "derivatives" / "fmriprep", "01", mini.task,
                                   Path(tmp) / "study", space=None, method="lsa", confounds="motion24", mask=None,
                                   tr=None, stimulus_column=None, trial_types=None, hrf_model="spm",
                                   noise_model="ar1", n_jobs=1)
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            betas._estimate(plan)
        t_fit = time.perf_counter() - t0
    print(f"miniature dataset: {args.subjects} subjects x {args.runs} runs, {n_files} files")
    print(f"import bids            {t_import:6.2f} s")
    print(f"index raw + fMRIPrep   {t_index:6.2f} s")
    print(f"plan one subject       {t_plan:6.2f} s  (pybids queries, headers, confounds via nilearn)")
    print(f"fit one subject (LSA)  {t_fit:6.2f} s")
    print(f"pybids import + index / one subject's fit = {(t_import + t_index) / t_fit:.2f}")


if __name__ == "__main__":
    main()
