"""Which timer changes the hash seed of a qdisc tree, and what the first seed is.

Every driver (simulator, userspace datapath, replay) asks :func:`perturbation_plan` what the
tree's seed schedule looks like, so one rule holds everywhere:

* the perturbing element is an SFQ's ``perturb`` — or, with a ``flow`` filter attached, the
  filter's ``perturb`` (cls_flow re-keys its own ``hashrnd``; SFQ's own seed is then unused);
* seeds are 128-bit SipHash keys for the SFQ and fq_codel of 5.4+ profiles, 32 bits otherwise
  (cls_flow's ``hashrnd`` is always a u32);
* before 3.3, ``sfq_change`` leaves the perturbation at 0 when no ``perturb`` is given (and tc
  always sends options), so such an SFQ hashes with seed 0 — fully predictable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..hashing import get_profile, hash_changes, seeds_from_events
from . import walk
from .fq_codel import FqCodel
from .sfq import Sfq

__all__ = ["PerturbationPlan", "perturbation_plan", "SeedSchedule", "seed_schedule"]


@dataclass(frozen=True)
class PerturbationPlan:
    """``period`` seconds between seed changes (0: never), ``what`` changes it, ``bits`` of
    each seed, and whether the first seed is 0 (``zero_initial``)."""

    period: float
    what: str
    bits: int
    zero_initial: bool


def perturbation_plan(root: Any) -> PerturbationPlan:
    """The seed schedule of a qdisc tree spec.

    Raises
    ------
    ConfigError
        When several elements perturb with different periods (one seed list serves them).

    Examples
    --------
    >>> from qoslab.qdiscs import Sfq, Htb, HtbClass
    >>> perturbation_plan(Htb(classes=(HtbClass("1:10", 9e5, leaf=Sfq(perturb=5,
    ...     profile="classic-2.6.3x")),), default=0x10))
    PerturbationPlan(period=5.0, what='sfq perturb', bits=32, zero_initial=False)
    >>> perturbation_plan(Sfq(profile="2.6.37-3.2")).zero_initial
    True
    """
    found: list[tuple[float, str, int, bool]] = []
    for spec in walk(root):
        if isinstance(spec, Sfq):
            prof = spec.kernel
            if spec.classifier is not None:
                found.append((float(spec.classifier.perturb or 0), "cls_flow perturb", 32,
                              False))
            else:
                bits = 128 if prof.flow_hash == "siphash" and prof.sfq == "flow-hash" else 32
                zero = prof.sfq_scheduler != "3.3" and not spec.perturb
                found.append((float(spec.perturb or 0), "sfq perturb", bits, zero))
        elif isinstance(spec, FqCodel):
            prof = get_profile(spec.profile)
            bits = 128 if prof.flow_hash == "siphash" else 32
            found.append((0.0, "fq_codel", bits, False))
    periods = {p for p, *_ in found if p > 0}
    if len(periods) > 1:
        raise ConfigError(f"several perturb periods {sorted(periods)}: qoslab runs one seed "
                          "schedule per tree; use one period")
    for p, what, bits, zero in found:
        if p > 0:
            return PerturbationPlan(p, what, bits, zero)
    if found:
        _, what, bits, zero = found[0]
        return PerturbationPlan(0.0, what, bits, zero)
    return PerturbationPlan(0.0, "", 32, False)


@dataclass(frozen=True)
class SeedSchedule:
    """The hash seeds of one run: ``seeds[0]`` from the start, ``seeds[i]`` from
    ``times[i - 1]``; ``events`` are the matching ``hash_change`` EVENTS rows."""

    plan: PerturbationPlan
    seeds: list
    times: list
    events: pd.DataFrame

    @property
    def seed_times(self) -> list[float]:
        """When each seed came into force (``0.0`` for the first), as META records it."""
        return [0.0, *self.times]

    def index_at(self, t: float) -> int:
        """The index of the seed in force at time ``t`` (a change at ``t`` is in force).

        Examples
        --------
        >>> from qoslab.qdiscs import Sfq
        >>> s = seed_schedule(Sfq(perturb=5, profile="classic-2.6.3x"), 12.0, 1)
        >>> s.times, s.index_at(4.9), s.index_at(5.0), s.index_at(11.0)
        ([5.0, 10.0], 0, 1, 2)
        """
        return int(np.searchsorted(np.asarray(self.times, dtype=float), t, side="right"))


def seed_schedule(root: Any, duration: float, seed: int) -> SeedSchedule:
    """The seed schedule every driver of ``root`` follows for a run of ``duration`` seconds
    whose random choices derive from ``seed``: the first seed and one new seed per perturb
    period of :func:`perturbation_plan`, drawn reproducibly (the same ``seed`` gives the same
    seeds and times in the simulator, on the userspace datapath and in replay; a longer
    ``duration`` only adds changes at the end).

    One rule for every driver, the kernel's (the perturb timer runs while the qdisc exists):
    the changes go on until the run's last instant, while the tree drains included — the
    simulator asks for its latest possible end, replay grows the schedule as the capture
    and its drain go on, the datapath for its whole life.

    Examples
    --------
    >>> from qoslab.qdiscs import Sfq
    >>> s = seed_schedule(Sfq(perturb=5, profile="classic-2.6.3x"), 20.0, seed=1)
    >>> s.times, len(s.seeds), list(s.events["kind"].unique())
    ([5.0, 10.0, 15.0], 4, ['hash_change'])
    >>> seed_schedule(Sfq(profile="2.6.37-3.2"), 20.0, seed=1).seeds   # no perturb: seed 0
    [0]
    """
    plan = perturbation_plan(root)
    rng = np.random.default_rng([int(seed), 0x5EED])
    initial = int.from_bytes(rng.bytes(plan.bits // 8), "little")
    if plan.period > 0:
        events = hash_changes(0.0, duration, plan.period, bits=plan.bits,
                              rng_seed=int(rng.integers(0, 2**63)))
        _, seeds = seeds_from_events(events, initial=initial)
        if len(events):
            events = events.assign(detail=events["detail"].astype(str) + f" ({plan.what})")
        return SeedSchedule(plan, [int(s) for s in seeds],
                            [float(x) for x in events["t"]], events)
    if plan.zero_initial:
        initial = 0  # sfq_change before 3.3 leaves the perturbation at 0 without perturb
    return SeedSchedule(plan, [initial], [], pd.DataFrame({"t": [], "kind": [], "detail": []}))
