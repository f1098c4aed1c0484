"""Classic libpcap files: file header, record walk, per-record fields.

Format: https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/ — a 24-byte file header whose
magic gives the byte order and the timestamp unit (0xa1b2c3d4 microseconds, 0xa1b23c4d
nanoseconds), then records of a 16-byte header (ts_sec, ts_frac, cap_len, orig_len) and the
frame. Kuznetsov's modified format (0xa1b2cd34, 24-byte record headers) is read too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import CaptureFormatError
from ._bytes import ByteSource
from ._walk import walk_chain
from .records import MAX_ANY_RECORD, MAX_RECORD_LEN, RecordBatch, problem_code, warn_capture
from .source import CaptureSource
from .timestamps import NAT

_BAD_TIMESTAMP = problem_code("bad_timestamp")

__all__ = ["PcapHeader", "parse_pcap_header", "pcap_batches", "PCAP_MAGICS", "record_limit"]

#: magic (as read little-endian) -> (byte order, ns resolution, record header length)
PCAP_MAGICS: dict[int, tuple[str, bool, int]] = {
    0xA1B2C3D4: ("<", False, 16),
    0xD4C3B2A1: (">", False, 16),
    0xA1B23C4D: ("<", True, 16),
    0x4D3CB2A1: (">", True, 16),
    0xA1B2CD34: ("<", False, 24),
    0x34CDB2A1: (">", False, 24),
}


@dataclass(frozen=True)
class PcapHeader:
    """What the 24-byte file header says."""

    order: str  #: "<" or ">"
    nanosecond: bool
    record_header: int  #: bytes per record header
    snaplen: int
    linktype: int
    version: tuple[int, int]


def parse_pcap_header(path: str, head: bytes) -> PcapHeader:
    """Parse the file header; raise :class:`CaptureFormatError` naming ``path`` if unusable."""
    if len(head) < 24:
        raise CaptureFormatError(f"{path}: pcap file header is {len(head)} bytes, expected 24")
    magic = struct.unpack_from("<I", head)[0]
    if magic not in PCAP_MAGICS:
        raise CaptureFormatError(f"{path}: magic 0x{magic:08x} is not a pcap magic")
    order, ns, rec = PCAP_MAGICS[magic]
    vmaj, vmin, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", head, 4)
    if vmaj != 2:
        raise CaptureFormatError(f"{path}: pcap version {vmaj}.{vmin}, expected 2.x")
    return PcapHeader(order, ns, rec, snaplen, network & 0xFFFF, (vmaj, vmin))


#: Bytes of file walked per step at first; later steps hold about WINDOW_RECORDS records
#: (their offsets and headers: ~70 bytes each while walked), between WINDOW and MAX_WINDOW
#: bytes — long steps for files of large frames, short ones for millions of tiny records.
WINDOW = 64 << 20
MAX_WINDOW = 512 << 20
WINDOW_RECORDS = 4 << 20


def record_limit(header: PcapHeader) -> int:
    """Largest captured length a record of this file may claim (larger ones lie).

    >>> record_limit(PcapHeader("<", False, 16, 65535, 1, (2, 4)))
    262144
    """
    if header.snaplen > 0x7FFFFFFF:  # absurd: not trusted
        return MAX_RECORD_LEN
    return min(max(header.snaplen, MAX_RECORD_LEN), MAX_ANY_RECORD)


def pcap_batches(path: str, source: CaptureSource, header: PcapHeader, max_records: int,
                 start: int = 24, stop: int | None = None, window: int | None = None
                 ) -> Iterator[tuple[RecordBatch, ByteSource]]:
    """Yield batches of at most ``max_records`` records, in file order, each with the
    :class:`ByteSource` holding its bytes (decode it before asking for the next batch).

    A record whose length field exceeds the snap length (or :data:`MAX_RECORD_LEN`) or runs
    past the end of the file ends the walk with a :class:`CaptureWarning`; every complete
    record before it is kept. ``start`` is the offset of the first record header to read (24
    in a whole file; a record boundary found by an earlier walk to read one chunk, as
    :mod:`qoslab.engines` does) and ``stop`` the offset where the records to read end (the
    file's end by default). ``window`` bounds the bytes walked ahead of the batch being
    built (default: :data:`WINDOW`, then adapted to the records' size).
    """
    limit = record_limit(header)
    rec = header.record_header
    order = header.order
    fixed = window is not None
    window = WINDOW if window is None else window
    stop = source.size if stop is None else min(stop, source.size)
    off = start
    first = source.pread(off, 4)
    ts_ref = struct.unpack(order + "I", first)[0] if len(first) == 4 else None
    kept = 0
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    held = 0
    src = None

    def flush(everything: bool):
        nonlocal pending, held, kept
        while held >= max_records or (everything and held):
            offs, heads = _join(pending)
            pending = [(offs[max_records:], heads[max_records:])]
            held = len(pending[0][0])
            kept += min(len(offs), max_records)
            yield _records(header, offs[:max_records], heads[:max_records]), src

    while True:
        if source.breaking():  # a writer waits: hand over what was walked (re-read with
            yield from flush(True)  # pread by CaptureSource.secure), then stop mapping
            source.degrade()
        hi = min(off + window, stop)
        keep = next((int(o[0]) for o, _ in pending if len(o)), None)  # walked, not handed over
        src = source.span(off, hi + rec + limit, keep)
        walk = walk_chain(src, off, rec, 8, order, limit, hi, ts_ref=ts_ref)
        heads = walk.headers if walk.headers is not None else src.rows(walk.offsets, 16)
        pending.append((walk.offsets, heads))
        held += len(walk.offsets)
        at_end = walk.next_offset >= stop
        done = walk.status in ("cut", "lying") or at_end
        yield from flush(done)
        if not fixed and len(walk.offsets):  # as many records per step, whatever their size
            per_record = (walk.next_offset - off) / len(walk.offsets)
            window = int(min(MAX_WINDOW if source.mapped else WINDOW,
                             max(WINDOW, WINDOW_RECORDS * per_record)))
        off = walk.next_offset
        if walk.status == "lying":
            cl = src.u32(off + 8, order)
            warn_capture(path, f"record at byte {off} claims {cl} captured bytes (snaplen "
                         f"{header.snaplen}); stopped there, {kept} records kept")
        elif walk.status == "cut" or (done and source.shrunk):
            how = ("the file was cut while being read" if source.shrunk
                   else "cut capture")
            warn_capture(path, f"file ends inside the record at byte {off} ({how}); "
                         f"every complete record before it is kept ({kept})")
        if done:
            return


def _join(pending) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate walked offsets and their 16 header bytes."""
    if len(pending) == 1:
        return pending[0]
    return np.concatenate([o for o, _ in pending]), np.concatenate([h for _, h in pending])


def _records(header: PcapHeader, offs: np.ndarray, heads: np.ndarray) -> RecordBatch:
    """The record-header fields of the records at ``offs`` (first 16 bytes in ``heads``)."""
    n = len(offs)
    words = np.ascontiguousarray(heads).view(header.order + "u4").reshape(-1, 4)
    ts_ns = words[:, 0].astype(np.int64)
    ts_ns *= 1_000_000_000
    frac = words[:, 1].astype(np.int64)
    # the fraction counts micro- or nanoseconds within the second: one of a second or more is
    # not a time stamp (Wireshark: "Fractional second ... is invalid")
    bad = frac >= (1_000_000_000 if header.nanosecond else 1_000_000)
    if not header.nanosecond:
        frac *= 1000
    ts_ns += frac
    flag = None
    if bad.any():
        ts_ns[bad] = NAT
        flag = np.where(bad, _BAD_TIMESTAMP, 0).astype(np.int8)
    return RecordBatch(
        data_off=offs + header.record_header,
        cap_len=words[:, 2].astype(np.int64),
        wire_len=words[:, 3].astype(np.int64),
        ts_ns=ts_ns,
        ifindex=np.zeros(n, np.int32),
        linktype=np.full(n, header.linktype, np.int32),
        flag=flag,
    )
