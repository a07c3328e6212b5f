"""Tests of brainnet.report: the self-contained HTML page, also in a real headless browser."""

from __future__ import annotations

import base64
import html
import html.parser
import io
import json
import re
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
    assert page.sections == ["methods", *RUNS, "group_rsa-layers"]


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
    # result tables in full: decode's per-unit table and clusters, power.tsv
    assert page.tables.count("data") == 3
    assert "<h4>Units</h4>" in text and "<h4>Power</h4>" in text and "<h4>Clusters</h4>" in text
    # summary numbers as saved (4 significant digits), in words with units
    assert "<th>mean cross-validated r (Pearson)</th><td class=\"num\">0.395</td>" in text
    assert (
        "<th>share of the noise ceiling (cross-validated r / resubstitution r)</th>"
        "<td class=\"num\">0.79</td>"
    ) in text
    # rsa's ci list and the provenance's study path are shown; provenance is collapsed
    assert "[0.1, 0.3]" in text
    assert str(path.parent / "study") in text
    assert text.count("<details><summary>Provenance") == len(RUNS)


def test_report_is_written_in_words(report):
    _, path = report
    text = path.read_text(encoding="utf-8")
    headers = re.findall(r"<th>([^<]*)</th>", text)
    # no snake_case column or row names outside the collapsed provenance
    outside = text.split("<details>")[0] + "".join(p.split("</details>", 1)[-1] for p in text.split("<details>")[1:])
    assert not [h for h in re.findall(r"<th>([^<]*)</th>", outside) if "_" in h]
    assert len(headers) > 50
    # the per-unit decoding table, with its columns in words
    units = text.split("<h4>Units</h4>", 1)[1].split("</table>", 1)[0]
    assert "<th>p (FWE-corrected)</th>" in units and "<th>resubstitution r (ceiling)</th>" in units
    assert units.count("<tr>") == 1 + 20
    # the overview's main-result column is a sentence that names its statistic
    overview = text.split('<table class="overview">', 1)[1].split("</table>", 1)[0]
    assert "<th>main result</th>" in overview
    assert "mean unit decoding r = 0.395" in overview
    assert "network–human RDM similarity = 0.21" in overview
    # every figure has its caption under it
    captions = re.findall(r"<figcaption><b>([^<]*)\.</b> ([^<]*)</figcaption>", text)
    assert {c[0] for c in captions} == FIGURES and all(len(c[1]) > 60 for c in captions)


def test_report_methods_paragraph_from_the_provenance(report):
    _, path = report
    text = path.read_text(encoding="utf-8")
    methods = text.split('<section id="methods">', 1)[1].split("</section>", 1)[0]
    assert "Decoding: the" in methods and "PLS regression" in methods
    assert "RSA (layer fc8)" in methods and "Power:" in methods
    assert "untrained control weights (untrained-seed0)" in methods
    assert f"study {path.parent / 'study'}" in methods
    assert "Analyses were run with brainnet 0.1.0 (numpy " in methods
    assert "Kragel, P. A." in methods and "Nichols, T. E., &amp; Holmes" in methods
    assert "generated by brainnet from the provenance" in methods


def test_simulated_data_get_a_banner(tmp_path):
    root = build_results_folder(tmp_path / "res", parts=("power",))
    text = write_report(root).read_text(encoding="utf-8")
    assert "simulated-banner" not in _parse(text).ids  # a real study: no banner
    (root / "study" / "truth.json").write_text("{}")  # what brainnet simulate writes
    text = write_report(root).read_text(encoding="utf-8")
    assert "simulated-banner" in _parse(text).ids
    assert "SIMULATED DATA: 1 of the 1 results in this report were computed on a simulated study" in text


def test_report_reuses_up_to_date_figures(tmp_path):
    root = build_results_folder(tmp_path / "res", parts=("power", "rsa"))
    write_report(root)
    figures = root / "figures"
    stamps = {p.name: p.stat().st_mtime_ns for p in figures.glob("*.png")}
    assert len(stamps) == 6
    # a power result rewritten: only its figure is redrawn
    summary = root / "group" / "power-fc8" / "summary.json"
    # (its provenance untouched: a tampered provenance is refused, see test_bad_input)
    record = json.loads(summary.read_text())
    record["rerun"] = True
    summary.write_text(json.dumps(record))
    write_report(root)
    changed = {p.name for p in figures.glob("*.png") if p.stat().st_mtime_ns != stamps[p.name]}
    assert changed == {"group_power-fc8_power.png"}
    # a figure file removed: redrawn; the others still reused
    (figures / "group_rsa-fc8_mds.png").unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in figures.glob("*.png")}
    write_report(root)
    assert (figures / "group_rsa-fc8_mds.png").exists()
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in figures.glob("*.png") if p.name in stamps)


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


