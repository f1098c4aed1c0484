"""Perturb explorer: rerun the SFQ perturbation scenario and see spikes line up with rehashes."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..runs import Run
from ._base import Explorer, figure_bundle, table_bundle, text_bundle

__all__ = ["PerturbExplorer", "PerturbResult", "perturb_experiment", "scenario_parameters"]

#: Parameters the explorer shows as their own controls (the others come from the signature).
_OWN = ("perturb", "seed")


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


def scenario_parameters() -> dict[str, Any]:
    """The numeric and text parameters of ``qoslab.sim.scenarios.sfq_perturb`` (defaults).

    Examples
    --------
    >>> p = scenario_parameters()
    >>> "duration" in p and "perturb" not in p
    True
    """
    from ..sim.scenarios import sfq_perturb

    out = {}
    for name, p in inspect.signature(sfq_perturb).parameters.items():
        if name in _OWN or p.default is inspect.Parameter.empty:
            continue
        if isinstance(p.default, (int, float, str)) and not isinstance(p.default, bool):
            out[name] = p.default
    return out


@functools.lru_cache(maxsize=32)
def perturb_experiment(perturb: float = 5, seed: int = 1, **params) -> PerturbResult:
    """Simulate ``sfq_perturb(perturb, seed, **params)``, detect spikes, align them to rehashes.

    Cached on its (hashable) arguments, so moving a control back costs nothing.

    Parameters
    ----------
    perturb
        SFQ perturbation interval in seconds.
    seed
        Simulator seed (the hash seeds follow from it).
    **params
        Other parameters of :func:`qoslab.sim.scenarios.sfq_perturb` (e.g. ``duration``).

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
    from .. import analysis
    from ..sim.scenarios import sfq_perturb

    run = sfq_perturb(perturb=perturb, seed=seed, **params)
    return PerturbResult(run, analysis.spikes_vs_events(run, kind="hash_change"))


class PerturbExplorer(Explorer):
    """Slide the SFQ perturb interval, change the scenario and seed, press Run.

    Redraws latency with the hash changes overlaid and the detected spikes shaded, and shows
    how well spikes align with hash changes.

    Parameters
    ----------
    perturb, seed
        Initial values.
    compute
        The computation (default :func:`perturb_experiment`, whose scenario parameters get
        controls); any function taking ``perturb``, ``seed`` and ``**params`` and returning a
        :class:`PerturbResult`.
    **params
        Initial values of other scenario parameters (numbers and text; ``profile`` gets a
        dropdown of the kernel profiles).

    Attributes
    ----------
    result, figure
        The current :class:`PerturbResult` and latency figure.
    """

    run_button = True

    def __init__(self, perturb: int = 5, seed: int = 1, compute=None, **params) -> None:
        super().__init__()
        w = self.w
        self.compute = compute or perturb_experiment
        self.perturb = w.IntSlider(value=perturb, min=1, max=60, description="perturb (s)",
                                   continuous_update=False)
        self.seed = w.IntText(value=seed, description="seed")
        defaults = {**(scenario_parameters() if compute is None else {}), **params}
        self.params = {name: self._control(name, v) for name, v in defaults.items()}
        self.controls = [self.perturb, self.seed, *self.params.values()]
        self._finish_init()

    def _control(self, name: str, value):
        w = self.w
        if name == "profile":
            from ..hashing import PROFILES

            return w.Dropdown(options=list(PROFILES), value=value, description=name)
        if isinstance(value, str):
            return w.Text(value=value, description=name, continuous_update=False)
        if isinstance(value, int):
            return w.IntText(value=value, description=name)
        return w.FloatText(value=value, description=name)

    def values(self) -> dict[str, Any]:
        """The current arguments of the computation."""
        return {"perturb": self.perturb.value, "seed": self.seed.value,
                **{k: c.value for k, c in self.params.items()}}

    def update(self) -> None:
        """Run the scenario for the current controls and redraw (raises on error)."""
        from ..plots import latency

        self.result = self.compute(**self.values())
        self.figure = latency(self.result.run, kind="line", spikes=self.result.spikes)
        self.show(figure_bundle(self.figure),
                  table_bundle(self.result.alignment_table(), caption="spikes vs hash changes"))
        self.status.value = text_bundle(self.result.report.summary(), pre=False)["data"][
            "text/html"]
