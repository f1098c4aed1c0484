"""A RUN's per-packet tables in a Parquet dataset beside it, written chunk by chunk.

A replay of a long capture yields one DECISIONS row and one PROBES row per packet: tens of
millions of rows that need not fit in memory. With ``qoslab replay CAPTURE --per-packet OUT/``
(``qoslab.replay(..., per_packet=OUT)``) those rows go to disk as they are decided, one
Parquet part per chunk, and the RUN file keeps what stays small (META with per-flow
summaries, EVENTS) and the dataset's path. Layout (readable by pyarrow, pandas, Dask, DuckDB
as it is)::

    OUT/_qoslab_run_tables.json        the manifest (written last: the dataset is complete)
    OUT/decisions/part-000000.parquet  DECISIONS rows, in packet order
    OUT/probes/part-000000.parquet     PROBES rows (one per packet), in the same order
    ...

The folder is written under a temporary name beside ``OUT`` and renamed into place when
complete; an existing ``OUT`` is replaced only with ``force`` and only if it is such a
dataset, never through a symlink.

:func:`qoslab.load` of such a RUN gives a :class:`DatasetRun`: ``run.probes`` and
``run.decisions`` are read from the dataset the first time they are used (at most
:data:`qoslab.io.limits.MAX_ROWS` rows; beyond that the error says how to read it in parts:
:meth:`DatasetRun.iter_table`, or the dataset with pyarrow / Dask). So every plot and
analysis that reads a RUN reads these too.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ProbeLimitError, RunFormatError, SeriesLimitError
from ..outputs import OutputError, check_folder_output, publish_folder, temp_folder_beside
from ..runs import Run
from .limits import MAX_ROWS, MAX_SERIES, read_config_text

__all__ = ["TableWriter", "DatasetRun", "attach", "check_tables_output", "MANIFEST", "TABLES"]

#: Name of the manifest in a dataset folder.
MANIFEST = "_qoslab_run_tables.json"
#: The per-packet tables a dataset may hold, in the order they are written.
TABLES = ("decisions", "probes")
_FORMAT = "qoslab-run-tables"
_VERSION = 1


# ----------------------------------------------------------------------------- writing
def check_tables_output(out: str | os.PathLike, *, force: bool = False) -> Path:
    """Check, before any work, that the dataset folder ``out`` can be written.

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``force`` is not given.
    OutputError
        The parent folder is missing or not writable, or ``out`` is something other than such
        a dataset (never removed, even with ``force``).
    """
    return check_folder_output(out, force=force, what="per-packet dataset", marker=MANIFEST)


class TableWriter:
    """Write per-packet tables into a new dataset folder, one Parquet part per call.

    Parameters
    ----------
    out
        The dataset folder (checked with :func:`check_tables_output`).
    force
        Replace an existing dataset of that name when :meth:`close` publishes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tables"
    >>> w = TableWriter(out)
    >>> w.write("decisions", schema.empty_decisions())
    >>> sorted(w.close(flows=[]))
    ['decisions', 'path', 'probes']
    >>> (out / MANIFEST).is_file()
    True
    """

    def __init__(self, out: str | os.PathLike, *, force: bool = False) -> None:
        self.out = check_tables_output(out, force=force)
        self.force = force
        self.tmp = temp_folder_beside(self.out, ".partial")
        self.parts: dict[str, list[dict]] = {name: [] for name in TABLES}
        for name in TABLES:
            (self.tmp / name).mkdir()

    def write(self, name: str, frame: pd.DataFrame) -> None:
        """Append ``frame`` (a conformed table) as the next part of table ``name``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rel = f"{name}/part-{len(self.parts[name]):06d}.parquet"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            with os.fdopen(os.open(self.tmp / rel, flags, 0o666), "wb") as fh:
                pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), fh)
        except OSError as exc:
            raise OutputError(f"per-packet dataset {self.out}: cannot write {rel} "
                              f"({os.strerror(exc.errno) if exc.errno else exc})") from None
        self.parts[name].append({"path": rel, "rows": len(frame)})

    def close(self, *, flows: Sequence[str], ordered: bool = True) -> dict[str, Any]:
        """Write the manifest (``flows``: the flow labels, by flow id; ``ordered``: every
        row was written in arrival order, else the column ``arrival`` orders them), give the
        folder its name; return what META records (``path`` and the rows of each table)."""
        manifest = {"format": _FORMAT, "version": _VERSION, "flows": [str(f) for f in flows],
                    "ordered": bool(ordered),
                    "tables": {name: {"rows": sum(p["rows"] for p in parts), "parts": parts}
                               for name, parts in self.parts.items()}}
        with os.fdopen(os.open(self.tmp / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                               os.O_NOFOLLOW | os.O_CLOEXEC, 0o666), "w") as fh:
            json.dump(manifest, fh)
        publish_folder(self.tmp, self.out, force=self.force, what="per-packet dataset",
                       marker=MANIFEST)
        return {"path": str(self.out.resolve()),
                **{name: t["rows"] for name, t in manifest["tables"].items()}}

    def abort(self) -> None:
        """Remove the unfinished folder (a replay that failed)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- reading
def _manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        raise RunFormatError(f"per-packet dataset {root}: missing (the RUN's "
                             "meta['per_packet'] points there)") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunFormatError(f"per-packet dataset {root}: not a folder")
    try:
        doc = json.loads(read_config_text(path, "per-packet dataset manifest"))
    except FileNotFoundError:
        raise RunFormatError(f"per-packet dataset {root}: no {MANIFEST} (an unfinished "
                             "replay?)") from None
    except ValueError as exc:
        raise RunFormatError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise RunFormatError(f"{path}: format: expected {_FORMAT!r}")
    if not isinstance(doc.get("version"), int) or doc["version"] > _VERSION:
        raise RunFormatError(f"{path}: version: expected an integer <= {_VERSION}")
    flows, tables = doc.get("flows"), doc.get("tables")
    if not isinstance(flows, list) or not all(isinstance(f, str) for f in flows):
        raise RunFormatError(f"{path}: flows: expected a list of labels")
    if not isinstance(tables, dict):
        raise RunFormatError(f"{path}: tables: expected an object")
    for name, table in tables.items():
        parts = table.get("parts") if isinstance(table, dict) else None
        if name not in TABLES or not isinstance(parts, list):
            raise RunFormatError(f"{path}: tables.{name}: expected one of {TABLES} with parts")
        for k, part in enumerate(parts):
            rel = part.get("path") if isinstance(part, dict) else None
            if not isinstance(rel, str) or not isinstance(part.get("rows"), int) or \
                    Path(rel).is_absolute() or ".." in Path(rel).parts or \
                    Path(rel).parts[:1] != (name,):
                raise RunFormatError(f"{path}: tables.{name}.parts[{k}]: expected a path "
                                     f"under {name}/ and its rows")
    return doc


def iter_table(root: str | os.PathLike, name: str, *, columns: Sequence[str] | None = None,
               arrival: bool = False) -> Iterator[pd.DataFrame]:
    """The rows of table ``name`` of a dataset, one part at a time, with the schema's dtypes
    (``flow`` categories: every flow of the run, by flow id).

    Parts come in the order they were written: the rows of a packet that stayed queued
    while many others arrived come in a later part than their neighbours (the manifest
    says ``"ordered": false``); ``arrival=True`` keeps the column ``arrival`` (each row's
    number in arrival order) that orders them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    doc = _manifest(root)
    table = doc["tables"].get(name)
    if table is None:
        return
    flows = _unique(doc["flows"])
    for part in table["parts"]:
        path = root / part["path"]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise RunFormatError(f"{path}: cannot read ({os.strerror(exc.errno)})") from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunFormatError(f"{path}: not a regular file")
            try:
                parquet = pq.ParquetFile(fh)
                rows = parquet.metadata.num_rows
                if rows != part["rows"]:  # checked before reading: a few KB of Parquet can
                    # hold millions of repeated values, more than the manifest let through
                    raise RunFormatError(f"{path}: {rows} rows, the manifest says "
                                         f"{part['rows']}")
                frame = parquet.read().to_pandas()
            except (OSError, pa.ArrowException) as exc:
                raise RunFormatError(f"{path}: not a Parquet file ({exc})") from None
        if len(frame) != part["rows"]:
            raise RunFormatError(f"{path}: {len(frame)} rows, the manifest says {part['rows']}")
        order = frame.pop("arrival") if "arrival" in frame else None
        frame = _conformed(frame, name, flows, str(path))
        if columns is not None:
            frame = frame[list(columns)]
        if arrival:
            if order is None:
                raise RunFormatError(f"{path}: no column arrival")
            frame["arrival"] = order.to_numpy(np.int64)
        yield frame


