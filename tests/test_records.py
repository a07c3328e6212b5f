"""Every result record has one surface: summary, table, write/read, plot, repr and _repr_html_.

The records are built by the library's own analyses on small simulated data
(planted signal where the analysis needs one), written to a folder, read back
and compared field by field.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from brainnet._display import MAX_REPR, Record

matplotlib.use("Agg")


def _categories(rng, n_subjects=5, n_classes=3, per_class=6, n_voxels=40):
    y = np.repeat([f"c{k}" for k in range(n_classes)], per_class)
    latent = rng.normal(size=(n_classes, 6))[np.repeat(np.arange(n_classes), per_class)]
    humans = [latent @ rng.normal(size=(6, n_voxels)) + rng.normal(size=(y.size, n_voxels))
              for _ in range(n_subjects)]
    return humans, y


def _encode():
    from brainnet.encoding import encode

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    return encode(x, x @ rng.normal(size=(5, 80)) + rng.normal(size=(30, 80)), n_permutations=20)


def _decode():
    from brainnet.decoding import unit_decoding

    rng = np.random.default_rng(1)
    ids = [f"s{i}" for i in range(24)]
    units = rng.normal(size=(24, 6))
    patterns = [units @ rng.normal(size=(6, 50)) + rng.normal(size=(24, 50)) for _ in range(4)]
    return unit_decoding(patterns, [ids] * 4, units, ids, n_components=2, n_permutations=20,
                         n_bootstrap=4)


def _confusion():
    record = _decode().confusion
    assert record is not None
    return record


def _permutation():
    from brainnet.permutation import permutation_test

    return permutation_test(lambda idx: idx[:, :3].astype(float), 30, n_permutations=99)


def _naturalistic():
    from brainnet.naturalistic import encode_naturalistic

    rng = np.random.default_rng(2)
    return encode_naturalistic(rng.normal(size=(100, 60)), rng.normal(size=(100, 2)), frame_rate=1, tr=1,
                               gap_s=10)


def _categorize():
    from brainnet.categories import decode_categories

    rng = np.random.default_rng(3)
    humans, y = _categories(rng)
    return decode_categories(humans, [y] * len(humans), n_folds=5, n_permutations=3)


def _network_decoding():
    from brainnet.network_subject import decode_network_subject

    rng = np.random.default_rng(4)
    y = np.repeat([f"c{k}" for k in range(4)], 10)
    latent = rng.normal(size=(4, 8))[np.repeat(np.arange(4), 10)]
    humans = [latent @ rng.normal(size=(8, 60)) + 6 * rng.normal(size=(40, 60)) for _ in range(5)]
    net = latent @ rng.normal(size=(8, 20)) + 0.3 * rng.normal(size=(40, 20))
    return decode_network_subject(humans, net, y, n_folds=5, seed=1)


def _rsa():
    from brainnet import rsa

    rng = np.random.default_rng(5)
    base = rng.normal(size=(12, 8))
    humans = np.array([rsa.compute_rdm(base + rng.normal(size=(12, 8))).vector for _ in range(5)])
    nets = {"fc7": rsa.compute_rdm(base).vector, "fc8": rsa.compute_rdm(rng.normal(size=(12, 8))).vector}
    return rsa.rsa_network_subject(humans, nets, n_permutations=20, n_bootstrap=5, seed=0)


def _power():
    from brainnet.power import PowerResult, power_curve

    rng = np.random.default_rng(6)
    features = rng.normal(size=(16, 4))
    patterns = [features @ rng.normal(size=(4, 30)) + rng.normal(size=(16, 30)) for _ in range(6)]
    table = power_curve(patterns, [np.arange(16)] * 6, features, subject_sizes=(3, 6), n_repeats=2, n_pca=10,
                        n_components=2)
    return PowerResult(table=table, summary={"analysis": "power", "layer": "fc8"})


def _contrast():
    from brainnet.contrasts import paired_contrast_test

    rng = np.random.default_rng(7)
    x = rng.normal(size=30)
    ys = {"occipital": [x + rng.normal(size=30) for _ in range(6)],
          "whole-brain": [0.3 * x + rng.normal(size=30) for _ in range(6)]}

    def side(subjects):  # one value per subject: (n_batch, 6)
        return lambda perms: np.array([[np.corrcoef(x[p], y)[0, 1] for y in subjects] for p in perms])

    return paired_contrast_test({k: side(v) for k, v in ys.items()}, 30, n_permutations=19)


def _subjects_encoding(small_study, tmp_path_factory):
    from brainnet.encoding import encode_subjects

    study, feats = small_study
    return encode_subjects(study, "all", tmp_path_factory.mktemp("enc"), features=feats, n_permutations=5,
                           cv=2)


BUILDERS = {
    "encode": _encode,
    "decode": _decode,
    "confusion": _confusion,
    "permutation": _permutation,
    "naturalistic": _naturalistic,
    "categorize": _categorize,
    "network-decoding": _network_decoding,
    "rsa": _rsa,
    "power": _power,
    "encode-subjects": _subjects_encoding,
    "contrast": _contrast,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def record(request):
    build = BUILDERS[request.param]
    if request.param == "encode-subjects":
        return build(request.getfixturevalue("small_study"), request.getfixturevalue("tmp_path_factory"))
    return build()


def _record_classes():
    import importlib
    import pkgutil

    import brainnet

    found = set()
    for info in pkgutil.iter_modules(brainnet.__path__):
        if info.name in ("cli", "__main__") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"brainnet.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Record) and value is not Record:
                found.add(value.__name__)
    return found


def test_every_record_class_is_covered():
    built = {
        "EncodingResult", "DecodingResult", "ConfusionResult", "PermutationResult", "NaturalisticResult",
        "CategoryResult", "NetworkDecodingResult", "RSAResult", "PowerResult", "SubjectsEncodingResult",
        "ContrastResult",
    }
    assert _record_classes() == built


def _same(a, b, where="record"):
    """Field-by-field equality (NaN equals NaN; arrays exactly, dtypes included)."""
    if isinstance(a, pd.DataFrame | pd.Series):
        (pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame) else pd.testing.assert_series_equal)(a, b)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif hasattr(a, "affine") and hasattr(a, "dataobj"):
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj), err_msg=where)
        np.testing.assert_array_equal(a.affine, b.affine, err_msg=where)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b and type(a) is type(b) or (isinstance(a, np.generic) and a == b), (where, a, b)


def test_write_then_read_gives_an_equal_record(record, tmp_path):
    folder = record.write(tmp_path / "rec")
    back = type(record).read(folder)
    _same(dict(record.summary), dict(back.summary), "summary")
    pd.testing.assert_frame_equal(record.table, back.table)
    _same(record, back)
    assert repr(back) == repr(record)


def test_summary_is_a_dict_and_table_a_frame(record):
    assert isinstance(record.summary, dict) and record.summary
    assert isinstance(record.table, pd.DataFrame) and len(record.table)


def test_repr_is_short(record):
    text = repr(record)
    assert len(text) < MAX_REPR and text.startswith(type(record).__name__ + "(")


def test_html_shows_the_summary_table_and_the_main_figure(record):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    page = record._repr_html_()
    assert "<table>" in page and len(page) < 20_000
    found = re.search(r"<img alt='main figure' src='data:image/png;base64,([A-Za-z0-9+/=]+)'/>", page)
    assert found, type(record).__name__
    assert base64.b64decode(found.group(1)).startswith(b"\x89PNG")
    assert plt.get_fignums() == before  # the figures drawn for the page are closed


def test_plot_returns_figures_main_first(record):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    figures = record.plot()
    try:
        assert figures and all(isinstance(f, Figure) for f in figures)
        assert figures[0].axes and figures[0].axes[0].has_data()
    finally:
        for fig in figures:
            plt.close(fig)


def test_html_falls_back_to_the_table_when_plotting_fails(monkeypatch):
    record = _permutation()

    def broken(self):
        raise RuntimeError("no display")

    monkeypatch.setattr(type(record), "plot", broken)
    page = record._repr_html_()
    assert "<table>" in page and "<img" not in page


def test_callable_summaries_keep_working():
    nat, rsa = _naturalistic(), _rsa()
    assert nat.summary() is not None and nat.summary()["mean_r"] == nat.summary["mean_r"]
    assert rsa.summary("fc8")["layer"] == "fc8" and rsa.summary["n_subjects"] == 5


def test_categorize_network_decoding_naturalistic_and_power_get_figures_and_report(tmp_path):
    """The four analyses that had no figures: `brainnet figures` draws them and the report embeds them."""
    import html
    import json

    from brainnet.plotting import make_figures
    from brainnet.report import write_report
    from brainnet.results import ResultDir, make_provenance

    prov = make_provenance(weights="simulated", study={"path": "/no/such/study", "files_sha256": "0" * 64},
                           mask={"name": "occipital", "n_voxels": 40}, seed=0, parameters={"layer": "fc8"})
    out = tmp_path / "res"
    categories = _categorize()
    rd = ResultDir(out / "group" / "categorize-occipital", prov)
    categories.write(rd)
    rd.finish(categories.summary)
    _network_decoding().write(ResultDir(out / "group" / "network-decoding-fc8", prov))
    power = _power()
    rd = ResultDir(out / "group" / "power-fc8", prov)
    power.write(rd)
    rd.finish(power.summary)
    _naturalistic().write(out / "naturalistic", provenance=prov)

    written = {p.name for p in make_figures(out, formats=("png",))}
    assert written == {
        "group_categorize-occipital_accuracy.png",
        "group_categorize-occipital_confusion.png",
        "group_network-decoding-fc8_accuracy.png",
        "group_network-decoding-fc8_confusion-similarity.png",
        "group_power-fc8_power.png",
        "naturalistic_r-histogram.png",
    }
    manifest = json.loads((out / "figures" / "figures.json").read_text())
    # an array input has no brain grid: its glass brain is skipped, and says why
    assert [s["figure"] for s in manifest["skipped"]] == ["naturalistic_r-map-glass"]
    page = write_report(out).read_text()
    for entry in manifest["figures"]:
        assert html.escape(entry["caption"].split(".")[0]) in page, entry["figure"]
    assert page.count("data:image/png;base64,") >= len(written)
