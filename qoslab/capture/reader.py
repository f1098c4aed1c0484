"""Reading a capture file: ``read_capture`` (one frame) and ``iter_capture`` (chunks)."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..errors import CaptureFormatError
from ._bytes import ByteSource
from .decode import decode_batch
from .frame import address_sort_key, empty_packets, to_frame
from .pcap import PCAP_MAGICS, parse_pcap_header, pcap_batches
from .pcapng import PCAPNG_MAGIC, pcapng_batches

__all__ = ["read_capture", "iter_capture", "DEFAULT_CHUNK", "PROGRESS_MIN_BYTES"]

#: Packets per chunk of :func:`iter_capture` (about 100 MB of decoder scratch memory).
DEFAULT_CHUNK = 1 << 20
#: Files at least this large show a progress bar when ``progress`` is None.
PROGRESS_MIN_BYTES = 64 << 20


@contextmanager
def _mapped(path: str):
    size = os.path.getsize(path)
    if size == 0:
        raise CaptureFormatError(f"{path}: empty file, expected a pcap or pcapng capture")
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    buf = np.frombuffer(mm, np.uint8)
    try:
        yield ByteSource(buf)
    finally:
        del buf
        try:
            mm.close()
        except BufferError:  # a view is still alive somewhere; the GC closes it
            pass


def _batches(path: str, src: ByteSource, chunk_packets: int):
    head = bytes(src.buf[:24])
    if len(head) < 4:
        raise CaptureFormatError(f"{path}: {len(head)} bytes, expected a pcap or pcapng capture")
    magic = struct.unpack_from("<I", head)[0]
    if magic in PCAP_MAGICS:
        return pcap_batches(path, src, parse_pcap_header(path, head), chunk_packets)
    if magic == PCAPNG_MAGIC:
        return pcapng_batches(path, src, chunk_packets)
    raise CaptureFormatError(
        f"{path}: not a capture: starts with {head[:4].hex()}, expected a pcap magic "
        "(a1b2c3d4 / a1b23c4d in either byte order) or a pcapng section header (0a0d0d0a)")


def iter_capture(path: str | os.PathLike, chunk_packets: int = DEFAULT_CHUNK, *,
                 progress: bool | None = None) -> Iterator[pd.DataFrame]:
    """Yield the PACKETS table of a capture in chunks of at most ``chunk_packets`` rows.

    The file is memory-mapped, so captures larger than memory can be processed; ``t`` counts
    from the first packet of the file in every chunk, and concatenating the chunks gives
    exactly :func:`read_capture`.

    Parameters
    ----------
    path
        A classic pcap (µs or ns, either byte order) or pcapng file.
    chunk_packets
        Rows per chunk.
    progress
        Show a ``tqdm.auto`` progress bar (bytes read); ``None`` shows it for files of at least
        :data:`PROGRESS_MIN_BYTES`.

    Yields
    ------
    pandas.DataFrame
        PACKETS rows (columns and dtypes: :data:`qoslab.schema.PACKETS`).

    Raises
    ------
    CaptureFormatError
        When the file is not a pcap/pcapng capture.

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
    if not Path(name).is_file():
        raise FileNotFoundError(f"no capture file {name!r}")
    size = os.path.getsize(name)
    show = size >= PROGRESS_MIN_BYTES if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=Path(name).name)
    try:
        with _mapped(name) as src:
            t0 = None
            done = 0
            for batch in _batches(name, src, chunk_packets):
                if t0 is None:
                    t0 = int(batch.ts_ns[0])
                yield to_frame(batch, decode_batch(src, batch), t0)
                if bar is not None:
                    upto = int(batch.data_off[-1] + batch.cap_len[-1])
                    bar.update(upto - done)
                    done = upto
    finally:
        if bar is not None:
            bar.close()


def read_capture(path: str | os.PathLike, *, progress: bool | None = None) -> pd.DataFrame:
    """Read a pcap or pcapng capture into a PACKETS DataFrame (one row per frame).

    Decodes Ethernet (802.1Q / 802.1ad tags), Linux cooked v1/v2, raw IP and BSD loopback
    frames; IPv4 (options, fragments), IPv6 (hop-by-hop, routing, fragment and destination
    options headers), TCP, UDP, UDP-Lite, SCTP, DCCP, ICMP, ICMPv6, ESP/AH, and IP-in-IP tunnels
    (4in4, 6in4, 4in6, 6in6) with their inner header. Frames that do not decode cleanly stay,
    flagged in ``problem``, with every field read before the fault.

    Parameters
    ----------
    path
        The capture file.
    progress
        ``tqdm.auto`` progress bar; ``None`` shows one for long files.

    Returns
    -------
    pandas.DataFrame
        Columns and dtypes of :data:`qoslab.schema.PACKETS`.

    Raises
    ------
    CaptureFormatError
        When the file is not a capture (the message names the file and what was expected).

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
    chunks = list(iter_capture(path, DEFAULT_CHUNK, progress=progress))
    if not chunks:
        return empty_packets()
    if len(chunks) == 1:
        return chunks[0]
    return concat_packets(chunks)


def concat_packets(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate PACKETS chunks, merging the categories of the categorical columns."""
    cols = {}
    for name in chunks[0].columns:
        parts = [c[name] for c in chunks]
        if name in ("src", "dst", "inner_src", "inner_dst"):
            merged = union_categoricals(parts)
            order = sorted(merged.categories, key=address_sort_key)
            cols[name] = merged.reorder_categories(pd.Index(order, dtype=str))
        elif isinstance(parts[0].dtype, pd.CategoricalDtype):
            cols[name] = union_categoricals(parts)
        else:
            cols[name] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(cols, index=pd.RangeIndex(sum(len(c) for c in chunks)))
