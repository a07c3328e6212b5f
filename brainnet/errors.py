"""User-facing errors.

A :class:`BrainnetError` is a mistake in the user's input (a file, an option,
a study layout). Its message is one line that names the offending file or
option and says how to fix it. The CLI prints it without a traceback and
exits with status 2; the Python API simply raises it.
"""

from __future__ import annotations

import warnings
from pathlib import Path


class BrainnetError(ValueError):
    """A user error with a one-line message naming the input and the fix.

    A :class:`ValueError`, so code that catches bad values catches it too.
    """

    def __init__(self, message: str) -> None:
        # Keep the message on one line whatever the caller passed in.
        super().__init__(" ".join(str(message).split()))


class BrainnetNotice(UserWarning):
    """Something the user should know that is not an error (data dropped, a default used).

    Library code never prints: it warns with this category. The command line
    shows each notice as one ``brainnet: <message>`` line on stderr; in Python
    it is an ordinary warning (filter it with :mod:`warnings`).
    """


def notice(message: str) -> None:
    """Warn the user with a one-line :class:`BrainnetNotice`."""
    warnings.warn(BrainnetNotice(" ".join(str(message).split())), stacklevel=2)


def input_error(path: str | Path, problem: str, fix: str) -> BrainnetError:
    """Build the canonical ``"<path>: <problem>; <fix>"`` error.

    Parameters
    ----------
    path : str or Path
        The file or option that is wrong.
    problem : str
        What is wrong with it.
    fix : str
        What the user should do.
    """
    return BrainnetError(f"{path}: {problem}; {fix}")
