"""A frozen backbone with a new linear head, as EmoNet was made from AlexNet.

A head file (written by :func:`brainnet.retrain.retrain_head`) is a plain
state dict readable with ``torch.load(weights_only=True)``: the head's
``weight`` ``(n_classes, n_units)`` and ``bias``, the class names, and the
backbone it was trained on (spec, weights identity, layer, pool). Loading it
rebuilds the backbone through the network registry and refuses a backbone
whose weights differ from the ones the head was trained on.

The combined network's layers are the backbone's (``backbone.<name>``) and
``head``: the new units, before any softmax.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from brainnet.errors import input_error
from brainnet.models.registry import Network, code_id

__all__ = ["HEAD_FORMAT", "HeadNet", "load_head_network", "read_head"]

HEAD_FORMAT = "brainnet-head-1"
_FIX = "give a head file written by 'brainnet retrain'"


class HeadNet(nn.Module):
    """``backbone`` up to ``layer`` (reduced by ``pool``), then a linear ``head``.

    Parameters
    ----------
    backbone : nn.Module
    layer : str
        Name in ``backbone.named_modules()`` whose output feeds the head.
    pool : str
        Reduction of that output to units (see :func:`brainnet.extract._pool`).
    head : nn.Linear
    """

    def __init__(self, backbone: nn.Module, layer: str, pool: str, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.layer = layer
        self.pool = pool
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from brainnet.extract import _pool
        from brainnet.models.registry import _first_tensor

        seen: dict[str, torch.Tensor] = {}

        class _Stop(Exception):
            pass

        def hook(_m, _i, output):
            seen["x"] = _first_tensor(output)
            raise _Stop  # nothing after the layer is needed

        handle = dict(self.backbone.named_modules())[self.layer].register_forward_hook(hook)
        try:
            self.backbone(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        return self.head(_pool(seen["x"], self.pool, self.layer).to(self.head.weight.dtype))


def read_head(path: str | Path) -> dict:
    """The content of a head file, checked (one-line errors naming the file)."""
    import pickle

    path = Path(path).expanduser()
    if not path.is_file():
        raise input_error(path, "head file not found", _FIX)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError):
        raise input_error(path, "not a readable head file", _FIX) from None
    keys = {"format", "weight", "bias", "classes", "backbone", "backbone_weights", "layer", "pool"}
    if not isinstance(state, dict) or state.get("format") != HEAD_FORMAT or not keys <= set(state):
        raise input_error(path, "not a brainnet head file (missing keys or format)", _FIX)
    w, b = state["weight"], state["bias"]
    if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor) and w.ndim == 2 and b.shape == (w.shape[0],)
            and len(state["classes"]) == w.shape[0]):
        raise input_error(path, "head weight, bias and classes do not match", _FIX)
    return state


def load_head_network(path: str | Path, *, name: str | None = None, backbone: Network | None = None) -> Network:
    """The backbone of a head file with its trained head, as a :class:`Network`.

    Parameters
    ----------
    path : str or Path
        A head file from :func:`brainnet.retrain.retrain_head`.
    name : str, optional
        Default: the file name without ``.pt``.
    backbone : Network, optional
        The backbone, when it was a Python object rather than a named
        network (its weights must match the file's).
    """
    from brainnet.models.registry import get_network
    from brainnet.results import sha256_file

    path = Path(path).expanduser()
    state = read_head(path)
    if backbone is None:
        spec = state["backbone"]
        weights_file = state.get("backbone_weights_file") or None
        if weights_file and not Path(weights_file).is_file():
            raise input_error(path, f"its backbone weights file {weights_file} is missing",
                              "put the weights file back or retrain the head")
        backbone = get_network(spec, weights=weights_file, seed=int(state.get("backbone_seed", 0)))
    if backbone.weights != state["backbone_weights"]:
        raise input_error(path, f"was trained on backbone weights {state['backbone_weights']} but "
                          f"{backbone.name} has {backbone.weights}", "use the backbone the head was trained on")
    linear = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    linear.load_state_dict({"weight": state["weight"].float(), "bias": state["bias"].float()})
    layer, pool = state["layer"], state["pool"]
    built: dict[str, nn.Module] = {}

    def build(device):
        if "m" not in built:
            built["m"] = HeadNet(backbone.build(torch.device("cpu")), layer, pool, linear).eval().requires_grad_(False)
        return built["m"].to(device)

    file_sha = sha256_file(path)
    code = hashlib.sha256(f"{code_id(HeadNet)}|{backbone.code}".encode()).hexdigest()
    return Network(
        name=name or path.name.removesuffix(".pt"),
        build=build,
        preprocessing=backbone.preprocessing,
        layers=(*(f"backbone.{n}" for n in _up_to(backbone.layers, layer)), "head"),
        pool=backbone.pool,
        weights=f"sha256:{file_sha}",
        code=f"sha256:{code}",
        source=f"head:{path.resolve()} on {backbone.name} ({backbone.weights}) {layer}",
        model_name=f"brainnet.models.head.HeadNet[{backbone.model_name}]",
        extra={"classes": list(state["classes"]), "backbone": backbone.provenance(), "layer": layer},
    )


def _up_to(layers, layer: str) -> list[str]:
    """The backbone layers the head's forward runs (it stops after ``layer``)."""
    layers = list(layers)
    return layers[: layers.index(layer) + 1] if layer in layers else []
