"""Fetch the parts of an OpenNeuro dataset that a brainnet workflow needs, verified.

:func:`fetch_dataset` reads the dataset's manifest
(:mod:`brainnet.datasets.manifests`), selects the files of the requested
parts and subjects, and downloads each one into a BIDS folder with
:func:`brainnet.datasets.download.download` (pooch underneath: temporary
name, size check, atomic rename). The manifests carry git-annex checksums,
which are md5 for most OpenNeuro datasets, so md5 is verified here before the
file is moved to its final name; nothing unverified is ever left at a
destination path.

A second run resumes: files already present and verified are skipped (a
small record in ``<root>/.brainnet/verified.json`` of size, modification
time and checksum avoids hashing hundreds of gigabytes again), partial or
corrupt files are downloaded again. openneuro-py is not used for the transfer
because it verifies nothing and cannot be pointed at a mirror for testing;
its include globs are what the manifests' part globs mirror.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainnet.datasets.manifests import (
    DatasetManifest,
    ManifestFile,
    available_datasets,
    load_manifest,
)
from brainnet.errors import BrainnetError, input_error

__all__ = [
    "FetchReport",
    "fetch_dataset",
    "plan_fetch",
    "safe_target",
    "build_image_study",
    "is_dataset_name",
]

_STATE = Path(".brainnet") / "verified.json"
_BAR_ABOVE = 32 << 20  # per-file progress bars only for large files; many small files get one bar


@dataclass
class FetchReport:
    """What :func:`fetch_dataset` did.

    Attributes
    ----------
    accession, version : str
        The dataset.
    root : Path
        The BIDS folder the files were written to.
    downloaded : list of str
        Paths (relative to ``root``) downloaded and verified in this run.
    skipped : list of str
        Paths already present and verified, not downloaded again.
    missing : dict
        Path -> reason (``"server answered HTTP 404"``, ``"md5 mismatch ..."``,
        ``"download truncated ..."``) for every selected file that is not
        at ``root`` after the run. Rerunning retries exactly these.
    n_bytes : int
        Bytes downloaded in this run.
    """

    accession: str
    version: str
    root: Path
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    n_bytes: int = 0

    @property
    def complete(self) -> bool:
        """True when every selected file is present and verified."""
        return not self.missing

    def summary(self) -> str:
        """Human-readable lines: counts, then one line per missing file."""
        lines = [
            f"{self.accession} {self.version} -> {self.root}: {len(self.downloaded)} downloaded "
            f"({self.n_bytes / 1e6:.1f} MB), {len(self.skipped)} already present, {len(self.missing)} missing"
        ]
        lines += [f"  missing {path}: {reason}" for path, reason in sorted(self.missing.items())]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accession": self.accession,
            "version": self.version,
            "root": str(self.root),
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "missing": self.missing,
            "n_bytes": self.n_bytes,
            "complete": self.complete,
        }


def _parts_of(manifest: DatasetManifest, what: str | Iterable[str] | None) -> list[str]:
    if what is None:
        parts: list[str] = []
        for wf in manifest.workflows.values():
            parts += [p for p in wf["parts"] if p not in parts]
        return parts
    if isinstance(what, str):
        what = [w.strip() for w in what.split(",") if w.strip()]
    what = list(what)
    if "betas" in what and "betas" not in manifest.parts:
        where = manifest.raw.get("betas") or {}
        if where.get("how") == "external":
            raise BrainnetError(f"--what betas: {manifest.accession}'s single-trial betas are not on OpenNeuro; "
                                f"get them from {where.get('url')} ({where.get('description', '').rstrip('.')})")
        raise BrainnetError(f"--what betas: {manifest.accession} releases no single-trial betas; "
                            "estimate them from the BOLD with brainnet betas")
    return what


def plan_fetch(
    name: str | Path | DatasetManifest,
    *,
    subjects: str | Iterable[str] | None = None,
    what: str | Iterable[str] | None = None,
) -> tuple[DatasetManifest, list[ManifestFile]]:
    """The manifest and the files :func:`fetch_dataset` would fetch (nothing is downloaded)."""
    manifest = name if isinstance(name, DatasetManifest) else load_manifest(name)
    if isinstance(subjects, str):
        subjects = [s.strip() for s in subjects.split(",") if s.strip()]
    return manifest, manifest.files(_parts_of(manifest, what), subjects)


def safe_target(root: Path, relpath: str) -> Path:
    """``root / relpath``, refusing any path that resolves outside ``root``.

    ``relpath`` has already passed the manifest's path checks (no ``..``, not
    absolute); the one path policy (:func:`brainnet._paths.inside`) also
    catches symbolic links inside ``root`` that lead out.
    """
    from brainnet._paths import inside

    return inside(root, relpath, root / relpath, what="file", link_fix="remove the link or choose another data folder")


def _hash(path: Path, algo: str) -> str:
    digest = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _problem(path: Path, entry: ManifestFile) -> str | None:
    """None when ``path`` has the manifest's size and checksum, else what is wrong."""
    got = path.stat().st_size
    if got != entry.size:
        kind = "truncated" if got < entry.size else "too large"
        return f"file {kind}: {got} bytes, expected {entry.size}"
    if entry.checksum is not None:
        actual = _hash(path, entry.algo)
        if actual != entry.checksum:
            return f"{entry.algo} mismatch: got {actual}, expected {entry.checksum}"
    return None


