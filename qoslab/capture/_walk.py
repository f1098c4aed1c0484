"""Finding record boundaries: a length-prefixed chain walk (private).

Record ``k + 1`` starts where record ``k`` ends, so boundaries form a chain. For long files the
chain is walked in many lanes at once: the file is cut into segments, a plausible record start
is guessed just after each cut (timestamp and length fields agree for several hops), every lane
walks its segment in lock step with numpy, and each guess is then *proved* by the previous
lane's walk landing on it exactly. A guess that is not proved is replaced by the true boundary
and that segment walked again, so the result is exactly the sequential walk; bad guesses only
cost time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._bytes import ByteSource, windows

__all__ = ["Walk", "walk_chain"]

#: Below this many bytes a plain sequential walk is cheaper than setting up lanes.
LANE_MIN_BYTES = 2 << 20
#: Bytes per lane segment.
SEGMENT = 192 << 10
#: Bytes scanned after a segment cut for a plausible record start.
SCAN = 2048
#: Further records a guessed start must chain through plausibly before it is used.
VERIFY_HOPS = 4


#: pcapng byte-order magic.
BOM = 0x1A2B3C4D
#: The SHB type word as a u32 (a palindrome: the same in either byte order).
_SHB_WORD = 0x0A0D0D0A


@dataclass
class Walk:
    """Result of one walk: record offsets, where the walk stopped and why."""

    offsets: np.ndarray  #: int64 offsets of the record headers
    next_offset: int  #: offset of the first record not returned
    status: str  #: "more" (stopped at ``stop``), "end", "cut", "lying" or "section"
    headers: np.ndarray | None = None  #: (N, 16) uint8 first bytes of each record, if read
    big: np.ndarray | None = None  #: pcapng blocks: bool per block, True = big-endian section
    order: str | None = None  #: pcapng blocks: byte order of the section at ``next_offset``


def _sequential(raw, off: int, end: int, hdr: int, lfield: int, fmt: str, limit: int,
                stop: int, min_len: int = 0, blocks: bool = False) -> Walk:
    """Walk from ``off`` while the record start is before ``stop``.

    With ``blocks`` (pcapng) lengths are rounded up to a multiple of 4, as Wireshark reads
    them, and the walk stops (status ``"section"``) at a section header block whose
    byte-order magic is not the walk's: that section is walked with its own byte order.
    """
    unpack = struct.Struct(fmt).unpack_from
    need = max(hdr, lfield + 4)
    out: list[int] = []
    append = out.append
    while off < stop:
        if off + need > end:
            return Walk(np.array(out, np.int64), off, "cut")
        length = unpack(raw, off + lfield)[0]
        if blocks:
            if unpack(raw, off)[0] == _SHB_WORD and (
                    off + 12 > end or unpack(raw, off + 8)[0] != BOM):
                return Walk(np.array(out, np.int64), off, "section")
            nxt = off + ((length + 3) & ~3)
        else:
            nxt = off + hdr + length
        if length > limit or length < min_len:
            return Walk(np.array(out, np.int64), off, "lying")
        if nxt > end:
            return Walk(np.array(out, np.int64), off, "cut")
        append(off)
        off = nxt
    return Walk(np.array(out, np.int64), off, "end" if off >= end else "more")


def _sequential_blocks(raw, off: int, end: int, limit: int, stop: int, order: str) -> Walk:
    """Walk pcapng blocks from ``off`` while the block start is before ``stop``, following
    section headers of either byte order (their byte order is kept per block)."""
    fmts = {"<": struct.Struct("<II").unpack_from, ">": struct.Struct(">II").unpack_from}
    unpack = fmts[order]
    out: list[int] = []
    big: list[bool] = []
    is_big = order == ">"
    while off < stop:
        if off + 8 > end:
            return _blocks_walk(out, big, off, "cut", order)
        kind, length = unpack(raw, off)
        if kind == _SHB_WORD:  # a section header: its byte-order magic sets the order
            if off + 12 > end:
                return _blocks_walk(out, big, off, "cut", order)
            bom = raw[off + 8:off + 12].tobytes()
            if bom != _BOMS[order]:
                if bom != _BOMS["<" if order == ">" else ">"]:
                    return _blocks_walk(out, big, off, "section", order)
                order = "<" if order == ">" else ">"
                unpack = fmts[order]
                is_big = not is_big
                kind, length = unpack(raw, off)
        if length > limit or length < 12:
            return _blocks_walk(out, big, off, "lying", order)
        nxt = off + ((length + 3) & ~3)
        if nxt > end:
            return _blocks_walk(out, big, off, "cut", order)
        out.append(off)
        big.append(is_big)
        off = nxt
    return _blocks_walk(out, big, off, "end" if off >= end else "more", order)


def _blocks_walk(out, big, off, status, order) -> Walk:
    return Walk(np.array(out, np.int64), off, status, None, np.array(big, bool), order)


_BOMS = {"<": struct.pack("<I", BOM), ">": struct.pack(">I", BOM)}


def _u32(buf: np.ndarray, pos: np.ndarray, order: str) -> np.ndarray:
    """The unaligned u32 at each ``pos`` (callers keep ``pos + 4 <= len(buf)``)."""
    window = as_strided(buf, shape=(max(len(buf) - 3, 0), 4), strides=(1, 1), writeable=False)
    return window[pos].view(order + "u4").reshape(-1).astype(np.int64)


def _plausible(buf, pos, end, hdr, lfield, order, limit, ts_ref):
    """Does a pcap record header plausibly start at each ``pos``? (bool array)."""
    ok = pos + hdr <= end
    p = np.where(ok, pos, 0)
    ts = _u32(buf, p, order)
    frac = _u32(buf, p + 4, order)
    cap = _u32(buf, p + lfield, order)
    wire = _u32(buf, p + lfield + 4, order)
    ok &= (np.abs(ts - ts_ref) < (1 << 24)) & (frac < 1_000_000_000) & (cap <= limit)
    ok &= (cap <= wire) & (wire <= (1 << 20)) & (p + hdr + cap <= end)
    return ok, p + hdr + cap


def _plausible_block(buf, pos, end, limit, order):
    """Does a pcapng block plausibly start at each ``pos``? (bool array, next offsets)."""
    ok = pos + 12 <= end
    p = np.where(ok, pos, 0)
    blen = _u32(buf, p + 4, order)
    ext = (blen + 3) & ~3
    ok &= (blen >= 12) & (blen <= limit) & (p + ext <= end)
    trailer = _u32(buf, np.where(ok, p + ext - 4, 0), order)
    return ok & (((trailer + 3) & ~3) == ext), p + np.where(ok, ext, 12)

#: Mask rounding a u32 block length down to a multiple of 4 (after adding 3: up).
_ROUND4 = np.uint32(0xFFFFFFFC)
#: pcapng Enhanced Packet Block type: what a lane guess looks for.
_EPB = 6


def _guesses(src: ByteSource, cuts, end, hdr, lfield, order, limit, ts_ref,
             blocks: bool = False):
    """A plausible record start at or after each cut (-1 where none is found), and for
    blocks whether it is a big-endian one."""
    buf = src.buf
    width = SCAN + 4
    rows = src.rows(cuts, width, np.full(len(cuts), width))
    cand_big = None
    if blocks:  # an Enhanced Packet Block type word, in either byte order
        zero = (rows[:, 1:1 + SCAN] == 0) & (rows[:, 2:2 + SCAN] == 0)
        little = zero & (rows[:, 0:SCAN] == _EPB) & (rows[:, 3:3 + SCAN] == 0)
        cand_big = zero & (rows[:, 0:SCAN] == 0) & (rows[:, 3:3 + SCAN] == _EPB)
        cand = little | cand_big
    else:
        top = (ts_ref >> 16) & 0xFFFF
        hi, lo = (top >> 8) & 0xFF, top & 0xFF
        if order == "<":  # the two high bytes of ts_sec, where they sit in the header
            cand = (rows[:, 3:3 + SCAN] == hi) & (rows[:, 2:2 + SCAN] == lo)
        else:
            cand = (rows[:, 0:SCAN] == hi) & (rows[:, 1:1 + SCAN] == lo)
    out = np.full(len(cuts), -1, np.int64)
    out_big = np.zeros(len(cuts), bool)
    lanes = np.arange(len(cuts))
    for _ in range(16):  # the first candidate of each lane that survives the hops
        first = cand[lanes].argmax(axis=1)
        has = cand[lanes, first]
        lanes, first = lanes[has], first[has]
        if not len(lanes):
            break
        pos = cuts[lanes] + first
        good = np.ones(len(pos), bool)
        p = pos
        if blocks:
            first_big = cand_big[lanes, first]
            big = first_big.copy()
            for _ in range(VERIFY_HOPS + 1):
                # a section header on the way sets the byte order of what follows
                inside = p + 12 <= end
                at = np.where(inside, p, 0)
                shb = inside & (_u32(buf, at, "<") == _SHB_WORD)
                big = np.where(shb & (_u32(buf, at + 8, "<") == BOM), False,
                               np.where(shb & (_u32(buf, at + 8, ">") == BOM), True, big))
                ok_le, p_le = _plausible_block(buf, p, end, limit, "<")
                ok_be, p_be = _plausible_block(buf, p, end, limit, ">")
                ok = np.where(big, ok_be, ok_le)
                p = np.where(big, p_be, p_le)
                good &= ok | (p >= end)
            out_big[lanes[good]] = first_big[good]
        else:
            for _ in range(VERIFY_HOPS + 1):
                ok, p = _plausible(buf, p, end, hdr, lfield, order, limit, ts_ref)
                good &= ok | (p >= end)
        out[lanes[good]] = pos[good]
        cand[lanes[~good], first[~good]] = False
        lanes = lanes[~good]
    return out, out_big


def walk_chain(src: ByteSource, off: int, hdr: int, lfield: int, order: str, limit: int,
               stop: int, *, ts_ref: int | None = None, blocks: bool = False) -> Walk:
    """Walk pcap-style records (``hdr``-byte header, u32 captured length at ``lfield``).

    Returns the offsets of the records starting in ``[off, stop)`` (the chain is followed
    exactly as a sequential walk would) and lying wholly inside ``src``. ``ts_ref``, a
    seconds timestamp of the file, lets lane guesses check the timestamp field; without it
    the walk is sequential. With ``blocks`` the records are pcapng blocks (``hdr=0,
    lfield=4``: the length is the whole block, at least 12 bytes, rounded up to a multiple of
    4 as Wireshark reads it); a short walk follows section headers of either byte order
    (``Walk.big`` per block), a lane walk stops with status ``"section"`` at a section header
    of the other byte order, and any walk stops so at a section header with an unknown
    byte-order magic. The caller checks trailers and block kinds afterwards.
    Offsets are file offsets; status ``"cut"`` means the record runs past the end of ``src``
    (of the file only when ``src.is_file_end``).
    """
    base = src.base
    rel = src if base == 0 else ByteSource(src.buf)
    w = _walk(rel, off - base, hdr, lfield, order, limit, stop - base, ts_ref, blocks)
    if blocks and w.big is None:  # a lane walk: every block of the walk's byte order
        w.big = np.full(len(w.offsets), order == ">")
        w.order = order
    if base:
        w.offsets = w.offsets + base
        w.next_offset += base
    return w


def _walk(src: ByteSource, off: int, hdr: int, lfield: int, order: str, limit: int,
          stop: int, ts_ref: int | None, blocks: bool) -> Walk:
    """:func:`walk_chain` on a buffer starting at file offset 0."""
    end = src.size
    fmt = order + "I"
    stop = min(stop, end)
    min_len = 12 if blocks else 0
    seq = partial(_sequential, src.buf, end=end, hdr=hdr, lfield=lfield, fmt=fmt, limit=limit,
                  min_len=min_len, blocks=blocks)
    if stop - off < LANE_MIN_BYTES and blocks:
        return _sequential_blocks(src.buf, off, end, limit, stop, order)
    if stop - off < LANE_MIN_BYTES or (ts_ref is None and not blocks):
        return seq(off, stop=stop)
    final = stop
    stop = min(stop, end - 16)  # lanes read 16 bytes per record; the tail is walked after
    if off >= stop:
        if blocks:
            return _sequential_blocks(src.buf, off, end, limit, final, order)
        return seq(off, stop=final)
    cuts = np.arange(off + SEGMENT, stop - SCAN, SEGMENT, dtype=np.int64)
    guesses, guess_big = _guesses(src, cuts, end, hdr, lfield, order, limit, ts_ref, blocks)
    found = guesses >= 0
    starts, pick = np.unique(guesses[found], return_index=True)
    starts = np.concatenate([[off], starts]).astype(np.int64)
    big0 = np.concatenate([[order == ">"], guess_big[found][pick]]) if blocks else None
    if len(starts) == 1:  # no lane could be started: the plain walk is cheaper
        if blocks:
            return _sequential_blocks(src.buf, off, end, limit, final, order)
        return seq(off, stop=final)
    limits = np.append(starts[1:], stop)
    lane_of, pos_all, heads_all, step_of, ends, status, big_all, end_big = _lockstep(
        src.buf, starts, limits, end, hdr, lfield, order, limit, min_len, blocks, big0)
    counts = np.bincount(lane_of, minlength=len(starts))
    # Records in file order: lane by lane, each lane's records in step order.
    base = np.concatenate([[0], np.cumsum(counts)])
    at = base[lane_of] + step_of
    flat = np.empty(len(lane_of), np.int64)
    flat[at] = pos_all
    flat_h = np.empty(len(lane_of), heads_all.dtype)  # 16-byte items: a fast scatter
    flat_h[at] = heads_all
    flat_h = flat_h.view(np.uint8).reshape(-1, 16)
    flat_b = None
    if blocks:
        flat_b = np.empty(len(lane_of), bool)
        flat_b[at] = big_all
    # Prove the lanes in order; a lane whose start was not reached is walked again.
    ok = status == _OK
    chained = ok[:-1] & (ends[:-1] == starts[1:])
    if blocks:  # ... and in the byte order the next lane started with
        chained &= end_big[:-1] == big0[1:]
    first = len(chained) if chained.all() else int(np.argmin(chained))
    # lanes 0 .. first-1 are proved and end exactly where the next one starts
    pieces: list[np.ndarray] = [flat[:base[first]]]
    heads: list[np.ndarray] = [flat_h[:base[first]]]
    bigs: list[np.ndarray] = [flat_b[:base[first]]] if blocks else []
    at = int(starts[first])
    cur = (">" if big0[first] else "<") if blocks else order

    def result(next_offset, status_name):
        w = Walk(_cat(pieces), int(next_offset), status_name, _cat(heads, 16))
        if blocks:
            w.big, w.order = _cat(bigs, bool_=True), cur
        return w

    def repair(start, until):
        if blocks:
            return _sequential_blocks(src.buf, start, end, limit, until, cur)
        return seq(start, stop=until)

    for i in range(first, len(starts)):
        here = (">" if big0[i] else "<") if blocks else order
        if at == starts[i] and here == cur:
            if i == first:  # continues the proved prefix: one slice
                pieces[0], heads[0] = flat[:base[i + 1]], flat_h[:base[i + 1]]
                if blocks:
                    bigs[0] = flat_b[:base[i + 1]]
            else:
                pieces.append(flat[base[i]:base[i + 1]])
                heads.append(flat_h[base[i]:base[i + 1]])
                if blocks:
                    bigs.append(flat_b[base[i]:base[i + 1]])
            if blocks:
                cur = ">" if end_big[i] else "<"
            if status[i] != _OK:
                return result(ends[i], _STATUS[status[i]])
            at = int(ends[i])
        elif at < limits[i]:
            w = repair(at, int(limits[i]))
            pieces.append(w.offsets)
            heads.append(src.rows(w.offsets, 16))
            if blocks:
                bigs.append(w.big)
                cur = w.order
            if w.status in ("cut", "lying", "section"):
                return result(w.next_offset, w.status)
            at = w.next_offset
    if at < final:
        w = repair(at, final)
        pieces.append(w.offsets)
        heads.append(src.rows(w.offsets, 16))
        if blocks:
            bigs.append(w.big)
            cur = w.order
        return result(w.next_offset, w.status)
    return result(at, "end" if at >= end else "more")


def _cat(pieces, width: int = 0, bool_: bool = False):
    pieces = [p for p in pieces if len(p)] or pieces[:1]
    if len(pieces) == 1:
        return pieces[0]
    if pieces:
        return np.concatenate(pieces)
    if bool_:
        return np.zeros(0, bool)
    return np.zeros((0, width), np.uint8) if width else np.zeros(0, np.int64)


_OK, _LYING, _CUT, _SECTION = 0, 1, 2, 3
_STATUS = ("ok", "lying", "cut", "section")


def _lockstep(buf, starts, limits, end, hdr, lfield, order, limit, min_len=0, blocks=False,
              big0=None):
    """Walk every lane from its start until it reaches its limit, all lanes at once.

    Returns, in step order, each record's lane, offset, first 16 bytes, step number and (for
    blocks) byte order; then per lane where its walk ended, why (``_OK`` / ``_LYING`` /
    ``_CUT`` / ``_SECTION``) and in which byte order. Lanes stop at their limit, and every
    limit is at most ``end - 16``, so each 16-byte read is in bounds. With ``blocks``,
    lengths round up to a multiple of 4, each lane reads its blocks in its own byte order
    (``big0``: the order of its first block), switching at every section header, and stops
    (``_SECTION``) at a section header whose byte-order magic is neither.
    """
    n = len(starts)
    ends = starts.copy()
    status = np.zeros(n, np.int8)
    lanes = np.arange(n)
    p = starts.copy()
    lim = limits.copy()
    lane_steps, pos_steps, hdr_steps, big_steps = [], [], [], []
    window = windows(buf, 16)
    word = np.dtype(order + "u4")
    lo, span = np.uint32(min_len), np.uint32(limit - min_len)
    big = (np.full(n, order == ">") if big0 is None else big0.copy()) if blocks else None
    end_big = big.copy() if blocks else None
    mixed = blocks and bool((big != (order == ">")).any())
    while len(lanes):
        heads = window[p]  # (k,) 16-byte items
        if blocks:
            words = heads.view(word).reshape(-1, 4)
            shb = words[:, 0] == _SHB_WORD
            if shb.any():  # a section header: its byte-order magic sets the lane's order
                le = heads.view("<u4").reshape(-1, 4)
                be = heads.view(">u4").reshape(-1, 4)
                little, large = shb & (le[:, 2] == BOM), shb & (be[:, 2] == BOM)
                big[little] = False
                big[large] = True
                mixed = bool(big.any()) if order == "<" else not bool(big.all())
                unknown = shb & ~little & ~large
                if unknown.any():  # no byte order at all: the caller reports it
                    status[lanes[unknown]] = _SECTION
                    ends[lanes[unknown]] = p[unknown]
                    end_big[lanes[unknown]] = big[unknown]
                    good = ~unknown
                    p, lanes, lim, heads, big, words = (p[good], lanes[good], lim[good],
                                                        heads[good], big[good], words[good])
            if mixed:  # some lanes read the other byte order
                other = heads.view(">u4" if order == "<" else "<u4").reshape(-1, 4)
                length = np.where(big == (order == ">"), words[:, 1], other[:, 1])
            else:
                length = words[:, 1]
        elif lfield % 4 == 0:
            length = heads.view(word).reshape(-1, 4)[:, lfield // 4]
        else:
            length = heads.view(np.uint8).reshape(-1, 16)[:, lfield:lfield + 4].copy().view(
                word).reshape(-1)
        bad = (length - lo > span) if min_len else (length > span)
        if bad.any():  # a lying length (or, past a cut, no header at all): the lane stops
            room = p[bad] + hdr <= end
            status[lanes[bad]] = np.where(room, _LYING, _CUT)
            ends[lanes[bad]] = p[bad]
            good = ~bad
            if blocks:
                end_big[lanes[bad]] = big[bad]
                big = big[good]
            p, lanes, lim, heads, length = p[good], lanes[good], lim[good], heads[good], \
                length[good]
        nxt = p + hdr
        nxt += (length + 3) & _ROUND4 if blocks else length
        going = nxt < lim
        if going.all():
            lane_steps.append(lanes)
            pos_steps.append(p)
            hdr_steps.append(heads)
            if blocks:
                big_steps.append(big.copy())
            p = nxt
            continue
        cut = nxt > end
        keep = ~cut
        if cut.any():  # the record runs past the end of the file: not returned
            status[lanes[cut]] = _CUT
            ends[lanes[cut]] = p[cut]
        lane_steps.append(lanes[keep])
        pos_steps.append(p[keep])
        hdr_steps.append(heads[keep])
        if blocks:
            big_steps.append(big[keep])
            end_big[lanes] = big
        stopped = ~going & keep
        ends[lanes[stopped]] = nxt[stopped]
        p, lanes, lim = nxt[going], lanes[going], lim[going]
        if blocks:
            big = big[going]
    if not lane_steps:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, "V16"),
                np.zeros(0, np.int64), ends, status, np.zeros(0, bool), end_big)
    return (np.concatenate(lane_steps), np.concatenate(pos_steps), np.concatenate(hdr_steps),
            np.repeat(np.arange(len(lane_steps)), [len(x) for x in lane_steps]), ends, status,
            np.concatenate(big_steps) if blocks else None, end_big)
