"""Resource limits for loading files, and the bounded readers that enforce them.

Every file :func:`qoslab.load` reads goes through these readers first, so a hostile or broken
file can cost only a bounded amount of time and memory. Each limit has its own error class
(a :class:`~qoslab.errors.ResourceLimitError`, itself a :class:`~qoslab.errors.RunFormatError`)
whose message names the file, the limit and its value:

====================================  =========================  ===============================
limit                                 value                      error
====================================  =========================  ===============================
size of the file read                 :data:`MAX_INPUT_BYTES`    ``InputSizeLimitError``
bytes a gzip stream may inflate to    :func:`inflate_limit`      ``DecompressedSizeLimitError``
nesting of JSON / pickled containers  :data:`MAX_NESTING_DEPTH`  ``NestingDepthLimitError``
series (streams) in one file          :data:`MAX_SERIES`         ``SeriesLimitError``
rows (probes, samples) in one file    :data:`MAX_ROWS`           ``ProbeLimitError``
lost rows implied by sequence gaps    :func:`implied_rows_limit` ``ImpliedRowsLimitError``
columns of one table in a RUN file    :data:`MAX_COLUMNS`        ``ColumnLimitError``
size of a configuration file          :data:`MAX_CONFIG_BYTES`   ``InputSizeLimitError``
values in a configuration document    :data:`MAX_CONFIG_VALUES`  ``ValueCountLimitError``
====================================  =========================  ===============================

Configuration files (an experiment's ``tc`` tree or YAML/JSON document, ``replay --tc @FILE``)
are read with :func:`read_config_text` and their documents checked with
:func:`check_document` (nesting and the number of values, YAML aliases counted as often as they
are used).

Only regular files are read: a device (``/dev/zero``, ``/dev/urandom``), a FIFO or a socket is
refused before a byte is read, so loading never blocks or reads forever.

Lost probes a file only implies -- the sequence numbers missing between two replies, or
between those answered and the count of probes the tool says it sent (ping's ``transmitted``,
fping's ``-c``) -- cost as much to build as the rows the file holds, but a few bytes can imply
millions of them (a 300-byte ping-exp file saying ``transmitted: 19999999``, a flent record
with ``seq`` 2**24). They are limited per file by :func:`implied_rows_limit` and checked with
:func:`check_implied_rows` before any row is built: any file may imply
:data:`MIN_IMPLIED_ROWS` (a million probes, every one lost: 55 hours of pings every 0.2 s, or
2.8 hours every 10 ms; about 150 MB and a second or two to build), and a larger file
:data:`MAX_IMPLIED_RATIO` lost rows per probe record it holds (an 80 % loss over the whole
file), so the lost rows at most multiply by 5 what the file's own records cost. Both are
module variables: a caller who trusts a file may raise them before loading it.

The decompressed-size limit scales with the compressed size (:data:`MAX_INFLATE_RATIO`, with a
floor of :data:`MIN_INFLATE_ALLOWANCE` and a ceiling of :data:`MAX_DECOMPRESSED_BYTES`): real
RUN and flent files inflate 5-30 times, a gzip bomb about 1000 times. Loading costs about a
second per MB of content (the file, or what it inflates to) and, for the densest content (a
column of millions of bare numbers: each is a Python object before it is a column), up to about
32 × the content in memory. The floor is what keeps a tiny file cheap: a few KB of gzip
inflating to :data:`MIN_INFLATE_ALLOWANCE` of numbers loads or is refused in a few seconds and
under 200 MB (it was 32 MiB: 10 s and 800 MB for a 31 KB file). ``tests/test_io_hostile.py``
and ``tests/test_io_fuzz.py`` check time and memory on hostile files.
"""

from __future__ import annotations

import json
import math
import os
import stat
import zlib
from collections.abc import Iterable
from typing import Any

from ..errors import (
    ConfigError,
    DecompressedSizeLimitError,
    ImpliedRowsLimitError,
    InputSizeLimitError,
    NestingDepthLimitError,
    RunFormatError,
    ValueCountLimitError,
)

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_INFLATE_RATIO",
    "MIN_INFLATE_ALLOWANCE",
    "MAX_NESTING_DEPTH",
    "MAX_SERIES",
    "MAX_ROWS",
    "MAX_COLUMNS",
    "MIN_IMPLIED_ROWS",
    "MAX_IMPLIED_RATIO",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_VALUES",
    "inflate_limit",
    "implied_rows_limit",
    "check_implied_rows",
    "read_regular_file",
    "inflate",
    "parse_json",
    "check_depth",
    "read_config_text",
    "check_document",
]

