"""Import the original ping-exp's saved files (``pingexp.py -w FILE``) as RUN.

ping-exp (Python 2) saved its results with ``pickle.dump(results, f)`` -- protocol 0, one plain
dict::

    {"experiments": {ID: {"responses": [(icmp_seq, ttl, time_ms), ...],
                          "losses": [icmp_seq, ...],
                          "summary": {"transmitted", "received", "packet_loss", "time"},
                          "rtt_summary": {"min", "avg", "max", "mdev"},
                          "host": str, "qos": int, "min": float, "max": float}, ...},
     "start-time": epoch, "end-time": epoch, "ping_count": int, "ping_interval": float}

``summary`` and ``rtt_summary`` are what ``ping`` itself printed (its "packets transmitted" and
``rtt min/avg/max/mdev`` lines); ``responses`` holds ping's per-reply times, rounded as ping
printed them, so figures recomputed from them differ slightly from ping's own.

What the import keeps, matching the original's figure:

* **time axis** -- ping-exp stored no send times. Its figure draws reply ``icmp_seq`` N (and a
  lost N) at ``N / (1 / interval)`` seconds, i.e. N × interval: ``t_sent`` is exactly that value
  (so the first probe sits at one interval, not at 0).
* **stream order** -- the figure walks ``sorted(experiments)``; the streams come in that order
  (and so do their colours and legend entries).
* **earlier versions** -- files of ping-exp before April 2011 have no ``losses`` list: the lost
  probes are ``1..transmitted`` (ping's count) less those answered, as the later versions
  computed it; files of April-May 2009 name one ``host`` for the run and three fixed
  experiments (``Default``, ``High priority``, ``Low priority``: TOS 0, 16, 8) without a ``qos``.
* **summary figures** -- its bars show ping's own ``packet_loss`` (an integer %), ``avg`` and
  ``mdev``. They are kept per stream in ``meta["reported_summary"]`` with ``"by": "ping"``
  (``loss_pct``, ``mean``, ``min``, ``max``, ``mdev``, ``sent``, ``received``), beside the
  figures qoslab recomputes from the samples (:func:`qoslab.analysis.summarize`). When ping
  printed no rtt line (every probe lost) ping-exp stored zeros; those are kept as missing.

Reading a pickle can run code, so this reader never uses :func:`pickle.load` on its own: it
first walks the opcodes with the opcode table of :mod:`pickletools` (a parser that builds nothing) and
rejects any opcode that names or calls a global, builds an object or asks for a persistent id,
and any memo index beyond what the file can have written (a memo bomb); only then does a
:class:`pickle.Unpickler` whose ``find_class`` refuses everything build the plain containers,
which are checked to be a tree (no shared or recursive containers) of bounded depth. Python 2
``str`` values (``STRING`` / ``BINSTRING`` opcodes) are byte strings, as typed on the command
line: they are read as UTF-8 text (what a Linux terminal sends, e.g. an experiment named
``Größe``), or as Latin-1 when they are not valid UTF-8. Python 2 sorted them as bytes, which is
the order of their code points either way.
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

import numpy as np
import pandas as pd

from .. import schema
from ..errors import (
    InputSizeLimitError,
    NestingDepthLimitError,
    ProbeLimitError,
    RunFormatError,
    SeriesLimitError,
)
from ..runs import Run
from .limits import (
    MAX_NESTING_DEPTH,
    MAX_ROWS,
    MAX_SERIES,
    check_implied_rows,
    read_regular_file,
)

__all__ = ["read_pingexp", "safe_unpickle", "pingexp_to_run", "FORBIDDEN_OPCODES",
           "MAX_PICKLE_BYTES"]

#: Opcodes that import, call or construct: a ping-exp file never contains them.
FORBIDDEN_OPCODES = frozenset({
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",
    "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID",
})
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
#: Largest ping-exp file read (400 probes × 1000 experiments is ~10 MB).
MAX_PICKLE_BYTES = 256 << 20
_EPOCH_RANGE = (0.0, 1e11)  # 1970 .. year 5138
#: The three experiments ping-exp ran before targets were given on its command line (its
#: April-May 2009 versions, which saved no TOS): their TOS bytes.
EARLY_EXPERIMENT_TOS = {"Default": 0, "High priority": 16, "Low priority": 8}
_PLAIN = (dict, list, tuple, str, bytes, int, float, bool, type(None))
_NUMBERS = frozenset({int, float, bool, type(None)})


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - refuses, always
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id")


def safe_unpickle(data: bytes, source: str = "pickle") -> Any:
    """Rebuild plain data (dict, list, tuple, str, numbers, None, bool) from a pickle.

    Raises
    ------
    RunFormatError
        When the pickle names a class or function, sets an impossible memo index, is not a
        valid pickle, or its containers are shared, recursive or nested deeper than
        :data:`~qoslab.io.limits.MAX_NESTING_DEPTH`; nothing in it runs.

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
    ops = 0
    try:
        for op, arg, pos in _opcodes(data):
            ops += 1
            if op.name in FORBIDDEN_OPCODES:
                named = f" names {arg!r}" if arg is not None else ""
                raise RunFormatError(
                    f"{source}: opcode {op.name} at byte {pos}{named}: a ping-exp file holds "
                    "only plain data; refusing it (nothing was run)")
            if op.name in _MEMO_PUTS and isinstance(arg, int) and not 0 <= arg <= ops:
                # a pickler numbers its memo 0, 1, 2 ...; a huge index only makes the
                # unpickler allocate a huge memo table
                raise RunFormatError(
                    f"{source}: opcode {op.name} at byte {pos} sets memo entry {arg} after "
                    f"{ops} opcodes; no pickler writes that (a memo bomb); refusing it")
    except RunFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - genops raises ValueError and others
        raise RunFormatError(f"{source}: not a valid pickle ({exc})") from None
    try:
        doc = _NoGlobals(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001
        raise RunFormatError(f"{source}: not a valid pickle of plain data ({exc})") from None
    _check_plain_tree(doc, source)
    return _text(doc)


def _opcodes(data: bytes):
    """:func:`pickletools.genops`, except that a protocol-0 ``STRING`` may hold any bytes.

    ``genops`` decodes a ``STRING`` argument as ASCII and so stops at the first non-ASCII
    character Python 2 wrote (``S'Gr\\xc3\\xb6\\xc3\\x9fe'``); here it is kept as bytes.
    """
    f = io.BytesIO(data)
    while True:
        pos = f.tell()
        code = f.read(1)
        op = pickletools.code2op.get(code.decode("latin-1"))
        if op is None:
            raise ValueError(f"no opcode {code!r} at byte {pos}" if code else
                             "pickle exhausted before seeing STOP")
        if op.arg is None:
            arg = None
        elif op.arg is pickletools.stringnl:
            arg = pickletools.read_stringnl(f, decode=False)
        else:
            arg = op.arg.reader(f)
        yield op, arg, pos
        if op.name == "STOP":
            return


def _text(node: Any) -> Any:
    """Python 2 byte strings -> text (UTF-8, else Latin-1); the tree is already checked."""
    if isinstance(node, bytes):
        try:
            return node.decode("utf-8")
        except UnicodeDecodeError:
            return node.decode("latin-1")
    if isinstance(node, dict):
        return {_text(k): _text(v) for k, v in node.items()}
    if isinstance(node, list):
        if set(map(type, node)) <= _NUMBERS:  # a list of sequence numbers: nothing to decode
            return node
        return [_text(v) for v in node]
    if isinstance(node, tuple):
        return tuple(_text(v) for v in node)
    return node


def _check_plain_tree(doc: Any, source: str) -> None:
    """Refuse non-plain values, shared or recursive containers and deep nesting (iterative)."""
    seen: set[int] = set()
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, _PLAIN):
            raise RunFormatError(f"{source}: holds a {type(node).__name__} value; a ping-exp "
                                 "file holds only dicts, lists, tuples, text and numbers")
        if isinstance(node, (dict, list, tuple)):
            if depth > MAX_NESTING_DEPTH:
                raise NestingDepthLimitError(f"{source}: containers nested more than "
                                             f"{MAX_NESTING_DEPTH} deep; the limit is "
                                             f"{MAX_NESTING_DEPTH}")
            if id(node) in seen:
                raise RunFormatError(f"{source}: a container appears twice (shared or "
                                     "recursive); ping-exp never wrote one")
            seen.add(id(node))
            if isinstance(node, dict):
                stack.extend((k, depth + 1) for k in node)
                stack.extend((v, depth + 1) for v in node.values())
            elif not set(map(type, node)) <= _NUMBERS:  # numbers need no look (C speed)
                stack.extend((v, depth + 1) for v in node)


