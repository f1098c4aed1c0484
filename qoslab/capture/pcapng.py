"""pcapng files: sections, interfaces (link type, ``if_tsresol``, ``if_tsoffset``) and packets.

Format: https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcapng/. Blocks are walked once
(a short loop over block headers only); the fields of every Enhanced, Simple and obsolete Packet
Block are then gathered for all packets at once. Unknown block types are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import CaptureFormatError
from . import _walk
from ._bytes import ByteSource
from .records import MAX_RECORD_LEN, RecordBatch, warn_capture

__all__ = ["PCAPNG_MAGIC", "pcapng_batches", "Interface", "ts_to_ns"]

PCAPNG_MAGIC = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14
#: Largest block accepted; anything larger is a lying length.
_MAX_BLOCK = MAX_RECORD_LEN + (1 << 20)


@dataclass
class Interface:
    """One Interface Description Block."""

    linktype: int
    snaplen: int
    units_per_s: int = 1_000_000  #: from if_tsresol (default microseconds)
    offset_s: int = 0  #: if_tsoffset


@dataclass
class _Section:
    order: str
    interfaces: list[Interface] = field(default_factory=list)


def ts_to_ns(ts: np.ndarray, units_per_s: int) -> np.ndarray:
    """Convert pcapng timestamps (``units_per_s`` ticks per second) to int64 nanoseconds.

    >>> ts_to_ns(np.array([1_500_000], np.int64), 1_000_000)
    array([1500000000])
    >>> ts_to_ns(np.array([3 << 30], np.int64), 1 << 30)
    array([3000000000])
    """
    if units_per_s == 1_000_000_000:
        return ts
    if 1_000_000_000 % units_per_s == 0:
        return ts * (1_000_000_000 // units_per_s)
    whole = ts // units_per_s
    rest = ts - whole * units_per_s
    return whole * 1_000_000_000 + np.floor(rest * (1e9 / units_per_s)).astype(np.int64)


def _parse_idb(raw, off: int, blen: int, order: str) -> Interface:
    linktype, _res, snaplen = struct.unpack_from(order + "HHI", raw, off + 8)
    iface = Interface(linktype, snaplen)
    pos, end = off + 16, off + blen - 4
    while pos + 4 <= end:
        code, olen = struct.unpack_from(order + "HH", raw, pos)
        if code == 0:
            break
        val = pos + 4
        if val + olen > end:
            break
        if code == _OPT_TSRESOL and olen >= 1:
            r = int(raw[val])
            iface.units_per_s = (1 << (r & 0x7F)) if r & 0x80 else 10 ** r
        elif code == _OPT_TSOFFSET and olen >= 8:
            iface.offset_s = struct.unpack_from(order + "q", raw, val)[0]
        pos = val + ((olen + 3) & ~3)
    return iface


def _section_order(path: str, raw, off: int, size: int) -> str:
    if off + 12 > size:
        raise CaptureFormatError(f"{path}: pcapng section header at byte {off} is cut short")
    bom = bytes(raw[off + 8:off + 12])
    if bom == struct.pack("<I", _BOM):
        return "<"
    if bom == struct.pack(">I", _BOM):
        return ">"
    raise CaptureFormatError(f"{path}: pcapng section header at byte {off} has byte-order "
                             f"magic {bom.hex()}, expected 1a2b3c4d in either order")


def pcapng_batches(path: str, src: ByteSource, max_records: int) -> Iterator[RecordBatch]:
    """Yield batches of at most ``max_records`` packets in file order.

    A block whose length is impossible (not a multiple of 4, under 12, over the limit, trailer
    disagreeing) or runs past the end stops the walk with a :class:`CaptureWarning`.

    Long single-section files take the vectorized lane walk (:mod:`._walk`); anything unusual
    (several sections, a damaged block) is read by the block-by-block loop, which gives the
    exact warnings.
    """
    fast = _fast_blocks(path, src)
    if fast is None:
        yield from _loop_batches(path, src, max_records)
        return
    section, kinds, offs = fast
    sect = np.zeros(len(offs), np.int32)
    for lo in range(0, len(offs), max_records):
        hi = lo + max_records
        yield _gather(path, src, [section], kinds[lo:hi], offs[lo:hi], sect[lo:hi])


def _fast_blocks(path: str, src: ByteSource):
    """(section, packet block kinds, offsets) of a clean single-section file, else None."""
    if src.size < _walk.LANE_MIN_BYTES or src.size < 28:
        return None
    if struct.unpack_from("<I", src.buf, 0)[0] != PCAPNG_MAGIC:
        return None
    order = _section_order(path, src.buf, 0, src.size)
    walk = _walk.walk_chain(src, 0, 0, 4, order, _MAX_BLOCK, src.size, blocks=True)
    if walk.status != "end" or not len(walk.offsets):
        return None
    words = np.ascontiguousarray(walk.headers[:, :8]).view(order + "u4").reshape(-1, 2)
    btype, blen = words[:, 0].astype(np.int64), words[:, 1].astype(np.int64)
    offs = walk.offsets
    trailer = np.ascontiguousarray(src.rows(offs + blen - 4, 4)).view(order + "u4").reshape(-1)
    packet = (btype == _EPB) | (btype == _OPB) | (btype == _SPB)
    bad = (blen % 4 != 0) | (trailer != blen) | (btype[1:] == PCAPNG_MAGIC).any()
    bad |= ((btype == _EPB) | (btype == _OPB)) & (blen < 32)
    bad |= ((btype == _SPB) & (blen < 16)) | ((btype == _IDB) & (blen < 20))
    if btype[0] != PCAPNG_MAGIC or bad.any():
        return None
    section = _Section(order)
    for i in np.flatnonzero(btype == _IDB):
        section.interfaces.append(_parse_idb(src.buf, int(offs[i]), int(blen[i]), order))
    return section, btype[packet].astype(np.int32), offs[packet]


def _loop_batches(path: str, src: ByteSource, max_records: int) -> Iterator[RecordBatch]:
    """The block-by-block walk (any number of sections, exact warnings)."""
    raw = src.buf
    size = src.size
    sections: list[_Section] = []
    kinds: list[int] = []  # block type of each packet block
    offs: list[int] = []
    sect: list[int] = []
    off = 0
    problem = None
    while off < size:
        if off + 8 > size:
            problem = f"file ends inside the block header at byte {off} (cut capture)"
            break
        btype = struct.unpack_from("<I", raw, off)[0]
        if btype == PCAPNG_MAGIC:
            try:
                order = _section_order(path, raw, off, size)
            except CaptureFormatError as exc:
                if not sections:
                    raise
                problem = str(exc).removeprefix(f"{path}: ")  # keep the earlier sections
                break
            sections.append(_Section(order))
        elif not sections:
            raise CaptureFormatError(f"{path}: pcapng file does not start with a section header")
        order = sections[-1].order
        btype, blen = struct.unpack_from(order + "II", raw, off)
        if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
            problem = f"block at byte {off} claims length {blen}; stopped there"
            break
        if off + blen > size:
            problem = f"file ends inside the block at byte {off} (cut capture)"
            break
        if struct.unpack_from(order + "I", raw, off + blen - 4)[0] != blen:
            problem = f"block at byte {off}: trailing length disagrees with {blen}; stopped there"
            break
        if btype == _IDB:
            if blen < 20:
                problem = f"interface block at byte {off} is too short ({blen} bytes)"
                break
            sections[-1].interfaces.append(_parse_idb(raw, off, blen, order))
        elif btype in (_EPB, _SPB, _OPB):
            need = 16 if btype == _SPB else 32
            if blen < need:
                problem = f"packet block at byte {off} is too short ({blen} bytes)"
                break
            kinds.append(btype)
            offs.append(off)
            sect.append(len(sections) - 1)
            if len(offs) >= max_records:
                yield _gather(path, src, sections, kinds, offs, sect)
                kinds, offs, sect = [], [], []
        off += blen
    if offs:
        yield _gather(path, src, sections, kinds, offs, sect)
    if problem:
        warn_capture(path, problem + "; every complete packet before it is kept")


def _gather(path, src: ByteSource, sections, kinds, offs, sect) -> RecordBatch:
    kinds_a = np.array(kinds, np.int32)
    offs_a = np.array(offs, np.int64)
    sect_a = np.array(sect, np.int32)
    n = len(offs_a)
    data_off = np.empty(n, np.int64)
    cap_len = np.empty(n, np.int64)
    wire_len = np.empty(n, np.int64)
    ts_ns = np.zeros(n, np.int64)
    ifindex = np.zeros(n, np.int32)
    linktype = np.full(n, -1, np.int32)
    hdr = src.rows(offs_a, 28, np.full(n, 28))
    blen_all = np.zeros(n, np.int64)
    first_iface = 0  # interfaces are numbered across sections, as Wireshark numbers them
    for s_idx, section in enumerate(sections):
        base_iface = first_iface
        first_iface += len(section.interfaces)
        in_sect = sect_a == s_idx
        if not in_sect.any():
            continue
        words = hdr.view(section.order + "u4").reshape(n, 7).astype(np.int64)
        halves = hdr.view(section.order + "u2").reshape(n, 14).astype(np.int64)
        blen_all[in_sect] = words[in_sect, 1]
        for kind in (_EPB, _OPB, _SPB):
            m = in_sect & (kinds_a == kind)
            if not m.any():
                continue
            if kind == _SPB:
                iface_id = np.zeros(m.sum(), np.int64)
                wire = words[m, 2]
                room = words[m, 1] - 16
                snap0 = section.interfaces[0].snaplen if section.interfaces else 0
                cap = np.minimum(wire, room)
                if snap0:
                    cap = np.minimum(cap, snap0)
                data_off[m] = offs_a[m] + 12
                ts = np.zeros(m.sum(), np.int64)  # SPB carries no timestamp
                stamped = False
            else:
                iface_id = words[m, 2] if kind == _EPB else halves[m, 4]
                ts = (words[m, 3] << 32) | words[m, 4]
                cap = words[m, 5]
                wire = words[m, 6]
                data_off[m] = offs_a[m] + 28
                stamped = True
            cap_len[m] = cap
            wire_len[m] = wire
            ifindex[m] = iface_id + base_iface
            idx = np.flatnonzero(m)
            lt = np.full(len(idx), -1, np.int32)
            tsn = np.zeros(len(idx), np.int64)
            for i, iface in enumerate(section.interfaces):
                on = iface_id == i
                if on.any():
                    lt[on] = iface.linktype
                    if stamped:
                        tsn[on] = ts_to_ns(ts[on], iface.units_per_s) + iface.offset_s * 10**9
            linktype[idx] = lt
            ts_ns[idx] = tsn
    # A captured length that runs past its block lies: keep the record, clamp to the block.
    room = offs_a + blen_all - 4 - data_off
    lying = cap_len > room
    if lying.any():
        first = int(offs_a[np.flatnonzero(lying)[0]])
        warn_capture(path, f"{int(lying.sum())} packet block(s) (first at byte {first}) claim "
                     "more captured bytes than the block holds; read only what the block holds")
        cap_len = np.minimum(cap_len, room)
    return RecordBatch(data_off, cap_len, wire_len, ts_ns, ifindex, linktype)
