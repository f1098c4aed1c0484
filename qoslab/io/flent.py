"""Import flent ``.flent.gz`` files (data format versions 1-4) as RUN: every series.

A flent file holds, per series, the raw records its runner parsed (``raw_values``) and flent's
own resampling of them onto a common time grid (``results`` over ``x_values``). The import
keeps every measured value:

* **latency series → PROBES**: ICMP series (fping / ping runners, records ``{t, val, seq}``),
  irtt UDP series and the irtt-based VoIP stream (records add ``owd_up``, ``owd_down``,
  ``ipdv``, ``ipdv_up``, ``ipdv_down``; a lost irtt record has ``lost: true``, ``lost_dir`` and
  no ``val``), netperf UDP_RR "pings". One-way delays and jitter become the extra columns
  ``owd_up_ms``, ``owd_down_ms``, ``ipdv_ms``, ``ipdv_up_ms``, ``ipdv_down_ms`` and
  ``lost_direction`` (irtt's ``up``, ``down``, or ``unknown`` where irtt said only ``true``).
* **everything else measured → SAMPLES** (:data:`qoslab.schema.SAMPLES`): the throughput of
  each netperf / iperf stream (``val``, over ``dur`` seconds → ``span_s``), and every other
  numeric field of their records as its own metric -- the TCP socket statistics of
  ``--socket-stats`` (``tcp_rtt``, ``tcp_rtt_var``, ``tcp_cwnd``, ``tcp_delivery_rate``,
  ``tcp_pacing_rate``, BBR's state) and CPU statistics (``cpu0``..., ``load``).
* **series flent computed → SAMPLES with** ``computed=True``: aggregates (``TCP upload sum``,
  ``... avg``, ``... fairness``, ``TCP totals``, ``Ping (ms) avg``) and derived series with no
  raw records of their own (``VoIP::delay``, ``VoIP::jitter``, ``VoIP::loss``,
  ``VoIP::induced_delay``), taken from ``results`` on flent's grid. A derived series that only
  resamples a field already loaded from the raw records (``TCP upload::tcp_rtt``) is not
  loaded twice.
* **load start/stop → EVENTS**: each load stream's first sample minus its span, and its last.
* **TOS**: what flent recorded per stream -- netperf's ``DATA_TOS`` / ``UPSTREAM_TOS`` (its
  ``4294967295`` means "unknown"), else the marking in the command line (netperf ``-Y``, fping
  ``-O``, ping ``-Q``, irtt ``--dscp``, iperf ``--tos``; names such as ``EF`` or ``CS1`` as
  flent maps them). A command of one of these tools with no marking sent TOS 0 (the tools set
  none, so the socket's default applies): rrul's unmarked "BE" and ICMP streams are 0x00.
  Series with no command (flent's sums and averages) have no TOS.

Decisions, documented:

* Times are seconds from the test start ``T0``. Version 2 files write ``T0`` without a zone, in
  the local time of the machine that ran flent, which is unknowable; then the start is the
  earliest raw timestamp of any series (flent's own x-axis starts there too).
* A per-probe record's ``t`` is when its reply arrived (fping and ``ping -D`` print the time
  on receipt, irtt records its client's receive clock); ``t_sent`` is that time minus the RTT,
  so each probe sits where it was sent -- flent's own plots draw it one RTT later. A lost
  irtt record's ``t`` is already its send time; netperf UDP_RR intervals keep their end time.
* flent's ping runner keeps only answered ICMP probes. Sequence numbers missing between the
  first and the last one seen are added as ``lost`` rows (``t_sent`` interpolated on the
  series' step), so loss is visible; for fping, whose command says how many it sent
  (``-c N``: sequence numbers 0 to N-1, every ``-p`` ms), the unanswered ones before the first
  and after the last reply too; irtt lost records are kept as ``lost`` rows as flent
  recorded them. A ``val`` of NaN is flent's "no value" and becomes a ``lost`` row too.
* Series with no records at all (a host that never answered) are listed in
  ``meta["empty_series"]``.
* **metadata**: the test, title, note, hosts, step, lengths, IP version, flent version and
  kernel are named fields of META; ``meta["flent_series_meta"]`` keeps each series' own
  metadata (its command line, the tool's summary figures, netperf's TCP_INFO ...) and
  ``meta["flent_metadata"]`` everything else flent recorded, unchanged (its
  ``RECORDED_SETTINGS``, the egress interface's qdiscs and their statistics after the run,
  sysctls, remote hosts' facts ...).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ProbeLimitError, RunFormatError, SeriesLimitError
from ..runs import Run
from .flent_compat import upgrade
from .limits import MAX_ROWS, MAX_SERIES, check_implied_rows, finite

__all__ = ["read_flent", "FLENT_VERSIONS", "MARKINGS", "METRIC_UNITS"]

#: flent data-format versions this importer understands.
FLENT_VERSIONS = (1, 2, 3, 4)

#: flent's marking names -> TOS byte (flent's runners.MARKING_MAP).
MARKINGS: dict[str, int] = {
    "AF11": 0x28, "AF12": 0x30, "AF13": 0x38, "AF21": 0x48, "AF22": 0x50, "AF23": 0x58,
    "AF31": 0x68, "AF32": 0x70, "AF33": 0x78, "AF41": 0x88, "AF42": 0x90, "AF43": 0x98,
    "CS0": 0x00, "CS1": 0x20, "CS2": 0x40, "CS3": 0x60, "CS4": 0x80, "CS5": 0xA0,
    "CS6": 0xC0, "CS7": 0xE0, "EF": 0xB8,
}

#: Units of the record fields that are not ``val`` (flent's tcp_stats.inc axis labels).
METRIC_UNITS: dict[str, str] = {
    "tcp_rtt": "ms", "tcp_rtt_var": "ms", "tcp_cwnd": "packets", "tcp_bbr_mrtt": "ms",
    "tcp_delivery_rate": "Mbit/s", "tcp_pacing_rate": "Mbit/s", "tcp_bbr_bw": "Mbit/s",
    "tcp_bbr_pacing_gain": "ratio", "tcp_bbr_cwnd_gain": "ratio", "load": "load average",
    # series flent derives as NAME::KEY (voip.inc)
    "delay": "ms", "jitter": "ms", "induced_delay": "ms", "rtt": "ms", "loss": "packets",
    "bitrate": "kbit/s", "fairness": "Jain index", "size": "bytes",
}

#: Per-packet latency fields of irtt records -> PROBES extra column (milliseconds).
_EXTRA_MS = {"owd_up": "owd_up_ms", "owd_down": "owd_down_ms", "ipdv": "ipdv_ms",
             "ipdv_up": "ipdv_up_ms", "ipdv_down": "ipdv_down_ms"}
_RATE_UNITS = {"mbits/s": "Mbit/s", "mbit/s": "Mbit/s", "kbits/s": "kbit/s", "kbps": "kbit/s",
               "kbit/s": "kbit/s", "bits/s": "bit/s"}
_NOT_METRICS = {"t", "seq", "dur", "val", "lost", "lost_dir"}
_COMPUTED_RUNNERS = {"SumRunner", "AverageRunner", "FairnessRunner", "DiffMinRunner",
                     "NullRunner", "SmoothAverageRunner", "RatioRunner"}
_MARKING_RE = re.compile(r"(?:^|\s)(?:-Y|-O|-Q)\s*([\w.]+)|--(?:dscp|tos)[= ]([\w.]+)")
#: Tools flent runs that send TOS 0 unless its command line marks them.
_UNMARKED_IS_ZERO = frozenset({"fping", "fping6", "ping", "ping6", "irtt", "netperf", "iperf"})


def read_flent(doc: dict[str, Any], source: str) -> Run:
    """Convert a parsed flent document to a :class:`~qoslab.runs.Run`.

    Parameters
    ----------
    doc
        The JSON object of a ``.flent.gz`` file.
    source
        File name for error messages.

    Returns
    -------
    Run
        PROBES for the latency series, SAMPLES for every other series (see the module
        docstring), EVENTS for load start/stop.

    Raises
    ------
    RunFormatError
        A field flent never writes that way (named); ``SeriesLimitError`` /
        ``ProbeLimitError`` past the limits of :mod:`qoslab.io.limits`.
    """
    version = doc.get("version")
    if version not in FLENT_VERSIONS:
        raise RunFormatError(f"{source}: version: flent format {version!r} is not one of "
                             f"{FLENT_VERSIONS}")
    if not isinstance(doc.get("metadata"), dict):
        raise RunFormatError(f"{source}: metadata: expected an object")
    if doc.get("raw_values") is None and version >= 2:
        raise RunFormatError(f"{source}: raw_values: missing (flent format {version})")
    raw, meta_in, fake_raw = upgrade(doc, version)  # as flent itself reads an older format
    raw = raw or {}
    if not isinstance(raw, dict):
        raise RunFormatError(f"{source}: raw_values: expected an object of series")
    results = doc.get("results") or {}
    x_values = doc.get("x_values") or []
    if not isinstance(results, dict) or not isinstance(x_values, list):
        raise RunFormatError(f"{source}: results/x_values: expected an object and a list")
    series_meta = meta_in.get("SERIES_META") or {}
    if not isinstance(series_meta, dict):
        raise RunFormatError(f"{source}: metadata.SERIES_META: expected an object")
    step = meta_in.get("STEP_SIZE") or 0.2
    if not finite(step) or not 0 < step <= 3600:
        raise RunFormatError(f"{source}: metadata.STEP_SIZE: expected seconds, got {step!r}")
    step = float(step)
    names = set(raw) | set(results)
    if len(names) > MAX_SERIES:
        raise SeriesLimitError(f"{source}: {len(names)} series; the limit is {MAX_SERIES}")
    for name, recs in raw.items():
        if not isinstance(recs, list):
            raise RunFormatError(f"{source}: raw_values[{name!r}]: expected a list of records")
    rows = sum(len(v) for v in raw.values()) + len(x_values) * len(results)
    if rows > MAX_ROWS:
        raise ProbeLimitError(f"{source}: {rows} records; the limit is {MAX_ROWS}")
    smetas = {name: _smeta(series_meta, name, source) for name in names}

    latency = {name: recs for name, recs in raw.items()
               if _is_latency_series(name, recs, smetas[name])}
    t0 = _start_epoch(meta_in, raw, source)

    probes = _probes(latency, smetas, t0, step, source)
    measured = {name: recs for name, recs in raw.items() if recs and name not in latency}
    samples = [_raw_samples(name, recs, smetas[name], t0, f"{source}: raw_values[{name!r}]")
               for name, recs in measured.items()]
    loaded_fields = {(name, key) for name, recs in raw.items() for key in _fields(recs)}
    computed = [name for name in results
                if not raw.get(name) and not _resamples_loaded(name, loaded_fields)]
    samples += [_computed_samples(name, results[name], x_values, smetas[name],
                                  f"{source}: results[{name!r}]") for name in computed]
    samples_df = (pd.concat([s for s in samples if len(s)], ignore_index=True)
                  if any(len(s) for s in samples) else schema.empty_samples())
    samples_df = schema.conform(samples_df, "samples", source=source)
    events = _load_events(samples_df)
    meta = {
        "source": "flent",
        "flent_version": meta_in.get("FLENT_VERSION"),
        "flent_format_version": version,
        "test": meta_in.get("NAME"),
        "title": meta_in.get("TITLE"),
        "start_time": dt.datetime.fromtimestamp(t0, dt.UTC).isoformat() if t0 else None,
        "interval": step,
        "length": meta_in.get("LENGTH"),
        "total_length": meta_in.get("TOTAL_LENGTH"),
        "test_parameters": meta_in.get("TEST_PARAMETERS"),
        "targets": meta_in.get("HOSTS"),
        "kernel_release": meta_in.get("KERNEL_RELEASE"),
        "local_host": meta_in.get("LOCAL_HOST"),
        "note": meta_in.get("NOTE"),
        "ip_version": meta_in.get("IP_VERSION"),
        "failed_runners": meta_in.get("FAILED_RUNNERS"),
        "probe_series": sorted(latency),
        "sample_series": sorted(set(measured) | set(computed)),
        "empty_series": sorted(n for n, recs in raw.items() if not recs and n not in computed),
        "flent_series_meta": {k: smetas[k] for k in sorted(names)},
        "flent_fake_raw_values": fake_raw,
        # everything else flent recorded, as it wrote it: its RECORDED_SETTINGS (NAME, HOST,
        # TIME, NOTE, BATCH_*, ...), the local and remote host facts (EGRESS_INFO with the
        # qdiscs and their tc statistics after the run, SYSCTLS, MODULE_VERSIONS,
        # REMOTE_METADATA, ...)
        "flent_metadata": {k: v for k, v in meta_in.items() if k != "SERIES_META"},
    }
    return Run(probes, events, meta, samples_df)


def _smeta(series_meta: dict, name: str, source: str) -> dict:
    smeta = series_meta.get(name) or {}
    if not isinstance(smeta, dict):
        raise RunFormatError(f"{source}: metadata.SERIES_META[{name!r}]: expected an object")
    return smeta


def _is_latency_series(name: str, recs: Any, smeta: dict) -> bool:
    if not isinstance(recs, list) or not recs:
        return False
    units = smeta.get("UNITS")
    if units is not None and units != "ms":
        return False
    first = next((r for r in recs if isinstance(r, dict)), None)
    if first is None:
        return False
    return "seq" in first or name.startswith("Ping")


def _start_epoch(meta: dict, raw: dict, source: str) -> float:
    """The test start in epoch seconds (flent's x_values count from it)."""
    t0 = meta.get("T0")
    if isinstance(t0, str) and (t0.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", t0)):
        try:
            return dt.datetime.fromisoformat(t0.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise RunFormatError(f"{source}: metadata.T0: {t0!r} is not an ISO time") from None
    firsts = [r["t"] for recs in raw.values() if isinstance(recs, list) for r in recs[:1]
              if isinstance(r, dict) and finite(r.get("t")) and 0 <= r["t"] < 1e11]
    return float(min(firsts)) if firsts else 0.0


def _check_t(r: Any, where: str, i: int) -> float:
    if not isinstance(r, dict) or not finite(r.get("t")) or not 0 <= r["t"] < 1e11:
        got = r.get("t") if isinstance(r, dict) else r
        raise RunFormatError(f"{where}[{i}].t: expected a time in epoch seconds, got {got!r}")
    return float(r["t"])


def _probes(latency: dict, smetas: dict, t0: float, step: float,
            source: str) -> pd.DataFrame:
    """All latency series as one PROBES frame (built column-wise, conformed once)."""
    cols: dict[str, list] = {c: [] for c in ("stream", "seq", "t_sent", "rtt_ms", "status",
                                             "lost_direction", *_EXTRA_MS.values())}
    hosts, toses = {}, {}
    _plan_rows(latency, smetas, source)
    gaps: list[pd.DataFrame] = []
    for name, recs in latency.items():
        where = f"{source}: raw_values[{name!r}]"
        hosts[name] = _host_of(smetas[name])
        toses[name] = _tos_of(smetas[name])
        has_seq = any(isinstance(r, dict) and "seq" in r for r in recs)
        first = len(cols["seq"])
        for i, r in enumerate(recs):
            t = _check_t(r, where, i)
            val = r.get("val")
            if isinstance(val, float) and math.isnan(val):
                val = None  # flent's "no value"
            if val is not None and not (finite(val) and 0 <= val <= 1e9):
                raise RunFormatError(f"{where}[{i}].val: expected a round-trip time in ms, got "
                                     f"{val!r}")
            lost = bool(r.get("lost")) or val is None
            seq = r.get("seq")
            if seq is not None and not _is_seq(seq):
                raise RunFormatError(f"{where}[{i}].seq: expected a sequence number, got "
                                     f"{seq!r}")
            cols["stream"].append(name)
            cols["seq"].append(int(seq) if seq is not None else i)
            # a reply's t is when it arrived (fping / ping -D print on receipt, irtt's client
            # receive clock, D-ITG's rxTime); a lost irtt record's t is its send time
            sent = t if lost or not has_seq else t - float(val) / 1000.0
            cols["t_sent"].append(sent - t0)
            cols["rtt_ms"].append(math.nan if lost else float(val))
            cols["status"].append("lost" if lost else "ok")
            lost_dir = r.get("lost_dir")
            if lost and lost_dir == "true":  # irtt's "lost": "true": direction not known
                lost_dir = "unknown"
            cols["lost_direction"].append(lost_dir if isinstance(lost_dir, str) else None)
            for key, col in _EXTRA_MS.items():
                v = r.get(key)
                if v is not None and not (finite(v) and abs(v) <= 1e9):
                    raise RunFormatError(f"{where}[{i}].{key}: expected milliseconds, got {v!r}")
                cols[col].append(math.nan if v is None else float(v))
        if has_seq:
            gaps.append(_gaps(cols, first, name, step, where, _fping_schedule(smetas[name])))
    for col in [c for c in ("lost_direction", *_EXTRA_MS.values())
                if all(v is None or (isinstance(v, float) and math.isnan(v)) for v in cols[c])]:
        del cols[col]  # a column no series has
    df = pd.DataFrame(cols)
    gaps = [g[[c for c in g.columns if c in df.columns]] for g in gaps if len(g)]
    if gaps:
        df = pd.concat([df, *gaps], ignore_index=True)
    if df.empty:
        return schema.empty_probes()
    df["host"] = df["stream"].map(hosts)
    df["tos"] = df["stream"].map(toses)
    df["size"] = pd.NA
    df["ttl"] = pd.NA
    # each stream in sequence order (lost rows interleaved), streams in file order
    df["_order"] = df["stream"].map({n: i for i, n in enumerate(latency)})
    df = df.sort_values(["_order", "seq"], kind="stable", ignore_index=True).drop(
        columns="_order")
    return schema.conform(df, "probes", source=source)


_FPING_RE = re.compile(r"(?:^|/)fping6?\s")


def _fping_schedule(smeta: dict) -> tuple[int, float] | None:
    """``(count, interval_s)`` of an fping series from its command (``-c N -p MS``)."""
    cmd = smeta.get("COMMAND")
    if not isinstance(cmd, str) or not _FPING_RE.search(cmd.split(" -", 1)[0] + " "):
        return None
    count = re.search(r"\s-c\s*(\d+)", cmd)
    period = re.search(r"\s-p\s*(\d+(?:\.\d+)?)", cmd)
    if not count or not period or not 0 < int(count.group(1)) <= MAX_ROWS:
        return None
    return int(count.group(1)), float(period.group(1)) / 1000.0


def _plan_rows(latency: dict, smetas: dict, source: str) -> None:
    """Refuse, before any row is built, latency series whose sequence gaps imply more lost
    rows than :func:`~qoslab.io.limits.implied_rows_limit` allows for the file's records, or
    whose records and gaps add up to more than :data:`~qoslab.io.limits.MAX_ROWS` rows."""
    implied, sizes = [], []
    present = 0
    for name, recs in latency.items():
        seqs = {r["seq"] for r in recs if isinstance(r, dict) and _is_seq(r.get("seq"))}
        n = len(recs)
        present += n
        lost = 0
        if seqs:
            lo, hi = min(seqs), max(seqs)
            schedule = _fping_schedule(smetas[name])
            how = "sequence gaps"
            if schedule is not None:
                lo, hi = 0, max(schedule[0] - 1, hi)
                how = f"sequence gaps and fping's -c {schedule[0]}"
            lost = max(0, int(hi - lo + 1 - len(seqs)))
            implied.append((f"raw_values[{name!r}]", lost, how))
        sizes.append((name, n + lost))
    check_implied_rows(source, implied, present)
    planned = 0
    for name, rows in sizes:
        planned += rows
        if planned > MAX_ROWS:
            raise ProbeLimitError(f"{source}: raw_values[{name!r}]: the latency series' records "
                                  f"and sequence gaps imply more than {MAX_ROWS} probes in the "
                                  "file (the limit)")


def _is_seq(value: Any) -> bool:
    """A sequence number as the importer keeps it (anything else is refused, named, later)."""
    return finite(value) and value == int(value) and 0 <= value < 2**32


def _gaps(cols: dict[str, list], first: int, name: str, step: float, where: str,
          schedule: tuple[int, float] | None = None) -> pd.DataFrame:
    """The ``lost`` rows for the sequence numbers a stream sent that got no reply: those
    missing between its first and last reply, and for fping (``-c N``, sequence numbers 0 to
    N-1) those before the first and after the last (built as arrays: a gap can be millions)."""
    seqs = np.asarray(cols["seq"][first:], dtype=np.int64)
    if schedule is not None and len(seqs):
        step = schedule[1]
        lo, hi = 0, max(schedule[0] - 1, int(seqs.max()))
    elif len(seqs) < 2:
        return pd.DataFrame()
    else:
        lo, hi = int(seqs.min()), int(seqs.max())
    if hi - lo >= MAX_ROWS:
        raise ProbeLimitError(f"{where}: sequence numbers {lo}..{hi} would imply more than "
                              f"{MAX_ROWS} probes (the limit)")
    missing = np.ones(hi - lo + 1, bool)
    missing[seqs - lo] = False
    missing = np.flatnonzero(missing) + lo
    if not len(missing):
        return pd.DataFrame()
    base = first + int(np.argmin(seqs))
    t_base = cols["t_sent"][base]
    n = len(missing)
    out = {"stream": np.full(n, name, object), "seq": missing,
           "t_sent": t_base + (missing - int(seqs.min())) * step,
           "rtt_ms": np.full(n, np.nan), "status": np.full(n, "lost", object),
           "lost_direction": np.full(n, None, object)}
    out.update({col: np.full(n, np.nan) for col in _EXTRA_MS.values()})
    return pd.DataFrame(out)


def _fields(recs: list) -> set[str]:
    return {k for r in recs if isinstance(r, dict) for k in r}


def _resamples_loaded(name: str, loaded: set[tuple[str, str]]) -> bool:
    """``"TCP upload::tcp_rtt"`` resamples field tcp_rtt of series "TCP upload"."""
    base, sep, key = name.rpartition("::")
    return bool(sep) and (base, key) in loaded


def _unit(units: Any) -> str:
    if not isinstance(units, str):
        return ""
    return _RATE_UNITS.get(units.lower(), units)


def _metric_for(units: str) -> str:
    return "throughput" if units.endswith("bit/s") else "value"


def _raw_samples(name: str, recs: list, smeta: dict, t0: float, where: str) -> pd.DataFrame:
    """One series' raw records -> SAMPLES rows: ``val`` and every other numeric field."""
    unit = _unit(smeta.get("UNITS"))
    main = _metric_for(unit) if unit else "value"
    if _is_ditg(recs):  # D-ITG's per-packet records: val is the one-way delay in ms
        main, unit = "owd", "ms"
    series, metric, ts, values, units, spans = [], [], [], [], [], []
    for i, r in enumerate(recs):
        t = _check_t(r, where, i) - t0
        dur = r.get("dur")
        if dur is not None and not (finite(dur) and 0 <= dur <= 1e6):
            raise RunFormatError(f"{where}[{i}].dur: expected seconds, got {dur!r}")
        for key, v in _flat(r):
            if key in _NOT_METRICS and key != "val":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                if v is None or isinstance(v, str):
                    continue  # flent's "no value", or a text field (kept out of the numbers)
                raise RunFormatError(f"{where}[{i}].{key}: expected a number, got {v!r}")
            if not math.isfinite(v) or abs(v) > 1e18:
                if isinstance(v, float) and math.isnan(v):
                    continue
                raise RunFormatError(f"{where}[{i}].{key}: {v!r} is not a measured value")
            series.append(name)
            metric.append(main if key == "val" else key)
            ts.append(t)
            values.append(float(v))
            units.append(unit if key == "val" else METRIC_UNITS.get(key, ""))
            spans.append(float(dur) if dur is not None and key == "val" else math.nan)
    df = pd.DataFrame({"series": series, "metric": metric, "t": ts, "value": values,
                       "unit": units, "span_s": spans})
    return _describe(df, name, smeta, computed=False)


def _is_ditg(recs: list) -> bool:
    """D-ITG records (flent's DitgRunner): ``{t, val, seq, size}``, val = rxTime - txTime."""
    first = next((r for r in recs if isinstance(r, dict)), {})
    return {"seq", "size", "val"} <= first.keys() and "owd_up" not in first


def _flat(rec: dict, prefix: str = "", depth: int = 0):
    """``(key, value)`` of a record, nested objects as dotted keys (Wi-Fi ``stations``)."""
    for key, v in rec.items():
        name = f"{prefix}{key}"
        if isinstance(v, dict) and depth < 4:
            yield from _flat(v, f"{name}.", depth + 1)
        elif isinstance(v, list) and depth < 4:
            yield from _flat({str(i): x for i, x in enumerate(v)}, f"{name}.", depth + 1)
        else:
            yield name, v


def _computed_samples(name: str, values: Any, x_values: list, smeta: dict,
                      where: str) -> pd.DataFrame:
    """A series flent computed on its grid (``results[name]`` over ``x_values``)."""
    if not isinstance(values, list) or len(values) != len(x_values):
        raise RunFormatError(f"{where}: expected {len(x_values)} values (one per x_values)")
    x = np.asarray([v if finite(v) else np.nan for v in x_values], dtype="float64")
    y = np.asarray([v if finite(v) else np.nan for v in values], dtype="float64")
    bad = next((i for i, v in enumerate(values)
                if v is not None and not finite(v)), None)
    if bad is not None:
        raise RunFormatError(f"{where}[{bad}]: expected a number or null, got {values[bad]!r}")
    keep = ~np.isnan(y) & ~np.isnan(x)
    # x_values count seconds from flent's start: the run's start here too
    unit = _unit(smeta.get("UNITS"))
    metric = _metric_for(unit) if unit else "value"
    key = name.rpartition("::")[2] if "::" in name else None
    if smeta.get("RUNNER") == "FairnessRunner":
        key = "fairness"
    if key:
        metric, unit = key, METRIC_UNITS.get(key, unit)
    df = pd.DataFrame({"series": name, "metric": metric, "t": x[keep], "value": y[keep],
                       "unit": unit, "span_s": math.nan})
    return _describe(df, name, smeta, computed=True)


def _describe(df: pd.DataFrame, name: str, smeta: dict, *, computed: bool) -> pd.DataFrame:
    df["direction"] = _direction(name, smeta)
    df["tos"] = _tos_of(smeta)
    df["host"] = _host_of(smeta) or pd.NA
    df["computed"] = computed or smeta.get("RUNNER") in _COMPUTED_RUNNERS
    return df


def _load_events(samples: pd.DataFrame) -> pd.DataFrame:
    """load_start / load_stop of each measured throughput stream."""
    load = samples[(samples["metric"] == "throughput") & ~samples["computed"].fillna(False)]
    rows = []
    for name, g in load.groupby("series", sort=False):
        start = float((g["t"] - g["span_s"].fillna(0.0)).min())
        stop = float(g["t"].max())
        tos = g["tos"].iloc[0]
        label = f"{name}" + ("" if pd.isna(tos) else f" (tos 0x{int(tos):02x})")
        rows += [{"t": start, "kind": "load_start", "detail": label},
                 {"t": stop, "kind": "load_stop", "detail": label}]
    if not rows:
        return schema.empty_events()
    return pd.DataFrame(rows).sort_values("t", kind="stable", ignore_index=True)


def _direction(name: str, smeta: dict) -> str | None:
    cmd = smeta.get("COMMAND") if isinstance(smeta.get("COMMAND"), str) else ""
    if re.search(r"-t\s+(TCP_MAERTS|UDP_MAERTS)", cmd) or "download" in name.lower():
        return "down"
    if re.search(r"-t\s+(TCP_STREAM|UDP_STREAM)", cmd) or "upload" in name.lower() \
            or "iperf" in cmd:
        return "up"
    return None


def _tos_of(smeta: dict) -> int | None:
    """The TOS byte flent recorded for a stream (see the module docstring)."""
    for key in ("DATA_TOS", "UPSTREAM_TOS"):
        v = smeta.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255:
            return v
    cmd = smeta.get("COMMAND")
    if isinstance(cmd, str):
        m = _MARKING_RE.search(cmd)
        if m:
            word = (m.group(1) or m.group(2)).split(",")[0]
            if word.upper() in MARKINGS:
                return MARKINGS[word.upper()]
            try:
                v = int(word, 0)
            except ValueError:
                return None
            return v if 0 <= v <= 255 else None
        words = cmd.split()
        if words and words[0].rsplit("/", 1)[-1] in _UNMARKED_IS_ZERO:
            return 0  # flent gave no marking: the tool's (and the socket's) default
    return None


def _host_of(smeta: dict) -> str:
    cmd = smeta.get("COMMAND")
    if not isinstance(cmd, str) or not cmd.split():
        return ""
    m = re.search(r"(?:^|\s)(?:-H|--client)\s+(\S+)", cmd)
    return m.group(1) if m else cmd.split()[-1]