class _VerifiedState:
    """Remembers which files were verified, keyed by size, mtime and expected checksum."""

    def __init__(self, root: Path):
        self.path = root / _STATE
        self.entries: dict[str, list[Any]] = {}
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.entries = dict(json.loads(self.path.read_text(encoding="utf-8")))

    def _key(self, target: Path, entry: ManifestFile) -> list[Any]:
        st = target.stat()
        return [st.st_size, st.st_mtime_ns, entry.algo, entry.checksum]

    def known_good(self, target: Path, entry: ManifestFile) -> bool:
        return self.entries.get(entry.path) == self._key(target, entry)

    def remember(self, target: Path, entry: ManifestFile) -> None:
        self.entries[entry.path] = self._key(target, entry)

    def forget(self, entry: ManifestFile) -> None:
        self.entries.pop(entry.path, None)

    def save(self) -> None:
        from brainnet.results import atomic_write_json

        atomic_write_json(self.path, self.entries)


def _reason(err: BrainnetError, url: str) -> str:
    text = str(err).removeprefix(f"{url}: ")
    return text.split("; ")[0]


def _fetch_one(url: str, target: Path, entry: ManifestFile, progress: bool, timeout: float) -> None:
    """Download ``url`` to ``target`` verified; raise BrainnetError, leaving nothing, on failure."""
    from brainnet.datasets.download import download

    sha256 = entry.checksum if entry.algo == "sha256" else None
    if entry.algo != "md5":
        download(url, target, sha256=sha256, size=entry.size, progress=progress, timeout=timeout)
        return
    staging = target.with_name(f".{target.name}.brainnet-md5")
    try:
        download(url, staging, size=entry.size, progress=progress, timeout=timeout)
        problem = _problem(staging, entry)
        if problem is not None:
            raise input_error(url, problem, f"retry the download; nothing was saved at {target}")
        os.replace(staging, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()


def fetch_dataset(
    name: str | Path,
    dest: str | Path,
    *,
    subjects: str | Iterable[str] | None = None,
    what: str | Iterable[str] | None = None,
    mirror: str | None = None,
    progress: bool = True,
    strict: bool = False,
    timeout: float = 60.0,
) -> FetchReport:
    """Download the files of ``what`` for ``subjects`` into the BIDS folder ``dest``.

    Parameters
    ----------
    name : str or Path
        Accession with a shipped manifest (``"ds002837"``) or a manifest file.
    dest : str or Path
        Data folder (the dataset's BIDS root); created if needed.
    subjects : str or iterable of str, optional
        Subject labels, with or without ``sub-`` (comma-separated string
        accepted). Default: all. Dataset-level files are always fetched.
    what : str or iterable of str, optional
        Parts among ``metadata``, ``events``, ``bold``, ``derivatives``,
        ``stimuli`` (comma-separated string accepted). Default: the parts
        the dataset's brainnet workflows use.
    mirror : str, optional
        Base URL (or template with ``{path}``) to download from instead of
        OpenNeuro, e.g. a local server or an institutional copy.
    progress : bool
        Show progress bars.
    strict : bool
        Raise :class:`~brainnet.errors.BrainnetError` at the end if any
        file could not be fetched, instead of only reporting it.
    timeout : float
        Seconds to wait for the server, per request.

    Returns
    -------
    FetchReport
        Downloaded, skipped and missing files. Files that fail (HTTP error,
        truncated, wrong size or checksum) leave nothing at their
        destination; rerun to retry them.
    """
    manifest, files = plan_fetch(name, subjects=subjects, what=what)
    root = Path(dest).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    report = FetchReport(manifest.accession, manifest.version, root)
    targets = [(entry, safe_target(root, entry.path)) for entry in files]  # refuse before downloading anything
    state = _VerifiedState(root)
    bar = _overall_bar(len(targets), progress)
    try:
        for entry, target in targets:
            _process(manifest, entry, target, state, report, mirror, progress, timeout)
            bar.update(1)
    finally:
        bar.close()
        state.save()
    if strict and report.missing:
        first, reason = sorted(report.missing.items())[0]
        raise input_error(
            root,
            f"{len(report.missing)} of {len(files)} files of {manifest.accession} could not be fetched "
            f"(first: {first}: {reason})",
            "rerun the same command to retry them, or check --mirror",
        )
    return report


def _process(manifest, entry, target, state, report, mirror, progress, timeout) -> None:
    if target.is_file():
        if state.known_good(target, entry) or _problem(target, entry) is None:
            state.remember(target, entry)
            report.skipped.append(entry.path)
            return
        target.unlink()  # partial or corrupt: fetch again
    state.forget(entry)
    url = manifest.url(entry.path, mirror)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_one(url, target, entry, progress and entry.size > _BAR_ABOVE, timeout)
    except BrainnetError as err:
        report.missing[entry.path] = _reason(err, url)
        return
    state.remember(target, entry)
    report.downloaded.append(entry.path)
    report.n_bytes += entry.size


def _overall_bar(total: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="files", disable=not progress or total < 2)


# --------------------------------------------------------------------------- image workflow


def build_image_study(
    bids_dir: str | Path,
    out: str | Path,
    *,
    dataset: str | Path = "ds004496",
    subjects: str | Iterable[str] | None = None,
    task: str | None = None,
    derivatives: str | Path | None = "fmriprep",
    method: str = "glmsingle",
    confounds: str = "motion24",
    mask: Any = None,
    noise_model: str = "ar1",
    overwrite: bool = False,
    n_jobs: int = 1,
) -> Path:
    """Turn a fetched image dataset (NOD first) into a brainnet study folder.

    For each subject, :func:`brainnet.betas.write_betas_study` estimates
    single-trial betas from the dataset's runs of ``task`` (default: the
    manifest's primary task, ``imagenet`` for NOD) with the stimulus column
    the manifest names (``stim_file``), and copies the dataset's own images
    from ``<bids>/stimuli/`` into the study, so EmoNet features are extracted
    from them by ``brainnet encode`` / ``decode`` / ``rsa --study out``.

    Parameters
    ----------
    bids_dir : str or Path
        The dataset root, as written by :func:`fetch_dataset` (needs the
        ``metadata``, ``events``, ``derivatives`` and ``stimuli`` parts).
    out : str or Path
        Study folder to create or extend.
    dataset : str or Path
        Accession or manifest (for the task, stimulus column and subjects).
    subjects : str or iterable of str, optional
        Default: every ``sub-*`` folder of ``bids_dir`` that the manifest lists.
    task, derivatives, method, confounds, mask, noise_model, overwrite, n_jobs
        Passed to :func:`brainnet.betas.write_betas_study`.

    Returns
    -------
    Path
        ``out``.
    """
    from brainnet.betas import write_betas_study

    manifest = dataset if isinstance(dataset, DatasetManifest) else load_manifest(dataset)
    bids = Path(bids_dir).expanduser()
    if not bids.is_dir():
        raise input_error(bids, "dataset folder not found", f"fetch it first: brainnet fetch {manifest.accession} --dest {bids}")
    if subjects is None:
        present = {p.name.removeprefix("sub-") for p in bids.glob("sub-*") if p.is_dir()}
        labels = [s for s in manifest.subjects if s in present]
        if not labels:
            raise input_error(bids, f"holds no subject folder of {manifest.accession}", f"fetch some: brainnet fetch {manifest.accession} --subjects 01 --dest {bids}")
    else:
        labels = [s.strip() for s in subjects.split(",")] if isinstance(subjects, str) else list(subjects)
        manifest.files(["metadata"], labels)  # validates the labels with a one-line error
        labels = [str(s).removeprefix("sub-") for s in labels]
    task = task or manifest.raw.get("primary_task") or manifest.tasks[0]
    for label in labels:
        write_betas_study(
            bids, label, task, out=out, derivatives=derivatives, method=method, confounds=confounds,
            mask=mask, stimulus_column=manifest.stimuli.get("events_column"), noise_model=noise_model,
            overwrite=overwrite, n_jobs=n_jobs,
        )
    return Path(out)


def is_dataset_name(name: str) -> bool:
    """True for an accession with a shipped manifest or an existing manifest file."""
    return name in available_datasets() or (name.endswith((".json", ".json.gz")) and Path(name).is_file())
