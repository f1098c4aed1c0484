"""cls_flow (``tc filter ... flow``): hash and map mode, per kernel era.

Algorithm (``net/sched/cls_flow.c``, ``flow_classify``): gather the keys in ascending bit order;
hash mode ``classid = jhash2(keys, nkeys, hashrnd)``, map mode
``classid = (((key & mask) ^ xor) >> rshift) + addend``; ``classid %= divisor`` if a divisor is
set; the result is ``TC_H_MAKE(baseclass, baseclass + classid)`` (minor wraps at 2**16).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..engines.dispatch import dask_aware
from ..errors import ConfigError, KernelFeatureMissing
from ._packets import check_frame
from .jhash import jhash2
from .keys import key_values, parse_keys
from .perturb import apply_seeds, check_perturb
from .profiles import DEFAULT_PROFILE, KernelProfile, get_profile

__all__ = ["FlowClassifier", "parse_classid", "format_classid"]

_M32 = 0xFFFFFFFF


def parse_classid(text: str | int) -> int:
    """tc handle ``"maj:min"`` (hex) → 32-bit classid.

    Examples
    --------
    >>> hex(parse_classid("1:1")), hex(parse_classid("10:")), hex(parse_classid("ffff:a"))
    ('0x10001', '0x100000', '0xffff000a')
    """
    if isinstance(text, (int, np.integer)):
        return int(text) & _M32
    m = re.fullmatch(r"\s*([0-9a-fA-F]{0,4}):([0-9a-fA-F]{0,4})\s*", str(text))
    if not m:
        raise ConfigError(f"classid {text!r}: expected 'major:minor' in hex, e.g. '1:1'")
    return (int(m.group(1) or "0", 16) << 16) | int(m.group(2) or "0", 16)


def format_classid(classid: int) -> str:
    """32-bit classid → tc spelling.

    Examples
    --------
    >>> format_classid(0x10001)
    '1:1'
    """
    return f"{(classid >> 16) & 0xFFFF:x}:{classid & 0xFFFF:x}"


def _number(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ConfigError(f"tc flow filter: {what} {text!r} is not a number") from None


class FlowClassifier:
    """A cls_flow filter, reimplemented bit-exactly for a kernel profile.

    Parameters
    ----------
    keys
        tc key names (``"src,dst,proto,proto-src,proto-dst"`` or a list); prefixes allowed.
    mode
        ``"hash"`` or ``"map"`` (map takes exactly one key).
    divisor
        ``classid %= divisor`` when set (tc's ``divisor``); None = no modulo.
    perturb
        Seconds between ``hashrnd`` changes (hash mode only); informational here: pass the
        seeds and change times to :meth:`classify`.
    baseclass
        ``"maj:min"``; the class is ``maj:(min + classid)``.
    mask, xor, rshift, addend
        Map-mode operators (tc's ``and``/``or``/``xor``/``rshift``/``addend`` folded).
    profile
        Kernel profile name (see :data:`qoslab.hashing.PROFILES`).
    endianness
        Host byte order: ``"little"`` (default) or ``"big"``.

    Examples
    --------
    >>> import pandas as pd
    >>> pk = pd.DataFrame({"ip_version": [4], "src": ["192.168.1.10"], "dst": ["10.0.0.1"],
    ...     "proto": [6], "sport": [12345], "dport": [80], "tos": [0], "frag": [False],
    ...     "tunnel": ["none"], "inner_src": [None], "inner_dst": [None], "inner_proto": [None],
    ...     "inner_sport": [None], "inner_dport": [None]})
    >>> fc = FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024,
    ...                     profile="classic-2.6.3x")
    >>> fc.classify(pk).tolist()       # lookup2 jhash2 = 0xd71641ba; 1 + 0xd71641ba % 1024
    [443]
    >>> fc.to_tc()
    'flow hash keys src,dst,proto,proto-src,proto-dst divisor 1024 baseclass 1:1'
    """

    def __init__(self, keys, mode: str = "hash", divisor: int | None = None,
                 perturb: float | None = None, baseclass: str | int = "1:1",
                 mask: int | None = None, xor: int | None = None, rshift: int | None = None,
                 addend: int | None = None, profile: str | KernelProfile = DEFAULT_PROFILE,
                 *, endianness: str = "little") -> None:
        self.profile = get_profile(profile)
        if self.profile.clsflow is None:
            raise KernelFeatureMissing(f"cls_flow does not exist in profile "
                                       f"{self.profile.name!r} (it arrives with 2.6.25)")
        self.keys = parse_keys(keys, self.profile)
        if mode not in ("hash", "map"):
            raise ConfigError(f"cls_flow mode {mode!r}: expected 'hash' or 'map'")
        if endianness not in ("little", "big"):
            raise ConfigError(f"endianness {endianness!r}: expected 'little' or 'big'")
        self.mode, self.endianness = mode, endianness
        if mode == "map":
            if len(self.keys) != 1:
                raise ConfigError(f"cls_flow map mode takes exactly one key, got {self.keys}")
            if perturb:
                raise ConfigError("cls_flow: perturb is only allowed in hash mode")
        elif any(v is not None for v in (mask, xor, rshift, addend)):
            raise ConfigError("cls_flow: and/or/xor/rshift/addend are only allowed in map mode")
        if divisor is not None and not 0 <= int(divisor) <= _M32:
            raise ConfigError(f"cls_flow divisor {divisor}: expected 0..2**32-1")
        if rshift is not None and not 0 <= int(rshift) <= 31:
            raise ConfigError(f"cls_flow rshift {rshift}: expected 0..31")
        self.divisor = int(divisor) if divisor else None
        self.perturb = check_perturb(perturb, "cls_flow perturb")
        self.baseclass = parse_classid(baseclass)
        if self.baseclass & 0xFFFF == 0:
            raise ConfigError(f"cls_flow baseclass {format_classid(self.baseclass)}: the minor "
                              "must not be 0 (the kernel rejects it)")
        self.mask = _M32 if mask is None else int(mask) & _M32
        self.xor = 0 if xor is None else int(xor) & _M32
        self.rshift = 0 if rshift is None else int(rshift)
        self.addend = 0 if addend is None else int(addend) & _M32

    # ------------------------------------------------------------------ classification
    def key_matrix(self, packets: pd.DataFrame, *, skb_hashrnd=0) -> np.ndarray:
        """The ``(N, nkeys)`` uint32 key values the kernel gathers, in bit order."""
        check_frame(packets)
        return key_values(packets, self.keys, self.profile, endianness=self.endianness,
                          skb_hashrnd=skb_hashrnd)

    def classid_of(self, values: np.ndarray, hashrnd=0) -> np.ndarray:
        """``classid`` before divisor and baseclass, from a key matrix (hash or map)."""
        if self.mode == "map":
            v = values[:, 0].astype(np.uint64)
            return ((((v & self.mask) ^ self.xor) >> self.rshift) + self.addend).astype(
                np.uint64) & _M32
        return jhash2(values, hashrnd, algo=self.profile.jhash).astype(np.uint64)

    def finish(self, classid: np.ndarray) -> np.ndarray:
        """Apply divisor and baseclass; return the class *minor* (uint32)."""
        if self.divisor:
            classid = classid % self.divisor
        minor = (self.baseclass + classid) & 0xFFFF
        return minor.astype(np.uint32)

    @dask_aware("classify")
    def classify(self, packets: pd.DataFrame, hashrnd: int | Sequence[int] = 0, at=None, *,
                 skb_hashrnd=0) -> np.ndarray:
        """Class minor per packet.

        Parameters
        ----------
        packets
            PACKETS-like frame (see :data:`qoslab.hashing.OPTIONAL_COLUMNS`); a Dask frame
            (:func:`qoslab.read_captures`, ``engine="dask"``) gives a lazy Dask Series
            ``class``, computed partition by partition.
        hashrnd
            The filter's random seed, or a sequence of seeds with ``at`` = change times
            (packets at or after ``at[i]`` use ``hashrnd[i + 1]``; needs column ``t``).
        skb_hashrnd
            Global flow-hash seed, used only by the ``rxhash`` key.

        Returns
        -------
        numpy.ndarray
            uint32 minor (the class is ``baseclass major : minor``).
        """
        values = self.key_matrix(packets, skb_hashrnd=skb_hashrnd)
        out = np.empty(len(packets), dtype=np.uint32)
        if self.mode == "map":
            return self.finish(self.classid_of(values)) if len(packets) else out
        return apply_seeds(packets, hashrnd, at, out,
                           lambda seed, rows: self.finish(self.classid_of(values[rows], seed)))

    def classes(self, packets: pd.DataFrame, hashrnd=0, at=None) -> pd.Series:
        """Full classids as tc prints them (``"1:2a"``)."""
        minor = self.classify(packets, hashrnd, at)
        major = self.baseclass >> 16
        return pd.Series([f"{major:x}:{m:x}" for m in minor], index=packets.index)

    # ------------------------------------------------------------------ tc syntax
    def to_tc(self) -> str:
        """The filter's ``tc filter add ... flow ...`` tail (from ``flow`` on)."""
        parts = ["flow", self.mode]
        if self.mode == "hash":
            parts += ["keys", ",".join(self.keys)]
        else:
            parts += ["key", self.keys[0]]
            if self.mask != _M32:
                parts += ["and", f"0x{self.mask:x}"]
            if self.xor:
                parts += ["xor", f"0x{self.xor:x}"]
            if self.rshift:
                parts += ["rshift", str(self.rshift)]
            if self.addend:
                parts += ["addend", f"0x{self.addend:x}"]
        if self.divisor:
            parts += ["divisor", str(self.divisor)]
        if self.perturb:
            parts += ["perturb", f"{self.perturb:g}"]
        parts += ["baseclass", format_classid(self.baseclass)]
        return " ".join(parts)

    @classmethod
    def from_tc(cls, line: str, profile: str | KernelProfile = DEFAULT_PROFILE,
                **kwargs) -> FlowClassifier:
        """Parse a ``tc filter add dev X parent 1: ... flow hash keys ...`` command line.

        Operators fold as iproute2 ``f_flow.c`` folds them: ``and m`` → ``mask &= m; xor &=
        m``; ``or v`` → ``mask &= ~v; xor = (xor & ~v) ^ v``; ``xor v`` → ``xor ^= v``.
        Without ``baseclass`` the default is ``<parent major>:1``.

        Examples
        --------
        >>> fc = FlowClassifier.from_tc("tc filter add dev eth0 parent 1: protocol all "
        ...     "handle 1 flow hash keys dst,src divisor 1024 perturb 10")
        >>> fc.keys, fc.divisor, fc.perturb, hex(fc.baseclass)
        (['src', 'dst'], 1024, 10.0, '0x10001')
        >>> FlowClassifier.from_tc("flow map key mark and 0x3ff baseclass 1:1").to_tc()
        'flow map key mark and 0x3ff baseclass 1:1'
        """
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise ConfigError(f"tc flow filter: {exc}") from None
        if "flow" not in words:
            raise ConfigError(f"tc line {line!r}: expected a 'flow' filter")
        parent = None
        if "parent" in words and words.index("parent") + 1 < len(words):
            parent = parse_classid(words[words.index("parent") + 1])
        it = iter(words[words.index("flow") + 1:])
        mode = "map"  # f_flow.c: without 'hash' the mode is map
        keys = None
        mask, xor, rshift, addend = _M32, 0, None, None
        divisor = perturb = baseclass = None
        for w in it:
            try:
                if w == "hash":
                    mode = "hash"
                elif w == "map":
                    mode = "map"
                elif w in ("keys", "key"):
                    keys = next(it)
                elif w == "and":
                    m = _number(next(it), "and")
                    mask &= m
                    xor &= m
                elif w == "or":
                    v = _number(next(it), "or")
                    mask &= ~v & _M32
                    xor = (xor & ~v & _M32) ^ v
                elif w == "xor":
                    xor ^= _number(next(it), "xor")
                elif w == "rshift":
                    rshift = _number(next(it), "rshift")
                elif w == "addend":
                    addend = _addend(next(it))
                elif w == "divisor":
                    divisor = _number(next(it), "divisor")
                elif w == "perturb":
                    perturb = float(_number(next(it), "perturb"))
                elif w == "baseclass":
                    baseclass = parse_classid(next(it))
                elif w in ("match", "police", "action"):
                    break  # ematches/actions do not change the class computation
                else:
                    raise ConfigError(f"tc flow filter: unexpected word {w!r} in {line!r}")
            except StopIteration:
                raise ConfigError(f"tc flow filter: {w!r} needs a value in {line!r}") from None
        if keys is None:
            raise ConfigError(f"tc flow filter {line!r}: expected 'keys ...' or 'key ...'")
        if baseclass is None:
            baseclass = ((parent or 0x10000) & 0xFFFF0000) | 1
        return cls(keys, mode=mode, divisor=divisor, perturb=perturb, baseclass=baseclass,
                   mask=(mask if mask != _M32 else None) if mode == "map" else None,
                   xor=(xor or None) if mode == "map" else None, rshift=rshift, addend=addend,
                   profile=profile, **kwargs)

    def __repr__(self) -> str:
        return f"FlowClassifier({self.to_tc()!r}, profile={self.profile.name!r})"

    def _identity(self) -> tuple:
        return (self.to_tc(), self.profile.name, self.endianness)

    def __eq__(self, other: object) -> bool:
        """Filters are equal when they classify alike: same tc text, profile, byte order."""
        return isinstance(other, FlowClassifier) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())


def _addend(text: str) -> int:
    """tc ``addend``: a number, an IP address (ntohl; IPv6 last word), ``-`` negates."""
    neg = text.startswith("-")
    body = text[1:] if neg else text
    try:
        value = int(body, 0)
    except ValueError:
        try:
            value = int(ipaddress.ip_address(body)) & _M32
        except ValueError:
            raise ConfigError(f"tc flow filter: addend {text!r} is not a number or address") \
                from None
    return (-value) & _M32 if neg else value & _M32
