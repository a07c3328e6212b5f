"""Write the notebooks of this folder from the cell sources below.

The notebooks are generated so that their code stays reviewable as plain
Python; after editing, run ``python notebooks/build_notebooks.py --execute``:
it runs every notebook (in a temporary folder) and saves it with its outputs,
figures inline, which is how they are committed. Without ``--execute`` only the
cell sources are written. The test suite executes every ``.ipynb`` here top to
bottom and checks that their cell sources match this file
(tests/test_notebooks.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str):
    return new_code_cell(text.strip())


QUICKSTART = [
    md("""
# brainnet quick start

This notebook runs brainnet's main analyses on the **embedded study**: a simulated
18-subject x 112-image study that brainnet generates offline on first use
(procedural images, occipital-cortex single-trial betas driven by EmoNet features
through a known linear map). No download and no weights file are needed; without
`weights=`, brainnet uses deterministic *untrained* EmoNet weights and records
`untrained-seed0` in every result.
"""),
    code("""
import json
from pathlib import Path

import brainnet
from brainnet.study import load_study

study = load_study()  # the embedded study
print(study.root.name)  # under $BRAINNET_HOME/studies
print(len(study.subjects), "subjects,", len(study.stimulus_ids), "stimuli, task", study.task)
"""),
    md("## One subject's data: trials x voxels inside the occipital mask"),
    code("""
sub = study.load_subject("01", mask="occipital")
print(sub.patterns.shape, "(n_trials, n_voxels);", sub.n_dropped, "voxels dropped as NaN/constant")
print(sub.stimulus_ids[:5])
"""),
    md("## Encoding: network features -> every voxel (cross-validated over stimuli)"),
    code("""
out = Path("results")
enc = brainnet.encode_subject(study, "01", layer="fc8", n_permutations=100, out=out, overwrite=True)
print({k: enc.summary[k] for k in ("mean_r", "p_value", "n_voxels", "n_permutations")})
enc.voxel_scores.sort_values("r", ascending=False).head()
"""),
    md("## Decoding: voxels -> the 20 fc8 units, pooled over subjects, leave-one-subject-out (the paper's Fig. 4)"),
    code("""
dec = brainnet.decode_units(study, layer="fc8", n_permutations=100, n_bootstrap=20,
                            n_cluster_draws=50, out=out, overwrite=True)
print({k: dec.summary[k] for k in ("mean_r", "se_r", "cohens_d", "p_value", "noise_ceiling")})
dec.unit_scores.groupby("unit")["r"].mean().sort_values(ascending=False).head()
"""),
    md("## RSA: the network as the 19th subject"),
    code("""
rsa = brainnet.network_as_subject(study, layers=["fc8"], n_permutations=1000, n_bootstrap=100,
                                  out=out, overwrite=True)
s = rsa.summary("fc8")
print({k: s[k] for k in ("network_human_r", "noise_ceiling_lower", "noise_ceiling_upper", "network_rank", "p_value")})
"""),
    md("""
## Figures in the notebook

Every figure function of `brainnet.plotting` takes arrays (or a NIfTI image) and returns a
matplotlib figure. The encoding map is drawn thresholded at the correction the test
reports (voxels with p_FWE < 0.05), on nilearn's MNI template:
"""),
    code("""
%matplotlib inline
from brainnet import plotting

significant = enc.voxel_scores[enc.voxel_scores["p_fwe"] < 0.05]
fig = plotting.plot_brain_map(
    out / "sub-01" / "encode-fc8" / "r_map.nii.gz", kind="glass",
    threshold=significant["r"].min(), two_sided=False,
    value_label="encoding accuracy (Pearson r)",
    title=f"sub-01, fc8: the {len(significant)} voxels with p_FWE < 0.05",
)
"""),
    md("Decoding accuracy of every fc8 unit (mean ± SE over held-out subjects; * p_FWE < 0.05):"),
    code("""
r = dec.unit_scores.pivot(index="subject", columns="unit", values="r")
p_fwe = dec.units.set_index("unit").loc[r.columns, "p_fwe"]
fig = plotting.plot_unit_scores(r.to_numpy(), list(r.columns), p_values=p_fwe, p_label="p_FWE",
                                title="fc8 units decoded from occipital cortex")
"""),
    md("## Every figure and the HTML report, from the saved results only"),
    code("""
