"""Older flent data formats (versions 1-3) brought to what version 4 means by the same records.

flent itself converts an old file when it loads one (``ResultSet.unserialise_compat`` in
flent's ``resultset.py``); a file is only read faithfully if qoslab does the same:

* **version 1** kept the raw records in ``SERIES_META[name]["RAW_VALUES"]``, or none at all:
  then flent's grid values stand in for them (``t`` = start + ``x``; a grid point without a
  value is not a measurement and is left out), and ``meta["flent_fake_raw_values"]`` says so.
  ``NETPERF_WRAPPER_VERSION`` is the flent version of a file written under flent's old name.
* **versions 1-3** stored raw values before flent's unit transforms:

  - netperf UDP_RR "pings" (a series named ``...UDP...`` whose records have ``dur``) as
    transactions per second; one round trip takes ``1000 / rate`` ms (a rate of 0: no value);
  - ``HTTP latency`` in seconds (now milliseconds);
  - qdisc ``dropped`` / ``ecn_mark`` counters and Wi-Fi ``airtime_tx`` / ``airtime_rx``
    cumulative since the start (now per sample interval: the first sample is 0).

The input document is never modified; converted series are copies.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from ..errors import ProbeLimitError
from .limits import MAX_ROWS, finite

__all__ = ["upgrade"]

_CUMULATIVE = ("dropped", "ecn_mark")
_AIRTIME = ("airtime_tx", "airtime_rx")


def upgrade(doc: dict, version: int) -> tuple[dict, dict, bool]:
    """``(raw_values, metadata, fake_raw)`` of a flent document as flent 2.x reads them.

    Examples
    --------
    >>> doc = {"version": 2, "metadata": {}, "x_values": [], "results": {},
    ...        "raw_values": {"Ping (ms) UDP BE": [{"t": 1.0, "dur": 0.2, "val": 20.0}],
    ...                       "HTTP latency": [{"t": 1.0, "val": 0.25}]}}
    >>> raw, meta, fake = upgrade(doc, 2)
    >>> raw["Ping (ms) UDP BE"][0]["val"], raw["HTTP latency"][0]["val"], fake
    (50.0, 250.0, False)
    """
    meta = dict(doc.get("metadata") or {})
    raw = doc.get("raw_values")
    fake = False
    if version == 1:
        smeta = meta.get("SERIES_META") if isinstance(meta.get("SERIES_META"), dict) else {}
        raw = {name: s["RAW_VALUES"] for name, s in smeta.items()
               if isinstance(s, dict) and "RAW_VALUES" in s}
        if not raw:
            raw, fake = _from_grid(doc, meta), True
    if "FLENT_VERSION" not in meta and "NETPERF_WRAPPER_VERSION" in meta:
        meta["FLENT_VERSION"] = meta["NETPERF_WRAPPER_VERSION"]
    if version < 4 and not fake and isinstance(raw, dict):
        raw = {name: _transform(name, recs) for name, recs in raw.items()}
    return raw, meta, fake


def _from_grid(doc: dict, meta: dict) -> dict:
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    x_values = doc.get("x_values") if isinstance(doc.get("x_values"), list) else []
    if len(x_values) * len(results) > MAX_ROWS:  # checked before building anything
        raise ProbeLimitError(f"flent format 1: {len(results)} series × {len(x_values)} grid "
                              f"points; the limit is {MAX_ROWS} records")
    x0 = _epoch(meta.get("T0") or meta.get("TIME"))
    return {name: [{"t": x0 + x, "val": v} for x, v in zip(x_values, values, strict=False)
                   if finite(x) and finite(v)]
            for name, values in results.items() if isinstance(values, list)}


def _epoch(value: Any) -> float:
    """flent's ISO time (zone-less ones taken as UTC) in epoch seconds; 0 when unreadable."""
    if not isinstance(value, str):
        return 0.0
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _transform(name: str, recs: Any) -> Any:
    if not isinstance(recs, list) or not recs:
        return recs
    dicts = [r for r in recs if isinstance(r, dict)]
    if "UDP" in name:  # flent's own heuristic: netperf UDP_RR, which recorded no runner
        return [_scaled(r, _rr_to_ms) if "dur" in r else r for r in recs]
    if name == "HTTP latency":
        return [_scaled(r, lambda v: v * 1000.0) for r in recs]
    if dicts and isinstance(dicts[0].get("stations"), dict):
        return _airtime_per_interval(recs)
    if dicts and any(k in dicts[0] for k in _CUMULATIVE):
        return _per_interval(recs)
    return recs


def _rr_to_ms(rate: float) -> float | None:
    return 1000.0 / rate if rate else None


def _scaled(rec: Any, fn) -> Any:
    if not isinstance(rec, dict) or not finite(rec.get("val")):
        return rec
    out = dict(rec)
    out["val"] = fn(rec["val"])
    return out


def _difference(values: dict, keys, last: dict[str, float]) -> None:
    """Turn the cumulative ``keys`` of ``values`` into differences from their ``last`` values
    (0 the first time a key is seen), in place; ``last`` keeps the cumulative ones."""
    for key in keys:
        if finite(values.get(key)):
            prev = last.get(key)
            last[key] = values[key]
            values[key] = 0.0 if prev is None else values[key] - prev


def _per_interval(recs: list) -> list:
    last: dict[str, float] = {}
    out = []
    for rec in recs:
        if isinstance(rec, dict):
            rec = dict(rec)
            _difference(rec, _CUMULATIVE, last)
        out.append(rec)
    return out


def _airtime_per_interval(recs: list) -> list:
    last: dict[str, dict[str, float]] = {}
    out = []
    for rec in copy.deepcopy(recs):
        stations = rec.get("stations") if isinstance(rec, dict) else None
        for station, data in (stations.items() if isinstance(stations, dict) else ()):
            if isinstance(data, dict):
                _difference(data, _AIRTIME, last.setdefault(str(station), {}))
        out.append(rec)
    return out

