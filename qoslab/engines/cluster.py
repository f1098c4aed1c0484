"""A local Dask cluster set up for capture work.

Decoding a chunk allocates and frees many arrays of a few hundred kilobytes to tens of
megabytes. Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed
memory goes back to the system at once; setting it also fixes glibc's mmap threshold at
128 KiB, so every such array is a fresh mapping, page-faulted in and unmapped again. On
capture chunks that costs about as much system CPU time as the decoding itself (measured with
benchmarks/bench_dask.py: worker system time 1.1 s → 0.3 s per worker for 5 M packets).
:func:`local_cluster` starts workers with glibc's own defaults instead (as any Python process
has, the pandas engine's included); a worker's memory then stays bounded by its chunks just
the same (tests/test_dask_engine.py checks it against Dask's memory limit).
"""

from __future__ import annotations

import contextlib
import os
import warnings

from ._dask import require_distributed

__all__ = ["local_cluster", "capture_worker_environ"]


def capture_worker_environ():
    """A ``dask.config.set`` context: workers started inside it keep glibc's malloc
    defaults (Dask's ``MALLOC_TRIM_THRESHOLD_`` is not set for them)."""
    import dask

    return dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})


@contextlib.contextmanager
def local_cluster(workers: int | None = None, *, memory_limit="auto",
                  dashboard_address: str | None = ":0"):
    """A ``distributed.LocalCluster`` and its ``Client`` for capture work: ``workers`` worker
    processes (default: the number of CPUs) of one thread each, glibc's malloc defaults.

    Yields the client; the cluster is closed on exit.
    """
    distributed = require_distributed("a local Dask cluster")
    workers = workers or os.cpu_count() or 1
    with capture_worker_environ(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dashboard's optional dependencies
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, memory_limit=memory_limit,
                                           dashboard_address=dashboard_address,
                                           silence_logs=40)
    with cluster, distributed.Client(cluster) as client:
        yield client