from brainnet.plotting import make_figures
from brainnet.report import write_report

figures = make_figures(out, formats=("png",))
manifest = json.loads((out / "figures" / "figures.json").read_text())
print(len(manifest["figures"]), "figures; each has a caption, e.g.:")
print(manifest["figures"][0]["figure"], "-", manifest["figures"][0]["caption"])
report = write_report(out)  # reuses the figures just drawn
print("report:", report)
"""),
    md("Every result folder records what produced it:"),
    code("""
summary = json.loads((out / "group" / "decode-fc8" / "summary.json").read_text())
print(summary["provenance"]["weights"], summary["provenance"]["brainnet_version"], summary["complete"])
"""),
]

PAPER = [
    md("""
# Replicating Kragel et al. (2019), end to end

Kragel, Reddan, LaBar & Wager (2019), *Emotion schemas are embedded in the human
visual system*, Science Advances 5:eaaw4358. This notebook runs the paper's
analyses with brainnet and puts the paper's numbers beside ours.

**Why our numbers differ here.** The paper's fMRI data (18 subjects, 112 IAPS/GAPED
images) are not public, and the real EmoNet weights cannot be downloaded on the
machines that execute this notebook. So this notebook runs on the embedded
*simulated* study with *untrained* EmoNet weights, whose planted signal strength is
a simulator parameter, not a property of the brain. With the real data and weights,
replace the two lines marked `# <- your data` and `# <- real weights`: nothing else
changes.
"""),
    code("""
from pathlib import Path

import pandas as pd

import brainnet
from brainnet.study import load_study

STUDY = None        # <- your data: path to a study folder (see README, "The study format")
WEIGHTS = None      # <- real weights: path to the emonet-pytorch or emonet-py state dict
study = load_study(STUDY)
out = Path("paper_results")
"""),
    md("""
## Analysis 1 - decoding network units from occipital cortex (Fig. 4)

