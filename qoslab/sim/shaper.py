"""The link and the token-bucket shaper in front of it (HTB single class or TBF).

``Link`` is the device: line rate (serialisation), per-packet framing overhead, one-way
propagation delay, and the return path (rate and delay) the replies and ACKs take. The
return path is never congested here: the experiments load the uplink only.

``TokenBucket`` shapes the root qdisc's output the way an HTB class does: the class may send
while its token count is >= 0 and is charged the packet's bytes afterwards (so it can go
one packet negative), tokens refill at ``rate`` up to ``burst`` bytes. ``mode="tbf"`` is the
TBF rule instead: a packet leaves only when the bucket holds its full size. With a rate just
below the line rate, the queue forms in the qdisc, not in the modem (the classic
"HTB just below the link" set-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ._qdisc import RuntimeQdisc

__all__ = ["Link", "TokenBucket", "ShapedRoot"]

#: Waits shorter than this (seconds) are not scheduled: float time cannot resolve them late
#: in a run, and a nanosecond of credit changes nothing measurable.
_MIN_WAIT = 1e-9


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

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"link: rate must be > 0 bit/s, got {self.rate}")
        if self.delay < 0:
            raise ConfigError(f"link: delay must be >= 0 s, got {self.delay}")
        if self.return_rate is not None and not self.return_rate > 0:
            raise ConfigError(f"link: return_rate must be > 0 bit/s, got {self.return_rate}")

    def base_rtt(self, reply_bytes: int) -> float:
        """Seconds from the end of transmission to the reply's arrival back at the sender."""
        rtt = 2.0 * self.delay
        if self.return_rate is not None:
            rtt += reply_bytes * 8.0 / self.return_rate
        return rtt


@dataclass(frozen=True)
class TokenBucket:
    """An HTB class (``mode="htb"``) or TBF (``mode="tbf"``) shaping the root qdisc.

    Parameters
    ----------
    rate
        Bit/s.
    burst
        Bucket depth in bytes; ``None`` gives tc's HTB default ``rate / HZ + mtu`` with
        ``HZ = 1000``.
    ceil
        HTB ceil in bit/s (for a single class without a parent it bounds the rate too).

    Examples
    --------
    >>> TokenBucket(rate=900_000).to_tc()
    'htb rate 900kbit burst 1624b'
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

    @property
    def effective_rate(self) -> float:
        return min(self.rate, self.ceil) if self.ceil else self.rate

    def burst_bytes(self, mtu: int = 1500) -> int:
        if self.burst is not None:
            return int(self.burst)
        return int(self.effective_rate / 8 / 1000 + mtu + 14 - 2)

    def to_tc(self) -> str:
        return f"{self.mode} rate {_rate(self.rate)} burst {self.burst_bytes()}b" + (
            f" ceil {_rate(self.ceil)}" if self.ceil else "")


def _rate(bps: float) -> str:
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bps >= scale and bps % scale == 0:
            return f"{int(bps // scale)}{unit}"
    return f"{int(bps)}bit"


class ShapedRoot(RuntimeQdisc):
    """Runtime: a token bucket in front of a child qdisc."""

    __slots__ = ("child", "rate", "burst", "tokens", "t_last", "tbf", "held")

    def __init__(self, bucket: TokenBucket, child: RuntimeQdisc, mtu: int) -> None:
        super().__init__(f"{bucket.mode}+{child.name}")
        self.child = child
        self.rate = bucket.effective_rate / 8.0
        self.burst = float(bucket.burst_bytes(mtu))
        self.tokens = self.burst
        self.t_last = 0.0
        self.tbf = bucket.mode == "tbf"
        self.held = None  # TBF: the head packet taken by qdisc_peek_dequeued

    def enqueue(self, pkt, t: float) -> None:
        self.child.enqueue(pkt, t)

    def dequeue(self, t: float):
        child = self.child
        held = self.held
        if held is None and not child.qlen:
            self.next_wake = math.inf
            return None
        tokens = self.tokens + (t - self.t_last) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.tokens = tokens
        self.t_last = t
        if self.tbf:
            # TBF sends the head packet only when the bucket holds all its bytes; like the
            # kernel (qdisc_peek_dequeued) it takes the packet out and keeps it meanwhile.
            if held is None:
                held = self.held = child.dequeue(t)
                if held is None:
                    self.next_wake = math.inf
                    return None
            need = float(held[1])
        else:
            need = 0.0
        if tokens < need:
            wait = (need - tokens) / self.rate
            if wait > _MIN_WAIT:
                self.next_wake = t + wait
                return None
        if held is not None:
            self.held = None
            pkt = held
        else:
            pkt = child.dequeue(t)
        if pkt is not None:
            self.tokens = tokens - pkt[1]
        return pkt

    def on_hash_change(self, seed_index: int, t: float) -> None:
        self.child.on_hash_change(seed_index, t)

    def snapshot(self):
        return self.child.snapshot()  # a TBF's held head packet is in the shaper, not queued

    def stats(self) -> dict:
        return self.child.stats()
