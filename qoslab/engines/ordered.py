"""A Dask capture set consumed in order: workers decode ahead, one consumer walks the packets.

Some work cannot be split by partition: a queue replayed over captured traffic carries its
state (backlog, perturbation timer, deficit counters) from one packet to the next, across
every flow. :func:`iter_partitions` gives a consumer the set's partitions in set order (file,
then frame), while the workers decode the next ``prefetch`` chunks in parallel; the consumer
holds one partition at a time. :func:`iter_time_merged` gives the rows in time order, merged
from the partitions — what a replay needs when files overlap in time or come out of order
(two interfaces captured side by side, files named out of time order): the order of the
pandas frame sorted as a whole, holding only the partitions that overlap.
This is the Dask form of capture replay (:func:`qoslab.replay` of a Dask frame).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from ..capture.reader import concat_packets
from .diagnostics import compute, current_client
from .dispatch import is_dask

__all__ = ["iter_partitions", "iter_time_merged"]


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
    yield from _computed(packets.to_delayed(), prefetch)


def _computed(delayeds, prefetch: int) -> Iterator[pd.DataFrame]:
    """Compute Dask delayed objects one after the other, ``prefetch`` of them ahead."""
    parts = iter(delayeds)
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


class _Bounds:
    """Partition function of :func:`iter_time_merged`: rows, earliest and latest key."""

    def __init__(self, key: Callable[[pd.DataFrame], np.ndarray]):
        self.key = key

    def __call__(self, part: pd.DataFrame) -> pd.DataFrame:
        k = np.asarray(self.key(part), dtype=float)
        timed = k[~np.isnan(k)]
        return pd.DataFrame({"n": [len(part)], "keyed": [len(timed)],
                             "lo": [timed.min() if len(timed) else np.nan],
                             "hi": [timed.max() if len(timed) else np.nan]})


def iter_time_merged(packets, key: Callable[[pd.DataFrame], np.ndarray], *,
                     prefetch: int = 2, bounds: pd.DataFrame | None = None
                     ) -> Iterator[tuple[pd.DataFrame, np.ndarray, int | None]]:
    """Yield ``(chunk, rows, moved)``: every row of a frame, in order of ``key`` (then row),
    merged from its partitions; ``rows`` are the chunk's positions in the frame, ``moved`` how
    many of its keyed rows are not at their rank among the keyed rows of the frame (what a
    stable sort of the whole frame would have moved; ``None`` for a pandas frame, given as
    it is, to be sorted by the consumer).

    ``key(partition)`` gives one float per row (NaN: no key; such rows come as they are met).
    A first pass computes each partition's key range (``bounds``, when given — e.g. from a
    capture set's plan, :func:`qoslab.engines.captures.time_bounds` — spares it: each
    partition is then decoded once); partitions are then read in order of
    their earliest key (``prefetch`` ahead on the workers), and the rows below the next
    partition's earliest key are given, sorted. A set whose files follow each other in time
    (a ring buffer) holds one partition at a time; files whose time ranges overlap (two
    interfaces, two probes) hold the partitions that overlap — the pandas order
    (a stable sort of the whole frame by key) without the whole frame in memory.

    Examples
    --------
    >>> import pandas as pd
    >>> [(list(c["t"]), r.tolist(), m) for c, r, m in iter_time_merged(
    ...     pd.DataFrame({"t": [2.0, 1.0, 1.0]}), lambda p: p["t"].to_numpy())]
    [([2.0, 1.0, 1.0], [0, 1, 2], None)]
    """
    if prefetch < 1:
        raise ValueError(f"prefetch must be >= 1, got {prefetch}")
    if not is_dask(packets):
        yield packets, np.arange(len(packets), dtype=np.int64), None
        return
    if bounds is None:
        meta = _Bounds(key)(packets._meta)
        (bounds,) = compute(packets.map_partitions(_Bounds(key), meta=meta),
                            what="time ranges of the partitions")
    elif len(bounds) != packets.npartitions:
        raise ValueError(f"iter_time_merged: {len(bounds)} bounds for "
                         f"{packets.npartitions} partitions")
    n = bounds["n"].to_numpy(dtype=np.int64)
    lo = bounds["lo"].to_numpy(dtype=float)
    offsets = np.concatenate([[0], np.cumsum(n)[:-1]])
    keyed_before = np.concatenate([[0], np.cumsum(bounds["keyed"].to_numpy(np.int64))[:-1]])
    given = 0  # keyed rows given so far
    # partitions without any key first (their rows are given as met), then by earliest key
    order = sorted(range(len(n)), key=lambda i: (not np.isnan(lo[i]), lo[i] if not
                                                 np.isnan(lo[i]) else 0.0, i))
    parts = packets.to_delayed()
    pending: list[tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]] = []
    for j, part in enumerate(_computed([parts[i] for i in order], prefetch)):
        i = order[j]
        k = np.asarray(key(part), dtype=float)
        rows = offsets[i] + np.arange(len(part), dtype=np.int64)
        keyed = ~np.isnan(k)
        rank = keyed_before[i] + np.cumsum(keyed) - 1  # among the frame's keyed rows
        if not keyed.all():
            yield part[~keyed], rows[~keyed], 0
            part, rows, k, rank = part[keyed], rows[keyed], k[keyed], rank[keyed]
        if len(part):
            pending.append((part, rows, k, rank))
        below = lo[order[j + 1]] if j + 1 < len(order) else np.inf
        if pending:
            chunk, rows, k, rank = _merged(pending)
            ready = k < below
            pending = [] if ready.all() else [
                (chunk[~ready], rows[~ready], k[~ready], rank[~ready])]
            if ready.any():
                m = int(ready.sum())
                moved = int((rank[ready] != given + np.arange(m)).sum())
                given += m
                yield chunk[ready], rows[ready], moved


def _merged(pending):
    """One frame of the pending pieces, sorted by (key, row)."""
    if len(pending) == 1:
        chunk, rows, k, rank = pending[0]
    else:
        chunk = concat_packets([p[0] for p in pending])
        rows, k, rank = (np.concatenate([p[x] for p in pending]) for x in (1, 2, 3))
    order = np.lexsort((rows, k))
    if (order != np.arange(len(order))).any():
        chunk, rows, k, rank = chunk.iloc[order], rows[order], k[order], rank[order]
    return chunk, rows, k, rank
