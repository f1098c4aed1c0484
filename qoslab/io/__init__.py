"""Reading RUN files and the foreign formats that become RUN.

:func:`load` sniffs the content, not the suffix: a qoslab RUN file, a run journal
(``.partial``), a flent ``.flent.gz`` file (format versions 1-4) or an original ping-exp
pickle.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

from ..errors import RunFormatError
from ..runs import JOURNAL_FORMAT, RUN_FORMAT, Run, read_journal, read_native

__all__ = ["load"]

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DOCUMENT = 2 << 30  # refuse to inflate more than 2 GiB of JSON


def load(path: str | os.PathLike) -> Run:
    """Load a RUN from a qoslab RUN file, a run journal, a flent file or a ping-exp file.

    Parameters
    ----------
    path
        File to read. The format is recognised from the content.

    Returns
    -------
    Run
        With ``meta["source"]`` naming the format it came from.

    Raises
    ------
    RunFormatError
        When the file is none of those formats or does not validate; the message names the
        file and the offending field.
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
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise RunFormatError(f"{path}: the file is empty; expected a RUN, flent or ping-exp file")
    if head.startswith(_GZIP_MAGIC):
        doc = _read_gzip_json(path)
        if isinstance(doc, dict) and doc.get("format") == RUN_FORMAT:
            run = read_native(doc, str(path))
            run.meta.setdefault("source", "qoslab")
            return run
        if isinstance(doc, dict) and {"x_values", "results", "metadata"} <= doc.keys():
            from .flent import read_flent

            return read_flent(doc, str(path))
        raise RunFormatError(
            f"{path}: gzipped JSON, but neither a qoslab RUN (format={RUN_FORMAT!r}) nor a flent "
            "file (keys metadata, results, x_values)"
        )
    if head.lstrip().startswith(b"{") and JOURNAL_FORMAT.encode() in head.split(b"\n", 1)[0]:
        run = read_journal(path)
        run.meta.setdefault("source", "qoslab-journal")
        return run
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}") or _is_pickle(path):
        from .pingexp import read_pingexp

        return read_pingexp(path)
    raise RunFormatError(
        f"{path}: not a qoslab RUN file (gzipped JSON), a run journal, a flent .flent.gz file or "
        "a ping-exp pickle"
    )


def _read_gzip_json(path: Path):
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read(_MAX_DOCUMENT + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise RunFormatError(f"{path}: damaged gzip stream ({exc})") from None
    if len(raw) > _MAX_DOCUMENT:
        raise RunFormatError(f"{path}: inflates to more than {_MAX_DOCUMENT} bytes; refusing")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFormatError(f"{path}: not JSON inside the gzip stream ({exc})") from None


def _is_pickle(path: Path, limit: int = 64 << 20) -> bool:
    """True when the whole file parses as one pickle opcode stream (parsed, never run)."""
    import io
    import pickletools

    if path.stat().st_size > limit:
        return False
    try:
        for _ in pickletools.genops(io.BytesIO(path.read_bytes())):
            pass
    except Exception:  # noqa: BLE001 - any parse failure means "not a pickle"
        return False
    return True
