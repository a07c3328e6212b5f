"""Network models: EmoNet and its weight loaders."""

from brainnet.models.emonet import EMOTIONS, LAYERS, EmoNet, valence_arousal
from brainnet.models.weights import load_emonet

__all__ = ["EMOTIONS", "LAYERS", "EmoNet", "load_emonet", "valence_arousal"]
