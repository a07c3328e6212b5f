"""Checkpoints are validated before use.

A truncated, corrupt or foreign checkpoint (other seed, sizes or data, or
impossible draws) is discarded with a ``CheckpointDiscarded`` warning naming the
file, and the run recomputes: the result equals an uninterrupted run. Tested
for the engine and, end to end, for the checkpoints of ``encode``, ``decode``
and ``rsa`` left by a killed run and then truncated.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainnet.cli import main
from brainnet.permutation import CheckpointDiscarded, permutation_test
from brainnet.results import atomic_save_npz

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal(30), RNG.standard_normal((30, 4))


def _stat(perms):
    return (X[perms] - X.mean()) @ (Y - Y.mean(0))


def _run(ckpt: Path, seed: int = 1):
    return permutation_test(_stat, 30, n_permutations=40, seed=seed, batch_size=10, checkpoint=ckpt)


def _message(path: Path, reason: str) -> str:
    return "^" + re.escape(f"{path}: checkpoint {reason}; discarded, this part of the run starts again") + "$"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_valid_checkpoint_resumes_without_warning(tmp_path, recwarn):
    ckpt = tmp_path / "c.npz"
    full = _run(ckpt)
    with np.load(ckpt) as data:  # keep the first 20 draws: an interrupted run
        atomic_save_npz(ckpt, **{k: (data[k][:20] if k == "draws" else data[k]) for k in data.files})
    np.testing.assert_array_equal(_run(ckpt).null, full.null)
    assert not [w for w in recwarn if issubclass(w.category, CheckpointDiscarded)]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncated", "is unreadable or truncated (BadZipFile)"),
        ("garbage", "is unreadable or truncated (ValueError)"),
        ("other seed", "was made by another run (other seed, sizes or data)"),
        ("no draws", "was made by another run (other seed, sizes or data)"),
        ("too many draws", "holds draws of shape (50, 4), which this run cannot have made"),
        ("other statistic shape", "was made by another run (other seed, sizes or data)"),
    ],
)
def test_a_damaged_or_foreign_checkpoint_is_discarded_with_a_warning_and_recomputed(damage, reason, tmp_path):
    fresh = _run(tmp_path / "fresh.npz")
    ckpt = tmp_path / "c.npz"
    if damage == "truncated":
        _run(ckpt)
        _truncate(ckpt)
    elif damage == "garbage":
        ckpt.write_bytes(b"not a checkpoint" * 10)
    elif damage == "other seed":
        _run(ckpt, seed=2)
    else:
        _run(ckpt)
        with np.load(ckpt) as data:
            arrays = {k: data[k] for k in data.files}
        if damage == "no draws":
            del arrays["draws"]
        elif damage == "too many draws":
            arrays["draws"] = np.vstack([arrays["draws"], arrays["draws"][:10]])
        else:
            arrays["observed"] = arrays["observed"][:2]
        atomic_save_npz(ckpt, **arrays)
    with pytest.warns(CheckpointDiscarded, match=_message(ckpt, reason)):
        again = _run(ckpt)
    np.testing.assert_array_equal(again.null, fresh.null)
    np.testing.assert_array_equal(again.observed, fresh.observed)


def _arrays(folder: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.suffix == ".tsv":
            out[rel] = path.read_bytes()
        elif path.name.endswith(".nii.gz"):
            out[rel] = np.asarray(nib.load(path).dataobj)
    return out


CASES = {
    "encode": (["encode", "--permutations", "60", "--cv", "2", "--alphas", "1", "100"],
               "sub-01/encode-fc8", "null.npz"),
    "decode": (["decode", "--permutations", "60", "--bootstrap", "0", "--components", "2",
                "--cluster-draws", "5"], "group/decode-fc8", "decoding_null.npz"),
    "rsa": (["rsa", "--permutations", "1000", "--bootstrap", "0"], "group/rsa-fc8", "rsa-permutations-spearman.npz"),
}


@pytest.mark.parametrize("command", list(CASES))
def test_a_killed_run_whose_checkpoint_was_truncated_recomputes_to_the_uninterrupted_result(
        command, small_study, tmp_path, capsys, interrupt_after_write):
    args, sub, name = CASES[command]
    study, feats = small_study
    argv = [*args, "--study", str(study), "--features", str(feats)]
    reference = tmp_path / "reference"
    assert main([*argv, "--out", str(reference)]) == 0

    out = tmp_path / "out"
    checkpoint = out / sub / "checkpoints" / name
    killed = interrupt_after_write([*argv, "--out", out], f"*/{sub}/checkpoints/{name}", 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _truncate(checkpoint)
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    # A discarded checkpoint is a notice: the command line shows it as one line.
    assert re.search("^brainnet: " + _message(checkpoint, "is unreadable or truncated (BadZipFile)")[1:], err, re.M), err
    assert "Traceback" not in err
    left, right = _arrays(reference / sub), _arrays(out / sub)
    assert left and sorted(left) == sorted(right)
    for key, value in left.items():
        if isinstance(value, bytes):
            assert value == right[key], key
        else:
            np.testing.assert_array_equal(value, right[key], err_msg=key)
