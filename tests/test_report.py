"""Tests of brainnet.report: the self-contained HTML page, also in a real headless browser."""

from __future__ import annotations

import base64
import html.parser
import io
import shutil
import subprocess
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from test_plotting import EXPECTED_FIGURES, build_results_folder  # noqa: E402

from brainnet.errors import BrainnetError  # noqa: E402
from brainnet.plotting import FigureSkipped  # noqa: E402
from brainnet.report import write_report  # noqa: E402

# Brain maps are left out here (slow to draw; their figures are tested in
# test_plotting.py and in the report by the slow end-to-end test below).
RUNS = ["group_decode-fc8", "group_power-fc8", "group_rsa-fc8"]
FIGURES = {f for f in EXPECTED_FIGURES if not f.startswith("sub-") and "weights" not in f}


class _Page(html.parser.HTMLParser):
    """Collects the elements the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.images: list[dict[str, str]] = []
        self.tables: list[str] = []
        self.sections: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.scripts = 0
        self._in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "title":
            self._in_title = True
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append(attrs.get("class", ""))
        elif tag == "section":
            self.sections.append(attrs.get("id", ""))
        elif tag in ("link", "script") or (
            tag == "a" and not attrs.get("href", "#").startswith("#")
        ):
            self.links.append(f"{tag} {attrs}")
            self.scripts += tag == "script"

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = build_results_folder(
        tmp_path_factory.mktemp("report") / "results", parts=("decode", "power", "rsa")
    )
    for nifti in root.rglob("*.nii.gz"):
        nifti.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureSkipped)
        path = write_report(root)
    return root, path


def test_report_is_one_self_contained_page(report):
    root, path = report
    assert path == root / "report.html"
    page = _parse(path.read_text(encoding="utf-8"))
    assert page.title == "brainnet report: results"
    # every figure embedded as base64 PNG, nothing fetched from elsewhere
    assert len(page.images) == len(FIGURES)
    assert {img["alt"] for img in page.images} == FIGURES
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert page.links == [] and page.scripts == 0
    assert page.sections == [*RUNS, "group_rsa-layers"]


def test_report_tables_banner_and_provenance(report):
    _, path = report
    text = path.read_text(encoding="utf-8")
    page = _parse(text)
    assert "untrained-banner" in page.ids
    assert "UNTRAINED WEIGHTS" in text and "untrained-seed0" in text
    assert page.tables.count("overview") == 1
    assert page.tables.count("summary") == len(RUNS)
    assert page.tables.count("provenance") == len(RUNS)
    assert page.tables.count("layers") == 1
    # small result tables in full: power.tsv and decode's clusters.tsv
    assert page.tables.count("data") == 2
    assert "<h4>power.tsv</h4>" in text and "<h4>clusters.tsv</h4>" in text
    # summary numbers as saved (4 significant digits) and the decode noise ceiling
    assert '<td class="num">0.395</td>' in text and '<td class="num">0.79</td>' in text
    # rsa's ci list and the provenance's study path are shown
    assert "[0.1, 0.3]" in text
    assert str(path.parent / "study") in text


def _png_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))


def test_report_figures_show_the_data(report):
    _, path = report
    page = _parse(path.read_text(encoding="utf-8"))
    bars = next(img for img in page.images if img["alt"] == "group_decode-fc8_unit-scores")
    pixels = _png_pixels(base64.b64decode(bars["src"].split(",", 1)[1]))
    blue = np.all(pixels == [0x00, 0x72, 0xB2], axis=-1)
    assert blue.mean() > 0.05  # the Okabe-Ito blue bars fill a good part of the figure


def test_trained_weights_have_no_banner_and_skips_are_listed(tmp_path):
    root = build_results_folder(tmp_path / "res", weights="sha256:" + "ab" * 32, parts=("power",))
    (root / "group" / "power-fc8" / "power.tsv").write_text("a\tb\n1\t2\n")
    with pytest.warns(FigureSkipped, match="power.tsv needs 'n_subjects'"):
        path = write_report(root, out=tmp_path / "out" / "page.html")
    assert path == tmp_path / "out" / "page.html"
    text = path.read_text(encoding="utf-8")
    page = _parse(text)
    assert "untrained-banner" not in page.ids and "UNTRAINED" not in text
    assert "sha256:" + "ab" * 32 in text
    assert page.images == []
    assert "skipped figure group_power-fc8_power: power.tsv needs" in text


def test_report_escapes_html_in_results(tmp_path):
    from brainnet.results import ResultDir, make_provenance

    rd = ResultDir(tmp_path / "res" / "group" / "power-fc8", make_provenance(weights="w<b>"))
    rd.finish({"analysis": "power", "layer": "<script>alert(1)</script>"})
    with pytest.warns(FigureSkipped):
        path = write_report(tmp_path / "res")
    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "w&lt;b&gt;" in text


def test_report_errors_name_the_folder(tmp_path):
    with pytest.raises(BrainnetError, match="no such results folder"):
        write_report(tmp_path / "missing")
    with pytest.raises(BrainnetError) as err:
        write_report(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: holds no complete brainnet results")


def test_cli_report(tmp_path, capsys):
    from brainnet.cli import main

    root = build_results_folder(tmp_path / "res", parts=("power",))
    assert main(["report", "--results", str(root)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"wrote {root / 'report.html'} (open it in any browser; it needs no server)"
    assert len(_parse((root / "report.html").read_text()).images) == 1
    assert main(["report", "--results", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("brainnet report: error: ")


# ------------------------------------------------------- headless browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(
    _chromium() is None,
    reason="chromium is not installed (apt-get install chromium): "
    "the headless-browser check of the HTML report is skipped",
)
def test_report_renders_in_headless_chromium(report, tmp_path):
    root, path = report
    binary = _chromium()
    url = path.resolve().as_uri()
    dom = _run_chromium(binary, tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _parse(dom.stdout)
    assert page.title == "brainnet report: results"
    assert len(page.images) == len(FIGURES)
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert page.tables.count("summary") == len(RUNS) and page.tables.count("overview") == 1
    assert "untrained-banner" in page.ids
    assert page.sections == [*RUNS, "group_rsa-layers"]

    shot = tmp_path / "shot.png"
    result = _run_chromium(
        binary, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,3000", url
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = _png_pixels(shot.read_bytes())
    assert pixels.shape[:2] == (3000, 1280)
    # the untrained-weights banner (#fff3cd) is painted near the top of the page
    banner = np.all(pixels[:600] == [0xFF, 0xF3, 0xCD], axis=-1)
    assert banner.sum() > 20_000
    # the first figure (decode's unit bars, Okabe-Ito blue) is decoded and drawn
    blue = np.all(np.abs(pixels.astype(int) - [0x00, 0x72, 0xB2]) <= 2, axis=-1)
    assert blue.sum() > 5_000


# ------------------------------------------------ real analysis outputs


@pytest.mark.slow
def test_figures_and_report_on_real_analysis_outputs(tmp_path):
    """encode + decode + rsa on a small simulated study, then figures and report."""
    simulate = pytest.importorskip("brainnet.simulate")
    from brainnet.decoding import decode_units
    from brainnet.encoding import encode_subject
    from brainnet.plotting import make_figures
    from brainnet.rsa import network_as_subject

    study = simulate.simulate_study(tmp_path / "study", n_subjects=4, n_stimuli=24, seed=1)
    out = tmp_path / "results"
    encode_subject(study, "01", n_permutations=20, out=out)
    decode_units(study, n_permutations=20, n_bootstrap=20, n_cluster_draws=20, out=out)
    network_as_subject(study, layers=("conv1", "fc8"), n_permutations=50, n_bootstrap=20, out=out)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureSkipped)
        paths = make_figures(out)
        report = write_report(out)
    names = {p.name.rsplit(".", 1)[0] for p in paths}
    expected = {"sub-01_encode-fc8_r-map-glass", "sub-01_encode-fc8_r-map-stat", "group_rsa-layers"}
    expected |= {
        f"group_decode-fc8_{f}"
        for f in (
            "unit-scores",
            "confusion",
            "dendrogram",
            "pca",
            "weights-z-fdr05",
            "bootstrap-pca",
        )
    }
    for layer in ("conv1", "fc8"):
        expected |= {
            f"group_rsa-{layer}_{f}" for f in ("second-order", "mds", "network-rdm", "human-rdm")
        }
    assert names == expected
    page = _parse(report.read_text(encoding="utf-8"))
    assert {img["alt"] for img in page.images} == expected
    assert page.sections == [
        "group_decode-fc8",
        "group_rsa-conv1",
        "group_rsa-fc8",
        "sub-01_encode-fc8",
        "group_rsa-layers",
    ]
    assert "untrained-banner" in page.ids
