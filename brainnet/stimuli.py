"""Stimulus sets and the MATLAB-EmoNet image preprocessing.

A :class:`StimulusSet` is an ordered list of unique stimulus ids with one
image file each. :func:`load_stimuli` reads it from

* a folder of images: ids are the file stems, in natural order
  (``img2`` before ``img10``); sub-folders are not searched;
* a stimuli TSV with columns ``stimulus_id``, ``file`` and optionally
  ``category``: rows keep the file's order;
* a BIDS ``*_events.tsv``: the stimulus column (``column``, default the first
  of ``stim_file``, ``file_path``, ``ImgName``, ``identifier``, ``stimulus``);
  ids are its unique values in order of first appearance, ``n/a`` rows skipped.

Where relative file names are looked up (``root``), unless given:

1. a stimuli TSV: its folder, or its ``stimuli/`` sub-folder when the files
   are found there and not beside the TSV;
2. an events TSV: the ``stimuli/`` folder of the BIDS dataset that contains
   it (the nearest parent with ``dataset_description.json``), as the BIDS
   specification places ``stim_file`` paths; else the events file's folder
   (and its ``stimuli/`` sub-folder, as in rule 1).

A file may not lie outside ``root`` (absolute names, ``..`` or symbolic links
pointing out are refused), so a shared TSV cannot make brainnet read
arbitrary files.

:func:`preprocess_image` reproduces the input pipeline of the MATLAB model
with Pillow: RGB, 227 x 227 bicubic resize ignoring aspect, mean-image
subtraction on the 0..255 scale.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN_RGB",
    "decode_image",
    "decode_rgb",
    "demo_stimuli",
    "mean_image_id",
    "StimulusSet",
    "load_stimuli",
    "load_mean_image",
    "preprocess_image",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGENET_MEAN_RGB = (123.68, 116.78, 103.94)
EVENT_COLUMNS = ("stim_file", "file_path", "ImgName", "identifier", "stimulus")
SIZE = 227
_MISSING = {"", "n/a", "nan", "none", "null"}


@dataclass(frozen=True)
class StimulusSet:
    """An ordered set of image stimuli.

    Attributes
    ----------
    ids : tuple of str
        Unique stimulus ids, in a stable order.
    files : tuple of Path
        Absolute image paths, same order as ``ids``.
    categories : tuple of (str or None), or None
        Category of each stimulus when the source gives one.
    root : Path or None
        Folder the file names were resolved against.
    """

    ids: tuple[str, ...]
    files: tuple[Path, ...]
    categories: tuple[str | None, ...] | None = None
    root: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))
        object.__setattr__(self, "files", tuple(Path(f) for f in self.files))
        if len(self.ids) != len(self.files):
            raise BrainnetError(f"stimulus set: {len(self.ids)} ids but {len(self.files)} files; give one file per id")
        _reject_duplicates(self.ids, "stimulus set")
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(self.categories))
            if len(self.categories) != len(self.ids):
                raise BrainnetError("stimulus set: categories must have one entry per stimulus")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, ids: Sequence[str]) -> StimulusSet:
        """The stimuli with these ids, in the given order."""
        index = {s: i for i, s in enumerate(self.ids)}
        missing = [s for s in ids if s not in index]
        if missing:
            raise BrainnetError(f"stimulus set: unknown stimulus ids {missing[:5]}; check the ids")
        rows = [index[s] for s in ids]
        cats = None if self.categories is None else tuple(self.categories[r] for r in rows)
        return StimulusSet(tuple(ids), tuple(self.files[r] for r in rows), cats, self.root)


def _natural_key(text: str) -> list:
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok.lower()) for tok in re.split(r"(\d+)", text)]


def _reject_duplicates(ids: Sequence[str], where: str | Path) -> None:
    seen: set[str] = set()
    dups = []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    if dups:
        raise input_error(where, f"duplicate stimulus ids {dups[:3]}", "give every stimulus a unique id")


def load_stimuli(
    source: str | Path, *, column: str | None = None, root: str | Path | None = None
) -> StimulusSet:
    """Read a stimulus set from a folder, a stimuli TSV or a BIDS events file.

    Parameters
    ----------
    source : str or Path
        Folder of images, TSV with ``stimulus_id`` and ``file`` columns, or
        ``*_events.tsv``.
    column : str, optional
        Stimulus column of an events file (default: first of
        ``stim_file, file_path, ImgName, identifier, stimulus``).
    root : str or Path, optional
        Folder the TSV's file names are relative to (see the module docstring
        for the default).

    Returns
    -------
    StimulusSet

    Raises
    ------
    BrainnetError
        Missing source or image files, duplicate ids, no images, unknown
        column, or a file outside ``root``.
    """
    source = Path(source).expanduser()
    if source.is_dir():
        return _from_folder(source)
    if not source.is_file():
        raise input_error(source, "stimuli not found", "give a folder of images, a stimuli .tsv or an events .tsv")
    if source.suffix.lower() not in (".tsv", ".txt", ".csv"):
        raise input_error(source, "not a folder or a .tsv", "give a folder of images, a stimuli .tsv or an events .tsv")
    frame = _read_tsv(source)
    if column is None and {"stimulus_id", "file"} <= set(frame.columns):
        return _from_table(source, frame, root)
    return _from_events(source, frame, column, root)


def _read_tsv(path: Path):
    import pandas as pd

    try:
        return pd.read_csv(path, sep="," if path.suffix.lower() == ".csv" else "\t", dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise input_error(path, f"not a readable UTF-8 table ({type(err).__name__})", "save it as tab-separated UTF-8 text") from None


def _from_folder(folder: Path) -> StimulusSet:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    if not files:
        raise input_error(folder, "contains no images (" + " ".join(IMAGE_EXTENSIONS) + ")", "give a folder with images or a stimuli .tsv")
    files.sort(key=lambda p: _natural_key(p.name))
    ids = [p.stem for p in files]
    _reject_duplicates(ids, folder)
    root = folder.resolve()
    return StimulusSet(tuple(ids), tuple(_inside(root, p.name, folder) for p in files), None, root)


def _inside(root: Path, name: str, where: Path) -> Path:
    """``root / name`` resolved, refusing names that leave ``root`` (brainnet._paths.inside)."""
    from brainnet._paths import inside

    return inside(root, name, where).resolve()


def _derived_root(base: Path, parent: Path) -> Path:
    """A stimuli folder found beside a table (``<parent>/stimuli``) must not lead out of ``parent``."""
    from brainnet._paths import inside

    if base == parent:
        return base
    return inside(parent, base.relative_to(parent).as_posix(), base, what="folder").resolve()


def _pick_root(candidates: list[Path], names: list[str]) -> Path:
    # The candidate holding the most files wins (the first on ties), so a missing
    # image is reported in the folder that holds the others.
    found = [sum((cand / n).is_file() for n in names) for cand in candidates]
    return candidates[found.index(max(found))]


def _resolve(source: Path, root: Path, names: list[str]) -> tuple[Path, ...]:
    files = []
    for name in names:
        path = _inside(root, name, source)
        if not path.is_file():
            raise input_error(path, f"image listed in {source.name} not found", "fix the file name or pass the folder that holds the images as root (--stimuli-root)")
        files.append(path)
    return tuple(files)


def _from_table(source: Path, frame, root: str | Path | None) -> StimulusSet:
    ids = [s.strip() for s in frame["stimulus_id"]]
    names = [s.strip() for s in frame["file"]]
    if not ids:
        raise input_error(source, "lists no stimuli", "add rows with stimulus_id and file")
    if any(i.lower() in _MISSING for i in ids) or any(n.lower() in _MISSING for n in names):
        raise input_error(source, "has empty stimulus_id or file cells", "fill in every row")
    _reject_duplicates(ids, source)
    folder = source.parent.resolve()
    if root is not None:
        base = Path(root).expanduser().resolve()
    else:
        base = _derived_root(_pick_root([folder, folder / "stimuli"], names), folder)
    cats = None
    if "category" in frame.columns:
        cats = tuple(None if c.strip().lower() in _MISSING else c.strip() for c in frame["category"])
    return StimulusSet(tuple(ids), _resolve(source, base, names), cats, base)


def _no_stimulus_columns(source: Path, found: list[str]) -> BrainnetError:
    """The error for a table that is neither a stimuli TSV nor an events file."""
    if source.name.endswith("_events.tsv") or "onset" in found:  # an events file: its column is chosen by name
        return input_error(source, f"has no stimulus column (looked for {', '.join(EVENT_COLUMNS)}) among its columns {', '.join(found)}", "name the column with --column")
    table = {"stimulus_id", "file"}
    have = sorted(table & set(found))
    if have:  # one of the pair: clearly meant as a stimuli table
        missing = sorted(table - set(have))[0]
        return input_error(source, f"has a {have[0]} column but no {missing} column (columns: {', '.join(found)})", f"add or rename a column to {missing}")
    return input_error(
        source,
        f"found columns {', '.join(found) or '(none)'} but none of the accepted ones: stimulus_id and file "
        f"(a stimuli table) or one of {', '.join(EVENT_COLUMNS)} (an events file)",
        "rename the columns, e.g. to stimulus_id and file",
    )


def _bids_stimuli_dir(path: Path) -> Path | None:
    for parent in path.resolve().parents:
        if (parent / "dataset_description.json").is_file():
            return parent / "stimuli"
    return None


def _from_events(source: Path, frame, column: str | None, root: str | Path | None) -> StimulusSet:
    if column is None:
        column = next((c for c in EVENT_COLUMNS if c in frame.columns), None)
        if column is None:
            raise _no_stimulus_columns(source, list(frame.columns))
    elif column not in frame.columns:
        raise input_error(source, f"has no column {column!r} (columns: {', '.join(frame.columns)})", "choose --column among them")
    ids = []
    seen = set()
    for value in frame[column]:
        value = value.strip()
        if value.lower() in _MISSING or value in seen:
            continue
        seen.add(value)
        ids.append(value)
    if not ids:
        raise input_error(source, f"column {column!r} holds no stimuli (all n/a)", "choose the stimulus column with --column")
    if root is not None:
        base = Path(root).expanduser().resolve()
    else:
        folder = source.parent.resolve()
        candidates = [folder, folder / "stimuli"]
        bids = _bids_stimuli_dir(source)
        if bids is not None:
            candidates.insert(0, bids)
        base = _pick_root(candidates, ids)
        base = _derived_root(base, bids.parent if base == bids else folder)
    return StimulusSet(tuple(ids), _resolve(source, base, ids), None, base)


# ---------------------------------------------------------------- preprocessing


def load_mean_image(path: str | Path) -> np.ndarray:
    """Read a 227 x 227 x 3 mean image (RGB, 0..255 scale).

    Accepted: ``.npy`` holding ``(227, 227, 3)`` or ``(3, 227, 227)``, or the
    emonet-py ``img_mean.txt`` (227 comma-separated lines of 3 x 227 values:
    the red row, then the green row, then the blue row).

    Returns
    -------
    ndarray of shape (227, 227, 3), float32
    """
    path = Path(path).expanduser()
    fix = "give a .npy of shape (227, 227, 3) or emonet-py's img_mean.txt"
    if not path.is_file():
        raise input_error(path, "mean image not found", fix)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False).astype(np.float32)
        else:
            rows = [line.replace(",", " ").split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            arr = np.array(rows, dtype=np.float32)
            if arr.shape == (SIZE, 3 * SIZE):
                arr = arr.reshape(SIZE, 3, SIZE).transpose(0, 2, 1)
    except (ValueError, OSError, UnicodeDecodeError):
        raise input_error(path, "not a readable mean image", fix) from None
    if arr.shape == (3, SIZE, SIZE):
        arr = arr.transpose(1, 2, 0)
    if arr.shape != (SIZE, SIZE, 3) or not np.all(np.isfinite(arr)):
        raise input_error(path, f"mean image has shape {arr.shape}, expected (227, 227, 3)", fix)
    return np.ascontiguousarray(arr)


def _mean_chw(mean_image) -> np.ndarray:
    """The mean to subtract, broadcastable to ``(3, 227, 227)``."""
    if mean_image is None:
        return np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)[:, None, None]
    if isinstance(mean_image, str | Path):
        mean_image = load_mean_image(mean_image)
    arr = np.asarray(mean_image, dtype=np.float32)
    if arr.shape == (SIZE, SIZE, 3):
        return np.ascontiguousarray(arr.transpose(2, 0, 1))
    if arr.shape == (3, SIZE, SIZE):
        return arr
    if arr.shape == (3,):
        return arr[:, None, None]
    raise BrainnetError(f"mean image has shape {arr.shape}; give (227, 227, 3), (3, 227, 227) or 3 channel means")


def _to_rgb8(img):
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow cannot convert high-bit-depth grayscale to 8 bits without
        # clipping, so rescale: 16-bit codes by 257 (65535 -> 255).
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255):
            arr = arr / 257.0
        elif mode == "F" and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode != "RGB":
        # Alpha is dropped, not composited: MATLAB's imread returns colour and alpha separately.
        img = img.convert("RGB")
    return img


def preprocess_image(path: str | Path, mean_image=None) -> np.ndarray:
    """Load one image as EmoNet input, as the MATLAB model did.

    Parameters
    ----------
    path : str or Path
        Any image Pillow reads (JPEG, PNG, TIFF, GIF, BMP, WebP...).
        Grayscale is replicated to 3 channels, palette and CMYK converted to
        RGB, alpha dropped, 16-bit rescaled to 8 bits, animations give
        their first frame.
    mean_image : ndarray or path, optional
        ``(227, 227, 3)`` mean image (the MATLAB AlexNet 'zerocenter' image)
        or a file for :func:`load_mean_image`. Default: the ImageNet channel
        means (123.68, 116.78, 103.94), an approximation recorded in provenance.

    Returns
    -------
    ndarray of shape (3, 227, 227), float32
        RGB on the 0..255 scale minus the mean.

    Raises
    ------
    BrainnetError
        One line naming the file when it is missing, empty, not an image,
        truncated, corrupt, or a decompression bomb.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise input_error(path, "image not found or unreadable", "check the stimulus file name") from None
    return decode_image(data, path, _mean_chw(mean_image))


