"""Network feature sets: per-layer ``(n_stimuli, n_units)`` arrays keyed by stimulus id.

A :class:`Features` object is what extraction returns and what every analysis
takes on the network side. It is also how users bring their own features
(``--features FILE``): ``.npz`` with one array per layer plus
``stimulus_ids``, or ``.tsv`` with a ``stimulus_id`` column and one column
per unit (a single layer, named by the file stem unless given).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError, input_error
from brainnet.results import atomic_save_npz, atomic_write_json, sha256_file

__all__ = ["Features", "load_features", "load_thingsvision", "save_features", "in_memory"]


@dataclass(frozen=True)
class Features:
    """Activations of one network for one stimulus set.

    Parameters
    ----------
    stimulus_ids : sequence of str, length n_stimuli
        Unique ids, in row order.
    layers : dict of str -> ndarray of shape (n_stimuli, n_units)
        One matrix per layer, rows aligned with ``stimulus_ids``.
    provenance : dict
        What produced them (weights, preprocessing, model, source file).
    """

    stimulus_ids: tuple[str, ...]
    layers: Mapping[str, np.ndarray]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = tuple(str(s) for s in self.stimulus_ids)
        object.__setattr__(self, "stimulus_ids", ids)
        if len(set(ids)) != len(ids):
            dup = sorted({s for s in ids if ids.count(s) > 1})[:3]
            raise BrainnetError(f"features: duplicate stimulus ids {dup}; each stimulus needs one row")
        layers = {}
        for name, arr in self.layers.items():
            arr = np.asarray(arr)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[0] != len(ids):
                raise BrainnetError(
                    f"features: layer {name!r} has shape {arr.shape} but there are {len(ids)} "
                    "stimulus ids; give one row per stimulus"
                )
            if arr.shape[1] == 0:
                raise BrainnetError(
                    f"features: layer {name!r} has 0 units (shape {arr.shape}); "
                    "give at least one unit column per layer, or leave the layer out"
                )
            if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
                raise BrainnetError(
                    f"features: layer {name!r} contains NaN, Inf or non-numbers; "
                    "remove or impute them before the analysis"
                )
            layers[name] = arr
        object.__setattr__(self, "layers", layers)

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    @property
    def n_stimuli(self) -> int:
        return len(self.stimulus_ids)

    def layer(self, name: str) -> np.ndarray:
        """The ``(n_stimuli, n_units)`` matrix of one layer."""
        try:
            return self.layers[name]
        except KeyError:
            raise BrainnetError(
                f"layer {name!r} is not in these features; available: {', '.join(self.layers)}"
            ) from None

    def rows_for(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Row index of each requested id (repeats allowed), shape ``(len(stimulus_ids),)``."""
        index = {s: i for i, s in enumerate(self.stimulus_ids)}
        missing = [s for s in stimulus_ids if str(s) not in index]
        if missing:
            raise BrainnetError(
                f"features: no row for stimulus ids {sorted(set(map(str, missing)))[:5]}; "
                "the features must cover every stimulus of the study"
            )
        return np.array([index[str(s)] for s in stimulus_ids], dtype=np.intp)

    def align(self, stimulus_ids: Sequence[str]) -> Features:
        """These features re-ordered (and subset) to ``stimulus_ids`` (unique)."""
        rows = self.rows_for(stimulus_ids)
        return Features(
            tuple(stimulus_ids), {k: v[rows] for k, v in self.layers.items()}, self.provenance
        )


