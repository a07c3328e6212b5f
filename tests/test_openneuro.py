"""fetch_dataset against a local HTTP server: good, missing, corrupt, truncated, resumed, unsafe."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from brainnet.cli import fetch as fetch_cli
from brainnet.datasets import openneuro as O
from brainnet.errors import BrainnetError


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


RNG = bytes(range(256)) * 64  # 16 KiB of deterministic "image" bytes
GOOD = {
    "participants.tsv": b"participant_id\nsub-01\nsub-02\n",
    "sub-01/func/sub-01_task-x_run-01_events.tsv": b"onset\tduration\tstim_file\n0\t1\ta.jpg\n",
    "sub-01/func/sub-01_task-x_run-01_bold.nii.gz": RNG,
    "sub-02/func/sub-02_task-x_run-01_events.tsv": b"onset\tduration\tstim_file\n0\t1\tb.jpg\n",
    "sub-02/func/sub-02_task-x_run-01_bold.nii.gz": RNG[::-1],
    "stimuli/a.jpg": b"\xff\xd8jpeg-a",
}


class _Server:
    """Serves ``files`` at ``/ds000001/<path>``; records every requested path."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path = self.path.split("/ds000001/", 1)[-1]
                server.requests.append(path)
                if path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if path in server.truncate:
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ds000001"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server()
    srv.files = dict(GOOD)
    yield srv
    srv.close()


def _entry(path: str, data: bytes, algo: str) -> list:
    checksum = {"md5": _md5, "sha256": _sha256}.get(algo, lambda d: None)(data)
    return [path, len(data), algo, checksum]


def _manifest(tmp_path: Path, extra: dict[str, list] | None = None) -> Path:
    algos = {"participants.tsv": "git", "stimuli/a.jpg": "sha256"}
    entries = {p: _entry(p, d, algos.get(p, "md5" if p.endswith(".gz") else "git")) for p, d in GOOD.items()}
    entries.update(extra or {})
    parts = {
        "metadata": ["participants.tsv"],
        "events": ["sub-*/func/*_events.tsv"],
        "bold": ["sub-*/func/*_bold.nii.gz"],
        "stimuli": ["stimuli/**"],
    }
    from brainnet.datasets.manifests import glob_to_regex

    content = {
        "schema_version": 1,
        "accession": "ds000001",
        "version": "1.0.0",
        "licence": "CC0",
        "tasks": ["x"],
        "subjects": ["01", "02"],
        "stimuli": {"how": "in_dataset", "description": "test"},
        "workflows": {"image_encoding": {"parts": ["metadata", "events", "stimuli"]}},
        "download": {"url_template": "http://127.0.0.1:9/{path}"},
        "parts": {
            name: {"globs": globs, "files": [e for p, e in entries.items() if any(glob_to_regex(g).match(p) for g in globs)]}
            for name, globs in parts.items()
        },
    }
    path = tmp_path / "ds000001.json"
    path.write_text(json.dumps(content))
    return path


def test_good_fetch_selects_parts_and_subjects(server, tmp_path):
    root = tmp_path / "bids"
    report = O.fetch_dataset(_manifest(tmp_path), root, subjects="01", what="metadata,events,bold", mirror=server.url, progress=False)
    assert report.complete
    assert sorted(report.downloaded) == sorted(["participants.tsv", "sub-01/func/sub-01_task-x_run-01_events.tsv", "sub-01/func/sub-01_task-x_run-01_bold.nii.gz"])
    for rel in report.downloaded:
        assert (root / rel).read_bytes() == GOOD[rel]
    assert not (root / "sub-02").exists() and not (root / "stimuli").exists()
    assert report.n_bytes == sum(len(GOOD[p]) for p in report.downloaded)
    # no temporary file is left beside the data
    assert not [p for p in root.rglob(".*") if p.is_file() and p.parent.name != ".brainnet"]


def test_default_parts_are_the_workflow_parts(server, tmp_path):
    report = O.fetch_dataset(_manifest(tmp_path), tmp_path / "bids", mirror=server.url, progress=False)
    assert report.complete
    assert {p.split("/")[0] for p in report.downloaded} == {"participants.tsv", "sub-01", "sub-02", "stimuli"}
    assert not any(p.endswith("bold.nii.gz") for p in report.downloaded)


