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

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._bytes import ByteSource

__all__ = ["Walk", "walk_chain"]

#: Below this many bytes a plain sequential walk is cheaper than setting up lanes.
LANE_MIN_BYTES = 2 << 20
#: Bytes per lane segment.
SEGMENT = 192 << 10
#: Bytes scanned after a segment cut for a plausible record start.
SCAN = 2048
#: Further records a guessed start must chain through plausibly before it is used.
VERIFY_HOPS = 4


@dataclass
class Walk:
    """Result of one walk: record offsets, where the walk stopped and why."""

    offsets: np.ndarray  #: int64 offsets of the record headers
    next_offset: int  #: offset of the first record not returned
    status: str  #: "more" (stopped at ``stop``), "end", "cut" or "lying"
    headers: np.ndarray | None = None  #: (N, 16) uint8 first bytes of each record, if read


def _sequential(raw, off: int, end: int, hdr: int, lfield: int, fmt: str, limit: int,
                stop: int, min_len: int = 0) -> Walk:
    """Walk from ``off`` while the record start is before ``stop``."""
    unpack = struct.Struct(fmt).unpack_from
    out: list[int] = []
    append = out.append
    while off < stop:
        if off + hdr > end:
            return Walk(np.array(out, np.int64), off, "cut")
        length = unpack(raw, off + lfield)[0]
        if length > limit or length < min_len:
            return Walk(np.array(out, np.int64), off, "lying")
        nxt = off + hdr + length
        if nxt > end:
            return Walk(np.array(out, np.int64), off, "cut")
        append(off)
        off = nxt
    return Walk(np.array(out, np.int64), off, "end" if off >= end else "more")


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
    ok &= (blen >= 12) & (blen % 4 == 0) & (blen <= limit) & (p + blen <= end)
    trailer = _u32(buf, np.where(ok, p + blen - 4, 0), order)
    return ok & (trailer == blen), p + np.where(ok, blen, 12)

#: pcapng Enhanced Packet Block type: what a lane guess looks for.
_EPB = 6


def _guesses(src: ByteSource, cuts, end, hdr, lfield, order, limit, ts_ref,
             blocks: bool = False) -> np.ndarray:
    """A plausible record start at or after each cut (-1 where none is found)."""
    buf = src.buf
    width = SCAN + 4
    rows = src.rows(cuts, width, np.full(len(cuts), width))
    if blocks:  # an Enhanced Packet Block type word
        word = [_EPB, 0, 0, 0] if order == "<" else [0, 0, 0, _EPB]
        cand = rows[:, 0:SCAN] == word[0]
        for k in (1, 2, 3):
            cand &= rows[:, k:k + SCAN] == word[k]
    else:
        top = (ts_ref >> 16) & 0xFFFF
        hi, lo = (top >> 8) & 0xFF, top & 0xFF
        if order == "<":  # the two high bytes of ts_sec, where they sit in the header
            cand = (rows[:, 3:3 + SCAN] == hi) & (rows[:, 2:2 + SCAN] == lo)
        else:
            cand = (rows[:, 0:SCAN] == hi) & (rows[:, 1:1 + SCAN] == lo)
    out = np.full(len(cuts), -1, np.int64)
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
        for _ in range(VERIFY_HOPS + 1):
            if blocks:
                ok, p = _plausible_block(buf, p, end, limit, order)
            else:
                ok, p = _plausible(buf, p, end, hdr, lfield, order, limit, ts_ref)
            good &= ok | (p >= end)
        out[lanes[good]] = pos[good]
        cand[lanes[~good], first[~good]] = False
        lanes = lanes[~good]
    return out