def read_pingexp(path: str | os.PathLike, data: bytes | None = None) -> Run:
    """Load a file saved by the original ping-exp (``pingexp.py -w FILE``).

    Parameters
    ----------
    path
        The pickle file (protocol 0, 1 or 2, as Python 2 wrote it).
    data
        Its bytes, when already read.

    Returns
    -------
    Run
        One stream per experiment, labelled ``"ID: HOST tos=0x.."``, in the original's order
        (sorted by ID); ``meta["source"]`` is ``"ping-exp"``; ping's own summaries are in
        ``meta["reported_summary"]`` (see the module docstring).

    Raises
    ------
    RunFormatError
        For a pickle naming any class or function, or a field that is not what ping-exp wrote
        (the message names it).
    """
    path = Path(path)
    if data is None:
        data = read_regular_file(path, MAX_PICKLE_BYTES)
    elif len(data) > MAX_PICKLE_BYTES:
        raise InputSizeLimitError(f"{path}: {len(data)} bytes is more than the "
                                  f"{MAX_PICKLE_BYTES}-byte limit on ping-exp files")
    doc = safe_unpickle(data, str(path))
    return pingexp_to_run(doc, str(path))


def pingexp_to_run(doc: Any, source: str) -> Run:
    """Convert the unpickled ping-exp dict to a :class:`Run` (validating every field)."""
    if not isinstance(doc, dict) or "experiments" not in doc:
        raise RunFormatError(f"{source}: expected ping-exp's dict with an 'experiments' entry")
    exps = doc["experiments"]
    if not isinstance(exps, dict):
        raise RunFormatError(f"{source}: experiments: expected a dict by experiment id")
    if len(exps) > MAX_SERIES:
        raise SeriesLimitError(f"{source}: experiments: {len(exps)} experiments; the limit is "
                               f"{MAX_SERIES}")
    interval = _positive(doc.get("ping_interval", 0.2), f"{source}: ping_interval")
    count = doc.get("ping_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                              or count < 0):
        raise RunFormatError(f"{source}: ping_count: expected a count, got {count!r}")
    bad_id = next((k for k in exps if not isinstance(k, (str, int))), None)
    if bad_id is not None:
        raise RunFormatError(f"{source}: experiments: id {bad_id!r} is not text")
    ids = sorted(exps, key=lambda k: (not isinstance(k, int), k))  # Python 2: ints first
    present = sum(_records(exps[i]) for i in ids)
    check_implied_rows(source, ((f"experiments[{i!r}]", _implied_losses(exps[i], count),
                                 "ping's count of probes sent (summary.transmitted, else "
                                 "ping_count) less those answered")
                                for i in ids), present)
    total = sum(_planned_rows(e, count) for e in exps.values() if isinstance(e, dict))
    if total > MAX_ROWS:
        raise ProbeLimitError(f"{source}: {total} responses and losses (counting the losses "
                              f"ping's counts imply); the limit is {MAX_ROWS}")
    frames, targets, summaries, reported = [], [], {}, {}
    rows = 0
    for ident in ids:
        exp = exps[ident]
        where = f"{source}: experiments[{ident!r}]"
        if not isinstance(exp, dict):
            raise RunFormatError(f"{where}: expected a dict")
        # ping-exp of April-May 2009 kept one host for the run, beside three fixed experiments
        host = exp.get("host", doc.get("host"))
        if not isinstance(host, str):
            raise RunFormatError(f"{where}.host: expected text, got {host!r}")
        tos = exp.get("qos", EARLY_EXPERIMENT_TOS.get(ident, 0))
        if isinstance(tos, str):  # ping-exp kept the -t field as typed, e.g. '16' or '010'
            tos = _py2_int(tos, f"{where}.qos")
        if not isinstance(tos, int) or isinstance(tos, bool) or not 0 <= tos <= 255:
            raise RunFormatError(f"{where}.qos: expected a TOS byte, got {tos!r}")
        label = f"{ident}: {schema.stream_label(host, tos)}"
        frame = _experiment_rows(exp, where, label, host, tos, interval, count,
                                 room=MAX_ROWS - rows, source=source)
        rows += len(frame)
        frames.append(frame)
        targets.append({"stream": label, "id": str(ident), "host": host, "tos": tos})
        summaries[str(ident)] = {k: exp.get(k) for k in ("summary", "rtt_summary", "min", "max")}
        reported[label] = _reported(exp, where)
    probes = pd.concat(frames, ignore_index=True) if frames else schema.empty_probes()
    meta = {
        "source": "ping-exp",
        "start_time": _iso(doc.get("start-time"), f"{source}: start-time"),
        "end_time": _iso(doc.get("end-time"), f"{source}: end-time"),
        "interval": interval,
        "count": count,
        "targets": targets,
        "pingexp_summary": summaries,
        "reported_summary": reported,
        "time_axis": "t_sent = icmp_seq × interval, as ping-exp's figure placed each probe "
                     "(it saved no send times)",
    }
    return Run(probes, schema.empty_events(), meta)


def _experiment_rows(exp: dict, where: str, label: str, host: str, tos: int,
                     interval: float, count: int | None = None, *, room: int = MAX_ROWS,
                     source: str = "") -> pd.DataFrame:
    """The PROBES rows of one experiment; at most ``room`` rows (what the file's earlier
    experiments left of :data:`~qoslab.io.limits.MAX_ROWS`)."""
    responses = exp.get("responses", [])
    if not isinstance(responses, (list, tuple)):
        raise RunFormatError(f"{where}.responses: expected a list of (icmp_seq, ttl, time_ms)")
    losses = exp.get("losses")
    if losses is None:  # before April 2011 ping-exp kept no list of losses
        losses = _lost_sequence_numbers(exp, responses, where, count,
                                        room=room - len(responses), source=source)
    if not isinstance(losses, (list, tuple, np.ndarray)):
        raise RunFormatError(f"{where}.losses: expected a list of icmp_seq numbers")
    seqs, ttls, rtts, dup, seen = [], [], [], [], set()
    for i, r in enumerate(responses):
        if (not isinstance(r, (list, tuple)) or len(r) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)):
            raise RunFormatError(f"{where}.responses[{i}]: expected (icmp_seq, ttl, time_ms), "
                                 f"got {r!r}")
        seq, ttl, ms = r
        if not isinstance(seq, int) or not 0 <= seq < 2**32:
            raise RunFormatError(f"{where}.responses[{i}]: icmp_seq {seq!r} is not a sequence "
                                 "number")
        if not isinstance(ttl, int) or not 0 <= ttl <= 255:
            raise RunFormatError(f"{where}.responses[{i}]: ttl {ttl!r} is not in 0..255")
        if not (math.isfinite(ms) and 0 <= ms <= 1e9):
            raise RunFormatError(f"{where}.responses[{i}]: time {ms!r} ms is not a round-trip "
                                 "time")
        seqs.append(seq)
        ttls.append(ttl)
        rtts.append(float(ms))
        dup.append(seq in seen)
        seen.add(seq)
    if isinstance(losses, np.ndarray):
        lost = losses
    else:
        for i, seq in enumerate(losses):
            if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**32:
                raise RunFormatError(f"{where}.losses[{i}]: expected an icmp_seq number, got "
                                     f"{seq!r}")
        lost = np.asarray(losses, np.int64)
    lost = lost[~np.isin(lost, np.fromiter(seen, np.int64, len(seen)))]
    n_ok = len(seqs)
    if n_ok + len(lost) > room:
        raise ProbeLimitError(f"{source or where}: more than {MAX_ROWS} probes in the file, the "
                              "limit on rows in one file")
    seq = np.concatenate([np.asarray(seqs, np.int64), lost])
    dups = np.concatenate([np.asarray(dup, bool), np.zeros(len(lost), bool)])
    order = np.lexsort((dups, seq))  # by icmp_seq, a duplicate after its first answer
    status = np.empty(len(seq), object)
    status[:n_ok] = np.where(np.asarray(dup, bool), "duplicate", "ok")
    status[n_ok:] = "lost"
    ttl = pd.array(np.concatenate([np.asarray(ttls, np.int64),
                                   np.zeros(len(lost), np.int64)]), "Int64")
    ttl[n_ok:] = pd.NA
    rtt = np.concatenate([np.asarray(rtts, float), np.full(len(lost), np.nan)])
    seq = seq[order]
    step = 1 / interval  # the original's x: icmp_seq / (1 / ping_interval)
    return pd.DataFrame({
        "stream": label, "host": host, "tos": tos, "size": pd.NA,
        "seq": seq, "t_sent": seq / step, "rtt_ms": rtt[order], "status": status[order],
        "ttl": ttl[order],
    }, columns=list(schema.PROBES))


