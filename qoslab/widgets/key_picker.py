"""Key picker: choose cls_flow keys, profile, divisor and perturb; see the tc line and classes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ._base import Explorer, table_bundle, text_bundle

__all__ = ["KeyPicker", "classify_flows", "DEFAULT_KEYS"]

#: Keys ticked when a picker opens: the classic 5-tuple.
DEFAULT_KEYS: tuple[str, ...] = ("src", "dst", "proto", "proto-src", "proto-dst")


def _classifier(keys: Sequence[str], profile: str, divisor: int, perturb: int | None):
    from ..hashing import FlowClassifier

    if not keys:
        raise ConfigError("tick at least one cls_flow key")
    return FlowClassifier(list(keys), mode="hash", divisor=int(divisor),
                          perturb=int(perturb) if perturb else None, profile=profile)


def classify_flows(
    packets: pd.DataFrame | None,
    keys: Sequence[str] = DEFAULT_KEYS,
    profile: str = "5.18+",
    divisor: int = 1024,
    perturb: int | None = None,
    seed: int = 0,
    dev: str = "eth0",
) -> tuple[str, pd.DataFrame | None]:
    """The key picker's computation: the ``tc filter`` line and the flow → class table.

    Parameters
    ----------
    packets
        A PACKETS-like frame, or None for the tc line alone.
    keys
        cls_flow key names (``qoslab.hashing.FLOW_KEYS``).
    profile
        Kernel profile name (``qoslab.hashing.PROFILES``).
    divisor
        Number of classes.
    perturb
        Perturbation interval in seconds (None or 0: none). With packet times (``t``), the
        seed changes every ``perturb`` seconds from the first packet on
        (:func:`qoslab.hashing.hash_changes` drawn from ``seed``), and the table has one block
        per perturbation period.
    seed
        The hash seed (``hashrnd``) in effect first.
    dev
        Interface name for the tc command line.

    Returns
    -------
    tuple
        ``(tc_line, table)``: the whole ``tc filter add`` command, and one row per
        (period, flow, class) with columns ``period`` (0, 1, … perturbation periods; all 0
        without perturb), ``flow``, ``class`` (as tc prints it, ``"1:2a"``), ``packets`` and
        ``flows_in_class`` (how many flows share that class in that period: > 1 means those
        flows queue together).

    Examples
    --------
    >>> line, _ = classify_flows(None, ["dst", "src"], "5.18+", divisor=64, perturb=10)
    >>> line
    'tc filter add dev eth0 parent 1: protocol all handle 1 flow hash keys src,dst divisor 64 perturb 10 baseclass 1:1'
    """
    from ..plots import flow_labels

    clf = _classifier(keys, profile, divisor, perturb)
    line = (f"tc filter add dev {dev} parent {clf.baseclass >> 16:x}: protocol all handle 1 "
            f"{clf.to_tc()}")
    if packets is None:
        return line, None
    period = np.zeros(len(packets), dtype=np.int64)
    if perturb and "t" in packets.columns and len(packets):
        from ..hashing import hash_changes, seeds_from_events

        t = pd.to_numeric(packets["t"]).to_numpy(dtype="float64")
        at, seeds = seeds_from_events(
            hash_changes(float(np.nanmin(t)), float(np.nanmax(t)), float(perturb),
                         rng_seed=int(seed)), initial=int(seed))
        classes = clf.classes(packets, hashrnd=seeds, at=at).to_numpy()
        period = np.searchsorted(at, t, side="right")
    else:
        classes = clf.classes(packets, hashrnd=int(seed)).to_numpy()
    df = pd.DataFrame({"period": period, "flow": flow_labels(packets).to_numpy(),
                       "class": classes})
    table = (df.groupby(["period", "flow", "class"], sort=False).size().rename("packets")
             .reset_index())
    table["flows_in_class"] = table.groupby(["period", "class"])["flow"].transform("nunique")
    table = table.sort_values(["period", "flows_in_class", "class", "flow"],
                              ascending=[True, False, True, True], kind="stable"
                              ).reset_index(drop=True)
    return line, table


class KeyPicker(Explorer):
    """Pick cls_flow keys and parameters; see the ``tc filter`` line and the classes live.

    One checkbox per ``cls_flow`` key (tunnel keys included), a kernel profile dropdown,
    divisor, perturb and seed inputs. The tc line is :meth:`FlowClassifier.to_tc` of the
    current choice; with ``packets`` the flow → class table shows which flows share a class.

    Parameters
    ----------
    packets
        A PACKETS-like frame (optional).
    keys, profile, divisor, perturb, seed
        Initial values.

    Attributes
    ----------
    tc_line, table
        The current result of :func:`classify_flows`.

    Examples
    --------
    >>> kp = KeyPicker(keys=("src", "dst"), divisor=256)
    >>> with kp.hold():
    ...     kp.keys["proto-dst"].value = True
    ...     kp.perturb.value = 10
    >>> kp.tc_line.split(" flow ")[1]
    'hash keys src,dst,proto-dst divisor 256 perturb 10 baseclass 1:1'
    """

    def __init__(self, packets: pd.DataFrame | None = None, keys: Sequence[str] = DEFAULT_KEYS,
                 profile: str = "5.18+", divisor: int = 1024, perturb: int | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        from ..hashing import FLOW_KEYS, PROFILES

        w = self.w
        self.packets = packets
        unknown = [k for k in keys if k not in FLOW_KEYS]
        if unknown:
            raise ConfigError(f"unknown cls_flow key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(FLOW_KEYS)}")
        self.keys = {k: w.Checkbox(value=k in keys, description=k, indent=False,
                                   layout=w.Layout(width="11em")) for k in FLOW_KEYS}
        self.profile = w.Dropdown(options=list(PROFILES), value=profile, description="profile")
        self.divisor = w.BoundedIntText(value=divisor, min=1, max=65536, description="divisor")
        self.perturb = w.BoundedIntText(value=perturb or 0, min=0, max=86400,
                                        description="perturb (s)")
        self.seed = w.IntText(value=seed, description="seed")
        self.tc = w.HTML()
        self.controls = [self.profile, self.divisor, self.perturb, self.seed]
        self._compute = functools.lru_cache(maxsize=64)(self._compute_uncached)
        grid = w.GridBox(list(self.keys.values()),
                         layout=w.Layout(grid_template_columns="repeat(6, 11em)"))
        self._finish_init(observe=[*self.keys.values(), *self.controls], initial=False)
        self.widget.children = (grid, *self.widget.children[:-1], self.tc, self.output)
        self.refresh()

    @property
    def selected_keys(self) -> tuple[str, ...]:
        """The ticked keys, in table order."""
        return tuple(k for k, box in self.keys.items() if box.value)

    def _compute_uncached(self, keys, profile, divisor, perturb, seed):
        return classify_flows(self.packets, keys, profile, divisor, perturb, seed)

    def update(self) -> None:
        """Recompute the tc line and the class table (raises on error)."""
        self.tc_line, self.table = self._compute(self.selected_keys, self.profile.value,
                                                 self.divisor.value, self.perturb.value or None,
                                                 self.seed.value)
        self.tc.value = text_bundle(self.tc_line)["data"]["text/html"]
        if self.table is None:
            self.show()
            self.status.value = "no packets given: the tc line only"
            return
        shared = self.table.loc[self.table["flows_in_class"] > 1, "flow"].nunique()
        periods = self.table["period"].nunique()
        self.show(table_bundle(self.table, caption="flow → class"))
        self.status.value = (f"{self.table['flow'].nunique()} flows, "
                             f"{self.table['class'].nunique()} classes used"
                             + (f" over {periods} perturbation periods" if periods > 1 else "")
                             + f"; {shared} flow(s) share a class with another flow")
