"""The study-level runner (brainnet.runs): layout, early refusal, features in memory, execution, resume.

Encoding runs through it, so encoding is the analysis these tests drive.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainnet import runs
from brainnet.encoding import encode_subject, encode_subjects
from brainnet.errors import BrainnetError, BrainnetNotice
from brainnet.features import load_features
from brainnet.study import Study

KW = dict(cv=3, n_permutations=6)


def _tables(folder: Path) -> dict[str, object]:
    """Every TSV of a results tree; the group table without its column of folders (JSON files hold times)."""
    found = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("sub-*/*/*.tsv"))}
    for path in sorted(folder.glob("group/*/subjects.tsv")):
        found[str(path.relative_to(folder))] = pd.read_csv(path, sep="\t").drop(columns="folder").to_csv()
    return found


def test_folder_name_carries_layer_and_a_named_region(tmp_path):
    assert runs.result_folder(tmp_path, "sub-01", "encode", "fc8") == tmp_path / "sub-01" / "encode-fc8"
    assert runs.result_folder(tmp_path, "sub-01", "encode", "fc7", "V1") == tmp_path / "sub-01" / "encode-fc7-v1"
    assert runs.result_folder(tmp_path, "group", "encode", "fc8", "whole-brain") == (
        tmp_path / "group" / "encode-fc8-whole-brain")
    mask_file = tmp_path / "roi.nii.gz"
    mask_file.write_bytes(b"")  # a mask file is identified by content in the provenance, not in the name
    assert runs.result_folder(tmp_path, "sub-01", "encode", "fc8", mask_file) == tmp_path / "sub-01" / "encode-fc8"
    with pytest.raises(BrainnetError, match="--out"):
        runs.result_folder(tmp_path, "sub-01", "encode", "../../x")


def test_subject_labels_are_resolved_once(small_study):
    study = runs.resolve_study(small_study[0])
    assert isinstance(study, Study)
    assert runs.subject_labels(study, "all") == study.subjects
    assert runs.subject_labels(study, ["sub-02", "01"]) == ["02", "01"]
    assert runs.subject_labels(study, "sub-03") == ["03"]
    with pytest.raises(BrainnetError, match=r"^--subject: a subject is listed twice; list each subject once$"):
        runs.subject_labels(study, ["01", "sub-01"])


def test_other_parameters_are_refused_before_any_data_is_loaded_naming_the_parameter(small_study, tmp_path,
                                                                                       monkeypatch):
    study, feats = small_study
    out = tmp_path / "out"
    encode_subject(study, "01", features=feats, out=out, **KW)
    folder = out / "sub-01" / "encode-fc8"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def no_loading(*args, **kwargs):
        raise AssertionError("subject data loaded before the folder was checked")

    monkeypatch.setattr(Study, "load_subject", no_loading)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError) as err:
            encode_subject(study, "01", features=feats, out=out, cv=3, n_permutations=7)
    assert str(err.value) == (f"{folder}: holds results made with other parameters, weights or data; "
                              "choose another --out folder or pass --overwrite")
    notices = [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)]
    assert notices == [f"{folder}: n_permutations=6 there, 7 in this run"]
    # the seed is not a parameter entry but is named as well
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError):
            encode_subject(study, "01", features=feats, out=out, seed=3, **KW)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{folder}: seed=0 there, 3 in this run"]
    # the group refusal too comes before loading, naming the parameter of the group folder
    encode_subjects_out = tmp_path / "group_out"
    monkeypatch.undo()
    encode_subjects(study, ["01", "02"], encode_subjects_out, features=feats, **KW)
    monkeypatch.setattr(Study, "load_subject", no_loading)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError, match=re.escape(str(encode_subjects_out / "group" / "encode-fc8"))):
            encode_subjects(study, ["01", "02"], encode_subjects_out, features=feats, cv=4, n_permutations=6)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{encode_subjects_out / 'group' / 'encode-fc8'}: cv=3 there, 4 in this run"]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_second_region_in_the_same_out_gets_its_own_folder(small_study, tmp_path):
    study, feats = small_study
    out = tmp_path / "out"
    occipital = encode_subject(study, "01", features=feats, out=out, **KW)
    whole = encode_subject(study, "01", features=feats, out=out, mask="whole-brain", **KW)
    assert occipital.path == out / "sub-01" / "encode-fc8"
    assert whole.path == out / "sub-01" / "encode-fc8-whole-brain"
    assert whole.summary["n_voxels"] > occipital.summary["n_voxels"]
    # the first folder is untouched and still reads as complete
    assert json.loads((occipital.path / "summary.json").read_text())["complete"] is True


def test_features_in_memory_give_the_bytes_of_the_features_file(small_study, tmp_path):
    study, feats = small_study
    from_file = encode_subjects(study, ["01", "02"], tmp_path / "file", features=feats, **KW)
    in_memory = encode_subjects(study, ["01", "02"], tmp_path / "memory", features=load_features(feats), **KW)
    pd.testing.assert_frame_equal(from_file.table.drop(columns="folder"), in_memory.table.drop(columns="folder"))
    assert _tables(tmp_path / "file") == _tables(tmp_path / "memory")


def test_n_jobs_and_dask_give_the_single_thread_bytes(small_study, tmp_path):
    distributed = pytest.importorskip("distributed")
    study, feats = small_study
    labels = ["01", "02"]
    encode_subjects(study, labels, tmp_path / "one", features=feats, n_jobs=1, **KW)
    encode_subjects(study, labels, tmp_path / "two", features=feats, n_jobs=2, **KW)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask = encode_subjects(study, labels, tmp_path / "dask", features=feats, scheduler=client, **KW)
    reference = _tables(tmp_path / "one")
    assert len(reference) == 2 * 2 + 1  # voxel_scores + null_mean_r per subject, subjects.tsv
    assert _tables(tmp_path / "two") == reference
    assert _tables(tmp_path / "dask") == reference
    assert dask.computed == labels


def test_resume_recomputes_only_the_incomplete_subject(small_study, tmp_path):
    study, feats = small_study
    out = tmp_path / "out"
    encode_subjects(study, ["01", "02", "03"], out, features=feats, **KW)
    reference = _tables(out)
    kept = {p: p.stat().st_mtime_ns for p in (out / "sub-01").rglob("*") if p.is_file()}
    (out / "sub-02" / "encode-fc8" / "summary.json").unlink()  # as if interrupted before its end
    again = encode_subjects(study, ["01", "02", "03"], out, features=feats, **KW)
    assert again.computed == ["02"]
    assert {p: p.stat().st_mtime_ns for p in (out / "sub-01").rglob("*") if p.is_file()} == kept
    assert _tables(out) == reference
    assert np.isfinite(again.table["mean_r"].astype(float)).all()


def test_group_analysis_folder_is_refused_before_loading_naming_the_parameter(small_study, tmp_path, monkeypatch):
    from brainnet.decoding import decode_units

    study, feats = small_study
    out = tmp_path / "out"
    kw = dict(features=feats, n_components=2, n_bootstrap=0, n_cluster_draws=0, out=out)
    first = decode_units(study, n_permutations=3, **kw)
    assert first.provenance["parameters"]["n_permutations"] == 3
    folder = out / "group" / "decode-fc8"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def no_loading(*args, **kwargs):
        raise AssertionError("subject data loaded before the folder was checked")

    monkeypatch.setattr(Study, "load_subjects", no_loading)
    monkeypatch.setattr(Study, "load_subject", no_loading)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError, match="^" + re.escape(f"{folder}: holds results made with other")):
            decode_units(study, n_permutations=4, **kw)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{folder}: n_permutations=3 there, 4 in this run"]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_spec_checked_against_the_data_is_refused_for_its_argument_before_the_folder(small_study, tmp_path):
    """prepare_first (network-decoding): an impossible --folds is named first; other parameters still refused."""
    from brainnet.network_subject import network_category_decoding

    study, feats = small_study
    out = tmp_path / "out"
    kw = dict(features_file=feats, n_permutations=0, out=out)
    network_category_decoding(study, n_folds=4, **kw)
    folder = out / "group" / "network-decoding-fc8"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(BrainnetError, match="^" + re.escape(
            "--folds 9: category 'disc' has only 4 stimuli; use --folds between 2 and 4") + "$"):
        network_category_decoding(study, n_folds=9, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError, match="^" + re.escape(f"{folder}: holds results made with other")):
            network_category_decoding(study, n_folds=3, **kw)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{folder}: n_folds=4 there, 3 in this run"]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_an_analysis_of_several_folders_is_refused_before_any_is_made(small_study, tmp_path):
    """parts (RSA: one folder per layer): one folder of other parameters refuses the run, naming them; none is made."""
    from brainnet.rsa import network_as_subject

    study, feats = small_study
    loaded = load_features(feats)
    two = tmp_path / "two.npz"
    np.savez(two, stimulus_ids=np.asarray(loaded.stimulus_ids), a=loaded.layer("fc8"), b=loaded.layer("fc8"))
    out = tmp_path / "out"
    kw = dict(features_file=two, n_bootstrap=0, out=out)
    network_as_subject(study, layers="a", n_permutations=3, **kw)
    folder = out / "group" / "rsa-a"
    before = {p: p.read_bytes() for p in (out / "group").rglob("*") if p.is_file()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BrainnetError, match="^" + re.escape(f"{folder}: holds results made with other")):
            network_as_subject(study, layers="b,a", n_permutations=4, **kw)
    assert [str(w.message) for w in caught if issubclass(w.category, BrainnetNotice)] == [
        f"{folder}: layers=['a'] there, ['b', 'a'] in this run; n_permutations=3 there, 4 in this run"]
    assert not (out / "group" / "rsa-b").exists()
    assert {p: p.read_bytes() for p in (out / "group").rglob("*") if p.is_file()} == before
