"""Kill-and-resume (issue 9): a SIGKILLed run, rerun, equals an uninterrupted run.

Covers the permutation engine (``brainnet encode``) and a multi-subject loop
(the subsamples of ``brainnet power``), plus refusal of a rerun with other
parameters and the completeness flag of a results folder.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainnet.cli import main


@pytest.fixture(scope="session")
def study4(small_study):
    return small_study


def _draws(path: Path) -> int:
    try:
        with np.load(path) as data:
            return int(data["draws"].shape[0])
    except (OSError, ValueError, KeyError, EOFError):
        return 0


def _kill_midway(interrupt, argv: list[str], checkpoint: Path, sig: int = signal.SIGKILL) -> tuple[int, int, str]:
    """Run the CLI in a subprocess that signals itself right after its 2nd write of ``checkpoint``.

    Returns the draws in the checkpoint then, the exit status and stderr.
    """
    proc = interrupt(argv, f"*/{checkpoint.parent.parent.name}/checkpoints/{checkpoint.name}", 2, sig)
    return _draws(checkpoint), proc.returncode, proc.stderr


def _arrays(folder: Path) -> dict[str, np.ndarray | bytes]:
    """Every result array of a folder (not timestamps): TSV bytes, NIfTI and NPZ data."""
    out: dict[str, np.ndarray | bytes] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.suffix == ".tsv":
            out[rel] = path.read_bytes()
        elif path.name.endswith((".nii", ".nii.gz")):
            out[rel] = np.asarray(nib.load(path).dataobj)
        elif path.suffix == ".npz":
            with np.load(path) as data:
                out.update({f"{rel}:{k}": data[k] for k in data.files})
    return out


def assert_same_results(a: Path, b: Path) -> None:
    left, right = _arrays(a), _arrays(b)
    assert left and sorted(left) == sorted(right)
    for key, value in left.items():
        if isinstance(value, bytes):
            assert value == right[key], key
        else:
            np.testing.assert_array_equal(value, right[key], err_msg=key)


def _complete(folder: Path) -> bool:
    summary = folder / "summary.json"
    return summary.exists() and json.loads(summary.read_text())["complete"] is True


CASES = {
    "encode-permutations": (
        lambda s, f: ["encode", "--study", s, "--features", f, "--permutations", "600", "--cv", "2",
                      "--alphas", "1", "100"],
        "sub-01/encode-fc8", "null.npz", 600,
    ),
    "power-subject-loop": (
        lambda s, f: ["power", "--study", s, "--features", f, "--sizes", "3,4", "--repeats", "30",
                      "--permutations", "99", "--components", "2", "--pca", "10"],
        "group/power-fc8", "power_subsamples.npz", 31,
    ),
    "decode-permutations": (
        lambda s, f: ["decode", "--study", s, "--features", f, "--permutations", "3000", "--bootstrap", "0",
                      "--components", "2"],
        "group/decode-fc8", "decoding_null.npz", 3000,
    ),
    "rsa-permutations": (
        lambda s, f: ["rsa", "--study", s, "--features", f, "--permutations", "60000", "--bootstrap", "0"],
        "group/rsa-fc8", "rsa-permutations-spearman.npz", 60000,
    ),
}
_SLOW = {"decode-permutations"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in _SLOW else c for c in CASES])
def test_killed_run_resumes_to_the_uninterrupted_result(case, study4, tmp_path, capsys, interrupt_after_write):
    make_argv, sub, ckpt_name, total = CASES[case]
    argv = [str(a) for a in make_argv(*study4)]
    reference = tmp_path / "reference"
    assert main([*argv, "--out", str(reference)]) == 0
    assert _complete(reference / sub)

    resumed = tmp_path / "resumed"
    checkpoint = resumed / sub / "checkpoints" / ckpt_name
    done, status, _ = _kill_midway(interrupt_after_write, [*argv, "--out", str(resumed)], checkpoint)
    assert 0 < done < total and status == -signal.SIGKILL
    assert not (resumed / sub / "summary.json").exists()  # the folder says it is incomplete

    assert main([*argv, "--out", str(resumed)]) == 0
    capsys.readouterr()
    assert _complete(resumed / sub)
    assert not checkpoint.exists()  # finish() clears the checkpoints
    assert_same_results(reference / sub, resumed / sub)


def test_ctrl_c_says_how_to_resume_and_resumes(study4, tmp_path, capsys, interrupt_after_write):
    make_argv, sub, ckpt_name, total = CASES["power-subject-loop"]
    argv = [str(a) for a in make_argv(*study4)]
    out = tmp_path / "out"
    done, status, err = _kill_midway(interrupt_after_write, [*argv, "--out", str(out)],
                                     out / sub / "checkpoints" / ckpt_name, sig=signal.SIGINT)
    assert 0 < done < total
    assert status == 130, err
    assert err.strip().splitlines()[-1] == (
        "brainnet power: interrupted; finished work is saved, rerun the same command to resume"
    )
    assert "Traceback" not in err
    assert _draws(out / sub / "checkpoints" / ckpt_name) >= done
    assert main([*argv, "--out", str(out)]) == 0
    reference = tmp_path / "reference"
    assert main([*argv, "--out", str(reference)]) == 0
    capsys.readouterr()
    assert_same_results(reference / sub, out / sub)


def test_checkpoint_of_other_parameters_is_never_mixed_in(tmp_path):
    from brainnet.power import power_curve

    rng = np.random.default_rng(0)
    patterns = [rng.standard_normal((16, 30)) for _ in range(4)]
    index = [np.arange(16)] * 4
    features = rng.standard_normal((16, 5))
    kwargs = dict(subject_sizes=[3], n_repeats=4, n_permutations=20, n_components=2, n_pca=10)
    ckpt = tmp_path / "ckpt.npz"
    power_curve(patterns, index, features, seed=1, checkpoint=ckpt, **kwargs)
    # a checkpoint made with seed 1 must not leak into a seed-2 run
    resumed = power_curve(patterns, index, features, seed=2, checkpoint=ckpt, **kwargs)
    fresh = power_curve(patterns, index, features, seed=2, **kwargs)
    assert resumed.equals(fresh)
    assert not fresh.equals(power_curve(patterns, index, features, seed=1, **kwargs))


def test_rerun_with_other_parameters_is_refused(study4, tmp_path, capsys):
    study, feats = study4
    out = tmp_path / "out"
    base = ["encode", "--study", str(study), "--features", str(feats), "--cv", "2", "--out", str(out)]
    assert main([*base, "--permutations", "5"]) == 0
    folder = out / "sub-01" / "encode-fc8"
    before = _arrays(folder)
    capsys.readouterr()
    assert main([*base, "--permutations", "7"]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: holds results made with other parameters" in err and "--overwrite" in err
    assert "Traceback" not in err
    after = _arrays(folder)
    assert sorted(before) == sorted(after) and all(
        np.array_equal(before[k], after[k]) if not isinstance(before[k], bytes) else before[k] == after[k]
        for k in before
    )
    assert main([*base, "--permutations", "7", "--overwrite"]) == 0
    capsys.readouterr()
    assert json.loads((folder / "summary.json").read_text())["complete"] is True
    assert json.loads((folder / "run.json").read_text())["provenance"]["parameters"]["n_permutations"] == 7


def test_rerun_of_a_complete_folder_with_the_same_parameters_gives_the_same_files(study4, tmp_path, capsys):
    study, feats = study4
    out = tmp_path / "out"
    argv = ["encode", "--study", str(study), "--features", str(feats), "--cv", "2", "--permutations", "5",
            "--out", str(out)]
    assert main(argv) == 0
    first = _arrays(out)
    assert main(argv) == 0
    capsys.readouterr()
    second = _arrays(out)
    assert sorted(first) == sorted(second)
    assert _complete(out / "sub-01" / "encode-fc8")


def test_rsa_rerun_with_other_parameters_is_refused_before_computing(study4, tmp_path, capsys, monkeypatch):
    from brainnet.features import load_features

    study, fc8 = study4
    loaded = load_features(fc8)
    feats = tmp_path / "two_layers.npz"  # a second layer, to try a rerun with more layers
    np.savez(feats, stimulus_ids=np.asarray(loaded.stimulus_ids), fc8=loaded.layer("fc8"),
             fc7=np.tanh(loaded.layer("fc8")))
    out = tmp_path / "out"
    base = ["rsa", "--study", str(study), "--features", str(feats), "--bootstrap", "0", "--out", str(out)]
    assert main([*base, "--permutations", "50"]) == 0
    folder = out / "group" / "rsa-fc8"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()

    import brainnet.rsa

    def must_not_run(*args, **kwargs):
        raise AssertionError("the RSA ran before the folder was checked")

    monkeypatch.setattr(brainnet.rsa, "rsa_network_subject", must_not_run)
    for other in (["--permutations", "60"], ["--permutations", "50", "--seed", "1"],
                  ["--permutations", "50", "--layers", "fc7,fc8"]):
        assert main([*base, *other]) == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1] == (f"brainnet rsa: error: {folder}: holds results made with other parameters, "
                                        "weights or data; choose another --out folder or pass --overwrite")
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        assert sorted(p.name for p in (out / "group").iterdir()) == ["rsa-fc8"]  # no rsa-fc7 left behind
    monkeypatch.undo()
    assert main([*base, "--permutations", "60", "--overwrite"]) == 0
    capsys.readouterr()
    assert json.loads((folder / "summary.json").read_text())["n_permutations"] == 60
    assert not (folder / "checkpoints").exists() and not (out / "group" / ".rsa-checkpoints").exists()


def test_killed_naturalistic_run_keeps_its_finished_chunks(tmp_path, monkeypatch, interrupt_after_write):
    """SIGKILL after some voxel chunks: the rerun computes only the rest and equals an uninterrupted run."""
    import brainnet.naturalistic as N

    rng = np.random.default_rng(2)
    n_trs = 240
    frames = rng.standard_normal((n_trs * 2, 6))
    design = N.convolve_frames(frames, 2.0, 1.0, n_trs)
    data = 100 + rng.standard_normal((5, 5, 4, n_trs)) + (design @ rng.standard_normal((6, 100))).T.reshape(5, 5, 4, n_trs)
    nib.Nifti1Image(data.astype(np.float32), np.eye(4)).to_filename(tmp_path / "bold.nii.gz")
    np.save(tmp_path / "frames.npy", frames)
    argv = ["naturalistic", "--bold", tmp_path / "bold.nii.gz", "--tr", "1", "--frame-features", tmp_path / "frames.npy",
            "--frame-rate", "2", "--chunk-size", "8", "--gap-s", "20"]
    n_chunks = 13  # 100 voxels in chunks of 8
    resumed = tmp_path / "resumed"
    checkpoints = resumed / "checkpoints"
    proc = interrupt_after_write([*argv, "--out", resumed], "*/checkpoints/voxels-*.npz", 3)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    kept = len(list(checkpoints.glob("voxels-*.npz")))
    assert 3 <= kept < n_chunks and not (resumed / "summary.json").exists()

    computed = []
    encode_chunk = N._encode_chunk
    monkeypatch.setattr(N, "_encode_chunk", lambda *a, **k: computed.append(a[1]) or encode_chunk(*a, **k))
    assert main([str(a) for a in argv] + ["--out", str(resumed)]) == 0
    assert len(computed) == n_chunks - kept  # finished chunks were read back, not recomputed
    assert not checkpoints.exists()  # a complete folder keeps no checkpoints
    assert main([str(a) for a in argv] + ["--out", str(tmp_path / "straight")]) == 0
    with np.load(resumed / "scores.npz") as a, np.load(tmp_path / "straight" / "scores.npz") as b:
        for key in ("r", "r2", "r_folds", "censored"):
            np.testing.assert_array_equal(a[key], b[key])
    assert json.loads((resumed / "summary.json").read_text())["complete"]
