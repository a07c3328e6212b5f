"""A study from released single-trial betas: fetch (from a local server) -> study -> analyses, no GLM.

The miniature NOD-shaped dataset carries NOD's ciftify layout (per run a
beta dscalar and a label.txt, the subject's aparc dlabel and meshes, raw
events with stim_file, ImageNet-style stimuli). Fetching is tested only
against a 127.0.0.1 server.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from brainnet.errors import BrainnetError

BETA_GLOBS = [
    "derivatives/ciftify/sub-*/results/ses-*_task-imagenet_run-*/*_beta.dscalar.nii",
    "derivatives/ciftify/sub-*/results/ses-*_task-imagenet_run-*/*_label.txt",
    "derivatives/ciftify/sub-*/standard_fsLR_surface/sub-*.aparc.32k_fs_LR.dlabel.nii",
    "derivatives/ciftify/sub-*/standard_fsLR_surface/sub-*.*.midthickness.32k_fs_LR.surf.gii",
    "derivatives/ciftify/sub-*/standard_fsLR_surface/sub-*.*.inflated.32k_fs_LR.surf.gii",
]


@pytest.fixture(scope="module")
def nod(tmp_path_factory):
    from brainnet.datasets.miniature import simulate_released_betas

    return simulate_released_betas(tmp_path_factory.mktemp("released") / "nod", n_subjects=3)


def _serve(root: Path):
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
             if p.is_file() and not p.relative_to(root).as_posix().startswith("sourcedata")}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path.split("/ds004496/", 1)[-1]
            if path not in files:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(files[path])))
            self.end_headers()
            self.wfile.write(files[path])

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd, files


def _manifest(files: dict[str, bytes], path: Path) -> Path:
    from brainnet.datasets.manifests import glob_to_regex

    parts = {"metadata": ["participants.tsv", "dataset_description.json"],
             "events": ["sub-*/ses-*/func/sub-*_task-imagenet_run-*_events.tsv"],
             "stimuli": ["stimuli/imagenet/**"], "betas": BETA_GLOBS}
    entries = {p: [p, len(d), "sha256", hashlib.sha256(d).hexdigest()] for p, d in files.items()}
    content = {
        "schema_version": 1, "accession": "ds004496", "version": "2.1.2", "licence": "CC0", "tasks": ["imagenet"],
        "subjects": ["01", "02", "03"], "stimuli": {"how": "in_dataset", "description": "test"},
        "betas": {"how": "in_dataset", "part": "betas", "description": "test"},
        "workflows": {"image_encoding": {"parts": ["metadata", "events", "stimuli"]}},
        "download": {"url_template": "http://127.0.0.1:9/{path}"},
        "parts": {name: {"globs": globs, "files": [e for p, e in entries.items() if any(glob_to_regex(g).match(p) for g in globs)]}
                  for name, globs in parts.items()},
    }
    path.write_text(json.dumps(content))
    return path


def test_fetch_betas_then_one_call_gives_a_study_that_finds_the_planted_signal(nod, tmp_path):
    from brainnet.datasets.openneuro import fetch_dataset
    from brainnet.encoding import encode_subject
    from brainnet.released import study_from_released_betas
    from brainnet.results import sha256_file
    from brainnet.simulate import load_truth

    httpd, files = _serve(nod)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/ds004496"
        report = fetch_dataset(_manifest(files, tmp_path / "ds004496.json"), tmp_path / "data",
                               what="metadata,events,betas,stimuli", mirror=url, progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert report.complete
    assert any(p.endswith("_beta.dscalar.nii") for p in report.downloaded)
    study = study_from_released_betas(tmp_path / "data", tmp_path / "study")
    record = json.loads((study / "dataset_description.json").read_text())["brainnet"]["source_sha256"]
    dlabel = "derivatives/ciftify/sub-01/standard_fsLR_surface/sub-01.aparc.32k_fs_LR.dlabel.nii"
    assert record[dlabel] == sha256_file(tmp_path / "data" / dlabel)
    # every subject saw the images its label files name; the study has them under stimuli/
    import pandas as pd

    stimuli = pd.read_csv(study / "stimuli.tsv", sep="\t")
    assert all((study / "stimuli" / f).is_file() for f in stimuli["file"])
    volume = nod / "sourcedata" / "volume"
    signal = {tuple(v) for v in load_truth(volume)["signal_ijk"].tolist()}
    own = encode_subject(study, "01", mask="occipital-aparc", n_permutations=10, cv=4)
    ref = encode_subject(volume, "01", mask="occipital", n_permutations=10, cv=4)
    np.testing.assert_array_equal(own.voxel_scores["r"].to_numpy(), ref.voxel_scores["r"].to_numpy())
    planted = np.array([tuple(v) in signal for v in ref.voxel_scores[["i", "j", "k"]].to_numpy().tolist()])
    assert own.voxel_scores["r"][planted].mean() > own.voxel_scores["r"][~planted].mean() + 0.3


def test_betas_outside_openneuro_say_where_they_are():
    from brainnet.datasets.openneuro import plan_fetch

    with pytest.raises(BrainnetError, match=r"^--what betas: ds004192's single-trial betas are not on OpenNeuro; get them from "
                                            r"https://doi.org/10.25452/figshare.plus.c.6161151 \(the figshare collection of the THINGS-fMRI single-trial betas"):
        plan_fetch("ds004192", what="betas")
    with pytest.raises(BrainnetError, match=r"^--what betas: ds001499's single-trial betas are not on OpenNeuro; get them from "
                                            r"https://bold5000-dataset.github.io/website/ \(BOLD5000 release 2.0 GLMsingle"):
        plan_fetch("ds001499", what="betas")
    manifest, planned = plan_fetch("ds004496", subjects="01", what="betas")
    names = [f.path for f in planned]
    assert "derivatives/ciftify/sub-01/standard_fsLR_surface/sub-01.aparc.32k_fs_LR.dlabel.nii" in names
    assert sum(p.endswith("_beta.dscalar.nii") for p in names) == sum(p.endswith("_label.txt") for p in names) > 0


def test_released_betas_mistakes_are_one_line_errors_and_nothing_is_written(nod, tmp_path):
    from brainnet.released import study_from_released_betas

    broken = tmp_path / "nod"
    shutil.copytree(nod, broken, ignore=shutil.ignore_patterns("sourcedata"))
    label = broken / "derivatives/ciftify/sub-02/results/ses-imagenet01_task-imagenet_run-2/ses-imagenet01_task-imagenet_run-2_label.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(BrainnetError, match=rf"_run-2_label.txt: {len(lines) - 1} labels but its beta file has {len(lines)} maps; "
                                            r"fetch both files of the run again"):
        study_from_released_betas(broken, tmp_path / "study")
    assert not (tmp_path / "study").exists() and not (tmp_path / ".study.partial").exists()
    label.write_text("\n".join(["n99999999/other.png", *lines[1:]]) + "\n")
    with pytest.raises(BrainnetError, match=r"_run-2_label.txt: label 'other' is not an image of sub-02_ses-imagenet01_task-imagenet_run-02_events.tsv; "
                                            r"check that label.txt and events.tsv are of the same run"):
        study_from_released_betas(broken, tmp_path / "study")
    assert not (tmp_path / "study").exists()
    with pytest.raises(BrainnetError, match=r"derivatives/ciftify: released betas not found; fetch them first: brainnet fetch ds004496 --what"):
        study_from_released_betas(tmp_path / "empty", tmp_path / "study")
    with pytest.raises(BrainnetError, match=r"^--dataset ds004192: brainnet reads the released betas of ds004496 only"):
        study_from_released_betas(broken, tmp_path / "study", dataset="ds004192")


def test_the_readme_nod_commands_run_on_the_released_betas(nod, tmp_path, capsys):
    """The README's NOD section, command by command, after the fetch (tested above)."""
    from brainnet.cli import main

    data = tmp_path / "nod"
    shutil.copytree(nod, data, ignore=shutil.ignore_patterns("sourcedata"))
    study, results = tmp_path / "nod_study", tmp_path / "nod_results"
    for argv in (
        ["study", "from-released", "--source", data, "--out", study],
        ["encode", "--study", study, "--subject", "all", "--mask", "occipital-aparc", "--permutations", "10", "--cv", "4",
         "--out", results],
        ["rsa", "--study", study, "--mask", "occipital-aparc", "--permutations", "20", "--bootstrap", "0", "--out", results],
        ["network-decoding", "--study", study, "--mask", "occipital-aparc", "--folds", "4", "--out", results],
        ["figures", "--results", results],
    ):
        assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    for label in ("01", "02", "03"):
        assert (results / f"sub-{label}" / "encode-fc8-occipital-aparc" / "r_map.dscalar.nii").is_file()
    figures = [p.name for p in results.rglob("*r-map-surface*.png")]
    assert len(figures) == 3, figures
    rsa = json.loads(next(results.glob("group/rsa-*/summary.json")).read_text())
    assert rsa["complete"]