def decode_image(data: bytes, name: str | Path, mean_chw: np.ndarray) -> np.ndarray:
    """:func:`preprocess_image` on the bytes of an image file already in memory.

    Decoding the very bytes that were hashed keeps cache keys and
    activations consistent even if the file changes meanwhile.
    ``mean_chw`` is ``(3, 1, 1)`` or ``(3, 227, 227)``.
    """
    rgb = decode_rgb(data, name).resize((SIZE, SIZE), _bicubic())
    arr = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
    return np.ascontiguousarray(arr - mean_chw)


def _bicubic():
    from PIL import Image

    return Image.Resampling.BICUBIC


def decode_rgb(data: bytes, name: str | Path):
    """The bytes of an image file as an 8-bit RGB ``PIL.Image`` (first frame, alpha dropped).

    The step every network's preprocessing shares (:func:`decode_image` for
    EmoNet, a network's own transform otherwise); a missing, empty,
    truncated, corrupt or oversized image is a one-line error naming it.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    fix = "replace or remove this image"
    if not data:
        raise input_error(name, "empty file (0 bytes)", fix)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.seek(0)
                img.load()
                rgb = _to_rgb8(img)
                if rgb is img:  # closing the file below would release its pixels
                    rgb = img.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise input_error(name, "image is too large (decompression bomb protection)", "downscale it below 89 megapixels") from None
    except UnidentifiedImageError:
        raise input_error(name, "not an image Pillow can read", fix) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as err:
        raise input_error(name, f"corrupt or truncated image ({type(err).__name__})", fix) from None
    return rgb


def mean_image_id(mean_image) -> str:
    """Short description of the mean image for provenance and cache keys."""
    from brainnet.results import sha256_bytes, sha256_file

    if mean_image is None:
        return "imagenet-channel-mean(123.68,116.78,103.94)"
    if isinstance(mean_image, str | Path):
        return f"mean-image-sha256:{sha256_file(mean_image)}"
    arr = np.ascontiguousarray(np.asarray(mean_image, dtype=np.float32))
    return f"mean-image-array-sha256:{sha256_bytes(arr.tobytes() + str(arr.shape).encode())}"


# ---------------------------------------------------------------- demo images


def _demo_image(index: int, size: tuple[int, int]) -> np.ndarray:
    """One procedural RGB image, ``(height, width, 3)`` uint8, fixed by ``index``."""
    rng = np.random.default_rng(1000 + index)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    base = rng.uniform(0, 255, size=3)
    kind = index % 4
    if kind == 0:  # oriented colour gradient
        angle = rng.uniform(0, np.pi)
        ramp = np.cos(angle) * x + np.sin(angle) * y
        img = base + rng.uniform(-200, 200, size=3) * ramp[..., None]
    elif kind == 1:  # checkerboard at a random frequency
        f = rng.integers(3, 12)
        board = ((np.floor(x * f) + np.floor(y * f)) % 2)[..., None]
        img = base * board + rng.uniform(0, 255, size=3) * (1 - board)
    elif kind == 2:  # concentric rings
        r = np.hypot(x - rng.uniform(0.2, 0.8), y - rng.uniform(0.2, 0.8))
        img = base + 100 * np.sin(r * rng.uniform(10, 40))[..., None] * rng.uniform(-1, 1, size=3)
    else:  # smoothed colour noise
        noise = rng.normal(size=(h // 8 + 1, w // 8 + 1, 3))
        noise = np.kron(noise, np.ones((8, 8, 1)))[:h, :w]
        img = base + 60 * noise
    return np.clip(img, 0, 255).astype(np.uint8)


def demo_stimuli(n: int = 12, folder: str | Path | None = None) -> StimulusSet:
    """``n`` varied procedural images (PNG), created offline and deterministically.

    Gradients, checkerboards, rings and colour noise of different sizes and
    aspect ratios, written once to ``folder`` (default: the brainnet cache,
    ``demo_images/``) and reused. Used by ``brainnet extract --demo``, the
    tests and the benchmark.
    """
    from PIL import Image

    from brainnet._paths import cache_dir
    from brainnet.results import atomic_path

    folder = Path(folder) if folder is not None else cache_dir("demo_images", f"n{n}")
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(180, 240), (256, 256), (300, 200), (227, 227), (120, 360)]
    rows = []
    for i in range(n):
        name = f"demo_{i + 1:03d}.png"
        path = folder / name
        if not path.is_file():
            with atomic_path(path, suffix=".png") as tmp:
                Image.fromarray(_demo_image(i, sizes[i % len(sizes)])).save(tmp, format="PNG")
        rows.append((f"demo_{i + 1:03d}", path.resolve(), ("gradient", "checkerboard", "rings", "noise")[i % 4]))
    ids, files, cats = zip(*rows, strict=True)
    return StimulusSet(ids, files, cats, folder.resolve())
