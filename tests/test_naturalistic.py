"""Naturalistic encoding: blocked CV (and why), HRF design, NNDb layout, censoring, chunks, Dask."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from brainnet import naturalistic as N
from brainnet.errors import BrainnetError, BrainnetNotice

FRAME_RATE, TR, N_TRS = 2.0, 1.0, 300


# ---------------------------------------------------------------- BlockedKFold


@pytest.mark.parametrize(("n", "k", "gap"), [(300, 5, 30), (101, 3, 7), (50, 2, 0), (12, 4, 1)])
def test_blocked_kfold_blocks_and_gaps(n, k, gap):
    splits = list(N.BlockedKFold(k, gap).split(np.zeros((n, 2))))
    assert len(splits) == k == N.BlockedKFold(k, gap).get_n_splits()
    tests = np.concatenate([te for _, te in splits])
    assert np.array_equal(tests, np.arange(n))  # test blocks partition the timeline, in order
    for train, test in splits:
        assert np.array_equal(test, np.arange(test[0], test[-1] + 1))  # contiguous
        dist = np.min(np.abs(train[:, None] - test[None, :]), axis=1)
        assert np.all(dist > gap)  # nothing within `gap` volumes of the test block
        expected = np.setdiff1d(np.arange(n), np.arange(test[0] - gap, test[-1] + gap + 1))
        assert np.array_equal(train, expected)  # and everything else is used


def test_blocked_kfold_works_as_sklearn_cv():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 3))
    y = x @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(120)
    scores = cross_val_score(Ridge(alpha=1.0), x, y, cv=N.BlockedKFold(4, gap=5))
    assert scores.shape == (4,) and np.all(scores > 0.9)


@pytest.mark.parametrize(
    ("k", "gap", "msg"),
    [(1, 0, r"n_splits=1: needs an integer >= 2"), (5, -1, r"gap=-1: needs a non-negative"), (5, 40, r"100 volumes cannot make 5 blocks with a gap of 40")],
)
def test_blocked_kfold_errors(k, gap, msg):
    with pytest.raises(BrainnetError, match=msg):
        list(N.BlockedKFold(k, gap).split(100))


def test_random_kfold_leaks_blocked_does_not():
    """On autocorrelated null data, shuffled k-fold over volumes finds "signal"; blocked CV with a gap does not."""
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((int(N_TRS * TR * FRAME_RATE), 20))
    bold = gaussian_filter1d(rng.standard_normal((N_TRS, 150)), 3, axis=0)  # unrelated to the features
    design = N.convolve_frames(frames, FRAME_RATE, TR, N_TRS)
    source = N._source_from_array(bold, None)
    random = N._encode_chunk(source, 0, 150, design, list(KFold(5, shuffle=True, random_state=0).split(design)), N.DEFAULT_ALPHAS)
    blocked = N.encode_naturalistic(bold, frames, frame_rate=FRAME_RATE, tr=TR, gap_s=30)
    assert np.mean(random["r"]) > 0.25
    assert abs(np.mean(blocked.r)) < 0.05
    # and the blocked scores look like a null distribution: about half the voxels below zero
    assert 0.3 < np.mean(blocked.r < 0) < 0.7


# ---------------------------------------------------------------- HRF design


def test_convolve_frames_matches_nilearn_compute_regressor():
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(2)
    frames = gaussian_filter1d(rng.standard_normal((240, 2)), 2, axis=0)  # 120 s at 2 Hz
    n_trs = 100
    ours = N.convolve_frames(frames, FRAME_RATE, TR, n_trs)
    onsets = np.arange(240) / FRAME_RATE
    for j in range(2):
        ref, _ = compute_regressor(
            np.vstack([onsets, np.full(240, 1 / FRAME_RATE), frames[:, j]]), "glover", np.arange(n_trs) * TR, oversampling=50
        )
        assert pearsonr(ours[:, j], ref[:, 0]).statistic > 0.995


def test_convolve_frames_peaks_after_the_event():
    frames = np.zeros((200, 1))
    frames[20] = 1.0  # a single frame at 10 s (2 Hz)
    design = N.convolve_frames(frames, FRAME_RATE, TR, 60)
    assert 14 <= int(np.argmax(design[:, 0])) <= 16  # canonical HRF peaks ~5 s later
    shifted = N.convolve_frames(frames, FRAME_RATE, TR, 60, offset_s=3.0)
    assert int(np.argmax(shifted[:, 0])) == int(np.argmax(design[:, 0])) + 3


def test_convolve_frames_rejects_bad_input():
    with pytest.raises(BrainnetError, match=r"frame features of shape \(2, 3, 4\)"):
        N.convolve_frames(np.zeros((2, 3, 4)), 1.0, 1.0, 10)
    with pytest.raises(BrainnetError, match="NaN"):
        N.convolve_frames(np.full((5, 2), np.nan), 1.0, 1.0, 10)
    with pytest.raises(BrainnetError, match="hrf_model='fir'"):
        N.convolve_frames(np.zeros((5, 2)), 1.0, 1.0, 10, hrf_model="fir")


# ---------------------------------------------------------------- frame-feature files


def _write_v73_mat(path, name, array):
    """A MATLAB v7.3 file: a 512-byte MATLAB header in front of an HDF5 file (column-major arrays)."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as fh:
        fh.create_dataset(name, data=np.asarray(array).T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))


