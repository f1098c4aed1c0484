"""Reading a capture file: ``read_capture`` (one frame) and ``iter_capture`` (chunks)."""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..errors import CaptureFormatError, CaptureTooLargeError
from ..schema import PACKETS
from .decode import decode_batch
from .frame import address_sort_key, empty_packets, to_frame
from .pcap import PCAP_MAGICS, parse_pcap_header, pcap_batches
from .pcapng import PCAPNG_MAGIC, pcapng_batches
from .records import warn_capture
from .source import CaptureSource
from .timestamps import NAT
from .tunnels import udp_tunnel_ports

__all__ = ["read_capture", "iter_capture", "concat_packets", "open_capture", "record_batches",
           "DEFAULT_CHUNK",
           "PROGRESS_MIN_BYTES", "READ_MEMORY_FACTOR", "READ_MEMORY_EXTRA", "ROW_BYTES"]

#: Packets per chunk of :func:`iter_capture` (about 100 MB of decoder scratch memory).
DEFAULT_CHUNK = 1 << 20
#: Files at least this large show a progress bar when ``progress`` is None.
PROGRESS_MIN_BYTES = 64 << 20
#: :func:`read_capture` builds one table of at most READ_MEMORY_FACTOR x the file size +
#: READ_MEMORY_EXTRA bytes unless ``max_memory`` says otherwise; a larger one (a file of
#: millions of tiny records) is refused with :class:`~qoslab.errors.CaptureTooLargeError`.
READ_MEMORY_FACTOR = 4
READ_MEMORY_EXTRA = 200 << 20
def _row_bytes() -> int:
    """Bytes one PACKETS row takes in memory (values, NA masks, category codes)."""
    size = {"UInt8": 2, "UInt16": 3, "UInt32": 5, "int32": 4, "int64": 8, "float64": 8,
            "bool": 1, "datetime64[ns, UTC]": 8}
    return sum(size.get(dtype, 4) for dtype in PACKETS.values())


#: Bytes one PACKETS row takes (from :data:`qoslab.schema.PACKETS`; sizes read_capture's
#: chunks and counts its table against the budget).
ROW_BYTES = _row_bytes()


