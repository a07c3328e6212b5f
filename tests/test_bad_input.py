"""Catalogue of bad inputs (issues 9 and 13), each through a user-facing entry point.

Every refused case must give exit status 2, exactly one error line on
stderr that names the file or option and the fix, no traceback, and leave
nothing behind in ``--out``. Odd but valid images must succeed.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from brainnet.cli import main
from brainnet.errors import BrainnetError
from brainnet.features import load_features
from brainnet.simulate import simulate_study
from brainnet.stimuli import load_stimuli
from brainnet.study import load_study

BETAS = "sub-01/func/sub-01_task-simulated_space-MNI152NLin2009cAsym_desc-singletrial_betas.nii.gz"
EVENTS = "sub-01/func/sub-01_task-simulated_desc-singletrial_events.tsv"
QUICK = ["--permutations", "2", "--cv", "2"]


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    return simulate_study(tmp_path_factory.mktemp("bad") / "study", n_subjects=3, n_stimuli=16, seed=3)


@pytest.fixture
def copy(study, tmp_path):
    """A private, corruptible copy of the study."""
    return Path(shutil.copytree(study, tmp_path / "study"))


@pytest.fixture(scope="session")
def fc8(study, tmp_path_factory):
    """fc8 features of the study's stimuli, extracted once."""
    out = tmp_path_factory.mktemp("feat") / "fc8.npz"
    assert main(["extract", "--stimuli", str(study / "stimuli.tsv"), "--out", str(out), "--quiet"]) == 0
    return out


