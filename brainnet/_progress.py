"""Progress bars: one switch for the whole library.

Every long step (extraction, permutations, bootstraps, subjects, chunks) takes a
``progress`` argument; :func:`show_progress` turns every bar on at once, which
is what the command line does when stderr is a terminal and ``--quiet`` is not
given. Bars are tqdm's auto bars: text in a terminal, widgets in a notebook.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_SHOW: contextvars.ContextVar[bool] = contextvars.ContextVar("brainnet_show_progress", default=False)


@contextlib.contextmanager
def show_progress(enabled: bool = True) -> Iterator[None]:
    """Within this block, every brainnet progress bar is shown (``enabled=False``: none is forced on)."""
    token = _SHOW.set(bool(enabled))
    try:
        yield
    finally:
        _SHOW.reset(token)


def progress_bar(total: int, *, unit: str, desc: str | None = None, enabled: bool = False,
                 initial: int = 0, leave: bool = False):
    """A tqdm bar, shown when the caller asked for it or :func:`show_progress` is on."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, leave=leave,
                disable=not (enabled or _SHOW.get()))
