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
from .records import MAX_RECORD_LEN, RecordBatch, warn_capture

__all__ = ["PcapHeader", "parse_pcap_header", "pcap_batches", "PCAP_MAGICS"]

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


#: Bytes of file walked per step (bounds the offsets held in memory for huge files).
WINDOW = 256 << 20


def pcap_batches(path: str, src: ByteSource, header: PcapHeader,
                 max_records: int, start: int = 24, window: int = WINDOW
                 ) -> Iterator[RecordBatch]:
    """Yield batches of at most ``max_records`` records, in file order.

    A record whose length field exceeds the snap length (or :data:`MAX_RECORD_LEN`) or runs
    past the end of the file ends the walk with a :class:`CaptureWarning`; every complete
    record before it is kept. ``start`` is the offset of the first record header in ``src``
    (24 in a whole file; a record boundary found by an earlier walk when ``src`` maps a
    slice of the file, as :mod:`qoslab.engines` does to read one chunk). ``window`` bounds
    the bytes walked ahead of the batch being built.
    """
    limit = max(header.snaplen, MAX_RECORD_LEN) if header.snaplen <= 0x7FFFFFFF \
        else MAX_RECORD_LEN
    rec = header.record_header
    off = start
    ts_ref = None
    if src.size >= off + 4:
        ts_ref = struct.unpack_from(header.order + "I", src.buf, off)[0]
    kept = 0
    pending: list[np.ndarray] = []
    held = 0
    while True:
        walk = walk_chain(src, off, rec, 8, header.order, limit, off + window, ts_ref=ts_ref)
        pending.append((walk.offsets, walk.headers))
        held += len(walk.offsets)
        done = walk.status != "more"
        while held >= max_records or (done and held):
            offs, heads = _join(src, pending)
            pending = [(offs[max_records:], heads[max_records:])]
            held = len(pending[0][0])
            kept += min(len(offs), max_records)
            yield _records(header, offs[:max_records], heads[:max_records])
        off = walk.next_offset
        if walk.status == "lying":
            cl = struct.unpack_from(header.order + "I", src.buf, off + 8)[0]
            warn_capture(path, f"record at byte {off} claims {cl} captured bytes (snaplen "
                         f"{header.snaplen}); stopped there, {kept} records kept")
        elif walk.status == "cut":
            warn_capture(path, f"file ends inside the record at byte {off} (cut capture); "
                         f"every complete record before it is kept ({kept})")
        if done:
            return


def _join(src: ByteSource, pending) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate walked offsets and their 16 header bytes (read now where not yet read)."""
    offs = [o for o, _ in pending]
    heads = [h if h is not None else src.rows(o, 16) for o, h in pending]
    if len(pending) == 1:
        return offs[0], heads[0]
    return np.concatenate(offs), np.concatenate(heads)


def _records(header: PcapHeader, offs: np.ndarray, heads: np.ndarray) -> RecordBatch:
    """The record-header fields of the records at ``offs`` (first 16 bytes in ``heads``)."""
    n = len(offs)
    words = np.ascontiguousarray(heads).view(header.order + "u4").reshape(-1, 4)
    ts_ns = words[:, 0].astype(np.int64)
    ts_ns *= 1_000_000_000
    frac = words[:, 1].astype(np.int64)
    if not header.nanosecond:
        frac *= 1000
    ts_ns += frac
    return RecordBatch(
        data_off=offs + header.record_header,
        cap_len=words[:, 2].astype(np.int64),
        wire_len=words[:, 3].astype(np.int64),
        ts_ns=ts_ns,
        ifindex=np.zeros(n, np.int32),
        linktype=np.full(n, header.linktype, np.int32),
    )
