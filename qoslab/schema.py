"""The tidy tables every qoslab layer speaks: PACKETS, PROBES, EVENTS and SAMPLES.

This module is the single source of truth for their column names and dtypes. Producers build
their frames with :func:`conform`, consumers may rely on every listed column being present with
the listed dtype. Extra columns are allowed (for example ``owd_up_ms`` from an irtt import) and
are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import RunFormatError

__all__ = [
    "PACKETS",
    "CAPTURE_SET",
    "OCCUPANCY",
    "OCCUPANCY_KEY",
    "has_occupancy",
    "occupancy_table",
    "PROBES",
    "EVENTS",
    "SAMPLES",
    "DECISIONS",
    "PROBE_STATUSES",
    "EVENT_KINDS",
    "empty_probes",
    "empty_events",
    "empty_samples",
    "empty_decisions",
    "conform",
    "check_values",
    "VALUE_RULES",
    "stream_label",
]

#: Status of one probe. ``ok``: answered; ``lost``: no answer before the timeout;
#: ``duplicate``: a second reply for a sequence already answered (kept as its own row);
#: ``late``: answered after the timeout; ``unreachable`` / ``time_exceeded``: an ICMP error came
#: back instead of an echo reply; ``error``: the probe could not be sent.
PROBE_STATUSES: tuple[str, ...] = (
    "ok",
    "lost",
    "duplicate",
    "late",
    "unreachable",
    "time_exceeded",
    "error",
)

#: What an EVENTS row can say happened to the path.
EVENT_KINDS: tuple[str, ...] = (
    "hash_change",
    "config_change",
    "load_start",
    "load_stop",
    "run_start",
    "run_stop",
    "note",
)

#: PROBES: one row per latency probe (column -> dtype).
PROBES: dict[str, str] = {
    "stream": "string",  # label, e.g. "10.0.0.2 tos=0x10 size=56"
    "host": "string",  # destination as given (name or address)
    "tos": "Int64",  # the whole TOS / traffic-class byte
    "size": "Int64",  # ICMP payload bytes (ping -s)
    "seq": "Int64",  # sequence number within the stream
    "t_sent": "float64",  # seconds from the run's start
    "rtt_ms": "float64",  # NaN when there is no answer
    "status": "string",  # one of PROBE_STATUSES
    "ttl": "Int64",  # TTL / hop limit of the reply
}

#: EVENTS: one row per thing that happened to the path.
EVENTS: dict[str, str] = {
    "t": "float64",  # seconds from the run's start
    "kind": "string",  # one of EVENT_KINDS
    "detail": "string",  # free text, e.g. "perturb seed 0x1234abcd"
}

#: SAMPLES: one row per timed sample of a measured quantity that is not a latency probe --
#: the throughput of a load stream, a TCP socket statistic (``tcp_rtt``, ``tcp_cwnd``, ...), a
#: VoIP stream's bit rate, a CPU's load, or a series flent computed from others (sums,
#: averages, fairness).
#:
#: Why a table of its own, and why long ("tidy") rather than one column per quantity:
#: a probe is an event with an identity (stream, sequence number, send time, answer or loss);
#: a sample is a value averaged over an interval ending at ``t`` (netperf reports a stream's
#: throughput every ~0.2 s over ``span_s`` seconds), with no sequence number and no loss. The
#: two share a clock (``t`` here, ``t_sent`` in PROBES and ``t`` in EVENTS are seconds from
#: the run's start), so latency under load is a join on time, not a reshaping. One row per
#: (series, metric, t) with ``value`` and ``unit`` holds any number of series and quantities
#: without a column per quantity (rrul alone has 8 load streams × 10 socket statistics), is
#: what groupby/seaborn want, and lets a metric appear for some streams only.
SAMPLES: dict[str, str] = {
    "series": "string",  # the series it belongs to, e.g. "TCP upload EF" (flent's name)
    "metric": "string",  # what is measured: throughput, tcp_rtt, tcp_cwnd, bitrate, load, ...
    "t": "float64",  # seconds from the run's start (end of the interval the value covers)
    "value": "float64",
    "unit": "string",  # e.g. "Mbit/s", "ms", "packets"
    "span_s": "float64",  # seconds the value covers (ends at t); NaN when not reported
    "direction": "string",  # "up" (client -> server), "down", or NA
    "tos": "Int64",  # the TOS byte the stream was marked with (NA when not recorded)
    "host": "string",  # the far end
    "computed": "boolean",  # True: computed from other series (sum, average, fairness)
}

#: DECISIONS: one row per packet a qdisc tree saw -- what it decided for that packet. The same
#: table comes from the simulator (``SimConfig(decisions=True)``), the userspace datapath and
#: capture replay (:func:`qoslab.replay`), so a live run, its replay and its simulation compare
#: packet by packet.
#:
#: Why a table of its own: a decision is neither a probe (it has no answer, and most packets are
#: load, not probes) nor a sample (it is one packet, not a value over an interval); it can hold
#: hundreds of thousands of rows where PROBES holds hundreds, and the run's hash seeds
#: (``meta["hash_seeds"]``, indexed by ``seed_index``) say which seed decided each packet.
#: ``cls`` and ``queue`` are what the tree wrote when the packet was enqueued: ``cls`` the band
#: (pfifo_fast, prio) or class index (HTB leaves in tc order), ``queue`` the SFQ bucket or
#: fq_codel flow index (a 3.3+ SFQ may rehash a queued packet later; the log keeps the bucket
#: the packet was enqueued into); NA where no qdisc of the tree sets them. ``flow`` is the
#: label of the packet's headers (:func:`qoslab.labels.flow_labels`) whoever wrote the table,
#: so DECISIONS of a simulation, a datapath run and a replay join on it; the simulator adds
#: one extra column, ``stream`` (text): the name of the traffic spec that sent the packet
#: (a ping's PROBES ``stream``, a load's name in EVENTS).
DECISIONS: dict[str, str] = {
    "packet": "int64",  # packet number: arrival order (replay: the row of the PACKETS given)
    "flow": "category",  # the flow's label
    "t_arrival": "float64",  # seconds from the run's start: the packet reached the qdisc
    "t_departure": "float64",  # the link took it from the qdisc; NaN when dropped
    "size": "int64",  # bytes the qdisc accounted (skb->len: link header included)
    "cls": "Int64",  # band / class index (NA: no classful qdisc decided)
    "queue": "Int64",  # SFQ bucket / fq_codel flow index (NA: none, or the filter refused it)
    "seed_index": "int64",  # the hash seed in force at arrival (meta["hash_seeds"][i])
    "dropped": "bool",  # the qdisc dropped it (on arrival or later)
}

#: PACKETS: one row per captured frame (column -> dtype); built by :mod:`qoslab.capture`.
#: ``NA`` where a field does not apply or was not captured; ``problem`` is ``""`` when clean.
PACKETS: dict[str, str] = {
    "time": "datetime64[ns, UTC]",  # capture timestamp (NaT: none, e.g. pcapng Simple Packet Block)
    "t": "float64",  # seconds since the first time-stamped packet of the file (NaN: no time)
    "ifindex": "int32",  # pcapng interface id within its section (0 for classic pcap)
    "section": "int32",  # pcapng section number, from 0 (0 for classic pcap)
    "wire_len": "int64",  # original length on the wire
    "cap_len": "int64",  # bytes captured
    "l2_proto": "UInt16",  # EtherType after VLAN tags (implied 0x0800/0x86dd for raw IP)
    "vlan": "UInt16",  # outermost 802.1Q / 802.1ad VLAN id
    "vlan_pcp": "UInt8",  # its priority code point (3 bits; NA when untagged)
    "vlan_dei": "UInt8",  # its drop-eligible indicator (0/1; NA when untagged)
    "ip_version": "UInt8",  # 4 or 6 (outer header)
    "src": "category",  # outer source address
    "dst": "category",  # outer destination address
    "proto": "UInt8",  # IPv4 protocol / last IPv6 next header
    "ipv6_nexthdr": "UInt8",  # the IPv6 fixed header's next header (first extension header)
    "tos": "UInt8",  # whole TOS / traffic-class byte
    "dscp": "UInt8",  # tos >> 2
    "ecn": "UInt8",  # tos & 3
    "ttl": "UInt8",  # TTL / hop limit
    "flow_label": "UInt32",  # IPv6 flow label (NA for IPv4)
    "frag": "bool",  # any fragment (more-fragments set or offset != 0)
    "frag_offset": "UInt16",  # fragment offset in 8-byte units (NA for non-IP)
    "frag_more": "bool",  # the more-fragments flag (IPv4 header or IPv6 fragment header)
    "ip_id": "UInt32",  # IPv4 identification / IPv6 fragment header identification (else NA)
    "sport": "UInt16",  # TCP/UDP/UDP-Lite/SCTP/DCCP ports of the outer packet
    "dport": "UInt16",
    "icmp_type": "UInt8",  # ICMP / ICMPv6 of the outer packet
    "icmp_code": "UInt8",
    "icmp_id": "UInt16",  # echo (and timestamp/info/mask) identifier
    "icmp_seq": "UInt16",
    "spi": "UInt32",  # ESP / AH security parameter index
    "l4_len": "UInt32",  # innermost IP payload as its header states it: transport header + data
    # (a fragment: its share of the datagram's payload)
    "tcp_flags": "UInt16",  # innermost TCP header: its 12 flag bits (tshark tcp.flags)
    "tcp_seq": "UInt32",  # its sequence number (absolute)
    "tcp_ack": "UInt32",  # its acknowledgement number (absolute, whatever the ACK flag)
    "tcp_len": "UInt32",  # its payload bytes (tshark tcp.len; NA in a fragment)
    "tunnel": "category",  # kind of encapsulation (qoslab.capture.tunnels.TUNNEL_KINDS)
    "tunnel_id": "UInt32",  # GRE / NVGRE key, VXLAN / Geneve VNI (NA when there is none)
    "inner_l2_proto": "UInt16",  # EtherType of the tunnelled packet (after inner VLAN tags)
    "inner_vlan": "UInt16",  # outermost VLAN id of an inner Ethernet frame
    "inner_ip_version": "UInt8",  # 4 or 6: the tunnelled IP header
    "inner_src": "category",  # the tunnelled (inner) IP header, NA when tunnel is none
    "inner_dst": "category",
    "inner_proto": "UInt8",
    "inner_tos": "UInt8",
    "inner_frag_offset": "UInt16",  # its fragment offset (8-byte units)
    "inner_frag_more": "bool",  # its more-fragments flag
    "inner_ip_id": "UInt32",  # its IPv4 identification / IPv6 fragment identification
    "inner_flow_label": "UInt32",  # flow label of an inner IPv6 header (NA otherwise)
    "inner_ipv6_nexthdr": "UInt8",  # its fixed header's next header
    "inner_sport": "UInt16",
    "inner_dport": "UInt16",
    "inner_icmp_type": "UInt8",
    "inner_icmp_id": "UInt16",
    "inner_icmp_seq": "UInt16",
    "inner_spi": "UInt32",  # ESP / AH SPI of the tunnelled packet
    "problem": "category",  # "" when clean, else what was malformed (qoslab.capture.PROBLEMS)
}

#: Columns PACKETS gains when several captures are read as one set (``qoslab.read_captures``,
#: ``qoslab.read_packets``). Together they name every frame: ``file`` is the capture's path
#: relative to the set's folder (categories in the set's order), ``frame`` its frame number
#: in that file, counted from 1 as Wireshark numbers frames. ``section`` and ``ifindex`` stay
#: those of the file: an interface of the set is ``(file, section, ifindex)``. ``t`` counts
#: from the earliest time-stamped packet of the whole set.
CAPTURE_SET: dict[str, str] = {
    "file": "category",
    "frame": "int64",
}

#: OCCUPANCY: which queue (SFQ/fq_codel bucket, cls_flow class minor, pfifo_fast/prio band,
#: HTB class) each flow's packets sat in over time. One row per (sample, flow, queue) with
#: packets queued (the simulator samples it), or one row per packet (built from a capture with
#: ``qoslab.plots.occupancy_frame``; ``packets`` 1, ``bytes`` its length). ``bucket`` -1: dropped
#: by the classifier. A RUN carries it in ``meta[OCCUPANCY_KEY]`` (column-oriented, like the
#: tables of a RUN file); :func:`occupancy_table` reads it back; ``qoslab.plots.occupancy``
#: draws it.
OCCUPANCY: dict[str, str] = {
    "t": "float64",  # seconds from the run's start
    "flow": "string",  # the flow's label
    "bucket": "int64",  # queue index; -1 = dropped by the classifier
    "packets": "Int64",  # packets of the flow queued there (NA when not known)
    "bytes": "Int64",  # their bytes (NA when not known)
}
#: ``run.meta`` key holding a RUN's OCCUPANCY samples.
OCCUPANCY_KEY = "occupancy"

#: What a value read from a file may be: (table, column) -> (lowest, highest, missing allowed).
#: Bounds are inclusive; ``inf`` is never a value. A missing ``t_sent`` is allowed only for
#: probes never answered (an answer needs a send time). :func:`check_values` applies them to
#: every file :func:`qoslab.load` reads: nonsense is refused there, never kept silently.
VALUE_RULES: dict[tuple[str, str], tuple[float, float, bool]] = {
    ("probes", "tos"): (0, 255, True),
    ("probes", "ttl"): (0, 255, True),
    ("probes", "size"): (0, 65535, True),
    ("probes", "seq"): (0, 2**53, True),
    ("probes", "rtt_ms"): (0.0, 1e9, True),  # up to ~11.6 days; negative RTTs do not exist
    ("probes", "t_sent"): (-1e10, 1e10, True),
    ("events", "t"): (-1e10, 1e10, False),
    ("samples", "t"): (-1e10, 1e10, False),
    ("samples", "value"): (-1e18, 1e18, True),
    ("samples", "span_s"): (0.0, 1e6, True),
    ("samples", "tos"): (0, 255, True),
    ("decisions", "t_arrival"): (-1e10, 1e10, False),
    ("decisions", "t_departure"): (-1e10, 1e10, True),
    ("decisions", "size"): (0, 2**31, False),
    ("decisions", "seed_index"): (0, 2**31, False),
}
_ANSWERED = ("ok", "late", "duplicate")

_SCHEMAS = {"probes": PROBES, "events": EVENTS, "samples": SAMPLES, "occupancy": OCCUPANCY,
            "decisions": DECISIONS}
_ENUMS = {("probes", "status"): PROBE_STATUSES, ("events", "kind"): EVENT_KINDS}


def empty_probes() -> pd.DataFrame:
    """Return an empty PROBES frame with every column and dtype."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in PROBES.items()})


