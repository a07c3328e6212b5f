"""Checks of parameters and resources made before any work or any output.

One function per kind of check, each with one message, so that every entry
point (Python API and CLI) refuses the same mistake with the same words. A
:class:`ParameterError` names the Python parameter (``seed=-1: ...``); the
command line re-spells it as its option (``--seed -1: ...``), see
``brainnet.cli._common.option_message``.

Resource limits are checked up front from sizes alone (array shapes times
item sizes, zip directory entries, NIfTI headers) against the memory of this
machine, so an impossible request is a one-line error at once instead of a
``MemoryError`` minutes later.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brainnet.errors import BrainnetError

# numpy's legacy RandomState (used by scikit-learn's KFold and friends) takes 32-bit seeds.
MAX_SEED = 2**32 - 1


def _python_spelling(parameter: str, value: Any) -> str:
    return f"{parameter}={value}"


class ParameterError(BrainnetError):
    """A parameter with an impossible value; the message names it and the fix.

    Parameters
    ----------
    parameter : str
        The Python parameter, e.g. ``"n_permutations"``.
    value : object
        The value given.
    problem : str
        What is wrong with it.
    fix : str
        What to do; each ``{}`` is replaced by the parameter spelled with the
        matching value of ``examples`` (``seed=0`` in Python, ``--seed 0`` on
        the command line).
    examples : sequence
        Values for the ``{}`` of ``fix``.
    """

    def __init__(self, parameter: str, value: Any, problem: str, fix: str, examples=()) -> None:
        self.parameter = parameter
        self.value = value
        self.problem = problem
        self.fix = fix
        self.examples = tuple(examples)
        super().__init__(self.render(_python_spelling))

    def render(self, spell: Callable[[str, Any], str]) -> str:
        """The message with the parameter spelled by ``spell(parameter, value)``."""
        fix = self.fix.format(*(spell(self.parameter, v) for v in self.examples))
        return " ".join(f"{spell(self.parameter, self.value)}: {self.problem}; {fix}".split())


def check_seed(seed: Any, parameter: str = "seed") -> int:
    """``seed`` as an int in ``0 .. 2**32 - 1``, else a :class:`ParameterError`."""
    ok = isinstance(seed, int | _np_integer()) and not isinstance(seed, bool) and 0 <= int(seed) <= MAX_SEED
    if not ok:
        raise ParameterError(parameter, seed, f"a seed must be a whole number from 0 to {MAX_SEED}",
                             "pass e.g. {}", examples=(0,))
    return int(seed)


def check_count(value: Any, parameter: str, minimum: int) -> int:
    """A count (permutations, folds, components ...) of at least ``minimum``."""
    ok = isinstance(value, int | _np_integer()) and not isinstance(value, bool) and int(value) >= minimum
    if not ok:
        raise ParameterError(parameter, value, f"must be {minimum} or more",
                             "pass {} or a larger number", examples=(minimum,))
    return int(value)


def check_n_jobs(n_jobs: Any, parameter: str = "n_jobs") -> int:
    """Worker count: a positive number, or -1 for every core."""
    ok = isinstance(n_jobs, int | _np_integer()) and not isinstance(n_jobs, bool) and (n_jobs >= 1 or n_jobs == -1)
    if not ok:
        raise ParameterError(parameter, n_jobs, "must be a positive number of workers, or -1 for every core",
                             "pass e.g. {} (results do not depend on it)", examples=(1,))
    return int(n_jobs)


def _np_integer():
    import numpy as np

    return np.integer


# ---------------------------------------------------------------- memory


def available_memory() -> int:
    """Bytes of memory this process may still use (available RAM)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is a dependency of distributed
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 1 << 62  # unknown: do not refuse