def _unique(labels: list[str]) -> list[str]:
    if len(set(labels)) != len(labels):
        raise RunFormatError("per-packet dataset: flows: labels must be unique")
    return labels


def _conformed(frame: pd.DataFrame, name: str, flows: list[str], source: str) -> pd.DataFrame:
    if name == "decisions" and "flow" in frame:
        values = frame["flow"].astype("category")
        unknown = set(values.cat.categories) - set(flows)
        if unknown:
            raise RunFormatError(f"{source}: decisions.flow: {sorted(unknown)[0]!r} is not a "
                                 "flow of the manifest")
        frame["flow"] = values.cat.set_categories(pd.Index(flows, dtype=str))
    frame = schema.conform(frame, name, source=source)
    schema.check_values(frame, name, source=source)
    return frame


def read_table(root: str | os.PathLike, name: str, *, columns: Sequence[str] | None = None,
               limit: int = MAX_ROWS) -> pd.DataFrame:
    """Table ``name`` of a dataset as one frame (at most ``limit`` rows).

    Raises
    ------
    ProbeLimitError
        The table holds more than ``limit`` rows (read it in parts: :func:`iter_table`).
    RunFormatError
        A manifest or part that does not match, naming the file.
    """
    root = Path(root)
    table = _manifest(root)["tables"].get(name)
    rows = sum(p["rows"] for p in table["parts"]) if table else 0
    if rows > limit:
        raise ProbeLimitError(
            f"per-packet dataset {root}: {name}: {rows} rows; the limit for one frame in "
            f"memory is {limit}. Read it in parts (DatasetRun.iter_table, or "
            f"dask.dataframe.read_parquet('{root / name}'))")
    ordered = _manifest(root).get("ordered", True) is not False
    frames = list(iter_table(root, name, columns=columns, arrival=not ordered))
    if not frames:
        empty = schema.empty_decisions() if name == "decisions" else schema.empty_probes()
        return empty if columns is None else empty[list(columns)]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if not ordered:  # rows held back while their packet was queued: arrival order again
        order = frame.pop("arrival").to_numpy()
        frame = frame.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    return frame