def empty_events() -> pd.DataFrame:
    """Return an empty EVENTS frame with every column and dtype."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in EVENTS.items()})


def empty_samples() -> pd.DataFrame:
    """Return an empty SAMPLES frame with every column and dtype."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in SAMPLES.items()})


def has_occupancy(run) -> bool:
    """Whether a RUN carries OCCUPANCY samples (``meta[OCCUPANCY_KEY]``).

    >>> has_occupancy(type("R", (), {"meta": {}})())
    False
    """
    occ = (getattr(run, "meta", None) or {}).get(OCCUPANCY_KEY)
    return isinstance(occ, Mapping) and all(c in occ for c in ("t", "flow", "bucket"))


def occupancy_table(run, *, source: str = "") -> pd.DataFrame:
    """The OCCUPANCY table a RUN carries in ``meta[OCCUPANCY_KEY]``, conformed.

    ``packets`` and ``bytes`` may be absent (NA); ``t``, ``flow`` and ``bucket`` are required.

    Raises
    ------
    RunFormatError
        The RUN has no occupancy samples (say so: only the simulator records them), or they
        do not fit the schema.

    Examples
    --------
    >>> r = type("R", (), {"meta": {"occupancy": {"t": [0.1], "flow": ["f"], "bucket": [7]}}})()
    >>> table = occupancy_table(r)
    >>> table["bucket"].tolist(), bool(table["packets"].isna().all()), str(table["flow"].dtype)
    ([7], True, 'string')
    """
    if not has_occupancy(run):
        raise RunFormatError(f"{source + ': ' if source else ''}this RUN has no occupancy "
                             "samples (meta['occupancy']): only simulated runs record which "
                             "queue each flow used")
    occ = dict(run.meta[OCCUPANCY_KEY])
    n = len(occ["t"])
    cols = {c: occ.get(c, [None] * n) for c in OCCUPANCY}
    return conform(cols, "occupancy", source=source or "meta.occupancy")