PLS regression predicts the 20 fc8 activations of each image from that image's
occipital pattern; trials of all subjects are pooled; cross-validation is
leave-one-subject-out; scores are Pearson r per held-out subject and unit; the noise
ceiling is the cross-validated / resubstitution ratio; the permutation test shuffles
the image labels identically for all subjects (the paper ran 10,000 permutations;
use `n_permutations=10_000` - brainnet's batched engine makes that minutes, not days).
"""),
    code("""
# add algorithm="simpls" for MATLAB's plsregress, the paper's PLS (default: scikit-learn's NIPALS;
# the two agree on the first component)
dec = brainnet.decode_units(study, layer="fc8", weights=WEIGHTS, n_components=10,
                            n_permutations=200, n_bootstrap=20, n_cluster_draws=50,
                            out=out, overwrite=True)
s = dec.summary
"""),
    md("""
The paper also compared occipital with whole-brain decoding. The same decoding runs on both
regions; the comparison's two permutation tests are explained below the replication table.
"""),
    code("""
contrast = brainnet.contrast_decoding(study, mask="occipital,whole-brain", layers="fc8", weights=WEIGHTS,
                                     n_components=10, n_permutations=100, out=out, overwrite=True)
c = contrast.table.iloc[0]
"""),
    md("""
### The replication table: like with like

Each row gives the paper's number, brainnet's number **under the same definition**, and
whether the two can be compared. Two of the paper's statistics cannot be reproduced from
its text:

- **Cohen's d = 3.00.** With the paper's own mean (.2819), SE (.0163) and 18 subjects,
  every standard definition gives something else (mean/SD 4.08, Hedges' g 3.89, ...;
  `brainnet.stats.paper_d_candidates`), so its definition is unknown. brainnet's
  `cohens_d` (mean/SD over held-out subjects) is shown with the value the paper's own
  numbers give under that definition, and `effect_vs_null`, the effect against the
  permutation null (chance is not 0), is the effect size to read.
- **Occipital vs whole brain (dr = .0155, p = .0404, paired t-test)**: the difference is
  reproduced under the paper's definition (decode's leave-one-subject-out mean r, occipital
  minus whole brain), but not its p. A paired t-test over held-out subjects treats them as
  independent, and they are not: each is predicted by a model fitted on all the others, so
  their differences move together (a sign-flip test of them rejected 21 % of pure-noise
  studies in brainnet's simulations). brainnet's p for "the two regions decode equally well"
  is the side-swap test below, on each subject's own cross-validated decoding: a different
  statistic, so its row is not comparable with the paper's p.
"""),
    code("""
from brainnet.stats import paper_d_candidates

own = paper_d_candidates(0.2819, 0.0163, 18)["mean/sd_ddof1"]
conf_s = dec.confusion.summary
rows = [
    ("mean r", 0.2819, s["mean_r"], "same definition"),
    ("SE of mean r", 0.0163, s["se_r"], "same definition (subjects treated as independent)"),
    ("Cohen's d", 3.00, s["cohens_d"],
     f"not comparable: the paper's definition is unknown; its own mean and SE give {own:.2f} with brainnet's"),
    ("effect vs permutation null", None, s["effect_vs_null"], "not reported by the paper"),
    ("permutation p of mean r", "< .0001", s["p_value"],
     f"same test; smallest possible p here 1/{s['n_permutations'] + 1}"),
    ("% of noise ceiling", 0.7693, s["noise_ceiling"], "same definition (cross-validated / resubstitution r)"),
    ("sensitivity", 0.6667, conf_s["sensitivity"], "same definition (mean over subjects)"),
    ("specificity", 0.9737, conf_s["specificity"], "same definition"),
    ("PPV", 0.6545, conf_s["ppv"], "same definition"),
    ("discriminable clusters", 15, conf_s["n_clusters"],
     "same (same-data) method; clusters tested on held-out subjects: " + str(conf_s["n_clusters_heldout"])),
    ("occipital - whole brain r", 0.0155, c["relabel_difference"],
     "same definition (difference of decode's leave-one-subject-out mean r)"),
    ("p, occipital vs whole brain", 0.0404, None,
     "paired t-test over held-out subjects: not reproduced (they share training data)"),
    ("side-swap p, occipital vs whole brain", None, c["p"],
     f"not the paper's test: within-subject decoding r ({c['stat_a']:.3f} vs {c['stat_b']:.3f}), "
     f"sign flips over {c['n_subjects']} subjects"),
    ("relabelling p, occipital vs whole brain", None, c["p_relabel"],
     "not the paper's test: 'no image information in either region', not 'no difference'"),
]
table = pd.DataFrame(rows, columns=["statistic", "paper", "brainnet (this study)", "comparable?"])
table
"""),
    md("""
### Occipital vs whole brain: two paired permutation tests (replace the paper's paired t-test)

**Side-swap test (`p`, the headline): do the two regions decode equally well?** Each subject's
own cross-validated decoding r (PLS from that subject's voxels to the 20 units, 5 folds over
images) is computed in both regions; under "no difference" the two values of a subject could
be swapped, so the sign of each subject's difference is flipped (random flips from the seed,
or all 2^n when few). `stat_a`, `stat_b`: the regions' mean within-subject r; `difference`
and `t`: the paired difference and its t. Calibrated whether the regions carry no signal or
the same signal (README, statistics section).

**Relabelling test (`relabel_*`, secondary): does either region carry image information?**
decode's leave-one-subject-out mean r (the paper's statistic, so `relabel_difference` is the
paper's delta r) is recomputed in both regions under the **same** relabelling of the images;
`relabel_effect_vs_null` reads the difference against chance. It is exact when neither
region carries information, and its null is not that of "no difference".
"""),
    code("""
contrast.table[["pair", "stat_a", "stat_b", "difference", "t", "p", "relabel_difference",
                "relabel_effect_vs_null", "p_relabel"]]
"""),
    md("""
The paper's best decoded units were Entrancement (.45), Sexual Desire (.45) and
Romance (.39), the worst Horror (.19), Fear (.18) and Excitement (.16). Per unit here:
"""),
    code("""
per_unit = dec.unit_scores.groupby("unit")["r"].mean().sort_values(ascending=False)
per_unit.head(3), per_unit.tail(3)
"""),
    md("""
## Layer profile: conv1 -> fc8, and the network as the 19th subject

The paper repeated the decoding for conv1-conv5, fc6 and fc7. brainnet also places
each layer's representational geometry among the 18 humans (RSA with human noise
ceilings, condition-label permutations, max-statistic correction across layers).
"""),
    code("""
rsa = brainnet.network_as_subject(study, layers=["conv1", "conv5", "fc7", "fc8"], weights=WEIGHTS,
                                  n_permutations=1000, n_bootstrap=100, out=out, overwrite=True)
