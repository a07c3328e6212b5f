"""Dataset manifests: what brainnet needs from each public dataset, with checksums.

A manifest (``data_manifests/datasets/<accession>.json``, gzipped when it is
larger than 1 MB) records a dataset's accession, version, licence, tasks and
subjects, how its stimuli are obtained, where its files are downloaded from,
and, per *part* (``metadata``, ``events``, ``bold``, ``derivatives``,
``stimuli``, ``betas``), where the dataset's released single-trial betas are
(``betas``: in a part, or outside OpenNeuro with a URL), the glob patterns brainnet needs and every matching file as
``[path, size, algo, checksum]``. Which parts each brainnet workflow uses is
listed under ``workflows``.

Manifests are generated, not hand-edited: the file tables in
``/work/shared/openneuro/<accession>_files.tsv.gz`` (size and git-annex
checksum of every file of one dataset version) are filtered by the curated
part globs in :data:`_SPECS`::

    python -m brainnet.datasets.manifests build /work/shared/openneuro data_manifests/datasets

The parser (:func:`parse_manifest`) validates by hand rather than with
``jsonschema`` because jsonschema is not a runtime dependency of brainnet and
its messages span several lines; ``data_manifests/schema/dataset.schema.json``
states the same rules for other tools, and the test suite checks every shipped
manifest against it.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainnet.errors import BrainnetError, input_error

__all__ = [
    "PARTS",
    "ManifestFile",
    "DatasetManifest",
    "data_manifest_path",
    "manifest_dir",
    "available_datasets",
    "load_manifest",
    "parse_manifest",
    "check_relative_path",
    "glob_to_regex",
    "build_manifest",
]

SCHEMA_VERSION = 1
PARTS = ("metadata", "events", "bold", "derivatives", "stimuli", "betas")
_ALGOS = {"md5": 32, "sha256": 64, "git": 0}
_HEX = re.compile(r"^[0-9a-f]+$")
_SUBJECT = re.compile(r"(?:^|/)sub-([A-Za-z0-9]+)(?=[/_]|$)")
_DEFAULT_URL = "https://openneuro.org/crn/datasets/{accession}/snapshots/{version}/files/{colon_path}"
_GZIP_ABOVE = 1 << 20


def data_manifest_path(*parts: str) -> Path:
    """A file or folder of the shipped ``data_manifests/`` (e.g. ``"weights.json"``).

    An installed wheel holds them in ``brainnet/data/manifests/`` (pyproject's
    ``package-dir`` maps the repository's ``data_manifests/`` there); a source
    checkout or editable install reads ``data_manifests/`` at the repository root.
    """
    package = Path(__file__).resolve().parents[1]
    installed = package / "data" / "manifests"
    root = installed if installed.is_dir() else package.parent / "data_manifests"
    return root.joinpath(*parts)


def manifest_dir() -> Path:
    """The folder holding the shipped dataset manifests (``data_manifests/datasets``).

    ``$BRAINNET_MANIFEST_DIR`` overrides it (e.g. a site's own manifests).
    """
    override = os.environ.get("BRAINNET_MANIFEST_DIR")
    if override:
        return Path(override).expanduser()
    return data_manifest_path("datasets")


def available_datasets() -> list[str]:
    """Accessions that have a shipped manifest, sorted."""
    folder = manifest_dir()
    names = {p.name.split(".")[0] for p in folder.glob("ds*.json*")} if folder.is_dir() else set()
    return sorted(names)


@dataclass(frozen=True)
class ManifestFile:
    """One file of a dataset: relative POSIX path, size in bytes and checksum.

    ``algo`` is ``"md5"`` or ``"sha256"`` (from the git-annex key), or
    ``"git"`` for small files kept in git, whose checksum is not published
    (``checksum`` is None; only the size is verified).
    """

    path: str
    size: int
    algo: str
    checksum: str | None

    @property
    def subject(self) -> str | None:
        """Subject label (without ``sub-``) or None for dataset-level files."""
        match = _SUBJECT.search(self.path)
        return match.group(1) if match else None


@dataclass
class DatasetManifest:
    """A parsed, validated dataset manifest (see the module docstring)."""

    accession: str
    version: str
    name: str
    licence: str
    tasks: list[str]
    subjects: list[str]
    parts: dict[str, dict[str, Any]]
    workflows: dict[str, dict[str, Any]]
    stimuli: dict[str, Any]
    download: dict[str, Any]
    tr: float | None = None
    source: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def files(self, what: Iterable[str] | None = None, subjects: Iterable[str] | None = None) -> list[ManifestFile]:
        """Files of the parts ``what`` (default all) for ``subjects`` (default all).

        Dataset-level files (no ``sub-`` in the path) are always included.
        Subject labels may be given with or without ``sub-``; NNDb's labels
        are not zero-padded (``1``, not ``01``), and ``1`` never matches
        ``01``.
        """
        parts = self._check_parts(what)
        wanted = self._check_subjects(subjects)
        seen: dict[str, ManifestFile] = {}
        for part in parts:
            for path, size, algo, checksum in self.parts[part]["files"]:
                entry = ManifestFile(path, size, algo, checksum)
                if wanted is not None and entry.subject is not None and entry.subject not in wanted:
                    continue
                seen.setdefault(path, entry)
        return list(seen.values())

    def _check_parts(self, what: Iterable[str] | None) -> list[str]:
        if what is None:
            return list(self.parts)
        what = [what] if isinstance(what, str) else list(what)
        unknown = [w for w in what if w not in self.parts]
        if unknown:
            raise BrainnetError(
                f"--what {','.join(unknown)}: {self.accession} has no such part; "
                f"choose from {','.join(self.parts)}"
            )
        return what

    def _check_subjects(self, subjects: Iterable[str] | None) -> set[str] | None:
        if subjects is None:
            return None
        subjects = [subjects] if isinstance(subjects, str) else list(subjects)
        labels = {str(s).removeprefix("sub-") for s in subjects}
        unknown = sorted(labels - set(self.subjects))
        if unknown:
            shown = ",".join(self.subjects[:5]) + (",..." if len(self.subjects) > 5 else "")
            raise BrainnetError(
                f"--subjects {','.join(unknown)}: not a subject of {self.accession}; "
                f"its subjects are {shown} (labels as in the dataset, e.g. NNDb's are not zero-padded)"
            )
        return labels

    def url(self, path: str, mirror: str | None = None) -> str:
        """Download address of ``path``: the manifest's template, or ``mirror``.

        ``mirror`` is either a template with ``{path}`` (and optionally
        ``{accession}``, ``{version}``, ``{colon_path}``) or a base URL under
        which the dataset's files sit at their relative paths.
        """
        from urllib.parse import quote

        template = mirror or self.download.get("url_template", _DEFAULT_URL)
        if "{" not in template:
            template = template.rstrip("/") + "/{path}"
        return template.format(
            accession=self.accession,
            version=self.version,
            path=quote(path),
            colon_path=quote(path.replace("/", ":"), safe=":"),
        )


def check_relative_path(path: Any, where: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a dataset, else raise.

    Refuses absolute paths, ``..`` or ``.`` components, backslashes, empty
    components and control characters, so no manifest entry can point
    outside the data folder.
    """
    if not isinstance(path, str) or not path:
        raise input_error(where, f"file path {path!r} is not a non-empty string", "regenerate the manifest")
    bad = (
        path.startswith("/")
        or "\\" in path
        or re.match(r"^[A-Za-z]:", path) is not None
        or any(ord(c) < 32 for c in path)
        or any(part in ("", ".", "..") for part in path.split("/"))
    )
    if bad:
        raise input_error(
            where,
            f"unsafe file path {path!r} (absolute, '..', '.', empty or backslash components)",
            "manifest paths must be relative paths inside the dataset; regenerate the manifest",
        )
    return path


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob: ``*`` and ``?`` stay inside one folder, ``**`` crosses folders."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


# --------------------------------------------------------------------------- parsing


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise input_error(where, f"missing required field {key!r}", "regenerate the manifest with `python -m brainnet.datasets.manifests build`")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise input_error(where, f"field {key!r} must be {names}, got {type(value).__name__}", "regenerate the manifest")
    return value


def _parse_entry(entry: Any, where: str) -> tuple[str, int, str, str | None]:
    if not isinstance(entry, list | tuple) or len(entry) != 4:
        raise input_error(where, f"file entry {str(entry)[:80]!r} is not [path, size, algo, checksum]", "regenerate the manifest")
    path, size, algo, checksum = entry
    check_relative_path(path, where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise input_error(where, f"{path}: size {size!r} is not a non-negative integer", "regenerate the manifest")
    if not isinstance(algo, str) or algo not in _ALGOS:
        raise input_error(where, f"{path}: checksum algorithm {algo!r} is not md5, sha256 or git", "regenerate the manifest")
    if algo == "git":
        if checksum is not None:
            raise input_error(where, f"{path}: a 'git' file has no published checksum but {checksum!r} is given", "use null")
    elif not isinstance(checksum, str) or len(checksum) != _ALGOS[algo] or not _HEX.match(checksum):
        raise input_error(where, f"{path}: {algo} checksum {str(checksum)[:80]!r} is not {_ALGOS[algo]} lowercase hex digits", "regenerate the manifest")
    return path, size, algo, checksum


def _parse_part(name: str, part: Any, where: str) -> dict[str, Any]:
    if name not in PARTS:
        raise input_error(where, f"unknown part {name!r}", f"parts are {', '.join(PARTS)}")
    if not isinstance(part, Mapping):
        raise input_error(where, f"part {name!r} is not an object", "regenerate the manifest")
    globs = _need(part, "globs", list, f"{where} part {name}")
    if not globs or not all(isinstance(g, str) and g for g in globs):
        raise input_error(where, f"part {name!r} needs a non-empty list of glob strings", "regenerate the manifest")
    for g in globs:
        check_relative_path(g.replace("*", "x").replace("?", "x"), f"{where} part {name} glob")
    files = [_parse_entry(e, f"{where} part {name}") for e in _need(part, "files", list, f"{where} part {name}")]
    paths = [f[0] for f in files]
    if len(set(paths)) != len(paths):
        raise input_error(where, f"part {name!r} lists a file twice", "regenerate the manifest")
    regexes = [glob_to_regex(g) for g in globs]
    stray = next((p for p in paths if not any(r.match(p) for r in regexes)), None)
    if stray is not None:
        raise input_error(where, f"part {name!r}: {stray} matches none of its globs", "regenerate the manifest")
    return {"description": str(part.get("description", "")), "globs": list(globs), "files": files}


def parse_manifest(data: Any, source: str | Path = "<manifest>") -> DatasetManifest:
    """Validate a manifest's JSON content and return a :class:`DatasetManifest`.

    Raises
    ------
    BrainnetError
        One line naming ``source`` and what is wrong, for any malformed
        content (never another exception type).
    """
    where = str(source)
    if not isinstance(data, Mapping):
        raise input_error(where, "manifest is not a JSON object", "regenerate the manifest")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise input_error(where, f"schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}", "update brainnet or regenerate the manifest")
    accession = _need(data, "accession", str, where)
    if not re.fullmatch(r"ds\d{6}", accession):
        raise input_error(where, f"accession {accession!r} is not like ds000000", "regenerate the manifest")
    version = _need(data, "version", str, where)
    tasks = _need(data, "tasks", list, where)
    subjects = _need(data, "subjects", list, where)
    for key, values in (("tasks", tasks), ("subjects", subjects)):
        if not all(isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9]+", v) for v in values):
            raise input_error(where, f"{key} must be BIDS labels (letters and digits)", "regenerate the manifest")
    raw_parts = _need(data, "parts", Mapping, where)
    if not raw_parts:
        raise input_error(where, "no parts", "regenerate the manifest")
    parts = {name: _parse_part(name, part, where) for name, part in raw_parts.items()}
    workflows = _need(data, "workflows", Mapping, where)
    for wname, wf in workflows.items():
        wparts = wf.get("parts") if isinstance(wf, Mapping) else None
        if not isinstance(wparts, list) or not all(isinstance(p, str) and p in parts for p in wparts):
            raise input_error(where, f"workflow {wname!r} must list parts among {', '.join(parts)}", "regenerate the manifest")
    download = _need(data, "download", Mapping, where)
    template = download.get("url_template", _DEFAULT_URL)
    if not isinstance(template, str) or "path}" not in template:
        raise input_error(where, "download.url_template must contain {path} or {colon_path}", "regenerate the manifest")
    tr = data.get("tr")
    if tr is not None and (not isinstance(tr, int | float) or isinstance(tr, bool) or not tr > 0):
        raise input_error(where, f"tr {tr!r} is not a positive number of seconds", "regenerate the manifest")
    return DatasetManifest(
        accession=accession,
        version=version,
        name=str(data.get("name", "")),
        licence=_need(data, "licence", str, where),
        tasks=list(tasks),
        subjects=list(subjects),
        parts=parts,
        workflows={k: dict(v) for k, v in workflows.items()},
        stimuli=dict(_need(data, "stimuli", Mapping, where)),
        download=dict(download),
        tr=None if tr is None else float(tr),
        source=dict(data.get("source") or {}),
        raw=dict(data),
    )


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, ValueError) as err:
        raise input_error(path, f"cannot read manifest ({type(err).__name__}: {err})", "regenerate it or pass a valid manifest file") from None


def load_manifest(name_or_path: str | Path) -> DatasetManifest:
    """Load a shipped manifest by accession (``"ds002837"``) or any manifest file."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if not path.is_file():
        folder = manifest_dir()
        candidates = [folder / f"{text}.json", folder / f"{text}.json.gz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise BrainnetError(
                f"{text}: no such dataset manifest; known datasets are "
                f"{', '.join(available_datasets()) or '(none)'}, or pass a manifest .json path"
            )
    stat = path.stat()
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> DatasetManifest:
    # NOD's manifest takes ~1 s to parse; the key includes mtime and size so edits are seen.
    return parse_manifest(_read_json(Path(path)), source=path)


# --------------------------------------------------------------------------- building

_COMMON_META = ["dataset_description.json", "participants.tsv", "participants.json", "README", "CHANGES"]

# Curated knowledge per dataset: which files each part needs, and how stimuli are obtained.
_SPECS: dict[str, dict[str, Any]] = {
    "ds004496": {
        "name": "Natural Object Dataset (NOD)",
        "tr": 2.0,
        "primary_task": "imagenet",
        "parts": {
            "metadata": _COMMON_META + ["task-imagenet_bold.json", "task-imagenet_events.json"],
            "events": ["sub-*/ses-*/func/sub-*_task-imagenet_run-*_events.tsv"],
            "bold": ["sub-*/ses-*/func/sub-*_task-imagenet_run-*_bold.nii.gz", "sub-*/ses-*/func/sub-*_task-imagenet_run-*_bold.json"],
            "derivatives": [
                "derivatives/fmriprep/sub-*/ses-*/func/sub-*_task-imagenet_run-*_space-T1w_desc-preproc_bold.nii.gz",
                "derivatives/fmriprep/sub-*/ses-*/func/sub-*_task-imagenet_run-*_space-T1w_desc-preproc_bold.json",
                "derivatives/fmriprep/sub-*/ses-*/func/sub-*_task-imagenet_run-*_desc-confounds_timeseries.tsv",
            ],
            "stimuli": ["stimuli/imagenet/**"],
            "betas": [
                "derivatives/ciftify/sub-*/results/ses-*_task-imagenet_run-*/*_beta.dscalar.nii",
                "derivatives/ciftify/sub-*/results/ses-*_task-imagenet_run-*/*_label.txt",
                "derivatives/ciftify/sub-*/standard_fsLR_surface/sub-*.aparc.32k_fs_LR.dlabel.nii",
                "derivatives/ciftify/sub-*/standard_fsLR_surface/sub-*.*.midthickness.32k_fs_LR.surf.gii",
                "derivatives/ciftify/sub-*/standard_fsLR_surface/sub-*.*.inflated.32k_fs_LR.surf.gii",
            ],
        },
        "betas": {
            "how": "in_dataset",
            "part": "betas",
            "description": "ciftify GLM betas on fsLR 32k, one dscalar map per trial and a label.txt per run, with each subject's aparc dlabel and meshes; brainnet.study_from_released_betas makes a study of them.",
        },
        "stimuli": {
            "how": "in_dataset",
            "part": "stimuli",
            "events_column": "stim_file",
            "root": "stimuli",
            "description": "ImageNet JPEGs are in the dataset under stimuli/imagenet/; the events column stim_file (e.g. imagenet/n03131574/n03131574_8247.JPEG) is relative to stimuli/.",
        },
        "workflows": {
            "image_encoding": {"parts": ["metadata", "events", "derivatives", "stimuli"], "description": "single-trial betas from fMRIPrep T1w-space BOLD + events -> study; EmoNet features from the dataset's own images"},
        },
    },
    "ds002837": {
        "name": "Naturalistic Neuroimaging Database (NNDb)",
        "tr": 1.0,
        "primary_task": "500daysofsummer",
        "parts": {
            "metadata": _COMMON_META + ["stimuli/README"],
            "bold": ["sub-*/func/sub-*_task-*_run-*_bold.nii.gz", "sub-*/func/sub-*_task-*_run-*_bold.json"],
            "derivatives": [
                "derivatives/sub-*/func/sub-*_task-*_bold_blur_censor.nii.gz",
                "derivatives/sub-*/regressors/sub-*_task-*_censored_timepoints.1D",
            ],
            "stimuli": ["stimuli/task-*_*-annotation.1D"],
        },
        "stimuli": {
            "how": "external",
            "description": "The films are not distributed (only word and face annotations under stimuli/). The Kragel lab's EmoNet fc7 frame features for 500 Days of Summer are on OSF (project r48gc, 500_days_of_summer_fc7_features.mat); download them by hand and pass them to brainnet.naturalistic.",
            "url": "https://osf.io/r48gc/",
            "frame_features": {"500daysofsummer": "500_days_of_summer_fc7_features.mat"},
        },
        "workflows": {
            "naturalistic_encoding": {"parts": ["metadata", "derivatives"], "description": "AFNI blur+censor derivatives in MNI space (sub-<N>, not zero-padded; censored volumes are all-zero) -> frame features convolved with an HRF -> voxelwise ridge with blocked cross-validation"},
        },
    },
    "ds004192": {
        "name": "THINGS-fMRI",
        "tr": 1.5,
        "primary_task": "things",
        "parts": {
            "metadata": _COMMON_META + ["task-things_events.json"],
            "events": ["sub-*/ses-*/func/sub-*_task-things_run-*_events.tsv"],
            "bold": ["sub-*/ses-*/func/sub-*_task-things_run-*_bold.nii.gz", "sub-*/ses-*/func/sub-*_task-things_run-*_bold.json"],
        },
        "stimuli": {
            "how": "external",
            "events_column": "file_path",
            "description": "THINGS images are obtained separately from the THINGS database (events column file_path, e.g. dog/dog_12s.jpg); single-trial betas are on figshare (doi 10.25452/figshare.plus.c.6161151).",
            "url": "https://things-initiative.org/",
        },
        "betas": {
            "how": "external",
            "description": "the figshare collection of the THINGS-fMRI single-trial betas (doi 10.25452/figshare.plus.c.6161151); brainnet has no reader for them yet.",
            "url": "https://doi.org/10.25452/figshare.plus.c.6161151",
        },
        "workflows": {
            "image_encoding": {"parts": ["metadata", "events", "bold"], "description": "raw BOLD + events -> single-trial betas -> study; THINGS images from the THINGS database"},
        },
    },
    "ds001499": {
        "name": "BOLD5000",
        "tr": 2.0,
        "primary_task": "5000scenes",
        "parts": {
            "metadata": _COMMON_META + ["task-5000scenes_bold.json", "task-5000scenes_events.json"],
            "events": ["sub-*/ses-*/func/sub-*_task-5000scenes_run-*_events.tsv"],
            "bold": ["sub-*/ses-*/func/sub-*_task-5000scenes_run-*_bold.nii.gz", "sub-*/ses-*/func/sub-*_task-5000scenes_run-*_bold.json"],
            "derivatives": [
                "derivatives/fmriprep/sub-*/ses-*/func/sub-*_task-5000scenes_run-*_bold_space-T1w_preproc.nii.gz",
                "derivatives/fmriprep/sub-*/ses-*/func/sub-*_task-5000scenes_run-*_bold_space-T1w_brainmask.nii.gz",
                "derivatives/fmriprep/sub-*/ses-*/func/sub-*_task-5000scenes_run-*_bold_confounds.tsv",
            ],
        },
        "stimuli": {
            "how": "external",
            "events_column": "ImgName",
            "description": "The 5,000 scene images are not on OpenNeuro; obtain them from the BOLD5000 project (events column ImgName names the image).",
            "url": "https://bold5000-dataset.github.io/website/",
        },
        "betas": {
            "how": "external",
            "description": "BOLD5000 release 2.0 GLMsingle single-trial betas, distributed by the BOLD5000 project; brainnet has no reader for them yet.",
            "url": "https://bold5000-dataset.github.io/website/",
        },
        "workflows": {
            "image_encoding": {"parts": ["metadata", "events", "derivatives"], "description": "fMRIPrep T1w BOLD + events -> single-trial betas -> study; images from the BOLD5000 project"},
        },
    },
    "ds003823": {
        "name": "Emotion regulation with IAPS pictures (multi-echo)",
        "tr": None,
        "primary_task": "emotionRegulation",
        "parts": {
            "metadata": _COMMON_META + ["task-emotionRegulation_events.json"],
            "events": ["sub-*/ses-*/func/sub-*_task-emotionRegulation_events.tsv"],
            "bold": ["sub-*/ses-*/func/sub-*_task-emotionRegulation_echo-*_bold.nii.gz", "sub-*/ses-*/func/sub-*_task-emotionRegulation_echo-*_bold.json"],
        },
        "stimuli": {
            "how": "licence",
            "events_column": "identifier",
            "description": "IAPS pictures (events column identifier = IAPS number) are available from the Center for the Study of Emotion and Attention under licence only; brainnet cannot fetch them.",
            "url": "https://csea.phhp.ufl.edu/media.html",
        },
        "workflows": {
            "image_encoding": {"parts": ["metadata", "events", "bold"], "description": "multi-echo BOLD (combine echoes first) + events -> single-trial betas; IAPS images by licence"},
        },
    },
}

# OpenNeuro requires CC0 for public datasets; recorded per dataset from dataset_description.json where we have it.
_LICENCES = {"ds004496": "CC0", "ds002837": "CC0", "ds004192": "CC0", "ds001499": "CC0", "ds003823": "CC0"}


def _read_table(path: Path) -> tuple[str, str, str, list[list[Any]]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = fh.readline()
        match = re.match(r"# OpenNeuro (ds\d{6}) tag (\S+) \(mirror commit ([0-9a-f]+)\)", header)
        if match is None:
            raise input_error(path, "first line does not name the dataset and tag", "pass an OpenNeuro file table")
        columns = fh.readline().rstrip("\n").split("\t")
        if columns != ["path", "size", "algo", "checksum"]:
            raise input_error(path, f"columns {columns} are not path/size/algo/checksum", "pass an OpenNeuro file table")
        rows = []
        for line in fh:
            path_, size, algo, checksum = line.rstrip("\n").split("\t")
            rows.append([path_, int(size), algo, checksum or None])
    return match.group(1), match.group(2), match.group(3), rows


def build_manifest(table: str | Path) -> dict[str, Any]:
    """Build the manifest content for one ``<accession>_files.tsv.gz`` table."""
    from brainnet.results import sha256_file

    table = Path(table)
    accession, version, commit, rows = _read_table(table)
    if accession not in _SPECS:
        raise input_error(table, f"no brainnet part specification for {accession}", f"known: {', '.join(_SPECS)}")
    spec = _SPECS[accession]
    paths = [r[0] for r in rows]
    tasks = sorted({m.group(1) for p in paths for m in [re.search(r"_task-([A-Za-z0-9]+)", p)] if m and not p.startswith("derivatives/")})
    subjects = sorted({m.group(1) for p in paths for m in [_SUBJECT.search(p)] if m and not p.startswith("derivatives/")}, key=_natural)
    parts = {}
    for name, globs in spec["parts"].items():
        regexes = [glob_to_regex(g) for g in globs]
        files = [r for r in rows if any(rx.match(r[0]) for rx in regexes)]
        parts[name] = {
            "description": _PART_DESCRIPTIONS[name],
            "globs": list(globs),
            "n_files": len(files),
            "total_size": sum(r[1] for r in files),
            "files": files,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "accession": accession,
        "version": version,
        "name": spec["name"],
        "licence": _LICENCES[accession],
        "doi": f"10.18112/openneuro.{accession}.v{version}",
        "tr": spec["tr"],
        "tasks": tasks,
        "primary_task": spec["primary_task"],
        "subjects": subjects,
        "stimuli": spec["stimuli"],
        **({"betas": spec["betas"]} if "betas" in spec else {}),
        "workflows": spec["workflows"],
        "download": {
            "url_template": _DEFAULT_URL,
            "alternatives": [
                f"s3://openneuro.org/{accession}/<path> (anonymous; latest version only)",
                f"datalad install https://github.com/OpenNeuroDatasets/{accession}.git (commit {commit})",
            ],
        },
        "source": {
            "table": table.name,
            "table_sha256": sha256_file(table),
            "mirror_commit": commit,
            "n_files_in_dataset": len(rows),
            "total_size_in_dataset": sum(r[1] for r in rows),
        },
        "parts": parts,
    }


_PART_DESCRIPTIONS = {
    "metadata": "dataset description, participants and task sidecars",
    "events": "BIDS events.tsv of the task brainnet analyses",
    "bold": "raw BOLD runs and sidecars",
    "derivatives": "preprocessed BOLD brainnet analyses",
    "stimuli": "stimulus files distributed with the dataset",
    "betas": "single-trial estimates released with the dataset (brainnet.study_from_released_betas)",
}


def _natural(label: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label))


def write_manifest(content: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``content`` as ``<accession>.json``, or ``.json.gz`` when above 1 MB."""
    from brainnet.results import atomic_write_bytes

    out_dir = Path(out_dir)
    text = json.dumps(content, indent=1, separators=(",", ": ")).encode("utf-8")
    plain, packed = out_dir / f"{content['accession']}.json", out_dir / f"{content['accession']}.json.gz"
    target, other = (packed, plain) if len(text) > _GZIP_ABOVE else (plain, packed)
    data = gzip.compress(text, mtime=0) if target is packed else text
    atomic_write_bytes(target, data)
    other.unlink(missing_ok=True)
    return target


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brainnet.datasets.manifests", description="Build dataset manifests from OpenNeuro file tables.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    build = sub.add_parser("build", help="build manifests")
    build.add_argument("tables", type=Path, help="folder with <accession>_files.tsv.gz tables")
    build.add_argument("out", type=Path, help="output folder, e.g. data_manifests/datasets")
    build.add_argument("accessions", nargs="*", default=list(_SPECS), help="datasets (default all known)")
    args = parser.parse_args(argv)
    try:
        for accession in args.accessions:
            content = build_manifest(args.tables / f"{accession}_files.tsv.gz")
            parse_manifest(content, source=accession)
            path = write_manifest(content, args.out)
            n = sum(p["n_files"] for p in content["parts"].values())
            print(f"{path}: {n} files in {len(content['parts'])} parts")
    except BrainnetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