def _records(exp: Any) -> int:
    """The probe records an experiment holds: its responses and listed losses."""
    if not isinstance(exp, dict):
        return 0
    return sum(len(v) for v in (exp.get("responses"), exp.get("losses"))
               if isinstance(v, (list, tuple)))


def _implied_losses(exp: Any, count: int | None) -> int:
    """Lost probes an experiment only implies: for a file without a list of losses (before
    April 2011), ping's count of probes sent less the sequence numbers 1..sent answered."""
    if not isinstance(exp, dict) or exp.get("losses") is not None:
        return 0
    summary = exp.get("summary")
    sent = summary.get("transmitted") if isinstance(summary, dict) else None
    sent = count if sent is None else sent
    if isinstance(sent, bool) or not isinstance(sent, int) or sent <= 0:
        return 0  # nothing implied (a wrong type is refused, naming the field, when built)
    responses = exp.get("responses")
    answered = {r[0] for r in responses if isinstance(r, (list, tuple)) and r
                and isinstance(r[0], int) and not isinstance(r[0], bool)
                and 0 < r[0] <= sent} if isinstance(responses, (list, tuple)) else ()
    return sent - len(answered)


def _planned_rows(exp: dict, count: int | None) -> int:
    """At least how many rows an experiment makes (before any is built): its responses and
    losses, or, for a file without a list of losses, what ping's count of probes implies."""
    responses = exp.get("responses") or ()
    losses = exp.get("losses")
    n = len(responses) if isinstance(responses, (list, tuple)) else 0
    if isinstance(losses, (list, tuple)):
        return n + len(losses)
    summary = exp.get("summary")
    sent = summary.get("transmitted") if isinstance(summary, dict) else None
    sent = count if sent is None else sent
    if isinstance(sent, int) and not isinstance(sent, bool):
        return max(n, min(sent, MAX_ROWS + 1))
    return n


