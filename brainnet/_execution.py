"""Where an analysis runs: here, or on a Dask cluster.

The one place that turns a ``--scheduler`` / ``scheduler=`` value into a
Dask client (:func:`dask_client`), and the context that sends every
permutation and bootstrap batch of the enclosed analyses to a cluster
(:func:`use_scheduler`). It sits below every analysis, so beta estimation,
the permutation engine and the multi-subject loops share it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from brainnet.errors import BrainnetError

__all__ = ["use_scheduler", "current_scheduler", "dask_client"]

_SCHEDULER: contextvars.ContextVar[Any] = contextvars.ContextVar("brainnet_scheduler", default=None)


@contextlib.contextmanager
def use_scheduler(scheduler: Any) -> Iterator[None]:
    """Run every permutation and bootstrap of the enclosed analyses on a Dask cluster.

    Parameters
    ----------
    scheduler : str or dask.distributed.Client
        A scheduler address (``"tcp://host:8786"``) or a client. Results are
        identical to a single-process run.

    Examples
    --------
    >>> with use_scheduler("tcp://10.0.0.5:8786"):  # doctest: +SKIP
    ...     brainnet.decode_units(study, n_permutations=10_000)
    """
    # An address gets one client for the whole block (None: run here, e.g. inside a Dask task).
    opened = dask_client(scheduler) if isinstance(scheduler, str) else contextlib.nullcontext(scheduler)
    with opened as client:
        token = _SCHEDULER.set(client)
        try:
            yield
        finally:
            _SCHEDULER.reset(token)


@contextlib.contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (address or client); one made here is closed afterwards.

    The one place that turns a ``--scheduler`` / ``scheduler=`` value into a
    client, with one-line errors for a bad value or an unreachable address.
    """
    try:
        from distributed import Client
    except ImportError:
        raise BrainnetError("scheduler= needs dask.distributed; pip install 'brainnet[dask]'") from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise BrainnetError(f"scheduler={scheduler!r}: pass a Dask scheduler address or a distributed.Client")
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise BrainnetError(
            f"--scheduler {scheduler}: cannot reach the Dask scheduler ({err}); "
            "check the address or leave --scheduler out to run here"
        ) from None
    try:
        yield client
    finally:
        client.close()


def current_scheduler() -> Any:
    """The Dask client or address set by the innermost :func:`use_scheduler`, or None."""
    return _SCHEDULER.get()