#: Largest file :func:`qoslab.load` reads (bytes).
MAX_INPUT_BYTES = 1 << 30
#: Absolute ceiling on what one gzip stream may inflate to (bytes).
MAX_DECOMPRESSED_BYTES = 1 << 30
#: Inflation ratio allowed beyond the floor (a gzip bomb inflates ~1000×).
MAX_INFLATE_RATIO = 100
#: Any gzip file may inflate to this much, whatever its ratio (bytes): the densest JSON this
#: size (2.5 M bare numbers) costs about 170 MB to load, under the 200 MB promised.
MIN_INFLATE_ALLOWANCE = 5 << 20
#: Deepest nesting of JSON objects/arrays or pickled containers (RUN, flent and ping-exp files
#: nest at most 5 deep).
MAX_NESTING_DEPTH = 32
#: Most series (flent series, RUN streams, ping-exp experiments) one file may hold.
MAX_SERIES = 10_000
#: Most rows (probes, rate samples, lost rows implied by sequence gaps) one file may produce.
MAX_ROWS = 20_000_000
#: Lost rows sequence gaps may imply in any file, whatever it holds (see the module docstring).
MIN_IMPLIED_ROWS = 1_000_000
#: Beyond :data:`MIN_IMPLIED_ROWS`, lost rows gaps may imply per probe record the file holds.
MAX_IMPLIED_RATIO = 4
#: Most columns one table of a RUN file may have (PROBES has 9, producers add a few).
MAX_COLUMNS = 1_000

#: Largest configuration file (an experiment's tc tree or YAML/JSON document) qoslab reads.
MAX_CONFIG_BYTES = 4 << 20
#: Most values (scalars and containers, YAML aliases counted at each use) in one configuration
#: document.
MAX_CONFIG_VALUES = 1_000_000

_CHUNK = 16 << 20
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_GZIP_MAGIC = b"\x1f\x8b"


def inflate_limit(compressed_size: int) -> int:
    """Bytes a gzip file of ``compressed_size`` bytes may inflate to.

    >>> inflate_limit(10_000) == MIN_INFLATE_ALLOWANCE
    True
    >>> inflate_limit(1 << 30) == MAX_DECOMPRESSED_BYTES
    True
    """
    return min(MAX_DECOMPRESSED_BYTES,
               max(MIN_INFLATE_ALLOWANCE, MAX_INFLATE_RATIO * compressed_size))


def implied_rows_limit(present: int) -> int:
    """Most lost rows sequence gaps may imply in a file holding ``present`` probe records:
    the larger of :data:`MIN_IMPLIED_ROWS` and :data:`MAX_IMPLIED_RATIO` × ``present``.

    >>> implied_rows_limit(300)
    1000000
    >>> implied_rows_limit(2_000_000)
    8000000
    """
    return max(MIN_IMPLIED_ROWS, MAX_IMPLIED_RATIO * int(present))


def check_implied_rows(source: str, implied: Iterable[tuple[str, int, str]],
                       present: int) -> int:
    """Refuse a file whose streams imply more lost rows than :func:`implied_rows_limit`.

    Called before any row is built, with what each stream's sequence numbers imply.

    Parameters
    ----------
    source
        File name for messages.
    implied
        ``(where, n, how)`` per stream: the stream's place in the file (``"raw_values['Ping
        (ms) ICMP']"``), the lost rows it implies and what implies them (``"sequence gaps"``).
    present
        Probe records the file holds (answered and listed as lost), all streams together.

    Returns
    -------
    int
        The lost rows implied in the whole file.

    Raises
    ------
    ImpliedRowsLimitError
        At the stream that takes the file's total past the limit; the message names the file,
        the stream, both counts and the limit.

    Examples
    --------
    >>> check_implied_rows("a.flent.gz", [("raw_values['Ping']", 1200, "sequence gaps")], 300)
    1200
    >>> check_implied_rows("b.flent.gz", [("raw_values['Ping']", 400_000, "sequence gaps"),
    ...                                   ("raw_values['UDP']", 700_000, "sequence gaps")], 9)
    Traceback (most recent call last):
    ...
    qoslab.errors.ImpliedRowsLimitError: b.flent.gz: raw_values['UDP']: 700000 lost probes \
implied by sequence gaps, 1100000 in the file so far; a file holding 9 probe records may imply \
at most 1000000 (the larger of MIN_IMPLIED_ROWS = 1000000 and MAX_IMPLIED_RATIO = 4 × its \
records; qoslab.io.limits)
    """
    limit = implied_rows_limit(present)
    total = 0
    for where, n, how in implied:
        total += n
        if total > limit:
            raise ImpliedRowsLimitError(
                f"{source}: {where}: {n} lost probes implied by {how}, {total} in the file so far; "
                f"a file holding {present} probe records may imply at most {limit} (the larger "
                f"of MIN_IMPLIED_ROWS = {MIN_IMPLIED_ROWS} and MAX_IMPLIED_RATIO = "
                f"{MAX_IMPLIED_RATIO} × its records; qoslab.io.limits)")
    return total


