"""Public data: verified downloads of weights and (later) OpenNeuro datasets."""

from brainnet.datasets.download import download

__all__ = ["download"]