def open_capture(path: str) -> CaptureSource:
    """The capture file ``path`` opened for reading (a regular file only: a FIFO or a device
    could be read forever)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no capture file {path!r}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CaptureFormatError(f"{path}: is a directory, expected a pcap or pcapng capture")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device could be read forever
        raise CaptureFormatError(f"{path}: not a regular file, expected a pcap or pcapng "
                                 "capture")
    return CaptureSource(path)


def record_batches(path: str, source: CaptureSource, chunk_packets: int):
    """Batches of at most ``chunk_packets`` records of a pcap or pcapng ``source``."""
    head = source.head(24)
    if len(head) < 4:
        raise CaptureFormatError(f"{path}: {len(head)} bytes, expected a pcap or pcapng capture")
    magic = struct.unpack_from("<I", head)[0]
    if magic in PCAP_MAGICS:
        return pcap_batches(path, source, parse_pcap_header(path, head), chunk_packets)
    if magic == PCAPNG_MAGIC:
        return pcapng_batches(path, source, chunk_packets)
    raise CaptureFormatError(
        f"{path}: not a capture: starts with {head[:4].hex()}, expected a pcap magic "
        "(a1b2c3d4 / a1b23c4d in either byte order) or a pcapng section header (0a0d0d0a)")


def iter_capture(path: str | os.PathLike, chunk_packets: int = DEFAULT_CHUNK, *,
                 progress: bool | None = None,
                 udp_tunnels: Mapping[int, str] | None = None) -> Iterator[pd.DataFrame]:
    """Yield the PACKETS table of a capture in chunks of at most ``chunk_packets`` rows.

    Captures larger than memory can be processed: the file is memory-mapped under a read
    lease, or read in windows when it may change (see :mod:`qoslab.capture.source`). ``t``
    counts from the first time-stamped packet of the file in every chunk, and concatenating
    the chunks gives exactly :func:`read_capture`.

    Parameters
    ----------
    path
        A classic pcap (µs or ns, either byte order) or pcapng file.
    chunk_packets
        Rows per chunk.
    progress
        Show a ``tqdm.auto`` progress bar (bytes read); ``None`` shows it for files of at least
        :data:`PROGRESS_MIN_BYTES`.
    udp_tunnels
        UDP destination ports decoded as tunnels, ``{port: "vxlan" | "geneve"}``; default
        :data:`qoslab.capture.tunnels.UDP_TUNNEL_PORTS` (4789 VXLAN, 6081 Geneve).

    Yields
    ------
    pandas.DataFrame
        PACKETS rows (columns and dtypes: :data:`qoslab.schema.PACKETS`).

    Raises
    ------
    CaptureFormatError
        When the file is not a pcap/pcapng capture (or not a regular file).
    FileNotFoundError
        When there is no such file.

    Examples
    --------
    >>> from qoslab import data_path
    >>> sizes = [len(c) for c in iter_capture(data_path("captures/tunnel_uploads.pcap"), 1000)]
    >>> sizes[0], sum(sizes) == len(read_capture(data_path("captures/tunnel_uploads.pcap")))
    (1000, True)
    """
    name = os.fspath(path)
    if chunk_packets < 1:
        raise ValueError(f"chunk_packets must be >= 1, got {chunk_packets}")
    udp_tunnel_ports(udp_tunnels)  # checked before the file is opened
    yield from _frames(name, chunk_packets, progress, udp_tunnels=udp_tunnels)


def _frames(name: str, chunk_packets: int, progress: bool | None, admit=None,
            udp_tunnels: Mapping[int, str] | None = None):
    """The PACKETS chunks of a file; ``admit(batch)`` is called before each is decoded."""
    with open_capture(name) as source:
        size = source.size
        show = size >= PROGRESS_MIN_BYTES if progress is None else bool(progress)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=size, unit="B", unit_scale=True, desc=Path(name).name)
        try:
            t0 = None
            done = 0
            for batch, src in record_batches(name, source, chunk_packets):
                batch, src = source.secure(batch, src)
                if not len(batch):
                    continue
                if admit is not None:
                    admit(batch)
                if t0 is None:
                    stamped = batch.ts_ns != NAT
                    if stamped.any():
                        t0 = int(batch.ts_ns[np.argmax(stamped)])
                yield to_frame(batch, decode_batch(src, batch, udp_tunnels), t0)
                upto = int(batch.data_off[-1] + batch.cap_len[-1])
                source.release(upto)  # mapped pages behind us: a window held, not the file
                if bar is not None:
                    bar.update(upto - done)
                    done = upto
        finally:
            if bar is not None:
                bar.close()
        if source.dropped:
            warn_capture(name, f"the file was cut while being read: {source.dropped} records "
                         "walked before the cut are no longer in it and were dropped")


def _anon_bytes() -> int | None:
    """Anonymous memory of this process (Linux ``RssAnon``), None where unknown."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _Budget:
    """Refuses, before it is decoded, a chunk that would take read_capture over its budget.

    Memory in use is the growth of the process's anonymous memory since the read began (the
    table and the decoder's working arrays) where Linux reports it, else the table's size; a
    chunk is expected to cost twice :data:`ROW_BYTES` per row (the row and its decoding).
    """

    def __init__(self, name: str, limit: int):
        self.name, self.limit = name, limit
        self.start = _anon_bytes()
        self.table = 0
        self.rows = 0
        self.per_row = 2 * ROW_BYTES

    def used(self) -> int:
        now = _anon_bytes()
        if now is None or self.start is None:
            return self.table
        return max(now - self.start, self.table)

    def admit(self, batch) -> None:
        used = self.used()
        if used + len(batch) * self.per_row > self.limit:
            raise CaptureTooLargeError(
                f"{self.name}: more than {self.rows + len(batch):,} packets; reading them as "
                f"one table needs more than the {self.limit / 1e6:,.0f} MB allowed "
                f"(max_memory; default {READ_MEMORY_FACTOR}x the file + "
                f"{READ_MEMORY_EXTRA >> 20} MB): read it in chunks with iter_capture(), or "
                "pass a larger max_memory")

    def took(self, part: pd.DataFrame) -> None:
        self.table += len(part) * ROW_BYTES
        self.rows += len(part)


