"""The experiment matrix: destinations x TOS x payload sizes, one probe *stream* each.

A target is what a user names (``"10.0.0.2"``, ``"a,10.0.0.2,0x10,1400"`` as ping-exp's ``-t``
took it, or a :class:`Target`); :func:`build_streams` crosses the targets with the TOS values
and payload sizes that a target does not fix itself, resolves every host once, and labels each
stream with :func:`qoslab.schema.stream_label` (prefixed by the target's identifier when the
user gave one, as ping-exp's legends showed it).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..schema import stream_label

__all__ = ["Target", "Stream", "parse_target", "build_streams", "resolve", "parse_tos",
           "DEFAULT_SIZE", "MAX_SIZE"]

#: ICMP payload bytes when nothing else is said (iputils ``ping -s`` default).
DEFAULT_SIZE = 56
#: Largest ICMP echo payload that fits an IPv4 datagram (65535 - 20 - 8).
MAX_SIZE = 65507


@dataclass(frozen=True)
class Target:
    """One destination as the user named it.

    Parameters
    ----------
    host
        Host name or address literal.
    id
        Identifier shown in legends (ping-exp's ``ID``); ``None`` when the user gave none.
    tos
        The whole TOS / traffic-class byte; ``None`` lets the matrix choose.
    size
        ICMP payload bytes; ``None`` lets the matrix choose.
    """

    host: str
    id: str | None = None
    tos: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class Stream:
    """One probe stream: a resolved destination with one TOS and one payload size."""

    label: str
    host: str
    address: str
    family: int  # socket.AF_INET or socket.AF_INET6
    tos: int
    size: int
    id: str | None = None

    @property
    def ip_version(self) -> int:
        """4 or 6."""
        return 6 if self.family == socket.AF_INET6 else 4

    def as_meta(self) -> dict:
        """The stream as a plain dict for META."""
        return {"stream": self.label, "id": self.id, "host": self.host,
                "address": self.address, "ip_version": self.ip_version,
                "tos": self.tos, "size": self.size}


def parse_tos(text: str | int) -> int:
    """Parse a TOS byte given as decimal or ``0x`` hex; raise :class:`ConfigError` if invalid.

    >>> parse_tos("0x10"), parse_tos("8"), parse_tos(184)
    (16, 8, 184)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        try:
            value = int(str(text).strip(), 0)
        except ValueError:
            raise ConfigError(f"TOS {text!r}: expected an integer 0-255 (decimal or 0x hex)") \
                from None
    if not 0 <= value <= 255:
        raise ConfigError(f"TOS {text!r}: expected an integer 0-255")
    return value


def _parse_size(text: str | int) -> int:
    try:
        value = int(str(text).strip(), 0) if not isinstance(text, int) else text
    except ValueError:
        raise ConfigError(f"size {text!r}: expected an ICMP payload size in bytes") from None
    if not 0 <= value <= MAX_SIZE:
        raise ConfigError(f"size {text!r}: expected 0-{MAX_SIZE} bytes")
    return value


def parse_target(spec: str | Target) -> Target:
    """Parse ping-exp's ``ID,HOST,TOS[,SIZE]`` (or a bare ``HOST``) into a :class:`Target`.

    Examples
    --------
    >>> parse_target("a,10.0.0.2,0x10,1400")
    Target(host='10.0.0.2', id='a', tos=16, size=1400)
    >>> parse_target("::1")
    Target(host='::1', id=None, tos=None, size=None)
    """
    if isinstance(spec, Target):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"target {spec!r}: expected ID,HOST,TOS[,SIZE] or a host")
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) == 1:
        return Target(host=parts[0])
    if len(parts) not in (3, 4) or not parts[0] or not parts[1]:
        raise ConfigError(f"target {spec!r}: expected ID,HOST,TOS[,SIZE] "
                          "(e.g. a,10.0.0.2,0x10 or b,example.net,0,1400)")
    return Target(host=parts[1], id=parts[0], tos=parse_tos(parts[2]),
                  size=_parse_size(parts[3]) if len(parts) == 4 else None)


def resolve(host: str, family: int | None = None) -> tuple[str, int]:
    """Resolve ``host`` to one address and its family.

    Parameters
    ----------
    host
        Name or literal.
    family
        ``4``, ``6`` or ``None`` (IPv4 preferred, as iputils ``ping`` does).

    Raises
    ------
    ConfigError
        When the name does not resolve (for the requested family).

    Examples
    --------
    >>> resolve("127.0.0.1")
    ('127.0.0.1', 2)
    """
    fam = {None: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}.get(family)
    if fam is None:
        raise ConfigError(f"family {family!r}: expected 4, 6 or None")
    try:
        infos = socket.getaddrinfo(host, None, fam, socket.SOCK_RAW)
    except (socket.gaierror, UnicodeError) as exc:
        what = f" as IPv{family}" if family else ""
        raise ConfigError(f"cannot resolve {host!r}{what}: {exc}") from None
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    for af, _type, _proto, _name, sockaddr in infos:
        if af in (socket.AF_INET, socket.AF_INET6):
            return str(sockaddr[0]), int(af)
    raise ConfigError(f"cannot resolve {host!r}: no IPv4 or IPv6 address")


def _as_list(value, parse) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [parse(value)]
    return [parse(v) for v in value]


def build_streams(targets: str | Target | Iterable[str | Target],
                  tos: int | Sequence[int] | None = 0,
                  sizes: int | Sequence[int] | None = DEFAULT_SIZE,
                  family: int | None = None) -> list[Stream]:
    """Cross targets with TOS values and sizes and resolve each host once.

    A target's own TOS or size (ping-exp's ``-t ID,HOST,TOS,SIZE``) wins over the matrix.

    Returns
    -------
    list of Stream
        In target order, then TOS, then size; labels are unique.

    Examples
    --------
    >>> [s.label for s in build_streams("127.0.0.1", tos=[0, 0x10], sizes=[56, 1400])]
    ['127.0.0.1 tos=0x00 size=56', '127.0.0.1 tos=0x00 size=1400', \
'127.0.0.1 tos=0x10 size=56', '127.0.0.1 tos=0x10 size=1400']
    >>> build_streams(["a,127.0.0.1,0x10"])[0].label
    'a: 127.0.0.1 tos=0x10 size=56'
    """
    if isinstance(targets, (str, Target)):
        targets = [targets]
    parsed = [parse_target(t) for t in targets]
    if not parsed:
        raise ConfigError("no targets: give at least one destination")
    tos_list = _as_list(tos, parse_tos) or [0]
    size_list = _as_list(sizes, _parse_size) or [DEFAULT_SIZE]
    resolved: dict[str, tuple[str, int]] = {}
    streams: list[Stream] = []
    seen: dict[str, int] = {}
    for t in parsed:
        if t.host not in resolved:
            resolved[t.host] = resolve(t.host, family)
        address, fam = resolved[t.host]
        if fam == socket.AF_INET and t.size is not None and t.size > MAX_SIZE:
            raise ConfigError(f"target {t.host}: size {t.size} exceeds {MAX_SIZE}")
        for tv in ([t.tos] if t.tos is not None else tos_list):
            for sz in ([t.size] if t.size is not None else size_list):
                label = stream_label(t.host, tv, sz)
                if t.id is not None:
                    label = f"{t.id}: {label}"
                n = seen.get(label, 0) + 1
                seen[label] = n
                if n > 1:
                    label = f"{label} #{n}"
                streams.append(Stream(label=label, host=t.host, address=address, family=fam,
                                      tos=tv, size=sz, id=t.id))
    return streams
