"""Where brainnet keeps its caches (activations, downloaded weights, the embedded study)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the brainnet cache.

    The root is ``$BRAINNET_HOME`` when set, else ``$XDG_CACHE_HOME/brainnet``,
    else ``~/.cache/brainnet``.
    """
    root = os.environ.get("BRAINNET_HOME")
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "brainnet")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def inside(root: str | Path, name: str | Path, where: str | Path, what: str = "file",
           link_fix: str = "copy it into the folder instead of linking to it") -> Path:
    """``root / name``, refused unless it stays inside ``root`` (the one path policy).

    Every path brainnet builds from something it read or was given (a file
    of ``stimuli.tsv``, a study's ``stimuli/`` folder, a subject label of
    ``participants.tsv``, a manifest entry, a results sub-folder of
    ``--out``) goes through here, so nothing is read from or written to
    outside its root: absolute names, ``..``, control characters and
    symbolic links that lead out are all refused the same way.

    Parameters
    ----------
    root : str or Path
        The folder the path must stay in (itself trusted as given, links and all).
    name : str or Path
        The relative path read from ``where``.
    where : str or Path
        The file or option that named it (first in the error).
    what : str
        What ``name`` is, for the error ("file", "folder", ...).
    link_fix : str
        The fix given for a symbolic link that leads out.

    Returns
    -------
    Path
        ``root / name`` (not resolved).
    """
    from brainnet.errors import input_error

    text = str(name)
    if not text or any(ord(c) < 32 for c in text):
        raise input_error(where, f"{what} {text!r} is empty or holds control characters (e.g. a NUL byte)",
                          f"give a plain relative {what} name")
    rel = Path(text)
    if rel.is_absolute() or ".." in rel.parts or "\\" in text:
        raise input_error(where, f"{what} {text!r} is not inside {root}",
                          f"give {what} names relative to that folder (no absolute paths, '..' or backslashes)")
    path = Path(root) / rel
    try:
        real_root = Path(root).resolve()
        real = path.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, a name too long
        raise input_error(where, f"{what} {text!r} cannot be resolved ({err})", f"fix or remove {path}") from None
    if real != real_root and not real.is_relative_to(real_root):
        raise input_error(where, f"{what} {text!r} links outside {root} (to {real})", link_fix)
    return path
