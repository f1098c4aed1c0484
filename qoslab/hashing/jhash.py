"""Bob Jenkins' hashes as the Linux kernel implements them (``include/linux/jhash.h``).

Two generations, both bit-exact and vectorized over numpy ``uint32`` arrays:

* **lookup3** (kernel ≥ 2.6.37): :func:`jhash` (bytes), :func:`jhash2` (u32 words) and the
  ``jhash_{1,2,3}word(s)`` helpers in the "v1" variant (``a += INITVAL; b += INITVAL;
  c += initval``, kernels up to 3.18) and the "v2" variant (``__jhash_nwords``; ``jhash_3words
  == jhash2`` of the same words).
* **lookup2** (kernel ≤ 2.6.36, ``JHASH_GOLDEN_RATIO``): the same four entry points.

Choose the generation with ``algo``: ``"lookup3"`` (word helpers default to v2),
``"lookup3-v1"``, ``"lookup3-v2"`` or ``"lookup2"``.

Vector inputs: an ``(N, k)`` array of words (one key per row) or ``N``-long arrays for the word
helpers; ``initval`` may be a scalar or an ``N``-long array (one seed per key, used for
perturbation schedules). Work proceeds in cache-sized column blocks, in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

__all__ = [
    "JHASH_INITVAL",
    "JHASH_GOLDEN_RATIO",
    "ALGOS",
    "jhash",
    "jhash2",
    "jhash_1word",
    "jhash_2words",
    "jhash_3words",
]

JHASH_INITVAL = 0xDEADBEEF
JHASH_GOLDEN_RATIO = 0x9E3779B9
ALGOS = ("lookup3", "lookup3-v1", "lookup3-v2", "lookup2")

_U32 = np.uint32
_BLOCK = 32768  # keys per block: a, b, c and one temporary (512 KB) stay in L2

# lookup3 __jhash_mix: (x, z, y, r): x -= z; x ^= rol(z, r); z += y
_MIX3 = ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8), (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4))
# lookup3 __jhash_final: (x, y, r): x ^= y; x -= rol(y, r)
_FINAL3 = ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14), (2, 1, 24))
# lookup2 __jhash_mix: (x, y, z, shift): x -= y; x -= z; x ^= z SHIFT s (negative = right)
_MIX2 = ((0, 1, 2, -13), (1, 2, 0, 8), (2, 0, 1, -13), (0, 1, 2, -12), (1, 2, 0, 16),
         (2, 0, 1, -5), (0, 1, 2, -3), (1, 2, 0, 10), (2, 0, 1, -15))


def _check_algo(algo: str) -> str:
    if algo not in ALGOS:
        raise ConfigError(f"jhash algo {algo!r}: expected one of {', '.join(ALGOS)}")
    return algo


# --------------------------------------------------------------------------- vector kernels
# shift amounts as 0-d arrays built once: the cheapest second operand for a ufunc call, which
# matters because a block costs ~75 calls (outputs are passed positionally for the same reason)
def _c(k: int) -> np.ndarray:
    return np.array(k, dtype=_U32)


_MIX3_NP = tuple((x, z, y, _c(k), _c(32 - k)) for x, z, y, k in _MIX3)
_FINAL3_NP = tuple((x, y, _c(k), _c(32 - k)) for x, y, k in _FINAL3)


def _mix3(r: list, t: np.ndarray, _t2: np.ndarray | None = None) -> None:
    # rol(z, k) = (z << k) | (z >> (32 - k)); the two parts share no bits, so XOR-ing (or
    # subtracting) them one after the other equals using the rotation: one temporary suffices
    lsh, rsh, xor, sub, add = np.left_shift, np.right_shift, np.bitwise_xor, np.subtract, np.add
    for x, z, y, k, k2 in _MIX3_NP:
        X, Z = r[x], r[z]
        sub(X, Z, X)
        lsh(Z, k, t)
        xor(X, t, X)
        rsh(Z, k2, t)
        xor(X, t, X)
        add(Z, r[y], Z)


def _final3(r: list, t: np.ndarray, _t2: np.ndarray | None = None) -> None:
    lsh, rsh, xor, sub = np.left_shift, np.right_shift, np.bitwise_xor, np.subtract
    for x, y, k, k2 in _FINAL3_NP:
        X, Y = r[x], r[y]
        xor(X, Y, X)
        lsh(Y, k, t)
        sub(X, t, X)
        rsh(Y, k2, t)
        sub(X, t, X)


def _mix2(r: list, t: np.ndarray, _t2: np.ndarray | None = None) -> None:
    for x, y, z, s in _MIX2:
        X, Z = r[x], r[z]
        np.subtract(X, r[y], out=X)
        np.subtract(X, Z, out=X)
        if s < 0:
            np.right_shift(Z, _U32(-s), out=t)
        else:
            np.left_shift(Z, _U32(s), out=t)
        np.bitwise_xor(X, t, out=X)


def _as_words(words) -> tuple[np.ndarray, bool]:
    arr = np.asarray(words)
    scalar = arr.ndim <= 1
    arr = np.atleast_2d(arr.astype(np.uint64, copy=False) if arr.dtype.kind in "iO"
                        else arr)
    if arr.size and arr.dtype != _U32:
        arr = (arr.astype(np.uint64) & 0xFFFFFFFF).astype(_U32)
    if arr.dtype != _U32:
        arr = arr.astype(_U32)
    if scalar and np.asarray(words).ndim == 1:
        arr = arr.reshape(1, -1)
    return arr, scalar


def _seed(initval, n: int) -> np.ndarray | np.uint32:
    iv = np.asarray(initval)
    if iv.ndim == 0:
        return _U32(int(iv) & 0xFFFFFFFF)
    if iv.shape != (n,):
        raise ConfigError(f"initval: expected a scalar or {n} seeds, got shape {iv.shape}")
    return (iv.astype(np.uint64) & 0xFFFFFFFF).astype(_U32)


def jhash2(words, initval=0, *, algo: str = "lookup3"):
    """Kernel ``jhash2(k, length, initval)`` over u32 words.

    Parameters
    ----------
    words
        One key (a sequence of ints) or an ``(N, k)`` array, one key per row.
    initval
        Seed: scalar or ``N`` seeds.
    algo
        ``"lookup3"`` (≥ 2.6.37) or ``"lookup2"`` (≤ 2.6.36); the v1/v2 names act as lookup3.

    Returns
    -------
    int or numpy.ndarray
        ``int`` for one key, else ``uint32`` array of length ``N``.

    Examples
    --------
    >>> hex(jhash2([1, 2, 3]))
    '0xa46158f5'
    >>> hex(jhash2([1, 2, 3], algo="lookup2"))
    '0x23a7138f'
    >>> [hex(h) for h in jhash2(np.array([[1, 2, 3], [1, 2, 3]], dtype=np.uint32), initval=[0, 1])]
    ['0xa46158f5', '0xe3bbaf2']
    """
    algo = _check_algo(algo)
    arr, scalar = _as_words(words)
    out = _jhash2_array(arr, initval, lookup2=(algo == "lookup2"))
    return int(out[0]) if scalar else out


def _jhash2_array(arr: np.ndarray, initval, *, lookup2: bool,
                  length_bytes: int | None = None) -> np.ndarray:
    n, k = arr.shape
    seed = _seed(initval, n)
    out = np.empty(n, dtype=_U32)
    cols = np.asfortranarray(arr) if k > 1 and not arr.flags.f_contiguous else arr
    bs = min(_BLOCK, max(n, 1))
    a, b, c, t, t2 = (np.empty(bs, dtype=_U32) for _ in range(5))
    for lo in range(0, n, bs):
        hi = min(lo + bs, n)
        m = hi - lo
        r = [a[:m], b[:m], c[:m]]
        tm, t2m = t[:m], t2[:m]
        sd = seed if np.ndim(seed) == 0 else seed[lo:hi]
        if lookup2:
            _jhash2_lookup2_block(cols, lo, hi, k, sd, r, tm)
        else:
            _jhash2_lookup3_block(cols, lo, hi, k, sd, r, tm, t2m, length_bytes)
        out[lo:hi] = r[2]
    return out


def _jhash2_lookup3_block(cols, lo, hi, k, sd, r, t, t2, length_bytes=None) -> None:
    length = (k << 2) if length_bytes is None else length_bytes
    base = _U32((JHASH_INITVAL + length) & 0xFFFFFFFF)
    first = min(k, 3)
    if np.ndim(sd) == 0:
        init = _U32((int(base) + int(sd)) & 0xFFFFFFFF)
        for j in range(3):  # a = b = c = init, plus the first words, in one pass each
            if j < first:
                np.add(cols[lo:hi, j], init, out=r[j])
            else:
                r[j].fill(init)
    else:
        for j in range(3):
            np.add(sd, base, out=r[j])
            if j < first:
                np.add(r[j], cols[lo:hi, j], out=r[j])
    if k == 0:
        return
    i = 0
    while k - i > 3:
        if i:
            for j in range(3):
                np.add(r[j], cols[lo:hi, i + j], out=r[j])
        _mix3(r, t, t2)
        i += 3
    rest = k - i
    if i:
        for j in range(rest):
            np.add(r[j], cols[lo:hi, i + j], out=r[j])
    _final3(r, t, t2)


def _jhash2_lookup2_block(cols, lo, hi, k, sd, r, t) -> None:
    r[0].fill(_U32(JHASH_GOLDEN_RATIO))
    r[1].fill(_U32(JHASH_GOLDEN_RATIO))
    r[2].fill(0)
    np.add(r[2], sd, out=r[2])
    i = 0
    while k - i >= 3:
        for j in range(3):
            np.add(r[j], cols[lo:hi, i + j], out=r[j])
        _mix2(r, t)
        i += 3
    np.add(r[2], _U32((k * 4) & 0xFFFFFFFF), out=r[2])
    for j in range(k - i):
        np.add(r[j], cols[lo:hi, i + j], out=r[j])
    _mix2(r, t)


def jhash(data, initval=0, *, algo: str = "lookup3", endianness: str = "little"):
    """Kernel ``jhash(key, length, initval)`` over a byte string, or each row of an ``(N, L)``
    ``uint8`` array (``initval`` scalar or ``N`` seeds).

    lookup3 loads whole 12-byte blocks in CPU byte order (``endianness``) and places the tail
    bytes little-endian; lookup2 builds every word little-endian from explicit byte shifts.

    Examples
    --------
    >>> hex(jhash(b"Four score and seven years ago"))
    '0x17770551'
    >>> hex(jhash(b"Four score and seven years ago", algo="lookup2"))
    '0x50f2424b'
    >>> hex(jhash(b""))
    '0xdeadbeef'
    >>> rows = np.frombuffer(b"Four score and seven years ago" * 2, np.uint8).reshape(2, 30)
    >>> [hex(h) for h in jhash(rows, [0, 1])]
    ['0x17770551', '0xcd628161']
    """
    algo = _check_algo(algo)
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return _jhash_rows(data, initval, algo, endianness)
    buf = bytes(data)
    length = len(buf)
    M = 0xFFFFFFFF
    if algo == "lookup2":
        a = b = JHASH_GOLDEN_RATIO
        c = initval & M
        i = 0
        while length - i >= 12:
            w = [int.from_bytes(buf[i + 4 * j:i + 4 * j + 4], "little") for j in range(3)]
            a, b, c = _mix2_scalar((a + w[0]) & M, (b + w[1]) & M, (c + w[2]) & M)
            i += 12
        c = (c + length) & M
        tail = buf[i:]
        a = (a + int.from_bytes(tail[0:4], "little")) & M
        b = (b + int.from_bytes(tail[4:8], "little")) & M
        c = (c + (int.from_bytes(tail[8:11], "little") << 8)) & M
        return _mix2_scalar(a, b, c)[2]
    order = "big" if endianness == "big" else "little"
    a = b = c = (JHASH_INITVAL + length + initval) & M
    i = 0
    while length - i > 12:
        w = [int.from_bytes(buf[i + 4 * j:i + 4 * j + 4], order) for j in range(3)]
        a, b, c = _mix3_scalar((a + w[0]) & M, (b + w[1]) & M, (c + w[2]) & M)
        i += 12
    tail = buf[i:]
    if not tail:
        return c
    a = (a + int.from_bytes(tail[0:4], "little")) & M
    b = (b + int.from_bytes(tail[4:8], "little")) & M
    c = (c + int.from_bytes(tail[8:12], "little")) & M
    return _final3_scalar(a, b, c)


def _jhash_rows(data: np.ndarray, initval, algo: str, endianness: str) -> np.ndarray:
    """Vector ``jhash`` over equal-length rows."""
    rows = np.ascontiguousarray(data, dtype=np.uint8)
    n, length = rows.shape
    if algo == "lookup2":  # byte-shift word building differs in the tail: row by row
        seeds = np.broadcast_to(np.asarray(initval, dtype=np.int64), (n,))
        return np.fromiter((jhash(rows[i].tobytes(), int(seeds[i]), algo="lookup2")
                            for i in range(n)), dtype=_U32, count=n)
    k = -(-length // 4)
    padded = np.zeros((n, 4 * k), dtype=np.uint8)
    padded[:, :length] = rows
    words = padded.view("<u4").astype(_U32)
    if endianness == "big":  # whole 12-byte blocks are CPU-order loads; the tail stays LE
        full = 3 * ((length - 1) // 12) if length else 0
        words[:, :full] = words[:, :full].byteswap()
    return _jhash2_array(words, initval, lookup2=False, length_bytes=length)


def _rol(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def _mix3_scalar(a: int, b: int, c: int) -> tuple[int, int, int]:
    r = [a, b, c]
    for x, z, y, k in _MIX3:
        r[x] = ((r[x] - r[z]) & 0xFFFFFFFF) ^ _rol(r[z], k)
        r[z] = (r[z] + r[y]) & 0xFFFFFFFF
    return r[0], r[1], r[2]


def _final3_scalar(a: int, b: int, c: int) -> int:
    r = [a, b, c]
    for x, y, k in _FINAL3:
        r[x] = ((r[x] ^ r[y]) - _rol(r[y], k)) & 0xFFFFFFFF
    return r[2]


def _mix2_scalar(a: int, b: int, c: int) -> tuple[int, int, int]:
    r = [a, b, c]
    for x, y, z, s in _MIX2:
        sh = (r[z] >> -s) if s < 0 else (r[z] << s)
        r[x] = ((r[x] - r[y] - r[z]) & 0xFFFFFFFF) ^ (sh & 0xFFFFFFFF)
    return r[0], r[1], r[2]


def _word_helper(ws: Sequence, initval, algo: str):
    """Shared body of ``jhash_{1,2,3}word(s)``; ``ws`` padded with zeros to three words."""
    algo = _check_algo(algo)
    arrs = [np.asarray(w) for w in ws]
    scalar = all(x.ndim == 0 for x in arrs) and np.ndim(initval) == 0
    sizes = [x.size for x in arrs] + [np.size(initval)]
    n = 0 if 0 in sizes else max(sizes)  # no packets: constant words broadcast to none
    cols = [np.broadcast_to((x.astype(np.uint64) & 0xFFFFFFFF).astype(_U32), (n,)).copy()
            for x in arrs]
    seed = np.broadcast_to(np.asarray(_seed(initval, n) if np.ndim(initval) else
                                      _seed(initval, 1)), (n,))
    t, t2 = np.empty(n, _U32), np.empty(n, _U32)
    nwords = len(ws)
    while len(cols) < 3:
        cols.append(np.zeros(n, _U32))
    a, b, c = cols
    if algo == "lookup2":
        np.add(a, _U32(JHASH_GOLDEN_RATIO), out=a)
        np.add(b, _U32(JHASH_GOLDEN_RATIO), out=b)
        np.add(c, seed, out=c)
        r = [a, b, c]
        _mix2(r, t)
    elif algo == "lookup3-v1":
        np.add(a, _U32(JHASH_INITVAL), out=a)
        np.add(b, _U32(JHASH_INITVAL), out=b)
        np.add(c, seed, out=c)
        r = [a, b, c]
        _final3(r, t, t2)
    else:
        iv = (seed + _U32((JHASH_INITVAL + 4 * nwords) & 0xFFFFFFFF)).astype(_U32)
        r = [a + iv, b + iv, c + iv]
        _final3(r, t, t2)
    return int(r[2][0]) if scalar else r[2]


def jhash_3words(a, b, c, initval=0, *, algo: str = "lookup3"):
    """Kernel ``jhash_3words(a, b, c, initval)`` (scalars or equal-length arrays).

    Examples
    --------
    >>> hex(jhash_3words(1, 2, 3))            # v2 (kernel ≥ 3.19) == jhash2([1, 2, 3])
    '0xa46158f5'
    >>> hex(jhash_3words(1, 2, 3, algo="lookup3-v1"))
    '0xe16988d7'
    >>> hex(jhash_3words(1, 2, 3, algo="lookup2"))
    '0x17e8bdc2'
    """
    return _word_helper((a, b, c), initval, algo)


def jhash_2words(a, b, initval=0, *, algo: str = "lookup3"):
    """Kernel ``jhash_2words(a, b, initval)``.

    Examples
    --------
    >>> hex(jhash_2words(1, 2, algo="lookup3-v1")), hex(jhash_2words(1, 2, algo="lookup2"))
    ('0xf11886ea', '0x6477d56b')
    """
    if algo in ("lookup3-v1", "lookup2"):
        return _word_helper((a, b, 0), initval, algo)
    return _word_helper((a, b), initval, algo)


def jhash_1word(a, initval=0, *, algo: str = "lookup3"):
    """Kernel ``jhash_1word(a, initval)``.

    Examples
    --------
    >>> hex(jhash_1word(1)), hex(jhash_1word(1, algo="lookup3-v1"))
    ('0x72a82a9b', '0xfcdfddda')
    """
    if algo in ("lookup3-v1", "lookup2"):
        return _word_helper((a, 0, 0), initval, algo)
    return _word_helper((a,), initval, algo)