def read_regular_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """Read a whole regular file, refusing devices, FIFOs, sockets and oversized files.

    The file is opened non-blocking (a FIFO without a writer never blocks the open) and checked
    with ``fstat`` on the open descriptor before anything is read.

    Raises
    ------
    RunFormatError
        For anything but a regular file.
    InputSizeLimitError
        When the file holds more than ``limit`` (default :data:`MAX_INPUT_BYTES`) bytes.
    FileNotFoundError, PermissionError, IsADirectoryError
        As ``open`` raises them.
    """
    limit = MAX_INPUT_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise RunFormatError(f"{path}: not a regular file ({_kind(st.st_mode)}); qoslab "
                                 "loads files, not devices, pipes or sockets")
        if st.st_size > limit:
            raise InputSizeLimitError(f"{path}: {st.st_size} bytes is more than the "
                                      f"{limit}-byte limit on files qoslab loads")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:  # the size can change while reading (a file still being written)
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise InputSizeLimitError(f"{path}: more than the {limit}-byte limit on files "
                                          "qoslab loads (it grew while being read)")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def inflate(data: bytes, source: str, limit: int | None = None) -> bytes:
    """Inflate a (possibly multi-member) gzip stream, never beyond ``limit`` bytes.

    Parameters
    ----------
    data
        The gzip file's bytes.
    source
        File name for messages.
    limit
        Default :func:`inflate_limit` of ``len(data)``.

    Raises
    ------
    DecompressedSizeLimitError
        The stream inflates to more than ``limit`` (checked while inflating, chunk by chunk:
        a bomb is stopped after ``limit`` bytes, not after it has filled memory).
    RunFormatError
        A damaged or cut gzip stream.

    Examples
    --------
    >>> import gzip
    >>> inflate(gzip.compress(b"a" * 10) + gzip.compress(b"b"), "x.gz")
    b'aaaaaaaaaab'
    >>> inflate(gzip.compress(b"\\0" * 5000), "bomb.gz", limit=4096)
    Traceback (most recent call last):
    ...
    qoslab.errors.DecompressedSizeLimitError: bomb.gz: the gzip stream inflates to more than \
4096 bytes, the limit for a 40-byte gzip file; refusing it
    """
    limit = inflate_limit(len(data)) if limit is None else limit
    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        if not rest.startswith(_GZIP_MAGIC):
            if out and not rest.strip(b"\0"):
                break  # zero padding after the last member, as gzip(1) accepts
            raise RunFormatError(f"{source}: damaged gzip stream (garbage after byte "
                                 f"{len(data) - len(rest)})")
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        buf = rest
        try:
            while True:
                piece = d.decompress(buf, min(_CHUNK, limit + 1 - total))
                total += len(piece)
                out.append(piece)
                if total > limit:
                    raise DecompressedSizeLimitError(
                        f"{source}: the gzip stream inflates to more than {limit} bytes, the "
                        f"limit for a {len(data)}-byte gzip file; refusing it")
                if d.eof:
                    break
                buf = d.unconsumed_tail
                if not buf and not piece:
                    raise RunFormatError(f"{source}: damaged gzip stream (cut off after "
                                         f"{total} inflated bytes)")
        except zlib.error as exc:
            raise RunFormatError(f"{source}: damaged gzip stream ({exc})") from None
        rest = d.unused_data
    return b"".join(out)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes | str, source: str, *, allow_nan: bool = False,
               constants: list[str] | None = None) -> Any:
    """Parse JSON with a nesting limit; ``NaN``/``Infinity`` literals refused unless allowed.

    qoslab writes RUN files and journals with ``allow_nan=False``: such a literal in them is
    damage. flent writes them as Python's ``json`` does; there they parse to floats and the
    importer judges each value. ``constants``, when given, collects the literals met.

    Raises
    ------
    NestingDepthLimitError
        Objects/arrays nested deeper than :data:`MAX_NESTING_DEPTH`.
    RunFormatError
        Not JSON (the message gives the position).

    Examples
    --------
    >>> parse_json(b'{"a": [1, 2.5]}', "x")
    {'a': [1, 2.5]}
    >>> parse_json(b"[" * 40 + b"]" * 40, "deep.json")
    Traceback (most recent call last):
    ...
    qoslab.errors.NestingDepthLimitError: deep.json: JSON nested 40 levels deep; the limit is 32
    """
    def seen(name: str) -> float:
        if constants is not None:
            constants.append(name)
        return float(name)

    try:
        doc = json.loads(raw, parse_constant=seen if allow_nan else _refuse_constant)
    except RecursionError:
        raise NestingDepthLimitError(f"{source}: JSON nested deeper than the parser can follow; "
                                     f"the limit is {MAX_NESTING_DEPTH}") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise RunFormatError(f"{source}: not valid JSON ({exc})") from None
    check_depth(doc, source, what="JSON")
    return doc


