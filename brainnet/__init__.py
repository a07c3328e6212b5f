"""brainnet: compare the units of deep networks with fMRI.

The public API is re-exported here lazily, so ``import brainnet`` and the
command line start fast (torch and nilearn load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "BrainnetError": "brainnet.errors",
    "permutation_test": "brainnet.permutation",
    "PermutationResult": "brainnet.permutation",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'brainnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
