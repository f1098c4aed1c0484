"""SipHash-2-4 as ``lib/siphash.c`` computes it (flow hashing since Linux 5.4).

Vectorized over rows of equal length: ``siphash(buffers, key)`` with ``buffers`` an ``(N, L)``
``uint8`` array returns ``N`` u64 values. The 128-bit key is ``(k0, k1)`` (two u64, as in
``siphash_key_t``), 16 bytes (read as two little-endian u64), or one int whose 16
little-endian bytes are the key.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["siphash", "siphash_key"]

_U64 = np.uint64
_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def siphash_key(key) -> tuple[int, int]:
    """Normalise a SipHash key to ``(k0, k1)``.

    Examples
    --------
    >>> [hex(k) for k in siphash_key(bytes(range(16)))]
    ['0x706050403020100', '0xf0e0d0c0b0a0908']
    >>> siphash_key(bytes(range(16))) == siphash_key(int.from_bytes(bytes(range(16)), "little"))
    True
    """
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 16:
            raise ConfigError(f"siphash key: expected 16 bytes, got {len(key)}")
        return (int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little"))
    if isinstance(key, (tuple, list)) and len(key) == 2:
        return (int(key[0]) & (2**64 - 1), int(key[1]) & (2**64 - 1))
    try:
        value = int(key)
    except (TypeError, ValueError):
        raise ConfigError(f"siphash key: expected 16 bytes, (k0, k1) or an int, got {key!r}") from None
    if value < 0 or value >= 2**128:
        raise ConfigError(f"siphash key {value:#x}: expected 0 <= key < 2**128")
    return (value & (2**64 - 1), value >> 64)


def _rotl(x: np.ndarray, k: int, t: np.ndarray) -> None:
    np.right_shift(x, _U64(64 - k), out=t)
    np.left_shift(x, _U64(k), out=x)
    np.bitwise_or(x, t, out=x)


def _round(v: list, t: np.ndarray) -> None:
    v0, v1, v2, v3 = v
    np.add(v0, v1, out=v0); _rotl(v1, 13, t); np.bitwise_xor(v1, v0, out=v1); _rotl(v0, 32, t)  # noqa: E702
    np.add(v2, v3, out=v2); _rotl(v3, 16, t); np.bitwise_xor(v3, v2, out=v3)  # noqa: E702
    np.add(v0, v3, out=v0); _rotl(v3, 21, t); np.bitwise_xor(v3, v0, out=v3)  # noqa: E702
    np.add(v2, v1, out=v2); _rotl(v1, 17, t); np.bitwise_xor(v1, v2, out=v1); _rotl(v2, 32, t)  # noqa: E702


def siphash(data, key):
    """SipHash-2-4 of a byte string or of each row of an ``(N, L)`` uint8 array.

    Parameters
    ----------
    data
        ``bytes`` (one message) or an ``(N, L)`` ``uint8`` array (``N`` messages of ``L`` bytes).
    key
        See :func:`siphash_key`; per-message keys are given as a pair of ``N``-long uint64
        arrays ``(k0, k1)``.

    Returns
    -------
    int or numpy.ndarray
        The u64 hash (``int`` for one message, else ``uint64`` array).

    Examples
    --------
    >>> hex(siphash(b"", bytes(range(16))))
    '0x726fdb47dd0e0e31'
    >>> hex(siphash(bytes([0]), bytes(range(16))))
    '0x74f839c593dc67fd'
    """
    scalar = isinstance(data, (bytes, bytearray, memoryview))
    buf = np.frombuffer(bytes(data), dtype=np.uint8).reshape(1, -1) if scalar \
        else np.ascontiguousarray(data, dtype=np.uint8)
    if buf.ndim != 2:
        raise ConfigError(f"siphash data: expected bytes or an (N, L) uint8 array, got {buf.shape}")
    n, length = buf.shape
    if isinstance(key, tuple) and len(key) == 2 and np.ndim(key[0]) == 1:
        k0 = np.asarray(key[0], dtype=_U64)
        k1 = np.asarray(key[1], dtype=_U64)
    else:
        a, b = siphash_key(key)
        k0 = np.full(n, a, dtype=_U64)
        k1 = np.full(n, b, dtype=_U64)
    v = [np.bitwise_xor(k0, _U64(_INIT[0])), np.bitwise_xor(k1, _U64(_INIT[1])),
         np.bitwise_xor(k0, _U64(_INIT[2])), np.bitwise_xor(k1, _U64(_INIT[3]))]
    t = np.empty(n, dtype=_U64)
    full = length // 8
    padded = np.zeros((n, (full + 1) * 8), dtype=np.uint8)
    padded[:, :length] = buf
    padded[:, -1] = length & 0xFF
    words = padded.view("<u8").astype(_U64)
    for i in range(full + 1):
        m = words[:, i]
        np.bitwise_xor(v[3], m, out=v[3])
        _round(v, t)
        _round(v, t)
        np.bitwise_xor(v[0], m, out=v[0])
    np.bitwise_xor(v[2], _U64(0xFF), out=v[2])
    for _ in range(4):
        _round(v, t)
    out = v[0] ^ v[1] ^ v[2] ^ v[3]
    return int(out[0]) if scalar else out