def check_depth(doc: Any, source: str, *, what: str = "data",
                limit: int = MAX_NESTING_DEPTH) -> None:
    """Raise :class:`NestingDepthLimitError` when lists/dicts/tuples nest deeper than ``limit``.

    Iterative (no recursion); a container holding only scalars (a RUN file's column of
    millions of values) is passed over at C speed, from the set of its values' types.
    """
    stack = [(doc, 1)]
    containers = (list, dict, tuple)
    deepest = 0
    if not isinstance(doc, containers):
        return
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if depth > limit:
                raise NestingDepthLimitError(
                    f"{source}: {what} nested {_depth_of(doc)} levels deep; the limit is {limit}")
        values = node.values() if isinstance(node, dict) else node
        if set(map(type, values)) <= _SCALAR_TYPES:
            continue
        for v in values:
            if isinstance(v, containers):
                stack.append((v, depth + 1))


def _depth_of(doc: Any, cap: int = 100_000) -> int:
    """Depth of the deepest branch (iterative; stops counting at ``cap``)."""
    stack = [(doc, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest >= cap:
            return deepest
        values = node.values() if isinstance(node, dict) else node
        stack.extend((v, depth + 1) for v in values if isinstance(v, (list, dict, tuple)))
    return deepest


def finite(value: Any) -> bool:
    """True for an int or a finite float (never for bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (isinstance(value, int) or math.isfinite(value)))


def read_config_text(path: str | os.PathLike, what: str) -> str:
    """Read a configuration file as UTF-8 text: a regular file of at most
    :data:`MAX_CONFIG_BYTES` (a device or a FIFO is refused before a byte is read).

    Raises
    ------
    ConfigError
        The file cannot be read or is not UTF-8 text (the message names it and ``what``).
    RunFormatError, InputSizeLimitError
        Not a regular file; larger than the limit.

    Examples
    --------
    >>> read_config_text("/dev/zero", "tc tree")
    Traceback (most recent call last):
    ...
    qoslab.errors.RunFormatError: /dev/zero: not a regular file (a character device); qoslab \
loads files, not devices, pipes or sockets
    """
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None


def check_document(doc: Any, source: str, *, what: str = "document",
                   limit: int = MAX_CONFIG_VALUES, depth: int = MAX_NESTING_DEPTH) -> None:
    """Refuse a parsed configuration document that nests deeper than ``depth`` or holds more
    than ``limit`` values (a shared object -- a YAML alias -- counts at each use, as every
    consumer walks it again). Iterative; stops as soon as a limit is passed.

    Examples
    --------
    >>> laugh = ["lol"] * 10
    >>> for _ in range(9):
    ...     laugh = [laugh] * 10
    >>> check_document({"x": laugh}, "laughs.yaml", what="YAML")
    Traceback (most recent call last):
    ...
    qoslab.errors.ValueCountLimitError: laughs.yaml: the YAML holds more than 1000000 values \
(aliases counted at each use); the limit is 1000000
    """
    stack = [(doc, 1)]
    seen = 0
    while stack:
        node, level = stack.pop()
        seen += 1
        if seen > limit:
            raise ValueCountLimitError(f"{source}: the {what} holds more than {limit} values "
                                       f"(aliases counted at each use); the limit is {limit}")
        if isinstance(node, (list, tuple, dict)):
            if level > depth:
                raise NestingDepthLimitError(f"{source}: {what} nested more than {depth} levels "
                                             f"deep; the limit is {depth}")
            values = node.values() if isinstance(node, dict) else node
            stack.extend((v, level + 1) for v in values)
