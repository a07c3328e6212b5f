"""Load EmoNet weights: the two public PyTorch state dicts, or seeded untrained weights.

Public weights files (see ``data_manifests/weights.json``):

* ``emonet-pytorch`` (OSF amdju, ecco-laboratory/emonet-pytorch): fc6/fc7/fc8
  stored as convolutions, keys ``conv_0.0.*`` ... ``conv_6.0.*``,
  ``classifier.0.*``; fc6 weight ``(4096, 256, 6, 6)``.
* ``emonet-py`` (KU Leuven port on PyPI): keys ``conv1`` ... ``conv5``,
  ``fc1`` ... ``fc3`` (Linear). fc1's 9216 inputs follow MATLAB's
  column-major flattening of conv5, index ``c*36 + w*6 + h``.
* ``brainnet``: ``EmoNet().state_dict()`` itself (fc6 inputs in PyTorch
  ``c*36 + h*6 + w`` order), so a saved brainnet model loads back.

The format is detected from the keys. Files are read with
``torch.load(weights_only=True)`` because a weights file is untrusted input:
pickled code is refused, never executed.

Without a file, :func:`load_emonet` builds deterministic "untrained EmoNet"
weights from a seeded CPU ``torch.Generator`` (He-normal weights, zero
biases), identical on every run and machine for a given torch version.
"""

from __future__ import annotations

import functools
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from brainnet.errors import BrainnetError, input_error
from brainnet.models.emonet import EmoNet
from brainnet.results import sha256_file

__all__ = ["load_emonet", "fetch_weights", "weights_manifest", "detect_format", "untrained_state_dict", "WEIGHT_FORMATS"]

_FETCH_FIX = "download it again with 'brainnet fetch weights' or give another --weights file"

Transform = Callable[[torch.Tensor], torch.Tensor]


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _conv_as_linear(t: torch.Tensor) -> torch.Tensor:
    # (out, C, kH, kW) conv weight == linear weight over inputs flattened C, H, W.
    return t.reshape(t.shape[0], -1)


def _matlab_fc6(t: torch.Tensor) -> torch.Tensor:
    # emonet-py fc1 columns are ordered c*36 + w*6 + h (MATLAB column-major);
    # brainnet flattens conv5 as c*36 + h*6 + w, so swap the two spatial axes.
    return t.reshape(t.shape[0], 256, 6, 6).permute(0, 1, 3, 2).reshape(t.shape[0], -1)


def _target_shapes() -> dict[str, tuple[int, ...]]:
    # Built on the meta device: shapes only, no memory, no random init.
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in EmoNet().state_dict().items()}


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, tuple[str, tuple[int, ...], Transform]]]:
    """format -> {source key: (brainnet key, source shape, transform)}."""
    target = _target_shapes()
    formats: dict[str, dict[str, tuple[str, tuple[int, ...], Transform]]] = {
        "brainnet": {k: (k, shape, _same) for k, shape in target.items()},
        "emonet-pytorch": {},
        "emonet-py": {},
    }
    conv_pt = {f"conv_{i}.0": f"conv{i + 1}.0" for i in range(5)}
    conv_py = {f"conv{i}": f"conv{i}.0" for i in range(1, 6)}
    for src, dst in conv_pt.items():
        for p in ("weight", "bias"):
            formats["emonet-pytorch"][f"{src}.{p}"] = (f"{dst}.{p}", target[f"{dst}.{p}"], _same)
    for src, dst in conv_py.items():
        for p in ("weight", "bias"):
            formats["emonet-py"][f"{src}.{p}"] = (f"{dst}.{p}", target[f"{dst}.{p}"], _same)
    fc = [("fc6.1", (256, 6, 6)), ("fc7.0", (4096, 1, 1)), ("fc8.0", (4096, 1, 1))]
    for (dst, kernel), src_pt, src_py in zip(
        fc, ("conv_5.0", "conv_6.0", "classifier.0"), ("fc1", "fc2", "fc3"), strict=True
    ):
        n_out, n_in = target[f"{dst}.weight"]
        formats["emonet-pytorch"][f"{src_pt}.weight"] = (f"{dst}.weight", (n_out, *kernel), _conv_as_linear)
        formats["emonet-pytorch"][f"{src_pt}.bias"] = (f"{dst}.bias", (n_out,), _same)
        fc6_map = _matlab_fc6 if dst == "fc6.1" else _same
        formats["emonet-py"][f"{src_py}.weight"] = (f"{dst}.weight", (n_out, n_in), fc6_map)
        formats["emonet-py"][f"{src_py}.bias"] = (f"{dst}.bias", (n_out,), _same)
    return formats


