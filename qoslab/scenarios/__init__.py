"""Experiments declared once: typed parameters, the set-up, and the backends that can run it.

* :mod:`~qoslab.scenarios.params` — typed parameters (:class:`Param`: name, kind, unit,
  range, default, help), parsed and checked the same way from the command line,
  ``qoslab report -p``, widgets and Python calls;
* :mod:`~qoslab.scenarios.setup` — :class:`Setup`, an experiment any backend can run (traffic,
  qdisc tree, link, timed changes, phases);
* :mod:`~qoslab.scenarios.registry` — :class:`Scenario` and the registry (:func:`get`,
  :func:`names`, :func:`run`, :func:`register`);
* :mod:`~qoslab.scenarios.catalog` — the scenarios qoslab ships;
* backends: ``sim`` (:mod:`~qoslab.scenarios.backend_sim`), ``kernel``
  (:mod:`~qoslab.scenarios.backend_kernel`), ``userspace``.

Examples
--------
>>> import qoslab.scenarios as sc
>>> "bufferbloat" in sc.names()
True
>>> print(sc.get("bufferbloat").param("queue_limit").describe())
the (first) queue's limit; 1 … 100000 packets; default 1000 packets
"""

from .params import KINDS, Param, parse_assignment, parse_cli_items, resolve
from .registry import BACKENDS, REGISTRY, Scenario, get, names, register, run
from .setup import ConfigChange, Phase, Setup

__all__ = ["BACKENDS", "KINDS", "REGISTRY", "ConfigChange", "Param", "Phase", "Scenario",
           "Setup", "get", "names", "parse_assignment", "parse_cli_items", "register",
           "resolve", "run"]