def _lost_sequence_numbers(exp: dict, responses: Any, where: str,
                           count: int | None = None, *, room: int = MAX_ROWS,
                           source: str = "") -> np.ndarray:
    """What ping-exp's ``find_lost_sequence_numbers`` later computed: ``1..transmitted``
    (ping's count) less the sequence numbers answered. Without ping's summary (its loss line
    did not match those versions' pattern, e.g. a newer ping's ``17.5%``) the run's ``-c``.
    Refused before anything is built when they would be more than ``room`` rows."""
    summary = exp.get("summary")
    sent = summary.get("transmitted") if isinstance(summary, dict) else None
    if sent is None:
        sent = count
    if sent is None:
        return np.zeros(0, np.int64)  # nothing says how many were sent
    if isinstance(sent, bool) or not isinstance(sent, int) or not 0 <= sent <= MAX_ROWS:
        raise RunFormatError(f"{where}.summary.transmitted: expected a probe count, got "
                             f"{sent!r}")
    if sent - len(responses) > room:
        raise ProbeLimitError(f"{source or where}: the experiments' counts imply more than "
                              f"{MAX_ROWS} probes, the limit on rows in one file")
    lost = np.ones(sent + 1, bool)
    lost[0] = False
    for r in responses:
        if isinstance(r, (list, tuple)) and r and isinstance(r[0], int) \
                and not isinstance(r[0], bool) and 0 < r[0] <= sent:
            lost[r[0]] = False
    return np.flatnonzero(lost)


