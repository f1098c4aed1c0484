"""The registry of experiments: each declared once, runnable on every backend that can.

A :class:`Scenario` declares its parameters (:class:`~qoslab.scenarios.params.Param`), a
``build`` function turning checked values into a :class:`~qoslab.scenarios.setup.Setup`, and
the backends that can run it. From that one declaration come the ``qoslab run`` options, the
notebook widgets' controls, the ``qoslab report -p`` checks and the META ``params`` record.

Backends (:data:`BACKENDS`): ``sim`` (the discrete-event simulator), ``kernel`` (real qdiscs
in network namespaces; needs root, and the kernel must have every qdisc, classifier and tunnel
of the setup), ``userspace`` (real packets in namespaces, scheduled by qoslab's own qdisc
models: for what the kernel lacks).

Examples
--------
>>> from qoslab.scenarios import get
>>> sc = get("sfq_perturb")
>>> [p.name for p in sc.params][:3]
['perturb', 'seed', 'duration']
>>> run = sc.run(perturb=5, duration=20)
>>> run.meta["scenario"], run.meta["backend"], run.meta["params"]["perturb"]
('sfq_perturb', 'sim', 5)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .params import Param, resolve
from .setup import Setup

__all__ = ["Scenario", "REGISTRY", "BACKENDS", "register", "get", "names", "run"]

#: backend name -> module with ``run(setup, **kw) -> Run``.
BACKENDS: dict[str, str] = {
    "sim": "qoslab.scenarios.backend_sim",
    "kernel": "qoslab.scenarios.backend_kernel",
    "userspace": "qoslab.scenarios.backend_userspace",
}

#: name -> Scenario, in the order they were registered.
REGISTRY: dict[str, Scenario] = {}


@dataclass(frozen=True)
class Scenario:
    """One experiment.

    Parameters
    ----------
    name
        What ``qoslab run NAME`` takes.
    title
        One line for listings.
    params
        The typed parameters (``seed`` and ``duration`` by convention among them).
    build
        ``build(values) -> Setup`` from checked values (a dict of every parameter).
    backends
        Backends that can run it, the first being the default.
    description
        More text for ``--help`` and notebooks.
    seed_experiment
        The experiment of the original work it reproduces, if any.
    """

    name: str
    title: str
    params: tuple[Param, ...]
    build: Callable[[dict[str, Any]], Setup]
    backends: tuple[str, ...] = ("sim", "kernel")
    description: str = ""
    seed_experiment: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario {self.name}: parameter names repeat: {names}")
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown:
            raise ValueError(f"scenario {self.name}: unknown backend(s) {unknown}")

    def param(self, name: str) -> Param:
        """The parameter called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise ConfigError(f"scenario {self.name}: no parameter {name!r}; its parameters are "
                          f"{', '.join(p.name for p in self.params)}")

    def values(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every parameter's value: ``given`` (checked) and the defaults."""
        return resolve(self.params, given, owner=self.name)

    def setup(self, **given: Any) -> Setup:
        """The :class:`Setup` for these parameter values (checked)."""
        return self.build(self.values(given))

    def run(self, backend: str | None = None, *, path: Any = None, capture: Any = None,
            force: bool = False, progress: Any = None, options: Mapping[str, Any] | None = None,
            **given: Any):
        """Run on ``backend`` (default: the first the scenario lists) and return the RUN.

        ``path`` saves the RUN (journalled while it runs, where the backend measures live),
        ``capture`` writes a pcap (real-packet backends), ``force`` allows replacing files,
        ``options`` are the backend's own (its module's ``OPTIONS``: the simulator's
        ``decisions``, the userspace datapath's ``input_capture``).
        """
        backend = backend or self.backends[0]
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        if backend not in self.backends:
            raise ConfigError(f"scenario {self.name} does not run on the {backend} backend "
                              f"(it runs on {', '.join(self.backends)})")
        module = importlib.import_module(BACKENDS[backend])
        known = getattr(module, "OPTIONS", ())
        unknown = sorted(set(options or {}) - set(known))
        if unknown:
            raise ConfigError(f"the {backend} backend has no option {', '.join(unknown)}"
                              + (f" (it has {', '.join(known)})" if known else ""))
        values = self.values(given)
        setup = self.build(values)
        return module.run(setup, scenario=self, values=values, path=path, capture=capture,
                          force=force, progress=progress, **dict(options or {}))

    def meta(self, values: Mapping[str, Any], backend: str,
             setup: Setup | None = None) -> dict[str, Any]:
        """The META entries every backend records for a run of this scenario."""
        out = {"scenario": self.name, "backend": backend,
               "params": {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in values.items()},
               "param_units": {p.name: p.unit for p in self.params if p.unit},
               "seed_experiment": self.seed_experiment}
        if setup is not None:
            out["phases"] = [p.meta() for p in setup.phases]
            out["changes"] = [{"t": c.t, "detail": c.detail,
                               "tc": " ".join(c.tc) if c.tc else _change_text(c)}
                              for c in setup.changes]
            out.update(setup.predictions)
        return out

    def help_text(self) -> str:
        """The parameter list ``qoslab run NAME --help`` prints."""
        width = max((len(p.flag) for p in self.params), default=0)
        lines = [f"{self.name}: {self.title}"]
        if self.description:
            lines += ["", self.description.strip(), ""]
        lines.append(f"backends: {', '.join(self.backends)} (default {self.backends[0]})")
        lines.append("parameters:")
        lines += [f"  {p.flag:<{width}}  {p.describe()}" for p in self.params]
        return "\n".join(lines)


def _change_text(change) -> str:
    if change.qdisc is not None:
        where = "root" if change.parent in (None, "root") else f"parent {change.parent}"
        return f"qdisc replace dev DEV {where} {change.qdisc.to_tc()}"
    if change.classifier is not None:
        return f"filter replace dev DEV parent 1: {change.classifier.to_tc()}"
    return ""


def register(scenario: Scenario, *, replace: bool = False) -> Scenario:
    """Add ``scenario`` to the registry (it then shows in ``qoslab run``, widgets, reports)."""
    if scenario.name in REGISTRY and not replace:
        raise ConfigError(f"a scenario named {scenario.name!r} is already registered")
    REGISTRY[scenario.name] = scenario
    return scenario


def _load_catalog() -> None:
    importlib.import_module("qoslab.scenarios.catalog")


def get(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises
    ------
    ConfigError
        Naming the registered scenarios.
    """
    _load_catalog()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"no scenario {name!r}; scenarios: {', '.join(REGISTRY)}") from None


def names() -> list[str]:
    """Registered scenario names."""
    _load_catalog()
    return list(REGISTRY)


def run(name: str, backend: str | None = None, **kw: Any):
    """Run scenario ``name`` (see :meth:`Scenario.run`)."""
    return get(name).run(backend, **kw)
