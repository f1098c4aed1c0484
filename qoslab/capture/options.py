"""Option lists of IPv4, TCP and IPv6 options headers, checked (vectorized).

IPv4 and TCP options (RFC 791 §3.1, RFC 9293 §3.1) are type-length-value items between the
fixed header and the header length the header states; two kinds are a single byte (0: end
of the list, 1: no operation), every other kind has a length byte counting the whole item.
The options of IPv6 hop-by-hop and destination options headers (RFC 8200 §4.2) fill the
header after its first two bytes; only Pad1 (0) is a single byte, and the length byte counts
the option's data (the item is two bytes longer). An item whose length byte is missing
(inside the list), too small or runs past the list's end makes the header malformed
(Wireshark: "too-short option length", "option goes past end of options"): the row is
flagged and its other fields stay decoded; so does an IPv4 or TCP list whose padding after
its end-of-list item is not zero (Wireshark: "Non-zero header padding"). What an option means
is not read.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_OPTIONS", "bad_option_lists"]

#: Bytes of options walked per header (IPv4: 60 - 20, TCP: 60 - 20; an IPv6 options header
#: may hold more: the items past this many bytes are not checked).
MAX_OPTIONS = 40
_END, _NOP = 0, 1


def bad_option_lists(src, rows: np.ndarray, start: np.ndarray, length: np.ndarray,
                     captured: np.ndarray, ipv6: bool = False) -> np.ndarray:
    """Is the option list of ``length`` bytes at ``start`` malformed? (bool per row).

    ``captured``: bytes captured from ``start``; the walk stops (not malformed) at the first
    item not captured to its length byte. ``ipv6``: the items of an IPv6 options header. All
    rows are walked in lock step, one item per step: at most :data:`MAX_OPTIONS` steps.

    >>> from qoslab.capture._bytes import ByteSource
    >>> buf = np.frombuffer(bytes([1, 1, 8, 10] + [0] * 8 + [2, 4, 5, 0xB4, 3, 9, 0, 0]),
    ...                     np.uint8)
    >>> bad_option_lists(ByteSource(buf), np.arange(2), np.array([0, 12]), np.array([12, 8]),
    ...                  np.array([12, 8]))
    array([False,  True])
    """
    n = len(rows)
    bad = np.zeros(n, bool)
    if not n:
        return bad
    m = src.rows(start, MAX_OPTIONS, rows=rows)
    length = np.minimum(length, MAX_OPTIONS)
    seen = np.minimum(captured, length)
    at = np.zeros(n, np.int64)
    ended = np.full(n, MAX_OPTIONS, np.int64)  # where an end-of-list item stands
    live = np.flatnonzero(seen > 0)
    for _ in range(MAX_OPTIONS):
        if not len(live):
            break
        p = at[live]
        room = length[live]
        kind = m[live, p]
        single = (kind == _END) if ipv6 else (kind == _END) | (kind == _NOP)
        sized = p + 1 < seen[live]  # the length byte was captured
        size = m[live, np.minimum(p + 1, MAX_OPTIONS - 1)].astype(np.int64)
        if ipv6:
            size += 2
        broken = ~single & ((p + 1 >= room) | (sized & ((size < 2) | (p + size > room))))
        bad[live[broken]] = True
        if not ipv6:
            stop = kind == _END
            ended[live[stop]] = p[stop]
        at[live] = p + np.where(single, 1, size)
        going = ~broken & (single | sized) & (at[live] < seen[live])
        live = live[going if ipv6 else going & (kind != _END)]
    if not ipv6:  # the padding after an end-of-list item (as far as captured) is zeros
        cols = np.arange(MAX_OPTIONS)
        padding = (cols > ended[:, None]) & (cols < seen[:, None])
        bad |= (padding & (m != 0)).any(axis=1)
    return bad