def _nothing_in(out: Path) -> bool:
    return not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def refused(capsys, argv, *names, out=None) -> str:
    """Run the CLI, assert a clean one-line refusal; return the error line."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refusals
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for name in names:
        assert name in errors[0], errors[0]
    # "<what>: <problem>; <fix>": a message without a fix clause is incomplete
    assert "; " in errors[0].split("error: ", 1)[1], errors[0]
    if out is not None:
        assert _nothing_in(Path(out)), sorted(Path(out).rglob("*"))
    return errors[0]


def extract_ok(capsys, folder: Path, out: Path) -> np.ndarray:
    assert main(["extract", "--stimuli", str(folder), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    feats = load_features(out)
    assert np.isfinite(feats.layer("fc8")).all()
    return feats.layer("fc8")


# ---------------------------------------------------------------- images


def _png_bytes(mode="RGB", size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 120).save(buf, format="PNG")
    return buf.getvalue()


def _bomb(path: Path) -> None:
    # 20000 x 20000 1-bit pixels: 50 MB to write, 400 megapixels to decode
    # (more than twice Pillow's limit, so it is a DecompressionBombError).
    Image.new("1", (20000, 20000)).save(path, optimize=True)


BAD_IMAGES = {
    "corrupt": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
    "truncated": lambda p: p.write_bytes(_png_bytes()[:60]),
    "zero-byte": lambda p: p.write_bytes(b""),
    "non-image": lambda p: p.write_text("this is a text file, not a picture\n"),
    "decompression-bomb": _bomb,
}


@pytest.mark.parametrize("kind", list(BAD_IMAGES), ids=list(BAD_IMAGES))
def test_bad_image_is_refused(kind, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "a_good.png")
    BAD_IMAGES[kind](folder / "b_bad.png")
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--stimuli", folder, "--out", out, "--quiet"], "b_bad.png", out=out.parent)


def _cmyk(p):
    Image.new("CMYK", (50, 40), (0, 120, 200, 10)).save(p.with_suffix(".jpg"))


def _sixteen_bit(p):
    Image.fromarray((np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16)).save(p)


def _palette(p):
    Image.new("RGB", (40, 30), (200, 20, 90)).convert("P", palette=Image.Palette.ADAPTIVE).save(p)


def _alpha(p):
    Image.new("RGBA", (40, 30), (200, 20, 90, 100)).save(p)


def _animated(p):
    frames = [Image.new("P", (40, 30), i * 40) for i in range(3)]
    frames[0].save(p.with_suffix(".gif"), save_all=True, append_images=frames[1:], duration=50, loop=0)


ODD_IMAGES = {"cmyk": _cmyk, "16-bit": _sixteen_bit, "palette": _palette, "alpha": _alpha, "animated": _animated}


@pytest.mark.parametrize("kind", list(ODD_IMAGES), ids=list(ODD_IMAGES))
def test_odd_but_valid_image_succeeds(kind, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "a_good.png")
    ODD_IMAGES[kind](folder / "b_odd.png")
    acts = extract_ok(capsys, folder, tmp_path / "acts.npz")
    assert acts.shape[0] == 2


# ---------------------------------------------------------------- stimuli.tsv


def _edit_stimuli(copy: Path, edit) -> Path:
    path = copy / "stimuli.tsv"
    frame = pd.read_csv(path, sep="\t", dtype=str)
    edit(frame).to_csv(path, sep="\t", index=False)
    return path


STIMULI_EDITS = {
    "duplicate-id": (lambda f: f.assign(stimulus_id=[f.stimulus_id[0]] * 2 + list(f.stimulus_id[2:])), "stim001"),
    "missing-id": (lambda f: f.assign(stimulus_id=[""] + list(f.stimulus_id[1:])), "stimulus_id"),
    "wrong-columns": (lambda f: f.rename(columns={"stimulus_id": "id", "file": "path"}), "stimulus_id"),
}


@pytest.mark.parametrize("kind", list(STIMULI_EDITS), ids=list(STIMULI_EDITS))
def test_bad_stimuli_tsv_is_refused(kind, copy, tmp_path, capsys):
    edit, name = STIMULI_EDITS[kind]
    path = _edit_stimuli(copy, edit)
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--stimuli", path, "--out", out], "stimuli.tsv", name, out=out.parent)


def test_stimuli_tsv_with_unknown_column_names_lists_found_and_accepted_columns(copy, tmp_path, capsys):
    path = _edit_stimuli(copy, lambda f: f.rename(columns={"stimulus_id": "name", "file": "image"}))
    out = tmp_path / "out" / "acts.npz"
    line = refused(capsys, ["extract", "--stimuli", path, "--out", out], out=out.parent)
    assert line == (
        f"brainnet extract: error: {path}: found columns name, image, category but none of the accepted ones: "
        "stimulus_id and file (a stimuli table) or one of stim_file, file_path, ImgName, identifier, stimulus "
        "(an events file); rename the columns, e.g. to stimulus_id and file"
    )


def test_stimuli_tsv_with_only_one_of_the_id_and_file_columns_names_the_missing_one(copy, tmp_path, capsys):
    path = _edit_stimuli(copy, lambda f: f.rename(columns={"file": "image"}))
    out = tmp_path / "out" / "acts.npz"
    line = refused(capsys, ["extract", "--stimuli", path, "--out", out], out=out.parent)
    assert line == (f"brainnet extract: error: {path}: has a stimulus_id column but no file column "
                    "(columns: stimulus_id, image, category); add or rename a column to file")


def test_events_tsv_without_a_known_stimulus_column_lists_its_columns(tmp_path, capsys):
    events = tmp_path / "sub-01_task-x_events.tsv"
    events.write_text("onset\tduration\tpicture\n0\t1\ta.png\n")
    out = tmp_path / "out" / "acts.npz"
    line = refused(capsys, ["extract", "--stimuli", events, "--out", out], out=out.parent)
    assert line == (f"brainnet extract: error: {events}: has no stimulus column (looked for stim_file, file_path, "
                    "ImgName, identifier, stimulus) among its columns onset, duration, picture; "
                    "name the column with --column")


def test_non_utf8_stimuli_tsv_is_refused(copy, tmp_path, capsys):
    path = copy / "stimuli.tsv"
    path.write_bytes(path.read_bytes().replace(b"stim002", b"stim\xe9\xff2"))
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--stimuli", path, "--out", out], "stimuli.tsv", "UTF-8", out=out.parent)


def test_events_naming_a_stimulus_not_in_stimuli_tsv_is_refused(copy, tmp_path, capsys):
    _edit_stimuli(copy, lambda f: f[f.stimulus_id != "stim004"])
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", copy, "--subject", "01", *QUICK, "--out", out], "stim004", out=out)


# ---------------------------------------------------------------- safe paths


def _unsafe_abs(copy, tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8)).save(outside)
    return str(outside)


def _unsafe_dotdot(copy, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    return "../outside.png"


def _unsafe_symlink(copy, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    (copy / "stimuli" / "link.png").symlink_to(tmp_path / "outside.png")
    return "link.png"


UNSAFE = {"absolute": _unsafe_abs, "dotdot": _unsafe_dotdot, "symlink-out": _unsafe_symlink}


@pytest.mark.parametrize("kind", list(UNSAFE), ids=list(UNSAFE))
def test_stimulus_path_escaping_its_root_is_refused(kind, copy, tmp_path, capsys):
    name = UNSAFE[kind](copy, tmp_path)
    path = _edit_stimuli(copy, lambda f: f.assign(file=[name] + list(f.file[1:])))
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--stimuli", path, "--out", out], "stimuli.tsv", out=out.parent)


# ---------------------------------------------------------------- NIfTI


def _rewrite_betas(copy: Path, edit) -> None:
    img = nib.load(copy / BETAS)
    data = np.asarray(img.dataobj, dtype=np.float32)
    nib.save(nib.Nifti1Image(edit(data), img.affine), copy / BETAS)


def test_events_volume_count_mismatch_is_refused(copy, tmp_path, capsys):
    _rewrite_betas(copy, lambda d: d[..., :-1])
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", copy, "--subject", "01", *QUICK, "--out", out], "sub-01", out=out)


def test_betas_with_wrong_dimensionality_are_refused(copy, tmp_path, capsys):
    _rewrite_betas(copy, lambda d: d[..., 0])
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", copy, "--subject", "01", *QUICK, "--out", out], "betas", out=out)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_betas_with_a_few_nonfinite_voxels_drop_them_with_a_notice(bad, copy, tmp_path, capsys):
    from brainnet.masks import load_mask

    region = np.asarray(load_mask("occipital", target_img=nib.load(copy / BETAS)).dataobj) > 0

    def edit(d):
        i, j, k = (v[0] for v in np.nonzero(region & (d.std(axis=3) > 0)))
        d[i, j, k, 3] = bad
        return d

    _rewrite_betas(copy, edit)
    out = tmp_path / "out"
    assert main(["encode", "--study", str(copy), "--subject", "01", *QUICK, "--out", str(out)]) == 0
    assert "dropped 1 of" in capsys.readouterr().err
    scores = pd.read_csv(next(out.rglob("voxel_scores.tsv")), sep="\t")
    assert np.isfinite(scores.select_dtypes("number").to_numpy()).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("command", ["encode", "decode"])
def test_betas_that_are_all_nonfinite_are_refused(bad, command, copy, tmp_path, capsys):
    # the file is at fault, not the mask: the message must say so (it used to
    # blame a mask that "does not overlap the data")
    _rewrite_betas(copy, lambda d: np.full_like(d, bad))
    out = tmp_path / "out"
    who = ["--subject", "01", *QUICK] if command == "encode" else ["--permutations", "2", "--bootstrap", "0"]
    line = refused(capsys, [command, "--study", copy, *who, "--out", out], out=out)
    assert line == (f"brainnet {command}: error: {copy / BETAS}: every value of the betas file is NaN or Inf; "
                    "re-estimate the single-trial betas (brainnet betas) and check the GLM that wrote them")


def test_betas_with_identical_volumes_are_refused(copy, tmp_path, capsys):
    _rewrite_betas(copy, lambda d: np.zeros_like(d))
    out = tmp_path / "out"
    line = refused(capsys, ["encode", "--study", copy, "--subject", "01", *QUICK, "--out", out], out=out)
    n = nib.load(copy / BETAS).shape[3]
    assert line == (f"brainnet encode: error: {copy / BETAS}: all {n} volumes of the betas file are identical "
                    "(no trial-to-trial variation); re-estimate the single-trial betas (brainnet betas) and check "
                    "the GLM that wrote them")


def _mask_like(study: Path, tmp_path: Path, kind: str) -> Path:
    ref = nib.load(study / BETAS)
    shape = ref.shape[:3]
    if kind == "all-zero":
        img = nib.Nifti1Image(np.zeros(shape, np.uint8), ref.affine)
    elif kind == "4-d":
        img = nib.Nifti1Image(np.ones(shape + (2,), np.uint8), ref.affine)
    elif kind == "nan":
        data = np.ones(shape, np.float32)
        data[0, 0, 0] = np.nan
        img = nib.Nifti1Image(data, ref.affine)
    else:  # another space: a shifted, coarser grid
        affine = ref.affine.copy()
        affine[:3, :3] *= 2
        affine[:3, 3] += 7
        img = nib.Nifti1Image(np.ones(tuple(s // 2 for s in shape), np.uint8), affine)
    path = tmp_path / f"mask_{kind}.nii.gz"
    nib.save(img, path)
    return path


@pytest.mark.parametrize("kind", ["all-zero", "4-d", "other-space"])
def test_bad_mask_is_refused(kind, study, fc8, tmp_path, capsys):
    mask = _mask_like(study, tmp_path, kind)
    out = tmp_path / "out"
    argv = ["encode", "--study", study, "--features", fc8, "--mask", mask, *QUICK, "--out", out]
    refused(capsys, argv, mask.name, out=out)


def test_nan_in_a_mask_means_outside(study, fc8, tmp_path, capsys):
    ref = nib.load(study / BETAS)
    varying = np.asarray(ref.dataobj).std(axis=3) > 0
    data = np.full(varying.shape, np.nan, np.float32)
    inside = tuple(v[:40] for v in np.nonzero(varying))
    data[inside] = 1.0
    mask = tmp_path / "nan_mask.nii.gz"
    nib.save(nib.Nifti1Image(data, ref.affine), mask)
    out = tmp_path / "out"
    assert main(["encode", "--study", str(study), "--features", str(fc8), "--mask", str(mask), *QUICK,
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert len(pd.read_csv(next(out.rglob("voxel_scores.tsv")), sep="\t")) == 40


# ---------------------------------------------------------------- features


def test_features_in_another_order_are_realigned(study, fc8, tmp_path, capsys):
    feats = load_features(fc8)
    order = np.random.default_rng(0).permutation(len(feats.stimulus_ids))
    shuffled = tmp_path / "shuffled.npz"
    np.savez(shuffled, stimulus_ids=np.asarray(feats.stimulus_ids)[order], fc8=feats.layer("fc8")[order])
    tables = []
    for src, name in [(fc8, "a"), (shuffled, "b")]:
        out = tmp_path / name
        assert main(["encode", "--study", str(study), "--features", str(src), *QUICK, "--out", str(out)]) == 0
        tables.append(pd.read_csv(next(out.rglob("voxel_scores.tsv")), sep="\t"))
    capsys.readouterr()
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_features_missing_a_stimulus_are_refused(study, fc8, tmp_path, capsys):
    feats = load_features(fc8)
    path = tmp_path / "short.npz"
    np.savez(path, stimulus_ids=np.asarray(feats.stimulus_ids)[1:], fc8=feats.layer("fc8")[1:])
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", study, "--features", path, *QUICK, "--out", out],
            "short.npz", feats.stimulus_ids[0], out=out)


def test_features_with_nan_are_refused(study, fc8, tmp_path, capsys):
    feats = load_features(fc8)
    values = feats.layer("fc8").copy()
    values[3, 2] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, stimulus_ids=np.asarray(feats.stimulus_ids), fc8=values)
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", study, "--features", path, *QUICK, "--out", out], "nan.npz", out=out)


# ---------------------------------------------------------------- subject, layer


def test_unknown_subject_is_refused(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", study, "--features", fc8, "--subject", "99", *QUICK, "--out", out],
            "99", out=out)


@pytest.mark.parametrize("command", ["encode", "extract"])
def test_unknown_layer_is_refused(command, study, fc8, tmp_path, capsys):
    if command == "encode":
        out = tmp_path / "out"
        argv = ["encode", "--study", study, "--features", fc8, "--layer", "fc9", *QUICK, "--out", out]
    else:
        out = tmp_path / "out" / "acts.npz"
        argv = ["extract", "--demo", "--layers", "fc9", "--out", out]
    refused(capsys, argv, "fc9", out=out if command == "encode" else out.parent)


# ---------------------------------------------------------------- weights


class _Payload:
    """Pickles to a call that creates a file: proof that code ran."""

    def __init__(self, flag: Path):
        self.flag = str(flag)

    def __reduce__(self):
        return (Path.touch, (Path(self.flag),))


def _bad_weights(kind: str, path: Path, flag: Path) -> None:
    import torch

    from brainnet.models.emonet import EmoNet

    good = EmoNet().state_dict()
    if kind == "not-a-state-dict":
        torch.save([torch.zeros(3)], path)
    elif kind == "wrong-keys":
        torch.save({f"renamed.{k}": v for k, v in good.items()}, path)
    elif kind == "wrong-shapes":
        torch.save({k: v[..., :1].clone() if v.ndim else v for k, v in good.items()}, path)
    elif kind == "pickled-code":
        torch.save({"state_dict": good, "evil": _Payload(flag)}, path)
    else:  # not even a torch file
        path.write_bytes(b"not a checkpoint at all")


WEIGHTS = ["not-a-state-dict", "wrong-keys", "wrong-shapes", "pickled-code", "garbage-bytes"]


@pytest.mark.parametrize("kind", WEIGHTS)
def test_bad_weights_file_is_refused(kind, tmp_path, capsys):
    path, flag = tmp_path / "bad.pt", tmp_path / "code_ran"
    _bad_weights(kind, path, flag)
    flag.unlink(missing_ok=True)  # only loading may (wrongly) create it
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--demo", "--weights", path, "--out", out], "bad.pt", out=out.parent)
    assert not flag.exists(), "the weights file's pickled code ran"


# ---------------------------------------------------------------- manifests


@pytest.fixture
def http_server():
    """Serves the same non-weights bytes at every address on 127.0.0.1."""
    import http.server
    import threading

    body = b"these are not the bytes the manifest describes" * 100

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", body
    server.shutdown()
    server.server_close()


def test_download_with_wrong_checksum_leaves_nothing(http_server, tmp_path):
    import hashlib

    from brainnet.datasets.download import download

    url, body = http_server
    dest = tmp_path / "dest" / "file.bin"
    wrong = hashlib.sha256(body + b"!").hexdigest()
    with pytest.raises(BrainnetError, match="sha256 mismatch") as info:
        download(url + "/file.bin", dest, sha256=wrong, progress=False)
    assert "\n" not in str(info.value)
    assert _nothing_in(dest.parent)


def test_fetched_weights_that_fail_verification_are_deleted(http_server, tmp_path, capsys):
    dest = tmp_path / "dest"
    refused(capsys, ["fetch", "weights", "--url", http_server[0] + "/emonet.pt", "--dest", dest, "--quiet"],
            "rejected and deleted", "brainnet fetch weights", out=dest)


# ---------------------------------------------------------------- property tests


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_stimuli_parser_never_crashes_on_bytes(data, tmp_path):
    path = tmp_path / "stimuli.tsv"
    path.write_bytes(data)
    try:
        load_stimuli(path)
    except BrainnetError as err:
        assert "\n" not in str(err)


_cell = st.text(alphabet=st.sampled_from("ab1./_\t\n é\\\"'x"), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.lists(st.sampled_from(["stimulus_id", "file", "category", "x", ""]), max_size=4),
       rows=st.lists(st.lists(_cell, max_size=4), max_size=4))
def test_stimuli_parser_never_crashes_on_tables(header, rows, tmp_path):
    (tmp_path / "ab.png").write_bytes(_png_bytes())
    path = tmp_path / "stimuli.tsv"
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    try:
        load_stimuli(path)
    except BrainnetError as err:
        assert "\n" not in str(err)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".npz", ".tsv"]))
def test_features_parser_never_crashes_on_bytes(data, suffix, tmp_path):
    path = tmp_path / f"features{suffix}"
    path.write_bytes(data)
    try:
        load_features(path)
    except BrainnetError as err:
        assert "\n" not in str(err)


_arrays = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(np.asarray),
    st.lists(st.lists(st.floats(width=32), min_size=2, max_size=2), max_size=4).map(np.asarray),
    st.lists(st.text(max_size=4), max_size=4).map(np.asarray),
    st.lists(st.integers(-5, 5), max_size=5).map(lambda v: np.asarray(v, dtype=object)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=st.dictionaries(st.sampled_from(["stimulus_ids", "fc8", "fc7", "x"]), _arrays, max_size=3))
def test_features_parser_never_crashes_on_npz_contents(arrays, tmp_path):
    path = tmp_path / "features.npz"
    np.savez(path, **arrays)  # object arrays are pickled: must be refused, not loaded
    try:
        feats = load_features(path)
    except BrainnetError as err:
        assert "\n" not in str(err)
    else:
        for name in feats.layer_names:
            assert feats.layer(name).shape[0] == len(feats.stimulus_ids)


@pytest.mark.parametrize("command", ["decode", "rsa"])
def test_too_few_subjects_for_a_group_analysis_leave_nothing(command, study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, [command, "--study", study, "--features", fc8, "--subjects", "01,02", "--permutations", "2",
                     "--bootstrap", "0", "--out", out], "at least 3", out=out)


def test_events_file_path_escaping_its_root_is_refused(copy, tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    events = copy / "sub-01" / "func" / "sub-01_task-x_events.tsv"
    events.write_text("onset\tduration\tstim_file\n0\t1\tstim001_disc.png\n2\t1\t../../outside.png\n")
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--stimuli", events, "--stimuli-root", copy / "stimuli", "--out", out],
            "outside.png", out=out.parent)


def test_missing_image_file_is_refused(copy, tmp_path, capsys):
    (copy / "stimuli" / "stim005_disc.png").unlink()
    out = tmp_path / "out" / "acts.npz"
    refused(capsys, ["extract", "--stimuli", copy / "stimuli.tsv", "--out", out], "stim005_disc.png", out=out.parent)


def test_unknown_mask_name_is_refused(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", study, "--features", fc8, "--mask", "occipitl", *QUICK, "--out", out],
            "--mask occipitl", "occipital", out=out)


def test_other_permutations_in_the_same_folder_name_the_parameter_before_loading(study, fc8, tmp_path, capsys,
                                                                                  monkeypatch):
    from brainnet.study import Study

    out = tmp_path / "out"
    argv = ["encode", "--study", study, "--features", fc8, "--subject", "01", "--cv", "2", "--out", out]
    assert main([str(a) for a in [*argv, "--permutations", "2"]]) == 0
    capsys.readouterr()
    folder = out / "sub-01" / "encode-fc8"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def no_loading(*args, **kwargs):
        raise AssertionError("the subject's data was loaded before the folder was checked")

    monkeypatch.setattr(Study, "load_subject", no_loading)
    try:
        rc = main([str(a) for a in [*argv, "--permutations", "3"]])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        f"brainnet: {folder}: n_permutations=2 there, 3 in this run",
        f"brainnet encode: error: {folder}: holds results made with other parameters, weights or data; "
        "choose another --out folder or pass --overwrite",
    ]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_unknown_subject_in_a_group_analysis_is_refused(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["decode", "--study", study, "--features", fc8, "--subjects", "01,02,07", "--out", out],
            "--subjects 07", out=out)


def test_features_tsv_in_another_order_is_realigned(study, fc8, tmp_path, capsys):
    feats = load_features(fc8)
    frame = pd.DataFrame(feats.layer("fc8"), columns=[f"fc8_{i}" for i in range(feats.layer("fc8").shape[1])])
    frame.insert(0, "stimulus_id", feats.stimulus_ids)
    path = tmp_path / "features.tsv"
    frame.iloc[::-1].to_csv(path, sep="\t", index=False)
    back = load_features(path)
    rows = back.rows_for(feats.stimulus_ids)
    np.testing.assert_allclose(back.layer(back.layer_names[0])[rows], feats.layer("fc8"), rtol=1e-6)


API_CALLS = {
    "encode_subject": ("encode_subject", {"subject": "01", "features": "{f}", "n_permutations": 2, "cv": 2}),
    "decode_units": ("decode_units", {"features": "{f}", "n_permutations": 2, "n_bootstrap": 0}),
    "network_as_subject": ("network_as_subject", {"features_file": "{f}", "n_permutations": 2, "n_bootstrap": 0}),
    "power_analysis": ("power_analysis", {"features_file": "{f}", "subject_sizes": [3], "n_repeats": 1}),
}


@pytest.mark.parametrize("call", list(API_CALLS))
def test_public_api_refuses_nan_features_and_leaves_nothing(call, study, fc8, tmp_path):
    import brainnet

    name, kwargs = API_CALLS[call]
    feats = load_features(fc8)
    values = feats.layer("fc8").copy()
    values[1, 1] = np.inf
    path = tmp_path / "inf.npz"
    np.savez(path, stimulus_ids=np.asarray(feats.stimulus_ids), fc8=values)
    kwargs = {k: (str(path) if v == "{f}" else v) for k, v in kwargs.items()}
    out = tmp_path / "out"
    with pytest.raises(BrainnetError) as info:
        getattr(brainnet, name)(study, out=out, **kwargs)
    assert "inf.npz" in str(info.value) and "\n" not in str(info.value)
    assert _nothing_in(out)


def test_too_many_folds_leave_nothing(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["encode", "--study", study, "--features", fc8, "--cv", "40", "--permutations", "2",
                     "--out", out], "--cv 40", out=out)


@pytest.mark.parametrize("command", ["figures", "report"])
@pytest.mark.parametrize("state", ["missing", "incomplete"])
def test_results_folder_that_is_missing_or_incomplete_is_refused(command, state, tmp_path, capsys):
    results = tmp_path / "results"
    if state == "incomplete":  # e.g. a killed run: run.json, no summary.json with complete: true
        (results / "sub-01" / "encode-fc8").mkdir(parents=True)
        (results / "sub-01" / "encode-fc8" / "run.json").write_text("{}")
    argv = [command, "--results", results]
    if command == "report":
        argv += ["--out", tmp_path / "report.html"]
    refused(capsys, argv, str(results), "--")
    assert not (tmp_path / "report.html").exists() and not (results / "figures").exists()


def test_dataset_manifest_with_wrong_checksum_is_refused(http_server, tmp_path, capsys, monkeypatch):
    import hashlib
    import json

    url, body = http_server
    rel = "sub-01/func/sub-01_task-x_run-01_events.tsv"
    manifest = {
        "schema_version": 1, "accession": "ds000001", "version": "1.0.0", "licence": "CC0", "tasks": ["x"],
        "subjects": ["01"], "stimuli": {"how": "in_dataset", "description": "test"},
        "workflows": {"image_encoding": {"parts": ["events"]}},
        "download": {"url_template": "http://127.0.0.1:9/{path}"},
        "parts": {"events": {"globs": ["sub-*/func/*_events.tsv"],
                             "files": [[rel, len(body), "md5", hashlib.md5(body + b"!").hexdigest()]]}},
    }
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "ds000001.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("BRAINNET_MANIFEST_DIR", str(tmp_path / "manifests"))
    import brainnet.cli.fetch as fetch_cli

    # the command's dataset list is read at import: register the test manifest
    monkeypatch.setattr(fetch_cli, "FETCHERS", dict(fetch_cli.FETCHERS))
    fetch_cli.register_fetchers(fetch_cli.FETCHERS)
    dest = tmp_path / "bids"
    refused(capsys, ["fetch", "ds000001", "--dest", dest, "--url", url, "--strict", "--quiet"], "md5 mismatch",
            "rerun")
    # only the fetcher's own record of verified files (empty) may remain, no data
    left = [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()]
    assert left in ([], [".brainnet/verified.json"]), left


# ---------------------------------------------------------------- naturalistic


@pytest.fixture
def movie(tmp_path):
    """A 4x4x4 x 120-volume BOLD run (TR 1 s) and 2 frames/s features that match it."""
    rng = np.random.default_rng(0)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    data = rng.standard_normal((4, 4, 4, 120)).astype(np.float32) + 100
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "bold.nii.gz")
    np.save(tmp_path / "frames.npy", rng.standard_normal((240, 5)))
    return tmp_path


def _naturalistic(movie, *extra, bold="bold.nii.gz", frames="frames.npy"):
    return ["naturalistic", "--bold", movie / bold, "--tr", "1", "--frame-rate", "2", "--gap-s", "5",
            "--frame-features", movie / frames, *extra, "--out", movie / "out"]


def _refused_line(capsys, argv, out) -> str:
    return refused(capsys, argv, out=out).split("error: ", 1)[1]


BAD_FRAMES = {
    "unreadable": (lambda p: p.write_bytes(b"garbage, not numpy"),
                   "frames.npy: not a readable .npy file of numbers (ValueError); "
                   "re-save the frame features as a numeric .npy or .mat"),
    "3-d": (lambda p: np.save(p, np.ones((240, 5, 2))),
            "frames.npy: frame features of shape (240, 5, 2): need a numeric (n_frames, n_units) array; "
            "pass one row per movie frame"),
    "nan": (lambda p: np.save(p, np.where(np.arange(240)[:, None] == 7, np.nan, np.ones((240, 5)))),
            "frames.npy: frame features contain NaN or infinite values in 1 frames (first: row 7); "
            "remove or interpolate those frames"),
    "pickled": (lambda p: np.save(p, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True),
                "frames.npy: not a readable .npy file of numbers (ValueError); "
                "re-save the frame features as a numeric .npy or .mat"),
}


@pytest.mark.parametrize("kind", list(BAD_FRAMES))
def test_naturalistic_refuses_bad_frame_features(kind, movie, capsys):
    write, message = BAD_FRAMES[kind]
    write(movie / "frames.npy")
    assert _refused_line(capsys, _naturalistic(movie), movie / "out") == f"{movie}/{message}"


@pytest.mark.parametrize(("option", "value", "fix"), [
    ("--frame-rate", "0", "give the frames per second of --frame-features, e.g. --frame-rate 25"),
    ("--frame-rate", "-2", "give the frames per second of --frame-features, e.g. --frame-rate 25"),
    ("--tr", "0", "give the repetition time in seconds, e.g. --tr 2"),
    ("--n-splits", "1", "use at least 2 test blocks, e.g. --n-splits 5"),
], ids=["frame-rate-0", "frame-rate-negative", "tr-0", "n-splits-1"])
def test_naturalistic_refuses_impossible_numbers(option, value, fix, movie, capsys):
    line = _refused_line(capsys, _naturalistic(movie, option, value), movie / "out")
    assert line == f"{option} {value}: out of range; {fix}"


def test_naturalistic_refuses_too_few_volumes_for_blocks_and_gaps(movie, capsys):
    line = _refused_line(capsys, _naturalistic(movie, "--n-splits", "5", "--gap-s", "60"), movie / "out")
    assert line == ("120 volumes cannot make 5 blocks with a gap of 60 volumes on each side; "
                    "use fewer splits or a shorter gap (--n-splits, --gap-s)")


def test_naturalistic_refuses_3d_bold(movie, capsys):
    img = nib.load(movie / "bold.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine), movie / "bold3d.nii.gz")
    line = _refused_line(capsys, _naturalistic(movie, bold="bold3d.nii.gz"), movie / "out")
    assert line == f"{movie / 'bold3d.nii.gz'}: is 3-D; pass a 4-D BOLD image"


def test_naturalistic_refuses_bold_with_nan_volumes(movie, capsys):
    img = nib.load(movie / "bold.nii.gz")
    data = np.asarray(img.dataobj).copy()
    data[..., [5, 9]] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), movie / "bold.nii.gz")
    line = _refused_line(capsys, _naturalistic(movie), movie / "out")
    assert line == (f"{movie / 'bold.nii.gz'}: 2 of 120 volumes hold NaN or Inf values inside the mask "
                    "(first: volume 5); set those volumes to 0 so they are censored, or choose a --mask that "
                    "leaves such voxels out")


def test_naturalistic_refuses_a_mask_outside_the_bold_grid(movie, capsys):
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[0, 3] = 100.0  # the same grid shifted 100 mm: no overlap
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), affine), movie / "far.nii.gz")
    line = _refused_line(capsys, _naturalistic(movie, "--mask", movie / "far.nii.gz"), movie / "out")
    assert line == (f"--mask {movie / 'far.nii.gz'}: no mask voxel falls inside the data grid (shape (4, 4, 4)); "
                    "check that the mask and the data are in the same space (e.g. MNI152)")


def test_encode_naturalistic_api_refusal_during_the_analysis_leaves_no_folder(movie):
    from brainnet.naturalistic import encode_naturalistic

    img = nib.load(movie / "bold.nii.gz")
    data = np.asarray(img.dataobj).copy()
    data[..., 3] = np.inf
    nib.save(nib.Nifti1Image(data, img.affine), movie / "bold.nii.gz")
    out = movie / "results" / "naturalistic"
    with pytest.raises(BrainnetError, match="1 of 120 volumes hold NaN or Inf"):
        encode_naturalistic(movie / "bold.nii.gz", movie / "frames.npy", frame_rate=2, tr=1, gap_s=5, out=out)
    assert not (movie / "results").exists()


def _nndb(movie, *extra):
    return ["naturalistic", "--nndb", movie / "nndb", "--frame-features", movie / "frames.npy", "--frame-rate", "2",
            *extra, "--out", movie / "out"]


def test_naturalistic_zero_padded_nndb_subject_suggests_the_plain_label(movie, capsys):
    line = _refused_line(capsys, _nndb(movie, "--subject", "01", "--task", "citizenfour"), movie / "out")
    assert line == "subject '01': NNDb subjects are sub-1 ... sub-86 (not zero-padded); pass 1 (or sub-1)"


def test_naturalistic_missing_nndb_derivative_suggests_the_fetch_command(movie, capsys):
    line = _refused_line(capsys, _nndb(movie, "--subject", "3", "--task", "citizenfour"), movie / "out")
    path = movie / "nndb/derivatives/sub-3/func/sub-3_task-citizenfour_bold_blur_censor.nii.gz"
    assert line == (f"{path}: no such file; fetch it with `brainnet fetch ds002837 --subjects 3 --what derivatives "
                    f"--dest {movie / 'nndb'}` (check the film: each subject watched one)")


def test_naturalistic_nndb_without_subject_and_task_is_refused(movie, capsys):
    line = _refused_line(capsys, _nndb(movie), movie / "out")
    assert line == "--nndb: needs --subject and --task; add e.g. --subject 1 --task 500daysofsummer"


def test_encode_naturalistic_api_names_the_bad_frame_file(movie):
    from brainnet.naturalistic import encode_naturalistic

    BAD_FRAMES["nan"][0](movie / "frames.npy")
    with pytest.raises(BrainnetError) as info:
        encode_naturalistic(movie / "bold.nii.gz", movie / "frames.npy", frame_rate=2, tr=1, gap_s=5)
    assert str(info.value) == f"{movie}/{BAD_FRAMES['nan'][1]}"
    with pytest.raises(BrainnetError) as info:
        encode_naturalistic(movie / "bold.nii.gz", np.ones((240, 5)), frame_rate=0, tr=1)
    assert str(info.value) == ("frame_rate=0, tr=1: both must be positive numbers of Hz / seconds; "
                               "check --frame-rate and --tr")


# ---------------------------------------------------------------- betas

_RUN = "sub-01_task-x_run-01"
_PREP = f"derivatives/fmriprep/sub-01/func/{_RUN}_space-T1w_desc-preproc_bold.nii.gz"
_CONF = f"derivatives/fmriprep/sub-01/func/{_RUN}_desc-confounds_timeseries.tsv"
_EVENTS = f"sub-01/func/{_RUN}_events.tsv"
_MASK = f"derivatives/fmriprep/sub-01/func/{_RUN}_space-T1w_desc-brain_mask.nii.gz"
_MOTION6 = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


@pytest.fixture
def bids(tmp_path):
    """One 60-volume run (TR 2 s), its events, fMRIPrep BOLD + confounds, and a mask on its grid."""
    rng = np.random.default_rng(0)
    root = tmp_path / "bids"
    (root / "sub-01" / "func").mkdir(parents=True)
    (root / "derivatives/fmriprep/sub-01/func").mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    pd.DataFrame({"onset": np.arange(6) * 16.0 + 4, "duration": 2.0, "stim_file": [f"s{i}.png" for i in range(6)]}) \
        .to_csv(root / _EVENTS, sep="\t", index=False)
    img = nib.Nifti1Image((100 + rng.standard_normal((4, 4, 4, 60))).astype(np.float32), np.diag([3.0, 3, 3, 1]))
    img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
    img.to_filename(root / _PREP)
    motion = pd.DataFrame({c: rng.normal(0, 0.01, 60) for c in _MOTION6})
    for c in _MOTION6:  # fMRIPrep's Friston-24 expansion (the default --confounds motion24)
        motion[f"{c}_derivative1"] = motion[c].diff()
        motion[f"{c}_power2"] = motion[c] ** 2
        motion[f"{c}_derivative1_power2"] = motion[f"{c}_derivative1"] ** 2
    motion.to_csv(root / _CONF, sep="\t", index=False, na_rep="n/a")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), img.affine), tmp_path / "mask.nii.gz")
    return root


def _betas_argv(bids, *extra):
    return ["betas", "--bids", bids, "--subject", "01", "--task", "x", "--method", "lsa", "--noise-model", "ols",
            "--mask", bids.parent / "mask.nii.gz", *extra, "--out", bids.parent / "study"]


def _edit_bold(bids, edit):
    img = nib.load(bids / _PREP)
    out = nib.Nifti1Image(edit(np.asarray(img.dataobj).copy()), img.affine)
    out.header.set_zooms(img.header.get_zooms()[: out.ndim])
    nib.save(out, bids / _PREP)


def _edit_events(bids, edit):
    edit(pd.read_csv(bids / _EVENTS, sep="\t")).to_csv(bids / _EVENTS, sep="\t", index=False)


def _set_nan(d):
    d[..., 10] = np.nan
    return d


def _mask_other_space(bids):
    affine = np.diag([2.0, 2, 2, 1])
    affine[:3, 3] = 50
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.uint8), affine), bids.parent / "mask.nii.gz")


def _second_run_on_another_grid(bids):
    shutil.copy(bids / _EVENTS, bids / _EVENTS.replace("run-01", "run-02"))
    shutil.copy(bids / _CONF, bids / _CONF.replace("run-01", "run-02"))
    img = nib.Nifti1Image(np.full((5, 5, 5, 60), 100, np.float32), np.diag([3.0, 3, 3, 1]))
    nib.save(img, bids / _PREP.replace("run-01", "run-02"))


BAD_BETAS = {
    "bids-missing": (lambda b: shutil.rmtree(b), [],
                     "{b}: BIDS folder not found; give --bids the dataset root"),
    "unknown-subject": (lambda b: None, ["--subject", "07"],
                        "{b}/sub-07: no events files for task 'x'; check --bids, --subject and --task (subjects: 01)"),
    "unknown-task": (lambda b: None, ["--task", "rest"],
                     "{b}/sub-01: no events files for task 'rest'; check --bids, --subject and --task "
                     "(tasks of sub-01: x)"),
    "events-without-onset": (lambda b: _edit_events(b, lambda f: f.rename(columns={"onset": "start"})), [],
                             "{b}/" + _EVENTS + ": missing column 'onset' (columns: start, duration, stim_file); "
                             "add the BIDS columns onset and duration (in seconds)"),
    "events-past-the-scan": (lambda b: _edit_events(b, lambda f: f.assign(onset=f.onset.where(f.index < 5, 500.0))),
                             [], "{b}/" + _EVENTS + ": 1 trial(s) start after the run ends (60 volumes x TR 2 s = "
                             "120 s; latest onset 500 s); check --tr and that the events file belongs to this BOLD run"),
    "bold-3d": (lambda b: _edit_bold(b, lambda d: d[..., 0]), [],
                "{b}/" + _PREP + ": BOLD run must be 4-D (x, y, z, time), got shape (4, 4, 4); "
                "pass the 4-D run, not a single volume"),
    "bold-nan-volume": (lambda b: _edit_bold(b, _set_nan), [],
                        "{b}/" + _PREP + ": 1 of 60 volumes hold NaN or Inf values (first: volume 10); "
                        "re-run the preprocessing, or replace those values before estimating betas"),
    "confounds-rows": (lambda b: pd.read_csv(b / _CONF, sep="\t").iloc[:-3].to_csv(b / _CONF, sep="\t", index=False),
                       ["--confounds", "motion6"],
                       "{b}/" + _CONF + f": 57 rows but {Path(_PREP).name} has 60 volumes; use the confounds table "
                       "fMRIPrep wrote for this run (one row per volume)"),
    "runs-of-different-grids": (_second_run_on_another_grid, [],
                                "{b}/" + _PREP.replace("run-01", "run-02") + ": grid (shape (5, 5, 5)) differs from that of "
                                + Path(_PREP).name + " (shape (4, 4, 4)) or its affine; give runs on one grid (fMRIPrep "
                                "writes every run of one --space on one grid: choose it with --space)"),
    "confounds-columns-missing": (lambda b: None, ["--confounds", "wmcsf"],
                                  "{b}/" + _CONF + ": missing confound columns csf, white_matter wanted by --confounds wmcsf; "
                                  "choose a strategy this table supports (none, motion6, motion12, motion24) or re-run fMRIPrep"),
    "confounds-scrubbing-without-fd": (lambda b: None, ["--confounds", "scrubbing"],
                                       "{b}/" + _CONF + ": missing confound columns csf, csf_derivative1, csf_power2, "
                                       "csf_derivative1_power2, white_matter, white_matter_derivative1, white_matter_power2, "
                                       "white_matter_derivative1_power2, framewise_displacement, std_dvars wanted by "
                                       "--confounds scrubbing; choose a strategy this table supports (none, motion6, "
                                       "motion12, motion24) or re-run fMRIPrep"),
    "confounds-acompcor-without-sidecar": (lambda b: None, ["--confounds", "acompcor"],
                                           "{b}/" + _CONF + ": missing confound columns cosine*, a_comp_cor_* (listed with "
                                           "Mask 'combined' in " + Path(_CONF).with_suffix(".json").name + ") wanted by "
                                           "--confounds acompcor; choose a strategy this table supports (none, motion6, "
                                           "motion12, motion24) or re-run fMRIPrep"),
    "confounds-table-missing": (lambda b: (b / _CONF).unlink(), ["--confounds", "motion6"],
                                "{b}/" + _PREP + ": no fMRIPrep confounds table (*_desc-confounds_timeseries.tsv) beside "
                                "this run; give the fMRIPrep outputs as fMRIPrep wrote them, or pass --confounds none"),
    "mask-4d": (lambda b: nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2), np.uint8), np.diag([3.0, 3, 3, 1])),
                                   b.parent / "mask.nii.gz"), [],
                "{m}: mask must be 3-D, got shape (4, 4, 4, 2); give a single 3-D mask volume"),
    "mask-other-space": (_mask_other_space, [],
                         "{m}: mask grid (shape (8, 8, 8)) differs from the BOLD grid of " + Path(_PREP).name +
                         " (shape (4, 4, 4)) or its affine; resample the mask to the BOLD, e.g. "
                         "nilearn.image.resample_to_img(mask, bold, interpolation='nearest')"),
}


@pytest.mark.parametrize("kind", list(BAD_BETAS))
def test_betas_refuses_bad_bids_input(kind, bids, capsys):
    edit, extra, message = BAD_BETAS[kind]
    edit(bids)
    argv = _betas_argv(bids, *extra)  # a repeated --subject/--task: argparse keeps the last
    line = _refused_line(capsys, argv, bids.parent / "study")
    assert line == message.format(b=bids, m=bids.parent / "mask.nii.gz")


def _without_mask(argv):
    return [a for a in argv if not (isinstance(a, Path) and a.name == "mask.nii.gz") and a != "--mask"]


def test_betas_with_an_empty_automatic_mask_asks_for_one(bids, capsys):
    raw = bids / _EVENTS.replace("_events.tsv", "_bold.nii.gz")
    shutil.copy(bids / _PREP, raw)  # --derivatives none models the raw BOLD, with a mask nilearn computes
    line = _refused_line(capsys, [*_without_mask(_betas_argv(bids)), "--derivatives", "none"], bids.parent / "study")
    assert line == (f"{raw}: the brain mask nilearn computed from this run is empty; "
                    "pass --mask with the voxels to model (a NIfTI on the BOLD grid)")


def test_betas_without_fmriprep_brain_mask_asks_for_one(bids, capsys):
    line = _refused_line(capsys, _without_mask(_betas_argv(bids)), bids.parent / "study")
    assert line == (f"{bids / _PREP}: no fMRIPrep brain mask of this run and space ({Path(_MASK).name} not found "
                    "beside it); pass --mask with the voxels to model (a NIfTI on the BOLD grid)")


def test_betas_with_an_fmriprep_mask_on_another_grid_is_refused(bids, capsys):
    _mask_other_space(bids)
    shutil.move(bids.parent / "mask.nii.gz", bids / _MASK)
    line = _refused_line(capsys, _without_mask(_betas_argv(bids)), bids.parent / "study")
    assert line == (f"{bids / _MASK}: mask grid (shape (8, 8, 8)) differs from the BOLD grid of {Path(_PREP).name} "
                    "(shape (4, 4, 4)) or its affine; resample the mask to the BOLD, e.g. "
                    "nilearn.image.resample_to_img(mask, bold, interpolation='nearest')")


def test_betas_all_with_one_bad_subject_writes_no_subject(bids, capsys):
    """Every subject is checked before any is fitted: a bad sub-02 leaves no sub-01 behind."""
    for rel in (_PREP, _CONF, _EVENTS):
        target = bids / rel.replace("sub-01", "sub-02")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(bids / rel, target)
    events = bids / _EVENTS.replace("sub-01", "sub-02")
    _edit_events(bids, lambda f: f)  # sub-01 stays good
    pd.read_csv(events, sep="\t").assign(onset=lambda f: f.onset + 200).to_csv(events, sep="\t", index=False)
    argv = [a if a != "01" else "all" for a in _betas_argv(bids)]
    line = _refused_line(capsys, argv, bids.parent / "study")
    assert line == (f"{events}: 6 trial(s) start after the run ends (60 volumes x TR 2 s = 120 s; latest onset 284 s); "
                    "check --tr and that the events file belongs to this BOLD run")


@pytest.mark.parametrize("where", ["raw", "fmriprep"])
def test_study_option_on_a_bids_folder_names_the_betas_command(where, bids, study, fc8, tmp_path, capsys):
    folder = bids if where == "raw" else bids / "derivatives" / "fmriprep"
    kind = "a BIDS dataset" if where == "raw" else "an fMRIPrep output folder"
    out = tmp_path / "results"
    line = _refused_line(capsys, ["encode", "--study", folder, "--subject", "01", "--features", fc8, *QUICK, "--out", out], out)
    assert line == (f"{folder}: {kind}, not a brainnet study; a study is made with brainnet betas; "
                    f"run: brainnet betas --bids {bids} --subject all --task x --out {bids.parent / 'bids_study'}")


def test_write_betas_study_api_refuses_events_past_the_scan(bids):
    from brainnet.betas import write_betas_study

    BAD_BETAS["events-past-the-scan"][0](bids)
    out = bids.parent / "study"
    with pytest.raises(BrainnetError) as info:
        write_betas_study(bids, "01", "x", out=out, method="lsa", mask=bids.parent / "mask.nii.gz")
    assert str(info.value) == BAD_BETAS["events-past-the-scan"][2].format(b=bids)
    assert _nothing_in(out)



def test_betas_glmsingle_with_an_empty_noise_pool_is_refused(bids, capsys):
    from brainnet.glmsingle import _regressors, hrf_library

    events = pd.read_csv(bids / _EVENTS, sep="\t")
    response = _regressors(events, 60, 2.0, hrf_library(0.1)[5:6], 0.1)[0].sum(axis=1)  # every voxel responds, no noise
    _edit_bold(bids, lambda d: (100 + 5 * np.broadcast_to(response, d.shape)).astype(np.float32))
    argv = [a for a in _betas_argv(bids) if a not in ("lsa", "--noise-model", "ols")]
    argv[argv.index("--method")] = "--method=glmsingle"
    line = _refused_line(capsys, argv, bids.parent / "study")
    assert line == ("glmsingle: the noise pool has no voxels (every modelled voxel's cross-validated R² > 0); "
                    "widen --mask beyond the task-responsive voxels (in Python: or pass max_pcs=0)")

# ---------------------------------------------------------------- categorize


def _one_category(copy):
    _edit_stimuli(copy, lambda f: f.assign(category="disc"))


BAD_CATEGORIZE = {
    "unknown-subject": (None, ["--subjects", "01,09"], "--subjects 09: no such subject in {s}; choose from 01, 02, 03"),
    "subject-twice": (None, ["--subjects", "01,01,02"],
                      "--subjects: a subject is listed twice; list each subject once"),
    "one-subject": (None, ["--subjects", "02", "--folds", "2"],
                    "--subjects: 1 subject given; participant-independent folds need at least 2 subjects; add subjects"),
    "too-few-subjects-for-folds": (None, ["--folds", "8"],
                                   "--folds 8: participant-independent folds need 2 to 3 folds for 3 subjects; "
                                   "choose --folds between 2 and 3"),
    "one-category": (_one_category, [],
                     "{s}/stimuli.tsv: the trials of the chosen subjects cover 1 category (disc); category decoding "
                     "needs stimuli of at least 2 categories in the category column"),
    "unknown-classifier": (None, ["--model", "svm"], "--model svm: unknown classifier; use one of plsda, logistic"),
    "non-positive-C": (None, ["--model", "logistic", "--C", "0"],
                       "--C 0: the inverse regularisation must be positive; e.g. --C 1"),
    # found only once the first fold is fitted, after the result folder was opened
    "too-many-components": (None, ["--components", "500"],
                            "--components 500: a training fold of 32 trials x {v} voxels allows 1 to 31; "
                            "use fewer components"),
}


@pytest.mark.parametrize("kind", list(BAD_CATEGORIZE))
def test_categorize_refuses_bad_input(kind, copy, tmp_path, capsys):
    edit, extra, message = BAD_CATEGORIZE[kind]
    if edit is not None:
        edit(copy)
    out = tmp_path / "out"
    argv = ["categorize", "--study", copy, "--permutations", "2", "--folds", "3", *extra, "--out", out]
    line = _refused_line(capsys, argv, out)
    n_voxels = load_study(copy).load_subjects(mask="occipital")[0].n_voxels if "{v}" in message else None
    assert line == message.format(s=copy, v=n_voxels)
    assert not out.exists() or not any(out.rglob("*"))  # not even empty folders


@pytest.mark.parametrize("kind", ["unknown-classifier", "one-category", "too-many-components"])
def test_categorize_study_api_refuses_and_leaves_nothing(kind, copy, tmp_path):
    from brainnet.categories import categorize_study

    edit, _, _ = BAD_CATEGORIZE[kind]
    if edit is not None:
        edit(copy)
    kwargs = {"unknown-classifier": {"model": "svm"}, "too-many-components": {"n_components": 500}}.get(kind, {})
    out = tmp_path / "out"
    with pytest.raises(BrainnetError) as info:
        categorize_study(copy, n_folds=3, n_permutations=2, out=out, **kwargs)
    assert "\n" not in str(info.value) and "; " in str(info.value)
    assert not out.exists()


# ---------------------------------------------------------------- manifest parser (property tests)


def _manifest_dict() -> dict:
    return {
        "schema_version": 1, "accession": "ds000001", "version": "1.0.0", "licence": "CC0", "tasks": ["x"],
        "subjects": ["01", "02"], "stimuli": {"how": "in_dataset", "description": "test"},
        "workflows": {"image_encoding": {"parts": ["events", "metadata"]}},
        "download": {"url_template": "http://127.0.0.1:9/{path}"},
        "parts": {
            "events": {"globs": ["sub-*/func/*_events.tsv"],
                       "files": [["sub-01/func/sub-01_task-x_events.tsv", 10, "md5", "0" * 32],
                                 ["sub-02/func/sub-02_task-x_events.tsv", 12, "sha256", "a" * 64]]},
            "metadata": {"globs": ["*.json"], "files": [["dataset_description.json", 5, "git", None]]},
        },
    }


_NASTY_PATHS = st.sampled_from(["../outside.tsv", "/etc/passwd", "sub-01/../../x", "sub-01/./a.tsv", "", "a\\..\\b",
                                "C:/x", "sub-01//a.tsv", "~/x", "sub-01/func/\x00.tsv"])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats(allow_nan=False) | st.text(max_size=10)
    | _NASTY_PATHS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths_in(node, prefix=()):
    """Every (path, value) of a JSON tree, containers included."""
    yield prefix, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        yield from _paths_in(child, (*prefix, key))


_MANIFEST_NODES = [p for p, _ in _paths_in(_manifest_dict()) if p]
_manifest_counter = iter(range(10**9))


def _load_manifest_text(tmp_path, text: bytes, suffix=".json"):
    from brainnet.datasets.manifests import load_manifest

    # a new name per example: the loader caches by (path, mtime, size)
    path = tmp_path / f"m{next(_manifest_counter)}{suffix}"
    path.write_bytes(text)
    return load_manifest(path)


def _assert_valid_or_one_line(load):
    try:
        manifest = load()
    except BrainnetError as err:
        assert "\n" not in str(err) and "; " in str(err), str(err)
        return None
    for f in manifest.files():  # whatever is accepted stays inside the dataset
        parts = Path(f.path).parts
        assert f.path and not Path(f.path).is_absolute() and ".." not in parts and "\\" not in f.path, f.path
    return manifest


def test_the_unchanged_manifest_of_the_property_tests_is_valid(tmp_path):
    import json

    manifest = _assert_valid_or_one_line(lambda: _load_manifest_text(tmp_path, json.dumps(_manifest_dict()).encode()))
    assert manifest is not None and len(manifest.files()) == 3


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_MANIFEST_NODES), value=_json_values, delete=st.booleans())
def test_manifest_loader_with_any_one_field_changed_gives_a_manifest_or_a_one_line_error(where, value, delete,
                                                                                          tmp_path):
    import json

    data = _manifest_dict()
    node = data
    for key in where[:-1]:
        node = node[key]
    if delete:
        del node[where[-1]]
    else:
        node[where[-1]] = value
    _assert_valid_or_one_line(lambda: _load_manifest_text(tmp_path, json.dumps(data).encode()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".json", ".json.gz"]), gz=st.booleans())
def test_manifest_loader_never_crashes_on_bytes(data, suffix, gz, tmp_path):
    import gzip

    _assert_valid_or_one_line(lambda: _load_manifest_text(tmp_path, gzip.compress(data) if gz else data, suffix))


@pytest.mark.parametrize("path", ["../outside.tsv", "/etc/passwd", "sub-01/../../x", "a\\..\\b"])
def test_manifest_file_path_escaping_the_dataset_is_refused(path, tmp_path):
    import json

    data = _manifest_dict()
    data["parts"]["metadata"]["files"][0][0] = path
    with pytest.raises(BrainnetError) as info:
        _load_manifest_text(tmp_path, json.dumps(data).encode())
    assert "\n" not in str(info.value) and repr(path) in str(info.value)


@pytest.mark.parametrize("command, option", [
    ("encode", "--permutations"), ("decode", "--permutations"), ("decode", "--bootstrap"),
    ("rsa", "--permutations"), ("categorize", "--permutations"), ("searchlight", "--permutations"),
    ("network-decoding", "--permutations"),
])
def test_negative_counts_are_refused_with_the_fix(command, option, study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [command, "--study", study, "--out", out, option, "-1"]
    argv += ["--features", fc8] if command != "categorize" else []
    line = refused(capsys, argv, f"{option} -1: must be 0 or more; pass {option} 0 or a larger number", out=out)
    assert line.startswith(f"brainnet {command}: error:")


# ================================================================ issue 13: the red team's cases
#
# Every case below broke a promise of the README's "Failure behaviour" section (a traceback,
# a file written outside --out, run.json left behind, or a message without the option or fix).

GB = 10**9


@pytest.fixture
def memory(monkeypatch):
    """Pretend this machine has 8 GB of memory available, so the figures in messages are fixed."""
    import brainnet._checks

    monkeypatch.setattr(brainnet._checks, "available_memory", lambda: 8 * GB)
    return 8 * GB


def _line(capsys, argv, out=None) -> str:
    """The one error line of a refused command, without its ``brainnet CMD: error:`` prefix."""
    return refused(capsys, argv, out=out).split("error: ", 1)[1]


# ---------------------------------------------------------------- seeds and counts

SEED_COMMANDS = {
    "encode": ["--subject", "01", *QUICK],
    "decode": ["--permutations", "2", "--bootstrap", "0"],
    "rsa": ["--permutations", "2", "--bootstrap", "0"],
    "network-decoding": ["--folds", "2"],
    "categorize": ["--permutations", "2", "--folds", "3"],
    "power": ["--sizes", "3", "--repeats", "1"],
}


@pytest.mark.parametrize("value", ["-1", str(2**70)], ids=["negative", "2**70"])
@pytest.mark.parametrize("command", [*SEED_COMMANDS, "simulate"])
def test_impossible_seed_is_one_message_for_every_command(command, value, study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    if command == "simulate":
        argv = ["simulate", "--out", out, "--seed", value]
    else:
        features = [] if command == "categorize" else ["--features", fc8]
        argv = [command, "--study", study, *features, *SEED_COMMANDS[command], "--seed", value, "--out", out]
    assert _line(capsys, argv, out) == (f"--seed {value}: a seed must be a whole number from 0 to 4294967295; "
                                        "pass e.g. --seed 0")


def test_impossible_untrained_seed_is_refused(tmp_path, capsys):
    out = tmp_path / "out" / "acts.npz"
    assert _line(capsys, ["extract", "--demo", "--untrained-seed", "-3", "--out", out], out.parent) == (
        "--untrained-seed -3: a seed must be a whole number from 0 to 4294967295; pass e.g. --untrained-seed 0")


def test_api_names_the_python_parameter(study, fc8, tmp_path):
    from brainnet import encode_subject

    with pytest.raises(BrainnetError) as info:
        encode_subject(study, "01", features=fc8, seed=-1, out=tmp_path / "out")
    assert str(info.value) == "seed=-1: a seed must be a whole number from 0 to 4294967295; pass e.g. seed=0"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["encode", "decode", "rsa", "categorize", "power", "betas", "naturalistic"])
def test_n_jobs_0_names_the_option_and_the_fix(command, study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    argv = {
        "encode": ["encode", "--study", study, "--features", fc8, *QUICK],
        "decode": ["decode", "--study", study, "--features", fc8, "--permutations", "2"],
        "rsa": ["rsa", "--study", study, "--features", fc8, "--permutations", "2"],
        "categorize": ["categorize", "--study", study, "--permutations", "2"],
        "power": ["power", "--study", study, "--features", fc8],
        "betas": ["betas", "--bids", tmp_path, "--subject", "01", "--task", "x"],
        "naturalistic": ["naturalistic", "--bold", tmp_path / "b.nii.gz", "--frame-features", tmp_path / "f.npy",
                         "--frame-rate", "2", "--tr", "1"],
    }[command]
    assert _line(capsys, [*argv, "--n-jobs", "0", "--out", out], out) == (
        "--n-jobs 0: must be a positive number of workers, or -1 for every core; pass e.g. --n-jobs 1 "
        "(results do not depend on it)")


def test_permutation_engine_names_each_parameter_on_its_own():
    from brainnet.permutation import permutation_test

    def stat(perms):
        return perms[:, :1].astype(float)

    for kwargs, message in [
        ({"n_jobs": 0}, "n_jobs=0: must be a positive number of workers, or -1 for every core; pass e.g. n_jobs=1 "
                        "(results do not depend on it)"),
        ({"batch_size": 0}, "batch_size=0: must be 1 or more; pass batch_size=1 or a larger number"),
        ({"n_permutations": -5}, "n_permutations=-5: must be 0 or more; pass n_permutations=0 or a larger number"),
    ]:
        with pytest.raises(BrainnetError) as info:
            permutation_test(stat, 5, **kwargs)
        assert str(info.value) == message


@pytest.mark.parametrize(("command", "option"), [
    ("encode", "--permutations"), ("decode", "--permutations"), ("decode", "--bootstrap"), ("rsa", "--permutations"),
    ("rsa", "--bootstrap"), ("categorize", "--permutations"), ("power", "--permutations"),
])
def test_permutation_counts_that_cannot_fit_in_memory_are_refused_up_front(command, option, memory, study, fc8,
                                                                           tmp_path, capsys, monkeypatch):
    import brainnet.study

    # "before any work": not even the study's betas are read
    monkeypatch.setattr(brainnet.study.Study, "_read_subject", lambda *a: pytest.fail("data was read"))
    out = tmp_path / "out"
    features = [] if command == "categorize" else ["--features", fc8]
    argv = [command, "--study", study, *features, option, str(10**12), "--out", out]
    argv += ["--sizes", "3"] if command == "power" else []
    assert _line(capsys, argv, out) == (
        f"{option} 1000000000000: the 1000000000000 draws of the null distribution need at least 8.0 TB "
        f"(1 value of 8 bytes each) but 8.0 GB of memory is available; pass {option} 500000000 or fewer")


def test_permutation_null_larger_than_memory_is_refused_after_one_evaluation(memory):
    from brainnet.permutation import permutation_test

    calls = []

    def stat(perms):  # 1000 statistics per draw
        calls.append(len(perms))
        return np.ones((len(perms), 1000))

    with pytest.raises(BrainnetError) as info:
        permutation_test(stat, 10, n_permutations=2_000_000)
    assert str(info.value) == (
        "n_permutations=2000000: the 2000000 draws of the null distribution need at least 16.0 GB "
        "(1000 values of 8 bytes each) but 8.0 GB of memory is available; pass n_permutations=500000 or fewer")
    assert calls == [1]  # only the observed statistic


# ---------------------------------------------------------------- --out


def test_out_that_is_a_file_is_refused(study, fc8, tmp_path, capsys):
    out = tmp_path / "results"
    out.write_text("not a folder")
    line = _line(capsys, ["encode", "--study", study, "--features", fc8, *QUICK, "--out", out])
    assert line == f"--out {out}: is a file, not a folder; remove it or choose another --out folder"
    assert out.read_text() == "not a folder"


def test_out_at_the_filesystem_root_is_refused(study, fc8, capsys):
    anchor = Path(os.path.abspath(os.sep))
    line = _line(capsys, ["decode", "--study", study, "--features", fc8, "--permutations", "2", "--out", anchor])
    assert line == f"--out {anchor}: is the filesystem root; give a folder of its own, e.g. --out results"
    assert not (anchor / "group" / "decode-fc8").exists()


def test_out_with_a_name_too_long_is_refused(study, fc8, tmp_path, capsys):
    out = tmp_path / ("a" * 300)
    line = _line(capsys, ["encode", "--study", study, "--features", fc8, *QUICK, "--out", out], tmp_path / "x")
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert line == (f"--out {str(out)[:40]}...: a folder name of 300 bytes, longer than the {name_max} this "
                    "filesystem allows; choose a shorter --out")


def test_out_in_a_read_only_folder_is_refused(study, fc8, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root ignores permissions: let access() answer as for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real(p, mode, **kw))
    out = locked / "out"
    line = _line(capsys, ["encode", "--study", study, "--features", fc8, *QUICK, "--out", out])
    locked.chmod(0o755)
    assert line == f"--out {out}: {locked} is not writable by this user; choose another --out folder"
    assert not out.exists()


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(study, fc8, tmp_path, capsys, monkeypatch):
    import brainnet.results

    out = tmp_path / "out"
    real = os.replace

    def full(src, dst, *a, **kw):
        if str(dst).startswith(str(out)) and str(dst).endswith("voxel_scores.tsv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(brainnet.results.os, "replace", full)
    line = _line(capsys, ["encode", "--study", study, "--features", fc8, *QUICK, "--out", out], out)
    assert line == (f"{out}/sub-01/encode-fc8/voxel_scores.tsv: cannot write (No space left on device); free disk "
                    "space (or raise the file size limit) or choose an output folder on another disk, then rerun")
    assert not out.exists()  # not even run.json


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="ulimit is POSIX")
def test_file_size_limit_in_a_real_process_is_one_line_and_leaves_nothing(study, fc8, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), BRAINNET_HOME=str(tmp_path / "home"))
    cmd = (f"ulimit -f 8; exec {sys.executable} -m brainnet encode --study {study} --features {fc8} "
           f"--permutations 2 --cv 2 --out {out}")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"brainnet encode: error: {out}/")
    assert lines[0].endswith(": cannot write (File too large); free disk space (or raise the file size limit) or "
                             "choose an output folder on another disk, then rerun")
    assert not out.exists()


# ---------------------------------------------------------------- betas headers


def _edit_nifti_header(path: Path, edit) -> None:
    """Rewrite header bytes of a .nii.gz in place (nibabel refuses to write such headers itself)."""
    raw = bytearray(gzip.decompress(path.read_bytes()))
    edit(raw)
    path.write_bytes(gzip.compress(bytes(raw)))


def _nan_affine(raw):
    raw[252:256] = struct.pack("<hh", 0, 1)  # qform unknown, sform used
    raw[280:284] = struct.pack("<f", float("nan"))  # srow_x[0]


def _huge_header(raw):
    dims = list(struct.unpack("<8h", raw[40:56]))
    dims[1:4] = [30000, 30000, 30000]
    raw[40:56] = struct.pack("<8h", *dims)


def test_truncated_betas_file_is_refused(copy, fc8, tmp_path, capsys):
    path = copy / BETAS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", copy, "--features", fc8, *QUICK, "--out", out], out) == (
        f"{path}: is truncated or corrupt (EOFError while reading the voxels); re-create the betas file "
        "(brainnet betas) or copy it again")


def test_betas_with_a_nan_affine_are_refused(copy, fc8, tmp_path, capsys):
    _edit_nifti_header(copy / BETAS, _nan_affine)
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", copy, "--features", fc8, *QUICK, "--out", out], out) == (
        f"{copy / BETAS}: its affine (voxel-to-world matrix) holds NaN or Inf; re-create the betas file "
        "(brainnet betas) or copy it again")


def test_betas_header_claiming_a_huge_image_is_refused_before_reading(memory, copy, fc8, tmp_path, capsys):
    n = nib.load(copy / BETAS).shape[3]
    _edit_nifti_header(copy / BETAS, _huge_header)
    out = tmp_path / "out"
    size = f"{30000**3 * n * 4 / 1e15:.1f} PB"
    assert _line(capsys, ["encode", "--study", copy, "--features", fc8, *QUICK, "--out", out], out) == (
        f"{copy / BETAS}: its header claims a 30000 x 30000 x 30000 x {n} image ({size} as float32), more than "
        "the 8.0 GB of memory available; check the file (its header may be corrupt), or crop or resample the image")


def test_uncompressed_betas_shorter_than_the_header_are_refused_before_reading(copy, fc8, tmp_path, capsys):
    img = nib.load(copy / BETAS)
    plain = copy / BETAS.replace(".nii.gz", ".nii")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine), plain)
    (copy / BETAS).unlink()
    whole = plain.stat().st_size
    plain.write_bytes(plain.read_bytes()[:-100])
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", copy, "--features", fc8, *QUICK, "--out", out], out) == (
        f"{plain}: is truncated ({whole - 100} bytes, its header needs {whole}); re-create the betas file "
        "(brainnet betas) or copy it again")


# ---------------------------------------------------------------- features files


def _features_with(path: Path, source: Path, sidecar: str | None = None, **layers) -> Path:
    feats = load_features(source)
    np.savez(path, stimulus_ids=np.asarray(feats.stimulus_ids), **layers)
    if sidecar is not None:
        path.with_name(path.name + ".json").write_text(sidecar)
    return path


def test_features_layer_with_zero_units_is_refused(study, fc8, tmp_path, capsys):
    n = len(load_features(fc8).stimulus_ids)
    path = _features_with(tmp_path / "zero.npz", fc8, fc8=np.zeros((n, 0)))
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", study, "--features", path, *QUICK, "--out", out], out) == (
        f"{path}: features: layer 'fc8' has 0 units (shape ({n}, 0)); give at least one unit column per layer, "
        "or leave the layer out")


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_features_that_are_constant_are_refused(command, study, fc8, tmp_path, capsys):
    n = len(load_features(fc8).stimulus_ids)
    path = _features_with(tmp_path / "const.npz", fc8, fc8=np.full((n, 20), 0.5))
    out = tmp_path / "out"
    extra = QUICK if command == "encode" else ["--permutations", "2", "--bootstrap", "0"]
    assert _line(capsys, [command, "--study", study, "--features", path, *extra, "--out", out], out) == (
        f"{path}: every unit of layer 'fc8' has the same value for all {n} stimuli; check how the features were "
        "computed (e.g. a dead layer, or the wrong array saved)")


def test_features_npz_bomb_is_refused_from_its_directory(monkeypatch, study, fc8, tmp_path, capsys):
    import brainnet._checks

    n = len(load_features(fc8).stimulus_ids)
    path = tmp_path / "bomb.npz"
    feats = load_features(fc8)
    # 128 MB of zeros compress to about 125 kB; the limit is set to 100 MB
    np.savez_compressed(path, stimulus_ids=np.asarray(feats.stimulus_ids), fc8=feats.layer("fc8"),
                        fc7=np.zeros((n, 2_000_000), np.float32))
    monkeypatch.setattr(brainnet._checks, "available_memory", lambda: 100 * 10**6)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("the archive was opened with numpy"))
    out = tmp_path / "out"
    line = _line(capsys, ["encode", "--study", study, "--features", path, *QUICK, "--out", out], out)
    assert line == (f"{path}: its arrays would take 128.0 MB once decompressed (fc7.npy alone 128.0 MB), more than "
                    "the 100.0 MB of memory available; check the file (it may be damaged or not features at all), "
                    "or save fewer units per layer")


@pytest.mark.parametrize(("text", "problem"), [
    ('{"weights": ', "provenance sidecar is not readable JSON (JSONDecodeError)"),
    ("[1, 2]", "provenance sidecar holds a JSON list, not an object"),
], ids=["corrupt", "not-an-object"])
def test_bad_features_sidecar_is_refused(text, problem, study, fc8, tmp_path, capsys):
    path = _features_with(tmp_path / "f.npz", fc8, sidecar=text, fc8=load_features(fc8).layer("fc8"))
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", study, "--features", path, *QUICK, "--out", out], out) == (
        f"{path}.json: {problem}; delete it or re-create the features with brainnet extract")


# ---------------------------------------------------------------- stimuli with a NUL byte


@pytest.mark.parametrize("command", ["extract", "encode"])
def test_nul_byte_in_a_stimulus_path_is_refused(command, copy, tmp_path, capsys):
    path = _edit_stimuli(copy, lambda f: f.assign(file=["stim\x00001.png"] + list(f.file[1:])))
    if command == "extract":
        out = tmp_path / "out" / "acts.npz"
        line = _line(capsys, ["extract", "--stimuli", path, "--out", out], out.parent)
    else:
        out = tmp_path / "out"
        line = _line(capsys, ["encode", "--study", copy, *QUICK, "--out", out], out)
    assert line.startswith(f"{path}: file 'stim\\x00001.png' is empty or holds control characters (e.g. a NUL "
                           "byte); give a plain relative file name")


# ---------------------------------------------------------------- power arguments

BAD_POWER = {
    "pca-0": (["--pca", "0"], "--pca 0: must be 1 or more; pass --pca 1 or a larger number"),
    "repeats-0": (["--repeats", "0"], "--repeats 0: must be 1 or more; pass --repeats 1 or a larger number"),
    "components-0": (["--components", "0"], "--components 0: must be 1 or more; pass --components 1 or a larger number"),
    "alpha": (["--alpha", "1.5"], "--alpha 1.5: the test level must be between 0 and 1; pass e.g. --alpha 0.05"),
    "permutations": (["--permutations", "19"], "--permutations 19: a p-value below 0.05 needs at least 20 "
                                               "(the smallest p is 1/(permutations + 1)); pass --permutations 99 or more"),
    "sizes": (["--sizes", "3,9"], "--sizes 9: the study has 3 subjects; choose sizes between 3 and 3"),
    "stimuli": (["--stimuli", "999"], "--stimuli 999: the study has 16 stimuli; choose sizes between 7 and 16"),
}


@pytest.mark.parametrize("kind", list(BAD_POWER))
def test_power_argument_errors_leave_no_run_json(kind, study, fc8, tmp_path, capsys):
    extra, message = BAD_POWER[kind]
    out = tmp_path / "out"
    argv = ["power", "--study", study, "--features", fc8, "--sizes", "3", "--repeats", "1", *extra, "--out", out]
    assert _line(capsys, argv, out) == message
    assert not out.exists()


def test_power_api_checks_every_argument_before_the_folder(study, fc8, tmp_path):
    from brainnet import power_analysis

    with pytest.raises(BrainnetError) as info:
        power_analysis(study, features_file=fc8, subject_sizes=[3], n_repeats=1, n_pca=0, out=tmp_path / "out")
    assert str(info.value) == "n_pca=0: must be 1 or more; pass n_pca=1 or a larger number"
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- refusals found once the data is loaded


def test_encode_inner_too_large_leaves_no_run_json(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    line = _line(capsys, ["encode", "--study", study, "--features", fc8, "--inner", "20", *QUICK, "--out", out], out)
    assert line == ("--inner 20: a training fold has only 8 stimuli; pass --inner loo (exact leave-one-out) or a "
                    "smaller inner k")
    assert not out.exists()


def test_decode_components_too_many_leaves_no_run_json(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["decode", "--study", study, "--features", fc8, "--components", "500", "--permutations", "2",
            "--bootstrap", "0", "--out", out]
    assert _line(capsys, argv, out) == ("--components 500: must be between 1 and 32 (training rows and voxels of "
                                        "the smallest fold); pass --components 32 or fewer")
    assert not out.exists()


def test_late_refusal_in_an_existing_out_keeps_only_what_was_there(study, fc8, tmp_path, capsys, monkeypatch):
    import brainnet.results

    out = tmp_path / "out"
    assert main(["encode", "--study", str(study), "--features", str(fc8), *QUICK, "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    real = os.replace

    def full(src, dst, *a, **kw):  # the decode folder is opened, then its last table hits a full disk
        if str(dst).endswith("unit_scores.tsv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(brainnet.results.os, "replace", full)
    _line(capsys, ["decode", "--study", study, "--features", fc8, "--permutations", "2", "--bootstrap", "0",
                   "--out", out])
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and not (out / "group").exists()


# ---------------------------------------------------------------- one path policy, every command


def _label_walking_out(copy):
    (copy / "participants.tsv").write_text("participant_id\n../x\nsub-02\nsub-03\n")


STUDY_COMMANDS = {
    "encode": ["--subject", "all", *QUICK],
    "decode": ["--permutations", "2", "--bootstrap", "0"],
    "rsa": ["--permutations", "2", "--bootstrap", "0"],
    "network-decoding": ["--folds", "2"],
    "categorize": ["--permutations", "2", "--folds", "3"],
    "power": ["--sizes", "3", "--repeats", "1"],
}


@pytest.mark.parametrize("command", [*STUDY_COMMANDS, "study info"])
def test_participant_label_walking_out_of_the_study_is_refused(command, copy, fc8, tmp_path, capsys):
    _label_walking_out(copy)
    out = tmp_path / "out"
    if command == "study info":
        argv = ["study", "info", "--study", copy]
    else:
        features = [] if command == "categorize" else ["--features", fc8]
        argv = [command, "--study", copy, *features, *STUDY_COMMANDS[command], "--out", out]
    assert _line(capsys, argv, out) == (
        f"{copy / 'participants.tsv'}: participant_id 'sub-../x' is not a BIDS label (letters and digits after "
        "sub-); rename the subject, e.g. sub-01, here and in its folder name")
    assert not (copy / "x").exists() and not (tmp_path / "x").exists()


def _stimuli_linked_outside(copy, tmp_path) -> Path:
    outside = tmp_path / "elsewhere"
    (copy / "stimuli").rename(outside)
    (copy / "stimuli").symlink_to(outside, target_is_directory=True)
    return outside


LINK_COMMANDS = {
    "extract": None,
    "encode": ["encode", "--subject", "01", *QUICK],
    "encode-features": ["encode", "--features", "{fc8}", "--subject", "01", *QUICK],
    "decode": ["decode", "--permutations", "2", "--bootstrap", "0"],
    "rsa": ["rsa", "--permutations", "2", "--bootstrap", "0"],
    "network-decoding": ["network-decoding", "--folds", "2"],
    "categorize": ["categorize", "--permutations", "2", "--folds", "3"],
    "power": ["power", "--features", "{fc8}", "--sizes", "3", "--repeats", "1"],
    "study-info": ["study", "info"],
}


@pytest.mark.parametrize("command", list(LINK_COMMANDS))
def test_study_stimuli_folder_linking_outside_is_refused_by_every_command(command, copy, fc8, tmp_path, capsys):
    outside = _stimuli_linked_outside(copy, tmp_path)
    if command == "extract":
        out = tmp_path / "out" / "acts.npz"
        argv, left = ["extract", "--stimuli", copy / "stimuli.tsv", "--out", out], out.parent
    else:
        out = tmp_path / "out"
        argv = [fc8 if a == "{fc8}" else a for a in LINK_COMMANDS[command]] + ["--study", copy]
        argv, left = (argv if command == "study-info" else [*argv, "--out", out]), out
    assert _line(capsys, argv, left) == (
        f"{copy / 'stimuli'}: folder 'stimuli' links outside {copy} (to {outside.resolve()}); "
        "copy it into the folder instead of linking to it")


def test_subject_folder_linking_outside_the_study_is_refused(copy, fc8, tmp_path, capsys):
    outside = tmp_path / "elsewhere"
    (copy / "sub-01").rename(outside)
    (copy / "sub-01").symlink_to(outside, target_is_directory=True)
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", copy, "--features", fc8, *QUICK, "--out", out], out) == (
        f"{copy / 'sub-01'}: folder 'sub-01' links outside {copy} (to {outside.resolve()}); copy it into the "
        "folder instead of linking to it")


@pytest.mark.parametrize("command", ["encode", "decode", "rsa", "network-decoding", "power"])
def test_result_folder_names_cannot_leave_out(command, study, fc8, tmp_path, capsys):
    feats = load_features(fc8)
    path = tmp_path / "evil.npz"
    np.savez(path, stimulus_ids=np.asarray(feats.stimulus_ids), **{"../../x": feats.layer("fc8")})
    out = tmp_path / "out"
    layer_option = "--layers" if command == "rsa" else "--layer"
    extra = [a for a in STUDY_COMMANDS[command] if a != "all"]
    if command == "encode":
        extra = ["--subject", "01", *QUICK]
    argv = [command, "--study", study, "--features", path, layer_option, "../../x", *extra, "--out", out]
    line = _line(capsys, argv, out)
    folder = {"encode": "sub-01/encode-../../x", "decode": "group/decode-../../x", "rsa": "group/rsa-../../x",
              "network-decoding": "group/network-decoding-../../x", "power": "group/power-../../x"}[command]
    assert line == (f"--out: results folder '{folder}' is not inside {out}; give results folder names relative "
                    "to that folder (no absolute paths, '..' or backslashes)")
    assert not (tmp_path / "x").exists() and not out.exists()


def test_the_path_policy_refuses_the_same_way_everywhere(tmp_path):
    from brainnet._paths import inside

    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (tmp_path / "out.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "out.png")
    assert inside(root, "in/a.png", "w") == root / "in" / "a.png"
    for name, message in [
        ("../out.png", f"w: file '../out.png' is not inside {root}; give file names relative to that folder "
                       "(no absolute paths, '..' or backslashes)"),
        (str(tmp_path / "out.png"), f"w: file '{tmp_path / 'out.png'}' is not inside {root}; give file names "
                                    "relative to that folder (no absolute paths, '..' or backslashes)"),
        ("a\\..\\b", f"w: file 'a\\\\..\\\\b' is not inside {root}; give file names relative to that folder "
                     "(no absolute paths, '..' or backslashes)"),
        ("a\x00.png", "w: file 'a\\x00.png' is empty or holds control characters (e.g. a NUL byte); give a plain "
                      "relative file name"),
        ("link.png", f"w: file 'link.png' links outside {root} (to {(tmp_path / 'out.png').resolve()}); copy it "
                     "into the folder instead of linking to it"),
    ]:
        with pytest.raises(BrainnetError) as info:
            inside(root, name, "w")
        assert str(info.value) == message


def test_dataset_download_target_linking_outside_is_refused(tmp_path):
    from brainnet.datasets.openneuro import safe_target

    root = tmp_path / "ds"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "sub-01").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(BrainnetError) as info:
        safe_target(root, "sub-01/a.tsv")
    assert str(info.value) == (f"{root / 'sub-01/a.tsv'}: file 'sub-01/a.tsv' links outside {root} "
                               f"(to {(tmp_path / 'elsewhere' / 'a.tsv').resolve()}); remove the link or choose "
                               "another data folder")


# ---------------------------------------------------------------- damaged result folders


@pytest.fixture(scope="session")
def finished(study, fc8, tmp_path_factory):
    """A complete encode + decode result folder (copied before each damage)."""
    out = tmp_path_factory.mktemp("finished") / "results"
    assert main(["encode", "--study", str(study), "--features", str(fc8), *QUICK, "--out", str(out)]) == 0
    assert main(["decode", "--study", str(study), "--features", str(fc8), "--permutations", "2", "--bootstrap", "0",
                 "--out", str(out)]) == 0
    return out


def _tamper_provenance(results):
    path = results / "sub-01" / "encode-fc8" / "summary.json"
    data = json.loads(path.read_text())
    data["provenance"]["seed"] = 7
    path.write_text(json.dumps(data))
    return path, "its provenance does not match its fingerprint (edited after the run)"


def _truncate_map(results):
    path = results / "sub-01" / "encode-fc8" / "r_map.nii.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, "is truncated or corrupt (EOFError while reading the voxels)"


def _text_in_numbers(results):
    path = results / "sub-01" / "encode-fc8" / "voxel_scores.tsv"
    lines = path.read_text().splitlines()
    cells = lines[3].split("\t")
    cells[4] = "abc"  # the r of the third voxel
    lines[3] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return path, "column 'r' holds text ('abc', row 3) among numbers"


DAMAGE = {"tampered-provenance": _tamper_provenance, "truncated-map": _truncate_map,
          "non-numeric-tsv": _text_in_numbers}


@pytest.mark.parametrize("command", ["figures", "report"])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_result_folder_is_refused_naming_the_file(kind, command, finished, tmp_path, capsys):
    results = Path(shutil.copytree(finished, tmp_path / "results"))
    path, problem = DAMAGE[kind](results)
    argv = [command, "--results", results] + (["--out", tmp_path / "report.html"] if command == "report" else [])
    assert _line(capsys, argv) == f"{path}: {problem}; re-run the analysis that wrote this folder (or remove the folder)"
    assert not (results / "figures").exists() and not (tmp_path / "report.html").exists()


# ---------------------------------------------------------------- every command, generic bad input


def _generic_cases(study, fc8, tmp):
    """(command, argv without --out, kind of --out) for each command, each with a few bad inputs."""
    bold, frames = tmp / "bold.nii.gz", tmp / "frames.npy"
    cases = {
        "encode": ["encode", "--study", study, "--features", fc8, *QUICK],
        "decode": ["decode", "--study", study, "--features", fc8, "--permutations", "2", "--bootstrap", "0"],
        "rsa": ["rsa", "--study", study, "--features", fc8, "--permutations", "2", "--bootstrap", "0"],
        "network-decoding": ["network-decoding", "--study", study, "--features", fc8, "--folds", "2"],
        "categorize": ["categorize", "--study", study, "--permutations", "2", "--folds", "3"],
        "power": ["power", "--study", study, "--features", fc8, "--sizes", "3", "--repeats", "1"],
        "naturalistic": ["naturalistic", "--bold", bold, "--frame-features", frames, "--frame-rate", "2", "--tr", "1"],
        "betas": ["betas", "--bids", tmp / "bids", "--subject", "01", "--task", "x"],
        "simulate": ["simulate", "--subjects", "3", "--stimuli", "8"],
        "extract": ["extract", "--demo"],
        "report": ["report", "--results", tmp / "no-results"],
    }
    bad = {
        "seed": ["--seed", "-1"],
        "n-jobs": ["--n-jobs", "0"],
        "untrained-seed": ["--untrained-seed", "-1"],
        "permutations": ["--permutations", "-1"],
        "study": ["--study", tmp / "missing-study"],
        "features": ["--features", tmp / "missing.npz"],
        "mask": ["--mask", "nowhere"],
    }
    for command, argv in cases.items():
        options = {a for a in argv if isinstance(a, str) and a.startswith("--")}
        for kind, extra in bad.items():
            parser_has = kind in ("seed", "n-jobs", "untrained-seed", "permutations", "study", "features", "mask")
            if parser_has and _accepts(command, extra[0]) and (extra[0] not in options or kind == "study"):
                yield command, kind, [*argv, *extra]


def _accepts(command: str, option: str) -> bool:
    from brainnet.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001 - argparse has no public way
    return any(option in action.option_strings for action in sub._actions)  # noqa: SLF001


@pytest.fixture
def generic_inputs(tmp_path):
    np.save(tmp_path / "frames.npy", np.ones((10, 3)))
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2, 5), np.float32), np.eye(4)), tmp_path / "bold.nii.gz")
    return tmp_path


def test_every_command_refuses_bad_input_cleanly(study, fc8, generic_inputs, capsys):
    """Exit 2, exactly one stderr line, no traceback and no new file in an existing --out, for every case."""
    tmp = generic_inputs
    cases = list(_generic_cases(study, fc8, tmp))
    assert {c for c, _, _ in cases} >= {"encode", "decode", "rsa", "network-decoding", "categorize", "power",
                                        "naturalistic", "simulate", "extract"}
    for command, kind, argv in cases:
        out = tmp / f"out-{command}-{kind}"
        out.mkdir()
        (out / "keep.txt").write_text("the user's file")
        target = out / ("acts.npz" if command == "extract" else "r.html" if command == "report" else "results")
        if command in ("encode", "decode", "rsa", "network-decoding", "categorize", "power", "naturalistic"):
            target = out
        try:
            rc = main([str(a) for a in [*argv, "--out", target]])
        except SystemExit as exc:
            rc = exc.code
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and "Traceback" not in err, (command, kind, err)
        assert len(lines) == 1 and lines[0].startswith(f"brainnet {command}: error: "), (command, kind, err)
        assert "; " in lines[0], (command, kind, lines[0])
        assert sorted(p.name for p in out.rglob("*")) == ["keep.txt"], (command, kind)


def test_searchlight_radius_must_be_positive(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["searchlight", "--study", study, "--features", fc8, "--radius", "0", "--out", out],
            "--radius 0: a sphere needs a positive radius; give it in mm, e.g. --radius 6", out=out)


def test_searchlight_encoding_folds_must_be_two_or_more(study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["searchlight", "--study", study, "--features", fc8, "--statistic", "encoding", "--cv", "1",
                     "--out", out],
            "--cv 1: must be 2 or more; pass --cv 2 or a larger number", out=out)


@pytest.mark.parametrize("extra, message", [
    (["--layers", "fc8"], "--layers fc8: partitioning needs at least two spaces; give two layers "
                          "(e.g. --layers conv1,fc8) or add --controls pixels"),
    (["--controls", "edges"], "--controls edges: unknown control features; use one or more of pixels, gabor"),
])
def test_partition_refusals(extra, message, study, fc8, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, ["partition", "--study", study, "--features", fc8, *extra, "--out", out], message, out=out)


@pytest.mark.parametrize("command", ["extract", "encode", "rsa", "layers"])
def test_unknown_network_is_refused(command, study, tmp_path, capsys):
    out = tmp_path / ("out.npz" if command == "extract" else "out")
    argv = [command, "--network", "vit-nowhere"]
    argv += {"extract": ["--demo", "--out", out], "layers": []}.get(command, ["--study", study, "--out", out])
    line = refused(capsys, argv, "--network vit-nowhere: unknown network; use one of emonet, emonet-untrained",
                   out=None if command == "layers" else out)
    assert "hf:..." in line and not out.exists()


def test_hf_folder_that_is_not_a_model_is_refused(tmp_path, capsys):
    pytest.importorskip("transformers")
    refused(capsys, ["layers", "--network", f"hf:{tmp_path}"],
            f"{tmp_path}: no readable config.json (ValueError); give a folder written by model.save_pretrained")


def test_thingsvision_folder_without_file_names_is_refused(study, tmp_path, capsys):
    folder = tmp_path / "tv"
    folder.mkdir()
    np.save(folder / "features.npy", np.zeros((16, 4), dtype=np.float32))
    out = tmp_path / "out"
    refused(capsys, ["rsa", "--study", study, "--features", folder, "--out", out],
            f"{folder}: has no file_names.txt, so rows cannot be matched to stimuli; give the folder THINGSvision's "
            "save_features wrote", out=out)


def test_retrain_refusals(tmp_path, capsys):
    refused(capsys, ["retrain", "--images", tmp_path / "missing", "--out", tmp_path / "h.pt"],
            f"{tmp_path / 'missing'}: labelled image folder not found; give a folder with one subfolder of images per class")
    refused(capsys, ["retrain", "--images", tmp_path, "--out", tmp_path / "h.npz"],
            f"{tmp_path / 'h.npz'}: head files are written as .pt; give an --out path ending in .pt")
    refused(capsys, ["layers", "--network", f"head:{tmp_path / 'nothing.pt'}"],
            f"{tmp_path / 'nothing.pt'}: head file not found; give a head file written by 'brainnet retrain'")


@pytest.mark.parametrize(("command", "name"), [("extract", "activations.npz"), ("report", "report.html")])
def test_file_output_that_is_a_folder_is_refused(command, name, tmp_path, capsys):
    folder = tmp_path / "existing"
    folder.mkdir()
    argv = ["extract", "--demo"] if command == "extract" else ["report", "--results", tmp_path]
    assert _line(capsys, [*argv, "--out", folder], folder) == (
        f"--out {folder}: is a folder; give a file name, e.g. --out {folder / name}")


# ---------------------------------------------------------------- surfaces and released betas

@pytest.fixture(scope="module")
def released(tmp_path_factory):
    from brainnet.datasets.miniature import simulate_released_betas
    from brainnet.released import study_from_released_betas

    root = tmp_path_factory.mktemp("released")
    nod = simulate_released_betas(root / "nod", n_subjects=2, n_stimuli=16, n_repeats=2)
    return nod, study_from_released_betas(nod, root / "study")


def test_surface_input_mistakes_are_refused(released, tmp_path, capsys):
    nod, study = released
    out = tmp_path / "out"
    assert _line(capsys, ["encode", "--study", study, "--subject", "01", "--mask", "occipital", *QUICK, "--out", out], out) == (
        "--mask occipital: an MNI152 volume region, but sub-01's betas are on the surface; use the subject's own region "
        "(--mask occipital-aparc where it exists) or a CIFTI mask on the betas' mesh")
    # a parcellation on another mesh
    dlabel = nib.load(str(next((study / "sub-01" / "anat").glob("*.dlabel.nii"))))
    left = nib.cifti2.BrainModelAxis.from_mask(np.ones(12, bool), name="CORTEX_LEFT")
    other = tmp_path / "other.dlabel.nii"
    nib.Cifti2Image(np.ones((1, 12), np.float32),
                    header=nib.cifti2.Cifti2Header.from_axes((dlabel.header.get_axis(0), left))).to_filename(str(other))
    n_left = dlabel.header.get_axis(1).nvertices["CIFTI_STRUCTURE_CORTEX_LEFT"]
    assert _line(capsys, ["encode", "--study", study, "--subject", "01", "--mask", other, *QUICK, "--out", out], out) == (
        f"{other}: L hemisphere mesh has 12 vertices, the betas' {n_left}; give a CIFTI mask on the betas' mesh "
        "(a parcellation on the betas' mesh, e.g. fsLR 32k)")
    # mixed surface and volume subjects
    mixed = tmp_path / "mixed"
    shutil.copytree(study, mixed)
    (mixed / "sub-02" / "func" / "sub-02_task-imagenet_space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii").unlink()
    volume = next((nod / "sourcedata" / "volume" / "sub-02" / "func").glob("*_betas.nii.gz"))
    shutil.copy2(volume, mixed / "sub-02" / "func" / "sub-02_task-imagenet_space-MNI152NLin2009cAsym_desc-singletrial_betas.nii.gz")
    surface = mixed / "sub-01" / "func" / "sub-01_task-imagenet_space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii"
    assert _line(capsys, ["rsa", "--study", mixed, "--mask", "occipital-aparc", "--permutations", "2", "--out", out], out) == (
        f"{surface}: surface betas, but sub-02_task-imagenet_space-MNI152NLin2009cAsym_desc-singletrial_betas.nii.gz is a "
        "volume: a study holds one kind; give every subject surface betas (CIFTI dscalar, e.g. ciftify's) or every "
        "subject volume betas (NIfTI)")


def test_subject_space_mistakes_are_refused(released, tmp_path, capsys):
    """Volume betas in a subject's own (T1w) space: MNI atlas, missing per-subject mask, parcellation, grid."""
    nod, _ = released
    t1w = tmp_path / "t1w"
    shutil.copytree(nod / "sourcedata" / "volume", t1w)
    for f in t1w.glob("sub-*/func/*_space-MNI152NLin2009cAsym_*betas.nii.gz"):
        f.rename(f.with_name(f.name.replace("MNI152NLin2009cAsym", "T1w")))
    betas = next(t1w.glob("sub-01/func/*_betas.nii.gz"))
    out = tmp_path / "out"
    quick = ["--subject", "01", *QUICK, "--out", out]
    assert _line(capsys, ["encode", "--study", t1w, "--mask", "occipital", *quick], out) == (
        f"--mask occipital: an MNI152 atlas region, but sub-01's betas are in space T1w ({betas.name}); use the "
        "subject's own region (--mask occipital-aparc where it exists, or --mask 'masks/sub-{subject}_<region>.nii.gz'), "
        "or betas in MNI space")
    template = str(tmp_path / "masks" / "sub-{subject}_occ.nii.gz")
    assert _line(capsys, ["encode", "--study", t1w, "--mask", template, *quick], out) == (
        f"{tmp_path / 'masks' / 'sub-01_occ.nii.gz'}: mask file not found; give a NIfTI path or one of occipital, v1, v2, "
        "v3, v4, inferotemporal, whole-brain")
    anat = t1w / "sub-01" / "anat"
    assert _line(capsys, ["encode", "--study", t1w, "--mask", "occipital-aparc", *quick], out) == (
        f"{anat / 'sub-01_desc-aparcaseg_dseg.nii.gz'}: parcellation not found; copy fMRIPrep's "
        f"sub-01_desc-aparcaseg_dseg.nii.gz (the space of the betas) into {anat}")
    (tmp_path / "masks").mkdir()
    nib.Nifti1Image(np.ones((5, 5, 5), np.uint8), np.eye(4)).to_filename(tmp_path / "masks" / "sub-01_occ.nii.gz")
    shape = nib.load(str(betas)).shape[:3]
    assert _line(capsys, ["encode", "--study", t1w, "--mask", template, *quick], out) == (
        f"{tmp_path / 'masks' / 'sub-01_occ.nii.gz'}: mask grid (shape (5, 5, 5)) differs from the data grid of "
        f"{betas.name} (shape {shape}) or its affine; resample the mask to the data, e.g. "
        "nilearn.image.resample_to_img(mask, betas, interpolation='nearest')")


