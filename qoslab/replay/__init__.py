"""Capture replay: what a qdisc tree would have done to *your* packets.

``qoslab.replay`` is this package and a function (as ``qoslab.ping`` is): calling it calls
:func:`replay`; ``qoslab.replay.engine`` and the other modules stay importable.

``qoslab.replay(packets, what, …)`` takes the arrival times and sizes of captured packets
(a PACKETS frame, a capture file read chunk by chunk, or any iterable of PACKETS chunks)
through the shaper, qdisc and classifier runtimes of :mod:`qoslab.qdiscs` — the same objects
the simulator and the userspace datapath run — and returns a RUN:

* DECISIONS (``run.decisions``): per packet, arrival and departure, flow, class / bucket, the
  seed in force, dropped or not;
* PROBES: per-flow queueing delay, one stream per flow (``rtt_ms`` = time in the tree), so
  every plot and analysis of qoslab works on it;
* EVENTS: hash changes (the seed schedule), config changes;
* META: the tree as ``tc`` text, the link, the seeds, counters, per-flow totals.

With ``per_packet=DIR`` the per-packet tables (DECISIONS, PROBES) go to a Parquet dataset
while the replay runs instead of memory (:mod:`qoslab.io.run_tables`): a capture larger than
memory replays, and the RUN reads them back when they are used.

What replay needs (for engines that run it piecewise, e.g. on Dask partitions): every packet
of one bottleneck, in time order, fed to one :class:`Replayer` — the qdisc couples all flows
through the link and the seed schedule, so time-ordered chunks must be fed one after the
other (:meth:`Replayer.feed` carries the state across); independent bottlenecks (other
interfaces, other captures) can replay in parallel. From each packet it reads ``t`` (or
``time`` with ``t0``), ``wire_len`` and the flow-defining columns
(:data:`~qoslab.replay.flows.PER_PACKET_COLUMNS` says which are not); it never modifies its
input.

What does not happen in a replay: the captured senders do not react (a TCP flow's packets
arrive as captured, however the replayed queue treats them).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..capture import iter_capture
from ..engines.dispatch import dask_aware
from ..errors import ConfigError
from ..io.run_tables import TableWriter
from ..qdiscs import Htb, Tbf, parse_tree, walk
from ..scenarios import Scenario, Setup, get
from ..sim.link import Link
from .engine import FLUSH_ROWS, Replayer, Seeds
from .flows import PER_PACKET_COLUMNS, FlowIndex, flow_label

__all__ = ["replay", "CallableModule", "Chunks", "Replayer", "Seeds", "FlowIndex", "flow_label", "PER_PACKET_COLUMNS",
           "resolve", "seeds_of"]

#: Frames of at least this many packets show a progress bar when ``progress`` is None.
PROGRESS_MIN_PACKETS = 200_000
#: Packets per chunk read from a capture file: the decoded chunk is most of the memory a
#: replay holds besides its decision log (≈ 0.3 GB here; 4× that for 2**20), and the progress
#: bar moves on every chunk.
FILE_CHUNK = 1 << 18


def seeds_of(run) -> tuple[list[int], list[float]]:
    """The hash seeds of a RUN (``meta["hash_seeds"]``) and their change times, for replaying
    with the seeds a simulation or a datapath run used.

    Examples
    --------
    >>> from qoslab.scenarios import get
    >>> run = get("sfq_perturb").run(duration=12)
    >>> seeds, times = seeds_of(run)
    >>> len(seeds), times   # the perturb timer also ran while the tree drained
    (4, [5.0, 10.0, 15.0])
    """
    meta = run.meta if hasattr(run, "meta") else run
    raw = meta.get("hash_seeds")
    if not raw:
        raise ConfigError("the RUN records no hash seeds (meta['hash_seeds'])")
    seeds = [int(s, 0) if isinstance(s, str) else int(s) for s in raw]
    times = [float(t) for t in meta.get("hash_seed_times") or [0.0]][1:]
    return seeds, times


def resolve(what: Any, *, rate: float | None = None, link: Any = None,
            profile: str | None = None, **params: Any) -> tuple[Any, Any, tuple, int]:
    """``(tree, link, changes, seed)`` from a scenario name, a Scenario, a Setup, a qdisc spec or
    ``tc`` text (see :func:`replay`)."""
    seed = params.pop("seed", None)
    changes: tuple = ()
    if isinstance(what, str) and "\n" not in what and " " not in what.strip():
        what = get(what)
    if isinstance(what, Scenario):
        values = what.values(dict(params, **({"seed": seed} if seed is not None else {})))
        seed, params = values.get("seed", 1), {}
        what = what.build(values)
    if params:
        raise ConfigError(f"replay: {', '.join(params)}: parameters are for a scenario")
    if isinstance(what, Setup):
        tree, base_link, changes = what.qdisc, what.link, tuple(what.changes)
    elif isinstance(what, str):
        tree, base_link = parse_tree(what, profile=profile or "5.18+"), None
    elif what is not None and hasattr(what, "to_tc"):
        tree, base_link = what, None
    else:
        raise ConfigError("replay: give a scenario name, a Scenario, a Setup, a qdisc spec or "
                          f"tc text, not {type(what).__name__}")
    if link is not None:
        base_link = link
    elif rate is not None:
        base_link = Link(rate=float(rate), delay=0.0)
    elif base_link is None:
        if not any(isinstance(s, (Htb, Tbf)) for s in walk(tree)):
            raise ConfigError("replay: a qdisc without a shaper needs the link's rate "
                              "(rate= bit/s, or link=)")
        base_link = Link(rate=1e10, delay=0.0)  # a fast device behind the shaper
    return tree, base_link, changes, 1 if seed is None else int(seed)


@dask_aware("replay")
def replay(packets: pd.DataFrame | str | os.PathLike | Iterable[pd.DataFrame], what: Any, *,
           rate: float | None = None, link: Any = None, seed: int | None = None,
           seeds: list | None = None, seed_times: list | None = None,
           changes: tuple | None = None, l2_bytes: int = 0, t0: Any = None,
           profile: str | None = None, probes: bool = True, progress: bool | None = None,
           chunk_packets: int | None = None, per_packet: str | os.PathLike | None = None,
           force: bool = False, **params: Any):
    """Replay captured packets through a qdisc tree; return the RUN (see the module doc).

    Parameters
    ----------
    packets
        A PACKETS frame (:func:`qoslab.read_capture`), a capture file (read in chunks of
        ``chunk_packets`` with :func:`qoslab.iter_capture`, so it may be larger than memory),
        or an iterable of PACKETS chunks in time order (or of ``(chunk, rows, reordered)``
        for chunks merged by time: their positions in the input and how many of them moved,
        :func:`qoslab.engines.ordered.iter_time_merged`). A Dask frame
        (:func:`qoslab.read_captures`, ``engine="dask"``) is fed in time order, its partitions
        merged by time while the workers decode the next ones
        (:func:`qoslab.engines.ordered.iter_time_merged`): the same decisions as the pandas
        frame's, also for files whose time ranges overlap or come out of order.
    what
        A scenario name or :class:`~qoslab.scenarios.Scenario` (with its parameter values in
        ``params``), a :class:`~qoslab.scenarios.Setup`, a qdisc spec (a whole tree), or ``tc``
        lines (``profile`` for its era).
    rate, link
        The link after the tree: a rate in bit/s or a :class:`qoslab.sim.Link` (default: the
        setup's link; a tree with a shaper alone gets a fast device).
    seed
        Seed of the seed schedule (the scenario's ``seed`` by default): the same seeds as the
        simulator and the datapath use for that seed.
    seeds, seed_times
        Replay with these hash seeds instead, changing at ``seed_times`` (``len(seeds) - 1``
        times, or META's ``hash_seed_times`` with its leading 0): :func:`seeds_of` takes them
        from a RUN.
    changes
        Config changes (default: the setup's).
    l2_bytes
        Bytes added to ``wire_len`` for the qdisc's accounting (14 for raw IP captures).
    t0
        The capture time that is replay time 0 (``pandas.Timestamp`` or Unix seconds); default
        the capture's first packet.
    probes
        Also build the per-flow PROBES (one row per packet).
    progress
        Progress bars for reading and replaying, then building the per-flow tables (``None``:
        for files of 64 MB, and frames or chunks — a Dask set's, or :class:`Chunks` that say
        their total — of 200,000 packets and more). Saving the RUN has its own
        (:meth:`qoslab.Run.save`).
    per_packet
        A new folder for the per-packet tables (DECISIONS and PROBES): they are written
        there as Parquet parts while the replay runs (:mod:`qoslab.io.run_tables`), so
        memory stays bounded by the chunk size, the packets queued and the number of flows,
        whatever the capture's length. The RUN returned (and saved, and loaded again) keeps
        META — with per-flow totals, ``meta["flow_summary"]``, and the median and p99 of the
        time in the tree, ``meta["delay_ms"]`` — and EVENTS, and reads ``probes`` and
        ``decisions`` from the folder when they are first used (up to
        :data:`qoslab.io.limits.MAX_ROWS` rows; beyond, read them in parts with
        ``run.iter_table``). Checked before anything is read.
    force
        Replace an existing ``per_packet`` dataset.
    chunk_packets
        Packets per chunk read from a capture file (default :data:`FILE_CHUNK`, with
        ``per_packet`` :data:`~qoslab.replay.engine.FLUSH_ROWS`), per slice of a frame, and
        with ``per_packet`` the rows of a Parquet part (at least; default
        :data:`~qoslab.replay.engine.FLUSH_ROWS`).

    Returns
    -------
    qoslab.Run
        Or, with ``per_packet``, a :class:`qoslab.io.run_tables.DatasetRun`.

    Examples
    --------
    >>> import qoslab
    >>> pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
    >>> run = qoslab.replay(pk, "sfq limit 10", rate=2e6, profile="classic-2.6.3x")
    >>> len(run.decisions) == len(pk), run.meta["tc"]
    (True, 'sfq limit 10')
    >>> run.probes.groupby("stream")["rtt_ms"].median().max() > 0
    np.True_

    The per-packet tables on disk, written as the replay goes:

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tables"
    >>> big = qoslab.replay(pk, "sfq limit 10", rate=2e6, profile="classic-2.6.3x",
    ...                     per_packet=out)
    >>> big.decisions.equals(run.decisions), sorted(p.name for p in out.iterdir())
    (True, ['_qoslab_run_tables.json', 'decisions', 'probes'])
    """
    tree, the_link, setup_changes, the_seed = resolve(
        what, rate=rate, link=link, profile=profile,
        **({"seed": seed} if seed is not None else {}), **params)
    if seeds is not None:
        seeds = [int(s, 0) if isinstance(s, str) else int(s) for s in seeds]
        times = [float(t) for t in (seed_times or [])]
        if len(times) == len(seeds) and times and times[0] == 0.0:
            times = times[1:]
        schedule = Seeds(tree, seeds=seeds, times=times)
    else:
        schedule = Seeds(tree, seed=the_seed)
    sink = TableWriter(per_packet, force=force) if per_packet is not None else None
    try:
        rp = Replayer(tree, link=the_link, seeds=schedule,
                      changes=setup_changes if changes is None else tuple(changes),
                      l2_bytes=l2_bytes, t0=t0, sink=sink, probes=probes,
                      flush_rows=chunk_packets or FLUSH_ROWS)
        meta: dict[str, Any] = {"seed": None if seeds is not None else the_seed}
        _feed(rp, packets, meta, progress, chunk_packets)
        show = rp.rows_seen >= PROGRESS_MIN_PACKETS if progress is None else bool(progress)
        return rp.finish(meta, probes=probes, progress=show and sink is None)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise


def _feed(rp: Replayer, packets: Any, meta: dict, progress: bool | None,
          chunk_packets: int | None) -> None:
    """Feed ``packets`` (a file, a frame or chunks; see :func:`replay`) to ``rp``."""
    if isinstance(packets, (str, os.PathLike)):
        meta["capture"] = os.fspath(packets)
        size = chunk_packets or (FILE_CHUNK if rp.sink is None else FLUSH_ROWS)
        for chunk in iter_capture(packets, size, progress=progress):
            rp.feed(chunk)
    elif isinstance(packets, pd.DataFrame):
        show = len(packets) >= PROGRESS_MIN_PACKETS if progress is None else bool(progress)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(packets), unit="pkt", desc="replay")
        try:
            step = chunk_packets or len(packets) or 1
            for lo in range(0, max(len(packets), 1), step):
                rp.feed(packets.iloc[lo:lo + step], bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
    else:
        total = getattr(packets, "total_packets", None)  # known for a Dask set's chunks
        show = bool(progress) if progress is not None else \
            total is not None and total >= PROGRESS_MIN_PACKETS
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="pkt", desc="replay", dynamic_ncols=True)
        update = bar.update if bar is not None else None
        try:
            for chunk in packets:
                if isinstance(chunk, tuple):  # (chunk, rows, reordered): merged by time
                    rp.feed(chunk[0], update, rows=chunk[1], reordered=chunk[2])
                else:
                    rp.feed(chunk, update)
        finally:
            if bar is not None:
                bar.close()


class Chunks:
    """Chunks of PACKETS (any iterable :func:`replay` takes) and how many packets they hold
    in all, for the progress bar (``total_packets``)."""

    def __init__(self, chunks: Iterable, total_packets: int | None) -> None:
        self.chunks = chunks
        self.total_packets = total_packets

    def __iter__(self):
        return iter(self.chunks)


class CallableModule(types.ModuleType):
    """A module that can be called: ``qoslab.replay(...)`` is ``qoslab.replay.replay(...)``."""

    def __call__(self, *args, **kwargs):
        return replay(*args, **kwargs)


sys.modules[__name__].__class__ = CallableModule
