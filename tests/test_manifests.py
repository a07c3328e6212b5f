"""Dataset manifests: shipped files validate, the parser refuses malformed input in one line."""

from __future__ import annotations

import copy
import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brainnet.datasets import manifests as M
from brainnet.errors import BrainnetError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "data_manifests" / "schema" / "dataset.schema.json"
EXPECTED = ["ds001499", "ds002837", "ds003823", "ds004192", "ds004496"]
TABLES = Path("/work/shared/openneuro")


def _raw(accession: str) -> dict:
    folder = M.manifest_dir()
    plain = folder / f"{accession}.json"
    if plain.exists():
        return json.loads(plain.read_text())
    return json.loads(gzip.decompress((folder / f"{accession}.json.gz").read_bytes()))


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_dataset_has_a_manifest():
    assert M.available_datasets() == EXPECTED


@pytest.mark.parametrize("accession", EXPECTED)
def test_manifest_validates_against_schema(accession, science_scale):
    data = _raw(accession)
    if science_scale == "quick":
        # jsonschema needs ~15 s for NOD's 57,000 stimulus entries; the parser checks them all below.
        for part in data["parts"].values():
            part["files"] = part["files"][:500]
    errors = sorted(_validator().iter_errors(data), key=str)
    assert errors == []


@pytest.mark.parametrize("accession", EXPECTED)
def test_manifest_parses_and_is_consistent(accession):
    m = M.load_manifest(accession)
    assert m.accession == accession
    assert m.licence and m.tasks and m.subjects
    assert m.stimuli["how"] in ("in_dataset", "external", "licence")
    for wf in m.workflows.values():
        assert set(wf["parts"]) <= set(m.parts)
    for part in m.parts.values():
        assert part["files"], "every part lists files"
    # every file of every part belongs to a known subject or to the dataset level
    subjects = set(m.subjects)
    assert {f.subject for f in m.files()} - {None} <= subjects


def test_manifest_matches_source_table():
    """The numbers in a manifest are those of the shared table (independent re-read)."""
    table = TABLES / "ds002837_files.tsv.gz"
    if not table.exists():
        pytest.skip("shared OpenNeuro tables not available")
    rows = {}
    with gzip.open(table, "rt") as fh:
        header = fh.readline()
        fh.readline()
        for line in fh:
            path, size, algo, checksum = line.rstrip("\n").split("\t")
            rows[path] = (int(size), algo, checksum or None)
    m = M.load_manifest("ds002837")
    assert m.version in header
    for f in m.files():
        assert rows[f.path] == (f.size, f.algo, f.checksum)
    deriv = [f.path for f in m.files(["derivatives"])]
    expected = sorted(p for p in rows if p.startswith("derivatives/sub-") and p.endswith("_bold_blur_censor.nii.gz"))
    assert sorted(p for p in deriv if p.endswith(".nii.gz")) == expected


def test_builder_is_reproducible(tmp_path):
    table = TABLES / "ds004192_files.tsv.gz"
    if not table.exists():
        pytest.skip("shared OpenNeuro tables not available")
    written = M.write_manifest(M.build_manifest(table), tmp_path)
    assert written.read_bytes() == (M.manifest_dir() / "ds004192.json").read_bytes()


def test_nndb_subjects_are_not_zero_padded():
    m = M.load_manifest("ds002837")
    assert "1" in m.subjects and "01" not in m.subjects
    files = m.files(["derivatives"], subjects=["sub-1"])
    assert {f.subject for f in files} == {"1"}
    assert any(f.path == "derivatives/sub-1/func/sub-1_task-500daysofsummer_bold_blur_censor.nii.gz" for f in files)
    with pytest.raises(BrainnetError, match=r"--subjects 01: not a subject of ds002837; .*not zero-padded"):
        m.files(subjects=["01"])


def test_unknown_part_and_dataset_are_one_line_errors():
    m = M.load_manifest("ds002837")
    with pytest.raises(BrainnetError, match=r"^--what events: ds002837 has no such part; choose from "):
        m.files(["events"])
    with pytest.raises(BrainnetError, match=r"^ds999999: no such dataset manifest; known datasets are ds001499"):
        M.load_manifest("ds999999")


def test_files_selects_subject_and_dataset_level_files():
    m = M.load_manifest("ds004496")
    files = m.files(["metadata", "events"], subjects=["02"])
    assert {f.subject for f in files} == {None, "02"}
    assert any(f.path == "participants.tsv" for f in files)


def test_url_templates():
    m = M.load_manifest("ds002837")
    path = "derivatives/sub-1/func/sub-1_task-500daysofsummer_bold_blur_censor.nii.gz"
    assert m.url(path) == (
        "https://openneuro.org/crn/datasets/ds002837/snapshots/2.0.0/files/"
        "derivatives:sub-1:func:sub-1_task-500daysofsummer_bold_blur_censor.nii.gz"
    )
    assert m.url(path, mirror="http://127.0.0.1:8000/data/") == f"http://127.0.0.1:8000/data/{path}"
    assert m.url("a b.txt", mirror="http://h/{accession}/{version}/{path}") == "http://h/ds002837/2.0.0/a%20b.txt"


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("sub-*/func/*.nii.gz", "sub-1/func/x.nii.gz", True),
        ("sub-*/func/*.nii.gz", "sub-1/anat/func/x.nii.gz", False),
        ("stimuli/**", "stimuli/a/b/c.JPEG", True),
        ("a/**/b.txt", "a/b.txt", True),
        ("a/**/b.txt", "a/x/y/b.txt", True),
        ("run-?.tsv", "run-10.tsv", False),
    ],
)
def test_glob_to_regex(pattern, path, hit):
    assert bool(M.glob_to_regex(pattern).match(path)) is hit


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", "a//b", "a\\b", "./a", "C:/x", "a/\x00b", ""])
def test_unsafe_paths_are_refused(bad):
    with pytest.raises(BrainnetError, match="regenerate the manifest"):
        M.check_relative_path(bad, "m.json")


