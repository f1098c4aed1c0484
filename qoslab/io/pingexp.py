"""Import the original ping-exp's saved files (``pingexp.py -w FILE``) as RUN.

ping-exp (Python 2) pickled one plain dict::

    {"experiments": {ID: {"responses": [(icmp_seq, ttl, time_ms), ...],
                          "losses": [icmp_seq, ...],
                          "summary": {"transmitted", "received", "packet_loss", "time"},
                          "rtt_summary": {"min", "avg", "max", "mdev"},
                          "host": str, "qos": int, "min": float, "max": float}, ...},
     "start-time": epoch, "end-time": epoch, "ping_count": int, "ping_interval": float}

Reading a pickle can run code, so this reader never uses :func:`pickle.load` on its own: it
first walks the opcodes with :func:`pickletools.genops` (a parser that builds nothing) and
rejects any opcode that names or calls a global, builds an object or asks for a persistent id;
only then does a :class:`pickle.Unpickler` whose ``find_class`` refuses everything build the
plain containers. Python 2 ``str`` values (``STRING`` / ``SHORT_BINSTRING`` opcodes) are read as
Latin-1 text.

ping-exp saved no send times and no packet size: ``t_sent`` is ``(icmp_seq - 1) * interval``
(its figure's time axis) and ``size`` is missing.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import RunFormatError
from ..runs import Run

__all__ = ["read_pingexp", "safe_unpickle", "FORBIDDEN_OPCODES"]

#: Opcodes that import, call or construct: a ping-exp file never contains them.
FORBIDDEN_OPCODES = frozenset({
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",
    "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID",
})
_MAX_BYTES = 1 << 30


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - refuses, always
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id")


def safe_unpickle(data: bytes, source: str = "pickle") -> Any:
    """Rebuild plain data (dict, list, tuple, str, bytes, numbers, None, bool) from a pickle.

    Raises
    ------
    RunFormatError
        When the pickle names a class or function, or is not a valid pickle; nothing in it runs.

    Examples
    --------
    >>> safe_unpickle(b"(dp0\\nS'a'\\np1\\nI1\\ns.")
    {'a': 1}
    >>> safe_unpickle(b"cos\\nsystem\\n(S'echo hi'\\ntR.")
    Traceback (most recent call last):
    ...
    qoslab.errors.RunFormatError: pickle: opcode GLOBAL at byte 0 names 'os system': a ping-exp \
