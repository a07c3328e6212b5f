"""Several subjects in one run (issue 7): ``encode_subjects`` / ``brainnet encode --subject all``.

Each subject is written as a single-subject run writes it; Dask tasks give the
same bytes as one process; a killed run resumes without redoing finished
subjects, and the subject in progress resumes from its permutation checkpoint.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainnet.cli import main
from brainnet.encoding import encode_subject, encode_subjects
from brainnet.errors import BrainnetError
from brainnet.simulate import simulate_study

N_PERMUTATIONS = 300
LABELS = ["01", "02", "03"]


@pytest.fixture(scope="module")
def study3(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    study = simulate_study(root / "study", n_subjects=3, n_stimuli=24, snr=1.0, seed=4)
    feats = root / "fc8.npz"
    assert main(["extract", "--stimuli", str(study / "stimuli.tsv"), "--out", str(feats), "--quiet"]) == 0
    return study, feats


def _argv(study3, *extra: str) -> list[str]:
    study, feats = study3
    return ["encode", "--study", str(study), "--features", str(feats), "--cv", "3", *extra]


def _files(folder: Path) -> dict[str, object]:
    """Result content of a folder: TSV bytes and NIfTI arrays (JSON holds timestamps)."""
    out: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.suffix == ".tsv":
            out[rel] = path.read_bytes()
        elif path.name.endswith(".nii.gz"):
            out[rel] = np.asarray(nib.load(path).dataobj)
    return out


def _assert_same(a: Path, b: Path, skip: str = "folder") -> None:
    left, right = _files(a), _files(b)
    assert left and sorted(left) == sorted(right)
    for key, value in left.items():
        if isinstance(value, bytes):
            if key.endswith("subjects.tsv"):  # its folder column names the output folder
                value, other = (pd.read_csv(a / key, sep="\t").drop(columns=skip),
                                pd.read_csv(b / key, sep="\t").drop(columns=skip))
                pd.testing.assert_frame_equal(value, other)
            else:
                assert value == right[key], key
        else:
            np.testing.assert_array_equal(value, right[key], err_msg=key)


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_each_subject_is_written_as_a_single_subject_run_and_summarised(study3, tmp_path, capsys):
    study, feats = study3
    kwargs = dict(features=feats, cv=3, n_permutations=40)
    result = encode_subjects(study, "all", tmp_path / "all", **kwargs)
    assert result.computed == LABELS and list(result.table["subject"]) == LABELS
    single = encode_subject(study, "sub-02", out=tmp_path / "one", **kwargs)
    _assert_same(single.path, tmp_path / "all" / "sub-02" / "encode-fc8")
    for label in LABELS:
        s = _summary(tmp_path / "all" / f"sub-{label}" / "encode-fc8")
        assert s["complete"] is True and s["provenance"]["parameters"]["subject"] == label
        row = result.table.set_index("subject").loc[label]
        assert row["mean_r"] == s["mean_r"] and row["n_voxels_p_fwe_05"] == s["n_voxels_p_fwe_05"]
    group = _summary(tmp_path / "all" / "group" / "encode-fc8")
    assert group["complete"] is True and group["subjects"] == LABELS
    means = [_summary(tmp_path / "all" / f"sub-{s}" / "encode-fc8")["mean_r"] for s in LABELS]
    assert group["mean_r"] == pytest.approx(np.mean(means)) and group["sd_mean_r"] == pytest.approx(np.std(means, ddof=1))
    table = pd.read_csv(tmp_path / "all" / "group" / "encode-fc8" / "subjects.tsv", sep="\t", dtype={"subject": str})
    assert list(table["subject"]) == LABELS and list(table["mean_r"]) == pytest.approx(means)

    # A subject done by a single-subject run is reused by the group run, not recomputed.
    again = encode_subjects(study, ["02", "sub-03"], tmp_path / "one", **kwargs)
    assert again.computed == ["03"] and _summary(again.path)["subjects"] == ["02", "03"]
    assert main([*_argv(study3, "--permutations", "40"), "--subject", "all", "--out", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sub-01 fc8 ridge: mean r = ") and not out[0].endswith("not recomputed)")
    assert out[1].endswith("(complete already, not recomputed)") and out[2].endswith("not recomputed)")
    assert out[3].startswith("3 subjects: mean r = ")
    _assert_same(tmp_path / "all", tmp_path / "one")


def test_subjects_as_dask_tasks_give_the_single_process_bytes(study3, tmp_path, capsys):
    distributed = pytest.importorskip("dask.distributed")
    argv = _argv(study3, "--permutations", "60", "--subject", "all")
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            assert main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address]) == 0
            prefixes = client.run_on_scheduler(lambda dask_scheduler: dict(dask_scheduler.task_prefixes))
    assert "remote_subject" in prefixes  # each subject ran as one task on the cluster
    assert "call" not in prefixes  # and its permutations ran inside that task, not as further tasks
    _assert_same(tmp_path / "local", tmp_path / "dask")


@pytest.mark.slow
def test_subjects_on_process_workers_give_the_single_process_bytes(study3, tmp_path):
    """Separate worker processes (own BLAS state, arrays pickled both ways) change nothing either."""
    distributed = pytest.importorskip("dask.distributed")
    study, feats = study3
    kwargs = dict(features=feats, cv=3, n_permutations=60)
    encode_subjects(study, "all", tmp_path / "local", **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            result = encode_subjects(study, "all", tmp_path / "dask", scheduler=client, **kwargs)
    assert result.computed == LABELS
    _assert_same(tmp_path / "local", tmp_path / "dask")


def test_api_scheduler_argument_and_bad_scheduler(study3, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    study, feats = study3
    kwargs = dict(features=feats, cv=3, n_permutations=20)
    local = encode_subjects(study, ["01", "03"], None, **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            remote = encode_subjects(study, ["01", "03"], None, scheduler=client, **kwargs)
    pd.testing.assert_frame_equal(local.table, remote.table)
    assert remote.path is None and remote.folders == {}
    with pytest.raises(BrainnetError, match=r"^scheduler=42: pass a Dask scheduler address or a distributed.Client$"):
        encode_subjects(study, "all", None, scheduler=42, **kwargs)


def _draws(path: Path) -> int:
    with np.load(path) as data:
        return int(data["draws"].shape[0])


def _kill_during_second_subject(interrupt, argv: list[str], out: Path) -> int:
    """Run the CLI in a subprocess that SIGKILLs itself right after sub-02's 2nd permutation checkpoint."""
    checkpoint = out / "sub-02" / "encode-fc8" / "checkpoints" / "null.npz"
    proc = interrupt([*argv, "--out", out], "*/sub-02/encode-fc8/checkpoints/null.npz", 2)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (out / "sub-01" / "encode-fc8" / "summary.json").exists()
    return _draws(checkpoint)  # the checkpoint file is atomic: read it after the kill


