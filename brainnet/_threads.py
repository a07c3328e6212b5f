"""One BLAS thread inside every kernel whose result brainnet promises bit-identical.

Why: OpenBLAS splits a product differently with one thread and with two, and
the sums then round differently. Measured with numpy's OpenBLAS 0.3.31
(SkylakeX kernels): a ``(20, 1904) @ (1904, 1904)`` float32 product and a
``(2000, 2000)`` float64 one differ in their last bits between 1 and 2
threads, while products with a short inner dimension (the encoding ridge's)
do not. A kernel that ran with the machine's thread count in one process and
with one thread in a Dask worker (whose nanny sets ``OMP_NUM_THREADS=1``) or
in an ``n_jobs`` thread would give other bits.

OpenBLAS's thread count is process-wide. A ``threadpool_limits`` block
restores, on exit, the count it found on entry, and threadpoolctl (>= 3.6)
lets only one Python thread at a time change OpenBLAS's count, silently
ignoring the others. Two threads of one process (Dask thread workers,
``n_jobs`` threads) that enter and leave such blocks at different times
therefore run with a count that depends on timing: the second one's limit is
ignored, and the first one, leaving, restores the machine's count while the
second is still computing. :func:`single_blas_thread` counts its users
instead: the first one in sets one thread, the last one out (whichever thread
that is) restores the original count, so every kernel inside runs with
exactly one BLAS thread however threads interleave. Both
BLAS libraries are limited (numpy's and scipy's, which are different
OpenBLAS builds).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()
_USERS = 0
_LIMITER: Any = None
_CONTROLLER: Any = None


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread, safely nested and shared between threads."""
    global _USERS, _LIMITER, _CONTROLLER
    with _LOCK:
        if _USERS == 0:
            if _CONTROLLER is None:  # scanning the loaded libraries takes ~20 ms: once per process
                import scipy.linalg  # noqa: F401 - scipy's own OpenBLAS must be loaded to be limited too
                from threadpoolctl import ThreadpoolController

                _CONTROLLER = ThreadpoolController()
            _LIMITER = _as_any_thread(lambda: _CONTROLLER.limit(limits=1, user_api="blas"))
        _USERS += 1
    try:
        yield
    finally:
        with _LOCK:
            _USERS -= 1
            if _USERS == 0:
                _as_any_thread(_LIMITER.restore_original_limits)
                _LIMITER = None


def _as_any_thread(change):
    """Run ``change`` (a limit or a restore) whichever thread calls: hand back OpenBLAS control after it.

    threadpoolctl gives control of OpenBLAS to the first thread that sets a limit
    and ignores the others until it is released; the last user out may be another
    thread than the first one in, so control is released around each change.
    """
    from threadpoolctl import OpenBLASController

    release = getattr(OpenBLASController, "clear_controlling_thread", None)  # threadpoolctl >= 3.6
    if release is not None:
        release(force=True)
    try:
        return change()
    finally:
        if release is not None:
            release(force=True)
