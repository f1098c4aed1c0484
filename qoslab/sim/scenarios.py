"""The registry's experiments as simulator functions: ``qoslab.sim.scenarios.sfq_perturb(...)``.

Every function here runs the scenario of the same name from :mod:`qoslab.scenarios` on the
``sim`` backend; its keyword arguments are the scenario's parameters (checked there, with their
units and ranges). The experiments themselves are declared once, in
:mod:`qoslab.scenarios.catalog`.

``bufferbloat(queue_limit, qdisc=...)`` keeps its classic simulator form: TCP uploads filling
the link's own queue (``load="tcp"``, no shaper, no queue switch); the scenario's other
parameters are accepted too.

Examples
--------
>>> run = sfq_perturb(perturb=5, duration=20)
>>> run.events.loc[run.events["kind"] == "hash_change", "t"].tolist()  # the timer runs on
[5.0, 10.0, 15.0, 20.0]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..runs import Run
from ..scenarios import get
from ..scenarios.catalog import CLASSIC_SFQ_KEYS, TUNNEL_KEYS

__all__ = ["SCENARIOS", "sfq_perturb", "tunnel_keys", "tos_proto_dst", "pfifo_fast_ecn",
           "bufferbloat", "latency_first", "saturated_link", "CLASSIC_SFQ_KEYS",
           "TUNNEL_KEYS"]


def _simulator(name: str, positional: tuple[str, ...] = (),
               defaults: dict[str, Any] | None = None) -> Callable[..., Run]:
    scenario = get(name)

    def run(*args: Any, **kw: Any) -> Run:
        if len(args) > len(positional):
            raise TypeError(f"{name}() takes at most {len(positional)} positional argument(s)")
        kw.update(zip(positional, args, strict=False))
        return scenario.run("sim", **{**(defaults or {}), **kw})

    run.__name__ = run.__qualname__ = name
    run.__doc__ = (f"{scenario.title}.\n\n{scenario.description}\n\nParameters (keyword): "
                   + "; ".join(f"``{p.name}`` — {p.describe()}" for p in scenario.params))
    run.scenario = scenario  # type: ignore[attr-defined]
    merged = {p.name: (defaults or {}).get(p.name, p.default) for p in scenario.params}
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=merged[n])
         for n in positional]
        + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=v)
           for n, v in merged.items() if n not in positional])
    return run


sfq_perturb = _simulator("sfq_perturb", ("perturb",))
tunnel_keys = _simulator("tunnel_keys")
tos_proto_dst = _simulator("tos_proto_dst")
pfifo_fast_ecn = _simulator("pfifo_fast_ecn", ("table",))
bufferbloat = _simulator("bufferbloat", ("queue_limit",),
                         defaults=dict(load="tcp", rate=None, switch_at=None, short_limit=None,
                                       link_rate=10e6, delay=0.010, duration=30.0,
                                       n_pings=3, interval=0.2, router=False))
latency_first = _simulator("latency_first")
saturated_link = _simulator("saturated_link")

#: Scenario name -> simulator function (what ``qoslab sim NAME`` runs).
SCENARIOS: dict[str, Callable[..., Run]] = {
    f.__name__: f for f in (sfq_perturb, tunnel_keys, tos_proto_dst, pfifo_fast_ecn,
                            bufferbloat, latency_first, saturated_link)}
