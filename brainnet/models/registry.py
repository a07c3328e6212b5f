"""Networks as named things, each with its own preprocessing, layers and identity.

A :class:`Network` bundles what extraction needs to know about a model: how
to build the module, how an image becomes its input (:class:`Preprocessing`),
which layers it offers and how a layer's output becomes units (``pool``:
``"none"`` flattens, ``"mean"``/``"max"`` reduce spatial positions or
tokens, ``"cls"`` keeps a transformer's first token), and two identities
recorded in every output and in the activation cache key: ``weights``
(``sha256:`` of the weights, or ``untrained-seed<N>``) and ``code`` (sha256
of the source files of the module's classes, so changed model code never
reuses old activations).

Where a network comes from (:data:`NETWORKS`, one table like the analyses'
extension points; :func:`get_network` resolves a name or a spec):

=====================  ========================================================
``emonet``             EmoNet with ``--weights`` (untrained seeded without)
``emonet-untrained``   EmoNet with deterministic untrained weights (the control)
``hf:PATH_OR_ID``      a Hugging Face vision model from a local folder or the
                       user's HF cache (never downloaded), with its own image
                       processor (optional extra ``hf``)
``torchvision:NAME``   a torchvision model, when torchvision imports
``timm:NAME``          a timm model (pretrained weights from the local cache)
``head:FILE.pt``       a backbone with a head trained by ``brainnet retrain``
a registered name      :func:`register_network` (kept in
                       ``$BRAINNET_HOME/networks.json`` with ``persist=True``)
=====================  ========================================================

Any module with its own transform works from Python:
``Network.from_module(my_net, transform=my_transform)``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainnet.errors import BrainnetError, input_error

__all__ = [
    "NETWORKS",
    "Network",
    "Preprocessing",
    "code_id",
    "get_network",
    "network_layers",
    "register_network",
    "resize_normalize",
]

#: How a layer's output becomes units; the analyses' ``pool`` values.
POOLS = ("none", "mean", "max", "cls")


@dataclass(frozen=True)
class Preprocessing:
    """How one decoded RGB image becomes a network input.

    Parameters
    ----------
    transform : callable
        ``transform(image)`` with an 8-bit RGB ``PIL.Image`` returns an array
        or tensor of shape ``(3, H, W)`` (or ``(1, 3, H, W)``).
    id : str
        Identity of the transform (parameters or source digest); part of the
        cache key and the provenance.
    description : dict
        Human-readable parameters (size, crop, mean, std) for provenance.
    """

    transform: Callable[[Any], Any]
    id: str
    description: dict = field(default_factory=dict)

    def __call__(self, image) -> np.ndarray:
        out = self.transform(image)
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 3:
            raise BrainnetError(
                f"preprocessing {self.id[:40]}: returned shape {arr.shape}, not (3, H, W); "
                "make the transform return one channels-first image"
            )
        return np.ascontiguousarray(arr)


def _resample(name: str):
    from PIL import Image

    table = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
    if name not in table:
        raise BrainnetError(f"resample {name!r} is unknown; use one of {', '.join(table)}")
    return table[name]


def resize_normalize(
    size: int | Sequence[int],
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    *,
    crop: int | Sequence[int] | None = None,
    resample: str = "bilinear",
    scale: float = 1 / 255,
) -> Preprocessing:
    """The usual torchvision/timm pipeline, with Pillow and numpy.

    ``size`` an int resizes the shorter side to it (keeping the aspect
    ratio), a pair ``(h, w)`` resizes to exactly that; then an optional
    centre ``crop``; pixels times ``scale``, minus ``mean``, over ``std``.

    Returns
    -------
    Preprocessing
        Output ``(3, H, W)`` float32.
    """
    mean_a = np.asarray(mean, dtype=np.float32)[:, None, None]
    std_a = np.asarray(std, dtype=np.float32)[:, None, None]
    crop_hw = None if crop is None else ((crop, crop) if isinstance(crop, int) else tuple(crop))
    method = _resample(resample)

    def transform(img):
        w, h = img.size
        if isinstance(size, int):
            k = size / min(w, h)
            target = (max(1, round(w * k)), max(1, round(h * k)))
        else:
            target = (int(size[1]), int(size[0]))
        img = img.resize(target, method)
        if crop_hw is not None:
            ch, cw = crop_hw
            left, top = int(round((img.size[0] - cw) / 2)), int(round((img.size[1] - ch) / 2))
            img = img.crop((left, top, left + cw, top + ch))
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) * np.float32(scale)
        return (arr - mean_a) / std_a

    description = {
        "pipeline": "RGB, resize (shorter side when size is an int), centre crop, scale, minus mean, over std",
        "size": size if isinstance(size, int) else list(size), "crop": list(crop_hw) if crop_hw else None,
        "resample": resample, "scale": scale, "mean": [float(m) for m in mean], "std": [float(s) for s in std],
    }
    return Preprocessing(transform, "resize-normalize:" + json.dumps(description, sort_keys=True), description)


def _callable_id(transform: Callable) -> str:
    """Digest of a user transform: its source (or its class's), else its qualified name."""
    target = transform if inspect.isfunction(transform) or inspect.ismethod(transform) else type(transform)
    try:
        text = inspect.getsource(target)
    except (OSError, TypeError):
        text = getattr(target, "__qualname__", repr(target))
    extra = repr(transform) if not inspect.isfunction(transform) else ""
    return "transform-sha256:" + hashlib.sha256(f"{text}|{extra}".encode()).hexdigest()


# --------------------------------------------------------------------------- identities


def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def code_id(model: torch.nn.Module | type) -> str:
    """sha256 over the source files of every class a module is made of.

    Classes from ``torch`` itself are covered by the torch version. Part of
    the activation cache key: editing the model's code (a layer, the order
    of operations, a forward) changes it, so old activations are not reused.
    """
    types = {model} if isinstance(model, type) else {type(m) for m in model.modules()}
    files: dict[str, str] = {}
    for cls in types:
        for klass in cls.__mro__:
            mod = klass.__module__ or ""
            if mod == "builtins" or mod == "torch" or mod.startswith("torch."):
                continue
            try:
                path = inspect.getsourcefile(klass)
            except (TypeError, OSError):
                path = None
            if path:
                files.setdefault(mod, _file_digest(path))
            else:  # defined interactively: the class name is all there is
                files.setdefault(f"{mod}.{klass.__qualname__}", "no-source")
    versions = [f"torch={torch.__version__}"]
    if any(m.startswith("transformers") for m in files):
        import transformers

        versions.append(f"transformers={transformers.__version__}")
    text = "|".join(versions + [f"{k}:{v}" for k, v in sorted(files.items())])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- the network


@dataclass
class Network:
    """A model ready for extraction.

    Attributes
    ----------
    name : str
        Short name used in result tables and folder names.
    build : callable
        ``build(device) -> torch.nn.Module`` in eval mode (called only when
        something must be computed).
    preprocessing : Preprocessing or None
        None: EmoNet's MATLAB pipeline (227 px bicubic, minus the mean image).
    layers : tuple of str
        The analysable layers in network order (``--layers all``).
    pool : str
        Default reduction of a layer's output to units (see :data:`POOLS`).
    weights : str
        ``sha256:<hex>`` of the weights or ``untrained-seed<N>``.
    code : str
        :func:`code_id` of the architecture.
    source : str
        Where it came from (the spec), for provenance.
    model_name : str
        ``module.qualname`` of the module class.
    """

    name: str
    build: Callable[[torch.device], torch.nn.Module]
    preprocessing: Preprocessing | None
    layers: tuple[str, ...]
    pool: str = "none"
    weights: str = ""
    code: str = ""
    source: str = ""
    model_name: str = ""
    emonet_weights: Any = None  # the EmoNet builds: (weights path or None, seed)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise BrainnetError(f"network {self.name}: pool {self.pool!r} is unknown; use one of {', '.join(POOLS)}")

    @property
    def is_emonet(self) -> bool:
        return self.emonet_weights is not None

    def preprocessing_record(self, mean_image=None) -> dict[str, Any]:
        """What goes in the provenance's ``preprocessing`` entry."""
        if self.preprocessing is None:
            from brainnet.stimuli import mean_image_id

            return {
                "pipeline": "RGB (grayscale replicated, alpha dropped), 227x227 bicubic (Pillow) ignoring aspect, "
                "0..255 scale, minus mean",
                "mean": mean_image_id(mean_image),
            }
        return {"id": self.preprocessing.id, **self.preprocessing.description}

    def provenance(self) -> dict[str, Any]:
        """Name, source, model class, weights and code identity."""
        return {"name": self.name, "source": self.source, "model": self.model_name,
                "weights": self.weights, "code": self.code}

    @classmethod
    def from_module(
        cls,
        module: torch.nn.Module,
        transform: Callable | Preprocessing | None = None,
        *,
        name: str | None = None,
        layers: Sequence[str] | None = None,
        pool: str = "none",
    ) -> Network:
        """Any torch module, with its own transform (``PIL.Image -> (3, H, W)``).

        Without ``transform`` the module gets EmoNet's preprocessing (227 px,
        minus the mean). ``layers`` default: the module's direct children.
        The weights identity is the sha256 of its state dict.
        """
        from brainnet.extract import _module_weights_id

        if not isinstance(module, torch.nn.Module):
            raise BrainnetError(f"network: expected a torch.nn.Module, got {type(module).__name__}")
        if transform is not None and not isinstance(transform, Preprocessing):
            if not callable(transform):
                raise BrainnetError("network: transform must be callable (PIL.Image -> (3, H, W) array)")
            transform = Preprocessing(transform, _callable_id(transform), {"transform": _qualname(transform)})
        names = tuple(layers) if layers is not None else tuple(n for n, _ in module.named_children())
        model_name = _qualname(type(module))
        module.eval()
        return cls(
            name=name or type(module).__name__.lower(),
            build=lambda device: module.to(device).eval(),
            preprocessing=transform,
            layers=names,
            pool=pool,
            weights=_module_weights_id(module),
            code=code_id(module),
            source=f"python:{model_name}",
            model_name=model_name,
        )


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


# --------------------------------------------------------------------------- sources


def _emonet(spec: str, *, weights=None, seed: int = 0, untrained: bool = False) -> Network:
    from brainnet.extract import _weights_id_without_loading
    from brainnet.models.emonet import LAYERS, EmoNet
    from brainnet.models.weights import load_emonet

    if untrained:
        weights = None
    weights_id = _weights_id_without_loading(weights, seed)

    def build(device):
        model, loaded = load_emonet(weights, seed=seed, device=device)
        return model

    return Network(
        name=spec, build=build, preprocessing=None, layers=LAYERS, pool="none", weights=weights_id,
        code=code_id(EmoNet), source=spec if weights is None else f"{spec}:{weights}",
        model_name="brainnet.models.emonet.EmoNet", emonet_weights=(weights, int(seed)),
    )


def _hf(spec: str, **_: Any) -> Network:
    from brainnet.models.hf import load_hf_network

    return load_hf_network(spec.split(":", 1)[1], name=spec)


def _torchvision(spec: str, **_: Any) -> Network:
    from brainnet.models.hf import load_torchvision_network

    return load_torchvision_network(spec.split(":", 1)[1], name=spec)


def _timm(spec: str, **_: Any) -> Network:
    from brainnet.models.hf import load_timm_network

    return load_timm_network(spec.split(":", 1)[1], name=spec)


def _head(spec: str, **_: Any) -> Network:
    from brainnet.models.head import load_head_network

    return load_head_network(spec.split(":", 1)[1])


#: Named networks: name -> builder(spec, weights=, seed=) returning a :class:`Network`.
NETWORKS: dict[str, Callable[..., Network]] = {
    "emonet": _emonet,
    "emonet-untrained": lambda spec, **kw: _emonet(spec, **{**kw, "untrained": True}),
}

#: Network sources by prefix (``prefix:argument``).
NETWORK_SOURCES: dict[str, Callable[..., Network]] = {
    "hf": _hf,
    "torchvision": _torchvision,
    "timm": _timm,
    "head": _head,
}


def _user_registry_path() -> Path:
    from brainnet._paths import cache_dir

    return cache_dir() / "networks.json"


def _user_registry() -> dict[str, str]:
    path = _user_registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise input_error(path, "not a readable JSON object of name -> network spec", "fix or delete the file") from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def register_network(name: str, network: Network | str | Callable[..., Network], *, persist: bool = False) -> None:
    """Make ``name`` usable wherever a network is asked for (``--network NAME``).

    Parameters
    ----------
    name : str
        Letters, digits, ``-``, ``_``, ``.``; not containing ``:`` or ``,``.
    network : Network, str or callable
        A :class:`Network`, a spec (``"hf:/models/vit"``, ``"head:head.pt"``)
        or a builder ``f(spec, weights=, seed=) -> Network``.
    persist : bool
        Also record a spec (str only) in ``$BRAINNET_HOME/networks.json``
        so the command line finds it.
    """
    import re

    from brainnet.results import atomic_write_json

    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name or ""):
        raise BrainnetError(f"network name {name!r}: use letters, digits, '-', '_' or '.'")
    if isinstance(network, Network):
        NETWORKS[name] = lambda spec, _net=network, **kw: _net
    elif isinstance(network, str):
        NETWORKS[name] = lambda spec, _s=network, **kw: _renamed(get_network(_s, **kw), name)
    elif callable(network):
        NETWORKS[name] = network
    else:
        raise BrainnetError(f"register_network: give a Network, a spec string or a builder, not {type(network).__name__}")
    if persist:
        if not isinstance(network, str):
            raise BrainnetError("register_network(persist=True) needs a spec string, e.g. 'hf:/models/vit'")
        table = _user_registry()
        table[name] = network
        atomic_write_json(_user_registry_path(), table)


