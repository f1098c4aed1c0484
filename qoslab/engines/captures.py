"""``qoslab.read_captures``: a folder, glob or list of captures as one PACKETS table."""

from __future__ import annotations

import collections
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..capture.reader import DEFAULT_CHUNK, concat_packets, iter_capture
from ..capture.records import CaptureWarning
from ..capture.tunnels import udp_tunnel_ports
from ..errors import ConfigError
from ._dask import require_dask
from .captureset import (
    FilePlan,
    capture_files,
    empty_set,
    iter_plan_chunks,
    plan_file,
    read_chunk,
    set_t0,
    with_set_columns,
)
from .diagnostics import compute
from .dispatch import is_dask

__all__ = ["read_captures", "compute_packets", "plan_captures", "dask_packets", "packets_meta",
           "plan_of", "time_bounds", "ADDRESS_COLUMNS"]

#: PACKETS columns whose categories depend on the data (unknown to Dask until computed).
ADDRESS_COLUMNS = ("src", "dst", "inner_src", "inner_dst")


def read_captures(paths_or_glob, engine: str = "pandas", chunk_packets: int = DEFAULT_CHUNK,
                  *, progress: bool | None = None, udp_tunnels=None):
    """Read a set of captures as one PACKETS table, with pandas or Dask.

    Parameters
    ----------
    paths_or_glob
        A folder (searched recursively for pcap/pcapng files), a glob pattern
        (``"day1/*.pcapng"``, ``**`` allowed) or a list of files.
    engine
        ``"pandas"``: one DataFrame in memory. ``"dask"``: a ``dask.dataframe.DataFrame``,
        one partition per chunk of ``chunk_packets`` frames of one file, read when computed
        by the active Dask scheduler (create a ``distributed.Client`` first to use a cluster).
    chunk_packets
        Frames per chunk (the Dask partition size; a worker holds about 120 bytes per frame
        of decoded columns plus the chunk's bytes of the file).
    progress
        pandas: a progress bar per long file (as :func:`qoslab.read_capture`); Dask: a bar
        while the files are walked to plan the partitions (``None``: no bar).
    udp_tunnels
        ``{UDP destination port: "vxlan" | "geneve"}`` beyond the standard ports, as for
        :func:`qoslab.read_capture` (every file of the set is decoded with them).

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        :data:`qoslab.schema.PACKETS` columns, then ``file`` and ``frame``
        (:data:`qoslab.schema.CAPTURE_SET`). ``t`` counts from the earliest packet of the
        whole set. Rows are in file order, then frame order; the index is the row number in
        the set (Dask: known divisions). ``tunnel``, ``problem`` and ``file`` have known
        categories in both engines; the address columns' categories depend on the data:
        Dask marks them unknown (a partition holds the addresses of its chunk), and
        :func:`compute_packets` gives exactly the pandas engine's frame.

    Raises
    ------
    CaptureFormatError
        No capture found, or a file is not a capture.
    EngineUnavailableError
        ``engine="dask"`` without Dask installed (the message says what to install).

    Examples
    --------
    >>> import shutil, tempfile, pathlib
    >>> from qoslab import data_path
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a.pcap", "b.pcap"):
    ...     _ = shutil.copy(data_path("captures/tunnel_uploads.pcap"), d / name)
    >>> pk = read_captures(d)
    >>> list(pk["file"].cat.categories), int(pk["frame"].iloc[0]), float(pk["t"].min())
    (['a.pcap', 'b.pcap'], 1, 0.0)
    """
    if engine not in ("pandas", "dask"):
        raise ConfigError(f"read_captures: engine must be 'pandas' or 'dask', got {engine!r}")
    if chunk_packets < 1:
        raise ConfigError(f"read_captures: chunk_packets must be >= 1, got {chunk_packets}")
    udp_tunnel_ports(udp_tunnels)  # checked before any file is read
    files = capture_files(paths_or_glob)
    if engine == "dask":
        return dask_packets(plan_captures(files, chunk_packets, progress=progress,
                                          udp_tunnels=udp_tunnels))
    return _read_pandas(files, chunk_packets, progress, udp_tunnels)