def format_bytes(n: float) -> str:
    """``1.5 GB`` style (powers of 1000)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_null_fits(n_draws: int, n_values: int, parameter: str = "n_permutations", itemsize: int = 8) -> None:
    """Refuse ``n_draws`` draws of ``n_values`` statistics that cannot fit in memory.

    The null distribution is kept whole (``(n_draws, n_values)`` float64) for
    max-statistic p-values, so its size is known before the first draw.
    """
    need = int(n_draws) * max(int(n_values), 1) * itemsize
    have = available_memory()
    if need > have:
        fewer = _round_down(max(have // (max(int(n_values), 1) * itemsize) // 2, 1))
        raise ParameterError(
            parameter, n_draws,
            f"the {n_draws} draws of the null distribution need at least {format_bytes(need)} "
            f"({n_values} value{'s' if n_values != 1 else ''} of {itemsize} bytes each) but "
            f"{format_bytes(have)} of memory is available",
            "pass {} or fewer", examples=(fewer,),
        )


def _round_down(n: int) -> int:
    """``1259587584`` -> ``1000000000``: a suggestion a person would type."""
    scale = 10 ** (len(str(n)) - 1)
    return n // scale * scale


# ---------------------------------------------------------------- output folders


def check_out(out: str | Path, option: str = "--out") -> Path:
    """Refuse an output path that cannot be a results folder, before anything is written.

    Refused: the filesystem root, an existing file, a name longer than the
    filesystem allows, a location this user may not write to.
    """
    path = Path(out).expanduser()
    shown = f"{option} {out}"
    if "\0" in str(path):
        raise BrainnetError(f"{shown!r}: contains a NUL byte; choose another {option}")
    absolute = Path(os.path.abspath(path))
    if absolute == Path(absolute.anchor):
        raise BrainnetError(f"{shown}: is the filesystem root; give a folder of its own, e.g. {option} results")
    # Long names first: stat() of such a path fails with an OSError of its own.
    name_max = _name_max(absolute)
    for part in absolute.parts:
        if len(os.fsencode(part)) > name_max:
            raise BrainnetError(
                f"{option} {str(out)[:40]}...: a folder name of {len(os.fsencode(part))} bytes, longer than the "
                f"{name_max} this filesystem allows; choose a shorter {option}"
            )
    try:
        is_file = path.exists() and not path.is_dir()
        existing = next(p for p in (absolute, *absolute.parents) if p.exists())
    except OSError as err:
        raise BrainnetError(f"{shown}: not a usable path ({err.strerror}); choose another {option}") from None
    if is_file:
        raise BrainnetError(f"{shown}: is a file, not a folder; remove it or choose another {option} folder")
    if not existing.is_dir():
        raise BrainnetError(f"{shown}: {existing} is a file, not a folder; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BrainnetError(f"{shown}: {existing} is not writable by this user; choose another {option} folder")
    return path


def _name_max(path: Path) -> int:
    for parent in (path, *path.parents):
        try:
            return int(os.pathconf(parent, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return 255  # pragma: no cover


_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def write_error(path: str | Path, err: OSError) -> BrainnetError:
    """The one-line error for a write that failed (disk full, read-only, too long ...)."""
    reason = err.strerror or type(err).__name__
    if err.errno in _DISK_FULL:
        return BrainnetError(f"{path}: cannot write ({reason}); free disk space (or raise the file size limit) "
                             "or choose an output folder on another disk, then rerun")
    return BrainnetError(f"{path}: cannot write ({reason}); choose an output folder you can write to, then rerun")


# minimum of each count parameter brainnet's analyses share
_COUNTS = {"n_permutations": 0, "n_bootstrap": 0, "n_cluster_draws": 0, "n_components": 1, "n_pca": 1,
           "n_repeats": 1, "n_folds": 2, "cv": 2, "batch_size": 1, "chunk_size": 1}


def check_options(**options: Any) -> None:
    """Check the shared options of an analysis entry point by name, before any data is read.

    ``seed``/``untrained_seed`` (:func:`check_seed`), ``n_jobs``
    (:func:`check_n_jobs`) and the counts of ``_COUNTS``; None means "default"
    and is not checked.
    """
    for name, value in options.items():
        if value is None:
            continue
        if name in ("seed", "untrained_seed"):
            check_seed(value, name)
        elif name == "n_jobs":
            check_n_jobs(value)
        elif name in _COUNTS:
            check_count(value, name, _COUNTS[name])
            if name in ("n_permutations", "n_bootstrap", "n_cluster_draws"):
                check_null_fits(value, 1, name)  # at least one float64 per draw: refuse before any data is read
        else:  # pragma: no cover - a programming error
            raise TypeError(f"check_options: unknown option {name!r}")


# ---------------------------------------------------------------- NIfTI images


def check_image(img: Any, path: str | Path, fix: str) -> None:
    """Refuse a NIfTI whose header is unusable, before its voxels are read.

    A NaN/Inf affine places voxels nowhere; a header whose shape times the
    float32 size exceeds the available memory is refused with both figures
    (a corrupt header, or an image too big for this machine), and an
    uncompressed file shorter than its header promises is truncated.
    """
    import numpy as np

    from brainnet.errors import input_error

    affine = getattr(img, "affine", None)
    if affine is None or not np.all(np.isfinite(affine)):
        raise input_error(path, "its affine (voxel-to-world matrix) holds NaN or Inf", fix)
    shape = tuple(int(n) for n in img.shape)
    need = int(np.prod(shape, dtype=np.float64)) * 4
    have = available_memory()
    if need > have:
        raise input_error(
            path,
            f"its header claims a {' x '.join(map(str, shape))} image ({format_bytes(need)} as float32), more than "
            f"the {format_bytes(have)} of memory available",
            "check the file (its header may be corrupt), or crop or resample the image",
        )
    proxy = getattr(img, "dataobj", None)
    offset = getattr(proxy, "offset", None)
    if offset is not None and not str(path).endswith(".gz") and hasattr(proxy, "dtype"):
        stored = int(offset) + int(np.prod(shape)) * np.dtype(proxy.dtype).itemsize
        size = Path(path).stat().st_size
        if size < stored:
            raise input_error(path, f"is truncated ({size} bytes, its header needs {stored})", fix)


def read_image(img: Any, path: str | Path, fix: str, dtype: Any = "float32"):
    """The voxels of a checked NIfTI as an array; a truncated or corrupt file is a one-line error."""
    import zlib

    import numpy as np

    from brainnet.errors import input_error

    try:
        return np.asarray(img.dataobj, dtype=dtype)
    except (EOFError, OSError, zlib.error, ValueError) as err:
        raise input_error(path, f"is truncated or corrupt ({type(err).__name__} while reading the voxels)", fix) from None