WEIGHT_FORMATS: tuple[str, ...] = ("emonet-pytorch", "emonet-py", "brainnet")


def _strip_wrappers(state: Mapping) -> Mapping:
    # Checkpoints often nest the state dict or carry DataParallel's "module." prefix.
    for key in ("state_dict", "model"):
        if key in state and isinstance(state[key], Mapping):
            state = state[key]
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def detect_format(keys) -> str | None:
    """Name of the weights layout whose key set equals ``keys``, else None."""
    keys = set(keys)
    for name, table in _table().items():
        if keys == set(table):
            return name
    return None


def _pickle_imports_objects(path: Path) -> bool:
    """True when ``path`` is a well-formed pickle that imports a class or function."""
    import pickletools

    try:
        ops = {op.name for op, _arg, _pos in pickletools.genops(path.read_bytes())}
    except Exception:  # noqa: BLE001 -- any parse failure means damaged bytes, not code
        return False
    return bool(ops & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ"})


def _read_state(path: Path) -> Mapping:
    if not path.is_file():
        raise input_error(path, "weights file not found", "check the --weights path or run 'brainnet fetch weights'")
    if path.stat().st_size == 0:
        raise input_error(path, "weights file is empty (0 bytes)", _FETCH_FIX)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only names the blocked GLOBAL it refused to import; otherwise
        # look at the opcodes (without running them) to tell code from damage.
        if "global" in str(err).lower() or _pickle_imports_objects(path):
            raise input_error(
                path,
                "refused: the file contains pickled Python objects, not only tensors "
                "(loaded with weights_only=True, nothing was executed)",
                "use a plain state dict (emonet-pytorch or emonet-py weights)",
            ) from None
        raise input_error(path, "not a readable PyTorch weights file (truncated or corrupt)", _FETCH_FIX) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError, IndexError):
        raise input_error(path, "not a readable PyTorch weights file (truncated or corrupt)", _FETCH_FIX) from None
    if not isinstance(state, Mapping):
        raise input_error(
            path,
            f"holds a {type(state).__name__}, not a state dict",
            "save the weights with torch.save(model.state_dict(), path)",
        )
    return _strip_wrappers(state)


def _convert(path: Path, state: Mapping) -> tuple[dict[str, torch.Tensor], str]:
    fmt = detect_format(state.keys())
    if fmt is None:
        tables = _table()
        best = min(tables, key=lambda f: len(set(tables[f]) ^ set(state.keys())))
        missing = sorted(set(tables[best]) - set(state.keys()))[:3]
        extra = sorted(set(map(str, state.keys())) - set(tables[best]))[:3]
        raise input_error(
            path,
            f"not EmoNet weights (closest layout {best}: missing keys {missing}, unexpected keys {extra})",
            "give the emonet-pytorch (conv_0 ... classifier) or emonet-py (conv1 ... fc3) state dict",
        )
    out: dict[str, torch.Tensor] = {}
    for src, (dst, shape, transform) in _table()[fmt].items():
        value = state[src]
        if not isinstance(value, torch.Tensor):
            raise input_error(path, f"entry {src!r} is a {type(value).__name__}, not a tensor", _FETCH_FIX)
        if tuple(value.shape) != shape:
            raise input_error(
                path,
                f"{src} has shape {tuple(value.shape)} but {fmt} EmoNet needs {shape}",
                "these are weights of another network; give EmoNet weights",
            )
        value = value.detach().to(torch.float32)
        # NaN propagates through max/min, Inf survives them: two reductions, no copy.
        if not (torch.isfinite(value.max()) and torch.isfinite(value.min())):
            raise input_error(path, f"{src} contains NaN or Inf", _FETCH_FIX)
        out[dst] = transform(value).contiguous()
    return out, fmt


# Typical standard deviation of mean-subtracted 0..255 pixel values; scaling
# conv1 by it keeps untrained activations O(1) instead of O(100).
_PIXEL_STD = 64.0


