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
