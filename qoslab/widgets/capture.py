"""Capture explorer: pick keys, see which flows of a capture share a class -- now and always."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..hashing import FLOW_KEYS, PROFILES, FlowClassifier, Sfq, sharing
from ..plots import occupancy, occupancy_frame
from ._base import Explorer, figure_bundle, table_bundle, text_bundle
from .key_picker import DEFAULT_KEYS, clsflow_profiles, keys_of_profile

__all__ = ["CaptureExplorer", "capture_sharing", "sharing_table", "TARGETS"]

#: What the explorer hashes with: a cls_flow filter of the ticked keys, or SFQ's own hash.
TARGETS: dict[str, str] = {
    "cls_flow": "tc flow filter with the ticked keys (hash mode)",
    "sfq": "SFQ's own flow hash (keys ignored)",
}


def _target(target: str, keys: Sequence[str], profile: str, divisor: int):
    if target == "cls_flow":
        if not keys:
            raise ConfigError("tick at least one cls_flow key")
        return FlowClassifier(list(keys), divisor=int(divisor), profile=profile)
    if target == "sfq":
        return Sfq(divisor=int(divisor), profile=profile)
    raise ConfigError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")


def capture_sharing(packets: pd.DataFrame, keys: Sequence[str] = DEFAULT_KEYS,
                    profile: str = "5.18+", divisor: int = 1024, seed: int = 0,
                    target: str = "cls_flow", trials: int = 200):
    """The capture explorer's computation: :func:`qoslab.hashing.sharing` for one choice.

    Parameters
    ----------
    packets
        PACKETS-like frame (e.g. :func:`qoslab.read_capture` of a pcap).
    keys
        cls_flow keys (``target="cls_flow"``).
    profile
        Kernel profile.
    divisor
        Number of classes / SFQ buckets.
    seed
        The seed for the "this seed" answer.
    target
        ``"cls_flow"`` or ``"sfq"`` (see :data:`TARGETS`).
    trials
        Random seeds drawn to measure the collision probability.

    Returns
    -------
    qoslab.hashing.SharingReport

    Examples
    --------
    >>> import qoslab
    >>> pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
    >>> rep = capture_sharing(pk, ["dst"], "5.18+", 1024, seed=0, trials=20)
    >>> bool(rep.shared_always)  # one outer destination per direction: flows pile up
    True
    """
    return sharing(packets, _target(target, keys, profile, divisor), seed=int(seed),
                   trials=int(trials))


def sharing_table(report) -> pd.DataFrame:
    """The report's flows with two flags: shares a class now, shares it for every seed.

    ``shared_now``: another flow has the same class for this seed (class -1, dropped, never
    counts); ``shared_always``: another flow has the same hash input, so no seed separates
    them. Sorted so the always-shared groups come first.
    """
    flows = report.flows.copy()
    cls = flows["cls"].to_numpy()
    counts = flows.groupby("cls")["flow"].transform("size").to_numpy()
    flows["shared_now"] = (counts > 1) & (cls >= 0)
    flows["shared_always"] = flows.groupby("input_group")["flow"].transform("size") > 1
    return flows.sort_values(["shared_always", "shared_now", "input_group", "cls"],
                             ascending=[False, False, True, True], kind="stable"
                             ).reset_index(drop=True)


class CaptureExplorer(Explorer):
    """Pick keys, profile, divisor and seed; see which flows of a capture share a class.

    Shows, for the current seed and for every seed, the groups of flows that queue together
    (with the reason when no seed can separate them), the collision probability for a random
    seed, the flow table and -- when the packets carry times -- which class each flow uses
    over time.

    Parameters
    ----------
    packets
        PACKETS-like frame.
    keys, profile, divisor, seed, target
        Initial values.
    trials
        Random seeds drawn per update to measure the collision probability.

    Attributes
    ----------
    report, table, figure
        The current SharingReport, :func:`sharing_table` of it, and the occupancy figure
        (None without packet times).
    """

    def __init__(self, packets: pd.DataFrame, keys: Sequence[str] = DEFAULT_KEYS,
                 profile: str = "5.18+", divisor: int = 1024, seed: int = 0,
                 target: str = "cls_flow", trials: int = 200) -> None:
        super().__init__()

        w = self.w
        if packets is None or len(packets) == 0:
            raise ConfigError("CaptureExplorer: the packets table is empty")
        self.packets = packets
        self.trials = int(trials)
        self.keys = {k: w.Checkbox(value=k in keys, description=k, indent=False,
                                   layout=w.Layout(width="11em")) for k in FLOW_KEYS}
        self.target = w.Dropdown(options=[(v, k) for k, v in TARGETS.items()], value=target,
                                 description="hash")
        self.profile = w.Dropdown(options=list(PROFILES), value=profile, description="profile")
        self.divisor = w.BoundedIntText(value=divisor, min=1, max=65536, description="divisor")
        self.seed = w.IntText(value=seed, description="seed")
        self.controls = [self.target, self.profile, self.divisor, self.seed]
        self._compute = functools.lru_cache(maxsize=32)(self._compute_uncached)
        grid = w.GridBox(list(self.keys.values()),
                         layout=w.Layout(grid_template_columns="repeat(6, 11em)"))
        self._switch_keys()
        self.target.observe(self._switch_keys, names="value")
        self.profile.observe(self._switch_keys, names="value")
        self._finish_init(observe=[*self.keys.values(), *self.controls], initial=False)
        self.widget.children = (self.widget.children[0], grid, *self.widget.children[1:])
        self.refresh()

    def _switch_keys(self, _change=None) -> None:
        """Keys mean nothing for SFQ's own hash; a profile without a key cannot tick it; the
        flow classifier is offered only in the eras that have it."""
        options = clsflow_profiles() if self.target.value == "cls_flow" else list(PROFILES)
        if list(self.profile.options) != options:
            current = self.profile.value
            self._held += 1
            try:
                self.profile.options = options
                self.profile.value = current if current in options else "5.18+"
            finally:
                self._held -= 1
        have = set(keys_of_profile(self.profile.value))
        for key, box in self.keys.items():
            box.disabled = self.target.value != "cls_flow" or key not in have

    @property
    def selected_keys(self) -> tuple[str, ...]:
        """The ticked keys, in table order."""
        return tuple(k for k, box in self.keys.items() if box.value and not box.disabled)

    def _compute_uncached(self, keys, profile, divisor, seed, target):
        report = capture_sharing(self.packets, keys, profile, divisor, seed, target,
                                 self.trials)
        return report, self._occupancy(keys, profile, divisor, seed, target)

    def _occupancy(self, keys, profile, divisor, seed, target):
        if "t" not in self.packets.columns:
            return None
        obj = _target(target, keys, profile, divisor)
        classes = (obj.bucket(self.packets, seed=seed) if target == "sfq"
                   else obj.classify(self.packets, hashrnd=seed).astype(np.int64))
        frame = occupancy_frame(self.packets, classes)
        if frame["flow"].nunique() > 40:
            return None
        return occupancy(frame)

    def update(self) -> None:
        """Recompute the sharing report for the current controls (raises on error)."""
        key = self.selected_keys if self.target.value == "cls_flow" else ()
        self.report, self.figure = self._compute(key, self.profile.value, self.divisor.value,
                                                 self.seed.value, self.target.value)
        self.table = sharing_table(self.report)
        bundles = [text_bundle(str(self.report))]
        if self.figure is not None:
            bundles.append(figure_bundle(self.figure))
        bundles.append(table_bundle(self.table, caption="flows"))
        self.show(*bundles)
        self.status.value = (
            f"{len(self.report.flows)} flows: {len(self.report.shared_now)} group(s) sharing a "
            f"class with seed {self.seed.value}, {len(self.report.shared_always)} sharing for "
            "every seed")
