"""The public API: every exported name resolves, and importing brainnet stays light."""

import subprocess
import sys

import brainnet


def test_every_public_name_resolves():
    for name in brainnet.__all__:
        assert getattr(brainnet, name) is not None, name


def test_import_does_not_load_torch_or_nilearn():
    code = "import sys, brainnet; print('torch' in sys.modules, 'nilearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
