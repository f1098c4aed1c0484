"""Decoded arrays → the PACKETS DataFrame (dtypes from :data:`qoslab.schema.PACKETS`)."""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ..schema import PACKETS
from .decode import PROBLEMS, TUNNELS, Decoded
from .records import RecordBatch
from .timestamps import NAT

__all__ = ["to_frame", "empty_packets", "address_categorical", "address_sort_key"]


def address_sort_key(address: str) -> tuple[int, int]:
    """Order of address categories: IPv4 before IPv6, numerically.

    >>> sorted(["::1", "10.0.0.10", "10.0.0.9"], key=address_sort_key)
    ['10.0.0.9', '10.0.0.10', '::1']
    """
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)

_NUMPY = {"UInt8": np.uint8, "UInt16": np.uint16, "UInt32": np.uint32}


def empty_packets() -> pd.DataFrame:
    """An empty PACKETS frame with every column and dtype.

    >>> list(empty_packets().columns[:3])
    ['time', 't', 'ifindex']
    """
    return to_frame(RecordBatch(*(np.zeros(0, np.int64) for _ in range(4)),
                                np.zeros(0, np.int32), np.zeros(0, np.int32)),
                    Decoded(0), 0)


def _sorted_factorize(keys: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Codes of the rows of the integer columns ``keys`` (most significant first), numbered
    in ascending key order, and the distinct keys in that order.

    One hash pass per column plus one over the combined codes; only the distinct keys are
    sorted.
    """
    codes, uniques = pd.factorize(keys[0])
    parts = [uniques]
    for key in keys[1:]:
        c, u = pd.factorize(key)
        codes, combined = pd.factorize(codes.astype(np.int64) * len(u) + c)
        parts = [p[combined // len(u)] for p in parts] + [u[combined % len(u)]]
    order = np.lexsort(parts[::-1])
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[codes], [p[order] for p in parts]


def _ipv4_names(value: np.ndarray) -> list[str]:
    v = value.astype(np.uint32)
    return [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(
        (v >> 24).tolist(), ((v >> 16) & 255).tolist(), ((v >> 8) & 255).tolist(),
        (v & 255).tolist(), strict=True)]


def _ipv6_names(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    raw = np.stack([hi, lo], axis=1).astype(">u8").tobytes()
    names = []
    for k in range(0, len(raw), 16):
        packed = raw[k:k + 16]
        name = socket.inet_ntop(socket.AF_INET6, packed)
        if "." in name:  # the C library writes ::ffff:a.b.c.d; ipaddress (the reference) not
            name = str(ipaddress.IPv6Address(packed))
        names.append(name)
    return names


def address_categorical(n: int, parts: list) -> pd.Categorical:
    """Build a categorical of address strings from ``[(rows, 4 | 6, values)]``.

    IPv4 values are uint32 integers, IPv6 values ``(k, 16)`` uint8 rows (or ``V16``); the
    values are hashed once per packet and only the distinct ones are sorted and formatted.
    Categories are in address order (IPv4 before IPv6, numerically), so chunking never
    changes them.
    """
    codes = np.full(n, -1, np.int32)
    cats: list[str] = []
    for version in (4, 6):
        mine = [(r, v) for r, ver, v in parts if ver == version and len(r)]
        if not mine:
            continue
        rows = np.concatenate([r for r, _ in mine])
        values = np.concatenate([v for _, v in mine])
        if version == 4:
            uniq_codes, (uniques,) = _sorted_factorize([values.astype(np.uint32)])
            names = _ipv4_names(uniques)
        else:
            words = np.ascontiguousarray(values).view(">u8").reshape(-1, 2)
            uniq_codes, (hi, lo) = _sorted_factorize(
                [words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)])
            names = _ipv6_names(hi, lo)
        codes[rows] = uniq_codes + len(cats)
        cats.extend(names)
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(
        pd.Index(cats, dtype=str)), validate=False)


def to_frame(batch: RecordBatch, dec: Decoded, t0_ns: int | None) -> pd.DataFrame:
    """Assemble the PACKETS frame of one decoded batch; ``t`` counts from ``t0_ns`` (NaN
    where the time stamp is unknown, everywhere when ``t0_ns`` is None)."""
    n = len(batch)
    cols: dict[str, object] = {}
    if n < PARALLEL_MIN_ROWS:
        _fill_columns(cols, batch, dec, t0_ns, n)
        for name in _ADDRESS_COLUMNS:
            cols[name] = address_categorical(n, dec.addr.get(name, []))
    else:
        with ThreadPoolExecutor(2) as pool:  # hashing releases the GIL: overlap the columns
            addresses = {name: pool.submit(address_categorical, n, dec.addr.get(name, []))
                         for name in _ADDRESS_COLUMNS}
            _fill_columns(cols, batch, dec, t0_ns, n)
            for name, future in addresses.items():
                cols[name] = future.result()
    return pd.DataFrame({name: cols[name] for name in PACKETS}, index=pd.RangeIndex(n),
                        copy=False)


_ADDRESS_COLUMNS = ("src", "dst", "inner_src", "inner_dst")
#: Rows from which the address columns are built in worker threads.
PARALLEL_MIN_ROWS = 1 << 16


def _fill_columns(cols: dict, batch: RecordBatch, dec: Decoded, t0_ns: int, n: int) -> None:
    """Every PACKETS column but the addresses, into ``cols``."""
    for name, dtype in PACKETS.items():
        if name == "time":
            ts = np.ascontiguousarray(batch.ts_ns, np.int64).view("M8[ns]")
            cols[name] = pd.array(ts).tz_localize("UTC")  # ns since the epoch: no parsing
        elif name == "t":
            if t0_ns is None:
                cols[name] = np.full(n, np.nan)
            else:
                cols[name] = (batch.ts_ns - t0_ns) / 1e9
                unknown = batch.ts_ns == NAT
                if unknown.any():
                    cols[name][unknown] = np.nan
        elif name in ("ifindex", "section", "wire_len", "cap_len"):
            cols[name] = getattr(batch, name).astype(dtype)
        elif name in _ADDRESS_COLUMNS:
            continue
        elif dtype == "bool":  # False where not decoded (frag, frag_more, inner_frag_more)
            v = dec.values.get(name)
            cols[name] = np.zeros(n, bool) if v is None else v & dec.valid[name]
        elif name == "dscp":
            cols[name] = _int_array(dec, "tos", dtype, n, lambda v: v >> 2)
        elif name == "ecn":
            cols[name] = _int_array(dec, "tos", dtype, n, lambda v: v & 3)
        elif name == "tunnel":
            v = dec.values.get("tunnel", np.zeros(n, np.int8))
            cols[name] = pd.Categorical.from_codes(v, categories=TUNNELS)
        elif name == "problem":
            cols[name] = pd.Categorical.from_codes(dec.problem, categories=PROBLEMS)
        else:
            cols[name] = _int_array(dec, name, dtype, n)


def _int_array(dec: Decoded, name: str, dtype: str, n: int, fn=None):
    np_type = _NUMPY[dtype]
    if name not in dec.values:
        return pd.arrays.IntegerArray(np.zeros(n, np_type), np.ones(n, bool))
    v = dec.values[name]
    if fn is not None:
        v = fn(v)
    return pd.arrays.IntegerArray(v.astype(np_type, copy=False), ~dec.valid[name])
