"""The kinds of plot ``qoslab plot --kind`` and :func:`qoslab.plots.plot_kind` draw.

Plain data, outside :mod:`qoslab.plots` so that the command line can list the kinds without
loading matplotlib (``qoslab --help`` and every other subcommand stay quick).
"""

from __future__ import annotations

__all__ = ["PLOT_KINDS"]

#: Plot kinds and what each draws.
PLOT_KINDS: dict[str, str] = {
    "pingexp": "ping-exp's figure: latency, loss/mean/mdev bars, histogram, loss over time",
    "scatter": "latency against time, one point per reply",
    "line": "latency against time, one line per stream",
    "cdf": "RTT CDF (lost probes count as never answered)",
    "hist": "RTT histogram, 2 ms bins",
    "loss": "unanswered probes against time",
    "bars": "loss %, mean and mdev per stream",
    "box": "RTT boxes per stream (several files: per file), quartiles, whiskers p1–p99",
    "occupancy": "which queue (bucket, class, band) each flow used over time (simulated runs)",
    "load": "latency under load: RTT over time above the load's throughput (flent's all/totals)",
}
