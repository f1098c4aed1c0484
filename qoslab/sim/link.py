"""The egress device the simulator drives, and the path behind it.

``Link`` is the device: line rate (serialisation), per-packet framing overhead, one-way
propagation delay, the return path (rate and delay) replies and ACKs take, MTU and
``txqueuelen``. The return path is never congested: the experiments load the uplink only.

``TokenBucket`` is a shorthand for the usual shaper in front of the qdisc — an HTB with one
class (``mode="htb"``: the class may send while its tokens are ≥ 0 and is charged afterwards,
so it can go one packet negative) or a TBF (``mode="tbf"``: a packet leaves only when the
bucket holds all of it). :meth:`TokenBucket.wrap` returns the qdisc tree spec
(:mod:`qoslab.qdiscs`) with the qdisc as its leaf; that spec is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..qdiscs import Htb, HtbClass, Tbf
from ..qdiscs.htb import TC_DEFAULT_BURST

__all__ = ["Link", "TokenBucket"]


@dataclass(frozen=True)
class Link:
    """The egress device and the path behind it.

    Parameters
    ----------
    rate
        Line rate, bit/s.
    delay
        One-way propagation delay to every destination, seconds.
    return_rate
        Rate of the (uncongested) return path in bit/s for reply serialisation; ``None`` for
        a return path much faster than the uplink.
    overhead
        Framing bytes per packet added on the wire (PPP, ATM cell padding not modelled).
    mtu
        Device MTU (the SFQ / fq_codel quantum default is ``mtu + 14``).
    txqueuelen
        The device's queue length (pfifo_fast's limit, pfifo's default limit).

    Examples
    --------
    >>> Link(rate=1e6, delay=0.01).base_rtt(98)
    0.02
    >>> round(Link(rate=1e6, delay=0.01, return_rate=8e6).base_rtt(1000), 6)
    0.021
    """

    rate: float = 1_000_000.0
    delay: float = 0.010
    return_rate: float | None = None
    overhead: int = 0
    mtu: int = 1500
    txqueuelen: int = 1000

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"link: rate must be > 0 bit/s, got {self.rate}")
        if self.delay < 0:
            raise ConfigError(f"link: delay must be >= 0 s, got {self.delay}")
        if self.return_rate is not None and not self.return_rate > 0:
            raise ConfigError(f"link: return_rate must be > 0 bit/s, got {self.return_rate}")
        if self.txqueuelen < 0:
            raise ConfigError(f"link: txqueuelen must be >= 0, got {self.txqueuelen}")

    def base_rtt(self, reply_bytes: int) -> float:
        """Seconds from the end of transmission to the reply's arrival back at the sender."""
        rtt = 2.0 * self.delay
        if self.return_rate is not None:
            rtt += reply_bytes * 8.0 / self.return_rate
        return rtt


@dataclass(frozen=True)
class TokenBucket:
    """A one-class HTB (``mode="htb"``) or a TBF (``mode="tbf"``) in front of a qdisc.

    Parameters
    ----------
    rate
        Bit/s.
    burst
        Bucket depth in bytes; ``None`` is tc's default (1600 bytes for HTB).
    ceil
        HTB ceil in bit/s (a class directly under the root cannot borrow: the rate rules).
    mode
        ``"htb"`` or ``"tbf"``.

    Examples
    --------
    >>> from qoslab.qdiscs import Pfifo
    >>> print(TokenBucket(rate=900_000).wrap(Pfifo(limit=10)).to_tc())
    tc qdisc add dev DEV root handle 1: htb default 10
    tc class add dev DEV parent 1: classid 1:10 htb rate 900kbit
    tc qdisc add dev DEV parent 1:10 handle 10: pfifo limit 10
    """

    rate: float
    burst: int | None = None
    ceil: float | None = None
    mode: Literal["htb", "tbf"] = "htb"

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"shaper: rate must be > 0 bit/s, got {self.rate}")
        if self.mode not in ("htb", "tbf"):
            raise ConfigError(f"shaper: mode must be 'htb' or 'tbf', got {self.mode!r}")
        if self.burst is not None and self.burst <= 0:
            raise ConfigError(f"shaper: burst must be > 0 bytes, got {self.burst}")

    def wrap(self, leaf: Any) -> Any:
        """The shaping tree spec with ``leaf`` below the bucket."""
        if self.mode == "tbf":
            return Tbf(rate=self.rate, burst=self.burst or TC_DEFAULT_BURST,
                       limit=10 * 1024 * 1024, child=leaf)
        return Htb(classes=(HtbClass("1:10", self.rate, ceil=self.ceil, burst=self.burst,
                                     cburst=self.burst, leaf=leaf),), default=0x10)