def in_memory(features: Features) -> Features:
    """``features`` with its content identified in its provenance, as a file's would be.

    Features passed from Python (not a file) carry ``source: "in-memory"`` and
    the sha256 of their ids and arrays, so a result records exactly which
    numbers it was computed from.
    """
    digest = hashlib.sha256()
    digest.update("\0".join(features.stimulus_ids).encode())
    for name in sorted(features.layers):
        arr = np.ascontiguousarray(features.layers[name])
        digest.update(f"\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest.update(arr.tobytes())
    provenance = {**dict(features.provenance), "source": "in-memory", "sha256": digest.hexdigest()}
    return Features(features.stimulus_ids, features.layers, provenance)


def save_features(features: Features, path: str | Path) -> Path:
    """Write ``features`` to ``.npz`` (one array per layer + ``stimulus_ids``) atomically.

    The provenance goes beside it as ``<path>.json`` (the npz holds no objects,
    so it loads with ``allow_pickle=False``).
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise input_error(path, "features are written as .npz", "give an --out path ending in .npz")
    if "stimulus_ids" in features.layers:
        raise BrainnetError("features: a layer may not be called 'stimulus_ids'; rename it")
    arrays = {name: np.ascontiguousarray(arr) for name, arr in features.layers.items()}
    atomic_save_npz(path, stimulus_ids=np.array(features.stimulus_ids, dtype=str), **arrays)
    atomic_write_json(path.with_name(path.name + ".json"), dict(features.provenance))
    return path


def load_features(path: str | Path, layer: str | None = None) -> Features:
    """Read a features file (``.npz`` or ``.tsv``).

    Parameters
    ----------
    path : str or Path
        ``.npz`` with ``stimulus_ids`` and one ``(n_stimuli, n_units)`` array
        per layer, or ``.tsv`` with a ``stimulus_id`` column and unit columns.
    layer : str, optional
        Name of the layer a ``.tsv`` holds (default: the file stem).

    A folder, ``.npy`` or ``.hdf5`` is read as THINGSvision output
    (:func:`load_thingsvision`).
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in (".npy", ".hdf5", ".h5"):
        return load_thingsvision(path, layer)
    if not path.is_file():
        raise input_error(path, "features file not found", "check the --features path")
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix == ".npz":
        features = _load_npz(path)
    elif suffix in (".tsv", ".txt"):
        features = _load_tsv(path, layer or path.name.split(".")[0])
    else:
        raise input_error(path, f"unknown features format {suffix!r}", "use .npz or .tsv")
    provenance = dict(features.provenance)
    provenance.update({"source": str(path.resolve()), "sha256": sha256_file(path)})
    return Features(features.stimulus_ids, features.layers, provenance)


def _load_npz(path: Path) -> Features:
    import zipfile

    _refuse_bomb(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise input_error(path, f"not a readable .npz ({type(err).__name__})", "re-create the file with brainnet extract or numpy.savez") from None
    if "stimulus_ids" not in arrays:
        raise input_error(path, "has no 'stimulus_ids' array", "save the ids with the layers: np.savez(path, stimulus_ids=ids, fc7=...)")
    ids = arrays.pop("stimulus_ids")
    if not arrays:
        raise input_error(path, "holds no layer arrays", "save at least one (n_stimuli, n_units) array")
    provenance = _read_sidecar(path.with_name(path.name + ".json"))
    try:
        features = Features(tuple(ids.tolist()), arrays, provenance)
    except BrainnetError as err:
        raise BrainnetError(f"{path}: {err}") from None
    _refuse_constant(features, path)
    return features


def _refuse_bomb(path: Path) -> None:
    """Refuse an ``.npz`` whose members would decompress to more than the available memory.

    The sizes come from the zip directory, so nothing is decompressed to find out.
    """
    import zipfile

    from brainnet._checks import available_memory, format_bytes

    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a zip: np.load gives the "not a readable .npz" error
    have = available_memory()
    total = sum(sizes.values())
    if total > have:
        name = max(sizes, key=sizes.get)
        raise input_error(
            path,
            f"its arrays would take {format_bytes(total)} once decompressed ({name} alone "
            f"{format_bytes(sizes[name])}), more than the {format_bytes(have)} of memory available",
            "check the file (it may be damaged or not features at all), or save fewer units per layer",
        )


def _read_sidecar(sidecar: Path) -> dict:
    """The provenance JSON object beside an ``.npz`` (``{}`` when there is none)."""
    import json

    if not sidecar.exists():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise input_error(sidecar, f"provenance sidecar is not readable JSON ({type(err).__name__})",
                          "delete it or re-create the features with brainnet extract") from None
    if not isinstance(data, dict):
        raise input_error(sidecar, f"provenance sidecar holds a JSON {type(data).__name__}, not an object",
                          "delete it or re-create the features with brainnet extract")
    return data


def _refuse_constant(features: Features, path: Path) -> None:
    """A layer whose every unit is the same for every stimulus carries nothing to compare with the brain."""
    for name, values in features.layers.items():
        if values.shape[0] > 1 and np.all(values.max(axis=0) == values.min(axis=0)):
            raise input_error(
                path,
                f"every unit of layer {name!r} has the same value for all {values.shape[0]} stimuli",
                "check how the features were computed (e.g. a dead layer, or the wrong array saved)",
            )


def _load_tsv(path: Path, layer: str) -> Features:
    import pandas as pd

    try:
        # round_trip: numbers are read exactly as written (the default parser may be 1 ulp off)
        frame = pd.read_csv(path, sep="\t", dtype={"stimulus_id": str}, float_precision="round_trip")
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        raise input_error(path, f"not a readable UTF-8 TSV ({type(err).__name__})", "save it as tab-separated UTF-8 text") from None
    if "stimulus_id" not in frame.columns:
        raise input_error(path, "has no 'stimulus_id' column", "name the id column 'stimulus_id'")
    units = frame.drop(columns="stimulus_id")
    try:
        values = units.to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise input_error(path, "unit columns must be numbers", "remove text columns other than stimulus_id") from None
    try:
        features = Features(tuple(frame["stimulus_id"]), {layer: values}, {"units": list(units.columns)})
    except BrainnetError as err:
        raise BrainnetError(f"{path}: {err}") from None
    _refuse_constant(features, path)
    return features


_THINGSVISION_FIX = "give the folder THINGSvision's save_features wrote (features.npy or features.hdf5 with file_names.txt)"


def load_thingsvision(path: str | Path, layer: str | None = None) -> Features:
    """Features written by THINGSvision's ``save_features`` as one layer.

    THINGSvision writes one matrix per call (one layer), rows in the order
    of ``file_names.txt`` (which its ``ImageDataset`` writes to the same
    folder): ``features.npy``, ``features.hdf5`` (dataset ``features``), or
    row splits ``features_01.npy`` ... / hdf5 datasets ``features_01`` ...
    Arrays with more than 2 dimensions are flattened per image.

    Parameters
    ----------
    path : str or Path
        The output folder, or its ``features.npy``/``features.hdf5``.
    layer : str, optional
        Layer name (default: the folder's name).

    Returns
    -------
    Features
        ``stimulus_id`` = each file name without folder and extension (as
        brainnet names images of a folder).
    """
    import re

    path = Path(path)
    if not path.exists():
        raise input_error(path, "features file not found", "check the --features path")
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise input_error(path, "THINGSvision output not found", _THINGSVISION_FIX)
    names_file = folder / "file_names.txt"
    if not names_file.is_file():
        raise input_error(folder, "has no file_names.txt, so rows cannot be matched to stimuli", _THINGSVISION_FIX)
    ids = [Path(line.strip()).stem for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.is_file():
        candidates = [path]
    else:
        candidates = [folder / "features.npy", folder / "features.hdf5"]
        candidates = [c for c in candidates if c.is_file()] or sorted(
            folder.glob("features_*.npy"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not candidates:
        raise input_error(folder, "holds no features.npy, features.hdf5 or features_NN.npy", _THINGSVISION_FIX)
    matrix = np.vstack([_thingsvision_array(c) for c in candidates]) if len(candidates) > 1 else _thingsvision_array(candidates[0])
    matrix = matrix.reshape(matrix.shape[0], -1)
    if matrix.shape[0] != len(ids):
        raise input_error(folder, f"features have {matrix.shape[0]} rows but file_names.txt lists {len(ids)} files",
                          "use the file_names.txt written with these features")
    provenance = {
        "format": "thingsvision",
        "source": str(folder.resolve()),
        "files": {c.name: sha256_file(c) for c in candidates},
        "file_names_sha256": sha256_file(names_file),
    }
    try:
        return Features(tuple(ids), {layer or folder.name: matrix}, provenance)
    except BrainnetError as err:
        raise BrainnetError(f"{folder}: {err}") from None


def _thingsvision_array(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise input_error(path, f"not a readable .npy ({type(err).__name__})", _THINGSVISION_FIX) from None
    try:
        import h5py
    except ImportError:
        raise input_error(path, "reading .hdf5 needs h5py", "pip install h5py") from None
    try:
        with h5py.File(path, "r") as f:
            if "features" in f:
                return np.asarray(f["features"])
            splits = sorted((k for k in f if k.startswith("features_")), key=lambda k: int(k.split("_")[-1]))
            if not splits:
                raise input_error(path, "has no 'features' dataset", _THINGSVISION_FIX)
            return np.vstack([np.asarray(f[k]) for k in splits])
    except OSError as err:
        raise input_error(path, f"not a readable HDF5 file ({type(err).__name__})", _THINGSVISION_FIX) from None
