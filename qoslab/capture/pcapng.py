"""pcapng files: sections, interfaces (link type, ``if_tsresol``, ``if_tsoffset``) and packets.

Format: https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcapng/. The chain of blocks is
walked with :func:`._walk.walk_chain` (lane-parallel on long stretches); every check and every
field is then computed for all blocks of a window at once, whatever the number of sections.
Only Interface Description Blocks are parsed one by one (their options).

How the corners are read:

* a block length that is not a multiple of 4 is rounded up to one, as Wireshark reads it
  (the trailing length must round to the same value);
* interface ids are numbered per section (``ifindex``, as Wireshark's ``frame.interface_id``)
  and the section is in the ``section`` column; a packet naming an interface not described
  *before it* in its section is kept and flagged ``unknown_interface``;
* a Simple Packet Block has no time stamp: ``time`` NaT, ``t`` NaN, flagged ``no_timestamp``;
* time stamps are converted exactly (:mod:`.timestamps`); ones outside ``datetime64[ns]``, or on
  an interface whose resolution Wireshark refuses (over 10^19 or 2^63 ticks per second), are
  NaT and flagged ``bad_timestamp``;
* section versions 1.x are read (a new minor version is compatible by the specification;
  Wireshark itself reads only 1.0 and 1.2). A first section of another major version is a
  :class:`~qoslab.errors.CaptureFormatError`; a later one ends the reading there with a
  :class:`~qoslab.capture.CaptureWarning`, keeping the packets of the sections before it, as
  Wireshark does;
* unknown block types are skipped;
* an interface's ``if_fcslen`` (bytes of frame check sequence ending each frame) is honoured
  on Ethernet interfaces as Wireshark honours it: ``wire_len`` and ``cap_len`` stay the
  record's, the headers are decoded as if the frame ended before its FCS (classic pcap files
  say nothing of an FCS: none is assumed, as by Wireshark's default); an Enhanced Packet
  Block's ``epb_flags`` with a non-zero FCS length (bits 5-8) overrides it for that packet.

A walk can be resumed: :func:`pcapng_batches` with ``marks=[]`` records, for every batch it
yields, a :class:`Resume` — the block offset where the walk of that batch's first packet
began, the walk's state there (byte order, section, interfaces) and the packets to skip — and
``resume=`` starts a walk there. A capture set's chunk is so read without walking the file
from its start (:mod:`qoslab.engines.captureset`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from ..errors import CaptureFormatError
from ._bytes import ByteSource
from ._walk import BOM, walk_chain
from .records import MAX_RECORD_LEN, RecordBatch, problem_code, warn_capture
from .source import CaptureSource
from .timestamps import NAT, resolution_units, ticks_to_ns

__all__ = ["PCAPNG_MAGIC", "pcapng_batches", "Interface", "Resume", "KNOWN_MAJOR_VERSIONS",
           "WINDOW"]

PCAPNG_MAGIC = 0x0A0D0D0A
_SHB, _IDB, _OPB, _SPB, _EPB = PCAPNG_MAGIC, 1, 2, 3, 6
#: Smallest legal total length of each block type (bytes).
_MIN_LEN = {_SHB: 28, _IDB: 20, _OPB: 32, _EPB: 32, _SPB: 16}
_NAMES = {_SHB: "section header", _IDB: "interface", _OPB: "packet", _EPB: "packet",
          _SPB: "packet"}
_OPT_TSRESOL, _OPT_FCSLEN, _OPT_TSOFFSET = 9, 13, 14
_OPT_EPB_FLAGS = 2
#: Options of one Enhanced Packet Block looked through for its flags.
MAX_EPB_OPTIONS = 16
#: Section major versions read.
KNOWN_MAJOR_VERSIONS = (1,)
#: Largest block accepted; anything larger is a lying length.
_MAX_BLOCK = MAX_RECORD_LEN + (1 << 20)
#: Bytes of file walked per step; after a section of the other byte order the step starts at
#: :data:`_FIRST_STEP` and grows, so files of many tiny sections are walked in linear time.
WINDOW = 64 << 20
_FIRST_STEP = 64 << 10
#: Largest if_tsresol Wireshark accepts; beyond it the interface's time stamps are flagged.
_MAX_UNITS = max(10**19, 2**63)
_NO_TIMESTAMP = problem_code("no_timestamp")
_BAD_TIMESTAMP = problem_code("bad_timestamp")
_UNKNOWN_IFACE = problem_code("unknown_interface")


@dataclass(frozen=True)
class Interface:
    """One Interface Description Block."""

    linktype: int
    snaplen: int
    units_per_s: int = 1_000_000  #: from if_tsresol (default microseconds)
    offset_s: int = 0  #: if_tsoffset
    fcs_len: int = 0  #: if_fcslen: bytes of frame check sequence ending each frame


def parse_idb(raw: bytes, order: str) -> Interface:
    """An IDB from its bytes (header included); options past the block are ignored.

    >>> blk = struct.pack("<IIHHI", 1, 28, 1, 0, 0) + struct.pack("<HHBxxx", 9, 1, 9)
    >>> parse_idb(blk + struct.pack("<I", 28), "<").units_per_s
    1000000000
    """
    linktype, _res, snaplen = struct.unpack_from(order + "HHI", raw, 8)
    units, offset, fcs = 1_000_000, 0, 0
    pos, end = 16, len(raw) - 4
    while pos + 4 <= end:
        code, olen = struct.unpack_from(order + "HH", raw, pos)
        if code == 0:
            break
        val = pos + 4
        if val + olen > end:
            break
        if code == _OPT_TSRESOL and olen >= 1:
            units = resolution_units(raw[val])
        elif code == _OPT_TSOFFSET and olen >= 8:
            offset = struct.unpack_from(order + "q", raw, val)[0]
        elif code == _OPT_FCSLEN and olen >= 1:
            fcs = min(raw[val], 127)
        pos = val + ((olen + 3) & ~3)
    return Interface(linktype, snaplen, units, offset, fcs)


def _order_of(path: str, src: ByteSource, off: int) -> str:
    """Byte order of the section header at ``off``; raises CaptureFormatError if unusable."""
    head = src.bytes_at(off, 16)
    if len(head) < 12:
        raise CaptureFormatError(f"{path}: pcapng section header at byte {off} is cut short")
    bom = head[8:12]
    if bom == struct.pack("<I", BOM):
        return "<"
    if bom == struct.pack(">I", BOM):
        return ">"
    raise CaptureFormatError(f"{path}: pcapng section header at byte {off} has byte-order "
                             f"magic {bom.hex()}, expected 1a2b3c4d in either order")


class _Interfaces:
    """Every interface of the file so far (one row per IDB), as arrays for gathering."""

    def __init__(self) -> None:
        self.count = 0
        self._pairs: dict[tuple[int, int], int] = {}  # (units, offset) -> clock number
        self.clocks: list[tuple[int, int]] = []
        self._linktype = np.zeros(16, np.int32)
        self._snaplen = np.zeros(16, np.int64)
        self._clock = np.zeros(16, np.int64)
        self._fcs = np.zeros(16, np.int8)

    def add(self, iface: Interface) -> None:
        key = (iface.units_per_s, iface.offset_s)
        if key not in self._pairs:
            self._pairs[key] = len(self.clocks)
            self.clocks.append(key)
        if self.count == len(self._clock):  # grow by doubling: linear time overall
            self._linktype = np.resize(self._linktype, 2 * self.count)
            self._snaplen = np.resize(self._snaplen, 2 * self.count)
            self._clock = np.resize(self._clock, 2 * self.count)
            self._fcs = np.resize(self._fcs, 2 * self.count)
        self._linktype[self.count] = iface.linktype
        self._fcs[self.count] = iface.fcs_len
        self._snaplen[self.count] = iface.snaplen
        self._clock[self.count] = self._pairs[key]
        self.count += 1

    def arrays(self):
        """(linktype int32, snaplen int64, clock int64, FCS bytes int8) per interface row."""
        n = self.count
        return self._linktype[:n], self._snaplen[:n], self._clock[:n], self._fcs[:n]

    def copy(self) -> _Interfaces:
        """An independent copy (the walk goes on adding to the original)."""
        other = _Interfaces()
        other.count = self.count
        other._pairs = dict(self._pairs)
        other.clocks = list(self.clocks)
        n = max(self.count, 1)
        other._linktype = self._linktype[:n].copy()
        other._snaplen = self._snaplen[:n].copy()
        other._clock = self._clock[:n].copy()
        other._fcs = self._fcs[:n].copy()
        return other


@dataclass
class _State:
    """Where the walk is: byte order, section number, interfaces seen."""

    order: str
    section: int = -1  # number of the current section (-1 before the first)
    section_first: int = 0  # interface row of the current section's interface 0
    section_count: int = 0  # interfaces described so far in the current section


@dataclass(frozen=True)
class Resume:
    """Where a walk can start again: the offset of a block, the walk's state before it, and
    how many packets from there belong to earlier batches."""

    offset: int
    state: _State
    interfaces: _Interfaces
    skip: int = 0


def pcapng_batches(path: str, source: CaptureSource, max_records: int, *,
                   resume: Resume | None = None, marks: list | None = None
                   ) -> Iterator[tuple[RecordBatch, ByteSource]]:
    """Yield batches of at most ``max_records`` packets in file order, each with the
    :class:`ByteSource` holding its bytes (decode it before asking for the next batch).

    A block whose length is impossible (under 12, over the limit, trailer disagreeing, shorter
    than its type needs) or runs past the end stops the walk with a :class:`CaptureWarning`;
    the packets before it are kept. ``marks``: a list that receives the :class:`Resume` of
    each batch, as it is yielded; ``resume``: start there (the first batch is then the one
    the mark was made for).
    """
    if resume is None:
        first = ByteSource(np.frombuffer(source.head(16), np.uint8), 0, source.size)
        state = _State(_order_of(path, first, 0))
        ifaces = _Interfaces()
        off, skip = 0, 0
    else:
        state, ifaces = replace(resume.state), resume.interfaces.copy()
        off, skip = resume.offset, resume.skip
    pending: list[RecordBatch] = []
    held = 0
    kept = 0
    walked = 0  # packets walked from the starting block (a resumed walk's skipped ones too)
    windows: list[tuple[int, Resume]] = []  # (packets walked before it, where it began)
    src: ByteSource | None = None

    def mark(number: int) -> None:
        while len(windows) > 1 and windows[1][0] <= number:
            windows.pop(0)  # no later batch starts before the next window
        before, at = windows[0]
        marks.append(replace(at, skip=number - before))

    def flush(everything: bool):
        nonlocal pending, held, kept
        while held >= max_records or (everything and held):
            whole = RecordBatch.concat(pending)
            pending = [whole.take(slice(max_records, None))]
            held = len(pending[0])
            if marks is not None:
                mark(skip + kept)
            kept += min(len(whole), max_records)
            yield whole.take(slice(0, max_records)), src

    step = WINDOW
    problem = None
    while off < source.size:
        if source.breaking():  # a writer waits: hand over what was walked (re-read with
            yield from flush(True)  # pread by CaptureSource.secure), then stop mapping
            source.degrade()
        stop = off + step
        keep = next((int(b.data_off[0]) for b in pending if len(b)), None)  # not handed over
        src = source.span(off, stop + 64, keep)
        walk = walk_chain(src, off, 0, 4, state.order, _MAX_BLOCK, stop, blocks=True)
        offs = walk.offsets
        heads = walk.headers if walk.headers is not None else src.rows(offs, 16)
        if marks is not None:
            here = Resume(off, replace(state), ifaces.copy())
        batch, upto, problem = _blocks(path, src, state, ifaces, offs, heads, walk.big,
                                       first_block=off == 0)
        state.order = walk.order
        if len(batch):
            if marks is not None:
                windows.append((walked, here))
            before, walked = walked, walked + len(batch)
            if before < skip:  # packets of earlier batches (a resumed walk)
                batch = batch.take(slice(min(skip - before, len(batch)), None))
        if len(batch):
            pending.append(batch)
            held += len(batch)
        done = upto < len(offs) or walk.status == "lying"
        nxt = walk.next_offset
        if not done and walk.status == "cut":
            if src.is_file_end:
                kind = _u32(src, nxt, state.order)
                problem = (f"pcapng section header at byte {nxt} is cut short"
                           if kind == _SHB else
                           f"file ends inside the block at byte {nxt} (cut capture)")
                if source.shrunk:
                    problem += "; the file shrank while being read"
                done = True
            elif nxt == off:  # one block longer than the window: read a longer one
                step = max(step * 2, (_u32(src, nxt + 4, state.order) or 0) + 64)
                continue
        elif walk.status == "lying" and problem is None:
            problem = (f"block at byte {nxt} claims length "
                       f"{_u32(src, nxt + 4, state.order)}; stopped there")
        elif walk.status == "section" and not done:
            try:
                head = np.frombuffer(source.pread(nxt, 16), np.uint8)
                state.order = _order_of(path, ByteSource(head, nxt, source.size), nxt)
            except CaptureFormatError as exc:
                problem = str(exc).removeprefix(f"{path}: ")
                done = True
            step = _FIRST_STEP
        elif walk.status == "more":
            step = min(step * 8, WINDOW)
        yield from flush(done or nxt >= source.size)
        if done:
            break
        off = nxt
    yield from flush(True)
    if problem:
        warn_capture(path, problem + f"; every complete packet before it is kept ({kept})")


def _epb_fcs(src: ByteSource, offs, ext, cap, big, epb) -> np.ndarray:
    """The FCS length ``epb_flags`` gives each Enhanced Packet Block (0: none given).

    Options follow the packet data (padded to 4 bytes) up to the block's trailer; every block
    with options is walked in lock step, one option per step."""
    n = len(offs)
    out = np.zeros(n, np.int64)
    at = offs + 28 + ((cap + 3) & ~3)
    end = offs + ext - 4
    live = np.flatnonzero(epb & (at + 4 <= end))
    for _ in range(MAX_EPB_OPTIONS):
        if not len(live):
            break
        head = _words(src.rows(at[live], 8), big[live], "u2")
        code, length = head[:, 0].astype(np.int64), head[:, 1].astype(np.int64)
        flags = (code == _OPT_EPB_FLAGS) & (length >= 4) & (at[live] + 8 <= end[live])
        if flags.any():
            value = _words(src.rows(at[live] + 4, 4), big[live])[:, 0].astype(np.int64)
            out[live[flags]] = (value[flags] >> 5) & 0xF
        at[live] += 4 + ((length + 3) & ~3)
        live = live[(code != 0) & ~flags & (at[live] + 4 <= end[live])]
    return out


def _u32(src: ByteSource, off: int, order: str) -> int | None:
    return src.u32(off, order)


def _words(m: np.ndarray, big: np.ndarray, dtype: str = "u4") -> np.ndarray:
    """The unsigned words of each row of the uint8 matrix ``m``, read in its block's byte
    order (``big`` per row), as an ``(n, k)`` matrix of native unsigned integers (no copy when
    every block has the same byte order and ``m`` is contiguous)."""
    m = np.ascontiguousarray(m)
    n = len(m)
    if n == 0:
        return np.zeros((0, m.shape[1] // int(dtype[1:])), np.dtype(dtype))
    if not big.any():
        return m.view("<" + dtype).reshape(n, -1)
    if big.all():
        return m.view(">" + dtype).reshape(n, -1).astype(dtype)
    return np.where(big[:, None], m.view(">" + dtype).reshape(n, -1),
                    m.view("<" + dtype).reshape(n, -1)).astype(dtype)


def _blocks(path: str, src: ByteSource, state: _State, ifaces: _Interfaces, offs: np.ndarray,
            heads: np.ndarray, big: np.ndarray, first_block: bool):
    """Check the walked blocks, update ``state`` and return (packets, blocks used, problem).

    Blocks from the first faulty one on are not used; ``problem`` says what was wrong.
    """
    n = len(offs)
    words = _words(heads[:, :8], big)
    btype = words[:, 0].astype(np.int64)
    blen = words[:, 1].astype(np.int64)
    ext = (blen + 3) & ~3
    trailer = _words(src.rows(offs + ext - 4, 4), big)[:, 0].astype(np.int64)
    epb = btype == _EPB  # nearly every block: the other kinds are looked up one by one
    need = np.where(epb, _MIN_LEN[_EPB], 12)
    rest = np.flatnonzero(~epb)
    if len(rest):
        need[rest] = [_MIN_LEN.get(int(k), 12) for k in btype[rest]]
    is_shb = btype == _SHB
    unknown = np.zeros(n, bool)
    version = np.zeros((n, 2), np.int64)
    shbs = np.flatnonzero(is_shb)
    if len(shbs):
        version[shbs] = _words(heads[shbs, 12:16], big[shbs], "u2")
        unknown[shbs] = ~np.isin(version[shbs, 0], KNOWN_MAJOR_VERSIONS)
    bad = (((trailer + 3) & ~3) != ext) | (blen < need) | unknown
    upto = int(np.argmax(bad)) if bad.any() else n
    problem = None
    if upto < n:
        at, length = int(offs[upto]), int(blen[upto])
        if unknown[upto]:
            major, minor = (int(v) for v in version[upto])
            what = (f"section at byte {at} has pcapng version {major}.{minor}, expected "
                    f"{'/'.join(f'{v}.x' for v in KNOWN_MAJOR_VERSIONS)}")
            if first_block and upto == 0:
                raise CaptureFormatError(f"{path}: {what}; not read")
            problem = what + "; stopped there"
        elif blen[upto] < need[upto]:
            problem = (f"{_NAMES[int(btype[upto])]} block at byte {at} is too short "
                       f"({length} bytes)")
        else:
            problem = (f"block at byte {at}: trailing length {int(trailer[upto])} disagrees "
                       f"with {length}; stopped there")
        offs, heads, btype, blen, ext, is_shb, big = (
            a[:upto] for a in (offs, heads, btype, blen, ext, is_shb, big))
    if first_block and (not len(btype) or btype[0] != _SHB):
        raise CaptureFormatError(f"{path}: pcapng file does not start with a section header"
                                 + (f" ({problem})" if problem else ""))
    # sections and interfaces, block by block in file order
    is_idb = btype == _IDB
    first_row = ifaces.count
    for i in np.flatnonzero(is_idb):  # parsed one by one: options
        ifaces.add(parse_idb(src.bytes_at(int(offs[i]), int(ext[i])), ">" if big[i] else "<"))
    idb_cum = np.cumsum(is_idb)  # IDBs of this window up to and including each block
    # per block: number of its section, the interface row of its section's interface 0 and
    # how many interfaces its section has described before the block
    sect_no = state.section + np.cumsum(is_shb)
    base_cum = np.maximum.accumulate(np.where(is_shb, idb_cum, -state.section_count))
    described = idb_cum - base_cum
    row0 = np.maximum.accumulate(np.where(is_shb, first_row + idb_cum,
                                          state.section_first))
    if len(btype):
        state.section = int(sect_no[-1])
        state.section_first = int(row0[-1])
        state.section_count = int(described[-1])
    packet = (btype == _EPB) | (btype == _OPB) | (btype == _SPB)
    return _packets(path, src, ifaces, offs[packet], heads[packet], btype[packet], ext[packet],
                    sect_no[packet], described[packet], row0[packet], big[packet]), upto, problem


def _packets(path: str, src: ByteSource, ifaces: _Interfaces, offs, heads, btype, ext, section,
             described, row0, big) -> RecordBatch:
    """The record fields of the packet blocks at ``offs`` (first 16 bytes in ``heads``)."""
    n = len(offs)
    hdr = np.empty((n, 28), np.uint8)  # the walk read 16 bytes; 12 more complete the header
    hdr[:, :16] = heads
    hdr[:, 16:] = src.rows(offs + 16, 12)
    w = _words(hdr, big)
    spb = btype == _SPB
    opb = btype == _OPB
    iface = w[:, 2].astype(np.int64)
    if opb.any():
        iface[opb] = _words(hdr[opb, 8:10], big[opb], "u2")[:, 0]
    iface[spb] = 0
    known = iface < described
    row = np.where(known, row0 + iface, 0)
    linktype_of, snaplen_of, clock_of, fcs_of = ifaces.arrays()
    linktype = np.where(known, linktype_of[row] if len(linktype_of) else -1, -1).astype(np.int32)
    data_off = offs + np.where(spb, 12, 28)
    wire = np.where(spb, w[:, 2], w[:, 6]).astype(np.int64)
    cap = w[:, 5].astype(np.int64)
    if spb.any():  # an SPB holds min(original length, the block's room, the snap length)
        snap = np.where(known, snaplen_of[row] if len(snaplen_of) else 0, 0)
        room = ext - 16
        spb_cap = np.minimum(wire, room)
        spb_cap = np.where(snap > 0, np.minimum(spb_cap, snap), spb_cap)
        cap = np.where(spb, spb_cap, cap)
    # A captured length that runs past its block lies: keep the record, clamp to the block.
    room = offs + ext - 4 - data_off
    lying = cap > room
    if lying.any():
        first = int(offs[np.flatnonzero(lying)[0]])
        warn_capture(path, f"{int(lying.sum())} packet block(s) (first at byte "
                     f"{first}) claim more captured bytes than the block holds; read only "
                     "what the block holds")
        cap = np.minimum(cap, room)
    ts_ns = np.full(n, NAT, np.int64)
    flag = np.zeros(n, np.int8)
    flag[spb & known] = _NO_TIMESTAMP
    flag[~known] = _UNKNOWN_IFACE
    stamped = known & ~spb
    if stamped.any():
        ticks = (w[:, 3].astype(np.uint64) << np.uint64(32)) | w[:, 4].astype(np.uint64)
        clock = np.where(stamped, clock_of[row] if len(clock_of) else -1, -1)
        every = bool(stamped.all())
        used = [0] if every and len(ifaces.clocks) == 1 else \
            np.flatnonzero(np.bincount(clock[stamped], minlength=len(ifaces.clocks)))
        for c in used:
            on = slice(None) if every and len(used) == 1 else clock == c
            units, offset = ifaces.clocks[int(c)]
            if units > _MAX_UNITS:
                flag[on] = _BAD_TIMESTAMP
                continue
            ns, ok = ticks_to_ns(ticks[on], units, offset)
            ts_ns[on] = ns
            if not ok.all():
                flag[np.arange(n)[on][~ok]] = _BAD_TIMESTAMP
    fcs = np.where(known, fcs_of[row] if len(fcs_of) else 0, 0).astype(np.int8)
    epb = (btype == _EPB) & ~lying
    if epb.any():
        flagged = _epb_fcs(src, offs, ext, w[:, 5].astype(np.int64), big, epb)
        fcs = np.where(flagged > 0, flagged, fcs).astype(np.int8)
    return RecordBatch(data_off, cap, wire, ts_ns, iface.astype(np.int32), linktype,
                       section.astype(np.int32), flag, fcs)