rsa.profile()
"""),
    md("""
## Analysis 2 - confusions and discriminable clusters (Fig. 4C/D)

Per subject, each cross-validated predicted unit is correlated with each true unit;
the argmax of a row is the decoded category. Ward clustering of the symmetrised
confusions, with binomial tests per cut, gives the number of discriminable clusters
(paper: >= 15, 95 % CI 15-17). That count chooses and tests its clusters on the same
decodings (pure noise gives several), so only its permutation p is a test; brainnet also
finds clusters on half of the subjects and tests them on the other half.
"""),
    code("""
conf = dec.confusion
keys = ("sensitivity", "specificity", "ppv", "n_clusters", "cluster_ci", "cluster_p", "n_clusters_heldout")
print({k: conf.summary[k] for k in keys})
conf.clusters.head(10)
"""),
    md("## Figures as in the paper"),
    code("""
from brainnet.plotting import make_figures

figs = make_figures(out, formats=("png",))
sorted(p.name for p in figs)[:10]
"""),
]

BYO = [
    md("""
# Bring your own stimuli and BIDS + fMRIPrep data

1. Extract EmoNet (or any PyTorch model's) activations for your own images.
2. Turn a BIDS dataset preprocessed by fMRIPrep into single-trial betas in brainnet's study
   format, with fMRIPrep's brain masks and confounds.
3. Run encoding, decoding and RSA on it.

The dataset below is a miniature written by brainnet in fMRIPrep's layout (three subjects,
two runs each, a 6 x 6 x 6 grid) with a planted truth, so that this notebook runs anywhere
in a few minutes; with real data, point the same calls at your folders.
"""),
    md("## 1. Your images -> activations"),
    code("""
from pathlib import Path

import numpy as np
import torch

import brainnet
from brainnet.features import load_features, save_features
from brainnet.simulate import simulated_images

images = Path("my_images")
ids, files, categories = simulated_images(images, 12, seed=1)   # stands in for your own image folder
feats = brainnet.extract_activations(images, layers=["fc7", "fc8"])
print(feats.layer("fc7").shape, feats.provenance["weights"])
save_features(feats, "my_features.npz")
load_features("my_features.npz").layer_names
"""),
    md("Any PyTorch module with named layers works the same way, e.g. your own control network:"),
    code("""
tiny = torch.nn.Sequential()
tiny.add_module("conv", torch.nn.Conv2d(3, 8, 11, stride=8))
tiny.add_module("pool", torch.nn.AdaptiveAvgPool2d(2))
tiny.add_module("flat", torch.nn.Flatten())
tiny.add_module("fc", torch.nn.Linear(32, 5))
torch.manual_seed(0)
mine = brainnet.extract_activations(images, model=tiny, layers=["pool", "fc"])
{name: arr.shape for name, arr in mine.layers.items()}
"""),
    md("""
## 2. A BIDS + fMRIPrep dataset -> single-trial betas

The miniature has what fMRIPrep writes: `*_desc-preproc_bold.nii.gz`, `*_desc-brain_mask.nii.gz`,
`*_desc-confounds_timeseries.tsv` with its JSON sidecar (aCompCor metadata), and the raw tree
with the events. Six voxels respond to each image through a fixed mix of its (untrained)
EmoNet fc8 units; the noise contains motion, aCompCor-like signals, drift and a few
high-motion volumes.
"""),
    code("""
import pandas as pd

mini = brainnet.simulate_fmriprep_dataset("my_bids", n_subjects=3, n_runs=2, seed=0)
bids = mini.root
prep = bids / "derivatives" / "fmriprep" / "sub-01" / "func"
print(sorted(p.name for p in prep.iterdir())[:5])
confounds = pd.read_csv(prep / "sub-01_task-images_run-01_desc-confounds_timeseries.tsv", sep="\\t")
print(confounds.shape[1], "confound columns, e.g.", list(confounds.columns[:6]))
pd.read_csv(bids / "sub-01" / "func" / "sub-01_task-images_run-01_events.tsv", sep="\\t").head(3)
"""),
    md("""
