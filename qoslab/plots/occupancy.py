"""Which queue (bucket, class, band) each flow occupies over time, and when flows share one.

Input contract: an OCCUPANCY frame (:data:`qoslab.schema.OCCUPANCY`; a RUN's samples come from
:func:`qoslab.schema.occupancy_table`), one row per observation (a packet, or a simulator
sample); the columns drawn:

=========  ==========================================================================
``t``      float seconds since the start (PACKETS ``t``, RUN time base)
``flow``   the flow's label (any value; shown as text), e.g. from :func:`flow_labels`
``bucket`` integer queue index: SFQ/fq_codel bucket, ``cls_flow`` class minor, pfifo_fast
           band; ``-1`` means "dropped by the classifier" and is drawn on its own row
=========  ==========================================================================

Build one from a capture with :func:`occupancy_frame` (``packets`` plus the array that
``Sfq.bucket`` / ``FlowClassifier.classify`` / ``fq_codel_index`` returned for it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .. import schema
from ..errors import ConfigError
from ..labels import flow_labels  # re-exported: the one flow label
from ._common import as_float, new_axes, plot_style, stream_colors
from .timeseries import overlay_events

__all__ = ["occupancy", "occupancy_frame", "occupancy_window", "flow_labels", "shared_buckets",
           "OCCUPANCY_COLUMNS"]

#: Columns of an OCCUPANCY frame the figure needs (the first three of the schema).
OCCUPANCY_COLUMNS: tuple[str, ...] = tuple(schema.OCCUPANCY)[:3]


def occupancy_frame(packets: pd.DataFrame, buckets, flow=None) -> pd.DataFrame:
    """Build an OCCUPANCY frame from PACKETS and the queue index of each packet.

    Parameters
    ----------
    packets
        PACKETS table (needs ``t``; the address/port columns when ``flow`` is not given).
    buckets
        One integer per packet: the output of ``Sfq.bucket``, ``FlowClassifier.classify``,
        ``fq_codel_index`` or ``pfifo_fast_band``.
    flow
        Flow label per packet (default :func:`flow_labels`).

    Examples
    --------
    >>> p = pd.DataFrame({"t": [0.0, 1.0], "src": ["a", "b"], "dst": ["c", "c"],
    ...                   "proto": [1, 1], "sport": [pd.NA, pd.NA], "dport": [pd.NA, pd.NA]})
    >>> occupancy_frame(p, [3, 3])["bucket"].tolist()
    [3, 3]
    """
    buckets = np.asarray(buckets)
    if buckets.shape != (len(packets),):
        raise ConfigError(
            f"occupancy_frame: {buckets.shape[0] if buckets.ndim else 0} bucket values for "
            f"{len(packets)} packets; expected one per packet"
        )
    if "t" not in packets.columns:
        raise ConfigError("occupancy_frame: the packets table has no 't' column (seconds)")
    labels = flow_labels(packets) if flow is None else pd.Series(np.asarray(flow), dtype="string")
    size = (packets["wire_len"].to_numpy() if "wire_len" in packets.columns
            else [None] * len(packets))
    return schema.conform({
        "t": as_float(packets["t"]),
        "flow": labels.to_numpy(),
        "bucket": buckets.astype("int64"),
        "packets": np.ones(len(packets), dtype="int64"),
        "bytes": size,
    }, "occupancy", source="occupancy_frame")


def occupancy_window(frame: pd.DataFrame, spikes: pd.DataFrame | None = None, *,
                     period: float = 10.0) -> pd.DataFrame:
    """The rows of an OCCUPANCY table worth drawing: ``3 × period`` seconds around the first
    spike event, or (without one) from a period before the first moment two flows were
    queued at once (else: anything queued).

    A fixed window from the start shows nothing when the queue forms later (a capture whose
    load starts after ten seconds): an axis of a microsecond and one sample.

    Examples
    --------
    >>> occ = pd.DataFrame({"t": [0.0, 9.0, 9.1, 9.1, 30.0], "flow": ["a", "a", "a", "b", "a"],
    ...                     "bucket": [1, 1, 1, 1, 2], "packets": 1, "bytes": 100})
    >>> occupancy_window(occ, period=3)["t"].tolist()
    [9.0, 9.1, 9.1]
    >>> spikes = pd.DataFrame({"t_start": [29.0], "t_end": [29.5]})
    >>> occupancy_window(occ, spikes, period=3)["t"].tolist()
    [30.0]
    """
    _check(frame)
    if not len(frame):
        return frame
    if spikes is not None and len(spikes) and "t_start" in spikes.columns:
        start = float(pd.to_numeric(spikes["t_start"]).min())
    else:
        flows = frame.groupby("t")["flow"].nunique()
        busy = flows.index[flows.to_numpy() >= 2]
        start = float(busy.min()) if len(busy) else float(frame["t"].min())
    return frame[frame["t"].between(start - period, start + 2 * period)]


def shared_buckets(frame: pd.DataFrame, resolution: float) -> pd.DataFrame:
    """Return the (time bin, bucket) cells holding two or more distinct flows.

    Columns: ``t_bin`` (start of the bin, seconds), ``bucket``, ``flows`` (how many),
    ``members`` (their labels joined by ``" | "``). Bucket ``-1`` (dropped) is never "shared".

    Examples
    --------
    >>> f = pd.DataFrame({"t": [0.1, 0.2, 0.3, 1.5], "flow": ["x", "y", "z", "x"],
    ...                   "bucket": [4, 4, 7, 4]})
    >>> shared_buckets(f, 1.0)[["t_bin", "bucket", "flows"]].values.tolist()
    [[0.0, 4.0, 2.0]]
    """
    _check(frame)
    if not resolution > 0:
        raise ConfigError(f"resolution must be a positive number of seconds, not {resolution}")
    df = frame[frame["bucket"] >= 0]
    tb = np.floor(as_float(df["t"]) / resolution) * resolution
    g = pd.DataFrame({"t_bin": tb, "bucket": df["bucket"].to_numpy(),
                      "flow": df["flow"].astype("string").to_numpy()}).drop_duplicates()
    agg = g.groupby(["t_bin", "bucket"], sort=True)["flow"].agg(
        flows="nunique", members=lambda s: " | ".join(sorted(s)))
    return agg[agg["flows"] >= 2].reset_index()


def occupancy(
    frame: pd.DataFrame,
    resolution: float | None = None,
    compact: bool = True,
    ax: Axes | None = None,
    *,
    events: pd.DataFrame | None = None,
    max_flows: int = 40,
) -> Figure:
    """Plot the bucket (class, band) each flow uses over time and mark shared buckets.

    Parameters
    ----------
    frame
        OCCUPANCY frame (``t``, ``flow``, ``bucket``; see the module docstring).
    resolution
        Width in seconds of the time bins in which two flows in one bucket count as sharing it
        (default: 1/100 of the time span).
    compact
        Give each bucket that is used its own row (labelled with the bucket number) instead of
        a linear axis over all buckets, so 5 flows among 1024 buckets stay readable.
    ax
        Axes to draw into.
    events
        An EVENTS table: its hash changes are drawn as vertical lines (the moments the
        buckets are reshuffled).
    max_flows
        Refuse to draw more flows than this (a legend of hundreds of flows is unreadable);
        filter the frame first.

    Returns
    -------
    matplotlib.figure.Figure
        One LineCollection per flow (gid ``"flow:<label>"``) with a horizontal bar for each
        span of time the flow has packets in a bucket (bars of different flows are offset a
        little inside a bucket's row, so flows sharing a bucket show as parallel bars), and,
        when any bucket is shared, one PathCollection (gid ``"shared"``) marking each shared
        (time bin, bucket).

    Examples
    --------
    >>> f = pd.DataFrame({"t": [0, 1, 2, 0, 1, 2], "flow": list("aaabbb"),
    ...                   "bucket": [5, 5, 9, 1, 5, 5]})
    >>> ax = occupancy(f, resolution=1.0).axes[0]
    >>> [c.get_gid() for c in ax.collections]
    ['flow:a', 'flow:b', 'shared']
    >>> len(ax.collections[-1].get_offsets())
    1
    """
    _check(frame)
    flows = list(pd.unique(frame["flow"].astype("string")))
    if len(flows) > max_flows:
        raise ConfigError(f"{len(flows)} flows to draw; more than max_flows={max_flows}: select "
                          "the flows of interest first (or raise max_flows)")
    t = as_float(frame["t"])
    span = (np.nanmin(t), np.nanmax(t)) if len(t) else (0.0, 1.0)
    if resolution is None:
        resolution = max((span[1] - span[0]) / 100.0, 1e-6)
    used = np.unique(frame["bucket"].to_numpy(dtype="int64"))
    row_of = {b: i for i, b in enumerate(used)} if compact else {b: b for b in used}
    colors = stream_colors(flows)
    # tall enough for its rows and for the legend beside them (a flow per line)
    fig, ax = new_axes(ax, figsize=(9, max(1.5 + 0.3 * min(len(used), 30),
                                           0.8 + 0.17 * (len(flows) + 2))))
    with plot_style():
        label = frame["flow"].astype("string").to_numpy(dtype=object)
        bucket = frame["bucket"].to_numpy(dtype="int64")
        n = len(flows)
        for i, name in enumerate(flows):
            sel = label == name
            offset = (i - (n - 1) / 2) * (0.7 / max(n, 1)) if compact else 0.0
            segments = [
                [(a, row_of[b] + offset), (z, row_of[b] + offset)]
                for b, a, z in _occupied_spans(t[sel], bucket[sel], resolution)
            ]
            ax.add_collection(LineCollection(
                segments, colors=[colors[name]], linewidths=4 if compact else 2,
                capstyle="butt", label=str(name), gid=f"flow:{name}"))
        shared = shared_buckets(frame, resolution)
        if len(shared):
            ax.scatter(shared["t_bin"] + resolution / 2,
                       [row_of[b] for b in shared["bucket"]], marker="s", s=40,
                       facecolors="none", edgecolors="#d62728", linewidths=1.2, zorder=3,
                       label=f"shared by ≥2 flows ({len(shared)} cells)", gid="shared")
        if events is not None and len(events):
            overlay_events(ax, events, kinds=["hash_change"], span=span)
        if compact:
            ticks = list(row_of.values())
            step = max(1, len(ticks) // 30)
            ax.set_yticks(ticks[::step], [_bucket_name(b) for b in used][::step])
        ax.autoscale_view()
        if len(t) and span[1] - span[0] < 1e-3:  # one sample: a second around it, not 1e-6 s
            ax.set_xlim(span[0] - 0.5, span[0] + 0.5)
        ax.set_ylabel("bucket / class")
        ax.set_xlabel("time since start (s)")
        ax.set_title("Queue occupancy by flow")
        if flows:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small")
    return fig


def _occupied_spans(t: np.ndarray, bucket: np.ndarray, resolution: float):
    """Yield ``(bucket, t_from, t_to)``: runs of observations of one flow in one bucket.

    Observations further apart than ``resolution`` (or 1.5 sampling steps, if larger) start a
    new span; each span lasts until its last observation plus one step. A flow can hold two
    buckets at once: the stale queue left behind by a rehash drains while new packets go to
    the new bucket.
    """
    if t.size == 0:
        return
    steps = np.diff(np.unique(t))
    step = float(np.median(steps)) if steps.size else resolution
    gap = max(resolution, 1.5 * step)
    for b in np.unique(bucket):
        tb = np.sort(t[bucket == b])
        breaks = np.flatnonzero(np.diff(tb) > gap)
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [tb.size - 1]])
        for a, z in zip(starts, ends, strict=True):
            yield int(b), float(tb[a]), float(tb[z] + step)


def _bucket_name(b: int) -> str:
    return "dropped" if b < 0 else str(int(b))


def _check(frame: pd.DataFrame) -> None:
    missing = [c for c in OCCUPANCY_COLUMNS if c not in getattr(frame, "columns", ())]
    if missing:
        raise ConfigError(
            f"occupancy frame lacks column(s) {', '.join(missing)}; expected t (seconds), "
            "flow (label) and bucket (integer queue index)"
        )