def _renamed(net: Network, name: str) -> Network:
    net.name = name
    return net


def get_network(network: str | Network | None = None, *, weights=None, seed: int = 0) -> Network:
    """Resolve a network name or spec (default ``emonet``) to a :class:`Network`.

    ``weights`` and ``seed`` apply to the EmoNet entries (and are refused for
    others).
    """
    if isinstance(network, Network):
        return network
    spec = "emonet" if network is None else str(network).strip()
    if spec in NETWORKS:
        net = NETWORKS[spec](spec, weights=weights, seed=seed)
    else:
        user = _user_registry()
        prefix = spec.split(":", 1)[0] if ":" in spec else None
        if spec in user:
            net = _renamed(get_network(user[spec], weights=weights, seed=seed), spec)
        elif prefix in NETWORK_SOURCES:
            net = NETWORK_SOURCES[prefix](spec, weights=weights, seed=seed)
        elif spec.endswith(".pt") and Path(spec).expanduser().is_file():
            net = _head("head:" + spec)
        else:
            known = sorted(NETWORKS) + sorted(user) + [f"{p}:..." for p in NETWORK_SOURCES]
            raise BrainnetError(f"--network {spec}: unknown network; use one of {', '.join(known)}")
    if weights is not None and not net.is_emonet:
        raise BrainnetError(
            f"--weights applies to EmoNet only; network {net.name} brings its own weights (drop --weights)"
        )
    return net


