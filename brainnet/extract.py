"""Layer activations of EmoNet (or any PyTorch module) for a stimulus set.

:func:`extract_activations` preprocesses each image as the MATLAB model did
(:mod:`brainnet.stimuli`), runs the network in batches under
``torch.inference_mode`` and reads the requested layers with forward hooks on
``model.named_modules()``, so any module name works (``"fc7"``,
``"fc6.1"`` for fc6 before its ReLU, or the layers of your own network).

Images are decoded by a small thread pool while the network computes (Pillow
releases the GIL), and the forward pass stops as soon as every requested
layer has been seen.

Cache
-----
Results are content-addressed under ``cache_dir("activations")``: one entry
per (image, layer), keyed by the sha256 of the image bytes, the weights id,
the preprocessing (incl. mean image) and the pooling. A rerun is served from
the cache without building the model; a modified image or weights file
changes the key, so it is never served stale. :func:`last_cache_stats`
reports hits and misses of the last call (the counts are deliberately not
in the provenance, which must be identical for a fresh run and a rerun).

Weights id of a user module: ``"sha256:<hex>"`` over its ``state_dict``
(sorted names, dtypes, shapes and raw bytes), prefixed by its class name in
the provenance's ``model`` entry.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brainnet.errors import BrainnetError
from brainnet.features import Features
from brainnet.results import atomic_write_bytes, brainnet_version, sha256_bytes, sha256_file
from brainnet.stimuli import StimulusSet, _mean_chw, load_stimuli

__all__ = ["extract_activations", "last_cache_stats", "shared_decoding", "CacheStats", "POOLS"]

log = logging.getLogger(__name__)

POOLS = ("none", "mean", "max", "cls")
_CACHE_VERSION = "1"
_PREFETCH_BATCHES = 2


@dataclass(frozen=True)
class CacheStats:
    """Cache use of one :func:`extract_activations` call (counted per image)."""

    hits: int = 0
    misses: int = 0


_last_stats = CacheStats()


def last_cache_stats() -> CacheStats:
    """Hits and misses of the most recent :func:`extract_activations` call."""
    return _last_stats


class _Enough(Exception):
    """Raised from a hook to stop the forward pass once all layers are captured."""


_HASH_CHUNK = 1 << 24  # bytes


def _module_weights_id(model: torch.nn.Module) -> str:
    """``sha256:`` digest of every parameter and buffer (names, dtypes, shapes, bytes)."""
    return _weights_digest(_state_items(model))


def _state_items(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    # Taken in the caller's thread: the digest may run in the background while the
    # model is converted to channels-last, which swaps its parameter tensors.
    return sorted(model.state_dict().items())


def _weights_digest(items: list[tuple[str, torch.Tensor]], threads: int = 2) -> str:
    """Digest of ``(name, tensor)`` pairs.

    Hashed afresh on every call: memoising on torch's version counters would
    miss edits made through ``param.data``. The bytes are hashed in 16 MB
    pieces on ``threads`` threads (hashlib releases the GIL), straight from
    the tensors' memory; the digest covers every name, dtype, shape and
    piece digest in order, so it does not depend on ``threads``.
    """
    header, pieces = hashlib.sha256(), []
    for name, tensor in items:
        t = tensor.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16
            t = t.float()
        header.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        raw = memoryview(t.numpy()).cast("B")
        pieces += [raw[i : i + _HASH_CHUNK] for i in range(0, len(raw), _HASH_CHUNK)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        digests = pool.map(lambda piece: hashlib.sha256(piece).digest(), pieces)
        for d in digests:
            header.update(d)
    return f"sha256:{header.hexdigest()}"


def _emonet_module_names() -> set[str]:
    from brainnet.models.emonet import EmoNet

    with torch.device("meta"):
        return {name for name, _ in EmoNet().named_modules() if name}


def _check_layers(layers: Sequence[str], available: set[str]) -> list[str]:
    if isinstance(layers, str):
        layers = [s.strip() for s in layers.split(",") if s.strip()]
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise BrainnetError("--layers: no layer given; e.g. --layers fc7,fc8")
    unknown = [name for name in layers if name not in available]
    if unknown:
        top = sorted(n for n in available if "." not in n)
        raise BrainnetError(f"--layers: unknown layer {unknown[0]!r}; available: {', '.join(top)}")
    return layers


def _weights_id_without_loading(weights, seed: int) -> str:
    from brainnet.results import sha256_file

    if weights is None:
        return f"untrained-seed{int(seed)}"
    path = Path(weights).expanduser()
    if not path.is_file():
        from brainnet.models.weights import load_emonet

        load_emonet(path)  # raises the canonical "weights file not found" error
    return f"sha256:{sha256_file(path)}"


def _pool(out: torch.Tensor, pool: str, layer: str = "") -> torch.Tensor:
    """``(batch, ...)`` layer output -> ``(batch, n_units)``.

    4-d ``(B, C, H, W)``: ``mean``/``max`` over H, W. 3-d ``(B, T, D)``
    (transformer tokens): ``cls`` keeps token 0, ``mean``/``max`` reduce the
    tokens. ``none`` flattens whatever is left (2-d outputs pass unchanged).
    """
    if pool == "cls":
        if out.ndim == 4:
            raise BrainnetError(
                f"--pool cls: layer {layer!r} outputs feature maps {tuple(out.shape[1:])}, not transformer tokens; "
                "use --pool none, mean or max"
            )
        if out.ndim == 3:
            out = out[:, 0]
    elif out.ndim == 4 and pool != "none":
        out = out.mean(dim=(2, 3)) if pool == "mean" else out.amax(dim=(2, 3))
    elif out.ndim == 3 and pool != "none":
        out = out.mean(dim=1) if pool == "mean" else out.amax(dim=1)
    return out.reshape(out.shape[0], -1)


class _Cache:
    """One ``.npy`` file per (image, layer) under ``cache_dir("activations")``."""

    def __init__(self, enabled: bool, context: str) -> None:
        from brainnet._paths import cache_dir

        self.enabled = enabled
        self.context = context
        self.root = cache_dir("activations") if enabled else None

    def path(self, image_sha: str, layer: str) -> Path:
        key = sha256_bytes(f"{_CACHE_VERSION}|{self.context}|{layer}|{image_sha}".encode())
        return self.root / key[:2] / f"{key}.npy"

    def get(self, image_sha: str, layer: str) -> np.ndarray | None:
        if not self.enabled:
            return None
        try:
            return np.load(self.path(image_sha, layer), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None  # absent or damaged: recompute

    def put(self, image_sha: str, layer: str, values: np.ndarray) -> None:
        if not self.enabled:
            return
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self.path(image_sha, layer), buf.getvalue())


def _image_sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        raise BrainnetError(f"{path}: image not found or unreadable; check the stimulus file") from None


def _read_checked(path: Path, sha: str) -> bytes:
    # The bytes decoded must be the bytes hashed, or the cache would file
    # these activations under another image's key.
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    if sha256_bytes(data) != sha:
        raise BrainnetError(f"{path}: image changed or vanished during extraction; rerun the extraction")
    return data


def _stack(arrays: list[np.ndarray], files: Sequence[Path]) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        a, b = sorted(shapes)[:2]
        raise BrainnetError(
            f"{files[0]}: the network's preprocessing gives images of different sizes ({a} and {b}); "
            "give the transform a fixed size or a centre crop"
        )
    return np.stack(arrays)


def _batches(
    files: list[Path], shas: list[str], preprocess, batch_size: int, workers: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, (b, 3, H, W) array)``, decoding up to two batches ahead.

    ``preprocess(data, path)`` turns an image file's bytes into one input.
    """
    starts = list(range(0, len(files), batch_size))
    shared = _SHARED.get()  # read here: the decoding threads do not inherit the context

    def decode(start: int, stop: int | None = None) -> np.ndarray:
        stop = min(start + batch_size, len(files)) if stop is None else stop
        return _stack([preprocess(_rgb(files[i], shas[i], shared), files[i]) for i in range(start, stop)],
                      files[start:stop])

    if workers < 1:  # 0: decode in the calling thread
        for start in starts:
            yield start, decode(start)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Nothing computes before the first batch exists: decode its first half
        # here while the workers decode its second half and the next batches.
        first_stop = min(batch_size, len(files))
        middle = first_stop // 2
        second_half = pool.submit(decode, middle, first_stop) if middle > 0 else None
        pending = [None] + [pool.submit(decode, s) for s in starts[1:_PREFETCH_BATCHES]]
        head = decode(0, middle) if middle > 0 else decode(0, first_stop)
        first = head if second_half is None else np.concatenate([head, second_half.result()])
        for k, start in enumerate(starts):
            batch = first if k == 0 else pending[k].result()
            first = None
            if k + _PREFETCH_BATCHES < len(starts):
                pending.append(pool.submit(decode, starts[k + _PREFETCH_BATCHES]))
            pending[k] = None  # free the decoded batch once consumed
            yield start, batch


