"""A set of captures cut into chunks: which files, where each chunk lies, reading one chunk.

Reading a set in parallel needs every chunk to be readable on its own, by any process. A
*plan* of each file is made first with the capture reader's own record walk
(:func:`qoslab.capture.iter_capture`'s batches, headers only, nothing decoded): how many
frames, the byte range of each chunk of ``chunk_packets`` records, and the earliest
timestamp. A chunk of a classic pcap is then read by walking only its byte range from its
first record (:func:`qoslab.capture.pcap.pcap_batches` with ``start`` and ``stop``), so a
process reading it holds that chunk's bytes, never the file. A pcapng file's interfaces may be
declared anywhere before a packet, so the plan keeps, per chunk, where the walk of its first
packet began and the walk's state there (:class:`qoslab.capture.pcapng.Resume`: section,
byte order, interfaces); its chunk is read by resuming there, never by walking the file from
its start (at most one walk window, 64 MB, is walked before the chunk's first packet).
Both paths open the file as the reader does (:class:`qoslab.capture.source.CaptureSource`:
mapped only under a read lease, else read) and decode with the reader's own decoder
(:func:`qoslab.capture.decode.decode_batch`, :func:`qoslab.capture.frame.to_frame`): there is
one parser.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..capture.decode import decode_batch
from ..capture.frame import empty_packets, to_frame
from ..capture.pcap import PCAP_MAGICS, parse_pcap_header, pcap_batches
from ..capture.pcapng import PCAPNG_MAGIC, Resume, pcapng_batches
from ..capture.reader import DEFAULT_CHUNK, open_capture, record_batches
from ..capture.records import CaptureWarning
from ..capture.source import CaptureSource
from ..capture.timestamps import NAT
from ..errors import CaptureFormatError
from ..schema import CAPTURE_SET

__all__ = ["Chunk", "FilePlan", "capture_files", "plan_file", "read_chunk", "with_set_columns",
           "natural_key", "set_t0", "CAPTURE_SUFFIXES"]

#: File name endings that promise a capture: such a file in a folder that is not a capture is
#: an error (other files in a folder are skipped unless they start with a capture magic).
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".ntar")
_GLOB_CHARS = re.compile(r"[*?\[]")
#: Bytes of a classic pcap walked ahead while planning (what a planning process maps at most
#: beyond the chunk it is cutting).
PLAN_WINDOW = 32 << 20


def natural_key(name: str) -> list:
    """Sort key comparing runs of digits as numbers (``cap.pcap2`` before ``cap.pcap10``).

    >>> sorted(["cap.pcap10", "cap.pcap2", "cap.pcap"], key=natural_key)
    ['cap.pcap', 'cap.pcap2', 'cap.pcap10']
    """
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _magic(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return int.from_bytes(head, "little") if len(head) == 4 else None


def _is_capture(path: Path) -> bool:
    magic = _magic(path)
    return magic is not None and (magic in PCAP_MAGICS or magic == PCAPNG_MAGIC)


def capture_files(paths_or_glob) -> list[tuple[str, str]]:
    """Resolve a folder, a glob or a list of files into ``[(name, path), ...]`` in set order.

    A folder is searched recursively (hidden entries and symlinked folders skipped); its
    files that start with a pcap/pcapng magic are taken, empty files are skipped with a
    :class:`CaptureWarning` (a ring buffer's file just opened), and a file named like a
    capture (:data:`CAPTURE_SUFFIXES`) that is not one is an error. A glob skips empty files
    the same way and must otherwise match captures only; an explicit list must name
    captures only (an empty file named there is an error). ``name`` is the path relative to the folder (or to the
    files' common folder), ``/``-separated; the order is :func:`natural_key` of the names.

    Raises
    ------
    CaptureFormatError
        No capture found, or a named file is not a capture.
    FileNotFoundError
        A listed file or the folder does not exist.
    """
    if isinstance(paths_or_glob, (str, os.PathLike)):
        text = os.fspath(paths_or_glob)
        if os.path.isdir(text):
            return _folder(Path(text))
        if _GLOB_CHARS.search(text) and not os.path.exists(text):
            found = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
            if not found:
                raise CaptureFormatError(f"{text}: no file matches this pattern")
            kept = _skip_empty([Path(p) for p in found])
            if not kept:
                raise CaptureFormatError(f"{text}: every file matching this pattern is empty")
            return _listed(kept, what=f"pattern {text}")
        return _listed([Path(text)], what=text)
    items = [Path(os.fspath(p)) for p in paths_or_glob]
    if not items:
        raise CaptureFormatError("read_captures: the list of capture files is empty")
    return _listed(items, what="the list")


def _folder(root: Path) -> list[tuple[str, str]]:
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.startswith("."):
                continue
            path = Path(here) / f
            if not path.is_file():
                continue
            if not _skip_empty([path], stacklevel=5):
                continue
            if _is_capture(path):
                found.append(path)
            elif f.lower().endswith(CAPTURE_SUFFIXES):
                raise CaptureFormatError(f"{path}: named like a capture but does not start with "
                                         "a pcap or pcapng magic")
    if not found:
        raise CaptureFormatError(f"{root}: no pcap or pcapng capture in this folder")
    return _named(found, root)


def _skip_empty(paths: list[Path], stacklevel: int = 4) -> list[Path]:
    """The non-empty files; an empty one (a ring buffer's file just opened) is skipped with
    a :class:`CaptureWarning`."""
    kept = []
    for path in paths:
        if path.stat().st_size == 0:
            warnings.warn(f"{path}: empty file, skipped", CaptureWarning, stacklevel=stacklevel)
        else:
            kept.append(path)
    return kept


def _listed(paths: list[Path], what: str) -> list[tuple[str, str]]:
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"no capture file {str(p)!r}")
        if not p.is_file():
            raise CaptureFormatError(f"{p}: not a file (in {what})")
        if p.stat().st_size == 0:
            raise CaptureFormatError(f"{p}: empty file (0 bytes), not a capture yet (in {what})")
        if not _is_capture(p):
            raise CaptureFormatError(f"{p}: not a pcap or pcapng capture (in {what})")
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
    return _named(paths, root)


def _named(paths: list[Path], root: Path) -> list[tuple[str, str]]:
    root = root.resolve()
    named = {}
    for p in paths:
        full = p.resolve()
        named[full.relative_to(root).as_posix()] = str(full)
    return [(name, named[name]) for name in sorted(named, key=natural_key)]


@dataclass(frozen=True)
class Chunk:
    """One partition of a capture set: ``packets`` consecutive frames of one file."""

    file: str  #: name of the file in the set
    path: str  #: the file
    index: int  #: chunk number within the file
    first_frame: int  #: frame number (from 1) of its first packet
    packets: int
    chunk_packets: int  #: the chunk size the file was planned with
    start: int = -1  #: byte range of its records (classic pcap); -1: walk from the file start
    stop: int = -1
    resume: Resume | None = None  #: where a pcapng walk reaches its first packet
    stamped: int = -1  #: packets with a time stamp (-1: not planned)
    ts_min_ns: int | None = None  #: earliest and latest time stamp (record headers)
    ts_max_ns: int | None = None


@dataclass(frozen=True)
class FilePlan:
    """What the record walk found in one file (headers only)."""

    file: str
    path: str
    size: int
    chunks: tuple[Chunk, ...]
    packets: int
    wire_bytes: int
    ts_min_ns: int | None  #: earliest timestamp in the file
    ts_max_ns: int | None
    warnings: tuple[str, ...]  #: what the walk warned about (cut file, lying length)


def plan_file(name: str, path: str, chunk_packets: int = DEFAULT_CHUNK) -> FilePlan:
    """Walk the records of one capture (no decoding) and cut it into chunks.

    Examples
    --------
    >>> from qoslab import data_path
    >>> plan = plan_file("t.pcap", str(data_path("captures/tunnel_uploads.pcap")), 1000)
    >>> plan.chunks[0].first_frame, plan.chunks[1].first_frame, plan.packets > 1000
    (1, 1001, True)
    """
    if chunk_packets < 1:
        raise ValueError(f"chunk_packets must be >= 1, got {chunk_packets}")
    chunks: list[Chunk] = []
    packets = wire = 0
    ts_min = ts_max = None
    with open_capture(path) as source, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CaptureWarning)
        head = source.head(24)
        magic = int.from_bytes(head[:4], "little") if len(head) >= 4 else None
        record_header = None
        marks: list[Resume] | None = None
        if magic in PCAP_MAGICS:  # walked a window at a time, its pages given back as it goes
            header = parse_pcap_header(path, head)
            record_header = header.record_header
            batches = pcap_batches(path, source, header, chunk_packets, window=PLAN_WINDOW)
        elif magic == PCAPNG_MAGIC:
            marks = []
            batches = pcapng_batches(path, source, chunk_packets, marks=marks)
        else:
            batches = record_batches(path, source, chunk_packets)  # its error names the file
        for index, (batch, _src) in enumerate(batches):
            n = len(batch)
            start = stop = -1
            if record_header is not None:
                start = int(batch.data_off[0]) - record_header
                stop = int(batch.data_off[-1] + batch.cap_len[-1])
                source.release(stop)
            resume = marks[index] if marks is not None else None
            stamped = batch.ts_ns[batch.ts_ns != NAT]  # packets without a time stamp: none
            lo = hi = None
            if len(stamped):
                lo, hi = int(stamped.min()), int(stamped.max())
                ts_min = lo if ts_min is None else min(ts_min, lo)
                ts_max = hi if ts_max is None else max(ts_max, hi)
            chunks.append(Chunk(name, path, index, packets + 1, n, chunk_packets, start, stop,
                                resume, len(stamped), lo, hi))
            packets += n
            wire += int(batch.wire_len.sum())
    notes = tuple(str(w.message) for w in caught if issubclass(w.category, CaptureWarning))
    return FilePlan(name, path, os.path.getsize(path), tuple(chunks), packets, wire, ts_min,
                    ts_max, notes)


def set_t0(plans: Sequence[FilePlan]) -> int:
    """Nanoseconds of the earliest packet of the set (0 when it has none)."""
    times = [p.ts_min_ns for p in plans if p.ts_min_ns is not None]
    return min(times) if times else 0


def _chunk_batch(chunk: Chunk, source: CaptureSource):
    """The chunk's records and the bytes holding them (``(None, None)`` if missing)."""
    if chunk.start >= 0:
        if chunk.stop > source.size:
            raise CaptureFormatError(
                f"{chunk.path}: {source.size} bytes, shorter than when it was planned "
                f"({chunk.stop} bytes); was the file changed?")
        header = parse_pcap_header(chunk.path, source.head(24))
        return next(pcap_batches(chunk.path, source, header, chunk.packets, chunk.start,
                                 chunk.stop), (None, None))
    if chunk.resume is None:
        raise CaptureFormatError(f"{chunk.path}: chunk {chunk.index} has no position in its "
                                 "plan (plan_file gives every chunk one)")
    return next(pcapng_batches(chunk.path, source, chunk.packets, resume=chunk.resume),
                (None, None))


def read_chunk(chunk: Chunk, t0_ns: int, files: Sequence[str], position: int = 0,
               udp_tunnels=None) -> pd.DataFrame:
    """Decode one chunk: PACKETS with ``file`` and ``frame``, ``t`` from ``t0_ns``.

    ``files`` are the set's file names (the categories of ``file``); ``position`` is the row
    number of the chunk's first packet in the set (the index starts there). The warnings of
    the file were given when it was planned and are not repeated. ``udp_tunnels``: extra
    VXLAN/Geneve ports, as for :func:`qoslab.read_capture`.
    """
    with open_capture(chunk.path) as source, warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        batch, src = _chunk_batch(chunk, source)
        if batch is not None:
            batch, src = source.secure(batch, src)
        if batch is None or len(batch) != chunk.packets:
            got = 0 if batch is None else len(batch)
            raise CaptureFormatError(
                f"{chunk.path}: chunk {chunk.index} holds {got} frames, expected "
                f"{chunk.packets} from the plan; was the file changed while it was read?")
        frame = to_frame(batch, decode_batch(src, batch, udp_tunnels), t0_ns)
    return with_set_columns(frame, chunk.file, chunk.first_frame, files, position)


def with_set_columns(frame: pd.DataFrame, name: str, first_frame: int, files: Sequence[str],
                     position: int = 0) -> pd.DataFrame:
    """Add ``file`` and ``frame`` (:data:`qoslab.schema.CAPTURE_SET`) to a PACKETS piece of
    one file; the index counts from ``position``."""
    n = len(frame)
    codes = np.full(n, list(files).index(name), np.int32)
    frame["file"] = pd.Categorical.from_codes(codes, dtype=file_dtype(files))
    frame["frame"] = np.arange(first_frame, first_frame + n, dtype=CAPTURE_SET["frame"])
    frame.index = pd.RangeIndex(position, position + n)
    return frame


def file_dtype(files: Sequence[str]) -> pd.CategoricalDtype:
    """The dtype of ``file``: the set's names, in set order."""
    return pd.CategoricalDtype(pd.Index(list(files), dtype=str))


def empty_set(files: Sequence[str]) -> pd.DataFrame:
    """An empty PACKETS frame with the set's columns."""
    return with_set_columns(empty_packets(), files[0] if files else "", 1,
                            files if files else [""])


def iter_plan_chunks(plans: Sequence[FilePlan]) -> Iterator[tuple[int, Chunk]]:
    """``(position, chunk)`` of every chunk of the set, in set order."""
    position = 0
    for plan in plans:
        for chunk in plan.chunks:
            yield position, chunk
            position += chunk.packets
