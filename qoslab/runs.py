"""RUN: the probes, events and metadata of one experiment, and its file format.

A RUN file is one gzipped JSON document::

    {"format": "qoslab-run", "version": 1,
     "meta": {...},
     "probes": {"stream": [...], "host": [...], ...},   # column-oriented
     "events": {"t": [...], "kind": [...], "detail": [...]},
     "samples": {"series": [...], "metric": [...], "t": [...], ...},   # may be absent
     "decisions": {"packet": [...], "flow": [...], ...}}   # may be absent

While an experiment runs, its records go to a *journal* (``<path>.partial``): JSON lines, one
header line then one line per probe or event, flushed at least once a second, so a crash or
Ctrl-C keeps every record written so far. :func:`qoslab.load` reads a journal as well as a
finished file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import io
import json
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import schema
from ._version import __version__
from .errors import ColumnLimitError, ProbeLimitError, ResourceLimitError, RunFormatError
from .outputs import (
    OutputError,
    check_output,
    create_new,
    refuse_or_keep_journal,
    write_with,
)

__all__ = ["Run", "RunJournal", "RUN_FORMAT", "RUN_VERSION", "JOURNAL_FORMAT", "read_native",
           "jsonable"]

RUN_FORMAT = "qoslab-run"
RUN_VERSION = 1
JOURNAL_FORMAT = "qoslab-run-journal"
#: The types a RUN column's JSON values may have (a column of them is checked at C speed).
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
#: RUNs of at least this many cells (rows × columns) show a progress bar while saved when
#: ``progress`` is None (≈ 1 s of writing).
SAVE_PROGRESS_CELLS = 2_000_000


@dataclass
class Run:
    """One experiment: PROBES, EVENTS, META, SAMPLES and DECISIONS.

    Parameters
    ----------
    probes
        PROBES table (see :mod:`qoslab.schema`); coerced on construction.
    events
        EVENTS table; coerced on construction.
    meta
        JSON-serialisable dict: tool version, start time, parameters, kernel, seed ...
    samples
        SAMPLES table (throughput, socket statistics ... of the load beside the probes; empty
        for runs without such series); coerced on construction.
    decisions
        DECISIONS table (what the qdisc tree decided for each packet: the simulator with
        ``decisions=True``, the userspace datapath, replay; empty otherwise); coerced on
        construction.

    Examples
    --------
    >>> run = Run(probes={"stream": ["a"], "host": ["h"], "tos": [0], "size": [56], "seq": [1],
    ...                   "t_sent": [0.0], "rtt_ms": [1.5], "status": ["ok"], "ttl": [64]})
    >>> run.streams
    ['a']
    """

    probes: pd.DataFrame = field(default_factory=schema.empty_probes)
    events: pd.DataFrame = field(default_factory=schema.empty_events)
    meta: dict[str, Any] = field(default_factory=dict)
    samples: pd.DataFrame = field(default_factory=schema.empty_samples)
    decisions: pd.DataFrame = field(default_factory=schema.empty_decisions)

    def __post_init__(self) -> None:
        self.probes = schema.conform(self.probes, "probes")
        self.events = schema.conform(self.events, "events")
        self.samples = schema.conform(self.samples, "samples")
        self.decisions = schema.conform(self.decisions, "decisions")
        self.meta = dict(self.meta)
        self.meta.setdefault("tool", f"qoslab {__version__}")

    @property
    def streams(self) -> list[str]:
        """Stream labels in order of first appearance."""
        return list(pd.unique(self.probes["stream"].dropna()))

    def __repr__(self) -> str:
        return (
            f"Run({len(self.probes)} probes in {len(self.streams)} streams, "
            f"{len(self.events)} events, {len(self.samples)} samples, "
            + (f"{len(self.decisions)} decisions, " if len(self.decisions) else "")
            + f"source={self.meta.get('source', '?')!r})"
        )

    def to_json_dict(self) -> dict[str, Any]:
        """Return the document that :meth:`save` writes."""
        return {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "meta": jsonable(self.meta),
            **{name: _columns(self._saved_table(name))
               for name in ("probes", "events", "samples", "decisions")},
        }

    def _saved_table(self, name: str) -> pd.DataFrame:
        """The table ``name`` as the RUN file holds it (a run whose per-packet tables live in
        a dataset holds none: :class:`qoslab.io.run_tables.DatasetRun`)."""
        return getattr(self, name)

    def _json_chunks(self, progress=None):
        """The text of :meth:`to_json_dict`, a column at a time (a RUN of millions of rows is
        never held as one document, nor as one string); ``progress(cells)`` after each
        column."""
        dump = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
        yield "{" + dump("format") + ":" + dump(RUN_FORMAT) + "," + dump("version") + ":" + \
            dump(RUN_VERSION) + "," + dump("meta") + ":" + dump(jsonable(self.meta))
        for name in ("probes", "events", "samples", "decisions"):
            frame = self._saved_table(name)
            yield "," + dump(name) + ":{"
            for i, col in enumerate(frame.columns):
                yield ("," if i else "") + dump(str(col)) + ":" + \
                    dump(_columns(frame[[col]])[str(col)])
                if progress is not None:
                    progress(len(frame))
            yield "}"
        yield "}"

    def save(self, path: str | os.PathLike, *, force: bool = False,
             progress: bool | None = None) -> Path:
        """Write the RUN file atomically (temporary file, fsync, then its name).

        Parameters
        ----------
        path
            Target path; ``.json.gz`` is the conventional suffix. Its folder must exist.
        force
            Replace an existing file (never written through a symlink; see
            :mod:`qoslab.outputs`).
        progress
            A progress bar (cells written; ``None``: for RUNs of at least
            :data:`SAVE_PROGRESS_CELLS` cells).

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        qoslab.outputs.OutputExistsError
            ``path`` exists and ``force`` is false.
        qoslab.outputs.OutputError
            The folder is missing or not writable, or the disk is full.
        """
        tables = [self._saved_table(name) for name in ("probes", "events", "samples",
                                                        "decisions")]
        cells = sum(t.shape[0] * t.shape[1] for t in tables)
        show = cells >= SAVE_PROGRESS_CELLS if progress is None else bool(progress)

        def write(tmp: Path) -> None:
            bar = None
            if show:
                from tqdm.auto import tqdm

                bar = tqdm(total=cells, unit="cell", unit_scale=True, desc="saving",
                           dynamic_ncols=True)
            # level 6: the size of level 9 (within 1 %) in a quarter of its time on large RUNs
            try:
                with open(tmp, "wb") as raw:  # noqa: PTH123 - write_with's fresh temp file
                    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6,
                                       mtime=0) as gz:
                        for chunk in self._json_chunks(bar.update if bar else None):
                            gz.write(chunk.encode())
                    raw.flush()
                    os.fsync(raw.fileno())
            finally:
                if bar is not None:
                    bar.close()

        return write_with(path, write, force=force, what="RUN file")


def jsonable(value: Any) -> Any:
    """Plain JSON values of numpy / pandas scalars and containers (NaN and ±inf -> None; an
    object JSON cannot hold becomes its ``repr``): the one sanitizer of everything qoslab
    writes as JSON (RUN files, journals, META).

    Examples
    --------
    >>> jsonable({"a": np.int64(3), "b": [np.float32(0.5), float("nan")], 1: (None,)})
    {'a': 3, 'b': [0.5, None], '1': [None]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (_dt.datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int)):
        return value
    return repr(value)


