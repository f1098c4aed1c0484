"""Perturbation schedules: when a seed changes and which seed each packet sees.

The kernel's perturb timer (SFQ ``perturb``, cls_flow ``perturb``) fires every ``perturb``
seconds after the qdisc or filter is created and draws new random bytes. The seed values are
unknowable from outside; a schedule here is either measured (EVENTS from the simulator or the
lab) or drawn reproducibly from ``rng_seed``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, ScheduleLimitError
from ..schema import EVENTS

__all__ = ["hash_changes", "seeds_from_events", "seed_groups", "format_seed", "check_perturb",
           "MAX_PERTURB", "MAX_HASH_CHANGES"]

#: The longest perturb period tc accepts: a u32 number of seconds (``tc … perturb SECS``).
MAX_PERTURB = 2**32 - 1
#: The most hash changes one schedule may hold (a perturb of 1 s covers 11.5 days): more means
#: a tiny period over a long span — e.g. replaying part of a long capture set without ``t0`` —
#: and is refused with :class:`~qoslab.errors.ScheduleLimitError` instead of filling memory.
MAX_HASH_CHANGES = 1_000_000

_SEED_RE = re.compile(r"seed=(0x[0-9a-fA-F]+|\d+)")


def format_seed(seed: int) -> str:
    """EVENTS ``detail`` text for a new seed.

    Examples
    --------
    >>> format_seed(0x1234abcd)
    'seed=0x1234abcd'
    """
    return f"seed=0x{int(seed):08x}"


def check_perturb(perturb, what: str = "perturb") -> float | None:
    """``perturb`` as seconds (None for 0/None = never), or a ConfigError naming ``what``.

    Examples
    --------
    >>> check_perturb(10), check_perturb(0), check_perturb(None)
    (10.0, None, None)
    >>> check_perturb(float("nan"), "SFQ perturb")
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: SFQ perturb nan: expected seconds in 0 … 4294967295 (0 = never)
    """
    if perturb is None:
        return None
    try:
        value = float(perturb)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {perturb!r}: expected a number of seconds") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_PERTURB):
        raise ConfigError(f"{what} {perturb}: expected seconds in 0 … {MAX_PERTURB} "
                          "(0 = never)")
    return value or None


def hash_changes(start: float, end: float, perturb: float, *, rng_seed=None,
                 bits: int = 32) -> pd.DataFrame:
    """EVENTS rows (kind ``hash_change``) for a perturb timer armed at ``start``.

    Parameters
    ----------
    start, end
        Seconds; the timer first fires at ``start + perturb`` and every ``perturb`` after,
        while the time is before ``end``.
    perturb
        Interval in seconds (tc's ``perturb``); 0 or None gives no events.
    rng_seed
        Seed of the numpy generator that draws the new values (reproducible schedules).
    bits
        32 for u32 seeds (jhash eras), 128 for siphash keys (5.4+).

    Returns
    -------
    pandas.DataFrame
        EVENTS columns ``t``, ``kind``, ``detail`` (``seed=0x...``).

    Examples
    --------
    >>> ev = hash_changes(0, 25, 10, rng_seed=1)
    >>> ev["t"].tolist(), ev["kind"].tolist()
    ([10.0, 20.0], ['hash_change', 'hash_change'])
    >>> ev["detail"].str.startswith("seed=0x").all()
    np.True_
    """
    if bits not in (32, 128):
        raise ConfigError(f"hash_changes bits={bits}: expected 32 or 128")
    times: list[float] = []
    perturb = check_perturb(perturb)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ConfigError(f"hash_changes: start {start}, end {end}: expected finite seconds")
    if perturb:
        n = int(np.floor((end - start) / perturb)) + 1
        if n > MAX_HASH_CHANGES:
            raise ScheduleLimitError(
                f"perturb {perturb:g} s over {end - start:.6g} s needs {n} hash changes, more "
                f"than MAX_HASH_CHANGES = {MAX_HASH_CHANGES} (qoslab.hashing.perturb): use a "
                "longer period or a shorter span (replaying part of a capture set: give t0)")
        k = np.arange(1, max(n, 0) + 1)
        t = start + k * float(perturb)
        times = [float(x) for x in t[t < end]]
    rng = np.random.default_rng(rng_seed)
    seeds = [int.from_bytes(rng.bytes(bits // 8), "little") for _ in times]
    frame = pd.DataFrame({"t": pd.Series(times, dtype=EVENTS["t"]),
                          "kind": pd.Series(["hash_change"] * len(times), dtype=EVENTS["kind"]),
                          "detail": pd.Series([format_seed(s) for s in seeds],
                                              dtype=EVENTS["detail"])})
    return frame


def seeds_from_events(events: pd.DataFrame, initial: int = 0) -> tuple[np.ndarray, list[int]]:
    """``(at, seeds)`` for ``classify``/``bucket``: change times and the seed before/after each.

    ``seeds[0]`` (``initial``) applies before the first change, ``seeds[i]`` from ``at[i-1]``.

    Examples
    --------
    >>> at, seeds = seeds_from_events(hash_changes(0, 25, 10, rng_seed=1), initial=7)
    >>> at.tolist(), len(seeds), seeds[0]
    ([10.0, 20.0], 3, 7)
    """
    if not {"t", "kind", "detail"} <= set(events.columns):
        raise ConfigError("events: expected EVENTS columns t, kind, detail")
    rows = events[events["kind"] == "hash_change"].sort_values("t", kind="stable")
    seeds = [int(initial)]
    for detail in rows["detail"]:
        m = _SEED_RE.search(str(detail))
        if not m:
            raise ConfigError(f"hash_change event detail {detail!r}: expected 'seed=0x...'")
        seeds.append(int(m.group(1), 0))
    return rows["t"].to_numpy(dtype=float), seeds


def seed_groups(packets: pd.DataFrame, seeds, at) -> list[tuple[object, np.ndarray | slice]]:
    """Split packets by the seed in force: ``[(seed, rows), ...]``.

    ``seeds`` is one seed or a sequence; with a sequence, ``at`` gives the ``len(seeds) - 1``
    change times and the packets' ``t`` column picks the seed (a packet at exactly a change
    time sees the new seed).
    """
    if not isinstance(seeds, Sequence) or isinstance(seeds, (bytes, bytearray, str)):
        return [(seeds, slice(None))]
    seeds = list(seeds)
    if at is None:
        if len(seeds) != 1:
            raise ConfigError(f"{len(seeds)} seeds given without `at` (their change times)")
        return [(seeds[0], slice(None))]
    at = np.asarray(at, dtype=float)
    if len(at) != len(seeds) - 1:
        raise ConfigError(f"`at` has {len(at)} change times; expected len(seeds) - 1 = "
                          f"{len(seeds) - 1}")
    if "t" not in packets.columns:
        raise ConfigError("packets: a perturb schedule (`at`) needs the `t` column")
    which = np.searchsorted(at, packets["t"].to_numpy(dtype=float), side="right")
    return [(seeds[i], np.flatnonzero(which == i)) for i in np.unique(which)]


def apply_seeds(packets: pd.DataFrame, seeds, at, out: np.ndarray,
                fn: Callable[[object, np.ndarray | slice], np.ndarray]) -> np.ndarray:
    """Fill ``out[rows] = fn(seed, rows)`` for each seed group."""
    for seed, rows in seed_groups(packets, seeds, at):
        out[rows] = fn(seed, rows)
    return out
