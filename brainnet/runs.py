"""The study-level runner: one way to run an analysis over a study's subjects.

An analysis is three parts:

- its **array core** (``encode(features, responses)``, ...): statistics on
  arrays, no files;
- its **result record** (``EncodingResult``, ...): summary, tables, writing;
- a **spec** (a small picklable object, e.g. ``encoding._Settings``) saying
  what determines a result (:meth:`parameters`), how one subject's arrays are
  prepared from a study (``prepare``), how the core is called on them
  (``compute``), how the record is labelled (``finish``) and how the group
  table is made (``group``).

This module owns everything else, once: resolving the study and the
subjects (:func:`resolve_study`, :func:`subject_labels`), the features
(files or in-memory :class:`~brainnet.features.Features`, resolved by
``Study.features``), provenance (:func:`brainnet.results.make_provenance`
with the mask described by content, :func:`brainnet.masks.describe_mask`),
validation of an output folder *before any data is loaded*
(:func:`refuse_other_parameters`), checkpoints (the runner hands the core
``<folder>/checkpoints/null.npz`` of a :class:`~brainnet.results.ResultDir`),
execution (:class:`Execution`: ``n_jobs``, progress bars of
:mod:`brainnet._progress`, the Dask scheduler of :mod:`brainnet._execution`)
and the output layout (:func:`result_folder`).

Naming rule
-----------
Array-level functions are named by what they compute on arrays (``encode``,
``unit_decoding``, ``rsa_network_subject``, ``power_curve``); study-level
functions, which take a study and go through this runner, are named by the
command (``encode_subject`` / ``encode_subjects``, ``decode_units``,
``network_as_subject``, ``power_analysis``).

Output layout
-------------
``<out>/sub-<label>/<analysis>-<layer>[-<region>]/`` for a subject,
``<out>/group/<analysis>-<layer>[-<region>]/`` for the group. The region is
in the name when it is a named region other than the default
(``occipital``), so a second region in the same ``--out`` gets its own
folder instead of a refusal; a mask *file* is identified by its content in
the provenance (a changed file is refused, naming it). A folder holding
results of other parameters is refused before any subject's data is
loaded, and the parameter that differs is named in a
:class:`~brainnet.errors.BrainnetNotice` just before the refusal.

Analyses running through this runner: encoding (``encode_subject``,
``encode_subjects``, per subject then a group table), decoding
(``decode_units``), power (``power_analysis``), categorize
(``categorize_study``), network-decoding (``network_category_decoding``)
and RSA (``network_as_subject``, one folder per layer: the spec's ``parts``),
each one group model (:meth:`Runner.run_group`); variance partitioning
(``partition_subject``, one subject: :meth:`Runner.run_subject`, a
checkpoint per tested space, ``checkpoint_dir``) and the searchlight
(``searchlight_group``, one group map; its folder names a region other than
the whole brain). Naturalistic encoding has no study or subjects (one long
BOLD series and a movie's frame features, streamed in voxel chunks): it
uses this module's :func:`opened_folder` (refusal naming the differing
parameter before any input is read, clean-up after a late refusal) and
:class:`Execution` (chunks on threads or as Dask tasks); its chunk loop is
its compute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainnet.errors import BrainnetError

__all__ = [
    "DEFAULT_REGION",
    "Execution",
    "Job",
    "Runner",
    "resolve_study",
    "subject_label",
    "subject_labels",
    "region_name",
    "result_folder",
    "refuse_other_parameters",
    "opened_folder",
]

#: The region that is not spelled out in a result folder's name.
DEFAULT_REGION = "occipital"


# -- execution ------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """How a run is executed; never changes its numbers.

    Parameters
    ----------
    n_jobs : int
        Threads per subject (permutation batches).
    progress : bool
        Show progress bars (subjects, permutations); also on inside
        :func:`brainnet._progress.show_progress`.
    scheduler : str, dask.distributed.Client or None
        Run each subject as one Dask task; None uses the scheduler of
        :func:`brainnet._execution.use_scheduler`, else this process.
    """

    n_jobs: int = 1
    progress: bool = False
    scheduler: Any = None

    def client(self) -> contextlib.AbstractContextManager[Any]:
        """A context giving the Dask client to use, or None to run here."""
        from brainnet._execution import current_scheduler, dask_client

        scheduler = self.scheduler if self.scheduler is not None else current_scheduler()
        return contextlib.nullcontext(None) if scheduler is None else dask_client(scheduler)

    def bar(self, total: int, *, unit: str, desc: str):
        """A progress bar that stays on screen, shown when :attr:`progress` (or show_progress) is on."""
        from brainnet._progress import progress_bar

        return progress_bar(total, unit=unit, desc=desc, enabled=self.progress, leave=True)


# -- study and subjects ---------------------------------------------------------


def resolve_study(study) -> Any:
    """A :class:`~brainnet.study.Study` from a Study, a study folder, or None (the embedded demo study)."""
    from brainnet.study import Study, load_study

    return study if isinstance(study, Study) else load_study(study)


def subject_label(study, subject: str) -> str:
    """The label of ``subject`` (``"01"`` or ``"sub-01"``), refused if the study does not have it."""
    label = str(subject)
    label = label[4:] if label.startswith("sub-") else label
    if label not in study.subjects:
        shown = ", ".join(study.subjects[:8]) + (", ..." if len(study.subjects) > 8 else "")
        raise BrainnetError(f"--subject {subject}: no such subject in {study.root}; choose one of {shown}")
    return label


def subject_labels(study, subjects: str | Sequence[str]) -> list[str]:
    """Labels of ``subjects``: ``"all"``, one label, or a sequence of labels (each once)."""
    if isinstance(subjects, str):
        if subjects != "all":
            return [subject_label(study, subjects)]
        return list(study.subjects)
    labels = [subject_label(study, s) for s in subjects]
    if not labels:
        raise BrainnetError("--subject: no subject given; use --subject all or e.g. --subject 01,02")
    if len(set(labels)) != len(labels):
        raise BrainnetError("--subject: a subject is listed twice; list each subject once")
    return labels


# -- output layout ----------------------------------------------------------------


def region_name(mask: Any) -> str | None:
    """The name of a named region (``"v1"``, ``"fusiform"``), or None for a mask file or template."""
    from brainnet.masks import describe_mask, region_kind

    if region_kind(mask) not in ("atlas", "aparc"):
        return None
    return str(describe_mask(mask)["name"])


def result_folder(out: str | Path, owner: str, analysis: str, layer: str, mask: Any = DEFAULT_REGION) -> Path:
    """Where a result goes: ``<out>/<owner>/<analysis>-<layer>[-<region>]``.

    Parameters
    ----------
    out : path
        The results folder (``--out``).
    owner : str
        ``"sub-<label>"`` or ``"group"``.
    analysis : str
        The command (``"encode"``, ...).
    layer : str
        The network layer.
    mask : str or path
        The region; a named region other than :data:`DEFAULT_REGION` is
        added to the name.

    Returns
    -------
    Path
        Refused if a part would leave ``out``.
    """
    from brainnet.results import result_path

    name = f"{analysis}-{layer}"
    region = region_name(mask)
    if region is not None and region != DEFAULT_REGION:
        name += f"-{region}"
    return result_path(out, owner, name)


def _differing(stored: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Names of the parameters whose values differ between a folder's provenance and this run's."""
    names = []
    old, new = stored.get("parameters") or {}, expected["parameters"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            names.append(key)
    for key in ("seed", "weights"):
        if key in expected and stored.get(key) != expected[key]:
            names.append(key)
    if "mask" in expected and (stored.get("mask") or {}).get("name") != expected["mask"]:
        names.append("mask")
    return names


def refuse_other_parameters(target: Path, expected: dict[str, Any], overwrite: bool) -> None:
    """Refuse ``target`` if it holds results of other parameters; no data of the run is needed.

    ``expected`` holds this run's ``parameters`` (and ``seed``, ``weights``,
    ``mask`` name when known). A differing entry is named in a
    :class:`~brainnet.errors.BrainnetNotice` and the folder is refused with
    the message of :class:`~brainnet.results.ResultDir`; with ``overwrite``
    nothing is refused here (the folder is replaced when opened).
    """
    from brainnet.errors import notice
    from brainnet.results import read_json

    run_file = Path(target) / "run.json"
    if overwrite or not run_file.exists():
        return
    stored = read_json(run_file).get("provenance") or {}
    names = _differing(stored, expected)
    if not names:
        return  # same parameters: inputs changed in place are checked by ResultDir, by content
    old, new = stored.get("parameters") or {}, expected["parameters"]
    shown = []
    for name in names:
        before = old.get(name) if name in old or name in new else (
            (stored.get("mask") or {}).get("name") if name == "mask" else stored.get(name))
        after = new.get(name) if name in old or name in new else expected[name]
        shown.append(f"{name}={_short(before)} there, {_short(after)} in this run")
    notice(f"{target}: {'; '.join(shown)}")
    raise BrainnetError(
        f"{target}: holds results made with other parameters, weights or data; "
        "choose another --out folder or pass --overwrite"
    )


@contextlib.contextmanager
def opened_folder(target: str | Path, provenance, overwrite: bool, *, parameters: dict[str, Any] | None = None,
                  seed: int | None = None, weights: str | None = None) -> Iterator[Any]:
    """A result folder opened the runner's way, for an analysis without a study (naturalistic).

    The folder is refused first from ``parameters`` alone (the differing one
    named, :func:`refuse_other_parameters`), before ``provenance`` is made:
    pass a callable so inputs are read (checksums) only when the parameters
    agree. Inside the ``with`` block, a refusal removes what the run added
    (a folder that existed before, a run to resume, keeps its files).

    Yields
    ------
    ResultDir
    """
    from brainnet.results import ResultDir, removed_on_refusal

    target = Path(target)
    if parameters is not None:
        refuse_other_parameters(target, {"parameters": parameters, "seed": seed, "weights": weights}, overwrite)
    provenance = provenance() if callable(provenance) else provenance
    with removed_on_refusal(target):
        yield ResultDir(target, provenance, overwrite=overwrite)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the runner ---------------------------------------------------------------------


@dataclass
class Job:
    """One subject's inputs, ready for the spec's ``compute``, and where its result goes.

    ``inputs`` holds what the array core needs (sent to a Dask worker as
    is; the entries named by the spec's ``scatter`` are scattered first);
    ``extras`` what the spec's ``finish`` needs here (masker, ...).
    """

    label: str
    inputs: dict[str, Any]
    extras: dict[str, Any]
    provenance: dict[str, Any]
    target: Path | None = None


def _compute_on_worker(spec, inputs: dict[str, Any], n_jobs: int) -> Any:
    """One subject on a Dask worker: arrays in, the array-level result out; the caller writes."""
    from brainnet._execution import use_scheduler

    # Its permutations run on this worker, not back on the cluster.
    with use_scheduler(None):
        return spec.compute(inputs, n_jobs, None, False)


class Runner:
    """Runs one analysis (a spec) over subjects of a study, writing into ``out``.

    Parameters
    ----------
    spec
        The analysis: ``analysis`` (folder prefix), ``layer``, ``mask``,
        ``seed``, ``scatter`` (names of the large inputs), and the methods
        ``parameters(label)``, ``check(study)``, ``prepare(study, label,
        feats)`` -> (inputs, extras, n_voxels, space), ``compute(inputs,
        n_jobs, checkpoint, progress)``, ``finish(job, result)`` and
        ``group(labels, summaries, computed, folders)`` -> (record, table).
    study : Study
    features : Features or None
        As ``Study.features`` returns them (from a file or in memory); None
        for an analysis of the brain data alone (categorize).
    out : path or None
        Nothing is written when None.
    overwrite : bool
    execution : Execution
    """

    def __init__(self, spec, study, features, out, overwrite: bool = False, execution: Execution | None = None):
        self.spec = spec
        self.study = study
        self.features = features
        self.out = out
        self.overwrite = overwrite
        self.execution = execution or Execution()
        fprov = None if features is None else dict(features.provenance)
        self.weights = None if fprov is None else fprov.get("weights")
        self._fprov = fprov

    # layout and provenance
    def folder(self, owner: str, part: str | None = None) -> Path | None:
        """``<out>/<owner>/<analysis>-<layer>[-<region>]``, or None when nothing is written.

        A spec naming its folders itself (``folder_name``) gets
        ``<out>/<owner>/<folder_name()>``, or ``folder_name(part)`` for one
        part of an analysis writing several folders.
        """
        if self.out is None:
            return None
        named = getattr(self.spec, "folder_name", None)
        if named is not None:  # an analysis without a layer names its folder itself
            from brainnet.results import result_path

            return result_path(self.out, owner, named() if part is None else named(part))
        return result_folder(self.out, owner, self.spec.analysis, self.spec.layer, self.spec.mask)

    def _expected(self, label: str | None) -> dict[str, Any]:
        parameters = self.spec.parameters(label if label is not None else "")
        if label is None:
            parameters = {k: v for k, v in parameters.items() if k != "subject"}
        expected = {"parameters": parameters, "seed": self.spec.seed, "weights": self.weights}
        region = region_name(self.spec.mask)
        if region is not None:
            expected["mask"] = region
        return expected

    def provenance(self, label: str | None, labels: Sequence[str] = (), n_voxels: int | None = None,
                   space: Any = None) -> dict[str, Any]:
        """The provenance of one subject's result (``label``) or of the group (``label=None``)."""
        from brainnet.masks import describe_mask
        from brainnet.results import make_provenance

        mask = describe_mask(self.spec.mask, [label] if label is not None else list(labels))
        if label is not None:
            mask = {**mask, "n_voxels": int(n_voxels), "space": space}
        return make_provenance(weights=self.weights, features=self._fprov, study=self.study.provenance(),
                               mask=mask, seed=self.spec.seed, parameters=self._expected(label)["parameters"])

    def check_folders(self, labels: Sequence[str], group: bool) -> None:
        """Refuse folders of other parameters (group first, then each subject) before any data is loaded."""
        if self.out is None:
            return
        owners = (["group"] if group else []) + [f"sub-{label}" for label in labels]
        for owner in owners:
            label = None if owner == "group" else owner[4:]
            refuse_other_parameters(self.folder(owner), self._expected(label), self.overwrite)

    def prepare(self, label: str) -> Job:
        """Load one subject and build its job (inputs, provenance, folder)."""
        inputs, extras, n_voxels, space = self.spec.prepare(self.study, label, self.features)
        provenance = self.provenance(label, n_voxels=n_voxels, space=space)
        # inputs the study and features do not describe (partition's image-derived controls)
        provenance.update(extras.get("provenance", {}))
        return Job(label, inputs, extras, provenance, self.folder(f"sub-{label}"))

    # running
    def run_subject(self, label: str) -> Any:
        """One subject in this process, resuming from (and writing to) its folder."""
        from brainnet.results import ResultDir

        self.check_folders([label], group=False)
        job = self.prepare(label)
        checkpoint = None
        with self._cleanup(job.target):
            if job.target is not None:
                checkpoint = ResultDir(job.target, job.provenance, overwrite=self.overwrite).checkpoint_dir
                checkpoint = checkpoint if getattr(self.spec, "checkpoint_dir", False) else checkpoint / "null.npz"
            result = self.spec.compute(job.inputs, self.execution.n_jobs, checkpoint, self.execution.progress)
            return self._finish(job, result)

    def _cleanup(self, target: Path | None):
        """With a spec's ``clean_on_refusal``: a refusal once fitting starts leaves nothing behind.

        Make it before the folder is opened: what is new is decided when it is made.
        """
        if target is None or not getattr(self.spec, "clean_on_refusal", False):
            return contextlib.nullcontext()
        from brainnet.results import removed_on_refusal

        # a folder that existed before (a run to resume) is kept
        return removed_on_refusal(target)

    def _finish(self, job: Job, result: Any) -> Any:
        result = self.spec.finish(job, result)
        if job.target is not None:
            result.write(job.target, overwrite=False)
        return result

    def run_subjects(self, labels: Sequence[str]) -> Any:
        """Every subject (complete folders are read, not recomputed), then the group record.

        Folders of other parameters are refused before any data is loaded;
        the group folder's ``summary.json`` is written last.
        """
        from brainnet.results import ResultDir, read_json

        labels = list(labels)
        self.check_folders(labels, group=True)
        group = None
        if self.out is not None:
            group = ResultDir(self.folder("group"), self.provenance(None, labels), overwrite=self.overwrite)
            if read_json(group.file("summary.json")).get("subjects", labels) != labels:
                group.file("summary.json").unlink()  # it summarised other subjects: incomplete until rewritten
        summaries = self._completed(labels)
        pending = [label for label in labels if label not in summaries]
        with self.execution.client() as client:
            done = self._run_here(pending) if client is None else self._run_on_dask(client, pending)
            for label, result in done:
                summaries[label] = result.summary
        folders = {label: self.folder(f"sub-{label}") for label in labels} if self.out is not None else {}
        record, table = self.spec.group(labels, summaries, pending, folders)
        if group is not None:
            group.write_tsv("subjects.tsv", table)
            group.finish(record.summary)
            record.path = group.path
        return record

    def run_group(self, labels: Sequence[str]) -> Any:
        """A group-level analysis (one model over all subjects) into ``<out>/group/<analysis>-<layer>[-<region>]``.

        The group folder is checked before any subject's data is loaded; the
        spec's ``prepare_group(study, labels, features)`` -> (inputs, extras,
        mask name, mask extras) loads and checks the data before the folder is
        opened; ``compute`` gets the folder's checkpoint directory; the spec's
        ``write(result, resultdir, job)`` writes the record.

        A spec whose arguments can only be checked against the data (the
        number of folds against the stimuli each category has in common
        across subjects) sets ``prepare_first = True``: ``prepare_group``
        then runs before the folder check, so a run that could never succeed
        is refused for its argument, not for the folder it would write. A
        spec with ``parts`` writes one folder per part (:meth:`_run_parts`).
        """
        from brainnet.masks import describe_mask
        from brainnet.results import ResultDir, make_provenance

        labels = list(labels)
        if getattr(self.spec, "parts", None):
            return self._run_parts(labels)
        first = getattr(self.spec, "prepare_first", False)
        if first:
            prepared = self.spec.prepare_group(self.study, labels, self.features)
        self.check_folders([], group=True)
        if not first:
            prepared = self.spec.prepare_group(self.study, labels, self.features)
        inputs, extras, mask_name, mask_extra = prepared
        provenance = make_provenance(weights=self.weights, features=self._fprov, study=self.study.provenance(),
                                     mask={**describe_mask(mask_name, labels), **mask_extra}, seed=self.spec.seed,
                                     parameters=self._expected(None)["parameters"])
        job = Job("group", inputs, extras, provenance, self.folder("group"))
        cleanup = self._cleanup(job.target)  # made before the folder: what is new is decided now
        resultdir = None if job.target is None else ResultDir(job.target, provenance, overwrite=self.overwrite)
        checkpoint = None if resultdir is None else resultdir.checkpoint_dir
        with cleanup:
            result = self.spec.compute(inputs, self.execution.n_jobs, checkpoint, self.execution.progress)
        result = self.spec.finish(job, result)
        if resultdir is not None:
            self.spec.write(result, resultdir, job)
        return result

    def _run_parts(self, labels: list[str]) -> Any:
        """A group analysis writing one folder per part (RSA: per layer), ``<out>/group/<folder_name(part)>``.

        The spec sets ``parts`` (the names), ``folder_name(part)`` and
        ``parameters(part)``; its ``prepare_group`` runs first (the folders'
        parameters include what the data fixes, ``extras["parameters"]``,
        e.g. the number of stimuli every subject saw). Every folder is
        checked, then opened, before ``compute``; if one is refused, the
        folders this run created for the others are removed again, so a
        refusal leaves nothing behind. ``compute`` gets the first part's
        checkpoint directory; ``write(result, resultdirs, job)`` writes.
        """
        from brainnet.masks import describe_mask
        from brainnet.results import make_provenance

        parts = list(self.spec.parts)
        inputs, extras, mask_name, mask_extra = self.spec.prepare_group(self.study, labels, self.features)
        found = dict(extras.get("parameters", {}))
        study_prov = self.study.provenance() if self.out is not None else None
        mask = None if self.out is None else {**describe_mask(mask_name, labels), **mask_extra}

        def provenance_for(part: str) -> dict[str, Any]:
            return make_provenance(weights=self.weights, features=self._fprov, study=study_prov, mask=mask,
                                   seed=self.spec.seed, parameters={**self.spec.parameters(part), **found})

        resultdirs = None
        if self.out is not None:
            for part in parts:
                expected = {"parameters": provenance_for(part)["parameters"], "seed": self.spec.seed,
                            "weights": self.weights}
                region = region_name(self.spec.mask)
                if region is not None:
                    expected["mask"] = region
                refuse_other_parameters(self.folder("group", part), expected, self.overwrite)
            resultdirs = self._open_parts(parts, provenance_for)
        job = Job("group", inputs, extras, {}, None if self.out is None else self.folder("group", parts[0]).parent)
        checkpoint = None if resultdirs is None else resultdirs[parts[0]].checkpoint_dir
        result = self.spec.compute(inputs, self.execution.n_jobs, checkpoint, self.execution.progress)
        result = self.spec.finish(job, result)
        if resultdirs is not None:
            self.spec.write(result, resultdirs, job)
        return result

    def _open_parts(self, parts: Sequence[str], provenance_for) -> dict[str, Any]:
        """Open every part's :class:`~brainnet.results.ResultDir` (:func:`open_folders`)."""
        return open_folders({part: self.folder("group", part) for part in parts}, provenance_for, self.overwrite)

    def _completed(self, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Summaries of subjects already complete in ``out`` (same fingerprint)."""
        from brainnet.results import ResultDir, fingerprint, read_json

        done: dict[str, dict[str, Any]] = {}
        if self.out is None:
            return done
        for label in labels:
            target = self.folder(f"sub-{label}")
            if not (target / "run.json").exists():
                continue  # nothing there that could conflict
            provenance = self.prepare(label).provenance
            if read_json(target / "run.json").get("fingerprint") != fingerprint(provenance):
                ResultDir(target, provenance, overwrite=self.overwrite)  # refuses (inputs changed), or clears it
                continue
            summary = read_json(target / "summary.json")
            # A complete folder is only read, never rewritten: its files keep their times.
            if summary.get("complete") and summary.get("fingerprint") == fingerprint(provenance):
                done[label] = summary
        return done

    def _run_here(self, labels: Sequence[str]) -> Iterator[tuple[str, Any]]:
        with self.execution.bar(len(labels), unit="subject", desc="subjects") as bar:
            for label in labels:
                yield label, self.run_subject(label)
                bar.update()

    def _run_on_dask(self, client, labels: Sequence[str]) -> Iterator[tuple[str, Any]]:
        from dask.distributed import as_completed

        from brainnet.results import ResultDir

        jobs = {}
        for label in labels:
            job = self.prepare(label)
            if job.target is not None:
                ResultDir(job.target, job.provenance, overwrite=self.overwrite)  # run.json: this subject has started
            rest = dict(job.inputs)
            names = [name for name in self.spec.scatter if name in rest]
            scattered = client.scatter([rest.pop(name) for name in names])
            job.inputs = {}  # the cluster holds them now
            future = client.submit(_remote_subject, self.spec, self.execution.n_jobs, rest, names, *scattered,
                                   pure=False)
            jobs[future] = job
        # Write each subject as soon as it is done, so an interruption keeps every finished one.
        for future in as_completed(list(jobs)):
            job = jobs[future]
            yield job.label, self._finish(job, future.result())


def _remote_subject(spec, n_jobs: int, rest: dict[str, Any], names: Sequence[str], *scattered: Any) -> Any:
    """:func:`_compute_on_worker` with the scattered inputs passed as arguments, so Dask resolves them on the worker."""
    return _compute_on_worker(spec, {**rest, **dict(zip(names, scattered, strict=True))}, n_jobs)


# -- shared by the specs and the study-level functions --------------------------------
# (layers and features, folders of several parts, the category-decoding spec's fields)


def check_layers(layers: Sequence[str] | str, features_file: Any, network: Any = None) -> list[str]:
    """The layer names of ``layers`` (a sequence or ``"conv1,fc8"``), each once, checked by name.

    ``"all"`` is every layer of the network; without ``features_file`` or
    ``network`` each must be an EmoNet layer (``network``'s names are checked
    when it is loaded, a features file's by :func:`layer_features`).
    """
    if isinstance(layers, str):
        layers = [s.strip() for s in layers.split(",") if s.strip()]
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise BrainnetError("--layers is empty; give one or more of conv1,...,fc8")
    if network is not None and features_file is None:
        from brainnet.models.registry import get_network

        if layers == ["all"]:
            return list(get_network(network).layers)
        return layers
    if features_file is None:
        from brainnet.models.emonet import LAYERS

        if layers == ["all"]:
            return list(LAYERS)
        unknown = [name for name in layers if name not in LAYERS]
        if unknown:
            raise BrainnetError(f"--layers {unknown[0]!r} is unknown; use one or more of {','.join(LAYERS)}")
    return layers


def layer_features(study, layers: Sequence[str], *, weights: Any = None, untrained_seed: int = 0,
                   features: Any = None, network: Any = None) -> Any:
    """The study's features of ``layers``, each layer checked, before any subject is loaded.

    Parameters
    ----------
    study : Study
    layers : sequence of str
        Layer names (a command taking several checks them first with
        :func:`check_layers`).
    weights, untrained_seed, features, network
        As :meth:`brainnet.study.Study.features` takes them (``features``: a
        file or in-memory :class:`~brainnet.features.Features`).

    Returns
    -------
    Features
        Rows in the study's stimulus order, shape ``(n_stimuli, n_units)``
        per layer; a layer missing from them is refused here
        (``layer 'x' is not in these features; available: ...``).
    """
    feats = study.features(layers=tuple(layers), weights=weights, seed=untrained_seed, features_file=features,
                           network=network)
    for name in layers:
        feats.layer(name)
    return feats


def open_folders(folders: dict[str, Path], provenance_for, overwrite: bool = False) -> dict[str, Any]:
    """Open a :class:`~brainnet.results.ResultDir` for each part's folder; a refusal leaves nothing behind.

    Parameters
    ----------
    folders : dict of str -> Path
        Each part's folder (RSA: ``<out>/group/rsa-<layer>`` per layer).
    provenance_for : callable
        ``provenance_for(part)`` -> that folder's provenance record.
    overwrite : bool

    Returns
    -------
    dict of str -> ResultDir
        If one folder is refused, those this call created for the others
        (and their parent, if this call created it and it is empty) are
        removed again and the refusal is raised.
    """
    import shutil

    from brainnet.results import ResultDir

    parents = {path.parent for path in folders.values()}
    made = [parent for parent in parents if not parent.exists()]
    opened: dict[str, Any] = {}
    created: list[Path] = []
    try:
        for part, path in folders.items():
            new = not path.exists()
            opened[part] = ResultDir(path, provenance_for(part), overwrite=overwrite)
            if new:
                created.append(path)
    except BrainnetError:
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        for parent in made:
            if parent.exists() and not any(parent.iterdir()):
                parent.rmdir()
        raise
    return opened


@dataclass(frozen=True)
class CategorySpec:
    """The fields and parameters shared by the category-decoding specs (categorize, network-decoding).

    A subclass adds its own fields (a layer, ``C``), ``analysis``,
    ``folder_name`` and the spec methods, and builds its ``parameters`` on
    :meth:`category_parameters`. A refusal found only once fitting starts
    (``n_components`` too large for a fold) removes the folder it made.
    """

    mask: Any
    seed: int
    subjects: list[str]
    model: str
    n_folds: int
    n_components: int | None
    n_permutations: int

    clean_on_refusal = True

    def category_parameters(self) -> dict[str, Any]:
        """The parameters every category-decoding result records."""
        return {"subjects": list(self.subjects), "model": self.model, "n_folds": self.n_folds,
                "n_components": self.n_components, "n_permutations": self.n_permutations}
