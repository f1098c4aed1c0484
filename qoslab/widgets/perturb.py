"""Perturb explorer: rerun the SFQ perturbation scenario and see spikes line up with rehashes."""

from __future__ import annotations

import functools
import html
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import analysis, scenarios
from ..plots import latency_chart
from ..runs import Run
from ._base import Explorer, alignment_text, html_bundle, table_bundle
from .controls import ParamControls

__all__ = ["PerturbExplorer", "PerturbResult", "perturb_experiment", "scenario_parameters",
           "SCENARIO"]

#: The registered scenario the explorer runs (:func:`qoslab.scenarios.get`).
SCENARIO = "sfq_perturb"
#: Parameters shown first, in this order (the others follow in declaration order).
_FIRST = ("perturb", "seed", "duration", "interval", "profile", "limit")


@dataclass(frozen=True)
class PerturbResult:
    """What :func:`perturb_experiment` returns: the RUN and its
    :class:`~qoslab.analysis.SpikeReport` (spikes, spike events, alignment, period)."""

    run: Run
    report: Any

    @property
    def spikes(self) -> pd.DataFrame:
        """Per-stream spikes."""
        return self.report.spikes

    @property
    def alignment(self):
        """:class:`qoslab.analysis.Alignment` of the spike events with the hash changes."""
        return self.report.alignment

    @property
    def period(self):
        """:class:`qoslab.analysis.PeriodEstimate` of the spike-event onsets."""
        return self.report.period

    def alignment_table(self) -> pd.DataFrame:
        """The headline figures (:meth:`qoslab.analysis.SpikeReport.table`)."""
        return self.report.table()


def scenario_params() -> tuple:
    """The :class:`~qoslab.scenarios.Param` tuple of the scenario (one declaration, in the
    registry)."""
    return scenarios.get(SCENARIO).params


def scenario_parameters() -> dict[str, Any]:
    """The scenario's parameters and their defaults, except ``perturb`` and ``seed``.

    Examples
    --------
    >>> p = scenario_parameters()
    >>> "duration" in p and "perturb" not in p
    True
    """
    return {p.name: p.default for p in scenario_params() if p.name not in ("perturb", "seed")}


@functools.lru_cache(maxsize=32)
def perturb_experiment(perturb: float = 5, seed: int = 1, **params) -> PerturbResult:
    """Run the ``sfq_perturb`` scenario, detect spikes, align them to rehashes.

    Cached on its (hashable) arguments, so moving a control back costs nothing. Every value is
    checked by the scenario's parameters (a bad one raises
    :class:`~qoslab.errors.ConfigError` naming it, its unit and the allowed range) before
    anything runs.

    Parameters
    ----------
    perturb
        SFQ perturbation interval in seconds (0: none).
    seed
        Simulator seed (the hash seeds follow from it).
    **params
        Other parameters of the scenario (``qoslab run sfq_perturb --help``), e.g. ``duration``.

    Returns
    -------
    PerturbResult
        The RUN and :func:`qoslab.analysis.spikes_vs_events` of it for the ``hash_change``
        events: spikes, spike events, their alignment and the period from latency alone.

    Examples
    --------
    >>> res = perturb_experiment(perturb=5, seed=1, duration=120.0)
    >>> res.alignment.fraction > 0.5, round(float(res.period.period))
    (True, 5)
    """
    # the explorer's one call into an experiment: the registry, simulator backend
    run = scenarios.get(SCENARIO).run("sim", perturb=perturb, seed=seed, **params)
    return PerturbResult(run, analysis.spikes_vs_events(run, kind="hash_change"))


class PerturbExplorer(Explorer):
    """Set the SFQ perturb interval, the seed and the scenario's other parameters; press Run.

    Every control comes from the scenario's parameter declaration (units and ranges shown,
    0 = no perturbation). Redraws latency as a zoomable chart with the hash changes and the
    spike events, and tabulates how well spike events align with hash changes.

    Parameters
    ----------
    perturb, seed
        Initial values.
    compute
        The computation (default :func:`perturb_experiment`); any function taking the
        scenario's parameters as keywords and returning a :class:`PerturbResult`.
    **params
        Initial values of other scenario parameters (``duration=60``, ``profile="5.18+"`` …).

    Attributes
    ----------
    result, chart
        The current :class:`PerturbResult` and its :class:`qoslab.plots.Chart`.
    params
        ``{name: ParamControl}`` of every parameter.

    Examples
    --------
    >>> pe = PerturbExplorer(perturb=5, duration=60)
    >>> pe.params["perturb"].editor.value, pe.params["shaper_rate"].editor.value
    ('5', '900kbit')
    """

    run_button = True

    def __init__(self, perturb: float = 5, seed: int = 1, compute=None, **params) -> None:
        super().__init__()
        self.compute = compute or perturb_experiment
        declared = scenario_params()
        order = [n for n in _FIRST if any(p.name == n for p in declared)]
        order += [p.name for p in declared if p.name not in order]
        self._controls = ParamControls(declared, {"perturb": perturb, "seed": seed, **params},
                                       only=order)
        self.params = self._controls.controls
        self.perturb = self.params["perturb"]
        self.seed = self.params["seed"]
        self.controls = []
        self._key = f"perturb-explorer-{id(self):x}"
        self._finish_init(observe=[c.editor for c in self._controls], initial=False)
        grid = self.w.VBox([c.widget for c in self._controls],
                           layout=self.w.Layout(margin="0 0 6px 0"))
        self.widget.children = (self.widget.children[0], grid, *self.widget.children[1:])
        self.refresh()

    def values(self) -> dict[str, Any]:
        """The checked values of every control (raises the parameter's message if one is bad)."""
        return self._controls.read()

    def busy_text(self) -> str:
        try:
            v = self.values()
        except Exception:  # noqa: BLE001 - the update reports it
            return "running…"
        return (f"running sfq_perturb: perturb {v['perturb']:g} s, seed {v['seed']}, "
                f"{v.get('duration', 0):g} s simulated …")

    def update(self) -> None:
        """Run the scenario for the current controls and redraw (raises on error)."""
        values = self.values()
        start = time.perf_counter()
        self.result = self.compute(**values)
        run = self.result.run
        perturb = values["perturb"]
        title = (f"sfq_perturb: perturb {'off' if not perturb else f'{perturb:g} s'}, "
                 f"seed {values['seed']}, {values.get('profile', '')}").rstrip(", ")
        self.chart = latency_chart(run, kind="line", spikes=self.result.report.events,
                                   logy=True, title=title, key=self._key,
                                   subtitle=self.result.report.summary())
        self.show(html_bundle(self.chart.to_html(), title),
                  table_bundle(self.result.alignment_table(), caption="spikes vs hash changes"))
        rep = self.result.report
        self.status.value = html.escape(
            f"✓ computed in {time.perf_counter() - start:.2f} s: perturb "
            f"{'off' if not perturb else f'{perturb:g} s'}, seed {values['seed']} — "
            f"{rep.n_events} spike event{'s' if rep.n_events != 1 else ''}, "
            f"{alignment_text(rep.alignment, perturb)}")

    @property
    def figure(self):
        """The static matplotlib figure of the current result (drawn on demand)."""
        return self.chart.figure()