def test_missing_file_is_reported_and_strict_raises(server, tmp_path):
    del server.files["sub-02/func/sub-02_task-x_run-01_events.tsv"]
    manifest = _manifest(tmp_path)
    root = tmp_path / "bids"
    report = O.fetch_dataset(manifest, root, what=["events"], mirror=server.url, progress=False)
    assert report.missing == {"sub-02/func/sub-02_task-x_run-01_events.tsv": "server answered HTTP 404"}
    assert report.downloaded == ["sub-01/func/sub-01_task-x_run-01_events.tsv"]
    assert "missing sub-02/func/sub-02_task-x_run-01_events.tsv: server answered HTTP 404" in report.summary()
    with pytest.raises(BrainnetError, match=r"bids: 1 of 2 files of ds000001 could not be fetched \(first: sub-02/.*HTTP 404\); rerun the same command"):
        O.fetch_dataset(manifest, root, what=["events"], mirror=server.url, progress=False, strict=True)


def test_corrupt_file_leaves_nothing(server, tmp_path):
    rel = "sub-01/func/sub-01_task-x_run-01_bold.nii.gz"
    server.files[rel] = bytes(len(GOOD[rel]))  # right size, wrong content
    root = tmp_path / "bids"
    report = O.fetch_dataset(_manifest(tmp_path), root, subjects=["sub-01"], what="bold", mirror=server.url, progress=False)
    assert list(report.missing) == [rel]
    assert report.missing[rel].startswith(f"md5 mismatch: got {_md5(server.files[rel])}, expected {_md5(GOOD[rel])}")
    assert not (root / rel).exists()
    assert list((root / rel).parent.iterdir()) == []


def test_corrupt_sha256_file_leaves_nothing(server, tmp_path):
    server.files["stimuli/a.jpg"] = b"\xff\xd8jpeg-b"
    root = tmp_path / "bids"
    report = O.fetch_dataset(_manifest(tmp_path), root, what="stimuli", mirror=server.url, progress=False)
    assert report.missing["stimuli/a.jpg"].startswith("sha256 mismatch")
    assert list((root / "stimuli").iterdir()) == []


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    rel = "sub-02/func/sub-02_task-x_run-01_bold.nii.gz"
    server.truncate.add(rel)
    root = tmp_path / "bids"
    report = O.fetch_dataset(_manifest(tmp_path), root, subjects="02", what="bold", mirror=server.url, progress=False)
    assert list(report.missing) == [rel]
    assert "truncated" in report.missing[rel]
    assert list((root / rel).parent.iterdir()) == []


def test_resume_downloads_nothing_then_repairs(server, tmp_path):
    manifest = _manifest(tmp_path)
    root = tmp_path / "bids"
    first = O.fetch_dataset(manifest, root, what="events,bold", mirror=server.url, progress=False)
    assert first.complete and len(first.downloaded) == 4
    server.requests.clear()
    second = O.fetch_dataset(manifest, root, what="events,bold", mirror=server.url, progress=False)
    assert second.downloaded == [] and sorted(second.skipped) == sorted(first.downloaded)
    assert server.requests == []
    # a partial file (interrupted copy) and a corrupt one are fetched again, nothing else
    bold1 = root / "sub-01/func/sub-01_task-x_run-01_bold.nii.gz"
    bold1.write_bytes(GOOD[str(bold1.relative_to(root))][:100])
    ev2 = root / "sub-02/func/sub-02_task-x_run-01_bold.nii.gz"
    ev2.write_bytes(b"X" * len(GOOD[str(ev2.relative_to(root))]))
    os.utime(ev2, ns=(1, 1))  # a new mtime invalidates the verified record even at equal size
    third = O.fetch_dataset(manifest, root, what="events,bold", mirror=server.url, progress=False)
    assert sorted(third.downloaded) == sorted(["sub-01/func/sub-01_task-x_run-01_bold.nii.gz", "sub-02/func/sub-02_task-x_run-01_bold.nii.gz"])
    assert sorted(server.requests) == sorted(third.downloaded)
    assert bold1.read_bytes() == GOOD[str(bold1.relative_to(root))]


def test_a_failed_file_is_retried_on_the_next_run(server, tmp_path):
    rel = "sub-01/func/sub-01_task-x_run-01_events.tsv"
    saved = server.files.pop(rel)
    manifest = _manifest(tmp_path)
    root = tmp_path / "bids"
    assert not O.fetch_dataset(manifest, root, what="events", mirror=server.url, progress=False).complete
    server.files[rel] = saved
    server.requests.clear()
    again = O.fetch_dataset(manifest, root, what="events", mirror=server.url, progress=False)
    assert again.complete and again.downloaded == [rel] and server.requests == [rel]