@pytest.mark.parametrize(("argv", "what"), [
    (["searchlight", "--permutations", "2"], "a searchlight"),
    (["partition", "--subject", "01", "--permutations", "2"], "variance partitioning"),
])
def test_volume_only_analyses_refuse_surface_studies(released, argv, what, tmp_path, capsys):
    _, study = released
    out = tmp_path / "out"
    assert _line(capsys, [argv[0], "--study", study, "--mask", "occipital-aparc", *argv[1:], "--out", out], out) == (
        f"--study {study}: surface betas (vertices, no voxel grid); {what} needs volume betas: run it on a volume "
        "study, or run encode, decode or rsa on the surface")


def test_released_betas_input_mistakes_are_refused(released, tmp_path, capsys):
    nod, _ = released
    out = tmp_path / "study"
    broken = tmp_path / "nod"
    shutil.copytree(nod, broken, ignore=shutil.ignore_patterns("sourcedata"))
    label = broken / "derivatives/ciftify/sub-01/results/ses-imagenet01_task-imagenet_run-1/ses-imagenet01_task-imagenet_run-1_label.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(lines[1:]) + "\n")
    assert _line(capsys, ["study", "from-released", "--source", broken, "--out", out], out) == (
        f"{label}: {len(lines) - 1} labels but its beta file has {len(lines)} maps; fetch both files of the run again "
        "(one label line per beta map)")
    assert not out.exists()
    dlabel = broken / "derivatives/ciftify/sub-02/standard_fsLR_surface/sub-02.aparc.32k_fs_LR.dlabel.nii"
    label.write_text("\n".join(lines) + "\n")
    dlabel.unlink()
    assert _line(capsys, ["study", "from-released", "--source", broken, "--out", out], out) == (
        f"{dlabel}: the subject's fsLR parcellation not found; fetch it with the betas: brainnet fetch ds004496 "
        "--subjects 02 --what betas")
    assert not out.exists()
    assert _line(capsys, ["fetch", "ds004192", "--what", "betas", "--dest", tmp_path / "things"], tmp_path / "things") == (
        "--what betas: ds004192's single-trial betas are not on OpenNeuro; get them from "
        "https://doi.org/10.25452/figshare.plus.c.6161151 (the figshare collection of the THINGS-fMRI single-trial betas "
        "(doi 10.25452/figshare.plus.c.6161151); brainnet has no reader for them yet)")