class DatasetRun(Run):
    """A RUN whose PROBES and DECISIONS live in a per-packet dataset (see the module doc).

    ``probes`` and ``decisions`` are read on first use and kept; the rest is as for
    :class:`~qoslab.runs.Run`. :meth:`save` writes the RUN file without those tables, pointing
    to the dataset (its path relative to the RUN file's folder when it can be).
    """

    def __init__(self, run: Run, folder: str | os.PathLike) -> None:  # noqa: D107
        self.__dict__["_tables"] = {}
        self.__dict__["folder"] = Path(folder).resolve()
        super().__init__(events=run.events, meta=run.meta, samples=run.samples)
        self._tables.clear()  # Run's defaults: empty frames, not the dataset's

    def __post_init__(self) -> None:
        self.events = schema.conform(self.events, "events")
        self.samples = schema.conform(self.samples, "samples")
        self.meta = dict(self.meta)
        self.meta.setdefault("tool", "qoslab")

    def _get(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            frame = read_table(self.folder, name)
            if name == "probes" and frame["stream"].nunique() > MAX_SERIES:
                raise SeriesLimitError(f"per-packet dataset {self.folder}: "
                                       f"{frame['stream'].nunique()} streams; the limit is "
                                       f"{MAX_SERIES}")
            self._tables[name] = frame
        return self._tables[name]

    def _set(self, name: str, frame: Any) -> None:
        self._tables[name] = schema.conform(frame, name)

    probes = property(lambda self: self._get("probes"), lambda self, v: self._set("probes", v))
    decisions = property(lambda self: self._get("decisions"),
                         lambda self, v: self._set("decisions", v))

    def iter_table(self, name: str, *, columns: Sequence[str] | None = None,
                   arrival: bool = False) -> Iterator[pd.DataFrame]:
        """The rows of ``"decisions"`` or ``"probes"``, one Parquet part at a time (see
        :func:`iter_table` for their order)."""
        return iter_table(self.folder, name, columns=columns, arrival=arrival)

    def rows(self, name: str) -> int:
        """Rows of a per-packet table, from the manifest (nothing read)."""
        table = _manifest(self.folder)["tables"].get(name)
        return sum(p["rows"] for p in table["parts"]) if table else 0

    def __repr__(self) -> str:
        return (f"DatasetRun({self.rows('probes')} probes, {len(self.events)} events, "
                f"{self.rows('decisions')} decisions in {self.folder}, "
                f"source={self.meta.get('source', '?')!r})")

    def _saved_table(self, name: str) -> pd.DataFrame:
        if name == "probes":
            return schema.empty_probes()
        if name == "decisions":
            return schema.empty_decisions()
        return getattr(self, name)

    def save(self, path: str | os.PathLike, *, force: bool = False,
             progress: bool | None = None) -> Path:
        """Write the RUN file (META, EVENTS, SAMPLES; the per-packet tables stay in the
        dataset, named in ``meta["per_packet"]["path"]``)."""
        info = dict(self.meta.get("per_packet") or {})
        base = Path(path).resolve().parent
        try:
            info["path"] = os.path.relpath(self.folder, base)
        except ValueError:  # another drive
            info["path"] = str(self.folder)
        self.meta["per_packet"] = info
        return super().save(path, force=force, progress=progress)


def attach(run: Run, run_path: str | os.PathLike | None = None) -> Run:
    """``run`` as a :class:`DatasetRun` when its META names a per-packet dataset
    (``meta["per_packet"]["path"]``, relative to the RUN file's folder); ``run`` otherwise."""
    info = run.meta.get("per_packet")
    if not info:
        return run
    where = f"{run_path}: " if run_path else ""
    if not isinstance(info, dict) or not isinstance(info.get("path"), str):
        raise RunFormatError(f"{where}meta.per_packet: expected an object with a path")
    folder = Path(info["path"])
    if not folder.is_absolute() and run_path is not None:
        folder = Path(run_path).resolve().parent / folder
    if len(run.probes) or len(run.decisions):
        raise RunFormatError(f"{where}holds probes or decisions and names a per-packet "
                             "dataset; expected one or the other")
    _manifest(folder)  # it is there and complete, or a clear error now
    return DatasetRun(run, folder)