file holds only plain data; refusing it (nothing was run)
    """
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(data)):
            if op.name in FORBIDDEN_OPCODES:
                named = f" names {arg!r}" if arg is not None else ""
                raise RunFormatError(
                    f"{source}: opcode {op.name} at byte {pos}{named}: a ping-exp file holds "
                    "only plain data; refusing it (nothing was run)")
    except RunFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - genops raises ValueError and others
        raise RunFormatError(f"{source}: not a valid pickle ({exc})") from None
    try:
        return _NoGlobals(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001
        raise RunFormatError(f"{source}: not a valid pickle of plain data ({exc})") from None


def read_pingexp(path: str | os.PathLike) -> Run:
    """Load a file saved by the original ping-exp (``pingexp.py -w FILE``).

    Parameters
    ----------
    path
        The pickle file (protocol 0, 1 or 2, as Python 2 wrote it).

    Returns
    -------
    Run
        One stream per experiment, labelled ``"ID: HOST tos=0x.."``; ``meta["source"]`` is
        ``"ping-exp"`` and ping-exp's own summaries are kept in ``meta["pingexp_summary"]``.

    Raises
    ------
    RunFormatError
        For a pickle naming any class or function, or a field that is not what ping-exp wrote
        (the message names it).
    """
    path = Path(path)
    size = path.stat().st_size
    if size > _MAX_BYTES:
        raise RunFormatError(f"{path}: {size} bytes is too large for a ping-exp file")
    doc = safe_unpickle(path.read_bytes(), str(path))
    return pingexp_to_run(doc, str(path))


def pingexp_to_run(doc: Any, source: str) -> Run:
    """Convert the unpickled ping-exp dict to a :class:`Run` (validating every field)."""
    doc = _text_keys(doc)
    if not isinstance(doc, dict) or "experiments" not in doc:
        raise RunFormatError(f"{source}: expected ping-exp's dict with an 'experiments' entry")
    exps = doc["experiments"]
    if not isinstance(exps, dict):
        raise RunFormatError(f"{source}: experiments: expected a dict by experiment id")
    interval = _number(doc.get("ping_interval", 0.2), f"{source}: ping_interval")
    start = doc.get("start-time")
    frames, targets, summaries = [], [], {}
    for ident, exp in exps.items():
        where = f"{source}: experiments[{ident!r}]"
        if not isinstance(exp, dict):
            raise RunFormatError(f"{where}: expected a dict")
        host = exp.get("host")
        if not isinstance(host, str):
            raise RunFormatError(f"{where}.host: expected text, got {host!r}")
        tos = exp.get("qos", 0)
        if isinstance(tos, str):
            try:
                tos = int(tos, 0)
            except ValueError:
                raise RunFormatError(f"{where}.qos: expected a TOS number, got {tos!r}") from None
        if not isinstance(tos, int) or not 0 <= tos <= 255:
            raise RunFormatError(f"{where}.qos: expected a TOS byte, got {tos!r}")
        label = f"{ident}: {schema.stream_label(host, tos)}"
        frames.append(_experiment_rows(exp, where, label, host, tos, interval))
        targets.append({"stream": label, "id": str(ident), "host": host, "tos": tos})
        summaries[str(ident)] = {k: exp.get(k) for k in ("summary", "rtt_summary", "min", "max")}
    probes = pd.concat(frames, ignore_index=True) if frames else schema.empty_probes()
    meta = {
        "source": "ping-exp",
        "start_time": _iso(start, f"{source}: start-time"),
        "end_time": _iso(doc.get("end-time"), f"{source}: end-time"),
        "interval": interval,
        "count": doc.get("ping_count"),
        "targets": targets,
        "pingexp_summary": summaries,
        "time_axis": "t_sent = (icmp_seq - 1) * interval (ping-exp saved no send times)",
    }
    return Run(probes, schema.empty_events(), meta)


def _experiment_rows(exp: dict, where: str, label: str, host: str, tos: int,
                     interval: float) -> pd.DataFrame:
    responses = exp.get("responses", [])
    losses = exp.get("losses", [])
    if not isinstance(responses, (list, tuple)):
        raise RunFormatError(f"{where}.responses: expected a list of (icmp_seq, ttl, time_ms)")
    if not isinstance(losses, (list, tuple)):
        raise RunFormatError(f"{where}.losses: expected a list of icmp_seq numbers")
    rows, seen = [], set()
    for i, r in enumerate(responses):
        if (not isinstance(r, (list, tuple)) or len(r) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)):
            raise RunFormatError(f"{where}.responses[{i}]: expected (icmp_seq, ttl, time_ms), "
                                 f"got {r!r}")
        seq, ttl, ms = int(r[0]), int(r[1]), float(r[2])
        rows.append((seq, ttl, ms, "duplicate" if seq in seen else "ok"))
        seen.add(seq)
    for i, seq in enumerate(losses):
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise RunFormatError(f"{where}.losses[{i}]: expected an icmp_seq number, got {seq!r}")
        if seq not in seen:
            rows.append((seq, None, math.nan, "lost"))
    rows.sort(key=lambda r: (r[0], r[3] == "duplicate"))
    return pd.DataFrame({
        "stream": label, "host": host, "tos": tos, "size": pd.NA,
        "seq": [r[0] for r in rows], "t_sent": [(r[0] - 1) * interval for r in rows],
        "rtt_ms": [r[2] for r in rows], "status": [r[3] for r in rows],
        "ttl": [r[1] for r in rows],
    }, columns=list(schema.PROBES))


def _text_keys(value: Any) -> Any:
    """Decode bytes keys and values (a pickle read with ``encoding='bytes'``) to text."""
    if isinstance(value, dict):
        return {_text_keys(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_text_keys(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin1")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise RunFormatError(f"{where}: expected a positive number, got {value!r}")
    return float(value)


def _iso(epoch: Any, where: str) -> str | None:
    if epoch is None:
        return None
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        raise RunFormatError(f"{where}: expected epoch seconds, got {epoch!r}")
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).isoformat()
