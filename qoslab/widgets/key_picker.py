"""Key picker: choose cls_flow keys, profile, divisor and perturb; see the tc line and classes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..hashing import FLOW_KEYS, PROFILES, FlowClassifier, hash_changes, seeds_from_events
from ..hashing.keys import parse_keys
from ..hashing.profiles import get_profile
from ..plots import flow_labels
from ._base import Explorer, table_bundle, text_bundle

__all__ = ["KeyPicker", "classify_flows", "DEFAULT_KEYS"]

#: Keys ticked when a picker opens: the classic 5-tuple.
DEFAULT_KEYS: tuple[str, ...] = ("src", "dst", "proto", "proto-src", "proto-dst")


def _classifier(keys: Sequence[str], profile: str, divisor: int, perturb: int | None):
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
    clf = _classifier(keys, profile, divisor, perturb)
    line = (f"tc filter add dev {dev} parent {clf.baseclass >> 16:x}: protocol all handle 1 "
            f"{clf.to_tc()}")
    if packets is None:
        return line, None
    period = np.zeros(len(packets), dtype=np.int64)
    if perturb and "t" in packets.columns and len(packets):
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


def keys_of_profile(profile: str) -> tuple[str, ...]:
    """The cls_flow keys a kernel profile has (the ``tunnel-*`` keys only with the patch).

    Asks the key parser itself (:func:`qoslab.hashing.keys.parse_keys`), so the answer is the
    one the classifier gives.

    Examples
    --------
    >>> "tunnel-src" in keys_of_profile("5.18+"), "tunnel-src" in keys_of_profile("tunnel-patch")
    (False, True)
    """
    prof = get_profile(profile)
    have = []
    for key in FLOW_KEYS:
        try:
            parse_keys([key], prof)
        except ConfigError:
            continue
        have.append(key)
    return tuple(have)


def clsflow_profiles() -> list[str]:
    """The kernel profiles that have the ``flow`` classifier (it arrived with 2.6.25).

    >>> "5.18+" in clsflow_profiles() and "sfq-fold-2.6.2x" not in clsflow_profiles()
    True
    """
    return [name for name, p in PROFILES.items() if p.clsflow is not None]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else ("es" if word.endswith("s") else "s"))


class KeyPicker(Explorer):
    """Pick cls_flow keys and parameters; see the ``tc filter`` line and the classes live.

    One checkbox per ``cls_flow`` key, a kernel profile dropdown, divisor, perturb and seed
    inputs. Keys the chosen profile lacks (the ``tunnel-*`` keys outside the patched
    profiles) are unticked and disabled, and ticked again when a profile that has them comes
    back. The tc line is :meth:`FlowClassifier.to_tc` of the current choice; with ``packets``
    the flow → class table shows which flows share a class.

    Parameters
    ----------
    packets
        A PACKETS-like frame (optional).
    keys, profile, divisor, perturb, seed
        Initial values.

    Attributes
    ----------
    tc_line, table
        The current result of :func:`classify_flows` (None after an error).

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

        w = self.w
        self.packets = packets
        if isinstance(keys, str):
            keys = [k.strip() for k in keys.split(",") if k.strip()]
        unknown = [k for k in keys if k not in FLOW_KEYS]
        if unknown:
            raise ConfigError(f"unknown cls_flow key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(FLOW_KEYS)}")
        if profile not in PROFILES:
            raise ConfigError(f"unknown kernel profile {profile!r}; known: {', '.join(PROFILES)}")
        if profile not in clsflow_profiles():
            raise ConfigError(f"profile {profile!r} has no flow classifier (cls_flow arrived "
                              f"with 2.6.25); choose one of {', '.join(clsflow_profiles())}")
        self.keys = {k: w.Checkbox(value=k in keys, description=k, indent=False,
                                   layout=w.Layout(width="11em")) for k in FLOW_KEYS}
        self.profile = w.Dropdown(options=clsflow_profiles(), value=profile,
                                  description="profile",
                                  tooltip="kernel eras that have the flow classifier")
        self.divisor = w.BoundedIntText(value=divisor, min=1, max=65536, description="divisor",
                                        tooltip="number of classes (1 … 65536)")
        self.perturb = w.BoundedIntText(value=perturb or 0, min=0, max=86400,
                                        description="perturb (s)",
                                        tooltip="seconds between hash seed changes; 0 = never")
        self.seed = w.Text(value=f"0x{int(seed):x}", description="hashrnd",
                           continuous_update=False,
                           tooltip="the filter's random seed (hex 0x… or decimal)")
        self.tc = w.HTML()
        self.controls = [self.profile, self.divisor, self.perturb, self.seed]
        self._compute = functools.lru_cache(maxsize=64)(self._compute_uncached)
        self._wanted: set[str] = set()  # keys unticked only because the profile lacks them
        self._apply_profile()
        self.profile.observe(self._on_profile, names="value")
        grid = w.GridBox(list(self.keys.values()),
                         layout=w.Layout(grid_template_columns="repeat(6, 11em)"))
        self._finish_init(observe=[*self.keys.values(), self.divisor, self.perturb, self.seed],
                          initial=False)
        self.widget.children = (self.widget.children[0], grid, *self.widget.children[1:-1],
                                self.tc, self.output)
        self.refresh()

    @property
    def selected_keys(self) -> tuple[str, ...]:
        """The ticked keys, in table order."""
        return tuple(k for k, box in self.keys.items() if box.value and not box.disabled)

    def _apply_profile(self) -> None:
        have = set(keys_of_profile(self.profile.value))
        self._held += 1
        try:
            for key, box in self.keys.items():
                if key in have:
                    box.disabled = False
                    box.tooltip = None
                    if key in self._wanted:
                        box.value = True
                        self._wanted.discard(key)
                else:
                    if box.value:
                        self._wanted.add(key)
                        box.value = False
                    box.disabled = True
                    box.tooltip = f"profile {self.profile.value} has no {key} key"
        finally:
            self._held -= 1

    def _on_profile(self, _change) -> None:
        self._apply_profile()
        self._on_change()

    def _seed_value(self) -> int:
        text = str(self.seed.value).strip()
        try:
            value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise ConfigError(f"hashrnd = {text!r}: expected an integer (0x… for hex) in "
                              "0 … 0xffffffff") from None
        if not 0 <= value <= 0xFFFFFFFF:
            raise ConfigError(f"hashrnd = {text}: expected 0 … 0xffffffff (a 32-bit seed)")
        return value

    def _compute_uncached(self, keys, profile, divisor, perturb, seed):
        return classify_flows(self.packets, keys, profile, divisor, perturb, seed)

    def update(self) -> None:
        """Recompute the tc line and the class table (raises on error)."""
        self.tc_line, self.table = None, None
        self.tc.value = ""
        self.tc_line, self.table = self._compute(self.selected_keys, self.profile.value,
                                                 self.divisor.value, self.perturb.value or None,
                                                 self._seed_value())
        self.tc.value = text_bundle(self.tc_line)["data"]["text/html"]
        if self.table is None:
            self.show()
            self.status.value = "no packets given: the tc line only"
            return
        shared = self.table.loc[self.table["flows_in_class"] > 1, "flow"].nunique()
        periods = self.table["period"].nunique()
        self.show(table_bundle(self.table, caption="flow → class"))
        self.status.value = (f"{_plural(self.table['flow'].nunique(), 'flow')}, "
                             f"{_plural(self.table['class'].nunique(), 'class')} used"
                             + (f" over {periods} perturbation periods" if periods > 1 else "")
                             + f"; {shared} flow{'' if shared == 1 else 's'} share"
                             + ("s" if shared == 1 else "") + " a class with another flow")
