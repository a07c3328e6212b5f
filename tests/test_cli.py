"""The command line as a whole: help, discovery, exit codes."""

import subprocess
import sys

import pytest

from brainnet.cli import build_parser, main

COMMANDS = ["encode", "decode", "rsa", "extract", "simulate", "betas", "fetch", "figures", "report", "power"]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command}" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"brainnet {command}" in text


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: brainnet" in capsys.readouterr().out


def test_closed_pipe_is_not_a_traceback():
    code = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r)\n"
        "sys.stdout = os.fdopen(w, 'w', buffering=1)\n"
        "from brainnet.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    sys.exit(exc.code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert proc.returncode == 0


def test_python_dash_m_brainnet_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "brainnet", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "brainnet 0.1.0"


def test_parser_builds_without_loading_torch():
    code = "import sys; from brainnet.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert build_parser().prog == "brainnet"


_HEAVY = ("torch", "sklearn", "scipy", "pandas", "nilearn", "nibabel", "matplotlib")


@pytest.mark.parametrize("command", ["", *sorted(build_parser()._subparsers._group_actions[0].choices)])
def test_help_imports_no_numerical_library(command):
    # `brainnet --help` and `brainnet COMMAND --help` must answer at once: the CPU time they
    # may take is what importing the CLI costs, so the proof is that nothing heavy is imported
    # (a timing threshold would race a busy machine).
    code = (
        "import sys, contextlib, io\n"
        "from brainnet.cli import main\n"
        f"argv = {[command] if command else []!r} + ['--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'usage: brainnet' in out.getvalue()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({_HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"brainnet {command} --help imports {out.stdout.strip()}"


EMBEDDED_RUNS = {
    "encode": (["encode", "--subject", "01", "--permutations", "20"], "sub-01/encode-fc8"),
    "decode": (["decode", "--permutations", "20", "--bootstrap", "4", "--cluster-draws", "10"], "group/decode-fc8"),
    "rsa": (["rsa", "--permutations", "200", "--bootstrap", "20"], "group/rsa-fc8"),
    "power": (["power", "--sizes", "4,8", "--repeats", "2", "--permutations", "20"], "group/power-fc8"),
    "categorize": (["categorize", "--permutations", "5"], "group/categorize-occipital"),
    "network-decoding": (["network-decoding"], "group/network-decoding-fc8"),
}


@pytest.mark.parametrize("command", list(EMBEDDED_RUNS))
def test_analysis_runs_offline_on_the_embedded_study(command, tmp_path, capsys):
    """No --study: every analysis runs on the embedded study and writes a complete result."""
    import json

    argv, folder = EMBEDDED_RUNS[command]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    summary = json.loads((tmp_path / folder / "summary.json").read_text())
    assert summary["complete"] is True
    if command != "categorize":  # categorize decodes image categories from voxels: no network
        assert "untrained" in captured.err  # the one-line notice about untrained weights
        assert summary["provenance"]["weights"] == "untrained-seed0"
    assert summary["provenance"]["brainnet_version"] == "0.1.0"
    # no --study: stderr says the data are the embedded simulated study
    assert (
        "brainnet: no --study given: using the embedded SIMULATED demo study (planted signal, "
        "not real fMRI); pass --study DIR for your data"
    ) in captured.err.splitlines()
    assert len(captured.out.strip().splitlines()) <= 12  # a short human summary


def test_fetch_lists_datasets_and_plans_a_dataset_download(capsys):
    assert main(["fetch", "ds004192", "--what", "events", "--subjects", "01", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("ds004192 1.0.5: 120 files")
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "ds999999"])
    assert exc.value.code == 2


def test_scheduler_runs_permutations_on_dask_with_identical_results(tmp_path, capsys):
    """--scheduler sends the permutation batches to a Dask cluster; nothing changes but where."""
    distributed = pytest.importorskip("dask.distributed")
    from brainnet.simulate import simulate_study

    study = simulate_study(tmp_path / "study", n_subjects=2, n_stimuli=24, seed=3)
    argv = ["encode", "--study", str(study), "--subject", "01", "--permutations", "30"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            assert main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address]) == 0
            prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "call" in prefixes  # the engine's batches (brainnet.permutation._call) ran on the cluster
    local = (tmp_path / "local/sub-01/encode-fc8/voxel_scores.tsv").read_bytes()
    remote = (tmp_path / "dask/sub-01/encode-fc8/voxel_scores.tsv").read_bytes()
    assert local == remote


def test_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["encode", "--subject", "01", "--scheduler", "tcp://127.0.0.1:9", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("brainnet encode: error: --scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler")
    assert err[-1].endswith("; check the address or leave --scheduler out to run here")
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()  # nothing written before the scheduler answered
