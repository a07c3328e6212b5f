"""A self-contained HTML report of saved brainnet results.

:func:`write_report` turns a results folder (the ``--out`` of one or more
analyses) into a single ``report.html``: an overview table, then per analysis
its summary numbers, its figures (embedded as base64 PNG, so the page needs
no server, no network and no companion files) and its provenance. When any
result was computed with untrained network weights the page opens with a
banner saying so. Figures are drawn from the saved files by
:mod:`brainnet.plotting`; nothing is recomputed.

The page is plain HTML and CSS written with the standard library: a template
engine (jinja2) would add a dependency for one page.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainnet.plotting import (
    FigureSkipped,
    _check_results_dir,
    _figure_jobs,
    _find_runs,
    _read_tsv,
    _render,
    _run_label,
    publication_style,
)
from brainnet.results import atomic_write_text, brainnet_version

__all__ = ["write_report"]

# Summary keys shown in the overview table, in this order, when present.
_OVERVIEW_KEYS = (
    "analysis",
    "layer",
    "model",
    "n_subjects",
    "n_stimuli",
    "n_voxels",
    "mean_r",
    "network_human_r",
    "p_value",
    "n_permutations",
)
_HIDDEN_KEYS = {"provenance", "fingerprint", "complete"}
# Small per-run tables worth reading in full (larger ones, e.g. voxel_scores.tsv, are not).
_TABLES = ("power.tsv", "subjects.tsv", "confusion_per_category.tsv", "clusters.tsv")

_CSS = """
body { font-family: Arial, Helvetica, 'DejaVu Sans', sans-serif; margin: 2em auto;
       max-width: 70em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
.scroll { overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.banner { background: #fff3cd; border: 2px solid #D55E00; padding: 0.8em 1em; margin: 1em 0;
          font-weight: bold; }
.meta, .skipped { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 0.85em; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_format(v)}" for k, v in value.items())
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    cls = ' class="num"' if numeric else ""
    return f"<td{cls}>{_esc(_format(value))}</td>"


def _key_value_table(items: Mapping[str, Any], css_class: str) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(v)}</tr>" for k, v in items.items())
    return f'<table class="{css_class}">{rows}</table>'


def _frame_table(frame: pd.DataFrame, css_class: str, max_rows: int = 50) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        values = [v.item() if isinstance(v, np.generic) else v for v in row]
        values = [None if isinstance(v, float) and np.isnan(v) else v for v in values]
        body.append("<tr>" + "".join(_cell(v) for v in values) + "</tr>")
    note = ""
    if len(frame) > max_rows:
        note = f'<p class="meta">First {max_rows} of {len(frame)} rows.</p>'
    return (
        f'<div class="scroll"><table class="{css_class}"><tr>{head}</tr>'
        f"{''.join(body)}</table></div>{note}"
    )


def _weights(summary: Mapping[str, Any]) -> str | None:
    weights = (summary.get("provenance") or {}).get("weights")
    return None if weights is None else str(weights)


def _is_untrained(weights: str | None) -> bool:
    return weights is not None and weights.startswith("untrained")


def _png_base64(fig: Any) -> str:
    buf = io.BytesIO()
    with publication_style():
        fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures_html(jobs: list[tuple[str, Any]]) -> tuple[str, list[str]]:
    import matplotlib.pyplot as plt

    parts, skipped = [], []
    for name, thunk in jobs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FigureSkipped)
            fig = _render(name, thunk)
        for w in caught:
            if issubclass(w.category, FigureSkipped):
                skipped.append(str(w.message))
                # listed on the page, and passed on so the CLI can print it
                warnings.warn(w.message, FigureSkipped, stacklevel=2)
        if fig is None:
            continue
        try:
            data = _png_base64(fig)
        finally:
            plt.close(fig)
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(name)}">'
            f"<figcaption>{_esc(name)}</figcaption></figure>"
        )
    return "".join(parts), skipped


def _provenance_html(provenance: Mapping[str, Any]) -> str:
    if not provenance:
        return '<p class="meta">No provenance recorded.</p>'
    simple = {k: v for k, v in provenance.items() if not isinstance(v, Mapping)}
    nested = {k: v for k, v in provenance.items() if isinstance(v, Mapping)}
    text = "".join(
        f"<h4>{_esc(k)}</h4><pre>{_esc(json.dumps(v, indent=2, sort_keys=True, default=str))}</pre>"
        for k, v in nested.items()
    )
    return _key_value_table(simple, "provenance") + text


def _tsv_html(path: Path) -> str:
    try:
        table = _frame_table(_read_tsv(path), "data")
    except (OSError, ValueError) as exc:
        return f'<p class="skipped">{_esc(path.name)} unreadable: {_esc(exc)}</p>'
    return f"<h4>{_esc(path.name)}</h4>{table}"


