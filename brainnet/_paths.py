"""Where brainnet keeps its caches (activations, downloaded weights, the embedded study)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the brainnet cache.

    The root is ``$BRAINNET_HOME`` when set, else ``$XDG_CACHE_HOME/brainnet``,
    else ``~/.cache/brainnet``.
    """
    root = os.environ.get("BRAINNET_HOME")
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "brainnet")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