_CHECKER = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  document.body.setAttribute("data-check", JSON.stringify({images: images.length, broken}));
});
</script>"""


def _browser_check(binary: str, page: Path, profile: Path) -> dict:
    """Open ``page`` in headless chromium: images loaded or broken, and console messages.

    A copy of the page gets a small script that, once the page has loaded, writes
    into the DOM how many images it has and which failed to decode; chromium's
    console log (``--enable-logging``) catches script errors and anything logged.
    The report itself carries no script.
    """
    probe = profile.parent / f"probe-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _CHECKER + "</body>"))
    result = _run_chromium(
        binary, profile, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
        "--dump-dom", probe.resolve().as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'data-check="([^"]*)"', result.stdout)
    check = json.loads(html.unescape(found.group(1))) if found else {"images": None, "broken": None}
    check["console"] = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    check["dom"] = result.stdout
    return check


needs_chromium = pytest.mark.skipif(
    _chromium() is None,
    reason="chromium is not installed (apt-get install chromium): "
    "the headless-browser check of the HTML report is skipped",
)


@needs_chromium
def test_report_renders_in_headless_chromium(report, tmp_path):
    root, path = report
    binary = _chromium()
    check = _browser_check(binary, path, tmp_path / "profile")
    # every image decodes and has a size; no script error, nothing on the console
    assert check["images"] == len(FIGURES) and check["broken"] == [], check
    assert check["console"] == []
    page = _parse(check["dom"])
    assert page.title == "brainnet report: results"
    assert page.tables.count("summary") == len(RUNS) and page.tables.count("overview") == 1
    assert "untrained-banner" in page.ids
    assert page.sections == ["methods", *RUNS, "group_rsa-layers"]

    shot = tmp_path / "shot.png"
    result = _run_chromium(
        binary, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,12000",
        path.resolve().as_uri(),
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = _png_pixels(shot.read_bytes())
    assert pixels.shape[:2] == (12000, 1280)
    # the untrained-weights banner (#fff3cd) is painted near the top of the page
    banner = np.all(pixels[:800] == [0xFF, 0xF3, 0xCD], axis=-1)
    assert banner.sum() > 20_000
    # the decode unit bars (Okabe-Ito blue) are decoded and drawn
    blue = np.all(np.abs(pixels.astype(int) - [0x00, 0x72, 0xB2]) <= 2, axis=-1)
    assert blue.sum() > 5_000


@needs_chromium
def test_browser_check_fails_on_a_broken_page(report, tmp_path):
    """The check above is not vacuous: a corrupt image and a script error are both caught."""
    _, path = report
    text = path.read_text(encoding="utf-8")
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(
        text[:start] + "AAAAnotapng" + text[start + 40 :]
        + "<script>undefinedReportFunction();</script>",
        encoding="utf-8",
    )
    check = _browser_check(_chromium(), broken, tmp_path / "profile")
    assert check["images"] == len(FIGURES)
    assert len(check["broken"]) == 1  # the corrupted first figure does not decode
    assert any("undefinedReportFunction is not defined" in line for line in check["console"])


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
    text = report.read_text(encoding="utf-8")
    page = _parse(text)
    assert {img["alt"] for img in page.images} == expected
    # a simulated study: the banner says so; the methods paragraph covers all three analyses
    assert "simulated-banner" in page.ids
    methods = text.split('<section id="methods">', 1)[1].split("</section>", 1)[0]
    assert "Encoding (subject 01)" in methods and "Decoding:" in methods
    assert "RSA (layers conv1 and fc8)" in methods
    assert "<h4>Units</h4>" in text and "<h4>Peaks and clusters</h4>" in text
    assert page.sections == [
        "methods",
        "group_decode-fc8",
        "group_rsa-conv1",
        "group_rsa-fc8",
        "sub-01_encode-fc8",
        "group_rsa-layers",
    ]
    assert "untrained-banner" in page.ids


def test_report_of_an_analysis_without_figures_has_its_tables(tmp_path):
    from brainnet.results import ResultDir, make_provenance

    rd = ResultDir(tmp_path / "res" / "group" / "newthing-fc8", make_provenance(weights="w"))
    rd.finish({"analysis": "newthing", "layer": "fc8", "n_subjects": 3, "some_value": 0.5})
    text = write_report(tmp_path / "res").read_text(encoding="utf-8")
    page = _parse(text)
    assert page.sections == ["methods", "group_newthing-fc8"] and page.images == []
    assert "<th>some value</th>" in text and "<h2>Newthing, layer fc8</h2>" in text