def _section(results_dir: Path, run: Path, summary: Mapping[str, Any], jobs: list) -> str:
    label = _run_label(results_dir, run)
    shown = {k: v for k, v in summary.items() if k not in _HIDDEN_KEYS}
    figures, skipped = _figures_html(jobs)
    skipped_html = "".join(f'<p class="skipped">{_esc(s)}</p>' for s in skipped)
    weights = _weights(summary)
    banner = ""
    if _is_untrained(weights):
        banner = f'<p class="banner">Computed with untrained network weights ({_esc(weights)}).</p>'
    tables = "".join(_tsv_html(run / name) for name in _TABLES if (run / name).exists())
    return (
        f'<section class="run" id="{_esc(label)}"><h2>{_esc(label)}</h2>{banner}'
        f"<h3>Summary</h3>{_key_value_table(shown, 'summary')}{tables}"
        f"<h3>Figures</h3>{figures or '<p class=meta>No figures.</p>'}{skipped_html}"
        f"<details><summary>Provenance</summary>"
        f"{_provenance_html(summary.get('provenance') or {})}</details></section>"
    )


def _layers_section(results_dir: Path, path: Path, jobs: list) -> str:
    label = _run_label(results_dir, path.parent) + "_rsa-layers"
    figures, skipped = _figures_html(jobs)
    try:
        table = _frame_table(_read_tsv(path), "layers")
    except (OSError, ValueError) as exc:
        table = f'<p class="skipped">{_esc(path.name)} unreadable: {_esc(exc)}</p>'
    skipped_html = "".join(f'<p class="skipped">{_esc(s)}</p>' for s in skipped)
    return (
        f'<section class="run" id="{_esc(label)}"><h2>Layer profile ({_esc(path.name)})</h2>'
        f"{table}{figures}{skipped_html}</section>"
    )


def _overview(results_dir: Path, runs: list[tuple[Path, dict[str, Any]]]) -> str:
    rows = []
    for run, summary in runs:
        row = {"result": _run_label(results_dir, run)}
        row.update({k: summary.get(k) for k in _OVERVIEW_KEYS if k in summary})
        row["weights"] = _weights(summary)
        rows.append(row)
    frame = pd.DataFrame(rows)
    return _frame_table(frame, "overview", max_rows=1000)


def _banner(runs: list[tuple[Path, dict[str, Any]]]) -> str:
    untrained = sorted({w for _, s in runs if _is_untrained(w := _weights(s))})
    if not untrained:
        return ""
    return (
        '<div class="banner" id="untrained-banner">UNTRAINED WEIGHTS: results in this report '
        f"were computed with untrained EmoNet weights ({_esc(', '.join(untrained))}), a control "
        "model, not the trained EmoNet of Kragel et al. (2019). Rerun with --weights PATH "
        "(e.g. after brainnet fetch weights) for the real network.</div>"
    )


def write_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write one self-contained HTML page describing the results in ``results_dir``.

    Parameters
    ----------
    results_dir : str or Path
        The ``--out`` folder of one or more brainnet analyses.
    out : str or Path, optional
        Where to write the page (default ``<results_dir>/report.html``).

    Returns
    -------
    Path
        The written HTML file. It embeds every figure (base64 PNG) and needs
        no server or network: open it with any browser.

    Notes
    -----
    Figures whose inputs are missing are listed as skipped on the page (and
    warned as :class:`~brainnet.plotting.FigureSkipped`); the rest of the
    page is still written.
    """
    from brainnet.errors import input_error

    results_dir = _check_results_dir(results_dir)
    runs = _find_runs(results_dir)
    jobs = _figure_jobs(results_dir)
    if not runs and not jobs:
        raise input_error(
            results_dir,
            "holds no complete brainnet results (no summary.json with complete: true)",
            "run an analysis (e.g. brainnet decode --out DIR) first and pass that DIR",
        )
    by_run: dict[Path | None, list] = {}
    layer_jobs: dict[str, list] = {}
    for name, run, _summary, thunk in jobs:
        if run is None:
            layer_jobs.setdefault(name, []).append((name, thunk))
        else:
            by_run.setdefault(run, []).append((name, thunk))
    sections = [_section(results_dir, run, summary, by_run.get(run, [])) for run, summary in runs]
    for path in sorted(results_dir.rglob("rsa-layers.tsv")):
        if "figures" in path.relative_to(results_dir).parts:
            continue
        name = _run_label(results_dir, path.parent) + "_rsa-layers"
        sections.append(_layers_section(results_dir, path, layer_jobs.get(name, [])))
    toc = "".join(
        f'<li><a href="#{_esc(label)}">{_esc(label)}</a></li>'
        for label in [_run_label(results_dir, run) for run, _ in runs]
    )
    title = f"brainnet report: {results_dir.resolve().name}"
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        f'<p class="meta">Written {_esc(created)} by brainnet {_esc(brainnet_version())} '
        f"from {_esc(results_dir.resolve())}.</p>"
        f"{_banner(runs)}<h2>Overview</h2>{_overview(results_dir, runs)}"
        f'<nav><ul class="toc">{toc}</ul></nav>'
        f"{''.join(sections)}</body></html>\n"
    )
    out = results_dir / "report.html" if out is None else Path(out)
    return atomic_write_text(out, page)
