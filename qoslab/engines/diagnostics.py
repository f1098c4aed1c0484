"""Progress of long Dask work: Dask's own diagnostics, switched on where qoslab computes.

On a ``distributed`` cluster the bar is ``distributed.progress`` (a widget in Jupyter, text in
a terminal; the cluster's dashboard shows the task stream too); with Dask's local schedulers
it is ``dask.diagnostics.ProgressBar``. qoslab's Dask functions compute through
:func:`compute`, which shows the bar when asked (``progress=True``) or when a
:func:`progress` block is active::

    with qoslab.engines.progress():
        table = qoslab.capture.flows(packets)      # packets from read_captures(engine="dask")
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

__all__ = ["progress", "compute"]

_SHOW = contextvars.ContextVar("qoslab_dask_progress", default=False)


@contextlib.contextmanager
def progress(enabled: bool = True):
    """Show a progress bar for every Dask computation qoslab runs inside this block."""
    token = _SHOW.set(bool(enabled))
    try:
        yield
    finally:
        _SHOW.reset(token)


def current_client():
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:  # no client: Dask's local scheduler
        return None


def compute(*collections, progress: bool | None = None, what: str = ""):
    """``dask.compute(*collections)`` with a progress bar when ``progress`` (or an active
    :func:`progress` block) asks for one; returns the tuple of results."""
    import dask

    show = _SHOW.get() if progress is None else bool(progress)
    if not show:
        return dask.compute(*collections)
    client = current_client()
    if client is not None:
        from distributed import progress as distributed_progress

        futures = client.compute(list(collections))
        if _in_notebook():  # a widget, updated while the result is awaited
            from IPython.display import display

            display(distributed_progress(futures, notebook=True, multi=False))
        else:
            if what:
                print(what, file=sys.stderr, flush=True)
            with contextlib.redirect_stdout(sys.stderr):  # the text bar: results own stdout
                distributed_progress(futures, notebook=False, multi=False)
            print(file=sys.stderr, flush=True)
        return tuple(client.gather(futures))
    from dask.diagnostics import ProgressBar

    if what:
        print(what, file=sys.stderr, flush=True)
    with ProgressBar(out=sys.stderr):
        return dask.compute(*collections)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
