import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from brainnet.errors import BrainnetError
from brainnet.results import (
    ResultDir,
    atomic_path,
    atomic_write_json,
    atomic_write_tsv,
    fingerprint,
    make_provenance,
    sha256_file,
)


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_json_has_no_nan_and_tsv_roundtrips(tmp_path):
    atomic_write_json(tmp_path / "s.json", {"r": float("nan"), "v": np.float32(0.5), "a": np.arange(2)})
    assert json.loads((tmp_path / "s.json").read_text()) == {"r": None, "v": 0.5, "a": [0, 1]}
    frame = pd.DataFrame({"unit": ["Awe", "Joy"], "r": [0.1, np.nan]})
    atomic_write_tsv(tmp_path / "t.tsv", frame)
    back = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert list(back["unit"]) == ["Awe", "Joy"] and np.isnan(back["r"][1])


def test_provenance_records_what_produced_a_result(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    prov = make_provenance(weights=f"sha256:{sha256_file(f)}", seed=3, parameters={"cv": 5})
    assert prov["brainnet_version"] == "0.1.0" and prov["seed"] == 3
    assert prov["weights"].startswith("sha256:") and prov["parameters"] == {"cv": 5}
    later = dict(prov, created="2000-01-01T00:00:00+00:00")
    assert fingerprint(prov) == fingerprint(later)
    assert fingerprint(prov) != fingerprint(dict(prov, seed=4))


def test_result_dir_refuses_to_mix_parameters(tmp_path):
    prov = make_provenance(weights="untrained-seed0", seed=0, parameters={"cv": 5})
    out = ResultDir(tmp_path / "r", prov)
    out.write_json("a.json", {"x": 1})
    assert not out.complete
    out.finish({"mean_r": 0.2})
    assert out.complete
    assert ResultDir(tmp_path / "r", prov).complete  # same parameters: reopens, stays complete
    other = make_provenance(weights="untrained-seed0", seed=0, parameters={"cv": 10})
    with pytest.raises(BrainnetError, match=r"holds results made with other parameters.*--overwrite"):
        ResultDir(tmp_path / "r", other)
    fresh = ResultDir(tmp_path / "r", other, overwrite=True)
    assert not fresh.complete and not (tmp_path / "r" / "a.json").exists()


_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    import brainnet.permutation as engine
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(40), rng.standard_normal((40, 3))
    def stat(perms):
        return (x[perms] - x.mean()) @ (y - y.mean(0))
    res = engine.permutation_test(stat, 40, n_permutations=200, seed=2, batch_size=10,
                                  checkpoint=sys.argv[1])
    np.save(sys.argv[2], res.null)
    """
)


def test_permutation_run_killed_with_sigkill_resumes_to_same_result(tmp_path, interrupt_after_write):
    ckpt, out = tmp_path / "ckpt.npz", tmp_path / "null.npy"
    ref_out = tmp_path / "ref.npy"
    subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "ref.npz"), str(ref_out)], check=True)
    # SIGKILL right after the 3rd checkpoint (one per batch of 10): 30 of 200 permutations saved.
    proc = interrupt_after_write([ckpt, out], str(ckpt), 3, code=_SCRIPT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()
    with np.load(ckpt) as saved:
        n_done = saved["draws"].shape[0]
    assert n_done == 30
    subprocess.run([sys.executable, "-c", _SCRIPT, str(ckpt), str(out)], check=True)
    np.testing.assert_array_equal(np.load(out), np.load(ref_out))


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "s.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_removed_on_refusal_removes_only_what_is_new(tmp_path):
    import pytest

    from brainnet.errors import BrainnetError
    from brainnet.results import ResultDir, removed_on_refusal

    target = tmp_path / "out" / "group" / "x"
    with pytest.raises(BrainnetError), removed_on_refusal(target):
        ResultDir(target, {"a": 1})
        raise BrainnetError("refused late; fix it")
    assert not (tmp_path / "out").exists()  # every folder it made is gone
    ResultDir(target, {"a": 1})
    with pytest.raises(BrainnetError), removed_on_refusal(target):
        raise BrainnetError("refused on resume; fix it")
    assert (target / "run.json").exists()  # a folder that existed before is kept
    with pytest.raises(ValueError), removed_on_refusal(tmp_path / "other"):
        (tmp_path / "other").mkdir()
        raise ValueError("a bug, not a user error")
    assert (tmp_path / "other").exists()
