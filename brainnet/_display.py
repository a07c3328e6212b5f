"""How result records show themselves: a short ``repr`` and an HTML summary in notebooks.

A record's arrays (nulls of 10,000 permutations, maps of 50,000 voxels) are
what make it useful and what make a generated dataclass ``repr`` tens of
thousands of characters long; here a record prints its headline numbers and
the shapes of what it holds instead.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

MAX_REPR = 1000


class Record:
    """Mixin of every result record: ``repr`` under :data:`MAX_REPR` characters and ``_repr_html_``.

    Subclasses are dataclasses declared with ``repr=False``; they may override
    :meth:`_headline` (the scalar numbers worth showing, default: the scalars
    of ``summary``).
    """

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
        return text if len(text) <= MAX_REPR else text[: MAX_REPR - 5] + " ...)"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in {**self._headline(), **self._contents()}.items()
        )
        return f"<div><strong>{html.escape(type(self).__name__)}</strong><table>{rows}</table></div>"


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
