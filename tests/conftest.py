"""Test configuration.

``--runslow`` runs the long scientific checks marked ``slow``; without it,
tests that take a ``science_scale`` fixture run a smaller but still
meaningful version (this is what CI runs).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run long scientific checks")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long scientific check: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def science_scale(request) -> str:
    """``"full"`` with --runslow, else ``"quick"``: tests size their checks by it."""
    return "full" if request.config.getoption("--runslow") else "quick"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the suite's caches (activations, embedded study) out of the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BRAINNET_HOME", str(tmp_path_factory.mktemp("brainnet_home")))
    mp.setenv("MPLBACKEND", "Agg")
    yield
    mp.undo()


#: Modules whose promises must hold on a busy machine: in CI (CI=true, as .ci/run is run) or
#: with BRAINNET_TEST_BUSY=1, each runs while one process per core spins.
BUSY_MODULES = frozenset({
    "test_reproducibility", "test_resume", "test_extract", "test_multi_subject", "test_threads",
    "test_permutation", "test_results", "test_checkpoints", "test_provenance",
})

# Spins until its parent (the test process) is gone, so a killed test run leaves no spinner behind.
_SPIN = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    pass\n"


@pytest.fixture(autouse=True, scope="module")
def _busy_cores(request):
    """Keep every core busy during the modules of ``BUSY_MODULES`` in CI or when BRAINNET_TEST_BUSY=1."""
    import os
    import subprocess
    import sys

    name = request.module.__name__.rsplit(".", 1)[-1]
    busy = os.environ.get("BRAINNET_TEST_BUSY", "1" if os.environ.get("CI") == "true" else "0") == "1"
    if not busy or name not in BUSY_MODULES:
        yield
        return
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN, str(os.getpid())])
                for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for proc in spinners:
            proc.kill()
        for proc in spinners:
            proc.wait()


# Runs `code` in a fresh interpreter that signals itself right after the k-th atomic write
# (os.replace onto the final name, see brainnet.results.atomic_path) of a file whose path
# matches a pattern: a fixed point of the run, however fast or loaded the machine is.
_INTERRUPT_AFTER_WRITE = """
import fnmatch, os, signal, sys
import brainnet.permutation
brainnet.permutation.CHECKPOINT_SECONDS = -1.0  # a checkpoint after every batch / subsample
_pattern, _k, _sig = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.argv = [sys.argv[0], *sys.argv[4:]]
_replace, _seen = os.replace, [0]
def _replace_then_signal(src, dst, *args, **kwargs):
    _replace(src, dst, *args, **kwargs)
    if fnmatch.fnmatch(os.fspath(dst), _pattern):
        _seen[0] += 1
        if _seen[0] == _k:
            os.kill(os.getpid(), _sig)
os.replace = _replace_then_signal
"""

CLI_MAIN = "from brainnet.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.fixture()
def interrupt_after_write():
    """``run(args, pattern, k, sig=SIGKILL, code=CLI_MAIN)``: run ``code`` in a subprocess (``sys.argv[1:]``
    are ``args``) that sends itself ``sig`` right after its ``k``-th atomic write of a file matching the
    fnmatch ``pattern`` (``*`` spans folders). Returns the ``subprocess.CompletedProcess`` (text stderr).
    """
    import signal
    import subprocess
    import sys

    def run(args, pattern: str, k: int, sig: int = signal.SIGKILL, code: str = CLI_MAIN):
        cmd = [sys.executable, "-c", _INTERRUPT_AFTER_WRITE + code, pattern, str(k), str(int(sig)), *map(str, args)]
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)

    return run


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """``(study, fc8.npz)``: a simulated 4-subject, 16-stimulus study and its EmoNet fc8 features.

    Shared by the reproducibility, resume, checkpoint and provenance tests
    (tests that edit files work on copies).
    """
    from brainnet.cli import main
    from brainnet.simulate import simulate_study

    root = tmp_path_factory.mktemp("small_study")
    study = simulate_study(root / "study", n_subjects=4, n_stimuli=16, seed=5)
    feats = root / "fc8.npz"
    assert main(["extract", "--stimuli", str(study / "stimuli.tsv"), "--out", str(feats), "--quiet"]) == 0
    return study, feats