def test_gifti_betas_mistakes_are_refused(tmp_path):
    from brainnet.surfaces import gifti_to_dscalar

    left, right = tmp_path / "sub-01_hemi-L_betas.func.gii", tmp_path / "sub-01_hemi-R_betas.func.gii"
    for path, n_trials in ((left, 3), (right, 2)):
        nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.zeros(10, np.float32)) for _ in range(n_trials)]),
                 str(path))
    out = tmp_path / "joined.dscalar.nii"
    with pytest.raises(BrainnetError) as err:
        gifti_to_dscalar(left, right, out)
    assert str(err.value) == f"{right}: 2 trials but the left hemisphere has 3; give both hemispheres of the same betas"
    (tmp_path / "bad.func.gii").write_text("not xml")
    with pytest.raises(BrainnetError) as err:
        gifti_to_dscalar(tmp_path / "bad.func.gii", right, out)
    assert str(err.value).startswith(f"{tmp_path / 'bad.func.gii'}: not readable GIFTI data arrays (")
    assert str(err.value).endswith("); give a .func.gii with one data array per trial")
    assert not out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--mask", "occipital"], "--mask/--layers: 1 region and layer, nothing to compare; give at least two different "
                              "regions (e.g. --mask occipital,whole-brain) or layers (e.g. --layers fc7,fc8)"),
    (["--mask", "occipital,v1", "--layers", "fc7,fc8"],
     "--mask and --layers both list several; compare regions (one layer) or layers (one region)"),
], ids=["one-side", "both-several"])
def test_contrast_without_two_sides_is_refused(options, message, study, tmp_path, capsys):
    out = tmp_path / "out"
    assert _refused_line(capsys, ["contrast", "rsa", "--study", study, *options, "--out", out], out) == message


