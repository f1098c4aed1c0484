"""The plan a datapath process runs: plain JSON, with the qdisc tree as ``tc`` lines.

The parent (the userspace backend) writes the plan into its private work folder; the child
(``qoslab datapath PLAN``) reads it. Specs travel as the ``tc`` text people and the kernel
speak (:meth:`~qoslab.tcspec.QdiscSpec.to_tc`, parsed back with
:func:`~qoslab.qdiscs.parse_tree`): no pickling, nothing executable, and the parent checks
before starting that the text gives back exactly the tree it holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..hashing import FlowClassifier
from ..outputs import write_bytes
from ..qdiscs import ConfigChange, parse_tree, walk
from .tunnel import TunnelEnd

__all__ = ["Plan", "tree_profile", "PLAN_FORMAT"]

PLAN_FORMAT = "qoslab-datapath-plan"
ROLES = ("router", "decap")


def tree_profile(tree: Any, changes: tuple = ()) -> str:
    """The kernel profile the era-dependent parts of ``tree`` (and of the changes' specs)
    follow; one per plan.

    Raises
    ------
    ConfigError
        When parts follow different profiles.
    """
    names = set()
    specs = list(walk(tree)) if tree is not None else []
    for c in changes:
        if c.qdisc is not None:
            specs += list(walk(c.qdisc))
    for spec in specs:
        if getattr(spec, "uses_profile", False):
            names.add(str(spec.profile))
        for flt in spec.filter_specs():
            prof = getattr(flt, "profile", None)
            if prof is not None and hasattr(prof, "name"):
                names.add(prof.name)
    for c in changes:
        if c.classifier is not None:
            names.add(c.classifier.profile.name)
    if len(names) > 1:
        raise ConfigError(f"datapath: the tree mixes kernel profiles {sorted(names)}; it runs "
                          "one era at a time")
    return names.pop() if names else "5.18+"


@dataclass
class Plan:
    """What one datapath process does (see the module docstring).

    Attributes
    ----------
    role
        ``router`` (schedule the bottleneck direction through the tree) or ``decap`` (the far
        end of the userspace tunnel: strip outer headers).
    tun
        The TUN device to create.
    tree, profile
        The qdisc tree as ``tc`` lines and its kernel era.
    link
        ``rate`` (bit/s), ``overhead`` (bytes), ``mtu``, ``txqueuelen``.
    delay
        Seconds every packet waits after the link (the path's propagation, both ways).
    seeds, seed_times, seed_details
        The hash seeds (hex), when each later one comes (scenario seconds), EVENTS text.
    changes
        ``{"t", "detail", "filter", "qdisc", "parent"}``: tc text of a new filter / qdisc.
    tunnels
        Inner destination → ``{"local", "remote", "tos"}``.
    log, flows, input_capture
        Files the process writes: the decision log, the flow table, a pcap of its input.
    """

    role: str
    tun: str
    tree: str | None = None
    profile: str = "5.18+"
    link: dict = field(default_factory=dict)
    delay: float = 0.0
    seeds: list = field(default_factory=list)
    seed_times: list = field(default_factory=list)
    seed_details: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    tunnels: dict = field(default_factory=dict)
    log: str | None = None
    flows: str | None = None
    input_capture: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"datapath plan: role {self.role!r}: expected one of {ROLES}")
        if self.role == "router" and not self.tree:
            raise ConfigError("datapath plan: a router needs a qdisc tree")
        if len(self.seed_times) != max(len(self.seeds) - 1, 0):
            raise ConfigError("datapath plan: one change time per seed after the first")

    # ------------------------------------------------------------------ files
    def save(self, path: Path) -> Path:
        """Write the plan (a new file in the parent's private work folder)."""
        doc = {"format": PLAN_FORMAT, **asdict(self)}
        return write_bytes(path, json.dumps(doc, indent=1).encode(), what="datapath plan")

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read a plan, checking every field it needs."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"datapath plan {path}: cannot read it ({exc})") from None
        if not isinstance(doc, dict) or doc.pop("format", None) != PLAN_FORMAT:
            raise ConfigError(f"datapath plan {path}: not a {PLAN_FORMAT} document")
        known = set(cls.__dataclass_fields__)
        unknown = set(doc) - known
        if unknown:
            raise ConfigError(f"datapath plan {path}: unknown field(s) {sorted(unknown)}")
        return cls(**doc)

    # ------------------------------------------------------------------ specs
    def qdisc_tree(self) -> Any:
        """The qdisc tree spec."""
        return parse_tree(self.tree, profile=self.profile)

    def config_changes(self) -> list[ConfigChange]:
        """The timed changes as :class:`~qoslab.qdiscs.ConfigChange` objects."""
        out = []
        for c in self.changes:
            classifier = FlowClassifier.from_tc(c["filter"], profile=self.profile) \
                if c.get("filter") else None
            qdisc = parse_tree(c["qdisc"], profile=self.profile) if c.get("qdisc") else None
            out.append(ConfigChange(float(c["t"]), str(c["detail"]), classifier=classifier,
                                    qdisc=qdisc, parent=c.get("parent")))
        return out

    def seed_values(self) -> list:
        """The seeds as the hashing layer takes them (ints; 128-bit SipHash keys as ints)."""
        return [int(s, 16) for s in self.seeds]

    def tunnel_ends(self) -> dict[str, TunnelEnd]:
        return {dst: TunnelEnd(**end) for dst, end in self.tunnels.items()}

    @staticmethod
    def changes_of(changes: tuple, profile: str) -> list[dict]:
        """Timed changes as plan entries; each must round-trip through its tc text."""
        out = []
        for c in changes:
            entry = {"t": float(c.t), "detail": c.detail, "filter": None, "qdisc": None,
                     "parent": c.parent}
            if c.classifier is not None:
                entry["filter"] = c.classifier.to_tc()
                if FlowClassifier.from_tc(entry["filter"], profile=profile) != c.classifier:
                    raise ConfigError(f"datapath: the filter of the change at t={c.t} does not "
                                      "survive its tc text")
            if c.qdisc is not None:
                entry["qdisc"] = c.qdisc.to_tc()
                if parse_tree(entry["qdisc"], profile=profile) != c.qdisc:
                    raise ConfigError(f"datapath: the qdisc of the change at t={c.t} does not "
                                      "survive its tc text")
            out.append(entry)
        return out
