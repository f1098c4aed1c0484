"""A capture set as a Parquet dataset, partitioned by file and hour, and read back.

Layout (Hive partitioning, readable by pyarrow, pandas, Dask, DuckDB, Spark as it is)::

    OUT/_qoslab_packets.json                      the manifest (written last: complete)
    OUT/file=ring%2Fring_1.pcap/hour=2025-11-24T16/part-000000.parquet
    OUT/file=ring%2Fring_1.pcap/hour=2025-11-24T17/part-000000.parquet
    ...

One *piece* per chunk of one file (a Dask partition, or ``rows_per_part`` rows with pandas)
is split by the UTC hour of its packets; each part holds every PACKETS column and ``frame``
(``file`` and ``hour`` are in the path, percent-encoded). The manifest lists the files in set
order and every piece with its first frame, packet count and parts, so :func:`read_packets`
restores the set's exact order, dtypes and index, one Dask partition per piece, with known
divisions — the frame :func:`qoslab.read_captures` gave.

A folder is written beside ``OUT`` under a temporary name and renamed into place when
complete; an existing ``OUT`` is replaced only with ``force`` and only if it is a qoslab
dataset (or a file), never through a symlink.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..capture.decode import PROBLEMS, TUNNELS
from ..capture.frame import address_sort_key
from ..capture.reader import DEFAULT_CHUNK, concat_packets
from ..errors import ConfigError, RunFormatError
from ..outputs import check_folder_output, publish_folder, temp_folder_beside
from ..schema import CAPTURE_SET, PACKETS
from ._dask import require_dask
from .captures import ADDRESS_COLUMNS
from .captureset import empty_set, file_dtype
from .diagnostics import compute
from .dispatch import is_dask

__all__ = ["write_packets", "write_pieces", "read_packets", "check_dataset_output",
           "conform_packets",
           "MANIFEST", "MAX_MANIFEST_BYTES"]

#: Name of the manifest file in a dataset folder.
MANIFEST = "_qoslab_packets.json"
_FORMAT = "qoslab-packets-dataset"
_VERSION = 1
#: Largest manifest read (a manifest lists every piece: ~200 bytes each).
MAX_MANIFEST_BYTES = 256 << 20
_NO_HOUR = "__HIVE_DEFAULT_PARTITION__"  # Hive's name for a missing partition value
_NS_PER_HOUR = 3_600_000_000_000


# ----------------------------------------------------------------------------- writing
def check_dataset_output(out, *, force: bool = False) -> Path:
    """Check, before any work, that the dataset folder ``out`` can be written.

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``force`` is not given.
    OutputError
        The parent folder is missing or not writable, or ``out`` is a folder that is not a
        qoslab dataset (never removed, even with ``force``).
    """
    return check_folder_output(out, force=force, what="Parquet dataset", marker=MANIFEST)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _hours(time: pd.Series) -> np.ndarray:
    """``YYYY-MM-DDTHH`` (UTC) of each packet, Hive's null name where there is no time."""
    ns = time.array.asi8
    missing = time.isna().to_numpy()
    hour = np.where(missing, -1, ns // _NS_PER_HOUR)
    names = {h: (_NO_HOUR if h < 0 else pd.Timestamp(int(h) * _NS_PER_HOUR, tz="UTC")
                 .strftime("%Y-%m-%dT%H")) for h in np.unique(hour).tolist()}
    return np.array([names[h] for h in hour.tolist()], dtype=object) if len(names) > 1 else \
        np.full(len(hour), next(iter(names.values()), _NO_HOUR), dtype=object)


def write_piece(piece: pd.DataFrame, root: str | os.PathLike, number: int) -> dict:
    """Write one piece (rows of one file, in frame order) as its hour parts; return its
    manifest entry."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not len(piece):
        return {"file": None, "first_frame": 0, "packets": 0, "parts": []}
    names = piece["file"].astype(str).unique()
    if len(names) != 1:
        raise ConfigError(f"write_packets: a piece holds rows of {len(names)} files")
    name = str(names[0])
    hours = _hours(piece["time"])
    body = piece.drop(columns=["file"]).reset_index(drop=True)
    parts = []
    for hour in sorted(set(hours.tolist())):
        rows = body[hours == hour] if len(set(hours.tolist())) > 1 else body
        rel = f"file={_quote(name)}/hour={hour}/part-{number:06d}.parquet"
        path = Path(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path)
        parts.append(rel)
    return {"file": name, "first_frame": int(piece["frame"].iloc[0]), "packets": len(piece),
            "parts": parts}


class _PartitionWriter:
    """Dask partition function: write the partition as piece ``number``."""

    def __init__(self, root: str):
        self.root = root

    def __call__(self, part: pd.DataFrame, partition_info=None) -> pd.DataFrame:
        number = partition_info["number"] if partition_info else 0
        return pd.DataFrame({"entry": [json.dumps(write_piece(part, self.root, number))]})


def write_packets(packets, out, *, force: bool = False, rows_per_part: int = DEFAULT_CHUNK,
                  progress: bool | None = None, also=()):
    """Write a capture set (:func:`qoslab.read_captures`, pandas or Dask) as a Parquet
    dataset partitioned by file and hour.

    Parameters
    ----------
    packets
        PACKETS with ``file`` and ``frame`` (:data:`qoslab.schema.CAPTURE_SET`), in set
        order. A Dask frame is written partition by partition by its workers (in parallel;
        on a cluster ``out`` must be on a file system every worker sees).
    out
        The dataset folder, created (its parent must exist).
    force
        Replace an existing dataset (a folder holding the manifest) or file of that name.
    rows_per_part
        pandas only: rows per piece (a Dask frame writes one piece per partition).
    also
        Further Dask collections to compute in the same pass (e.g. flow partials of the same
        frame: the captures are then read once); their results are returned after the path.

    Returns
    -------
    pathlib.Path or tuple
        ``out``, or ``(out, *results of also)``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from qoslab import data_path
    >>> from qoslab.engines import read_captures
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> pk = read_captures(data_path("captures/tunnel_uploads.pcap"))
    >>> out = write_packets(pk, d / "set")
    >>> read_packets(out).equals(pk)
    True
    """
    missing = [c for c in CAPTURE_SET if c not in packets.columns]
    if missing:
        raise ConfigError(f"write_packets: packets lack {', '.join(missing)}: write a capture "
                          "set from qoslab.read_captures")
    if not is_dask(packets):
        files = [str(f) for f in packets["file"].cat.categories]
        return write_pieces(_pieces(packets, rows_per_part), out, files, force=force)

    files = [str(f) for f in packets._meta["file"].cat.categories]
    extra: list = []

    def write(tmp: Path) -> list[dict]:
        entries = packets.map_partitions(_PartitionWriter(str(tmp)), meta=pd.DataFrame(
            {"entry": pd.Series(dtype=object)}))
        written, *rest = compute(entries, *also, progress=progress, what=f"writing {out}")
        extra.extend(rest)
        return [json.loads(e) for e in written["entry"]]

    out = _write_dataset(out, files, write, force=force)
    return (out, *extra) if also else out


def write_pieces(pieces, out, files: Sequence[str], *, force: bool = False) -> Path:
    """Write pieces (frames of one file each, in set order; e.g. chunks read one at a time)
    as a dataset: the streaming form of :func:`write_packets`."""
    return _write_dataset(out, files, lambda tmp: [write_piece(p, tmp, k)
                                                   for k, p in enumerate(pieces)], force=force)


def _write_dataset(out, files: Sequence[str], write, *, force: bool) -> Path:
    """Check ``out``, let ``write(tmp)`` write the pieces into a temporary folder beside it,
    add the manifest and rename the folder into place."""
    out = check_dataset_output(out, force=force)
    tmp = temp_folder_beside(out)
    try:
        pieces = [p for p in write(tmp) if p["packets"]]
        manifest = {"format": _FORMAT, "version": _VERSION, "written_by": f"qoslab {__version__}",
                    "files": list(files), "columns": {**PACKETS, **CAPTURE_SET},
                    "packets": sum(p["packets"] for p in pieces), "pieces": pieces}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        publish_folder(tmp, out, force=force, what="Parquet dataset", marker=MANIFEST)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _pieces(packets: pd.DataFrame, rows: int):
    codes = packets["file"].cat.codes.to_numpy()
    cuts = np.flatnonzero(np.diff(codes)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(packets)], strict=True):
        for start in range(int(lo), int(hi), rows):
            yield packets.iloc[start:min(start + rows, int(hi))]


# ----------------------------------------------------------------------------- reading
def conform_packets(frame: pd.DataFrame, files: Sequence[str] | None = None, *,
                    source: str = "") -> pd.DataFrame:
    """Give a PACKETS frame read from a file the schema's columns, order and dtypes.

    Category columns get their canonical categories (``tunnel``, ``problem``: the decoder's
    lists; addresses: the addresses present, in address order; ``file``: ``files``). A value
    that does not fit its column is an error naming ``source`` and the column.
    """
    where = f"{source}: " if source else ""
    schema = dict(PACKETS)
    if files is not None or "file" in frame.columns:
        schema.update(CAPTURE_SET)
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise RunFormatError(f"{where}not a PACKETS table: missing column(s) "
                             f"{', '.join(missing)}")
    fixed = {"tunnel": TUNNELS, "problem": PROBLEMS}
    if files is not None:
        fixed["file"] = list(files)
    out = {}
    for col, dtype in schema.items():
        values = frame[col]
        try:
            if col in fixed:
                out[col] = _categorical(values, list(fixed[col]))
            elif col in ADDRESS_COLUMNS:
                present = pd.unique(values.dropna().astype(str))
                out[col] = _categorical(values, sorted(present, key=address_sort_key))
            elif dtype == "category":
                out[col] = values.astype("category")
            else:
                out[col] = values.astype(dtype)
        except (ValueError, TypeError) as exc:
            raise RunFormatError(f"{where}column {col}: expected {dtype}: {exc}") from None
    return pd.DataFrame(out, index=frame.index)


def _categorical(values: pd.Series, categories: list[str]) -> pd.Categorical:
    text = values.astype(object).where(values.notna(), None)
    cat = pd.Categorical(text, categories=pd.Index(categories, dtype=str))
    lost = cat.isna() & values.notna().to_numpy()
    if lost.any():
        bad = values[lost].iloc[0]
        raise ValueError(f"{bad!r} is not one of {', '.join(categories[:12])}"
                         + (" …" if len(categories) > 12 else ""))
    return cat


def _load_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        raise RunFormatError(f"{root}: not a qoslab PACKETS dataset (no {MANIFEST}; write one "
                             "with `qoslab capture DIR --parquet OUT/` or write_packets)")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise RunFormatError(f"{path}: {size} bytes, more than the {MAX_MANIFEST_BYTES}-byte "
                             "limit for a manifest")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{path}: not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise RunFormatError(f"{path}: not a qoslab PACKETS manifest (format {_FORMAT!r})")
    if manifest.get("version") != _VERSION:
        raise RunFormatError(f"{path}: manifest version {manifest.get('version')!r}; this "
                             f"qoslab reads version {_VERSION}")
    files, pieces = manifest.get("files"), manifest.get("pieces")
    if not (isinstance(files, list) and all(isinstance(f, str) for f in files)
            and isinstance(pieces, list)):
        raise RunFormatError(f"{path}: `files` must list names and `pieces` list pieces")
    resolved = root.resolve()
    for k, piece in enumerate(pieces):
        ok = (isinstance(piece, dict) and piece.get("file") in files
              and isinstance(piece.get("first_frame"), int) and piece["first_frame"] >= 1
              and isinstance(piece.get("packets"), int) and piece["packets"] >= 1
              and isinstance(piece.get("parts"), list) and piece["parts"]
              and all(isinstance(p, str) for p in piece["parts"]))
        if not ok:
            raise RunFormatError(f"{path}: piece {k} is malformed (expected file, first_frame "
                                 ">= 1, packets >= 1, parts)")
        for part in piece["parts"]:
            full = (root / part).resolve()
            if Path(part).is_absolute() or not full.is_relative_to(resolved):
                raise RunFormatError(f"{path}: piece {k} names {part!r}, outside the dataset")
    return manifest


def read_piece(root: str, piece: dict, files: Sequence[str], position: int = 0,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read one piece of a dataset: its parts in frame order, PACKETS dtypes, the set's
    index from ``position``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for part in piece["parts"]:
        try:
            tables.append(pq.read_table(Path(root, part)))
        except (OSError, pa.ArrowException) as exc:
            raise RunFormatError(f"{Path(root, part)}: cannot read ({exc})") from None
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 \
        else tables[0]
    frame = table.to_pandas()
    if len(tables) > 1:
        frame = frame.sort_values("frame", kind="stable").reset_index(drop=True)
    if len(frame) != piece["packets"]:
        raise RunFormatError(f"{root}: piece of {piece['file']} from frame "
                             f"{piece['first_frame']} holds {len(frame)} rows, the manifest "
                             f"says {piece['packets']}")
    frame["file"] = pd.Categorical.from_codes(
        np.full(len(frame), list(files).index(piece["file"]), np.int32),
        dtype=file_dtype(files))
    frame = conform_packets(frame, files, source=f"{root} ({piece['file']})")
    frame.index = pd.RangeIndex(position, position + len(frame))
    return frame if columns is None else frame[list(columns)]


class _PieceReader:
    def __init__(self, root: str, files: Sequence[str], columns):
        self.root, self.files, self.columns = root, list(files), columns

    def __call__(self, item) -> pd.DataFrame:
        position, piece = item
        return read_piece(self.root, piece, self.files, position, self.columns)


def read_packets(path, engine: str = "pandas", *, columns: Sequence[str] | None = None):
    """Read PACKETS written by ``qoslab capture … --parquet`` (a dataset folder or one file).

    Parameters
    ----------
    path
        A dataset folder (``qoslab capture DIR --parquet OUT/``, :func:`write_packets`) or a
        Parquet file (``qoslab capture FILE --parquet OUT.parquet``).
    engine
        ``"pandas"`` or ``"dask"`` (one partition per piece, known divisions).
    columns
        Only these columns (all by default).

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        The frame that was written, with :data:`qoslab.schema.PACKETS` dtypes (and
        ``file``/``frame``), in set order.

    Raises
    ------
    RunFormatError
        Not a qoslab dataset or PACKETS file, a malformed manifest, a part missing or not
        matching it.
    """
    if engine not in ("pandas", "dask"):
        raise ConfigError(f"read_packets: engine must be 'pandas' or 'dask', got {engine!r}")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no Parquet file or dataset {str(root)!r}")
    if root.is_file():
        return _read_file(root, engine, columns)
    manifest = _load_manifest(root)
    files = manifest["files"]
    items, position = [], 0
    for piece in manifest["pieces"]:
        items.append((position, piece))
        position += piece["packets"]
    if columns is not None:
        unknown = [c for c in columns if c not in {**PACKETS, **CAPTURE_SET}]
        if unknown:
            raise ConfigError(f"read_packets: no column(s) {', '.join(unknown)} in PACKETS")
    reader = _PieceReader(str(root), files, columns)
    if engine == "dask":
        dd = require_dask("read_packets(engine='dask')")
        meta = empty_set(files) if columns is None else empty_set(files)[list(columns)]
        from dask.dataframe.utils import clear_known_categories

        meta = clear_known_categories(meta, cols=[c for c in ADDRESS_COLUMNS
                                                  if c in meta.columns])
        if not items:
            return dd.from_pandas(meta.iloc[:0], npartitions=1)
        divisions = tuple(p for p, _ in items) + (position - 1,)
        return dd.from_map(reader, items, meta=meta, divisions=divisions, label="read-packets",
                           enforce_metadata=False)
    pieces = [reader(item) for item in items]
    if not pieces:
        frame = empty_set(files)
        return frame if columns is None else frame[list(columns)]
    frame = concat_packets(pieces) if len(pieces) > 1 else pieces[0]
    frame.index = pd.RangeIndex(len(frame))
    return frame


def _read_file(path: Path, engine: str, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise RunFormatError(f"{path}: not a Parquet file ({exc})") from None
    files = list(frame["file"].cat.categories) if "file" in frame.columns and isinstance(
        frame["file"].dtype, pd.CategoricalDtype) else None
    frame = conform_packets(frame, files, source=str(path))
    frame.index = pd.RangeIndex(len(frame))
    if columns is not None:
        frame = frame[list(columns)]
    if engine == "dask":
        return require_dask("read_packets(engine='dask')").from_pandas(frame, npartitions=1)
    return frame
