"""Compare runs as flent does with several data files: overlaid CDFs, boxplots, time series.

Each run keeps one colour in every panel; when a run has several streams they differ by line
style (CDF, time series) or sit side by side (boxes). Runs are given as a mapping name -> RUN
(or file path), or as a sequence (named by their file name or META title).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.summary import ANSWERED_STATUSES, REPLY_STATUSES
from ..errors import ConfigError
from ..io import load
from ..runs import Run
from ._common import as_float, log_axis, new_axes, plot_style, short_labels, stream_colors

__all__ = ["compare", "combine_runs", "as_named_runs", "COMPARE_KINDS"]

#: What :func:`compare` can draw.
COMPARE_KINDS: dict[str, str] = {
    "cdf": "RTT CDFs overlaid, one colour per run",
    "box": "RTT boxes per run and stream (quartiles, whiskers p1–p99)",
    "timeseries": "RTT against time, runs overlaid",
}
_STYLES = ("-", "--", ":", "-.")


def as_named_runs(runs) -> dict[str, object]:
    """``{name: Run}`` from a mapping, a sequence of Runs/paths, or one Run/path.

    Paths are loaded with :func:`qoslab.load`; names default to the file name (without
    ``.json.gz`` / ``.flent.gz``) or the run's title; duplicates get ``" (2)"``, ``" (3)"``.

    Examples
    --------
    >>> import qoslab
    >>> r = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> list(as_named_runs([r, r]))
    ['qa-ping-test', 'qa-ping-test (2)']
    """
    if isinstance(runs, (Run, str, os.PathLike)):
        runs = [runs]
    if isinstance(runs, Mapping):
        items = [(str(k), v) for k, v in runs.items()]
    else:
        items = []
        for i, r in enumerate(runs):
            if isinstance(r, (str, os.PathLike)):
                name = _file_stem(Path(r))
            else:
                meta = getattr(r, "meta", {}) or {}
                name = str(meta.get("title") or meta.get("scenario") or f"run {i + 1}")
            items.append((name, r))
    out: dict[str, object] = {}
    for name, r in items:
        run = load(r) if isinstance(r, (str, os.PathLike)) else r
        if not isinstance(run, Run):
            raise ConfigError(f"{name}: expected a Run or a file path, got {type(run).__name__}")
        unique, n = name, 1
        while unique in out:
            n += 1
            unique = f"{name} ({n})"
        out[unique] = run
    if not out:
        raise ConfigError("compare: give at least one run")
    return out


def _file_stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".partial", ".json", ".flent", ".run"):
        name = name.removesuffix(suffix)
    return name or path.name


def combine_runs(runs) -> object:
    """Merge runs into one RUN, prefixing stream labels with the run's name (when several).

    EVENTS keep their kind with the run's name in front of their detail; SAMPLES series get
    the same prefix as the streams.

    Examples
    --------
    >>> import qoslab
    >>> r = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> combine_runs({"x": r, "y": r}).streams[:2]
    ['x: Ping (ms) ICMP', 'x: Ping (ms) UDP']
    """
    runs = as_named_runs(runs)
    if len(runs) == 1:
        return next(iter(runs.values()))
    probes, events, samples = [], [], []
    for name, run in runs.items():
        p = run.probes.copy()
        p["stream"] = (name + ": " + p["stream"].astype("string")).astype("string")
        probes.append(p)
        e = run.events.copy()
        e["detail"] = (name + ": " + e["detail"].fillna("").astype("string")).astype("string")
        events.append(e)
        s = run.samples.copy()
        if len(s):
            s["series"] = (name + ": " + s["series"].astype("string")).astype("string")
            samples.append(s)
    meta = {"title": " vs ".join(runs), "combined_from": list(runs)}
    extra = {"samples": pd.concat(samples, ignore_index=True)} if samples else {}
    return Run(pd.concat(probes, ignore_index=True), pd.concat(events, ignore_index=True), meta,
               **extra)


def _stream_values(run, stream: str, *, replies: bool) -> tuple[np.ndarray, int]:
    """RTTs of one stream (answered, or every reply) and the number of probes sent."""
    mine = run.probes[run.probes["stream"] == stream]
    rtt = as_float(mine["rtt_ms"])
    ok = mine["status"].isin(REPLY_STATUSES if replies else ANSWERED_STATUSES).fillna(False)
    values = rtt[ok.to_numpy() & np.isfinite(rtt)]
    sent = int((mine["status"] != "duplicate").fillna(True).sum())
    return values, sent


def compare(runs, kind: str = "cdf", streams: Sequence[str] | None = None, *,
            logx: bool = False, count_lost: bool = True) -> Figure:
    """Draw several runs on one figure (flent's multi-file plots).

    Parameters
    ----------
    runs
        Mapping name -> Run (or path), or a sequence of Runs/paths (see :func:`as_named_runs`).
    kind
        ``"cdf"``, ``"box"`` or ``"timeseries"`` (:data:`COMPARE_KINDS`).
    streams
        Stream labels to keep (in each run; default every stream of every run).
    logx
        Logarithmic RTT axis (CDF).
    count_lost
        CDF normalised by probes sent, so a lossy run tops out below 1 (as
        :func:`qoslab.plots.cdf`).

    Returns
    -------
    matplotlib.figure.Figure
        One Line2D (cdf, timeseries) or box (box) per (run, stream), gid ``"run:<name>"``.

    Examples
    --------
    >>> import qoslab
    >>> a = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig = compare({"A": a, "B": a}, "cdf")
    >>> sorted({ln.get_gid() for ln in fig.axes[0].lines})
    ['run:A', 'run:B']
    """
    if kind not in COMPARE_KINDS:
        raise ConfigError(f"unknown compare kind {kind!r}; choose from {', '.join(COMPARE_KINDS)}")
    named = as_named_runs(runs)
    colors = stream_colors(list(named))
    chosen: dict[str, list[str]] = {}
    for name, run in named.items():
        own = run.streams
        chosen[name] = [s for s in own if streams is None or s in streams]
    if not any(chosen.values()):
        known = sorted({s for r in named.values() for s in r.streams})
        raise ConfigError(f"no stream {', '.join(map(repr, streams or []))} in these runs; "
                          f"streams are {', '.join(map(repr, known))}")
    several = max(len(v) for v in chosen.values()) > 1
    title = " vs ".join(named) if len(named) <= 4 else f"{len(named)} runs"
    if kind == "box":
        return _boxes(named, chosen, colors, title)
    fig, ax = new_axes(None, figsize=(9, 4.5) if kind == "timeseries" else (7.5, 4.3))
    with plot_style():
        for name, run in named.items():
            for i, stream in enumerate(chosen[name]):
                label = (stream if len(named) == 1 else f"{name}: {stream}" if several
                         else name)
                style = _STYLES[i % len(_STYLES)]
                if kind == "cdf":
                    values, sent = _stream_values(run, stream, replies=False)
                    values = np.sort(values)
                    total = sent if count_lost else values.size
                    if values.size == 0 or total == 0:
                        continue
                    x = np.concatenate([[values[0]], values])
                    y = np.concatenate([[0.0], np.arange(1, values.size + 1) / total])
                    ax.plot(x, y, drawstyle="steps-post", color=colors[name], linestyle=style,
                            label=label, gid=f"run:{name}")
                else:
                    mine = run.probes[run.probes["stream"] == stream].sort_values("t_sent")
                    ok = mine["status"].isin(REPLY_STATUSES).fillna(False).to_numpy()
                    rtt = np.where(ok, as_float(mine["rtt_ms"]), np.nan)
                    ax.plot(as_float(mine["t_sent"]), rtt, color=colors[name], linestyle=style,
                            linewidth=1.0, label=label, gid=f"run:{name}")
        if kind == "cdf":
            ax.set_xlabel("RTT (ms)")
            ax.set_ylabel("fraction of probes sent" if count_lost else "fraction of replies")
            ax.set_ylim(0, 1.02)
            if logx:
                log_axis(ax, "x")
            ax.set_title(f"RTT CDF: {title}")
        else:
            ax.set_xlabel("time since start (s)")
            ax.set_ylabel("RTT (ms)")
            ax.set_ylim(bottom=0)
            ax.set_title(f"Latency over time: {title}")
        if ax.lines:
            ax.legend(loc="lower right" if kind == "cdf" else "upper left",
                      bbox_to_anchor=None if kind == "cdf" else (1.0, 1.0))
    return fig


def _boxes(named, chosen, colors, title) -> Figure:
    labels, data, box_colors, gids = [], [], [], []
    several = max(len(v) for v in chosen.values()) > 1
    for name, run in named.items():
        for stream in chosen[name]:
            values, _sent = _stream_values(run, stream, replies=True)
            labels.append(stream if len(named) == 1 else f"{name}: {stream}" if several
                          else name)
            data.append(values if values.size else np.array([np.nan]))
            box_colors.append(colors[name])
            gids.append(f"run:{name}")
    fig, ax = new_axes(None, figsize=(max(5.0, 0.9 * len(labels) + 2.5), 4.3))
    with plot_style():
        parts = ax.boxplot(data, whis=(1, 99), showfliers=False, patch_artist=True,
                           medianprops={"color": "black"})
        for patch, median, color, gid in zip(parts["boxes"], parts["medians"], box_colors, gids,
                                             strict=True):
            patch.set_facecolor((*color[:3], 0.35))
            patch.set_edgecolor(color)
            patch.set_gid(gid)
            median.set_gid("median:" + gid.removeprefix("run:"))
        ax.set_xticks(range(1, len(labels) + 1), short_labels(labels, width=26), rotation=25,
                      ha="right", fontsize="small")
        ax.set_ylabel("RTT (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(axis="x", visible=False)
        ax.set_title(f"RTT per run: {title}\n(box: quartiles, line: median, whiskers: p1–p99)",
                     fontsize="medium")
    return fig