`write_betas_study` (on the command line `brainnet betas --bids my_bids --subject all --task images
--confounds acompcor --out my_study`) finds every subject's runs with pybids, models the voxels
inside fMRIPrep's brain mask, loads the confounds through nilearn's fMRIPrep interface and writes
one beta map per trial. The confound strategies come from one table:
"""),
    code("""
from brainnet.betas import CONFOUND_STRATEGIES

for name, spec in CONFOUND_STRATEGIES.items():
    print(f"{name:10s} {spec['description']}")
"""),
    code("""
study_dir = brainnet.write_betas_study(bids, "all", "images", out="my_study", confounds="acompcor",
                                       method="lsa")   # LSS (the default) fits one model per trial: slower
study = brainnet.load_study(study_dir)
print(study)
"""),
    md("""
Running the same call again reuses finished subjects (a killed run resumes with the subject in
progress); `scheduler=` (or `--scheduler tcp://host:8786`) runs one Dask task per subject.
"""),
    code("""
brainnet.write_betas_study(bids, "all", "images", out="my_study", confounds="acompcor", method="lsa");
"""),
    md("""
## 3. Encoding, decoding and RSA on your study

The analyses take the study folder and a mask; here fMRIPrep's brain mask (all subjects share
one grid, as after normalisation to MNI).
"""),
    code("""
mask = prep / f"sub-01_task-images_run-01_space-{mini.space}_desc-brain_mask.nii.gz"
out = Path("my_results")
enc = brainnet.encode_subjects(study, "all", out, layer="fc8", mask=mask, n_permutations=100, cv=4)
print(enc.table[["subject", "mean_r", "n_voxels_p_fwe_05", "n_voxels"]].to_string(index=False))
scores = pd.read_csv(enc.folders["01"] / "voxel_scores.tsv", sep="\\t")
flat = np.ravel_multi_index((scores["i"], scores["j"], scores["k"]), mini.brain_mask.shape)
top = flat[np.argsort(scores["r"].to_numpy())[::-1][:len(mini.planted)]]
print("six best-predicted voxels of sub-01 are the planted ones:", set(top) == set(mini.planted))
"""),
    code("""
dec = brainnet.decode_units(study, layer="fc8", mask=mask, n_components=4, n_permutations=100,
                            n_bootstrap=0, n_cluster_draws=0, out=out)
print({k: dec.summary[k] for k in ("mean_r", "p_value", "n_subjects")})
"""),
    code("""
rsa = brainnet.network_as_subject(study, layers=["fc8"], mask=mask, n_permutations=200, n_bootstrap=0, out=out)
s = rsa.summary("fc8")
print({k: s[k] for k in ("network_human_r", "p_value")})
"""),
    md("""
For a real dataset: `brainnet betas --bids /data/my_bids --subject all --task TASK --out my_study`
(add `--space MNI152NLin2009cAsym` when fMRIPrep wrote several spaces), then
`brainnet encode|decode|rsa --study my_study --mask ...`. See `docs/fmriprep.md`.
"""),
]

OPENNEURO = [
    md("""
# Replicating on OpenNeuro

brainnet ships one manifest per public dataset it supports (`data_manifests/datasets/`):
accession, version, licence, tasks, subjects, and for each workflow the files it
needs with sizes and checksums. `brainnet fetch <dataset>` downloads only those
files, verifies them, and resumes.

This notebook shows what a replication needs and runs the naturalistic (movie)
workflow on synthetic data shaped like NNDb; downloads are switched off so it runs
offline. Set `DOWNLOAD = True` on a machine with internet access.
"""),
    code("""
import numpy as np

from brainnet.datasets import manifests

DOWNLOAD = False
for name in manifests.available_datasets():
    m = manifests.load_manifest(name)
    print(f"{m.accession:10s} {m.version:8s} {m.name} ({len(m.subjects)} subjects)")
"""),
    code("""
nod = manifests.load_manifest("ds004496")
print(nod.name, "-", nod.version, "-", nod.licence)
for part in nod.parts:
    files = nod.files([part], subjects=["01"])
    print(f"  {part:12s} {len(files):5d} files for sub-01, {sum(f.size for f in files) / 1e6:10.1f} MB")
"""),
    code("""
if DOWNLOAD:
    from brainnet.datasets.openneuro import fetch_dataset
    report = fetch_dataset("ds004496", "data/ds004496", subjects=["01"], what=("events", "stimuli"))
    print(report)
"""),
    md("""
