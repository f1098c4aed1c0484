"""Import flent ``.flent.gz`` files (data format versions 1-4) as RUN.

Every latency series becomes a stream: ICMP series (fping / ping runners, records
``{t, val, seq}``) and irtt UDP series (records add ``owd_up``, ``owd_down``, ``ipdv*``; a lost
irtt record has ``lost: true`` and no ``val``). Throughput, CPU and socket-statistics series are
not probes and are summarised in META only.

Decisions, documented:

* ``t_sent`` is seconds from the test start ``T0``. Version 2 files write ``T0`` without a
  zone, in the local time of the machine that ran flent, which is unknowable; then the start is
  the earliest raw timestamp of any series (flent's own x-axis starts there too).
* flent's ping runner keeps only answered ICMP probes. Sequence numbers missing between the
  first and the last one seen are added as ``lost`` rows (``t_sent`` interpolated on the
  series' step), so loss is visible; irtt lost records are kept as ``lost`` rows as flent
  recorded them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import RunFormatError
from ..runs import Run

__all__ = ["read_flent", "FLENT_VERSIONS"]

#: flent data-format versions this importer understands.
FLENT_VERSIONS = (1, 2, 3, 4)

_EXTRA_MS = {"owd_up": "owd_up_ms", "owd_down": "owd_down_ms", "ipdv": "ipdv_ms"}


def read_flent(doc: dict[str, Any], source: str) -> Run:
    """Convert a parsed flent document to a :class:`~qoslab.runs.Run`.

    Parameters
    ----------
    doc
        The JSON object of a ``.flent.gz`` file.
    source
        File name for error messages.
    """
    version = doc.get("version")
    if version not in FLENT_VERSIONS:
        raise RunFormatError(f"{source}: version: flent format {version!r} is not one of "
                             f"{FLENT_VERSIONS}")
    meta_in = doc.get("metadata")
    raw = doc.get("raw_values")
    if not isinstance(meta_in, dict):
        raise RunFormatError(f"{source}: metadata: expected an object")
    if raw is None and version >= 2:
        raise RunFormatError(f"{source}: raw_values: missing (flent format {version})")
    if raw is not None and not isinstance(raw, dict):
        raise RunFormatError(f"{source}: raw_values: expected an object of series")
    series_meta = meta_in.get("SERIES_META") or {}
    step = float(meta_in.get("STEP_SIZE") or 0.2)

    latency = {name: recs for name, recs in (raw or {}).items()
               if _is_latency_series(name, recs, series_meta.get(name) or {})}
    t0 = _start_epoch(meta_in, latency, source)

    frames = []
    for name, recs in latency.items():
        frames.append(_series_probes(name, recs, series_meta.get(name) or {}, t0, step,
                                     f"{source}: raw_values[{name!r}]"))
    probes = pd.concat(frames, ignore_index=True) if frames else schema.empty_probes()
    meta = {
        "source": "flent",
        "flent_version": meta_in.get("FLENT_VERSION"),
        "flent_format_version": version,
        "test": meta_in.get("NAME"),
        "title": meta_in.get("TITLE"),
        "start_time": dt.datetime.fromtimestamp(t0, dt.UTC).isoformat() if frames else None,
        "interval": step,
        "targets": meta_in.get("HOSTS"),
        "kernel_release": meta_in.get("KERNEL_RELEASE"),
        "local_host": meta_in.get("LOCAL_HOST"),
        "other_series": sorted(set((raw or {}).keys()) - set(latency)),
        "flent_series_meta": {k: series_meta.get(k) for k in latency},
    }
    return Run(probes, schema.empty_events(), meta)


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


def _start_epoch(meta: dict, latency: dict, source: str) -> float:
    t0 = meta.get("T0")
    if isinstance(t0, str) and (t0.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", t0)):
        try:
            return dt.datetime.fromisoformat(t0.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise RunFormatError(f"{source}: metadata.T0: {t0!r} is not an ISO time") from None
    firsts = [r["t"] for recs in latency.values() for r in recs[:1]
              if isinstance(r, dict) and isinstance(r.get("t"), (int, float))]
    return float(min(firsts)) if firsts else 0.0


def _series_probes(name: str, recs: list, smeta: dict, t0: float, step: float,
                   where: str) -> pd.DataFrame:
    rows = []
    for i, r in enumerate(recs):
        if not isinstance(r, dict) or not isinstance(r.get("t"), (int, float)):
            raise RunFormatError(f"{where}[{i}]: expected a record with a numeric 't'")
        val = r.get("val")
        if val is not None and not isinstance(val, (int, float)):
            raise RunFormatError(f"{where}[{i}].val: expected a number, got {val!r}")
        lost = bool(r.get("lost")) or val is None
        seq = r.get("seq")
        row = {
            "seq": int(seq) if isinstance(seq, (int, float)) else i,
            "t_sent": float(r["t"]) - t0,
            "rtt_ms": np.nan if lost else float(val),
            "status": "lost" if lost else "ok",
        }
        for key, col in _EXTRA_MS.items():
            if key in r:
                row[col] = r[key]
        rows.append(row)
    df = pd.DataFrame(rows)
    if "seq" in df and len(df) and any("seq" in r for r in recs if isinstance(r, dict)):
        df = _add_gaps(df, step)
    host = _host_of(smeta)
    df.insert(0, "stream", name)
    df.insert(1, "host", host)
    df["tos"] = pd.NA
    df["size"] = pd.NA
    df["ttl"] = pd.NA
    return schema.conform(df, "probes", source=where)


def _add_gaps(df: pd.DataFrame, step: float) -> pd.DataFrame:
    seqs = df["seq"].to_numpy()
    if len(seqs) < 2:
        return df
    full = np.arange(seqs.min(), seqs.max() + 1)
    missing = np.setdiff1d(full, seqs)
    if not len(missing):
        return df.sort_values("seq", kind="stable", ignore_index=True)
    base = df.loc[df["seq"].idxmin()]
    gaps = pd.DataFrame({
        "seq": missing,
        "t_sent": base["t_sent"] + (missing - base["seq"]) * step,
        "rtt_ms": np.nan,
        "status": "lost",
    })
    return pd.concat([df, gaps], ignore_index=True).sort_values("seq", kind="stable",
                                                               ignore_index=True)


def _host_of(smeta: dict) -> str:
    cmd = smeta.get("COMMAND")
    if isinstance(cmd, str) and cmd.split():
        return cmd.split()[-1]
    return ""
