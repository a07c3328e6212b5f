"""Verified downloads: temporary name, size and sha256 checked, renamed only when correct.

pooch's :class:`~pooch.HTTPDownloader` does the HTTP transfer and draws the
progress bar; the verification and the atomic rename are done here rather
than by :func:`pooch.retrieve`, because brainnet also checks the size (to say
"truncated" instead of "checksum mismatch"), accepts files whose sha256 is not
published, and must leave nothing at the destination when a check fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from brainnet.errors import input_error
from brainnet.results import sha256_file

__all__ = ["download"]

_CHUNK = 1 << 20


def _fetch(url: str, tmp: Path, progress: bool, timeout: float) -> None:
    import pooch
    import requests

    # identity: a gzip-encoded transfer would be decoded by requests and break the size check.
    downloader = pooch.HTTPDownloader(
        progressbar=progress,
        chunk_size=_CHUNK,
        timeout=timeout,
        headers={"Accept-Encoding": "identity", "User-Agent": "brainnet"},
    )
    try:
        downloader(url, str(tmp), None)
    except requests.exceptions.HTTPError as err:
        status = err.response.status_code if err.response is not None else "error"
        raise input_error(url, f"server answered HTTP {status}", "check the URL or download the file by hand and pass its path") from None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
        got = tmp.stat().st_size if tmp.exists() else 0
        raise input_error(url, f"download truncated after {got} bytes (connection closed early)", "retry the download; nothing was saved") from None
    except (requests.exceptions.RequestException, OSError) as err:
        raise input_error(url, f"cannot download ({type(err).__name__})", "check the network connection, or download the file by hand and pass its path") from None


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, verified, atomically.

    Parameters
    ----------
    url : str
        HTTP(S) address.
    dest : str or Path
        Final file path. An existing file that passes the checks is reused
        without downloading.
    sha256 : str, optional
        Expected hex sha256; None when not published (the file's sha256 is
        then recorded by whoever uses it, e.g. in provenance).
    size : int, optional
        Expected size in bytes.
    progress : bool
        Show a tqdm progress bar.
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    BrainnetError
        One line, for an unreachable server, an HTTP error, a truncated
        transfer, a size or a sha256 mismatch. Nothing is left at ``dest``
        (nor any temporary file) after a failure.
    """
    dest = Path(dest).expanduser()
    sha256 = sha256.lower() if sha256 else None
    if dest.is_file() and _verified(dest, sha256, size) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        _fetch(url, tmp, progress, timeout)
        problem = _verified(tmp, sha256, size)
        if problem is not None:
            raise input_error(url, problem, f"retry the download; nothing was saved at {dest}")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def _verified(path: Path, sha256: str | None, size: int | None) -> str | None:
    """None when ``path`` matches; else what is wrong, for the error message."""
    got_size = path.stat().st_size
    if size is not None and got_size != size:
        kind = "truncated" if got_size < size else "too large"
        return f"download {kind}: got {got_size} bytes, expected {size}"
    if sha256 is not None:
        got = sha256_file(path, chunk_size=_CHUNK)
        if got != sha256:
            return f"sha256 mismatch: got {got}, expected {sha256}"
    return None

