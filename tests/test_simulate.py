"""Simulated studies: exact layout, determinism, and a recoverable planted truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from brainnet.errors import BrainnetError
from brainnet.simulate import load_truth, simulate_study
from brainnet.study import DEMO_STUDY, load_study


def _layout(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _colwise_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = (a - a.mean(0)) / a.std(0)
    b = (b - b.mean(0)) / b.std(0)
    return (a * b).mean(0)


def _signal_flags(sub, truth) -> np.ndarray:
    signal = {tuple(v) for v in truth["signal_ijk"].tolist()}
    return np.array([tuple(v) in signal for v in sub.voxel_ijk.tolist()])


def _encoding_r(sub, truth) -> np.ndarray:
    """Cross-validated ridge encoding r per voxel (scikit-learn as the independent reference)."""
    y, ids = sub.averaged()
    rows = [list(truth["stimulus_ids"]).index(s) for s in ids]
    x = truth["features"][rows]
    pred = cross_val_predict(RidgeCV(alphas=np.logspace(-1, 4, 11)), x, y, cv=KFold(5, shuffle=True, random_state=0))
    return _colwise_r(pred, y)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return simulate_study(tmp_path_factory.mktemp("sim") / "study", n_subjects=2, n_stimuli=16, n_repeats=2, n_runs=2, seed=3)


def test_layout_is_exactly_the_documented_one(small):
    files = _layout(small)
    expected = {"dataset_description.json", "participants.tsv", "stimuli.tsv", "truth.json", "truth.npz"}
    for s in ("01", "02"):
        expected |= {
            f"sub-{s}/func/sub-{s}_task-simulated_space-MNI152NLin2009cAsym_desc-singletrial_betas.nii.gz",
            f"sub-{s}/func/sub-{s}_task-simulated_desc-singletrial_events.tsv",
        }
    study = load_study(small)
    expected |= {f"stimuli/{f}" for f in study.stimulus_files}
    assert files == expected
    desc = json.loads((small / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "brainnet"
    assert study.subjects == ["01", "02"] and len(study.stimulus_ids) == 16
    assert len(set(study.categories.values())) == 4
    assert len(study.stimuli) == 16 and all(f.is_file() for f in study.stimuli.files)
    sub = study.load_subject("02")
    assert sub.patterns.shape[0] == 32 and sorted(set(sub.runs.tolist())) == [1, 2]
    assert all((sub.stimulus_ids == s).sum() == 2 for s in study.stimulus_ids)


def test_images_differ_and_features_vary(small):
    from PIL import Image

    study = load_study(small)
    pixels = np.stack([np.asarray(Image.open(f), dtype=float).ravel() for f in study.stimuli.files])
    assert len({p.tobytes() for p in pixels}) == 16
    truth = load_truth(small)
    feats = truth["features"]
    assert feats.shape == (16, 20)
    assert np.linalg.matrix_rank(feats) >= 10  # the images drive the network differently


def test_same_seed_same_study(small, tmp_path):
    again = simulate_study(tmp_path / "again", n_subjects=2, n_stimuli=16, n_repeats=2, n_runs=2, seed=3)
    from brainnet.results import sha256_file

    for rel in sorted(_layout(small) - {"truth.json", "dataset_description.json"}):
        if rel.endswith(".nii.gz") or rel.endswith(".tsv") or rel.endswith(".png"):
            assert sha256_file(small / rel) == sha256_file(again / rel), rel
    a, b = load_truth(small), load_truth(again)
    np.testing.assert_array_equal(a["maps"], b["maps"])


def test_truth_records_the_plant(small):
    truth = load_truth(small)
    assert truth["layer"] == "fc8" and truth["weights"] == "untrained-seed0" and truth["seed"] == 3
    assert truth["signal_ijk"].shape == (truth["provenance"]["parameters"]["n_signal_voxels"], 3)
    assert truth["maps"].shape == (2, 20, truth["signal_ijk"].shape[0])
    assert truth["n_occipital_voxels"] == 2 * truth["signal_ijk"].shape[0] + truth["n_occipital_voxels"] % 2


def test_refuses_to_write_into_a_non_empty_folder(small):
    with pytest.raises(BrainnetError, match=f"^{small}: already exists and is not empty; choose another --out folder or pass --overwrite$"):
        simulate_study(small, n_subjects=1, n_stimuli=4)


def test_bad_parameters():
    with pytest.raises(BrainnetError, match="^simulate: --snr must be positive; change the option$"):
        simulate_study("unused", snr=0)


def test_embedded_study_truth_is_recoverable():
    """Default parameters: encoding finds the signal voxels and a group decoder generalises."""
    study = load_study()
    assert study.subjects == [f"{s:02d}" for s in range(1, 19)] and len(study.stimulus_ids) == 112
    truth = load_truth(study.root)
    assert truth["seed"] == DEMO_STUDY["seed"]
    subs = study.load_subjects(study.subjects[:6])
    assert 1000 < subs[0].n_voxels < 4000
    sig = _signal_flags(subs[0], truth)
    r = _encoding_r(subs[0], truth)
    assert r[sig].mean() > 0.2 and abs(r[~sig].mean()) < 0.1
    assert r[sig].mean() - r[~sig].mean() > 0.15
    # Decoding fc8 units from pooled voxels, leave-one-subject-out.
    ids = list(truth["stimulus_ids"])
    ys, xs = [], []
    for sub in subs:
        y, sid = sub.averaged()
        ys.append(y)
        xs.append(truth["features"][[ids.index(s) for s in sid]])
    scores = []
    for k in range(2):
        train = [i for i in range(len(subs)) if i != k]
        model = RidgeCV(alphas=np.logspace(1, 5, 9)).fit(np.vstack([ys[i] for i in train]), np.vstack([xs[i] for i in train]))
        scores.append(_colwise_r(model.predict(ys[k]), xs[k]).mean())
    assert min(scores) > 0.2


def test_null_study_has_no_signal(tmp_path):
    root = simulate_study(tmp_path / "null", n_subjects=1, n_stimuli=64, null=True, seed=1)
    truth = load_truth(root)
    assert truth["null"] is True
    sub = load_study(root).load_subject("01")
    r = _encoding_r(sub, truth)
    sig = _signal_flags(sub, truth)
    # Cross-validated r of pure noise is biased below 0; what matters is that the
    # planted voxels are no different from the others.
    assert r[sig].mean() < 0.05 and abs(r[sig].mean() - r[~sig].mean()) < 0.05


def test_cli_simulate(tmp_path, capsys):
    from brainnet.cli import main

    out = tmp_path / "cli"
    assert main(["simulate", "--out", str(out), "--subjects", "1", "--stimuli", "8", "--seed", "2"]) == 0
    assert load_study(out).subjects == ["01"] and len(load_study(out).stimulus_ids) == 8
    assert main(["simulate", "--out", str(out), "--subjects", "1", "--stimuli", "8"]) == 2
    assert f"brainnet simulate: error: {out}: already exists and is not empty" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_embedded_study_truth_full_scale():
    """The paper's analysis on the demo: PLS (10 components), 18 subjects pooled, leave one subject out."""
    from sklearn.cross_decomposition import PLSRegression

    study = load_study()
    truth = load_truth(study.root)
    ids = list(truth["stimulus_ids"])
    ys, xs, gaps = [], [], []
    for sub in study.load_subjects():
        y, sid = sub.averaged()
        ys.append(y)
        xs.append(truth["features"][[ids.index(s) for s in sid]])
        r = _encoding_r(sub, truth)
        sig = _signal_flags(sub, truth)
        gaps.append(r[sig].mean() - r[~sig].mean())
    assert min(gaps) > 0.15
    scores = []
    for k in range(6):  # six held-out subjects, each model trained on the other 17
        train = [i for i in range(len(ys)) if i != k]
        pls = PLSRegression(n_components=10, scale=False).fit(np.vstack([ys[i] for i in train]), np.vstack([xs[i] for i in train]))
        scores.append(_colwise_r(pls.predict(ys[k]), xs[k]).mean())
    assert min(scores) > 0.3
