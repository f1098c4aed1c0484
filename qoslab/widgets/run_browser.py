"""Run browser: pick one run or several (compared as flent does), streams and the plot kind."""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping, Sequence

import pandas as pd

from ..analysis import summarize
from ..errors import ConfigError
from ..plots import combine_runs, compare, latency_chart
from ..plots.compare import as_named_runs
from ..plots.kinds import PLOT_KINDS, plot_kind
from ..runs import Run
from ..schema import has_occupancy
from ._base import Explorer, figure_bundle, html_bundle, table_bundle

__all__ = ["RunBrowser", "browse_run", "browse_runs", "kinds_for", "CHART_KINDS"]

#: Plot kinds drawn as zoomable charts (latency against time).
CHART_KINDS = ("scatter", "line")
#: Kinds whose figure draws EVENTS.
_EVENT_KINDS = ("pingexp", "scatter", "line", "loss", "occupancy")


def kinds_for(runs: Sequence[Run]) -> list[str]:
    """The plot kinds that can draw these runs (``occupancy`` only for one run that has it,
    ``load`` only for runs with SAMPLES).

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> "occupancy" in kinds_for([run]), "cdf" in kinds_for([run, run])
    (False, True)
    """
    out = []
    for kind in PLOT_KINDS:
        if kind == "occupancy" and not (len(runs) == 1 and has_occupancy(runs[0])):
            continue
        if kind == "load" and not any(len(getattr(r, "samples", ())) for r in runs):
            continue  # nothing measured the load
        out.append(kind)
    return out


def browse_run(run: Run, kind: str = "pingexp", streams: Sequence[str] | None = None,
               events: bool = True, lines: bool = False):
    """The run browser's computation for one run: ``(figure or chart, summary table)``.

    Latency against time (``scatter``, ``line``) is a zoomable :class:`~qoslab.plots.Chart`;
    the other kinds are matplotlib figures.

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig, table = browse_run(run, "cdf", ["Ping (ms) UDP"])
    >>> len(fig.axes[0].lines), list(table.index)
    (1, ['Ping (ms) UDP'])
    """
    return browse_runs({"run": run}, kind, streams, events, lines)


def browse_runs(runs: Mapping[str, Run], kind: str = "cdf",
                streams: Sequence[str] | None = None, events: bool = True,
                lines: bool = False):
    """:func:`browse_run` for several runs: compared (one colour per run for ``cdf`` and
    ``box``; streams prefixed with the run's name otherwise).

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig, table = browse_runs({"a": run, "b": run}, "box", ["Ping (ms) UDP"])
    >>> list(table.index)
    ['a: Ping (ms) UDP', 'b: Ping (ms) UDP']
    """
    runs = dict(runs)
    if not runs:
        raise ConfigError("select at least one run")
    if kind not in kinds_for(list(runs.values())):
        why = ("only simulated runs record which queue each flow used, one run at a time"
               if kind == "occupancy" else f"choose from {', '.join(PLOT_KINDS)}")
        raise ConfigError(f"plot kind {kind!r} cannot draw this selection: {why}")
    streams = list(streams) if streams else None
    several = len(runs) > 1
    if several and kind in ("cdf", "box"):
        fig = compare(runs, kind, streams=streams)
        combined = combine_runs(runs)
    else:
        combined = combine_runs(runs)
        if several and streams:  # a stream selected in one run: in each run that has it
            streams = [f"{n}: {s}" for n in runs for s in streams
                       if s in runs[n].streams]
        if kind in CHART_KINDS:
            fig = latency_chart(combined, "line" if (lines or kind == "line") else "scatter",
                                streams, events=events)
        else:
            fig = plot_kind(combined, kind, streams, lines=lines, events=events)
    table = summarize(combined.probes)
    if streams:
        wanted = set(streams) | {f"{n}: {s}" for n in runs for s in streams}
        table = table.loc[[s for s in table.index if s in wanted]]
    return fig, table.round(3)


