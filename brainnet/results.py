"""Atomic result writing and provenance.

Every file brainnet writes goes through this module: it is written to a
temporary name in the destination folder, flushed, fsynced and renamed, so a
crash leaves the previous file or nothing, never half a file.

A result folder (:class:`ResultDir`) records who made it: a ``run.json``
written when the run starts (fingerprint of parameters, weights, data, seed,
version) and ``summary.json`` written last, whose ``complete`` flag says the
run finished. Re-running into a folder made with different parameters is
refused instead of silently mixing results.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from brainnet.errors import BrainnetError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npz",
    "atomic_write_tsv",
    "atomic_write_nifti",
    "sha256_file",
    "sha256_bytes",
    "brainnet_version",
    "make_provenance",
    "file_record",
    "fingerprint",
    "ResultDir",
]


def brainnet_version() -> str:
    """The installed brainnet version."""
    from brainnet import __version__

    return __version__


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Use this for writers that insist on a file name (nibabel, numpy). The
    temporary name keeps ``suffix`` so such writers pick the right format.
    On any exception the temporary file is removed and ``path`` is untouched.
    """
    from brainnet._checks import write_error

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    except OSError as err:
        raise write_error(path, err) from None
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; results should be as readable as any file the user creates.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)
        except OSError as err:  # disk full, file size limit, read-only: one line, and no half file
            raise write_error(path, err) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _clean_floats(obj: Any) -> Any:
    # JSON has no NaN/Inf: write null so every JSON reader can parse the file.
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean_floats(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean_floats(obj.tolist())
    return obj


def read_json(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN/Inf become null) atomically."""
    text = json.dumps(_clean_floats(obj), indent=2, default=_json_default, sort_keys=False)
    return atomic_write_text(path, text + "\n")


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Save arrays to a compressed ``.npz`` atomically (no pickled objects)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_tsv(path: str | Path, frame: Any) -> Path:
    """Write a pandas DataFrame as TSV (no index) atomically."""
    text = frame.to_csv(sep="\t", index=False, lineterminator="\n", na_rep="n/a")
    return atomic_write_text(path, text)


def atomic_write_nifti(path: str | Path, img: Any) -> Path:
    """Write a nibabel image atomically; ``.nii.gz`` paths are compressed."""
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    with atomic_path(path, suffix=suffix) as tmp:
        img.to_filename(str(tmp))
    return Path(path)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict[str, Any]:
    """``{"path", "sha256", "size"}`` of a file, for provenance."""
    path = Path(path)
    return {"path": str(path.resolve()), "sha256": sha256_file(path), "size": path.stat().st_size}


def make_provenance(
    *,
    weights: str | None = None,
    features: Any = None,
    study: Any = None,
    mask: Any = None,
    seed: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance record every brainnet result carries.

    Parameters
    ----------
    weights : str
        ``sha256:<hex>`` of the weights file, or ``untrained-seed<N>``.
    features, study, mask : dict or str, optional
        Descriptions (paths and checksums) of the inputs.
    seed : int, optional
        The random seed of the analysis.
    parameters : dict, optional
        Every parameter that changes the result.
    **extra
        Further entries (e.g. ``preprocessing``).
    """
    import torch

    record = {
        "brainnet_version": brainnet_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "weights": weights,
        "features": features,
        "study": study,
        "mask": mask,
        "seed": seed,
        "parameters": dict(parameters or {}),
        "software": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
    }
    record.update(extra)
    return record


def fingerprint(provenance: Mapping[str, Any]) -> str:
    """A hash of what determines a result: provenance minus time and software."""
    keep = {k: v for k, v in provenance.items() if k not in ("created", "software")}
    text = json.dumps(_clean_floats(keep), sort_keys=True, default=_json_default)
    return sha256_bytes(text.encode("utf-8"))


def _changed_file(old: Any, new: Any) -> str | None:
    """The first input file whose content differs between two provenance records, or None.

    An input file is recorded as a mapping with ``sha256`` and ``path`` (or
    ``source``), or as a study's ``files`` (relative path -> sha256) under its
    ``path``; same path, other checksum means the file was changed in place.
    """
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None
    where = old.get("path") or old.get("source")
    if where and where == (new.get("path") or new.get("source")):
        if "sha256" in old and "sha256" in new and old["sha256"] != new["sha256"]:
            return str(where)
        before, after = old.get("files"), new.get("files")
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            for rel, sha in after.items():
                if rel in before and before[rel] != sha:
                    return str(Path(where) / rel)
    for key, value in new.items():
        found = _changed_file(old.get(key), value)
        if found:
            return found
    return None


def result_path(out: str | Path, *parts: str) -> Path:
    """``out / parts...``, refused if a part (a subject label, a layer name ...) would leave ``out``."""
    from brainnet._paths import inside

    return inside(out, "/".join(parts), "--out", what="results folder")


class removed_on_refusal:  # noqa: N801 - used like a function: ``with removed_on_refusal(path):``
    """Remove what the ``with`` block added at ``path`` if it ends in a user error.

    ``path`` is a folder or a file. What is new is decided when this object
    is made, so make it before the :class:`ResultDir`: a refusal found only
    once the analysis runs then leaves nothing behind. A folder that existed
    before (a run to resume) is kept with the files it had; only the files and
    folders added since are removed.
    """

    _MAX_LISTED = 20000  # a huge existing folder is not listed (its new files are then kept)

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        self.new = [p for p in (path, *path.parents) if not p.exists()]
        self.before: set[str] | None = None
        if not self.new and path.is_dir():
            self.before = _listing(path, self._MAX_LISTED)

    def __enter__(self) -> removed_on_refusal:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or not issubclass(exc_type, BrainnetError):
            return False
        if self.new:
            top = self.new[-1]
            if top.is_dir() and not top.is_symlink():
                shutil.rmtree(top, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    top.unlink()
        elif self.before is not None:
            after = _listing(self.path, self._MAX_LISTED) or set()
            added = sorted(after - self.before)
            for rel in added:  # parents sort before their contents: remove the topmost new entries
                if os.path.dirname(rel) in added:
                    continue
                target = self.path / rel
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        target.unlink()
        return False


def _listing(folder: Path, limit: int) -> set[str] | None:
    """Relative paths of everything under ``folder``; None past ``limit`` entries."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        for name in (*dirnames, *filenames):
            found.add(name if rel == "." else os.path.join(rel, name))
        if len(found) > limit:
            return None
    return found


class ResultDir:
    """A result folder that knows what produced it and whether it is complete.

    Parameters
    ----------
    path : str or Path
        The folder (created if needed).
    provenance : dict
        From :func:`make_provenance`.
    overwrite : bool
        Replace a folder made with other parameters instead of refusing.

    Notes
    -----
    ``run.json`` holds the provenance and its fingerprint; it is written on
    entry. Reopening a folder with the same fingerprint resumes it (the
    checkpoints of long runs live in ``checkpoints/``); a different
    fingerprint raises :class:`~brainnet.errors.BrainnetError` unless
    ``overwrite``. :meth:`finish` writes ``summary.json`` with
    ``"complete": true`` last.
    """

    def __init__(self, path: str | Path, provenance: Mapping[str, Any], overwrite: bool = False):
        self.path = Path(path)
        self.provenance = dict(provenance)
        self.fingerprint = fingerprint(self.provenance)
        run_file = self.path / "run.json"
        if run_file.exists():
            stored = read_json(run_file)
            if stored.get("fingerprint") != self.fingerprint:
                if not overwrite:
                    changed = _changed_file(stored.get("provenance"), self.provenance)
                    since = f" ({changed} has changed since)" if changed else ""
                    raise BrainnetError(
                        f"{self.path}: holds results made with other parameters, weights or data{since}; "
                        "choose another --out folder or pass --overwrite"
                    )
                shutil.rmtree(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            from brainnet._checks import write_error

            raise write_error(self.path, err) from None
        atomic_write_json(run_file, {"fingerprint": self.fingerprint, "provenance": self.provenance})

    @property
    def checkpoint_dir(self) -> Path:
        """Folder for checkpoints of long runs (removed by :meth:`finish`)."""
        path = self.path / "checkpoints"
        path.mkdir(exist_ok=True)
        return path

    def file(self, name: str) -> Path:
        """Path of a file inside the folder."""
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_json(self.file(name), obj)

    def write_tsv(self, name: str, frame: Any) -> Path:
        return atomic_write_tsv(self.file(name), frame)

    def write_nifti(self, name: str, img: Any) -> Path:
        """Write a NIfTI image; a CIFTI-2 surface map goes to ``<stem>.dscalar.nii`` instead."""
        if type(img).__name__ == "Cifti2Image":
            name = name.removesuffix(".gz").removesuffix(".nii") + ".dscalar.nii"
        return atomic_write_nifti(self.file(name), img)

    def write_npz(self, name: str, **arrays: np.ndarray) -> Path:
        return atomic_save_npz(self.file(name), **arrays)

    def write_with(self, name: str, writer: Callable[[IO[bytes]], None]) -> Path:
        """Write through ``writer(fh)`` into a binary file handle, atomically."""
        buf = io.BytesIO()
        writer(buf)
        return atomic_write_bytes(self.file(name), buf.getvalue())

    @property
    def complete(self) -> bool:
        """True when :meth:`finish` has run for this fingerprint."""
        data = read_json(self.file("summary.json"))
        return bool(data.get("complete")) and data.get("fingerprint") == self.fingerprint

    def finish(self, summary: Mapping[str, Any]) -> Path:
        """Write ``summary.json`` (with provenance and ``complete: true``) last."""
        record = dict(summary)
        record["provenance"] = self.provenance
        record["fingerprint"] = self.fingerprint
        record["complete"] = True
        out = self.write_json("summary.json", record)
        ckpt = self.path / "checkpoints"
        if ckpt.exists():
            shutil.rmtree(ckpt)
        return out