def test_load_frame_features_formats(tmp_path):
    from scipy.io import savemat

    feats = np.arange(60, dtype=float).reshape(12, 5)
    savemat(tmp_path / "v5.mat", {"fc7": feats})
    assert np.array_equal(N.load_frame_features(tmp_path / "v5.mat"), feats)
    _write_v73_mat(tmp_path / "v73.mat", "fc7", feats)
    assert np.array_equal(N.load_frame_features(tmp_path / "v73.mat"), feats)
    np.save(tmp_path / "f.npy", feats)
    assert np.array_equal(N.load_frame_features(tmp_path / "f.npy"), feats)
    savemat(tmp_path / "two.mat", {"fc7": feats, "fc8": feats[:, :2]})
    with pytest.raises(BrainnetError, match=r"two.mat: holds fc7, fc8; name the frame-feature array with variable="):
        N.load_frame_features(tmp_path / "two.mat")
    assert N.load_frame_features(tmp_path / "two.mat", variable="fc8").shape == (12, 2)
    with pytest.raises(BrainnetError, match=r"has no variable 'pool5' \(it has fc7, fc8\)"):
        N.load_frame_features(tmp_path / "two.mat", variable="pool5")
    with pytest.raises(BrainnetError, match=r"nope.mat: no such file"):
        N.load_frame_features(tmp_path / "nope.mat")


# ---------------------------------------------------------------- NNDb layout and the full workflow


def test_nndb_subject_labels(tmp_path):
    assert N.nndb_subject(1) == N.nndb_subject("sub-1") == N.nndb_subject("1") == "1"
    with pytest.raises(BrainnetError, match=r"subject '01': NNDb subjects are sub-1 ... sub-86 \(not zero-padded\)"):
        N.nndb_subject("01")
    with pytest.raises(BrainnetError, match=r"sub-3_task-citizenfour_bold_blur_censor.nii.gz: no such file; fetch it with `brainnet fetch ds002837 --subjects 3 --what derivatives"):
        N.nndb_bold_path(tmp_path, "sub-3", "citizenfour")


def _mini_nndb(root, rng, n_planted=8, n_censored=10):
    """A 6x6x6 x 300-TR NNDb-shaped subject: planted voxels follow HRF-convolved features."""
    frames = gaussian_filter1d(rng.standard_normal((int(N_TRS * TR * FRAME_RATE), 12)), 1, axis=0)
    design = N.convolve_frames(frames, FRAME_RATE, TR, N_TRS)
    design = (design - design.mean(0)) / design.std(0)
    data = rng.standard_normal((6, 6, 6, N_TRS)).astype(np.float32)
    data[0] = 0.0  # a slab outside the brain: zero at every time point
    flat = data.reshape(-1, N_TRS)
    inside = np.flatnonzero(np.any(flat != 0, axis=1))
    planted = rng.choice(inside, n_planted, replace=False)
    for v in planted:
        flat[v] = design @ rng.standard_normal(12) / np.sqrt(12) + 0.5 * rng.standard_normal(N_TRS)
    censored = np.sort(rng.choice(np.arange(40, 260), n_censored, replace=False))
    flat[:, censored] = 0.0  # AFNI writes censored volumes as all-zero
    data = flat.reshape(6, 6, 6, N_TRS) + 100.0 * (flat.reshape(6, 6, 6, N_TRS) != 0)  # a BOLD-like baseline
    path = root / "derivatives" / "sub-1" / "func" / "sub-1_task-500daysofsummer_bold_blur_censor.nii.gz"
    path.parent.mkdir(parents=True)
    nib.Nifti1Image(data.astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0])).to_filename(path)
    return frames, planted, censored, inside


