"""Per-stream summary statistics of a PROBES table, as ping users read them.

The definitions follow iputils ``ping`` where it has one, so a qoslab summary of a run and the
``rtt min/avg/max/mdev`` line ``ping`` printed for the same probes agree:

* **sent** -- probes sent or attempted: every row except ``duplicate`` rows (a duplicate is a
  second reply to a probe already counted).
* **received** -- probes that got their echo reply: status ``ok`` or ``late`` (a reply after the
  timeout is still a reply; iputils counts it too).
* **loss_pct** -- ``100 * (sent - received) / sent``.
* **min / mean / max / mdev** -- over every reply carrying an RTT, *duplicates included*, as
  iputils does (its ``tsum`` and ``tsum2`` add duplicates, and it divides by
  ``nreceived + nrepeats``). ``mdev`` is the population standard deviation
  ``sqrt(mean(rtt**2) - mean(rtt)**2)``: iputils' "mean deviation" is not a mean absolute
  deviation.
* **median / p90 / p99** -- percentiles (linear interpolation) of the same RTT sample.
* **jitter** -- mean absolute difference of the RTTs of consecutive answered probes of the
  stream, in sequence order (duplicates excluded): the "instantaneous packet delay variation"
  of RFC 3393 averaged, the figure irtt and many VoIP tools call jitter.

Some files also carry the figures the measuring tool printed itself (the original ping-exp
kept ``ping``'s own summary lines): :func:`reported_summary` returns them beside, never instead
of, the recomputed ones. They differ slightly: ``ping`` prints per-reply times rounded (three
significant digits above 100 ms) but sums the exact ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import RunFormatError

__all__ = ["summarize", "reported_summary", "SUMMARY_COLUMNS", "REPORTED_COLUMNS",
           "ANSWERED_STATUSES", "REPLY_STATUSES"]

#: Statuses meaning "this probe was answered" (counted in ``received``).
ANSWERED_STATUSES: tuple[str, ...] = ("ok", "late")
#: Statuses whose RTT enters the RTT statistics (iputils adds duplicates too).
REPLY_STATUSES: tuple[str, ...] = ("ok", "late", "duplicate")

#: Columns of the frame :func:`summarize` returns, in order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "sent",
    "received",
    "loss_pct",
    "min",
    "mean",
    "median",
    "p90",
    "p99",
    "max",
    "mdev",
    "jitter",
)


#: Figures a tool may have printed itself (keys of a RUN's ``meta["reported_summary"][stream]``,
#: named as :data:`SUMMARY_COLUMNS` names them).
REPORTED_COLUMNS: tuple[str, ...] = ("sent", "received", "loss_pct", "min", "mean", "max", "mdev")


def summarize(probes) -> pd.DataFrame:
    """Summarize each stream of a PROBES table (or of a :class:`~qoslab.runs.Run`).

    Parameters
    ----------
    probes
        A PROBES DataFrame (columns ``stream``, ``seq``, ``t_sent``, ``rtt_ms``, ``status`` at
        least) or a Run.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``stream`` in order of first appearance, with the columns of
        :data:`SUMMARY_COLUMNS`; RTT figures in milliseconds, NaN for a stream with no reply
        (``jitter`` needs two answered probes).

    Raises
    ------
    RunFormatError
        When a required column is missing.

    Notes
    -----
    See the module docstring for the exact definitions; ``mdev`` is
    :math:`\\sqrt{\\overline{r^2} - \\bar r^2}` over the replies as in iputils, and ``jitter`` is
    :math:`\\frac{1}{n-1}\\sum_i |r_{i+1} - r_i|` over answered probes in ``seq`` order.

    Examples
    --------
    >>> probes = pd.DataFrame({
    ...     "stream": ["a"] * 5, "seq": [1, 2, 3, 4, 5],
    ...     "t_sent": [0.0, 0.2, 0.4, 0.6, 0.8],
    ...     "rtt_ms": [10.0, 12.0, np.nan, 11.0, 15.0],
    ...     "status": ["ok", "ok", "lost", "ok", "ok"]})
    >>> s = summarize(probes).loc["a"]
    >>> int(s["sent"]), int(s["received"]), float(s["loss_pct"])
    (5, 4, 20.0)
    >>> float(s["mean"]), round(float(s["mdev"]), 3), round(float(s["jitter"]), 3)
    (12.0, 1.871, 2.333)
    """
    probes = getattr(probes, "probes", probes)
    required = ("stream", "seq", "t_sent", "rtt_ms", "status")
    missing = [c for c in required if c not in probes.columns]
    if missing:
        raise RunFormatError(
            f"summarize: PROBES table lacks column(s) {', '.join(missing)}; "
            f"expected at least {', '.join(required)}"
        )
    streams = list(pd.unique(probes["stream"].dropna()))
    rows = [_summarize_stream(probes[probes["stream"] == s]) for s in streams]
    out = pd.DataFrame(rows, index=pd.Index(streams, name="stream"), columns=SUMMARY_COLUMNS)
    out["sent"] = out["sent"].astype("int64")
    out["received"] = out["received"].astype("int64")
    return out


def _summarize_stream(df: pd.DataFrame) -> list[float]:
    status = df["status"].astype("string").fillna("").to_numpy(dtype=object)
    rtt = pd.to_numeric(df["rtt_ms"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    is_dup = status == "duplicate"
    answered = np.isin(status, ANSWERED_STATUSES) & np.isfinite(rtt)
    replies = np.isin(status, REPLY_STATUSES) & np.isfinite(rtt)
    sent = int((~is_dup).sum())
    received = int(answered.sum())
    loss = 100.0 * (sent - received) / sent if sent else np.nan
    sample = rtt[replies]
    if sample.size:
        mean = float(sample.mean())
        var = float(np.mean(sample * sample) - mean * mean)
        mdev = float(np.sqrt(max(var, 0.0)))
        p50, p90, p99 = (float(v) for v in np.percentile(sample, [50, 90, 99]))
        stats = [float(sample.min()), mean, p50, p90, p99, float(sample.max()), mdev]
    else:
        stats = [np.nan] * 7
    order = np.lexsort(
        (
            df["t_sent"].to_numpy(dtype="float64", na_value=np.nan),
            pd.to_numeric(df["seq"]).to_numpy(dtype="float64", na_value=np.inf),
        )
    )
    in_order = rtt[order][answered[order]]
    jitter = float(np.mean(np.abs(np.diff(in_order)))) if in_order.size >= 2 else np.nan
    return [sent, received, loss, *stats, jitter]


def reported_summary(run) -> pd.DataFrame:
    """The summary figures the measuring tool printed itself, per stream, where the file has them.

    A RUN loaded from an original ping-exp file keeps what ``ping`` printed for each experiment
    (its ``packets transmitted`` and ``rtt min/avg/max/mdev`` lines) in
    ``meta["reported_summary"]``; that is what ping-exp's own figure shows.

    Parameters
    ----------
    run
        A :class:`~qoslab.runs.Run` (a bare PROBES frame has none).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``stream`` (only streams with reported figures, in run order), columns
        :data:`REPORTED_COLUMNS` (NaN where the tool printed nothing, e.g. no rtt line when
        every probe was lost) and ``by`` (which tool printed them). Empty when the run has none.

    Examples
    --------
    >>> import qoslab
    >>> from qoslab.runs import Run
    >>> run = Run({"stream": ["a", "a"], "host": ["h"] * 2, "tos": [0] * 2, "size": [56] * 2,
    ...            "seq": [1, 2], "t_sent": [0.2, 0.4], "rtt_ms": [150.0, 151.0],
    ...            "status": ["ok", "ok"], "ttl": [64, 64]},
    ...           meta={"reported_summary": {"a": {"by": "ping", "sent": 2, "received": 2,
    ...                                           "loss_pct": 0, "mean": 150.42}}})
    >>> row = reported_summary(run).loc["a"]
    >>> float(row["mean"]), row["by"]
    (150.42, 'ping')
    >>> float(summarize(run).loc["a", "mean"])  # recomputed from the rounded replies
    150.5
    """
    meta = getattr(run, "meta", None) or {}
    reported = meta.get("reported_summary") or {}
    probes = getattr(run, "probes", None)
    order = list(pd.unique(probes["stream"].dropna())) if probes is not None else []
    order += [s for s in reported if s not in order]
    rows, index = [], []
    for stream in order:
        figures = reported.get(stream)
        if not isinstance(figures, dict):
            continue
        index.append(stream)
        rows.append([_number(figures.get(k)) for k in REPORTED_COLUMNS]
                    + [str(figures.get("by") or "?")])
    return pd.DataFrame(rows, index=pd.Index(index, name="stream", dtype=object),
                        columns=[*REPORTED_COLUMNS, "by"])


def _number(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
