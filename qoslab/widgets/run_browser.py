"""Run browser: pick a RUN, its streams and the kind of plot."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError
from ..plots.kinds import PLOT_KINDS, plot_kind
from ..runs import Run
from ._base import Explorer, figure_bundle, table_bundle

__all__ = ["RunBrowser", "browse_run"]


def browse_run(run: Run, kind: str = "pingexp", streams: Sequence[str] | None = None,
               events: bool = True, lines: bool = False):
    """The run browser's computation: ``(figure, summary table)`` for one choice of controls.

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> fig, table = browse_run(run, "cdf", ["Ping (ms) UDP"])
    >>> len(fig.axes[0].lines), list(table.index)
    (1, ['Ping (ms) UDP'])
    """
    from ..analysis import summarize

    streams = list(streams) if streams else None
    fig = plot_kind(run, kind, streams, lines=lines, events=events)
    table = summarize(run.probes)
    if streams:
        table = table.loc[[s for s in table.index if s in streams]]
    return fig, table.round(3)


class RunBrowser(Explorer):
    """Browse RUN files: choose a run, streams and a plot kind; see the figure and summary.

    Parameters
    ----------
    runs
        A Run, a path, a sequence of those, or a mapping name -> Run/path. Paths are loaded
        with :func:`qoslab.load` (RUN, journal, flent or ping-exp files).
    kind
        Initial plot kind (a key of :data:`qoslab.plots.PLOT_KINDS`).

    Attributes
    ----------
    figure, table
        The current figure and summary table (what :func:`browse_run` returned).

    Examples
    --------
    >>> import qoslab
    >>> rb = RunBrowser(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"), kind="hist")
    >>> rb.kind.value = "cdf"
    >>> len(rb.figure.axes[0].lines)
    2
    """

    def __init__(self, runs, kind: str = "pingexp") -> None:
        super().__init__()
        w = self.w
        self.runs = _as_runs(runs)
        if kind not in PLOT_KINDS:
            raise ConfigError(f"unknown plot kind {kind!r}; choose from {', '.join(PLOT_KINDS)}")
        names = list(self.runs)
        self.run = w.Dropdown(options=names, value=names[0], description="run")
        self.kind = w.Dropdown(options=[(f"{k}: {v}", k) for k, v in PLOT_KINDS.items()],
                               value=kind, description="plot")
        self.streams = w.SelectMultiple(description="streams", rows=4)
        self.events = w.Checkbox(value=True, description="events (hash changes)")
        self.lines = w.Checkbox(value=False, description="lines (ping-exp -l)")
        self.controls = [self.run, self.kind, self.events, self.streams, self.lines]
        self._compute = functools.lru_cache(maxsize=16)(self._compute_uncached)
        self._fill_streams()
        self.run.observe(self._on_run_change, names="value")
        self._finish_init(observe=[self.kind, self.streams, self.events, self.lines])

    def _fill_streams(self) -> None:
        streams = self.runs[self.run.value].streams
        self._held += 1  # options and value change together: no update in between
        try:
            self.streams.options = streams
            self.streams.value = tuple(streams)
        finally:
            self._held -= 1

    def _on_run_change(self, _change) -> None:
        self._fill_streams()
        self.refresh()

    def _compute_uncached(self, run_name: str, kind: str, streams: tuple, events: bool,
                          lines: bool):
        return browse_run(self.runs[run_name], kind, streams, events, lines)

    def update(self) -> None:
        """Redraw for the current controls (raises on error)."""
        if not self.streams.value:
            raise ConfigError("select at least one stream")
        self.figure, self.table = self._compute(self.run.value, self.kind.value,
                                                tuple(self.streams.value), self.events.value,
                                                self.lines.value)
        self.show(figure_bundle(self.figure), table_bundle(self.table, caption="summary"))
        self.status.value = (f"{len(self.streams.value)} stream(s) of {self.run.value!r}: "
                             f"{PLOT_KINDS[self.kind.value]}")


def _as_runs(runs) -> dict[str, Run]:
    from ..io import load

    if isinstance(runs, (Run, str, os.PathLike)):
        runs = [runs]
    if isinstance(runs, Mapping):
        items = list(runs.items())
    else:
        items = []
        for i, r in enumerate(runs):
            name = Path(r).name if isinstance(r, (str, os.PathLike)) else (
                r.meta.get("title") or f"run {i + 1}")
            items.append((str(name), r))
    out: dict[str, Run] = {}
    for name, r in items:
        run = load(r) if isinstance(r, (str, os.PathLike)) else r
        if not isinstance(run, Run):
            raise ConfigError(f"{name}: expected a Run or a file path, got {type(run).__name__}")
        while name in out:
            name += "'"
        out[name] = run
    if not out:
        raise ConfigError("RunBrowser: give at least one run")
    if not any(len(r.probes) for r in out.values()):
        raise ConfigError("RunBrowser: none of the runs has any probe to plot")
    return out