def empty_decisions() -> pd.DataFrame:
    """Return an empty DECISIONS frame with every column and dtype."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in DECISIONS.items()})


def stream_label(host: str, tos: int | None = None, size: int | None = None) -> str:
    """Return the conventional stream label, e.g. ``'10.0.0.2 tos=0x10 size=56'``.

    >>> stream_label("10.0.0.2", 0x10, 56)
    '10.0.0.2 tos=0x10 size=56'
    >>> stream_label("example")
    'example'
    """
    parts = [host]
    if tos is not None:
        parts.append(f"tos=0x{int(tos):02x}")
    if size is not None:
        parts.append(f"size={int(size)}")
    return " ".join(parts)


def conform(frame: pd.DataFrame | Mapping, table: str, *, source: str = "") -> pd.DataFrame:
    """Check and coerce a frame to the PROBES, EVENTS, SAMPLES, OCCUPANCY or DECISIONS
    schema.

    Parameters
    ----------
    frame
        A DataFrame or a mapping of column name to values.
    table
        ``"probes"``, ``"events"``, ``"samples"``, ``"occupancy"`` or ``"decisions"``.
    source
        A name for error messages (a file name), e.g. ``"run.json.gz"``.

    Returns
    -------
    pandas.DataFrame
        The columns of the schema first, in schema order, with the schema dtypes, then any
        extra columns (text columns as the ``string`` dtype, so a column of text with gaps is
        the same before saving and after loading; others unchanged).

    Raises
    ------
    RunFormatError
        When a column is missing, cannot take its dtype, or holds a value outside its enum;
        the message names ``source``, the table, the column and the first offending row.

    Examples
    --------
    >>> df = conform({"t": [1.5], "kind": ["note"], "detail": ["hello"]}, "events")
    >>> str(df.dtypes["t"]), str(df.dtypes["kind"])
    ('float64', 'string')
    """
    schema = _SCHEMAS[table]
    where = f"{source}: " if source else ""
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(dict(frame))
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise RunFormatError(f"{where}{table}: missing column(s) {', '.join(missing)}")
    out = {}
    for col, dtype in schema.items():
        out[col] = _coerce(df[col], dtype, f"{where}{table}.{col}")
        allowed = _ENUMS.get((table, col))
        if allowed is not None:
            bad = ~out[col].isin(allowed) & out[col].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise RunFormatError(
                    f"{where}{table}.{col}: row {i}: {out[col].iloc[i]!r} is not one of "
                    f"{', '.join(allowed)}"
                )
    extra = [c for c in df.columns if c not in schema]
    index = pd.RangeIndex(len(df))
    result = pd.DataFrame(out, index=index)
    if extra:  # all at once: one column at a time fragments the frame (quadratic)
        more = pd.DataFrame({c: _extra_column(df[c]) for c in extra}, index=index)
        result = pd.concat([result, more], axis=1)
    return result


def check_values(frame: pd.DataFrame, table: str, *, source: str = "") -> None:
    """Refuse values outside :data:`VALUE_RULES` in a conformed PROBES or EVENTS frame.

    Raises
    ------
    RunFormatError
        Naming ``source``, the table, the column, the first offending row and its value.

    Examples
    --------
    >>> df = conform({"t": [0.5, float("nan")], "kind": ["note"] * 2, "detail": ["", ""]},
    ...              "events")
    >>> check_values(df, "events", source="run.json.gz")
    Traceback (most recent call last):
    ...
    qoslab.errors.RunFormatError: run.json.gz: events.t: row 1: nan is not a number in [-10000000000.0, 10000000000.0]
    """
    where = f"{source}: " if source else ""
    for (tab, col), (low, high, missing_ok) in VALUE_RULES.items():
        if tab != table or col not in frame:
            continue
        values = frame[col].astype("float64").to_numpy(na_value=np.nan)
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):
            bad = ~missing & ((values < low) | (values > high))
        if not missing_ok:
            bad |= missing
        elif col == "t_sent" and "status" in frame:
            bad |= missing & frame["status"].isin(_ANSWERED).to_numpy(dtype=bool,
                                                                       na_value=False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = ": an answered probe needs a send time" if col == "t_sent" and missing[i] \
                else f" is not a number in [{low}, {high}]"
            raise RunFormatError(f"{where}{table}.{col}: row {i}: {float(values[i])!r}{what}")


def _extra_column(values: pd.Series) -> np.ndarray | pd.Series:
    """Keep an extra column; text with missing values becomes ``string`` (NA, never None)."""
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        present = values[values.notna()]
        if len(present) and all(isinstance(v, str) for v in present):
            return values.astype("string").reset_index(drop=True)
    return values.to_numpy()


def _coerce(values: pd.Series, dtype: str, what: str) -> pd.Series:
    values = values.reset_index(drop=True)
    try:
        if str(values.dtype) == dtype and dtype != "category":
            return values  # already right (large tables built by qoslab itself)
        if dtype == "bool":
            if values.isna().any():
                raise ValueError("a value is missing")
            if not values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
                raise ValueError("not true/false")
            return values.astype(bool)
        if dtype == "category":
            if isinstance(values.dtype, pd.CategoricalDtype) and all(
                    isinstance(c, str) for c in values.cat.categories):
                return values
            text = _coerce(values, "string", what)
            present = text.dropna()
            order = pd.Index(pd.unique(present.to_numpy(dtype=object)), dtype=str)
            return pd.Series(pd.Categorical(text.astype(object).where(text.notna(), None),
                                            categories=order))
        if dtype == "float64":
            return pd.to_numeric(values, errors="raise").astype("float64")
        if dtype in ("Int64", "int64"):
            num = pd.to_numeric(values, errors="raise")
            if num.dtype.kind == "b":
                raise ValueError("not an integer")
            if dtype == "int64" and num.isna().any():
                raise ValueError("a value is missing")
            if num.notna().any():
                finite = num.dropna().astype("float64")
                if not np.all(np.equal(np.mod(finite, 1), 0)):
                    raise ValueError("not an integer")
                if np.any(np.abs(finite) >= 2.0**63):
                    raise ValueError("out of the 64-bit integer range")
            return num.astype(dtype)
        if dtype == "string":
            if isinstance(values.dtype, pd.StringDtype) or \
                    pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
                return values.astype("string")  # every value is text (checked in C)
            bad = values.notna().to_numpy() & ~np.array(
                [isinstance(v, str) for v in values], dtype=bool
            )
            if bad.any():
                raise ValueError(f"{values[bad].iloc[0]!r} is not text")
            return values.astype("string")
        if dtype == "boolean":
            bad = values.notna().to_numpy() & ~np.array(
                [isinstance(v, (bool, np.bool_)) for v in values], dtype=bool
            )
            if bad.any():
                raise ValueError(f"{values[bad].iloc[0]!r} is not true/false")
            return values.astype("boolean")
    except (ValueError, TypeError) as exc:
        first = _first_bad(values, dtype)
        raise RunFormatError(f"{what}: expected {_HUMAN[dtype]}{first}: {exc}") from None
    raise AssertionError(dtype)


_HUMAN = {"float64": "numbers (or null)", "Int64": "integers (or null)", "string": "text",
          "boolean": "true/false (or null)", "int64": "integers", "bool": "true/false",
          "category": "text"}


def _first_bad(values: pd.Series, dtype: str) -> str:
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if dtype in ("float64", "Int64", "int64") and (
            isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
        ):
            return f", row {i} holds {v!r}"
    return ""