def walk_chain(src: ByteSource, off: int, hdr: int, lfield: int, order: str, limit: int,
               stop: int, *, ts_ref: int | None = None, blocks: bool = False) -> Walk:
    """Walk pcap-style records (``hdr``-byte header, u32 captured length at ``lfield``).

    Returns the offsets of the records starting in ``[off, stop)`` (the chain is followed
    exactly as a sequential walk would). ``ts_ref``, a seconds timestamp of the file, lets
    lane guesses check the timestamp field; without it the walk is sequential. With
    ``blocks`` the records are pcapng blocks (``hdr=0, lfield=4``: the length is the whole
    block, at least 12 bytes); the caller checks trailers and block kinds afterwards.
    """
    end = src.size
    fmt = order + "I"
    stop = min(stop, end)
    min_len = 12 if blocks else 0
    if stop - off < LANE_MIN_BYTES or (ts_ref is None and not blocks):
        return _sequential(src.buf, off, end, hdr, lfield, fmt, limit, stop, min_len)
    final = stop
    stop = min(stop, end - 16)  # lanes read 16 bytes per record; the tail is walked after
    cuts = np.arange(off + SEGMENT, stop - SCAN, SEGMENT, dtype=np.int64)
    guesses = _guesses(src, cuts, end, hdr, lfield, order, limit, ts_ref, blocks)
    starts = np.concatenate([[off], np.unique(guesses[guesses >= 0])]).astype(np.int64)
    limits = np.append(starts[1:], stop)
    pos_steps, lane_steps, hdr_steps, ends, status = _lockstep(
        src.buf, starts, limits, end, hdr, lfield, order, limit, min_len)
    counts = np.bincount(np.concatenate(lane_steps) if lane_steps else np.zeros(0, np.int64),
                         minlength=len(starts))
    # Prove the lanes in order; a lane whose start was not reached is walked again.
    pieces: list[np.ndarray] = []
    base = np.concatenate([[0], np.cumsum(counts)])
    flat = np.empty(int(base[-1]), np.int64)
    flat_h = np.empty((int(base[-1]), 16), np.uint8)
    for s, (lanes, pos, h) in enumerate(zip(lane_steps, pos_steps, hdr_steps, strict=True)):
        at = base[lanes] + s
        flat[at] = pos
        flat_h[at] = h
    heads: list[np.ndarray] = []
    at = off
    for i in range(len(starts)):
        if at == starts[i]:
            pieces.append(flat[base[i]:base[i + 1]])
            heads.append(flat_h[base[i]:base[i + 1]])
            if status[i] != "ok":
                return Walk(_cat(pieces), int(ends[i]), status[i], _cat(heads, 16))
            at = int(ends[i])
        elif at < limits[i]:
            w = _sequential(src.buf, at, end, hdr, lfield, fmt, limit, int(limits[i]),
                            min_len)
            pieces.append(w.offsets)
            heads.append(src.rows(w.offsets, 16))
            if w.status in ("cut", "lying"):
                return Walk(_cat(pieces), w.next_offset, w.status, _cat(heads, 16))
            at = w.next_offset
    if at < final:
        w = _sequential(src.buf, at, end, hdr, lfield, fmt, limit, final, min_len)
        pieces.append(w.offsets)
        heads.append(src.rows(w.offsets, 16))
        return Walk(_cat(pieces), w.next_offset, w.status, _cat(heads, 16))
    return Walk(_cat(pieces), at, "end" if at >= end else "more", _cat(heads, 16))


def _cat(pieces, width: int = 0):
    if pieces:
        return np.concatenate(pieces)
    return np.zeros((0, width), np.uint8) if width else np.zeros(0, np.int64)


def _lockstep(buf, starts, limits, end, hdr, lfield, order, limit, min_len=0):
    """Walk every lane from its start until it reaches its limit, all lanes at once."""
    n = len(starts)
    pos = starts.copy()
    status = np.array(["ok"] * n, dtype=object)
    lanes = np.arange(n)
    pos_steps, lane_steps, hdr_steps = [], [], []
    window = as_strided(buf, shape=(max(len(buf) - 15, 0), 16), strides=(1, 1),
                        writeable=False)
    while len(lanes):
        p = pos[lanes]
        room = p + hdr <= end
        heads = window[np.where(room, p, 0)]
        length = heads[:, lfield:lfield + 4].copy().view(order + "u4").reshape(-1).astype(
            np.int64)
        nxt = p + hdr + length
        lying = room & ((length > limit) | (length < min_len))
        cut = ~room | (~lying & (nxt > end))
        good = ~lying & ~cut
        status[lanes[lying]] = "lying"
        status[lanes[cut]] = "cut"
        pos_steps.append(p[good])
        lane_steps.append(lanes[good])
        hdr_steps.append(heads[good])
        keep = lanes[good]
        pos[keep] = nxt[good]
        lanes = keep[nxt[good] < limits[keep]]
    return pos_steps, lane_steps, hdr_steps, pos, status
