"""The ``sim`` backend: a scenario's :class:`~qoslab.scenarios.setup.Setup` through the
discrete-event simulator (deterministic: the same values give the same RUN)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from ..outputs import check_output
from ..runs import Run
from ..sim.simulate import SimConfig, simulate
from .setup import Setup

__all__ = ["run", "sim_config", "OPTIONS"]

#: Options of this backend (``Scenario.run(options=…)``, ``qoslab run --decisions``).
OPTIONS = ("decisions",)


def sim_config(setup: Setup, *, name: str, seed: int, params: dict[str, Any]) -> SimConfig:
    """The :class:`~qoslab.sim.SimConfig` of a setup."""
    return SimConfig(traffic=tuple(setup.traffic), qdisc=setup.qdisc, link=setup.link,
                     duration=setup.duration, seed=int(seed), changes=tuple(setup.changes),
                     sample_interval=setup.sample_interval, forwarded=setup.forwarded,
                     name=name, params=params, ping_timeout=setup.ping_timeout)


def run(setup: Setup, *, scenario, values: dict[str, Any], path: Any = None,
        capture: Any = None, force: bool = False, progress: Any = None,
        decisions: bool = False) -> Run:
    """Simulate ``setup``; save the RUN to ``path`` when given; ``decisions`` records the
    decision log (``run.decisions``)."""
    if capture is not None:
        raise ConfigError("the sim backend sends no packets to capture; use --backend kernel "
                          "or userspace for --capture")
    for change in setup.changes:
        if change.qdisc is None and change.classifier is None:
            raise ConfigError(f"the sim backend does not model the change at t={change.t:g} s "
                              f"({' '.join(change.tc or ())}): only qdisc and flow-filter "
                              "changes are modelled; use --backend kernel")
    if path is not None:
        check_output(path, force=force, what="RUN file")
    meta = scenario.meta(values, "sim", setup)
    config = sim_config(setup, name=scenario.name, seed=values.get("seed", 1),
                        params=meta["params"])
    if decisions:
        config = dataclasses.replace(config, decisions=True)
    result = simulate(config)
    result.meta.update(meta)
    if progress is not None:
        progress(1, 1)
    if path is not None:
        result.save(path, force=force)
    return result