def test_symlink_out_of_root_is_refused(server, tmp_path):
    root = tmp_path / "bids"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root.mkdir()
    (root / "sub-01").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BrainnetError, match=r"sub-01/func/.* links outside .*; remove the link or choose another data folder"):
        O.fetch_dataset(_manifest(tmp_path), root, what="events", mirror=server.url, progress=False)
    assert list(outside.iterdir()) == [] and server.requests == []


def test_manifest_escaping_the_root_is_refused(server, tmp_path):
    path = _manifest(tmp_path)
    data = json.loads(path.read_text())
    data["parts"]["stimuli"]["globs"] = ["**"]
    data["parts"]["stimuli"]["files"].append(["../evil.sh", 3, "git", None])
    path.write_text(json.dumps(data))
    with pytest.raises(BrainnetError, match=r"unsafe file path '../evil.sh'"):
        O.fetch_dataset(path, tmp_path / "bids", mirror=server.url, progress=False)
    assert not (tmp_path / "evil.sh").exists() and server.requests == []


def test_unknown_part_is_a_one_line_error(tmp_path):
    with pytest.raises(BrainnetError, match=r"^--what derivatives: ds000001 has no such part; choose from metadata,events,bold,stimuli$"):
        O.plan_fetch(_manifest(tmp_path), what="derivatives")


def test_plan_of_a_real_manifest():
    manifest, files = O.plan_fetch("ds002837", subjects="1,2", what="derivatives")
    assert manifest.version == "2.0.0"
    assert {f.subject for f in files} == {"1", "2"}
    assert all(f.algo == "md5" and len(f.checksum) == 32 for f in files)