def untrained_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic He-normal weights (zero biases) for :class:`EmoNet`.

    conv1 is further divided by 64, the typical spread of mean-subtracted
    pixel values, so activations start near unit scale as He initialisation
    intends for unit-variance inputs.

    Drawn from a CPU ``torch.Generator`` seeded with ``seed`` in a fixed
    parameter order, so they do not depend on the global RNG or the device.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    state = {}
    for name, shape in _target_shapes().items():
        if name.endswith("bias"):
            state[name] = torch.zeros(shape)
            continue
        fan_in = int(torch.Size(shape[1:]).numel())
        gain = 1.0 if name.startswith("fc8") else 2.0
        std = (gain / fan_in) ** 0.5
        if name.startswith("conv1."):
            std /= _PIXEL_STD  # inputs are mean-subtracted 0..255 pixels, not unit variance
        state[name] = torch.randn(shape, generator=gen) * std
    return state


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, ValueError):
        raise BrainnetError(
            f"--device {device}: not available on this machine; use --device cpu"
        ) from None
    return dev


def load_emonet(
    weights: str | Path | None = None, seed: int = 0, device: str | torch.device = "cpu"
) -> tuple[EmoNet, str]:
    """EmoNet in eval mode with real or seeded untrained weights.

    Parameters
    ----------
    weights : str or Path, optional
        An emonet-pytorch or emonet-py state dict (format detected from the
        keys), or a saved ``EmoNet().state_dict()``. None: untrained weights.
    seed : int
        Seed of the untrained weights (ignored when ``weights`` is given).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...

    Returns
    -------
    model : EmoNet
        In eval mode, on ``device``, gradients disabled.
    weights_id : str
        ``"sha256:<hex of the file>"`` or ``"untrained-seed<seed>"``; record it
        with every result.

    Raises
    ------
    BrainnetError
        One line naming the file and the fix, for a missing, truncated,
        non-state-dict, code-carrying, wrong-key or wrong-shape file.
    """
    dev = _device(device)
    with torch.device("meta"):
        model = EmoNet()
    if weights is None:
        state, weights_id = untrained_state_dict(seed), f"untrained-seed{int(seed)}"
    else:
        path = Path(weights).expanduser()
        state, _ = _convert(path, _read_state(path))
        weights_id = f"sha256:{sha256_file(path)}"
    # assign=True adopts the loaded tensors instead of copying into meta storage.
    model.load_state_dict(state, assign=True)
    model.requires_grad_(False)
    return model.to(dev).eval(), weights_id


def _manifest_path() -> Path:
    from brainnet.datasets.manifests import data_manifest_path

    return data_manifest_path("weights.json")  # inside the wheel, or the repository's data_manifests/


def weights_manifest() -> list[dict]:
    """Entries of ``data_manifests/weights.json`` (name, format, url, size, sha256, licence, source)."""
    import json

    path = _manifest_path()
    if not path.is_file():
        raise input_error(
            path, "weights manifest not found",
            "run brainnet from a clone of its repository, or download the weights by hand and pass --weights PATH",
        )
    return json.loads(path.read_text(encoding="utf-8"))["files"]


def fetch_weights(
    which: str = "emonet-pytorch",
    dest: str | Path | None = None,
    *,
    url: str | None = None,
    progress: bool = True,
) -> Path:
    """Download a public EmoNet weights file into the cache and verify it.

    Parameters
    ----------
    which : {"emonet-pytorch", "emonet-py"}
        Manifest entry to fetch.
    dest : str or Path, optional
        Folder to save into (default ``cache_dir("weights")``).
    url : str, optional
        Another address for the same file (a mirror).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The verified file; pass it as ``weights=`` / ``--weights``.

    Notes
    -----
    Size and sha256 are checked when the manifest has them (none are
    published today); in every case the file must load as EmoNet weights of
    the expected format, else it is deleted and an error raised.
    """
    from brainnet._paths import cache_dir
    from brainnet.datasets.download import download

    entries = {e["name"]: e for e in weights_manifest()}
    fetchable = [n for n, e in entries.items() if e["format"] in WEIGHT_FORMATS]
    if which not in fetchable:
        raise BrainnetError(f"--which {which}: unknown weights; choose one of {', '.join(fetchable)}")
    entry = entries[which]
    folder = Path(dest).expanduser() if dest is not None else cache_dir("weights")
    path = download(url or entry["url"], folder / entry["filename"], sha256=entry["sha256"],
                    size=entry["size"], progress=progress)
    try:
        _, fmt = _convert(path, _read_state(path))
        if fmt != entry["format"]:
            raise input_error(path, f"holds {fmt} weights, expected {entry['format']}", "check the --url")
    except BrainnetError as err:
        path.unlink(missing_ok=True)
        raise BrainnetError(f"downloaded file rejected and deleted: {err}") from None
    return path