def _columns(frame: pd.DataFrame) -> dict[str, list]:
    """Each column as a list of plain JSON values (what :func:`jsonable` gives per value; numpy
    and string columns of millions of rows converted whole)."""
    out = {}
    for col in frame.columns:
        series = frame[col]
        kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else None
        if kind in ("b", "i", "u"):
            out[str(col)] = series.to_numpy().tolist()
            continue
        if kind == "f":
            arr = series.to_numpy()
            values = arr.tolist()
            for i in np.flatnonzero(~np.isfinite(arr)).tolist():  # NaN and ±inf: null
                values[i] = None
            out[str(col)] = values
            continue
        if isinstance(series.dtype, pd.CategoricalDtype):
            names = [jsonable(v) for v in series.cat.categories.tolist()] + [None]  # -1: NA
            out[str(col)] = [names[c] for c in series.cat.codes.to_numpy().tolist()]
            continue
        if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) and \
                series.dtype.kind in "iu":  # Int64, UInt8 …
            missing = series.isna().to_numpy()
            values = series.to_numpy(dtype=series.dtype.numpy_dtype, na_value=0).tolist()
            for i in np.flatnonzero(missing).tolist():
                values[i] = None
            out[str(col)] = values
            continue
        values = series.astype(object).where(series.notna(), None).tolist()
        if isinstance(series.dtype, pd.StringDtype):
            out[str(col)] = values  # str or None already
            continue
        out[str(col)] = [jsonable(v) for v in values]
    return out