def _reported(exp: dict, where: str) -> dict[str, Any]:
    """ping's own figures for one experiment (what the original's bars show)."""
    out: dict[str, Any] = {"by": "ping"}
    summary = exp.get("summary")
    rtt = exp.get("rtt_summary")
    if summary is not None:
        if not isinstance(summary, dict):
            raise RunFormatError(f"{where}.summary: expected a dict")
        for key, name, high in (("transmitted", "sent", 2**32), ("received", "received", 2**32),
                                ("packet_loss", "loss_pct", 100)):
            v = summary.get(key)
            if v is not None and not (_is_number(v) and 0 <= v <= high):
                raise RunFormatError(f"{where}.summary.{key}: {v!r} is not a number in "
                                     f"0..{high}")
            out[name] = v
    if rtt is not None:
        if not isinstance(rtt, dict):
            raise RunFormatError(f"{where}.rtt_summary: expected a dict")
        values = {}
        for key, name in (("min", "min"), ("avg", "mean"), ("max", "max"), ("mdev", "mdev")):
            v = rtt.get(key)
            if v is not None and not (_is_number(v) and math.isfinite(v) and 0 <= v <= 1e9):
                raise RunFormatError(f"{where}.rtt_summary.{key}: {v!r} is not a time in ms")
            values[name] = v
        # ping prints no rtt line when nothing came back; ping-exp then stored zeros
        nothing_back = out.get("received") == 0 and all(not v for v in values.values())
        out.update({k: (None if nothing_back else v) for k, v in values.items()})
    return out


def _py2_int(text: str, where: str) -> int:
    """The TOS ping-exp pinged with: ``-Q %i`` of Python 2's ``int(qos)``, i.e. base 10
    (``'010'`` is 10); a hexadecimal ``'0x10'`` (which the original could not run) is read too."""
    if "_" not in text:  # Python 2's int() knew no digit separators
        for base in (10, 0):
            try:
                return int(text.strip(), base)
            except ValueError:
                continue
    raise RunFormatError(f"{where}: expected a TOS number, got {text!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _positive(value: Any, where: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not value > 0):
        raise RunFormatError(f"{where}: expected a positive number, got {value!r}")
    return float(value)


def _iso(epoch: Any, where: str) -> str | None:
    if epoch is None:
        return None
    if (isinstance(epoch, bool) or not isinstance(epoch, (int, float))
            or not _EPOCH_RANGE[0] <= epoch <= _EPOCH_RANGE[1]):
        raise RunFormatError(f"{where}: expected epoch seconds, got {epoch!r}")
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).isoformat()
