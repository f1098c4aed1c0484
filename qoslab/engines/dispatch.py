"""One analysis API for both engines: a function given a Dask frame runs on Dask.

The pandas functions (:func:`qoslab.capture.flows`, :meth:`qoslab.FlowClassifier.classify` …)
carry :func:`dask_aware`; when their ``packets`` argument is a Dask collection the call goes
to the function of the same name in :mod:`qoslab.engines.dask_analysis`, which maps the
pandas function over the partitions and combines. This module imports nothing heavy: Dask is
imported only when a Dask collection is actually passed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable

__all__ = ["dask_aware", "is_dask"]


def is_dask(obj) -> bool:
    """Is ``obj`` a Dask collection (DataFrame, Series …)? Never imports Dask.

    >>> import pandas as pd
    >>> is_dask(pd.DataFrame())
    False
    """
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "__dask_graph__")


def dask_aware(name: str) -> Callable:
    """Route calls whose ``packets`` argument is a Dask collection to
    ``qoslab.engines.dask_analysis.<name>`` (same signature; methods get ``self`` first)."""
    def decorate(func: Callable) -> Callable:
        position = list(inspect.signature(func).parameters).index("packets")

        @functools.wraps(func)
        def call(*args, **kwargs):
            packets = args[position] if len(args) > position else kwargs.get("packets")
            if is_dask(packets):
                engine = importlib.import_module("qoslab.engines.dask_analysis")
                return getattr(engine, name)(*args, **kwargs)
            return func(*args, **kwargs)

        return call

    return decorate
