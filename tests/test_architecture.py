"""The README's architecture holds in the code: data flow one way, library code never imports the CLI.

The layers are the ``[tool.importlinter]`` contract in pyproject.toml, checked by
import-linter on the import graph of the source files (nothing is imported).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("importlinter", reason="import-linter is in the test extra")


def _lint(root: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
    )
    # The package under `root` must be the one analysed, not the installed copy.
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)


def test_import_layers_of_the_architecture_are_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(("module", "line"), [
    ("study.py", "from brainnet.cli._common import notice\n"),  # library code printing through the CLI
    ("plotting.py", "import brainnet.report\n"),  # a lower layer reaching up
    ("results.py", "from brainnet import encoding\n"),  # the file layer importing an analysis
])
def test_the_layer_check_fails_when_an_import_reaches_up(tmp_path, module, line):
    shutil.copytree(ROOT / "brainnet", tmp_path / "brainnet", ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "brainnet" / module
    target.write_text(target.read_text() + "\n" + line)
    proc = _lint(tmp_path)
    assert proc.returncode == 1 and "0 kept, 1 broken" in proc.stdout, proc.stdout + proc.stderr


def test_no_module_outside_the_cli_mentions_the_cli():
    # A lazy import inside a function is an import too; the contract sees those, and this
    # catches the spelling that does not parse as an import (importlib.import_module strings).
    spelled = re.compile(r"(from\s+brainnet\.cli\b|import\s+brainnet\.cli\b|import_module\(\s*['\"]brainnet\.cli)")
    offenders = [p.relative_to(ROOT).as_posix() for p in (ROOT / "brainnet").rglob("*.py")
                 if "cli" not in p.relative_to(ROOT / "brainnet").parts and p.name != "__main__.py"
                 and spelled.search(p.read_text())]
    assert offenders == []


def test_cli_choices_read_without_imports_match_the_registries():
    # brainnet/_defaults.py repeats registry names so that `--help` imports nothing heavy;
    # this keeps the copies honest.
    from brainnet import _defaults, betas, rsa

    assert tuple(betas.BETA_METHODS) == _defaults.BETA_METHODS
    assert tuple(rsa.RDM_METRICS) == _defaults.RDM_METRICS and tuple(rsa.COMPARISONS) == _defaults.COMPARISONS