def test_nndb_shaped_dataset_end_to_end(tmp_path):
    rng = np.random.default_rng(3)
    frames, planted, censored, inside = _mini_nndb(tmp_path, rng)
    bold = N.nndb_bold_path(tmp_path, "sub-1", "500daysofsummer")
    result = N.encode_naturalistic(bold, frames, frame_rate=FRAME_RATE, tr=TR, gap_s=30, chunk_size=40)
    # default mask: every voxel that is ever non-zero
    assert result.r.shape == (inside.size,)
    assert np.array_equal(np.flatnonzero(result.censored), censored)
    for train, test in result.folds:
        assert not np.isin(censored, np.concatenate([train, test])).any()
    position = {v: i for i, v in enumerate(inside)}
    planted_idx = np.array([position[v] for v in planted])
    assert set(np.argsort(result.r)[-planted.size:]) == set(planted_idx)
    assert np.all(result.r[planted_idx] > 0.6)
    null = np.delete(result.r, planted_idx)
    assert abs(np.median(null)) < 0.05
    # chunking does not change anything
    single = N.encode_naturalistic(bold, frames, frame_rate=FRAME_RATE, tr=TR, gap_s=30, chunk_size=10_000)
    np.testing.assert_allclose(single.r, result.r, rtol=0, atol=1e-12)
    # the map lands on the right voxels
    out = result.write(tmp_path / "res")
    rmap = np.asarray(nib.load(out / "r.nii.gz").dataobj).reshape(-1)
    assert set(np.argsort(rmap)[-planted.size:]) == set(planted)
    assert (out / "summary.json").exists() and (out / "scores.npz").exists()


def test_matches_independent_sklearn_reference():
    """With a fixed-penalty model, scores equal a hand-written fold loop with scikit-learn and scipy."""
    rng = np.random.default_rng(4)
    frames = rng.standard_normal((2 * 120, 6))
    design = N.convolve_frames(frames, FRAME_RATE, TR, 120)
    bold = design @ rng.standard_normal((6, 9)) + rng.standard_normal((120, 9))
    bold[[30, 31, 77]] = 0.0  # censored
    model = make_pipeline(StandardScaler(), Ridge(alpha=3.0))
    ours = N.encode_naturalistic(bold, frames, frame_rate=FRAME_RATE, tr=TR, n_splits=4, gap_s=10, model=model, chunk_size=4)
    keep = np.ones(120, bool)
    keep[[30, 31, 77]] = False
    r = np.zeros((4, 9))
    for k in range(4):
        test = np.arange(30 * k, 30 * (k + 1))
        train = np.array([t for t in range(120) if t < 30 * k - 10 or t >= 30 * (k + 1) + 10])
        test, train = test[keep[test]], train[keep[train]]
        fit = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(design[train], bold[train])
        pred = fit.predict(design[test])
        r[k] = [pearsonr(pred[:, v], bold[test, v]).statistic for v in range(9)]
    np.testing.assert_allclose(ours.r_folds, r, atol=1e-10)
    np.testing.assert_allclose(ours.r, r.mean(axis=0), atol=1e-10)