def _read_pandas(files: Sequence[tuple[str, str]], chunk_packets: int,
                 progress: bool | None, udp_tunnels=None) -> pd.DataFrame:
    names = [name for name, _ in files]
    pieces = []
    for name, path in files:
        frame_no = 1
        for chunk in iter_capture(path, chunk_packets, progress=progress,
                                  udp_tunnels=udp_tunnels):
            pieces.append(with_set_columns(chunk, name, frame_no, names))
            frame_no += len(chunk)
    if not pieces:
        return empty_set(names)
    packets = concat_packets(pieces) if len(pieces) > 1 else pieces[0]
    packets.index = pd.RangeIndex(len(packets))
    ns = packets["time"].array.asi8
    stamped = ~packets["time"].isna().to_numpy()
    t0 = int(ns[stamped].min()) if stamped.any() else 0
    t = np.full(len(packets), np.nan)
    t[stamped] = (ns[stamped] - t0) / 1e9  # as the reader computes t, from the set's t0
    packets["t"] = t
    return packets


class SetPlan:
    """The plans of every file of a set, its ``t0`` and its chunks with their positions."""

    def __init__(self, plans: Sequence[FilePlan], udp_tunnels=None):
        self.plans = list(plans)
        self.udp_tunnels = dict(udp_tunnels) if udp_tunnels else None  # decoding option
        self.files = [p.file for p in self.plans]
        self.t0_ns = set_t0(self.plans)
        self.chunks = list(iter_plan_chunks(self.plans))
        self.packets = sum(p.packets for p in self.plans)

    def warn(self) -> None:
        """Give the warnings the record walk found (cut files, lying lengths), once."""
        for plan in self.plans:
            for note in plan.warnings:
                warnings.warn(note, CaptureWarning, stacklevel=3)


def plan_captures(files: Sequence[tuple[str, str]], chunk_packets: int = DEFAULT_CHUNK, *,
                  progress: bool | None = None, use_dask: bool = True,
                  udp_tunnels=None) -> SetPlan:
    """Walk every file of the set (in parallel on the active Dask scheduler when
    ``use_dask``) and return its :class:`SetPlan`."""
    if use_dask:
        require_dask("read_captures(engine='dask')")
        import dask

        tasks = [dask.delayed(plan_file, pure=True)(name, path, chunk_packets)
                 for name, path in files]
        plans = compute(*tasks, progress=progress, what="walking the captures")
    else:
        plans = [plan_file(name, path, chunk_packets) for name, path in files]
    plan = SetPlan(plans, udp_tunnels)
    plan.warn()
    return plan


def packets_meta(files: Sequence[str]) -> pd.DataFrame:
    """The empty frame Dask uses as the meta of a capture set (address categories unknown)."""
    from dask.dataframe.utils import clear_known_categories

    return clear_known_categories(empty_set(files), cols=list(ADDRESS_COLUMNS))


class _ChunkReader:
    """The partition function of :func:`dask_packets` (picklable, small)."""

    def __init__(self, t0_ns: int, files: Sequence[str], udp_tunnels=None):
        self.t0_ns = t0_ns
        self.files = list(files)
        self.udp_tunnels = udp_tunnels

    def __call__(self, item) -> pd.DataFrame:
        position, chunk = item
        return read_chunk(chunk, self.t0_ns, self.files, position, self.udp_tunnels)