@pytest.mark.parametrize(("options", "message"), [
    (["rsa", "--flips", "0"], "--flips 0: must be 1 or more; pass --flips 1 or a larger number"),
    (["rsa", "--permutations", "-1"], "--permutations -1: must be 0 or more; pass --permutations 0 or a larger number"),
    (["encode", "--cv", "1", "--permutations", "0"], "--cv 1: needs at least 2 folds; e.g. --cv 5"),
    (["decode", "--components", "13", "--permutations", "0"],
     "--components 13: within-subject decoding (the side-swap test) trains on 12 stimuli x 2699 voxels per fold; "
     "use at most 12 components or more folds (--cv)"),
], ids=["flips", "permutations", "cv", "within-subject-components"])
def test_contrast_counts_are_refused(options, message, study, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["contrast", options[0], "--study", study, "--mask", "occipital,v1", *options[1:], "--out", out]
    assert _refused_line(capsys, argv, out) == message


def test_record_read_refusals(tmp_path):
    """``Record.read`` names the folder, what is wrong and the fix; nothing is half-read."""
    from brainnet.permutation import PermutationResult, permutation_test
    from brainnet.power import PowerResult

    folder = permutation_test(lambda idx: idx[:, :2].astype(float), 12, n_permutations=19).write(tmp_path / "p")
    with pytest.raises(BrainnetError) as info:
        PowerResult.read(folder)
    assert str(info.value) == f"{folder}: holds a PermutationResult, not a PowerResult; read it with that class"
    with pytest.raises(BrainnetError) as info:
        PermutationResult.read(tmp_path / "none")
    assert str(info.value) == (
        f"{tmp_path / 'none'}: holds no readable PermutationResult (record.json and record.npz: "
        "FileNotFoundError); pass a folder written by PermutationResult.write"
    )
    (folder / "record.json").write_text("{not json")
    with pytest.raises(BrainnetError) as info:
        PermutationResult.read(folder)
    assert str(info.value) == (
        f"{folder}: holds no readable PermutationResult (record.json and record.npz: "
        "JSONDecodeError); pass a folder written by PermutationResult.write"
    )
    folder = permutation_test(lambda idx: idx[:, :2].astype(float), 12, n_permutations=19).write(tmp_path / "q")
    doc = json.loads((folder / "record.json").read_text())
    del doc["fields"]["seed"]
    (folder / "record.json").write_text(json.dumps(doc))
    with pytest.raises(BrainnetError) as info:
        PermutationResult.read(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'record.json'}: does not describe a PermutationResult (TypeError: ")
    assert message.endswith("); write the record again with PermutationResult.write") and "\n" not in message
