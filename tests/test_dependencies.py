"""Every package brainnet imports is declared in pyproject.toml.

A package that arrives only through another one (or was simply present on the developer's
machine) makes a clean install fail at run time: fracridge and himalaya once did exactly that.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
# Imported only inside a guarded function, refused with a one-line error when missing: they
# cannot be declared because torchvision (and so timm) does not install beside the CPU torch.
OPTIONAL_UNDECLARED = {"timm", "torchvision"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return core, extras


def _imports() -> dict[str, set[tuple[str, bool]]]:
    """Top-level module name -> {(file, imported at module level)}."""
    found: dict[str, set[tuple[str, bool]]] = {}
    for path in sorted((ROOT / "brainnet").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body} | {
            id(n) for stmt in tree.body if isinstance(stmt, ast.If | ast.Try) for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add((path.name, id(node) in top))
    return {k: v for k, v in found.items() if k not in sys.stdlib_module_names and k != "brainnet"}


def test_every_imported_package_is_declared_and_extras_are_imported_lazily():
    core, extras = _declared()
    distributions = md.packages_distributions()
    problems = []
    for module, uses in sorted(_imports().items()):
        if module in OPTIONAL_UNDECLARED:
            assert not any(top for _, top in uses), f"{module} must only be imported inside a function"
            continue
        dists = {_name(d) for d in distributions.get(module, [module])}
        where = ", ".join(sorted(f for f, _ in uses))
        if not dists & (core | extras):
            problems.append(f"{module} ({where}) is not declared in pyproject.toml")
        elif not dists & core and any(top for _, top in uses):
            problems.append(f"{module} ({where}) is an optional extra but imported at module level")
    assert not problems, "\n".join(problems)


def test_the_declared_core_is_what_the_single_trial_betas_and_partition_need():
    core, _ = _declared()
    # the two that were missing from a clean install: a regression guard with the reason
    assert {"fracridge", "himalaya"} <= core