class RunBrowser(Explorer):
    """Browse RUN files: choose one run or several, streams and a plot kind.

    With several runs selected, CDFs and boxes give each run one colour (flent's multi-file
    plots) and the other kinds prefix every stream with its run's name. Only the kinds that
    can draw the selection are offered (``occupancy`` needs one simulated run), the events
    switch names the EVENTS kinds the runs have, and a run given twice (same probes, same
    META) is listed once.

    Parameters
    ----------
    runs
        A Run, a path, a sequence of those, or a mapping name -> Run/path. Paths are loaded
        with :func:`qoslab.load` (RUN, journal, flent or ping-exp files).
    kind
        Initial plot kind (a key of :data:`qoslab.plots.PLOT_KINDS`).
    select
        Names of the runs selected at first (default: the first).

    Attributes
    ----------
    figure, table
        The current figure (or chart) and summary table.
    aliases
        ``{name: name it duplicates}`` for runs given more than once.

    Examples
    --------
    >>> import qoslab
    >>> rb = RunBrowser(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"), kind="hist")
    >>> rb.kind.value = "cdf"
    >>> len(rb.figure.axes[0].lines)
    2
    """

    def __init__(self, runs, kind: str = "pingexp", select: Sequence[str] | None = None
                 ) -> None:
        super().__init__()
        w = self.w
        self.runs, self.aliases = _unique_runs(as_named_runs(runs))
        if not any(len(r.probes) for r in self.runs.values()):
            raise ConfigError("RunBrowser: none of the runs has any probe to plot")
        if kind not in PLOT_KINDS:
            raise ConfigError(f"unknown plot kind {kind!r}; choose from {', '.join(PLOT_KINDS)}")
        names = list(self.runs)
        chosen = [self.aliases.get(n, n) for n in (select or names[:1])]
        bad = [n for n in chosen if n not in self.runs]
        if bad:
            raise ConfigError(f"RunBrowser: no run {bad[0]!r}; runs are {', '.join(names)}")
        labels = [(self._run_label(n), n) for n in names]
        self.run = w.SelectMultiple(options=labels, value=tuple(dict.fromkeys(chosen)),
                                    description="runs", rows=min(6, max(2, len(names))),
                                    layout=w.Layout(width="26em"),
                                    tooltip="Ctrl/Shift + click: compare several runs")
        self.kind = w.Dropdown(description="plot", layout=w.Layout(width="30em"))
        self.streams = w.SelectMultiple(description="streams", rows=4,
                                        layout=w.Layout(width="26em"))
        self.events = w.Checkbox(value=True, description="events", indent=False)
        self.lines = w.Checkbox(value=False, description="lines (ping-exp -l)", indent=False)
        self.controls = [self.run, self.kind, self.streams, self.events, self.lines]
        self._compute = functools.lru_cache(maxsize=16)(self._compute_uncached)
        self._held += 1
        try:
            self._fill(kind)
        finally:
            self._held -= 1
        self.run.observe(self._on_run_change, names="value")
        self.kind.observe(self._on_kind_change, names="value")
        self._finish_init(observe=[self.streams, self.events, self.lines],
                          rows=[w.HBox([self.run, self.streams]),
                                w.HBox([self.kind, self.events, self.lines])])

    def _run_label(self, name: str) -> str:
        same = [a for a, b in self.aliases.items() if b == name]
        return name + (f" (= {', '.join(same)})" if same else "")

    @property
    def selected(self) -> dict[str, Run]:
        """The selected runs, by name."""
        return {n: self.runs[n] for n in self.run.value}

    def _fill(self, kind: str | None = None) -> None:
        """Options of every control for the selected runs (no update in between)."""
        runs = self.selected
        kinds = kinds_for(list(runs.values())) if runs else list(PLOT_KINDS)
        wanted = kind or self.kind.value
        self.kind.options = [(f"{k}: {PLOT_KINDS[k]}", k) for k in kinds]
        self.kind.value = wanted if wanted in kinds else ("cdf" if "cdf" in kinds else kinds[0])
        streams = list(dict.fromkeys(s for r in runs.values() for s in r.streams))
        old = set(self.streams.value)
        self.streams.options = streams
        kept = tuple(s for s in streams if s in old)
        self.streams.value = kept or tuple(streams)
        kinds_seen = sorted({str(k) for r in runs.values()
                             for k in r.events["kind"].dropna().unique()})
        self.events.description = ("events: " + ", ".join(k.replace("_", " ")
                                                          for k in kinds_seen)
                                   if kinds_seen else "events (none in this run)")
        self.events.layout.width = "auto"
        self._switches()

    def _switches(self) -> None:
        """Disable what cannot work for the chosen kind and runs."""
        has_events = "(none" not in self.events.description
        self.events.disabled = self.kind.value not in _EVENT_KINDS or not has_events
        self.lines.disabled = self.kind.value not in ("pingexp", "scatter")

    def _on_run_change(self, _change) -> None:
        self._held += 1
        try:
            self._fill()
        finally:
            self._held -= 1
        self.refresh()

    def _on_kind_change(self, _change) -> None:
        self._switches()
        self._on_change()

    def _compute_uncached(self, run_names: tuple, kind: str, streams: tuple, events: bool,
                          lines: bool):
        return browse_runs({n: self.runs[n] for n in run_names}, kind, streams, events, lines)

    def update(self) -> None:
        """Redraw for the current controls (raises on error)."""
        if not self.run.value:
            raise ConfigError("select at least one run")
        if not self.streams.value:
            raise ConfigError("select at least one stream")
        self.figure, self.table = self._compute(tuple(self.run.value), self.kind.value,
                                                tuple(self.streams.value),
                                                self.events.value and not self.events.disabled,
                                                self.lines.value and not self.lines.disabled)
        if hasattr(self.figure, "to_html"):
            shown = html_bundle(self.figure.to_html(), repr(self.figure))
        else:
            shown = figure_bundle(self.figure)
        self.show(shown, table_bundle(self.table, caption="summary"))
        names = list(self.run.value)
        what = (f"{len(self.streams.value)} stream(s) of {names[0]!r}" if len(names) == 1
                else f"{len(names)} runs compared")
        self.status.value = html.escape(f"{what}: {PLOT_KINDS[self.kind.value]}")


def _fingerprint(run: Run) -> tuple:
    probes = pd.util.hash_pandas_object(run.probes, index=False)
    events = pd.util.hash_pandas_object(run.events, index=False)
    meta = {k: v for k, v in run.meta.items() if k not in ("occupancy", "flows", "traffic")}
    return (len(run.probes), int(probes.sum()), int(events.sum()), repr(sorted(meta.items())))


def _unique_runs(runs: dict[str, Run]) -> tuple[dict[str, Run], dict[str, str]]:
    """Drop runs given twice (the same object, or the same probes, events and META)."""
    out: dict[str, Run] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, run in runs.items():
        key = _fingerprint(run)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        out[name] = run
    return out, aliases