def test_censored_volumes_and_input_errors(tmp_path):
    data = np.ones((10, 4))
    data[[2, 7]] = 0.0
    data[5, 0] = 0.0  # one zero voxel is not a censored volume
    assert np.array_equal(np.flatnonzero(N.censored_volumes(data, chunk_size=3)), [2, 7])
    with pytest.raises(BrainnetError, match=r"mask of shape \(3,\): for a BOLD array pass a boolean vector of length n_voxels=4"):
        N.encode_naturalistic(data, np.ones((20, 2)), frame_rate=2, tr=1, mask=np.ones(3, bool))
    with pytest.raises(BrainnetError, match=r"missing.nii.gz: no such file; pass a 4-D BOLD NIfTI"):
        N.encode_naturalistic(tmp_path / "missing.nii.gz", np.ones((20, 2)), frame_rate=2, tr=1)
    with pytest.raises(BrainnetError, match=r"chunk_size=0"):
        N.encode_naturalistic(data, np.ones((20, 2)), frame_rate=2, tr=1, chunk_size=0)


# ---------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_run_equals_single_process(tmp_path, dask_client):
    rng = np.random.default_rng(5)
    frames, planted, _, _ = _mini_nndb(tmp_path, rng)
    bold = N.nndb_bold_path(tmp_path, 1, "500daysofsummer")
    kwargs = dict(frame_rate=FRAME_RATE, tr=TR, gap_s=30, chunk_size=25)
    local = N.encode_naturalistic(bold, frames, **kwargs)
    remote = N.encode_naturalistic(bold, frames, scheduler=dask_client, **kwargs)
    assert len(dask_client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(remote.r, local.r)
    np.testing.assert_array_equal(remote.r_folds, local.r_folds)
    np.testing.assert_array_equal(remote.censored, local.censored)
    threads = N.encode_naturalistic(bold, frames, n_jobs=2, **kwargs)
    np.testing.assert_array_equal(threads.r, local.r)


def test_results_do_not_depend_on_blas_threads_or_scheduler(dask_client):
    """Large enough for multi-threaded BLAS; before BLAS was pinned to one thread, Dask runs of this
    size sometimes differed from single-process runs in the last bits (~7e-17), depending on timing."""
    rng = np.random.default_rng(9)
    frames = rng.standard_normal((2 * 1500, 32))
    bold = rng.standard_normal((1500, 600)).astype(np.float32)
    kwargs = dict(frame_rate=FRAME_RATE, tr=TR, gap_s=30, chunk_size=300)
    local = N.encode_naturalistic(bold, frames, **kwargs)
    np.testing.assert_array_equal(N.encode_naturalistic(bold, frames, scheduler=dask_client, **kwargs).r, local.r)


def test_dask_with_arrays_and_memmaps(tmp_path, dask_client):
    rng = np.random.default_rng(6)
    frames = rng.standard_normal((2 * 150, 5))
    bold = (N.convolve_frames(frames, FRAME_RATE, TR, 150) @ rng.standard_normal((5, 30)) + rng.standard_normal((150, 30))).astype(np.float32)
    mm = np.lib.format.open_memmap(tmp_path / "bold.npy", mode="w+", dtype=np.float32, shape=bold.shape)
    mm[:] = bold
    mm.flush()
    mm = np.load(tmp_path / "bold.npy", mmap_mode="r")
    kwargs = dict(frame_rate=FRAME_RATE, tr=TR, n_splits=3, gap_s=20, chunk_size=8)
    local = N.encode_naturalistic(bold, frames, **kwargs)
    assert N._source_from_array(mm, None).kind == "memmap"  # workers reopen the file themselves
    for data in (bold, mm):
        np.testing.assert_array_equal(N.encode_naturalistic(data, frames, scheduler=dask_client, **kwargs).r, local.r)


def test_bad_scheduler_is_a_one_line_error():
    with pytest.raises(BrainnetError, match=r"scheduler=42: pass a Dask scheduler address"):
        N.encode_naturalistic(np.ones((60, 2)) + np.arange(60)[:, None], np.ones((120, 2)), frame_rate=2, tr=1, gap_s=2, scheduler=42)


# ---------------------------------------------------------------- command line


def test_cli_naturalistic_on_nndb_layout(tmp_path, capsys):
    import json

    from brainnet.cli import main

    rng = np.random.default_rng(7)
    frames, planted, censored, _ = _mini_nndb(tmp_path / "nndb", rng)
    np.save(tmp_path / "frames.npy", frames)
    argv = ["naturalistic", "--nndb", str(tmp_path / "nndb"), "--subject", "sub-1", "--task", "500daysofsummer",
            "--frame-features", str(tmp_path / "frames.npy"), "--frame-rate", str(FRAME_RATE), "--n-jobs", "2", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert f"{censored.size} censored volumes excluded" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["complete"] and summary["n_censored"] == censored.size
    assert summary["provenance"]["features"]["sha256"] and summary["provenance"]["study"]["path"].endswith("_bold_blur_censor.nii.gz")
    rmap = np.asarray(nib.load(tmp_path / "out" / "r.nii.gz").dataobj).reshape(-1)
    assert set(np.argsort(rmap)[-planted.size:]) == set(planted)
    # user mistakes: one line, exit 2
    assert main(argv[:3] + ["--subject", "01"] + argv[5:]) == 2
    assert "error: subject '01': NNDb subjects are sub-1 ... sub-86 (not zero-padded)" in capsys.readouterr().err
    assert main(["naturalistic", "--bold", str(tmp_path / "x.nii.gz"), "--frame-features", str(tmp_path / "frames.npy"), "--frame-rate", "2"]) == 2
    assert "error: --tr: required with --bold" in capsys.readouterr().err


def test_duration_mismatch_notice():
    rng = np.random.default_rng(8)
    bold = rng.standard_normal((120, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BrainnetNotice)  # matching durations: no notice
        N.encode_naturalistic(bold, rng.standard_normal((240, 2)), frame_rate=2, tr=1, gap_s=10)
    with pytest.warns(BrainnetNotice, match="the frame features last 240 s but the BOLD data 120 s; check --frame-rate"):
        N.encode_naturalistic(bold, rng.standard_normal((240, 2)), frame_rate=1, tr=1, gap_s=10)  # 240 s of film, 120 s of scan


@pytest.mark.parametrize("order", ["C", "F"])
def test_memmap_inputs_are_read_without_mapping(tmp_path, order):
    rng = np.random.default_rng(10)
    frames = rng.standard_normal((2 * 120, 4))
    bold = N.convolve_frames(frames, FRAME_RATE, TR, 120) @ rng.standard_normal((4, 13)) + rng.standard_normal((120, 13))
    bold = np.asarray(bold, dtype=np.float32, order=order)
    np.save(tmp_path / "bold.npy", bold)
    mm = np.load(tmp_path / "bold.npy", mmap_mode="r")
    source = N._source_from_array(mm, None)
    assert source.kind == "memmap" and source.order == order
    np.testing.assert_array_equal(source.read(3, 11), bold[:, 3:11].astype(np.float64))
    kwargs = dict(frame_rate=FRAME_RATE, tr=TR, n_splits=3, gap_s=10, chunk_size=5)
    np.testing.assert_array_equal(N.encode_naturalistic(mm, frames, **kwargs).r, N.encode_naturalistic(bold, frames, **kwargs).r)


def test_rerun_with_other_parameters_is_refused_before_the_analysis(tmp_path, capsys, monkeypatch):
    import json

    from brainnet.cli import main

    rng = np.random.default_rng(11)
    _mini_nndb(tmp_path / "nndb", rng)
    np.save(tmp_path / "frames.npy", rng.standard_normal((int(N_TRS * TR * FRAME_RATE), 4)))
    out = tmp_path / "out"
    argv = ["naturalistic", "--nndb", str(tmp_path / "nndb"), "--subject", "1", "--task", "500daysofsummer",
            "--frame-features", str(tmp_path / "frames.npy"), "--frame-rate", str(FRAME_RATE), "--out", str(out)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    def must_not_run(*args, **kwargs):
        raise AssertionError("the analysis ran before the result folder was checked")

    monkeypatch.setattr(N, "_encode", must_not_run)
    monkeypatch.setattr(N, "_provenance", must_not_run)  # not even the inputs' checksums are computed
    assert main([*argv, "--gap-s", "20"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"brainnet naturalistic: error: {out}: holds results made with other parameters, weights or data; "
        "choose another --out folder or pass --overwrite")
    assert any(f"{out}: gap_s=30.0 there, 20.0 in this run" in line for line in err), err  # the parameter named
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    assert main([*argv, "--gap-s", "20", "--overwrite"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["parameters"]["gap_s"] == 20.0
