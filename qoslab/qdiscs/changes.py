"""Changes made to a qdisc tree while it runs (``tc filter replace``, ``tc qdisc replace``).

One :class:`ConfigChange` type and one way of applying it (:func:`apply_change`) for every
driver of the runtime qdiscs: the simulator, the userspace datapath and capture replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .runtime import Device

__all__ = ["ConfigChange", "apply_change", "for_changes"]


@dataclass(frozen=True)
class ConfigChange:
    """A change made while the experiment runs (``tc filter replace``, ``tc qdisc replace``).

    Parameters
    ----------
    t
        Seconds from the start.
    detail
        What changed, for the EVENTS row (e.g. the new ``tc`` line).
    classifier
        A new filter for the SFQ / fq_codel of the tree (``FlowClassifier``): ``tc filter
        replace``; queued packets stay where they are.
    qdisc
        A new qdisc spec replacing the one under class ``parent`` (``tc qdisc replace``); the
        old qdisc's queued packets are dropped, as the kernel's ``qdisc_destroy`` does.
    parent
        The class whose qdisc ``qdisc`` replaces (e.g. ``"1:10"``); ``None`` for the root.
    tc
        The ``tc`` command as a person wrote it (argument list, ``DEV`` for the device), for
        backends that run ``tc`` itself; ``qdisc``/``classifier`` are what the models run.
    """

    t: float
    detail: str
    classifier: Any = None
    qdisc: Any = None
    parent: str | None = None
    tc: tuple[str, ...] | None = None


def apply_change(root: Any, change: ConfigChange, ctx: Any, now: float) -> None:
    """Apply ``change`` to the runtime tree ``root`` (built with ``ctx``) at time ``now``.

    Raises
    ------
    ConfigError
        When a new filter finds no SFQ or fq_codel to attach to.
    """
    if change.classifier is not None and not root.set_filter(change.classifier, now):
        raise ConfigError(f"config change at t={change.t}: no SFQ or fq_codel in the tree to "
                          "attach a filter to")
    if change.qdisc is not None:
        root.replace_child(change.parent, change.qdisc, ctx, now)


def for_changes(root: Any, changes) -> Any:
    """``root`` (a runtime tree), wrapped in a :class:`~qoslab.qdiscs.runtime.Device` when a
    change replaces the root qdisc itself (the driver then keeps talking to the device)."""
    if any(c.qdisc is not None and c.parent in (None, "root") for c in changes):
        return Device(root)
    return root