def _run_forward(forward, x: torch.Tensor, network_name: str) -> None:
    """``forward(x)``, stopping at :class:`_Enough`; an input the network cannot take is one line."""
    try:
        forward(x)
    except _Enough:
        pass
    except (RuntimeError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise BrainnetError(
            f"network {network_name}: images preprocessed to {tuple(x.shape[1:])} do not fit its input "
            f"({reason}); use the network's own preprocessing (--network NAME, or Network.from_module(module, "
            "transform=...))"
        ) from None


def _first_tensor(output):
    from brainnet.models.registry import _first_tensor

    return _first_tensor(output)


def _run_model(
    model: torch.nn.Module,
    layers: list[str],
    pool: str,
    batches: Iterator[tuple[int, np.ndarray]],
    device: torch.device,
    on_batch,
    channels_last: bool = False,
    network_name: str = "model",
) -> None:
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            output = _first_tensor(output)
            if not isinstance(output, torch.Tensor):
                raise BrainnetError(
                    f"--layers: layer {name!r} outputs a {type(output).__name__}, not a tensor; "
                    "choose a module that returns a tensor"
                )
            # clone: later in-place ops of the model must not alter the captured values.
            captured[name] = _pool(output, pool, name).float().cpu().clone()
            if len(captured) == len(layers):
                raise _Enough

        return hook

    def run(forward, start: int, x: torch.Tensor) -> None:
        captured.clear()
        _run_forward(forward, x, network_name)
        missing = [n for n in layers if n not in captured]
        if missing:
            raise BrainnetError(
                f"--layers: layer {missing[0]!r} was not run by the model's forward; "
                "choose a layer the forward pass uses"
            )
        on_batch(start, {n: captured[n].numpy() for n in layers})

    stages = _emonet_stages(model, layers)
    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    try:
        with torch.inference_mode():
            stash: list[torch.Tensor] = []
            stash_start = 0
            for start, batch in batches:
                x = torch.from_numpy(batch).to(device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if stages is None:
                    run(model, start, x)
                    continue
                stash_start = start if not stash else stash_start
                stash.append(_sequential(stages[0], x))
                if sum(len(h) for h in stash) >= _FC_BATCH:
                    run(functools.partial(_sequential, stages[1]), stash_start, torch.cat(stash))
                    stash = []
            if stash:
                run(functools.partial(_sequential, stages[1]), stash_start, torch.cat(stash))
    finally:
        for handle in handles:
            handle.remove()


#: Images per pass through EmoNet's fully connected layers when only they are
#: extracted: their 218 MB of weights are then read from memory once per 256
#: images instead of once per batch (the convolutions keep ``batch_size``).
_FC_BATCH = 256


def _emonet_stages(model: torch.nn.Module, layers: list[str]):
    """``(conv blocks, fc blocks)`` of a brainnet EmoNet when every layer asked for is fc6-fc8, else None."""
    from brainnet.models.emonet import LAYERS, EmoNet

    if type(model) is not EmoNet or any(name.split(".")[0] not in LAYERS[5:] for name in layers):
        return None
    return [getattr(model, n) for n in LAYERS[:5]], [getattr(model, n) for n in LAYERS[5:]]


def _sequential(blocks, x: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = block(x)
    return x


def extract_activations(
    stimuli: StimulusSet | str | Path,
    model: torch.nn.Module | None = None,
    *,
    network=None,
    layers: Sequence[str] | str | None = None,
    weights: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 32,
    pool: str | None = None,
    device: str = "cpu",
    cache: bool = True,
    progress: bool = False,
    mean_image=None,
    n_workers: int | None = None,
    n_threads: int | None = None,
    channels_last: bool | None = None,
) -> Features:
    """Activations of network layers for every stimulus.

    Parameters
    ----------
    stimuli : StimulusSet, str or Path
        A stimulus set or anything :func:`brainnet.stimuli.load_stimuli` reads.
    model : torch.nn.Module, optional
        Any network taking ``(batch, 3, 227, 227)`` inputs, given EmoNet's
        preprocessing. For a module with its own preprocessing pass
        ``network=Network.from_module(module, transform)`` instead.
    network : str or Network, optional
        A network name or spec (``"emonet"``, ``"emonet-untrained"``,
        ``"hf:/models/vit"``, ``"head:head.pt"``, a registered name; see
        :mod:`brainnet.models.registry`) or a :class:`Network`; its own
        preprocessing is used. Default: EmoNet (``weights``, ``seed``).
    layers : sequence of str, "all" or None
        Names from the network's ``named_modules()`` (EmoNet: ``conv1`` ...
        ``fc8``; ``fc8`` is before the softmax); ``"all"``: the network's
        layer list; None: its last layer (EmoNet ``fc8``). A comma-separated
        string also works.
    weights : str or Path, optional
        EmoNet weights file; None: untrained weights seeded by ``seed``.
    seed : int
        Seed of the untrained EmoNet weights.
    batch_size : int
        Images per forward pass (results do not depend on it beyond float
        rounding, < 1e-4).
    pool : {"none", "mean", "max", "cls"}, optional
        How a layer's output becomes units: ``"none"`` flattens (C, H, W
        order), ``"mean"``/``"max"`` reduce spatial positions or tokens,
        ``"cls"`` keeps a transformer's first token. Default: the network's
        (EmoNet ``"none"``, ViT/CLIP ``"cls"``).
    device : str
        ``"cpu"``, ``"cuda"``...
    cache : bool
        Use the on-disk activation cache (see module docstring).
    progress : bool
        Show a progress bar over the images to compute.
    mean_image : ndarray or path, optional
        MATLAB mean image for EmoNet (see :func:`brainnet.stimuli.preprocess_image`).
    n_workers : int, optional
        Image-decoding threads running ahead of the network (default: 1 on
        machines with up to 2 CPUs, else half the CPUs, at most 4).
    n_threads : int, optional
        torch intra-op threads during the run (restored afterwards). Default:
        torch's setting, or 1 when the machine is already busy (1-minute load
        average >= number of CPUs), where competing OpenMP threads slow a
        CPU run down several-fold. Results do not depend on it beyond float
        rounding.
    channels_last : bool, optional
        Run the convolutions on channels-last tensors (oneDNN's native
        layout: about 1.5x faster on CPU, same values to float rounding).
        Default: True for the EmoNet brainnet builds, False otherwise
        (True converts a module's parameters in place; values are unchanged).

    Returns
    -------
    Features
        One ``(n_stimuli, n_units)`` float32 array per layer, rows in
        stimulus order, with provenance (network, weights, code, model,
        preprocessing, layers, pool, stimuli).
    """
    global _last_stats
    from brainnet._checks import check_count
    from brainnet.models.registry import Network, get_network
    from brainnet.models.weights import _device

    check_count(batch_size, "batch_size", 1)
    if model is not None and weights is not None:
        raise BrainnetError("extract_activations: give either a model or a weights file, not both")
    if model is not None and network is not None:
        raise BrainnetError("extract_activations: give either a model or a network, not both")
    stim = stimuli if isinstance(stimuli, StimulusSet) else load_stimuli(stimuli)
    dev = _device(device)

    if model is None:
        net = get_network(network, weights=weights, seed=seed)
        if net.is_emonet:
            available = _emonet_module_names()
        elif layers is not None and layers != "all" and not _all_listed(layers, net.layers):
            available = {n for n, _ in net.build(torch.device("cpu")).named_modules() if n}
        else:
            available = set(net.layers)
        weights_id = net.weights
    else:
        available = {n for n, _ in model.named_modules() if n}
        if cache:  # cache keys need the digest before anything is computed
            weights_id = _module_weights_id(model)
        else:  # only the provenance needs it: hash while the images are decoded and run
            digest_thread = ThreadPoolExecutor(max_workers=1)
            weights_id = digest_thread.submit(_weights_digest, _state_items(model), 1)  # one core: off the critical path
            digest_thread.shutdown(wait=False)
        from brainnet.models.registry import _qualname, code_id

        given = model
        net = Network(name=type(model).__name__.lower(), build=lambda d: given.to(d).eval(), preprocessing=None,
                      layers=tuple(n for n, _ in model.named_children()), code=code_id(model),
                      model_name=_qualname(type(model)), source=f"python:{_qualname(type(model))}")
    pool = net.pool if pool is None else pool
    if pool not in POOLS:
        raise BrainnetError(f"--pool {pool}: unknown pooling; use one of {', '.join(POOLS)}")
    if layers is None:
        layers = [net.layers[-1]] if net.layers else []
    elif layers == "all" or (not isinstance(layers, str) and list(layers) == ["all"]):
        layers = list(net.layers)
    layers = _check_layers(layers, available)
    mean_chw = _mean_chw(mean_image) if net.preprocessing is None else None
    preprocessing = net.preprocessing_record(mean_image)
    pre_key = (f"{preprocessing['pipeline']}|{preprocessing['mean']}" if net.preprocessing is None
               else net.preprocessing.id)
    context = f"{weights_id if cache else None}|{net.model_name}|code={net.code}|{pre_key}|pool={pool}"
    store = _Cache(cache, context)

    shas = [_image_sha256(path) for path in stim.files]
    n = len(stim)
    out: dict[str, list[np.ndarray | None]] = {layer: [None] * n for layer in layers}
    todo = []
    for i, sha in enumerate(shas):
        entries = [store.get(sha, layer) for layer in layers]
        if all(e is not None for e in entries):
            for layer, e in zip(layers, entries, strict=True):
                out[layer][i] = e
        else:
            todo.append(i)
    _last_stats = CacheStats(hits=n - len(todo), misses=len(todo))
    log.info("extract: %d of %d images served from cache", n - len(todo), n)

    if todo:
        built = net.build(dev)
        if net.is_emonet:
            channels_last = True if channels_last is None else channels_last
        if channels_last:
            built = built.to(memory_format=torch.channels_last)
        _compute(built, layers, pool, dev, [stim.files[i] for i in todo], [shas[i] for i in todo],
                 todo, out, store, _preprocessor(net, mean_chw), int(batch_size), progress, n_workers, n_threads,
                 bool(channels_last), net.name)

    arrays = {layer: np.stack(rows).astype(np.float32, copy=False) for layer, rows in out.items()}
    if not isinstance(weights_id, str):
        weights_id = weights_id.result()
    listing = "\n".join(f"{i}\t{s}" for i, s in zip(stim.ids, shas, strict=True))
    provenance = {
        "brainnet_version": brainnet_version(),
        "network": {**net.provenance(), "weights": weights_id},
        "weights": weights_id,
        "model": net.model_name,
        "preprocessing": preprocessing,
        "layers": layers,
        "pool": pool,
        "stimuli": {
            "root": str(stim.root) if stim.root else None,
            "n_stimuli": n,
            "ids_and_image_sha256": sha256_bytes(listing.encode()),
        },
    }
    return Features(stim.ids, arrays, provenance)


def _all_listed(layers, listed) -> bool:
    names = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers)
    return all(n in listed for n in names if n)


def _preprocessor(net, mean_chw):
    """``f(rgb image, path) -> (3, H, W)`` float32 input of ``net``."""
    from brainnet.stimuli import SIZE, _bicubic

    if net.preprocessing is None:  # EmoNet: decode_image's steps after decoding
        def emonet(rgb, path):
            arr = np.asarray(rgb.resize((SIZE, SIZE), _bicubic()), dtype=np.float32).transpose(2, 0, 1)
            return np.ascontiguousarray(arr - mean_chw)

        return emonet
    return lambda rgb, path: net.preprocessing(rgb)


#: Decoded images shared by the extractions inside :func:`shared_decoding`.
_SHARED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("brainnet_shared_rgb", default=None)


@contextlib.contextmanager
def shared_decoding() -> Iterator[dict]:
    """Decode each image once for all extractions in the block (several networks).

    Every network has its own preprocessing, but they all start from the
    same decoded RGB image; inside this block the decoded images are kept
    (keyed by the sha256 of their bytes) and reused by the next network.
    """
    store: dict = {}
    token = _SHARED.set(store)
    try:
        yield store
    finally:
        _SHARED.reset(token)


def _rgb(path: Path, sha: str, store: dict | None):
    """The decoded image of ``path`` whose bytes hash to ``sha`` (kept in ``store`` when given)."""
    from brainnet.stimuli import decode_rgb

    if store is not None and sha in store:
        return store[sha]
    rgb = decode_rgb(_read_checked(path, sha), path)
    if store is not None:
        store[sha] = rgb
    return rgb


def _input_batch(net, images) -> torch.Tensor:
    """PIL images -> the ``(n, 3, H, W)`` input of ``net`` (EmoNet: ImageNet channel mean)."""
    from brainnet.stimuli import IMAGENET_MEAN_RGB, SIZE

    if net.preprocessing is None:
        mean = np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)[:, None, None]
        arrays = [np.asarray(im.convert("RGB").resize((SIZE, SIZE)), dtype=np.float32).transpose(2, 0, 1) - mean
                  for im in images]
    else:
        arrays = [net.preprocessing(im.convert("RGB")) for im in images]
    return torch.from_numpy(np.stack(arrays))


def _default_workers() -> int:
    # Decoding is ~10x cheaper than the forward pass: one background thread
    # hides it on small machines; more would only take cores from torch.
    cpus = _cpu_count()
    return 1 if cpus <= 2 else min(4, cpus // 2)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _busy_machine() -> bool:
    try:
        return os.getloadavg()[0] >= _cpu_count()
    except (AttributeError, OSError):  # no load average on this platform
        return False


@contextlib.contextmanager
def _intra_op_threads(n_threads: int | None) -> Iterator[None]:
    """Run torch with ``n_threads`` (None: torch's setting, or 1 on a busy machine)."""
    before = torch.get_num_threads()
    if n_threads is None:
        # OpenMP threads spin while they wait for each other: when every core
        # is already taken, two or more of them slow a CPU run down several-fold.
        n_threads = 1 if before > 1 and _busy_machine() else before
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _compute(model, layers, pool, dev, files, shas, rows, out, store, preprocess,
             batch_size, progress, n_workers, n_threads, channels_last=False, network_name="model") -> None:
    from brainnet._progress import progress_bar

    workers = n_workers if n_workers is not None else _default_workers()
    bar = progress_bar(len(files), unit="img", desc="extract", enabled=progress, leave=True)

    def on_batch(start: int, acts: dict[str, np.ndarray]) -> None:
        for j in range(next(iter(acts.values())).shape[0]):
            k = start + j
            for layer in layers:
                row = acts[layer][j].copy()
                out[layer][rows[k]] = row
                store.put(shas[k], layer, row)
        bar.update(next(iter(acts.values())).shape[0])

    try:
        with _intra_op_threads(n_threads):
            _run_model(model, layers, pool, _batches(files, shas, preprocess, batch_size, workers), dev, on_batch,
                       channels_last, network_name)
    finally:
        bar.close()