def dask_packets(plan: SetPlan):
    """The Dask DataFrame of a planned set: one partition per chunk, known divisions."""
    dd = require_dask("read_captures(engine='dask')")
    meta = packets_meta(plan.files)
    if not plan.chunks:
        return dd.from_pandas(empty_set(plan.files), npartitions=1)
    divisions = tuple(pos for pos, _ in plan.chunks) + (plan.packets - 1,)
    frame = dd.from_map(_ChunkReader(plan.t0_ns, plan.files, plan.udp_tunnels), plan.chunks,
                        meta=meta,
                        divisions=divisions, label="read-captures", enforce_metadata=False)
    _PLANS[frame._name] = plan
    while len(_PLANS) > MAX_PLANS_KEPT:
        _PLANS.popitem(last=False)
    return frame


#: Plans of the sets read lately, by the name of their Dask frame (a name is the token of the
#: frame's whole graph: a frame derived from a set — filtered, projected — has another one).
_PLANS: collections.OrderedDict = collections.OrderedDict()
#: How many plans :data:`_PLANS` keeps (each is a few hundred bytes per partition).
MAX_PLANS_KEPT = 16


def plan_of(packets) -> SetPlan | None:
    """The plan of a Dask frame as :func:`read_captures` made it (untouched since), or None.

    What the plan knows without decoding a packet — each partition's packets, time-stamped
    packets, earliest and latest time stamp — spares a pass over the set
    (:func:`time_bounds`).
    """
    if not is_dask(packets):
        return None
    return _PLANS.get(packets._name)


def time_bounds(plan: SetPlan, t0_ns: int | None = None) -> pd.DataFrame:
    """Per partition of a planned set: ``n`` packets, ``keyed`` time-stamped ones, ``lo`` and
    ``hi`` their earliest and latest time in seconds from ``t0_ns`` (default the set's first
    packet: the ``t`` column) — the values :func:`qoslab.engines.ordered.iter_time_merged`
    would compute from the decoded partitions, here from the record headers of the plan."""
    t0 = plan.t0_ns if t0_ns is None else int(t0_ns)
    chunks = [c for _, c in plan.chunks]
    if any(c.stamped < 0 for c in chunks):
        raise ValueError("time_bounds: the plan predates per-chunk time stamps")

    def seconds(ns):
        return np.nan if ns is None else (np.int64(ns) - np.int64(t0)) / 1e9

    return pd.DataFrame({"n": [c.packets for c in chunks],
                         "keyed": [c.stamped for c in chunks],
                         "lo": [seconds(c.ts_min_ns) for c in chunks],
                         "hi": [seconds(c.ts_max_ns) for c in chunks]})


def compute_packets(packets, *, progress: bool | None = None) -> pd.DataFrame:
    """Compute a Dask capture set into the pandas engine's frame, exactly.

    ``packets.compute()`` holds the same rows and values; the address columns' categories
    are then in the order the partitions met them. This merges them as
    :func:`qoslab.capture.concat_packets` does (address order), so the result equals
    ``read_captures(..., engine="pandas")`` column for column.
    """
    if not is_dask(packets):
        return packets
    pieces = [p for p in compute(*packets.to_delayed(), progress=progress,
                                 what="reading the captures") if len(p)]
    if not pieces:
        return _known_addresses(packets._meta.iloc[:0].copy())
    frame = concat_packets(pieces) if len(pieces) > 1 else _known_addresses(pieces[0])
    frame.index = _joined_index([p.index for p in pieces])
    return frame


def _joined_index(indexes: list[pd.Index]) -> pd.Index:
    """The pieces' indexes one after the other (a RangeIndex when they are consecutive)."""
    values = np.concatenate([np.asarray(i) for i in indexes])
    if len(values) and np.array_equal(values, np.arange(values[0], values[0] + len(values))):
        return pd.RangeIndex(int(values[0]), int(values[0]) + len(values))
    return pd.Index(values)


def _known_addresses(frame: pd.DataFrame) -> pd.DataFrame:
    return concat_packets([frame]) if len(frame) else frame.assign(**{
        c: pd.Categorical([], categories=pd.Index([], dtype=str)) for c in ADDRESS_COLUMNS
        if c in frame.columns})