def _fetch_like_parser() -> argparse.ArgumentParser:
    """The options brainnet.cli.fetch has (what, --dest, --url, --quiet) plus the dataset options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("what")
    parser.add_argument("--dest", type=Path, default=None)
    parser.add_argument("--url", default=None)
    parser.add_argument("--quiet", action="store_true")
    fetch_cli.add_fetch_arguments(parser)
    return parser


def test_cli_helpers(server, tmp_path, capsys):
    parser = _fetch_like_parser()
    manifest = str(_manifest(tmp_path))
    assert O.is_dataset_name("ds002837") and O.is_dataset_name(manifest) and not O.is_dataset_name("weights")
    args = parser.parse_args([manifest, "--subjects", "01", "--what", "events", "--dest", str(tmp_path / "d"), "--url", server.url, "--quiet"])
    assert fetch_cli.run_fetch(args.what, args) == 0
    assert "1 downloaded" in capsys.readouterr().out
    del server.files["sub-02/func/sub-02_task-x_run-01_events.tsv"]
    args = parser.parse_args([manifest, "--what", "events", "--dest", str(tmp_path / "d"), "--url", server.url, "--quiet"])
    assert fetch_cli.run_fetch(args.what, args) == 1
    assert "missing sub-02/func/sub-02_task-x_run-01_events.tsv: server answered HTTP 404" in capsys.readouterr().out
    args = parser.parse_args(["ds002837", "--what", "derivatives", "--subjects", "1", "--dry-run"])
    assert fetch_cli.run_fetch(args.what, args) == 0
    assert capsys.readouterr().out.startswith("ds002837 2.0.0: 2 files, 1.50 GB")


def test_register_fetchers(monkeypatch, tmp_path, capsys):
    fetchers = {"weights": ("EmoNet weights", None)}
    fetch_cli.register_fetchers(fetchers)
    assert set(fetchers) == {"weights", "ds001499", "ds002837", "ds003823", "ds004192", "ds004496"}
    args = _fetch_like_parser().parse_args(["ds004192", "--what", "events", "--subjects", "01", "--dry-run"])
    assert fetchers["ds004192"][1](args) == 0
    assert capsys.readouterr().out.startswith("ds004192 1.0.5: 120 files")


# ---------------------------------------------------------------- NOD-shaped image workflow

NOD_FIXTURE = Path(__file__).parent / "data" / "openneuro" / "ds004496"
NOD_FUNC = "sub-01/ses-imagenet01/func"


def _mini_nod(root: Path, rng: np.random.Generator, planted: np.ndarray, runs=(1, 2), n_trials=100, shape=(4, 4, 4),
              subjects=("01",), rank=1) -> None:
    """NOD's layout and real events (``runs``, first ``n_trials`` of each); synthetic images, fMRIPrep BOLD and confounds.

    Planted voxels respond to each image through ``rank`` fixed mixes of the
    untrained EmoNet's fc8 units for that image (``rank=1``: one mix shared by
    all planted voxels); the other voxels are noise. Every subject is shown
    sub-01's real trials (the same images, as in NOD's shared COCO session),
    with the same planted mixes and its own noise.
    """
    import shutil

    import nibabel as nib
    import pandas as pd
    from nilearn.glm.first_level import make_first_level_design_matrix
    from PIL import Image

    from brainnet.extract import extract_activations

    root.mkdir(parents=True)
    for name in ("dataset_description.json", "participants.tsv", "task-imagenet_bold.json", "task-imagenet_events.json"):
        shutil.copy(NOD_FIXTURE / name, root / name)
    w = rng.standard_normal(20) if rank == 1 else rng.standard_normal((20, planted.size))
    for run in runs:
        source = f"sub-01_ses-imagenet01_task-imagenet_run-{run:02d}"
        events = pd.read_csv(NOD_FIXTURE / NOD_FUNC / f"{source}_events.tsv", sep="\t").iloc[:n_trials]
        for stim in events["stim_file"]:
            img = root / "stimuli" / stim
            img.parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (1, 1, 3)) * rng.uniform(0.2, 1.0, (48, 48, 1))
            Image.fromarray(pixels.astype(np.uint8)).save(img, format="JPEG")
        for subject in subjects:
            func = f"sub-{subject}/ses-imagenet01/func"
            name = source.replace("sub-01", f"sub-{subject}")
            deriv = root / "derivatives" / "fmriprep" / func
            deriv.mkdir(parents=True, exist_ok=True)
            (root / func).mkdir(parents=True, exist_ok=True)
            events_path = root / func / f"{name}_events.tsv"
            events.to_csv(events_path, sep="\t", index=False)
            if subject == subjects[0]:
                feats = extract_activations(events_path, layers=("fc8",), seed=0)
                fc8 = feats.align(list(events["stim_file"])).layer("fc8")
                drive = ((fc8 - fc8.mean(0)) / fc8.std(0)) @ w
                drive = (drive - drive.mean(0)) / drive.std(0)
            n_vols = int(np.ceil((events["onset"].max() + 24) / 2.0))
            trials = pd.DataFrame({"onset": events["onset"], "duration": events["duration"], "trial_type": [f"t{i:03d}" for i in range(len(events))]})
            design = make_first_level_design_matrix(np.arange(n_vols) * 2.0, trials, hrf_model="spm", drift_model=None)
            x = design[[f"t{i:03d}" for i in range(len(events))]].to_numpy()
            n_vox = int(np.prod(shape))
            betas = np.zeros((len(events), n_vox))
            betas[:, planted] = 8.0 * (drive[:, None] if rank == 1 else drive)
            data = 100.0 + x @ betas + rng.standard_normal((n_vols, n_vox))
            img = nib.Nifti1Image(data.T.reshape(*shape, n_vols).astype(np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = 2.0
            img.to_filename(deriv / f"{name}_space-T1w_desc-preproc_bold.nii.gz")
            motion = pd.DataFrame(0.01 * rng.standard_normal((n_vols, 6)), columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])
            motion.to_csv(deriv / f"{name}_desc-confounds_timeseries.tsv", sep="\t", index=False)


def test_nod_shaped_dataset_end_to_end(tmp_path, science_scale):
    """Fetched NOD layout -> single-trial betas -> study with the dataset's own images -> encoding finds planted voxels.

    Quick run: the first 60 trials of one real NOD run, OLS GLM; full run: two whole runs (200 images), AR(1) GLM.
    """
    import nibabel as nib

    from brainnet.encoding import encode_subject
    from brainnet.study import load_study

    rng = np.random.default_rng(11)
    planted = np.array([5, 22, 41, 58])
    bids = tmp_path / "ds004496"
    runs, n_trials = ((1,), 60) if science_scale == "quick" else ((1, 2), 100)
    _mini_nod(bids, rng, planted, runs=runs, n_trials=n_trials)
    mask = tmp_path / "mask.nii.gz"
    nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])).to_filename(mask)
    noise_model = "ols" if science_scale == "quick" else "ar1"
    study_dir = O.build_image_study(bids, tmp_path / "study", subjects="01", method="lsa", confounds="motion6", mask=mask, noise_model=noise_model)
    study = load_study(study_dir)
    assert study.subjects == ["01"] and len(study.stimulus_ids) == n_trials * len(runs)
    assert all((study_dir / "stimuli" / s).is_file() for s in study.stimulus_ids[:5])  # NOD's own images were copied
    result = encode_subject(study, "01", layer="fc8", n_permutations=100, mask=mask, seed=0)
    scores = result.voxel_scores
    flat = np.ravel_multi_index((scores["i"], scores["j"], scores["k"]), (4, 4, 4))
    top = set(flat[np.argsort(scores["r"].to_numpy())[-planted.size:]])
    assert top == set(planted)
    assert np.all(scores["p"].to_numpy()[np.isin(flat, planted)] <= 0.02)
    assert np.median(scores["r"].to_numpy()[~np.isin(flat, planted)]) < 0.15


def test_nod_shaped_dataset_to_encode_decode_and_rsa(tmp_path, science_scale):
    """Three NOD-shaped subjects: fetched layout -> betas -> study -> encode (all subjects), decode and rsa.

    The planted voxels carry four mixes of the network's fc8 units, the same in
    every subject, so each analysis has a known answer: encoding ranks the
    planted voxels first in every subject, leave-one-subject-out decoding of
    fc8 beats its permutation null, and the network's RDM resembles the
    subjects' RDMs beyond the condition-label permutation null.
    """
    import nibabel as nib
    import pandas as pd

    from brainnet.decoding import decode_units
    from brainnet.encoding import encode_subjects
    from brainnet.rsa import network_as_subject

    rng = np.random.default_rng(12)
    planted = np.array([5, 22, 41, 58])
    subjects = ("01", "02", "03")
    n_trials, n_perm = (48, 100) if science_scale == "quick" else (100, 1000)
    bids = tmp_path / "ds004496"
    _mini_nod(bids, rng, planted, runs=(1,), n_trials=n_trials, subjects=subjects, rank=planted.size)
    mask = tmp_path / "mask.nii.gz"
    nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])).to_filename(mask)
    study = O.build_image_study(bids, tmp_path / "study", method="lsa", confounds="motion6", mask=mask, noise_model="ols")
    out = tmp_path / "results"

    encoded = encode_subjects(study, "all", out, mask=mask, n_permutations=n_perm, cv=4)
    assert encoded.computed == list(subjects)
    for label in subjects:
        scores = pd.read_csv(encoded.folders[label] / "voxel_scores.tsv", sep="\t")
        flat = np.ravel_multi_index((scores["i"], scores["j"], scores["k"]), (4, 4, 4))
        assert set(flat[np.argsort(scores["r"].to_numpy())[-planted.size:]]) == set(planted), label
        assert np.all(scores["p"].to_numpy()[np.isin(flat, planted)] <= 0.02), label

    decoded = decode_units(study, mask=mask, n_components=4, n_permutations=n_perm, n_bootstrap=0,
                           n_cluster_draws=0, out=out)
    assert decoded.summary["mean_r"] > 0.2
    assert decoded.summary["p_value"] <= 2 / (n_perm + 1)
    assert (out / "group" / "decode-fc8" / "summary.json").is_file()

    rsa = network_as_subject(study, mask=mask, n_permutations=n_perm, n_bootstrap=0, out=out)
    fc8 = rsa.layers["fc8"]
    assert fc8.network_human_r > 0.1 and np.all(fc8.network_each > 0)
    assert fc8.p_value <= 2 / (n_perm + 1)
    assert (out / "group" / "rsa-fc8" / "summary.json").is_file()


def test_build_image_study_errors(tmp_path):
    with pytest.raises(BrainnetError, match=r"nod: dataset folder not found; fetch it first: brainnet fetch ds004496"):
        O.build_image_study(tmp_path / "nod", tmp_path / "study")
    (tmp_path / "nod").mkdir()
    with pytest.raises(BrainnetError, match=r"nod: holds no subject folder of ds004496"):
        O.build_image_study(tmp_path / "nod", tmp_path / "study")
    with pytest.raises(BrainnetError, match=r"--subjects 99: not a subject of ds004496"):
        O.build_image_study(tmp_path / "nod", tmp_path / "study", subjects=["99"])