# ---------------------------------------------------------------- property tests of the parser


def _small_manifest() -> dict:
    return {
        "schema_version": 1,
        "accession": "ds000001",
        "version": "1.0.0",
        "name": "test",
        "licence": "CC0",
        "tasks": ["x"],
        "subjects": ["01"],
        "stimuli": {"how": "external", "description": "none"},
        "workflows": {"w": {"parts": ["events"]}},
        "download": {"url_template": "http://127.0.0.1/{path}"},
        "parts": {
            "events": {
                "globs": ["sub-*/*.tsv", "*.json"],
                "files": [
                    ["sub-01/a.tsv", 3, "md5", "0" * 32],
                    ["b.json", 4, "git", None],
                    ["sub-01/c.tsv", 5, "sha256", "a" * 64],
                ],
            }
        },
    }


def test_small_manifest_is_valid_for_parser_and_schema():
    data = _small_manifest()
    assert _validator().is_valid(data)
    m = M.parse_manifest(data)
    assert [f.path for f in m.files()] == ["sub-01/a.tsv", "b.json", "sub-01/c.tsv"]


_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

_entry_fields = st.sampled_from([0, 1, 2, 3])


@settings(max_examples=150, deadline=None)
@given(field=_entry_fields, value=_junk)
def test_corrupted_file_entry_never_tracebacks(field, value):
    data = _small_manifest()
    data["parts"]["events"]["files"][0][field] = value
    try:
        M.parse_manifest(data, source="test.json")
    except BrainnetError as err:
        msg = str(err)
        assert "\n" not in msg and msg.startswith("test.json")
    else:
        # whatever the parser accepts, the JSON Schema accepts too
        assert _validator().is_valid(data)


_top_keys = st.sampled_from(sorted(_small_manifest()) + ["parts.events", "parts.events.globs", "parts.events.files", "workflows.w"])


@settings(max_examples=150, deadline=None)
@given(key=_top_keys, value=_junk, delete=st.booleans())
def test_corrupted_fields_never_traceback(key, value, delete):
    data = copy.deepcopy(_small_manifest())
    *parents, last = key.split(".")
    node = data
    for p in parents:
        node = node[p]
    if delete:
        del node[last]
    else:
        node[last] = value
    try:
        M.parse_manifest(data, source="test.json")
    except BrainnetError as err:
        assert "\n" not in str(err) and str(err).startswith("test.json")


@settings(max_examples=50, deadline=None)
@given(data=_junk)
def test_arbitrary_json_never_tracebacks(data):
    with pytest.raises(BrainnetError):
        M.parse_manifest(data, source="x.json")


def test_unreadable_manifest_file(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(BrainnetError, match=r"m.json: cannot read manifest .*; regenerate it"):
        M.load_manifest(bad)
    gz = tmp_path / "m.json.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(BrainnetError, match=r"m.json.gz: cannot read manifest"):
        M.load_manifest(gz)


def test_manifest_dir_override(tmp_path, monkeypatch):
    (tmp_path / "ds000001.json").write_text(json.dumps(_small_manifest()))
    monkeypatch.setenv("BRAINNET_MANIFEST_DIR", str(tmp_path))
    assert M.available_datasets() == ["ds000001"]
    assert M.load_manifest("ds000001").accession == "ds000001"


def _built_wheel(tmp_path: Path) -> Path:
    """Build brainnet's wheel offline from a copy of the sources (the working tree gets no build/ folder)."""
    import shutil
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("brainnet", "data_manifests"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path,
                   capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("brainnet-*.whl")
    return wheel


def test_wheel_ships_every_manifest_and_an_install_finds_them(tmp_path):
    """A non-editable install has no repository root: the manifests travel inside the package."""
    import subprocess
    import sys
    import zipfile

    from setuptools import find_packages

    wheel = _built_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT / "data_manifests").as_posix()
               for p in (ROOT / "data_manifests").rglob("*") if p.is_file()}
    assert shipped and {f"brainnet/data/manifests/{n}" for n in shipped} <= names
    # pyproject lists the packages (needed for the mapping): none may be left out.
    for package in find_packages(str(ROOT), include=["brainnet*"]):
        folder = ROOT.joinpath(*package.split("."))
        for module in folder.glob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, module

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import brainnet, json; from brainnet.datasets import manifests as M; "
        "print(json.dumps([brainnet.__file__, str(M.manifest_dir()), M.available_datasets(), "
        "M.load_manifest('ds004496').accession, str(M.data_manifest_path('weights.json'))]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "BRAINNET_MANIFEST_DIR"}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    module, folder, datasets, accession, weights = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(module).is_relative_to(site)  # the unpacked wheel, not the source tree
    assert Path(folder) == site / "brainnet" / "data" / "manifests" / "datasets"
    assert datasets == EXPECTED and accession == "ds004496"
    assert Path(weights).is_file() and Path(weights).read_bytes() == (ROOT / "data_manifests" / "weights.json").read_bytes()


def test_source_checkout_reads_the_repository_manifests():
    assert M.manifest_dir() == ROOT / "data_manifests" / "datasets"
    assert M.data_manifest_path("weights.json") == ROOT / "data_manifests" / "weights.json"
