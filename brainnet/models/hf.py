"""Hugging Face, torchvision and timm models as brainnet networks (all optional).

None of these libraries is needed by the core: each loader imports its
library when called and turns an absent or broken install into a one-line
error. Nothing is ever downloaded: a Hugging Face model comes from a local
folder or the user's HF cache (``local_files_only=True``), torchvision and
timm weights from their local caches.

A Hugging Face model's preprocessing is its own image processor
(``preprocessor_config.json``: size, crop, rescale, mean, std), applied by
``transformers`` itself, so it matches what the model was trained with.
Layers are the model's hidden states: ``embeddings``, ``layer1`` ...
``layerN`` (the output of each transformer block or stage) and ``pooled``
(the model's pooled output, when its weights were saved). A transformer's
``embeddings`` stays out of the default list (``--layers all``) because its
CLS token does not depend on the image; ask for it by name with
``--pool mean``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from brainnet.errors import BrainnetError, input_error
from brainnet.models.registry import Network, Preprocessing, _hash_files, code_id, resize_normalize

__all__ = ["HiddenStates", "load_hf_network", "load_timm_network", "load_torchvision_network"]

_HF_FIX = "install the optional extra: pip install 'brainnet[hf]'"


def _transformers():
    try:
        import transformers
    except Exception as err:  # noqa: BLE001 -- any failed import (missing, broken build) means the same to the user
        raise BrainnetError(f"hf: networks need the transformers package ({type(err).__name__}); {_HF_FIX}") from None
    return transformers


class HiddenStates(nn.Module):
    """A Hugging Face vision model whose hidden states are named submodules.

    ``forward(x)`` runs the model with ``output_hidden_states=True`` and
    passes hidden state ``i`` through the identity module ``embeddings``
    (``i = 0``) or ``layer<i>``, and the pooled output through ``pooled``,
    so forward hooks (and therefore :func:`brainnet.extract_activations`)
    see them like any other layer.
    """

    def __init__(self, model: nn.Module, n_layers: int, pooled: bool) -> None:
        super().__init__()
        self.model = model
        self.embeddings = nn.Identity()
        for i in range(1, n_layers + 1):
            self.add_module(f"layer{i}", nn.Identity())
        self.pooled = nn.Identity() if pooled else None
        self.n_layers = n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=x, output_hidden_states=True)
        states = out.hidden_states
        self.embeddings(states[0])
        for i in range(1, min(len(states), self.n_layers + 1)):
            getattr(self, f"layer{i}")(states[i])
        pooled = getattr(out, "pooler_output", None)
        if self.pooled is not None and pooled is not None:
            return self.pooled(pooled)
        return states[-1]


def _local_folder(source: str) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists() or source.startswith((".", "/", "~")):
        raise input_error(source, "not a model folder", "give a folder holding config.json and the weights")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except Exception:  # noqa: BLE001 -- not cached (or no hub client): same advice either way
        raise BrainnetError(
            f"hf:{source}: not a folder and not in the local Hugging Face cache; brainnet never downloads "
            f"models: download it yourself (huggingface-cli download {source}) or give a local folder"
        ) from None


def _processor_preprocessing(transformers, folder: Path) -> Preprocessing:
    config_file = folder / "preprocessor_config.json"
    if not config_file.is_file():
        raise input_error(
            folder, "has no preprocessor_config.json, so the network's preprocessing is unknown",
            "save the model's image processor beside it (processor.save_pretrained(folder))",
        )
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # noqa: BLE001 -- transformers raises many types for a bad config
        raise input_error(config_file, f"not a readable image processor config ({type(err).__name__})",
                          "re-save it with processor.save_pretrained(folder)") from None
    settings = processor.to_dict()
    keys = ("image_processor_type", "size", "crop_size", "do_resize", "do_center_crop", "do_rescale",
            "rescale_factor", "do_normalize", "image_mean", "image_std", "resample", "crop_pct")
    description = {k: settings[k] for k in keys if k in settings}

    def transform(img):
        return processor(images=img, return_tensors="np")["pixel_values"][0]

    digest = hashlib.sha256(config_file.read_bytes()).hexdigest()
    return Preprocessing(
        transform, f"hf-image-processor:sha256:{digest}|transformers={transformers.__version__}", description
    )


def _model_class(transformers, config):
    """The vision tower of a two-tower config (CLIP, SigLIP), else the AutoModel class."""
    if getattr(config, "vision_config", None) is not None:
        name = type(config).__name__.replace("Config", "VisionModel")
        cls = getattr(transformers, name, None)
        if cls is None:
            raise BrainnetError(f"hf: {type(config).__name__} has no vision model class {name} in transformers")
        return cls
    return transformers.AutoModel


def load_hf_network(source: str, *, name: str | None = None) -> Network:
    """A Hugging Face vision model (ViT, CLIP vision tower, ConvNeXt, ...) as a :class:`Network`.

    Parameters
    ----------
    source : str
        A local folder (``save_pretrained`` output with
        ``preprocessor_config.json``) or a model id already in the user's HF
        cache.
    name : str, optional
        Name in tables (default ``hf:<source>``).
    """
    transformers = _transformers()
    transformers.utils.logging.disable_progress_bar()  # no per-load bars in a command's output
    folder = _local_folder(source)
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # noqa: BLE001
        raise input_error(folder, f"no readable config.json ({type(err).__name__})",
                          "give a folder written by model.save_pretrained") from None
    preprocessing = _processor_preprocessing(transformers, folder)
    cls = _model_class(transformers, config)
    vision = getattr(config, "vision_config", None) or config
    depths = getattr(vision, "depths", None)
    n_layers = len(depths) if depths else int(getattr(vision, "num_hidden_layers", 0) or 0)
    weight_files = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
    if not weight_files:
        raise input_error(folder, "holds no weights (*.safetensors or *.bin)", "save the model with save_pretrained")
    weights = _hash_files([*weight_files, folder / "config.json"])
    state = {}

    def build(device):
        if "module" not in state:
            try:
                model, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
            except Exception as err:  # noqa: BLE001
                raise input_error(folder, f"the model does not load ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0][:120] if str(err) else ''})",
                                  "check the folder's config.json and weights") from None
            pooled = not any(k.startswith("pooler") for k in info.get("missing_keys", []))
            state["module"] = HiddenStates(model, n_layers, pooled).eval().requires_grad_(False)
        return state["module"].to(device)

    # The pooled output exists when the class has one and its weights were saved.
    has_pooler = _saved_pooler(folder)
    # A token model's embeddings layer is listed only when it is pooled by mean: its CLS
    # token is the same learned vector for every image.
    first = ("embeddings",) if depths else ()
    layers = (*first, *(f"layer{i}" for i in range(1, n_layers + 1)), *(("pooled",) if has_pooler else ()))
    return Network(
        name=name or f"hf:{source}",
        build=build,
        preprocessing=preprocessing,
        layers=layers,
        pool="mean" if depths else "cls",
        weights=weights,
        code=code_id(cls) if isinstance(cls, type) and cls is not transformers.AutoModel else _auto_code(transformers, config),
        source=f"hf:{folder}",
        model_name=f"transformers.{getattr(cls, '__name__', 'AutoModel')}:{config.model_type}",
    )


def _auto_code(transformers, config) -> str:
    cls = transformers.AutoModel._model_mapping.get(type(config), None)
    return code_id(cls) if cls is not None else "transformers=" + transformers.__version__


def _saved_pooler(folder: Path) -> bool:
    index = folder / "model.safetensors"
    if index.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(index), framework="pt") as f:
                return any("pooler" in k or "post_layernorm" in k for k in f.keys())
        except Exception:  # noqa: BLE001 -- unreadable header: the load will say so
            return False
    sharded = folder / "model.safetensors.index.json"
    if sharded.is_file():
        keys = json.loads(sharded.read_text(encoding="utf-8")).get("weight_map", {})
        return any("pooler" in k or "post_layernorm" in k for k in keys)
    return False


def load_torchvision_network(arch: str, *, name: str | None = None) -> Network:
    """A torchvision model with its weights' own transforms; weights only from torch's hub cache."""
    try:
        import torchvision.models as tvm
    except Exception as err:  # noqa: BLE001
        raise BrainnetError(
            f"torchvision:{arch}: torchvision does not import here ({type(err).__name__}); install a "
            "torchvision matching your torch, or use hf: networks"
        ) from None
    try:
        weights_enum = tvm.get_model_weights(arch).DEFAULT
    except Exception:  # noqa: BLE001
        raise BrainnetError(f"torchvision:{arch}: unknown model; see torchvision.models.list_models()") from None
    file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights_enum.url)
    if not file.is_file():
        raise input_error(file, "torchvision weights not in the local cache",
                          f"download them once yourself (torchvision.models.get_model('{arch}', weights='DEFAULT'))")
    tf = weights_enum.transforms()
    preprocessing = resize_normalize(int(tf.resize_size[0]), tf.mean, tf.std, crop=int(tf.crop_size[0]),
                                     resample=str(tf.interpolation.value))
    model = tvm.get_model(arch)
    model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    net = Network.from_module(model, preprocessing, name=name or f"torchvision:{arch}")
    net.source = f"torchvision:{arch}:{file.name}"
    return net


def load_timm_network(arch: str, *, name: str | None = None) -> Network:
    """A timm model with its pretrained config's preprocessing; weights only from the local HF cache."""
    try:
        import timm
        from timm.data import resolve_data_config
    except Exception as err:  # noqa: BLE001
        raise BrainnetError(
            f"timm:{arch}: timm does not import here ({type(err).__name__}); install timm matching your torch"
        ) from None
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # never download
    try:
        model = timm.create_model(arch, pretrained=True)
    except Exception as err:  # noqa: BLE001
        raise BrainnetError(f"timm:{arch}: cannot build it from the local cache ({type(err).__name__}); "
                            "download the weights once yourself") from None
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    cfg = resolve_data_config({}, model=model)
    size = int(cfg["input_size"][-1])
    preprocessing = resize_normalize(int(size / cfg.get("crop_pct", 1.0)), cfg["mean"], cfg["std"], crop=size,
                                     resample=str(cfg.get("interpolation", "bicubic")))
    return Network.from_module(model, preprocessing, name=name or f"timm:{arch}")