## The naturalistic workflow (NNDb, *500 Days of Summer* style)

Frame features are convolved with a haemodynamic response and resampled to the TR,
then every voxel gets a ridge model. Cross-validation uses **contiguous blocks with
gaps of at least the HRF length** between training and test volumes: random k-fold
over TRs leaks the slow haemodynamic signal from training into test volumes and
inflates the scores.
"""),
    code("""
from brainnet.naturalistic import BlockedKFold, convolve_frames, encode_naturalistic

rng = np.random.default_rng(0)
tr, frame_rate, n_vols = 1.0, 2.0, 300
frames = rng.standard_normal((int(n_vols * tr * frame_rate), 6))
design = convolve_frames(frames, frame_rate=frame_rate, tr=tr, n_trs=n_vols)
bold = rng.standard_normal((n_vols, 40)) * 2.0
bold[:, :5] += design @ rng.standard_normal((6, 5))        # 5 voxels driven by the features
res = encode_naturalistic(bold, frames, frame_rate=frame_rate, tr=tr, n_splits=5, gap_s=30)
print("driven voxels r:", np.round(res.r[:5], 2))
print("other voxels mean r:", round(float(np.mean(res.r[5:])), 3))
"""),
    code("""
splitter = BlockedKFold(n_splits=5, gap=30)
for train, test in splitter.split(np.zeros((n_vols, 1))):
    print(f"test {test.min():3d}-{test.max():3d}  train {len(train)} volumes, gap kept: "
          f"{min(abs(np.subtract.outer(train, test)).ravel())} volumes")
"""),
    md("""
## Scaling out: one Dask task per subject

`encode_subjects` runs several subjects, each written exactly as a single-subject run, plus a
group table. With `scheduler=` (a Dask client or an address such as `tcp://10.0.0.5:8786`) each
subject is one task on the cluster; the numbers are identical to one process. Finished subjects
are never recomputed, so a killed run is resumed by running the same call again. Here a local
2-worker cluster stands in for a real one (on the command line:
`brainnet encode --subject all --scheduler tcp://host:8786`).
"""),
    code("""
from dask.distributed import Client, LocalCluster

import brainnet

study = brainnet.load_study()  # the embedded study
subjects = ["01", "02", "03"]
with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \\
        Client(cluster) as client:
    on_cluster = brainnet.encode_subjects(study, subjects, "results_dask", n_permutations=50, scheduler=client)
one_process = brainnet.encode_subjects(study, subjects, "results_local", n_permutations=50)
numbers = ["mean_r", "median_r", "p_value", "n_voxels_p_fwe_05"]
print(on_cluster.table[["subject", *numbers]].to_string(index=False))
print("identical to one process:", on_cluster.table[numbers].equals(one_process.table[numbers]))
rerun = brainnet.encode_subjects(study, subjects, "results_local", n_permutations=50)
print("subjects recomputed by the rerun:", rerun.computed)
"""),
]


def _execute(nb, name: str) -> None:
    """Run the notebook in a temporary folder (its results never land in the repository)."""
    import tempfile

    import nbclient

    with tempfile.TemporaryDirectory(prefix=f"brainnet-{name}-") as tmp:
        client = nbclient.NotebookClient(
            nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": tmp}}
        )
        client.execute()
    # tqdm's "IProgress not found" warning describes the executing machine (no ipywidgets),
    # not the analysis: it is not kept in the committed outputs
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.outputs
                if not (o.get("name") == "stderr" and "TqdmWarning" in o.get("text", ""))
            ]


def main(execute: bool = False) -> None:
    """Write every notebook; with ``execute``, run it first so it is saved with its outputs."""
    for name, cells in [
        ("01_quickstart.ipynb", QUICKSTART),
        ("02_kragel2019_replication.ipynb", PAPER),
        ("03_your_stimuli_and_bids.ipynb", BYO),
        ("04_openneuro_replication.ipynb", OPENNEURO),
    ]:
        nb = new_notebook(cells=cells)
        for i, cell in enumerate(nb.cells):
            cell.id = f"cell-{i:02d}"  # stable ids keep the files reproducible
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        if execute:
            _execute(nb, name)
            nb.metadata.pop("widgets", None)
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--execute", action="store_true",
        help="run every notebook and save it with its outputs (figures inline), as committed",
    )
    main(execute=parser.parse_args().execute)
