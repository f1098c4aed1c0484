"""What-if explorer: your capture through a qdisc, keys, perturb interval and rate of your
choice — per-flow queueing delay with spikes on the hash changes, and who shared a bucket."""

from __future__ import annotations

import html
import time
from typing import Any

from ..analysis import spikes_vs_events
from ..plots import latency_chart, occupancy, occupancy_window
from ..replay.whatif import WHATIF_PARAMS, shared_buckets, what_if
from ..replay.whatif import occupancy as occupancy_of
from ._base import Explorer, alignment_text, figure_bundle, html_bundle, table_bundle
from .controls import ParamControls

__all__ = ["WhatIfExplorer"]


class WhatIfExplorer(Explorer):
    """Choose the qdisc, keys, perturb interval, rate, limit and era; press Run.

    The controls come from :data:`qoslab.replay.whatif.WHATIF_PARAMS`. A run replays the
    capture (:func:`qoslab.replay.whatif.what_if`) and shows per-flow queueing delay as a
    zoomable chart with the hash changes and the spike events, which flows shared a bucket in
    which seed epoch, and the buckets' occupancy around the first spike event.

    Parameters
    ----------
    packets
        A PACKETS frame (:func:`qoslab.read_capture`).
    **values
        Initial values (``perturb=5``, ``rate=300e3`` …).

    Attributes
    ----------
    run, report, shared
        The current replay RUN, its :func:`qoslab.analysis.spikes_vs_events` report and its
        :func:`~qoslab.replay.whatif.shared_buckets` table.
    queue
        The OCCUPANCY rows drawn (:func:`qoslab.plots.occupancy_window`: around the first
        spike event).

    Examples
    --------
    >>> import qoslab
    >>> pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
    >>> ex = WhatIfExplorer(pk, perturb=5)
    >>> ex.params["rate"].editor.value, ex.params["qdisc"].read()
    ('400kbit', 'sfq')
    """

    run_button = True

    def __init__(self, packets, **values: Any) -> None:
        super().__init__()
        self.packets = packets
        self._controls = ParamControls(WHATIF_PARAMS, values)
        self.params = self._controls.controls
        self.controls = []
        self._key = f"what-if-{id(self):x}"
        self._finish_init(observe=[c.editor for c in self._controls], initial=False)
        self.params["qdisc"].observe(self._apply_qdisc)
        self.params["keys"].observe(self._apply_qdisc)
        self._apply_qdisc()
        grid = self.w.VBox([c.widget for c in self._controls],
                           layout=self.w.Layout(margin="0 0 6px 0"))
        self.widget.children = (self.widget.children[0], grid, *self.widget.children[1:])
        self.refresh()

    def values(self) -> dict[str, Any]:
        """The checked values of every control (raises the parameter's message if one is bad);
        a control disabled for the chosen qdisc gives its neutral value (no keys, no
        perturbation)."""
        values = self._controls.read()
        if self.params["keys"].disabled:
            values["keys"] = ""
        if self.params["perturb"].disabled:
            values["perturb"] = 0
        return values

    def _apply_qdisc(self, _change=None) -> None:
        """Disable what cannot work for the chosen qdisc: a pfifo has no buckets (no keys, no
        perturbation); fq_codel perturbs nothing of its own (only an attached flow filter
        does)."""
        qdisc = self.params["qdisc"].editor.value
        keys = self.params["keys"]
        keys.disabled = qdisc == "pfifo"
        keys.editor.tooltip = ("a pfifo has no buckets for a flow filter to choose"
                               if keys.disabled else keys.param.help)
        perturb = self.params["perturb"]
        perturb.disabled = qdisc == "pfifo" or (
            qdisc == "fq_codel" and not str(keys.editor.value).strip())
        perturb.editor.tooltip = (f"{qdisc} has no perturbation of its own"
                                  + (" (a flow filter's keys would have one)"
                                     if qdisc == "fq_codel" else "")
                                  if perturb.disabled else perturb.param.help)

    def busy_text(self) -> str:
        return f"replaying {len(self.packets):,} packets …"

    def update(self) -> None:
        """Replay with the current controls and redraw (raises on error)."""
        values = self.values()
        start = time.perf_counter()
        self.run = what_if(self.packets, **values)
        self.report = spikes_vs_events(self.run, kind="hash_change")
        self.shared = shared_buckets(self.run.decisions)
        title = self.run.meta["tc"].splitlines()[-1] + f" at {values['rate'] / 1e3:g} kbit/s"
        self.chart = latency_chart(self.run, kind="scatter", spikes=self.report.events,
                                   logy=True, title=title, key=self._key,
                                   subtitle="time in the qdisc per packet, one stream per flow")
        perturb = values["perturb"] or 10
        occ = occupancy_of(self.run.decisions)
        self.queue = window = occupancy_window(occ, self.report.events, period=perturb)
        bundles = [html_bundle(self.chart.to_html(), title),
                   table_bundle(self.shared, caption="flows that shared a bucket, per seed "
                                "epoch")]
        if len(window) and values["qdisc"] != "pfifo":  # a FIFO has no buckets to show
            bundles.append(figure_bundle(occupancy(window, events=self.run.events)))
        self.show(*bundles)
        d = self.run.decisions
        self.status.value = html.escape(
            f"✓ replayed in {time.perf_counter() - start:.2f} s: {len(d):,} packets of "
            f"{self.run.meta['flows']} flows, {int(d['dropped'].sum()):,} dropped, "
            f"{self.report.n_events} spike event(s); "
            f"{alignment_text(self.report.alignment, values['perturb'])}")

    @property
    def figure(self):
        """The static matplotlib figure of the current chart."""
        return self.chart.figure()
