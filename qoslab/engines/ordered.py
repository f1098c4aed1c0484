"""A Dask capture set consumed in order: workers decode ahead, one consumer walks the packets.

Some work cannot be split by partition: a queue replayed over captured traffic carries its
state (backlog, perturbation timer, deficit counters) from one packet to the next, across
every flow. :func:`iter_partitions` gives such a consumer the set's partitions in set order
(file, then frame: for a ring buffer, time order), each flow's packets in order, while the
workers decode the next ``prefetch`` chunks in parallel; the consumer holds one partition at
a time. This is the Dask form of capture replay: ``for part in iter_partitions(packets):
replay.feed(part)``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pandas as pd

from .diagnostics import current_client
from .dispatch import is_dask

__all__ = ["iter_partitions"]


def iter_partitions(packets, *, prefetch: int = 2) -> Iterator[pd.DataFrame]:
    """Yield the pandas partitions of a Dask frame in order, ``prefetch`` being decoded ahead.

    With a ``distributed.Client`` the next partitions are computed on the workers while the
    caller works on the current one; with Dask's local schedulers they are computed one by
    one. A pandas frame is yielded as it is.

    Examples
    --------
    >>> import pandas as pd
    >>> [len(p) for p in iter_partitions(pd.DataFrame({"a": [1, 2]}))]
    [2]
    """
    if prefetch < 1:
        raise ValueError(f"prefetch must be >= 1, got {prefetch}")
    if not is_dask(packets):
        yield packets
        return
    parts = iter(packets.to_delayed())
    client = current_client()
    if client is None:
        for part in parts:
            yield part.compute()
        return
    ahead = collections.deque(client.compute(p) for _, p in zip(range(prefetch), parts,
                                                                 strict=False))
    while ahead:
        future = ahead.popleft()
        following = next(parts, None)
        if following is not None:
            ahead.append(client.compute(following))
        result = future.result()
        future.release()
        yield result