def read_native(doc: Any, source: str) -> Run:
    """Build a :class:`Run` from a parsed RUN document, validating every field.

    Raises
    ------
    RunFormatError
        Naming ``source`` and the offending field; a
        :class:`~qoslab.errors.ResourceLimitError` subclass when the document holds more rows,
        columns or streams than :mod:`qoslab.io.limits` allows.
    """
    from .io.limits import MAX_COLUMNS, MAX_ROWS  # cycle: qoslab.io imports this one

    if not isinstance(doc, dict):
        raise RunFormatError(f"{source}: expected a JSON object at the top level")
    if doc.get("format") != RUN_FORMAT:
        raise RunFormatError(f"{source}: format: expected {RUN_FORMAT!r}, got {doc.get('format')!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFormatError(f"{source}: version: expected an integer, got {version!r}")
    if version > RUN_VERSION:
        raise RunFormatError(
            f"{source}: version: {version} is newer than this qoslab reads ({RUN_VERSION}); "
            "upgrade qoslab"
        )
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise RunFormatError(f"{source}: meta: expected an object, got {type(meta).__name__}")
    tables = {}
    for name in ("probes", "events", "samples", "decisions"):
        optional = name in ("samples", "decisions")
        cols = doc.get(name, {} if optional else None)  # older files have none
        if optional and not cols:
            tables[name] = schema.empty_samples() if name == "samples" \
                else schema.empty_decisions()
            continue
        if not isinstance(cols, dict):
            raise RunFormatError(f"{source}: {name}: expected an object of columns")
        if len(cols) > MAX_COLUMNS:
            raise ColumnLimitError(f"{source}: {name}: {len(cols)} columns; the limit is "
                                   f"{MAX_COLUMNS}")
        for k, v in cols.items():
            if not isinstance(v, list):
                raise RunFormatError(f"{source}: {name}.{k}: expected a list")
            if len(v) > MAX_ROWS:
                raise ProbeLimitError(f"{source}: {name}.{k}: {len(v)} rows; the limit is "
                                      f"{MAX_ROWS}")
            nested = None if set(map(type, v)) <= _SCALAR_TYPES else next(
                i for i, x in enumerate(v) if isinstance(x, (list, dict)))
            if nested is not None:
                raise RunFormatError(f"{source}: {name}.{k}: row {nested}: expected a value, "
                                     f"got a {type(v[nested]).__name__}")
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise RunFormatError(f"{source}: {name}: columns differ in length {lengths}")
        tables[name] = schema.conform(pd.DataFrame(cols), name, source=source)
    return Run(tables["probes"], tables["events"], meta, tables["samples"],
               tables["decisions"])


class RunJournal:
    """Append-only journal of a run in progress (``<path>.partial``).

    Every record is written as one JSON line; the file is flushed to the OS after each batch
    and fsynced at least once a second (by a background thread with ``background_sync=True``,
    for writers that must never block), so a killed process loses nothing it reported.
    :meth:`finish` writes the final RUN file atomically and removes the journal.

    Parameters
    ----------
    path
        The final RUN file path; the journal is ``path + ".partial"``.
    meta
        META known at the start (updated later with :meth:`update_meta`).
    force
        Replace an existing RUN file at ``path``; an earlier journal at ``path + ".partial"``
        is then kept under a new name rather than refused (see :mod:`qoslab.outputs`).

    Raises
    ------
    qoslab.outputs.OutputExistsError, qoslab.outputs.JournalExistsError
        ``path`` or its journal exists and ``force`` is false.
    qoslab.outputs.OutputError
        The folder is missing or not writable.

    Examples
    --------
    >>> import tempfile, os, qoslab
    >>> d = tempfile.mkdtemp()
    >>> j = RunJournal(os.path.join(d, "r.json.gz"), {"interval": 0.2})
    >>> j.add_probe(stream="s", host="h", tos=0, size=56, seq=1, t_sent=0.0, rtt_ms=1.0,
    ...             status="ok", ttl=64)
    >>> len(qoslab.load(j.journal_path).probes)
    1
    >>> j.close()
    """

    def __init__(self, path: str | os.PathLike, meta: dict[str, Any] | None = None,
                 *, fsync_interval: float = 1.0, background_sync: bool = False,
                 force: bool = False) -> None:
        self.path = check_output(path, force=force, what="RUN file")
        self.force = force
        self.journal_path = self.path.with_name(self.path.name + ".partial")
        refuse_or_keep_journal(self.journal_path, force=force)
        self._fh = io.TextIOWrapper(create_new(self.journal_path), encoding="utf-8")
        self._failed: OutputError | None = None
        self.records = 0
        self._fsync_interval = fsync_interval
        self._last_sync = 0.0
        self._syncer: threading.Thread | None = None
        self._closing = threading.Event()
        if background_sync:
            # fsync can block for milliseconds: a timing-critical writer hands it to a thread
            self._last_sync = float("inf")
            self._syncer = threading.Thread(target=self._sync_periodically, daemon=True,
                                            name="qoslab-journal-fsync")
            self._syncer.start()
        self._write({"format": JOURNAL_FORMAT, "version": RUN_VERSION,
                     "meta": jsonable(dict(meta or {}))})

    def _write(self, record: dict[str, Any]) -> None:
        self._emit(json.dumps(jsonable(record), allow_nan=False) + "\n", 1)

    def _emit(self, text: str, n: int) -> None:
        """Write ``n`` records; a full disk (or any write error) is one :class:`OutputError`,
        raised again on every later write, and the journal keeps what was written."""
        if self._failed is not None:
            raise self._failed
        try:
            self._fh.write(text)
            self._fh.flush()
            now = time.monotonic()
            if now - self._last_sync >= self._fsync_interval:
                os.fsync(self._fh.fileno())
                self._last_sync = now
        except OSError as exc:
            self._failed = OutputError(
                f"RUN journal {self.journal_path}: cannot write ({_reason(exc)}); it keeps the "
                f"{self.records} records written before")
            raise self._failed from None
        self.records += n

    def add_probe(self, **probe: Any) -> None:
        """Append one PROBES row (keyword per column; extra columns allowed)."""
        self._write({"probe": probe})

    def add_probes(self, rows: list[dict[str, Any]]) -> None:
        """Append several PROBES rows with one flush (for fast producers)."""
        if not rows:
            return
        self._emit("".join(json.dumps(jsonable({"probe": r}), allow_nan=False) + "\n"
                           for r in rows), len(rows))

    def update_probe(self, **probe: Any) -> None:
        """Append a row that replaces the earlier row of the same ``stream`` and ``seq``.

        For an answer that arrives after its probe was recorded as lost (status ``late``).
        """
        self._write({"probe_update": probe})

    def add_event(self, t: float, kind: str, detail: str = "") -> None:
        """Append one EVENTS row."""
        self._write({"event": {"t": t, "kind": kind, "detail": detail}})

    def update_meta(self, **meta: Any) -> None:
        """Record META entries learnt during the run (later values win)."""
        self._write({"meta": meta})

    def _sync_periodically(self) -> None:
        fd = self._fh.fileno()
        while not self._closing.wait(self._fsync_interval):
            try:
                os.fsync(fd)
            except OSError:
                return

    def close(self) -> None:
        """Flush, fsync and close the journal (it stays on disk)."""
        self._closing.set()
        if self._syncer is not None:
            self._syncer.join()
            self._syncer = None
        if not self._fh.closed:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError:
                pass  # a full disk: what reached the file stays; the write error was raised
            finally:
                with contextlib.suppress(OSError):
                    self._fh.close()

    def finish(self, run: Run) -> Path:
        """Save ``run`` atomically to :attr:`path` and remove the journal."""
        self.close()
        out = run.save(self.path, force=self.force)
        self.journal_path.unlink(missing_ok=True)
        return out

    def __enter__(self) -> RunJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def read_journal(path: str | os.PathLike, data: bytes | None = None) -> Run:
    """Recover a :class:`Run` from a journal; a torn last line is dropped with a warning.

    Parameters
    ----------
    path
        The journal (``<run>.partial``).
    data
        Its bytes, when already read (:func:`qoslab.load` reads each file once).

    Raises
    ------
    RunFormatError
        A line that is not a journal record (named by number), or a record whose fields do not
        validate; a :class:`~qoslab.errors.ResourceLimitError` past a loading limit.
    """
    from .io.limits import (  # cycle: qoslab.io imports this one
        MAX_COLUMNS,
        MAX_ROWS,
        parse_json,
        read_regular_file,
    )

    path = Path(path)
    if data is None:
        data = read_regular_file(path)
    probes: list[dict] = []
    where: dict[tuple, int] = {}  # (stream, seq) -> index of its latest row in probes
    events: list[dict] = []
    meta: dict[str, Any] = {}
    columns: dict[str, set] = {"probes": set(), "events": set()}
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        try:  # qoslab writes UTF-8: other bytes are damage, never replaced in silence
            rec = parse_json(line.decode("utf-8"), f"{path}: line {lineno}")
        except ResourceLimitError:
            raise
        except (RunFormatError, UnicodeDecodeError) as exc:
            if lineno == len(lines) and lineno > 1:
                warnings.warn(f"{path}: line {lineno} is incomplete (the run was cut off there); "
                              "dropped it", stacklevel=3)
                break
            what = f"not UTF-8 text (byte {exc.start})" if isinstance(exc, UnicodeDecodeError) \
                else "not a JSON record"
            raise RunFormatError(f"{path}: line {lineno}: {what}") from None
        if lineno == 1:
            if not isinstance(rec, dict) or rec.get("format") != JOURNAL_FORMAT:
                raise RunFormatError(f"{path}: line 1: expected a {JOURNAL_FORMAT} header")
            head_meta = rec.get("meta") or {}
            if not isinstance(head_meta, dict):
                raise RunFormatError(f"{path}: line 1: meta: expected an object")
            meta.update(head_meta)
            continue
        if not isinstance(rec, dict) or len(rec) != 1:
            raise RunFormatError(f"{path}: line {lineno}: expected one of "
                                 "probe/probe_update/event/meta")
        (kind, body), = rec.items()
        if not isinstance(body, dict) or kind not in ("probe", "probe_update", "event", "meta"):
            raise RunFormatError(f"{path}: line {lineno}: unknown record {kind!r}")
        if kind in ("probe", "probe_update", "event"):
            bad = next((k for k, v in body.items() if isinstance(v, (list, dict))), None)
            if bad is not None:
                raise RunFormatError(f"{path}: line {lineno}: {kind}.{bad}: expected a value, "
                                     f"got a {type(body[bad]).__name__}")
            names = columns["events" if kind == "event" else "probes"]
            names.update(body)
            if len(names) > MAX_COLUMNS:  # each line its own column: a table rows × columns
                raise ColumnLimitError(f"{path}: line {lineno}: the "
                                       f"{'events' if kind == 'event' else 'probes'} have more "
                                       f"than {MAX_COLUMNS} columns; the limit is {MAX_COLUMNS}")
        if kind == "probe":
            where[(body.get("stream"), body.get("seq"))] = len(probes)
            probes.append(body)
        elif kind == "probe_update":
            # replaces the latest row of the same stream and seq (appended if none)
            key = (body.get("stream"), body.get("seq"))
            i = where.get(key)
            if i is None:
                where[key] = len(probes)
                probes.append(body)
            else:
                probes[i] = body
        elif kind == "event":
            events.append(body)
        else:
            meta.update(body)
        if len(probes) + len(events) > MAX_ROWS:
            raise ProbeLimitError(f"{path}: line {lineno}: more than {MAX_ROWS} rows, the "
                                  "limit on rows in one file")
    meta["recovered_from_journal"] = str(path)
    pr = pd.DataFrame(probes) if probes else schema.empty_probes()
    ev = pd.DataFrame(events) if events else schema.empty_events()
    return Run(schema.conform(pr, "probes", source=str(path)),
               schema.conform(ev, "events", source=str(path)), meta)
