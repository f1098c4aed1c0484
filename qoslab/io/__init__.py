"""Reading RUN files and the foreign formats that become RUN.

:func:`load` sniffs the content, not the suffix: a qoslab RUN file, a run journal
(``.partial``), a flent ``.flent.gz`` file (format versions 1-4) or an original ping-exp
pickle.
"""

from __future__ import annotations

import io
import os
import pickletools
from pathlib import Path

from ..errors import QoslabError, RunFormatError, SeriesLimitError
from ..runs import JOURNAL_FORMAT, RUN_FORMAT, Run, read_journal, read_native
from ..schema import check_values
from .limits import MAX_SERIES, inflate, parse_json, read_regular_file
from .run_tables import attach

__all__ = ["load"]

_GZIP_MAGIC = b"\x1f\x8b"


def load(path: str | os.PathLike) -> Run:
    """Load a RUN from a qoslab RUN file, a run journal, a flent file or a ping-exp file.

    Parameters
    ----------
    path
        File to read. The format is recognised from the content.

    Returns
    -------
    Run
        With ``meta["source"]`` naming the format it came from. A RUN whose per-packet
        tables were written to a Parquet dataset (``qoslab replay --per-packet``) is a
        :class:`~qoslab.io.run_tables.DatasetRun`: its ``probes`` and ``decisions`` are read
        from the dataset when first used.

    Raises
    ------
    RunFormatError
        When the file is none of those formats or does not validate; the message names the
        file and the offending field. A file over one of the loading limits raises a
        :class:`~qoslab.errors.ResourceLimitError` subclass (see :mod:`qoslab.io.limits`).
        Devices, FIFOs and sockets are refused before anything is read.
    FileNotFoundError
        When ``path`` does not exist.

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> run.streams
    ['Ping (ms) ICMP', 'Ping (ms) UDP']
    """
    path = Path(path)
    try:
        data = read_regular_file(path)
    except (IsADirectoryError, PermissionError) as exc:
        raise RunFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        run = _load_bytes(path, data)
        if run.meta.get("per_packet"):
            for table in ("events", "samples"):  # per-packet tables: checked when read
                check_values(getattr(run, table), table, source=str(path))
            return attach(run, path)
        for table in ("probes", "events", "samples", "decisions"):
            check_values(getattr(run, table), table, source=str(path))
        if run.probes["stream"].nunique() > MAX_SERIES:
            raise SeriesLimitError(f"{path}: {run.probes['stream'].nunique()} streams; the "
                                   f"limit is {MAX_SERIES}")
        return run
    except QoslabError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError,
            RecursionError) as exc:
        # a last line of defence: every reader validates its fields and names them; this
        # keeps anything they missed from surfacing as a traceback from deep inside
        raise RunFormatError(f"{path}: unexpected content ({type(exc).__name__}: {exc})") \
            from None


def _load_bytes(path: Path, data: bytes) -> Run:
    head = data[:4096]
    if not head:
        raise RunFormatError(f"{path}: the file is empty; expected a RUN, flent or ping-exp file")
    if head.startswith(_GZIP_MAGIC):
        constants: list[str] = []
        doc = parse_json(inflate(data, str(path)), str(path), allow_nan=True,
                         constants=constants)
        if isinstance(doc, dict) and doc.get("format") == RUN_FORMAT:
            if constants:
                raise RunFormatError(f"{path}: holds a {constants[0]} literal; a RUN file never "
                                     "does (qoslab writes missing values as null)")
            run = read_native(doc, str(path))
            run.meta.setdefault("source", "qoslab")
            return run
        if isinstance(doc, dict) and {"x_values", "results", "metadata"} <= doc.keys():
            from .flent import read_flent  # lazy: flent files only

            return read_flent(doc, str(path))
        raise RunFormatError(
            f"{path}: gzipped JSON, but neither a qoslab RUN (format={RUN_FORMAT!r}) nor a flent "
            "file (keys metadata, results, x_values)"
        )
    if head.lstrip().startswith(b"{") and JOURNAL_FORMAT.encode() in head.split(b"\n", 1)[0]:
        run = read_journal(path, data)
        run.meta.setdefault("source", "qoslab-journal")
        return run
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}") or _is_pickle(data):
        from .pingexp import read_pingexp  # lazy: ping-exp pickles only

        return read_pingexp(path, data)
    raise RunFormatError(
        f"{path}: not a qoslab RUN file (gzipped JSON), a run journal, a flent .flent.gz file or "
        "a ping-exp pickle"
    )


def _is_pickle(data: bytes, limit: int = 64 << 20) -> bool:
    """True when the whole file parses as one pickle opcode stream (parsed, never run)."""
    if len(data) > limit:
        return False
    try:
        for _ in pickletools.genops(io.BytesIO(data)):
            pass
    except Exception:  # noqa: BLE001 - any parse failure means "not a pickle"
        return False
    return True
