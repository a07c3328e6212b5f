"""The surface every result record shares.

Every record has ``summary`` (a dict of its headline numbers), ``table`` (a
DataFrame), ``write(folder)`` and ``read(folder)`` (a lossless round trip),
``plot()`` (matplotlib figures, the main one first), a short ``repr`` and an
HTML view for notebooks (the summary table and the main figure).

A record's arrays (nulls of 10,000 permutations, maps of 50,000 voxels) are
what make it useful and what make a generated dataclass ``repr`` tens of
thousands of characters long; here a record prints its headline numbers and
the shapes of what it holds instead.

``write(folder)`` stores the record's dataclass fields in two files,
``record.json`` (scalars, strings, dicts, lists, table columns of mixed
type, and where each array lives) and ``record.npz`` (every numeric array and
numeric table column, exactly, without pickling), so ``read`` rebuilds an
equal record. Records that also write a documented folder layout (the TSV
and NIfTI files of ``brainnet encode`` and the others) keep doing so when
given a :class:`~brainnet.results.ResultDir`.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import importlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_REPR = 1000
#: Largest notebook HTML view (characters): the embedded figure is shrunk to fit.
MAX_HTML = 19_000
#: File names of the self-describing form written by :meth:`Record.write`.
RECORD_JSON, RECORD_NPZ = "record.json", "record.npz"


class Summary(dict):
    """A record's summary: a dict that can also be called.

    Calling it with no argument returns itself (records whose ``summary`` used
    to be a method keep working); records with one summary per layer pass the
    layer (``rsa.summary("fc8")``).
    """

    def __init__(self, data: dict[str, Any], per_layer: Any = None):
        super().__init__(data)
        self._per_layer = per_layer

    def __call__(self, layer: str | None = None) -> dict[str, Any]:
        if layer is None:
            return self
        if self._per_layer is None:
            raise TypeError(f"this summary has no per-layer entries (asked for layer {layer!r})")
        return self._per_layer(layer)


class Record:
    """Mixin of every result record: ``repr`` under :data:`MAX_REPR` characters and ``_repr_html_``.

    Subclasses are dataclasses declared with ``repr=False``. Each has a
    ``summary`` (dict) and a ``table`` (DataFrame), as fields or properties
    (not defined here: a property on this mixin would become the default of a
    subclass's field of the same name), and overrides :meth:`plot`; they may
    override :meth:`_headline` (the scalar numbers worth showing, default: the
    scalars of ``summary``).
    """

    # -- the shared surface -------------------------------------------------
    def plot(self) -> list[Any]:
        """Matplotlib figures of the record, the main figure first; records override this."""
        return []

    def write(self, folder: str | Path) -> Path:
        """Write the record into ``folder`` (``record.json`` and ``record.npz``); return the folder.

        ``type(self).read(folder)`` gives back a record with an equal
        ``summary``, ``table`` and arrays.
        """
        return _write_record(self, folder)

    @classmethod
    def read(cls, folder: str | Path) -> Any:
        """The record written into ``folder`` by :meth:`write`.

        Raises
        ------
        BrainnetError
            When ``folder`` holds no record of this type.
        """
        return _read_record(cls, folder)

    def _headline(self) -> dict[str, Any]:
        summary = getattr(self, "summary", None)
        summary = summary() if callable(summary) else summary
        if summary is None:  # a record without a summary shows its scalar attributes
            summary = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {k: v for k, v in summary.items() if _is_scalar(v)}

    def _contents(self) -> dict[str, str]:
        """Non-scalar attributes by name, each as a short description (shape, length)."""
        out = {}
        for name, value in vars(self).items():
            if name.startswith("_") or name in ("summary", "provenance") or _is_scalar(value):
                continue
            out[name] = _describe(value)
        return out

    def __repr__(self) -> str:
        items = [f"{k}={_fmt(v)}" for k, v in self._headline().items()]
        items += [f"{k}: {v}" for k, v in self._contents().items()]
        text = f"{type(self).__name__}({', '.join(items)})"
        return text if len(text) < MAX_REPR else text[: MAX_REPR - 6] + " ...)"

    def _repr_html_(self) -> str:
        """The summary table and the main figure (an embedded PNG); the table alone if plotting fails."""
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in {**self._headline(), **self._contents()}.items()
        )
        head = f"<div><strong>{html.escape(type(self).__name__)}</strong><table>{rows}</table>"
        image = _main_figure_png(self, MAX_HTML - len(head) - 200)
        img = f"<img alt='main figure' src='data:image/png;base64,{image}'/>" if image else ""
        return f"{head}{img}</div>"


def _main_figure_png(record: Record, budget: int) -> str | None:
    """The record's main figure as base64 PNG text of at most ``budget`` characters, or None.

    A notebook view must never fail: any error while plotting gives None (the
    table is shown alone). The figure is drawn once and saved at decreasing
    resolution until it fits.
    """
    import warnings

    try:
        import matplotlib.pyplot as plt

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            figures = record.plot()
    except Exception:  # noqa: BLE001 - a notebook view falls back to the table
        return None
    try:
        if not figures:
            return None
        fig = figures[0]
        width, height = fig.get_size_inches()
        scale = min(1.0, 4.0 / max(width, 1e-9), 3.0 / max(height, 1e-9))
        fig.set_size_inches(width * scale, height * scale)
        for dpi in (60, 45, 32, 24):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi)
            text = base64.b64encode(buf.getvalue()).decode("ascii")
            if len(text) <= budget:
                return text
        return None
    except Exception:  # noqa: BLE001
        return None
    finally:
        for fig in figures or []:
            plt.close(fig)


# -- the self-describing form written by Record.write ------------------------


def _write_record(record: Record, folder: str | Path) -> Path:
    from brainnet.results import atomic_save_npz, atomic_write_text

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from brainnet._checks import write_error

        raise write_error(folder, err) from None
    arrays: dict[str, np.ndarray] = {}
    fields = {
        f.name: _encode(getattr(record, f.name), arrays, f.name)
        for f in dataclasses.fields(record)
        if f.init
    }
    doc = {"record": f"{type(record).__module__}:{type(record).__qualname__}", "fields": fields}
    # arrays first, the JSON naming them last: a folder with record.json is complete
    atomic_save_npz(folder / RECORD_NPZ, **arrays)
    atomic_write_text(folder / RECORD_JSON, json.dumps(doc, indent=1) + "\n")
    return folder


def _read_record(cls: type, folder: str | Path) -> Any:
    from brainnet.errors import BrainnetError

    folder = Path(folder)
    try:
        doc = json.loads((folder / RECORD_JSON).read_text(encoding="utf-8"))
        with np.load(folder / RECORD_NPZ, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise BrainnetError(
            f"{folder}: holds no readable {cls.__name__} ({RECORD_JSON} and {RECORD_NPZ}: "
            f"{type(err).__name__}); pass a folder written by {cls.__name__}.write"
        ) from None
    name = f"{cls.__module__}:{cls.__qualname__}"
    if not isinstance(doc, dict):
        doc = {"record": None}
    if doc.get("record") != name:
        raise BrainnetError(
            f"{folder}: holds a {str(doc.get('record')).rpartition(':')[2]}, not a {cls.__name__}; "
            f"read it with that class"
        )
    try:
        return cls(**{k: _decode(v, arrays) for k, v in doc["fields"].items()})
    except (KeyError, TypeError, ValueError, AttributeError, ImportError) as err:
        raise BrainnetError(
            f"{folder / RECORD_JSON}: does not describe a {cls.__name__} ({type(err).__name__}: {err}); "
            f"write the record again with {cls.__name__}.write"
        ) from None


def _encode(value: Any, arrays: dict[str, np.ndarray], key: str) -> Any:
    """``value`` as JSON, its arrays moved into ``arrays`` under keys derived from ``key``."""
    import pandas as pd

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return {"__float__": repr(float(value))}  # NaN and infinities survive
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return {"__objects__": [_encode(v, arrays, f"{key}.{i}") for i, v in enumerate(value.tolist())],
                    "shape": list(value.shape)}
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, pd.DataFrame):
        return {"__frame__": _encode_frame(value, arrays, key)}
    if isinstance(value, pd.Series):
        return {"__series__": _encode_frame(value.to_frame(), arrays, key)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, arrays, f"{key}.k{i}"), _encode(v, arrays, f"{key}.{i}")]
                             for i, (k, v) in enumerate(value.items())]}
    if dataclasses.is_dataclass(value) and type(value).__module__.startswith("brainnet."):
        return {
            "__dataclass__": f"{type(value).__module__}:{type(value).__qualname__}",
            "fields": {f.name: _encode(getattr(value, f.name), arrays, f"{key}.{f.name}")
                       for f in dataclasses.fields(value) if f.init},
        }
    if hasattr(value, "affine") and hasattr(value, "dataobj"):  # a nibabel image
        arrays[f"{key}.data"] = np.asarray(value.dataobj)
        arrays[f"{key}.affine"] = np.asarray(value.affine)
        return {"__nifti__": key}
    if type(value).__name__ == "Cifti2Image":  # a surface map: its header axes are the vertex sets
        arrays[key] = np.frombuffer(value.to_bytes(), dtype=np.uint8)
        return {"__cifti__": key}
    raise TypeError(f"{key}: a {type(value).__name__} cannot be written into a record")


def _encode_frame(frame: Any, arrays: dict[str, np.ndarray], key: str) -> dict[str, Any]:
    import pandas as pd

    def column(values: Any, name: str) -> Any:
        if isinstance(values.dtype, pd.CategoricalDtype):
            return {"categorical": [_encode(v, arrays, name) for v in values.astype(object).tolist()]}
        arr = np.asarray(values)
        if arr.dtype.kind in "biufcmM":
            arrays[name] = arr
            return {"__array__": name}
        return [_encode(v, arrays, f"{name}.{i}") for i, v in enumerate(arr.tolist())]

    index = None if isinstance(frame.index, pd.RangeIndex) and frame.index.equals(
        pd.RangeIndex(len(frame))) else column(frame.index, f"{key}/index")
    return {
        "columns": [_encode(c, arrays, f"{key}/name{i}") for i, c in enumerate(frame.columns)],
        "data": [column(frame.iloc[:, i], f"{key}/{i}") for i in range(frame.shape[1])],
        "index": index,
        "index_name": _encode(frame.index.name, arrays, f"{key}/index_name"),
        "columns_name": _encode(frame.columns.name, arrays, f"{key}/columns_name"),
        "n_rows": len(frame),
    }


def _decode_frame(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    def column(value: Any) -> Any:
        if isinstance(value, dict) and "categorical" in value:
            return pd.Categorical([_decode(v, arrays) for v in value["categorical"]])
        if isinstance(value, dict) and "__array__" in value:
            return arrays[value["__array__"]]
        return np.array([_decode(v, arrays) for v in value] + [None], dtype=object)[:-1]

    columns = [_decode(c, arrays) for c in doc["columns"]]
    data = {i: column(v) for i, v in enumerate(doc["data"])}
    index = None if doc["index"] is None else pd.Index(column(doc["index"]), name=_decode(doc["index_name"], arrays))
    frame = pd.DataFrame(data, index=index if index is not None else pd.RangeIndex(doc["n_rows"]))
    frame.columns = pd.Index(columns, name=_decode(doc.get("columns_name"), arrays))
    return frame


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__path__" in value:
        return Path(value["__path__"])
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__objects__" in value:
        items = [_decode(v, arrays) for v in value["__objects__"]]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(value["shape"])
    if "__frame__" in value:
        return _decode_frame(value["__frame__"], arrays)
    if "__series__" in value:
        return _decode_frame(value["__series__"], arrays).iloc[:, 0]
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__dict__"]}
    if "__dataclass__" in value:
        module, _, qualname = value["__dataclass__"].partition(":")
        if not module.startswith("brainnet."):
            raise TypeError(f"{value['__dataclass__']}: only brainnet records are read")
        cls = getattr(importlib.import_module(module), qualname)
        return cls(**{k: _decode(v, arrays) for k, v in value["fields"].items()})
    if "__nifti__" in value:
        import nibabel as nib

        key = value["__nifti__"]
        return nib.Nifti1Image(arrays[f"{key}.data"], arrays[f"{key}.affine"])
    if "__cifti__" in value:
        import nibabel as nib

        return nib.Cifti2Image.from_bytes(arrays[value["__cifti__"]].tobytes())
    raise TypeError(f"unknown record entry {sorted(value)}")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float | np.integer | np.floating)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} {tuple(shape)}"
    if isinstance(value, dict | list | tuple):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__