def network_layers(network: str | Network | None = None, *, weights=None, seed: int = 0, pool: str | None = None):
    """Layers of a network with their output shapes and unit counts.

    Runs one blank image through the network's own preprocessing.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer``, ``shape`` (one image's output, e.g. ``96x27x27``)
        and ``n_units`` (after ``pool``, default the network's).
    """
    import pandas as pd
    from PIL import Image

    from brainnet.extract import _input_batch, _pool, _run_forward

    net = get_network(network, weights=weights, seed=seed)
    pool = net.pool if pool is None else pool
    model = net.build(torch.device("cpu"))
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    units: dict[str, int] = {}

    def hook_for(name):
        def hook(_m, _i, output):
            output = _first_tensor(output)
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape[1:])
                units[name] = int(_pool(output, pool, name).shape[1])

        return hook

    layers = [n for n in net.layers if n in modules]
    handles = [modules[n].register_forward_hook(hook_for(n)) for n in layers]
    try:
        x = _input_batch(net, [Image.new("RGB", (256, 256), (128, 128, 128))])
        with torch.inference_mode():
            _run_forward(model, x, net.name)
    finally:
        for h in handles:
            h.remove()
    rows = [{"layer": n, "shape": "x".join(map(str, shapes[n])), "n_units": units[n]} for n in layers if n in shapes]
    return pd.DataFrame(rows, columns=["layer", "shape", "n_units"])


def _first_tensor(output):
    """A module output as one tensor: tuples (HF layers) give their first element."""
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return output


def _hash_files(paths: Sequence[Path]) -> str:
    from brainnet.results import sha256_file

    digest = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        digest.update(f"{p.name}:{sha256_file(p)}|".encode())
    return "sha256:" + digest.hexdigest()


def _module_present(name: str) -> bool:
    if name in sys.modules:
        return True
    import importlib.util

    return importlib.util.find_spec(name) is not None