def read_capture(path: str | os.PathLike, *, progress: bool | None = None,
                 max_memory: int | None = None,
                 udp_tunnels: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Read a pcap or pcapng capture into a PACKETS DataFrame (one row per frame).

    Decodes Ethernet (802.1Q / 802.1ad tags), Linux cooked v1/v2, raw IP and BSD loopback
    frames; IPv4 (options, fragments), IPv6 (hop-by-hop, routing, fragment and destination
    options headers), TCP (ports, sequence numbers, flags, payload length), UDP, UDP-Lite,
    SCTP, DCCP, ICMP, ICMPv6, ESP/AH; and tunnels one level deep (IP-in-IP, GRE, NVGRE, VXLAN,
    Geneve: :mod:`qoslab.capture.tunnels`) with their inner Ethernet frame, IP header and
    transport. Frames that do not decode cleanly stay, flagged in ``problem``, with every
    field read before the fault.

    Parameters
    ----------
    path
        The capture file.
    progress
        ``tqdm.auto`` progress bar; ``None`` shows one for long files.
    max_memory
        Largest table (bytes) to build; default :data:`READ_MEMORY_FACTOR` x the file size +
        :data:`READ_MEMORY_EXTRA`. Beyond it, read the file in chunks with
        :func:`iter_capture`.
    udp_tunnels
        UDP destination ports decoded as tunnels, ``{port: "vxlan" | "geneve"}``; default
        :data:`qoslab.capture.tunnels.UDP_TUNNEL_PORTS` (4789 VXLAN, 6081 Geneve). Linux
        VXLAN devices made without ``dstport`` use 8472: ``{**UDP_TUNNEL_PORTS, 8472:
        "vxlan"}``.

    Returns
    -------
    pandas.DataFrame
        Columns and dtypes of :data:`qoslab.schema.PACKETS`.

    Raises
    ------
    CaptureFormatError
        When the file is not a capture (the message names the file and what was expected).
    CaptureTooLargeError
        When reading would take more than ``max_memory`` bytes (the table and the working
        arrays of the chunk being decoded); checked before each chunk is decoded.

    Warns
    -----
    CaptureWarning
        When the file is cut mid-record or a record length lies; every complete record before
        that point is returned.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> packets = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> sorted(packets["tunnel"].unique())
    ['4in4', '4in6', '6in4', '6in6']
    """
    name = os.fspath(path)
    if max_memory is None:
        try:
            size = os.stat(name).st_size
        except OSError:
            size = 0
        max_memory = READ_MEMORY_FACTOR * size + READ_MEMORY_EXTRA
    udp_tunnel_ports(udp_tunnels)  # checked before the file is opened
    budget = _Budget(name, max_memory)
    # chunks of at most a quarter of the budget: a refusal comes before the memory is gone
    chunk = int(min(DEFAULT_CHUNK, max(4096, max_memory // (8 * ROW_BYTES))))
    chunks: list[pd.DataFrame] = []
    for part in _frames(name, chunk, progress, budget.admit, udp_tunnels):
        budget.took(part)
        chunks.append(part)
    if not chunks:
        return empty_packets()
    if len(chunks) == 1:
        return chunks[0]
    return _concat(chunks, consume=True)


def concat_packets(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate PACKETS chunks, merging the categories of the categorical columns.

    >>> from qoslab import data_path
    >>> parts = list(iter_capture(data_path("captures/tunnel_uploads.pcap"), 1000))
    >>> len(concat_packets(parts)) == sum(len(p) for p in parts)
    True
    """
    return _concat(list(chunks), consume=False)


def _concat(chunks: list[pd.DataFrame], consume: bool) -> pd.DataFrame:
    """Column by column; with ``consume`` each chunk column is dropped once copied, so at
    most one column is held twice."""
    cols = {}
    n = sum(len(c) for c in chunks)
    for name in list(chunks[0].columns):
        parts = [c[name] for c in chunks]
        if name in ("src", "dst", "inner_src", "inner_dst"):
            merged = union_categoricals(parts)
            order = sorted(merged.categories, key=address_sort_key)
            cols[name] = merged.reorder_categories(pd.Index(order, dtype=str))
        elif isinstance(parts[0].dtype, pd.CategoricalDtype):
            cols[name] = union_categoricals(parts)
        else:
            cols[name] = pd.concat(parts, ignore_index=True)
        del parts
        if consume:
            for c in chunks:
                del c[name]
    return pd.DataFrame(cols, index=pd.RangeIndex(n))