def test_killed_run_loses_only_the_subject_in_progress(study3, tmp_path, monkeypatch, capsys, interrupt_after_write):
    from brainnet import encoding

    argv = _argv(study3, "--permutations", str(N_PERMUTATIONS), "--alphas", "1", "100", "--subject", "all")
    reference = tmp_path / "reference"
    assert main([*argv, "--out", str(reference)]) == 0

    resumed = tmp_path / "resumed"
    done = _kill_during_second_subject(interrupt_after_write, argv, resumed)
    assert 0 < done < N_PERMUTATIONS
    assert not (resumed / "sub-02" / "encode-fc8" / "summary.json").exists()
    assert not (resumed / "group" / "encode-fc8" / "summary.json").exists()
    first = {p: p.stat().st_mtime_ns for p in (resumed / "sub-01").rglob("*") if p.is_file()}

    fitted: list[int] = []
    original = encoding._Encoder.permuted_r

    def counting(self, y, perms):
        fitted.append(len(perms))
        return original(self, y, perms)

    monkeypatch.setattr(encoding._Encoder, "permuted_r", counting)
    assert main([*argv, "--out", str(resumed)]) == 0
    capsys.readouterr()
    # sub-01 untouched; sub-02 continued from its checkpoint; sub-03 from scratch (+1 observed fit each).
    assert {p: p.stat().st_mtime_ns for p in (resumed / "sub-01").rglob("*") if p.is_file()} == first
    assert sum(fitted) == (N_PERMUTATIONS - done) + N_PERMUTATIONS + 2
    _assert_same(reference, resumed)


def test_other_parameters_in_the_same_folder_are_refused(study3, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*_argv(study3, "--permutations", "5", "--subject", "all"), "--out", str(out)]) == 0
    before = _files(out)
    capsys.readouterr()
    assert main([*_argv(study3, "--permutations", "7", "--subject", "all"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"brainnet encode: error: {out / 'group' / 'encode-fc8'}: holds results made with other parameters, "
        "weights or data; choose another --out folder or pass --overwrite"
    )
    assert "Traceback" not in "\n".join(err)
    after = _files(out)
    assert sorted(before) == sorted(after) and all(np.array_equal(before[k], after[k]) for k in before)

    # A subject folder of other parameters (from a single-subject run) is refused before any subject runs.
    other = tmp_path / "other"
    assert main([*_argv(study3, "--permutations", "7", "--subject", "03"), "--out", str(other)]) == 0
    capsys.readouterr()
    assert main([*_argv(study3, "--permutations", "5", "--subject", "01,02,03"), "--out", str(other)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"brainnet encode: error: {other / 'sub-03' / 'encode-fc8'}: holds results made with other parameters, "
        "weights or data; choose another --out folder or pass --overwrite"
    )
    assert not (other / "sub-01").exists() and not (other / "sub-02").exists()
    assert main([*_argv(study3, "--permutations", "5", "--subject", "01,02,03"), "--out", str(other),
                 "--overwrite"]) == 0
    capsys.readouterr()
    assert _summary(other / "sub-03" / "encode-fc8")["n_permutations"] == 5


@pytest.mark.parametrize(
    "subjects, cv, message",
    [
        (["01", "sub-01"], 5, "--subject: a subject is listed twice; list each subject once"),
        (["01", "09"], 5, "--subject 09: no such subject in "),
        ([], 5, "--subject: no subject given; use --subject all or e.g. --subject 01,02"),
        ("all", 30, "--cv 30: 24 stimuli are too few for 30-fold cross-validation"),
    ],
)
def test_bad_subject_lists_and_cv_leave_nothing(study3, tmp_path, subjects, cv, message):
    study, feats = study3
    with pytest.raises(BrainnetError, match="^" + re.escape(message)):
        encode_subjects(study, subjects, tmp_path / "out", features=feats, n_permutations=0, cv=cv)
    assert not (tmp_path / "out").exists()


def test_layer_missing_from_the_features_file_leaves_nothing(study3, tmp_path):
    study, feats = study3
    with pytest.raises(BrainnetError, match="fc7"):
        encode_subjects(study, "all", tmp_path / "out", features=feats, layer="fc7", n_permutations=0)
    assert not (tmp_path / "out").exists()
