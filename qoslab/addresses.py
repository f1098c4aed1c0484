"""IP addresses as the integer words the kernel's hash functions read.

PACKETS keeps addresses as categorical strings for people; the hash functions need integers.
Converting only the categories (a capture has few distinct addresses) makes this cheap.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd

__all__ = ["address_words", "words_of"]


def words_of(address: str | None) -> tuple[int, int, int, int]:
    """Return the four 32-bit words of an address, each as ``ntohl`` would give it.

    IPv4 ``a.b.c.d`` is ``(0, 0, 0, int(a.b.c.d))``; IPv6 is its four big-endian words;
    ``None`` or an empty string is all zeros.

    >>> [hex(w) for w in words_of("10.0.0.1")]
    ['0x0', '0x0', '0x0', '0xa000001']
    >>> [hex(w) for w in words_of("2001:db8::1")]
    ['0x20010db8', '0x0', '0x0', '0x1']
    """
    if not address:
        return (0, 0, 0, 0)
    value = int(ipaddress.ip_address(address))
    return ((value >> 96) & 0xFFFFFFFF, (value >> 64) & 0xFFFFFFFF,
            (value >> 32) & 0xFFFFFFFF, value & 0xFFFFFFFF)


def address_words(addresses: pd.Series | list | np.ndarray) -> np.ndarray:
    """Vectorised :func:`words_of`: an ``(N, 4)`` uint32 array, host-order value of each word.

    Parameters
    ----------
    addresses
        Address strings (a categorical column is converted category by category); missing
        values give zeros.

    Returns
    -------
    numpy.ndarray
        Shape ``(N, 4)``, dtype uint32. The raw (``__be32``) load of word ``i`` on a
        little-endian host is ``byteswap`` of column ``i``.

    Examples
    --------
    >>> address_words(pd.Series(["10.0.0.1", None, "::1"], dtype="category"))[:, 3]
    array([167772161,         0,         1], dtype=uint32)
    """
    series = pd.Series(addresses)
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    cats = series.cat.categories
    table = np.zeros((len(cats) + 1, 4), dtype=np.uint32)
    for i, a in enumerate(cats):
        table[i] = words_of(str(a) if a is not None else None)
    codes = series.cat.codes.to_numpy()
    return table[np.where(codes < 0, len(cats), codes)]
