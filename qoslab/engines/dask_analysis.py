"""The analysis functions on Dask: the pandas function per partition, then a combine step.

Called through :func:`qoslab.engines.dispatch.dask_aware` when the ``packets`` argument is a
Dask frame (:func:`qoslab.read_captures` with ``engine="dask"``); the signatures are those of
the pandas functions. Nothing here computes anything itself:

=====================================  =====================================================
function                               per partition → combine
=====================================  =====================================================
:func:`qoslab.capture.flows`           :func:`~qoslab.capture.flows.flow_partials` →
                                       :func:`~qoslab.capture.flows.flows_from_partials`
:func:`qoslab.capture.echo_rtts`       :func:`~qoslab.capture.echo.echo_candidates` →
                                       ``echo_rtts`` of their concatenation (a request and
                                       its reply in different chunks or files still pair)
:func:`qoslab.capture.tcp_rtts`        :func:`~qoslab.capture.tcprtt.tcp_candidates`,
                                       shuffled by
                                       :func:`~qoslab.capture.tcprtt.connection_keys` →
                                       ``tcp_rtts`` per group (both directions of a
                                       connection meet), samples by acknowledging frame
:func:`qoslab.hashing.sharing`         :func:`~qoslab.hashing.sharing.flow_representatives`
                                       → ``sharing(…, weight=FLOW_PACKETS)``
``FlowClassifier.classify``,           the pandas method per partition (per packet: nothing
``Sfq.bucket``                         to combine); a lazy Dask Series on the frame's index
:func:`qoslab.replay`                  partitions merged in time order, decoded ahead by the
                                       workers (:func:`~qoslab.engines.ordered.iter_time_merged`),
                                       fed to one replayer: a qdisc couples every flow, so its
                                       state goes from one packet to the next
=====================================  =====================================================

Reductions return pandas results (computed, with :mod:`.diagnostics`); per-packet functions
return lazy Dask Series aligned with the frame (``packets.assign(cls=...)`` works).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..capture.echo import echo_candidates
from ..capture.echo import echo_rtts as pair
from ..capture.flows import flow_partials, flows_from_partials
from ..capture.tcprtt import connection_keys, tcp_candidates
from ..capture.tcprtt import tcp_rtts as pandas_tcp_rtts
from ..hashing.sharing import FLOW_PACKETS, flow_representatives
from ..hashing.sharing import sharing as pandas_sharing
from ..replay import Chunks
from ..replay import replay as pandas_replay
from ..replay.engine import epoch_ns, replay_times
from .captures import plan_of, time_bounds
from .diagnostics import compute
from .ordered import iter_time_merged

__all__ = ["flows", "echo_rtts", "tcp_rtts", "sharing", "classify", "bucket", "replay"]


def _collect(packets, func, *args, what: str, **kwargs) -> pd.DataFrame:
    """Apply ``func`` to every partition and bring the results, in partition order."""
    meta = func(packets._meta, *args, **kwargs)
    parts = packets.map_partitions(func, *args, meta=meta, **kwargs)
    (result,) = compute(parts, what=what)
    return result


def flows(packets, level: str = "inner") -> pd.DataFrame:
    """:func:`qoslab.capture.flows` of a Dask PACKETS frame."""
    return flows_from_partials(_collect(packets, flow_partials, level, what="flows"))


def echo_rtts(packets, *, timeout: float = 10.0) -> pd.DataFrame:
    """:func:`qoslab.capture.echo_rtts` of a Dask PACKETS frame."""
    return pair(_collect(packets, echo_candidates, what="echo requests and replies"),
                timeout=timeout)


def sharing(packets, classifier, *, seed=0, trials: int = 200, rng_seed: int | None = 0,
            weight: str | None = None):
    """:func:`qoslab.hashing.sharing` of a Dask PACKETS frame."""
    reps = _collect(packets, flow_representatives, weight, what="flows")
    return pandas_sharing(reps, classifier, seed=seed, trials=trials, rng_seed=rng_seed,
                          weight=FLOW_PACKETS)


class _PerPacket:
    """Partition function: a pandas method's per-packet array as a Series on the index."""

    def __init__(self, method, name: str, args: tuple, kwargs: dict):
        self.method, self.name, self.args, self.kwargs = method, name, args, kwargs

    def __call__(self, part: pd.DataFrame) -> pd.Series:
        values = self.method(part, *self.args, **self.kwargs)
        return pd.Series(values, index=part.index, name=self.name)


def _per_packet(packets, method, name: str, dtype, args, kwargs):
    meta = pd.Series(np.zeros(0, dtype), name=name, index=packets._meta.index[:0])
    return packets.map_partitions(_PerPacket(method, name, args, kwargs), meta=meta)


def classify(classifier, packets, *args, **kwargs):
    """``FlowClassifier.classify`` of a Dask frame: a lazy Dask Series ``class`` (uint32)."""
    return _per_packet(packets, classifier.classify, "class", np.uint32, args, kwargs)


def bucket(sfq, packets, *args, **kwargs):
    """``Sfq.bucket`` of a Dask frame: a lazy Dask Series ``bucket`` (int64, -1 = dropped)."""
    return _per_packet(packets, sfq.bucket, "bucket", np.int64, args, kwargs)


class _ReplayTimes:
    """The replay time of each packet (what :class:`qoslab.replay.Replayer` orders by)."""

    def __init__(self, t0):
        self.t0_ns = None if t0 is None else epoch_ns(t0)

    def __call__(self, part: pd.DataFrame) -> np.ndarray:
        return replay_times(part, self.t0_ns)


def replay(packets, what, **options):
    """:func:`qoslab.replay` of a Dask PACKETS frame: one replayer fed the packets in time
    order, merged from the partitions (files whose time ranges overlap or come out of
    order replay as the pandas frame does). A frame as :func:`qoslab.read_captures` gave it
    is decoded once: its partitions' time ranges come from the set's plan (the record
    headers walked to cut it); a frame derived from it (filtered …) is walked a first time
    for them."""
    times = _ReplayTimes(options.get("t0"))
    plan = plan_of(packets)
    bounds = time_bounds(plan, times.t0_ns) if plan is not None else None
    merged = iter_time_merged(packets, times, prefetch=2, bounds=bounds)
    total = int(bounds["n"].sum()) if bounds is not None else None
    return pandas_replay(Chunks(merged, total), what, **options)


class _GroupRtts:
    """Partition function of :func:`tcp_rtts`: one shuffle group's connections, in set order."""

    def __call__(self, part: pd.DataFrame) -> pd.DataFrame:
        return pandas_tcp_rtts(part.drop(columns="_connection").sort_index(kind="stable"))


def _keyed_candidates(part: pd.DataFrame) -> pd.DataFrame:
    rows = tcp_candidates(part)
    return rows.assign(_connection=connection_keys(rows))


def tcp_rtts(packets) -> pd.DataFrame:
    """:func:`qoslab.capture.tcp_rtts` of a Dask PACKETS frame: the TCP rows of every
    partition, shuffled so that both directions of a connection meet in one group (whatever
    file or chunk they were in), each group measured by the pandas function, the samples in
    order of the acknowledging frame."""
    candidates = packets.map_partitions(_keyed_candidates, meta=_keyed_candidates(packets._meta))
    groups = candidates.shuffle(on="_connection", npartitions=max(1, packets.npartitions))
    meta = pandas_tcp_rtts(packets._meta)
    (result,) = compute(groups.map_partitions(_GroupRtts(), meta=meta), what="TCP round trips")
    return result.sort_values("ack_row", kind="stable", ignore_index=True)
